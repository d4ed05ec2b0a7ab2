//! What a node knows of the cluster beyond its own replicas: the routing table (every shard's
//! replicas and last known leader), node addresses and tenants' API-key digests. It comes with
//! every heartbeat answer and is kept in the data dir, so a restarted node serves orders even
//! while every coordinator is down.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use prost::Message as _;
use surge_proto::v1::{HeartbeatResponse, NodeDirectory, ShardRoute};
use surge_raftstore::keys;
use surge_raftstore::{Cf, Engine, EngineError, WriteBatch};

/// The routing table and tenants as of the last heartbeat answer.
#[derive(Clone, Debug, Default)]
pub struct Directory {
    pub shard_count: u32,
    pub shards: HashMap<u32, ShardRoute>,
    pub nodes: HashMap<u64, String>,
    /// SHA-256 hex of an API key → tenant id.
    pub keys: HashMap<String, u64>,
}

pub type SharedDirectory = Arc<RwLock<Directory>>;

/// Lets a caller ask the heartbeat loop for an early heartbeat and see when the directory
/// was taken in again (its version bumps on every heartbeat answer).
#[derive(Clone)]
pub struct DirectoryRefresh {
    pub wanted: Arc<tokio::sync::Notify>,
    pub version: tokio::sync::watch::Receiver<u64>,
}

fn directory_key() -> Vec<u8> {
    keys::data_key(u64::MAX, b"directory")
}

use surge_proto::auth::key_digest;

impl Directory {
    pub fn from_heartbeat(resp: &HeartbeatResponse) -> Directory {
        let shards = resp.shards.iter().map(|s| (s.id, s.clone())).collect();
        let nodes = resp
            .nodes
            .iter()
            .map(|n| (n.id, n.address.clone()))
            .collect();
        let keys = resp
            .tenants
            .iter()
            .flat_map(|t| t.key_hashes.iter().map(move |h| (h.clone(), t.id)))
            .collect();
        Directory {
            shard_count: resp.shard_count,
            shards,
            nodes,
            keys,
        }
    }

    pub fn is_loaded(&self) -> bool {
        self.shard_count > 0
    }

    /// The tenant an API key belongs to.
    pub fn tenant_of_key(&self, api_key: &str) -> Option<u64> {
        self.keys.get(&key_digest(api_key)).copied()
    }

    pub fn address(&self, node: u64) -> Option<&str> {
        self.nodes.get(&node).map(String::as_str)
    }
}

/// Keeps the last heartbeat answer in the data dir.
pub fn save<E: Engine + ?Sized>(engine: &E, resp: &HeartbeatResponse) -> Result<(), EngineError> {
    let record = NodeDirectory {
        last: Some(resp.clone()),
    };
    let mut batch = WriteBatch::default();
    batch.put(Cf::Meta, directory_key(), record.encode_to_vec());
    engine.write(&batch, false)
}

/// The directory kept by [`save`], if any.
pub fn load<E: Engine + ?Sized>(engine: &E) -> Result<Option<HeartbeatResponse>, EngineError> {
    let key = directory_key();
    let Some(raw) = engine.get(Cf::Meta, &key)? else {
        return Ok(None);
    };
    NodeDirectory::decode(raw.as_slice())
        .map(|d| d.last)
        .map_err(|e| EngineError::Corrupt {
            cf: Cf::Meta,
            key,
            reason: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use surge_proto::v1::{NodeAddress, TenantKeys};
    use surge_raftstore::MemEngine;

    #[test]
    fn keys_resolve_to_tenants_and_the_directory_survives_a_restart() -> Result<(), EngineError> {
        let resp = HeartbeatResponse {
            shard_count: 4,
            nodes: vec![NodeAddress {
                id: 2,
                address: "127.0.0.1:7201".into(),
            }],
            tenants: vec![TenantKeys {
                id: 5,
                name: "acme".into(),
                key_hashes: vec![key_digest("sk-acme")],
            }],
            ..HeartbeatResponse::default()
        };
        let engine = MemEngine::new();
        assert_eq!(load(&engine)?, None);
        save(&engine, &resp)?;
        let dir = Directory::from_heartbeat(&load(&engine)?.unwrap_or_default());
        assert_eq!(dir.tenant_of_key("sk-acme"), Some(5));
        assert_eq!(dir.tenant_of_key("sk-other"), None);
        assert_eq!(dir.address(2), Some("127.0.0.1:7201"));
        assert!(dir.is_loaded());
        Ok(())
    }
}
