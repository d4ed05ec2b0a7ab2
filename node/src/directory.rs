//! What a node knows of the cluster beyond its own replicas: the routing table (every shard's
//! replicas and last known leader), node addresses and tenants' API-key digests. It comes with
//! every heartbeat answer and is kept in the data dir, so a restarted node serves orders even
//! while every coordinator is down.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use prost::Message as _;
use surge_proto::v1::{HeartbeatResponse, KeyScope, NodeDirectory, ShardRoute, TenantLimits};
use surge_raftstore::keys;
use surge_raftstore::{Cf, Engine, EngineError, WriteBatch};
use surge_rules::TenantRules;
use tracing::warn;

/// The routing table and tenants as of the last heartbeat answer.
#[derive(Clone, Debug, Default)]
pub struct Directory {
    pub shard_count: u32,
    pub shards: HashMap<u32, ShardRoute>,
    /// Node id → client port.
    pub nodes: HashMap<u64, String>,
    /// Node id → peer port.
    pub peers: HashMap<u64, String>,
    /// Node id → the name in its certificate, bound when it registered (empty: none, the
    /// cluster runs in plaintext).
    pub certificates: HashMap<u64, String>,
    /// SHA-256 hex of an API key → the tenant and what the key may do.
    pub keys: HashMap<String, KeyGrant>,
    /// Tenant id → name.
    pub names: HashMap<u64, String>,
    /// Tenant id → its admission limits (none: no limits).
    pub limits: HashMap<u64, TenantLimits>,
    /// Each tenant's review and carrier rules, with their version. A tenant whose rules never
    /// parse here (the coordinator validated them, so only a newer rules format could) keeps
    /// the defaults: approve, allocate nothing.
    pub rules: HashMap<u64, (u64, Arc<TenantRules>)>,
    /// The coordinator's digest of this directory; a heartbeat sends it back, and the answer
    /// leaves the directory out while it is current.
    pub digest: Vec<u8>,
}

pub type SharedDirectory = Arc<RwLock<Directory>>;

/// Whose an API key is and what it may do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyGrant {
    pub tenant: u64,
    pub scopes: Vec<KeyScope>,
}

impl KeyGrant {
    pub fn has(&self, scope: KeyScope) -> bool {
        self.scopes.contains(&scope)
    }
}

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
    /// The directory of a heartbeat answer; rules whose version `previous` already parsed are
    /// reused.
    pub fn from_heartbeat_after(previous: &Directory, resp: &HeartbeatResponse) -> Directory {
        let mut dir = Directory::from_heartbeat_without_rules(resp);
        for t in &resp.tenants {
            if t.rules_version == 0 {
                continue;
            }
            let parsed = match previous.rules.get(&t.id) {
                Some((version, rules)) if *version == t.rules_version => rules.clone(),
                _ => match surge_rules::parse(&t.rules_toml) {
                    Ok(rules) => Arc::new(rules),
                    Err(e) => {
                        warn!(tenant = t.id, version = t.rules_version, error = %e, "tenant rules do not parse; using defaults");
                        Arc::new(TenantRules::default())
                    }
                },
            };
            dir.rules.insert(t.id, (t.rules_version, parsed));
        }
        dir
    }

    pub fn from_heartbeat(resp: &HeartbeatResponse) -> Directory {
        Directory::from_heartbeat_after(&Directory::default(), resp)
    }

    /// The rules of `tenant` (defaults when it never set any).
    pub fn rules_of(&self, tenant: u64) -> Arc<TenantRules> {
        self.rules
            .get(&tenant)
            .map(|(_, r)| r.clone())
            .unwrap_or_default()
    }

    fn from_heartbeat_without_rules(resp: &HeartbeatResponse) -> Directory {
        let shards = resp.shards.iter().map(|s| (s.id, s.clone())).collect();
        let nodes = resp
            .nodes
            .iter()
            .map(|n| (n.id, n.address.clone()))
            .collect();
        // Nodes from before the ports were split serve both on `address`.
        let peers = resp
            .nodes
            .iter()
            .map(|n| {
                let peer = match n.peer_address.is_empty() {
                    true => &n.address,
                    false => &n.peer_address,
                };
                (n.id, peer.clone())
            })
            .collect();
        let certificates = resp
            .nodes
            .iter()
            .map(|n| (n.id, n.certificate_name.clone()))
            .collect();
        // Digests without scopes come from coordinators older than scoped keys: such a key
        // could do everything but be read-only.
        let legacy = [KeyScope::Orders, KeyScope::Print];
        let keys = resp
            .tenants
            .iter()
            .flat_map(|t| {
                let old = t.key_hashes.iter().map(move |h| {
                    let grant = KeyGrant {
                        tenant: t.id,
                        scopes: legacy.to_vec(),
                    };
                    (h.clone(), grant)
                });
                let scoped = t.keys.iter().map(move |k| {
                    let scopes = k.scopes().collect();
                    (
                        k.hash.clone(),
                        KeyGrant {
                            tenant: t.id,
                            scopes,
                        },
                    )
                });
                old.chain(scoped)
            })
            .collect();
        Directory {
            shard_count: resp.shard_count,
            shards,
            nodes,
            peers,
            certificates,
            keys,
            names: resp
                .tenants
                .iter()
                .map(|t| (t.id, t.name.clone()))
                .collect(),
            limits: resp
                .tenants
                .iter()
                .filter_map(|t| t.limits.map(|l| (t.id, l)))
                .collect(),
            rules: HashMap::new(),
            digest: resp.directory_digest.clone(),
        }
    }

    pub fn is_loaded(&self) -> bool {
        self.shard_count > 0
    }

    /// The tenant an API key belongs to, and what the key may do.
    pub fn grant_of_key(&self, api_key: &str) -> Option<&KeyGrant> {
        self.keys.get(&key_digest(api_key))
    }

    /// The tenant an API key belongs to.
    pub fn tenant_of_key(&self, api_key: &str) -> Option<u64> {
        self.grant_of_key(api_key).map(|g| g.tenant)
    }

    /// Node `node`'s client port (OrderService, PrintService), as callers are told it.
    pub fn address(&self, node: u64) -> Option<&str> {
        self.nodes.get(&node).map(String::as_str)
    }

    /// Node `node`'s peer port (Raft, forwarded calls, snapshots).
    pub fn peer_address(&self, node: u64) -> Option<&str> {
        self.peers.get(&node).map(String::as_str)
    }

    /// Whether a certificate named `name` speaks for node `node`: the name the coordinators
    /// bound to the node when it registered.
    pub fn certificate_is(&self, node: u64, name: &str) -> bool {
        self.certificates
            .get(&node)
            .is_some_and(|bound| !bound.is_empty() && bound == name)
    }
}

/// Keeps the last heartbeat answer in the data dir.
pub fn save<E: Engine + ?Sized>(engine: &E, resp: &HeartbeatResponse) -> Result<(), EngineError> {
    let record = NodeDirectory {
        last: Some(resp.clone()),
    };
    let mut batch = WriteBatch::default();
    batch.put(Cf::META, directory_key(), record.encode_to_vec());
    engine.write(&batch, false)
}

/// The directory kept by [`save`], if any.
pub fn load<E: Engine + ?Sized>(engine: &E) -> Result<Option<HeartbeatResponse>, EngineError> {
    let key = directory_key();
    let Some(raw) = engine.get(Cf::META, &key)? else {
        return Ok(None);
    };
    NodeDirectory::decode(raw.as_slice())
        .map(|d| d.last)
        .map_err(|e| EngineError::Corrupt {
            cf: Cf::META,
            key,
            reason: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use surge_proto::v1::{NodeAddress, TenantKeys};
    use surge_raftstore::{Family, MemEngine};

    #[test]
    fn keys_resolve_to_tenants_and_the_directory_survives_a_restart() -> Result<(), EngineError> {
        let resp = HeartbeatResponse {
            shard_count: 4,
            nodes: vec![NodeAddress {
                id: 2,
                address: "127.0.0.1:7201".into(),
                peer_address: "127.0.0.1:7501".into(),
                certificate_name: "node-2".into(),
            }],
            tenants: vec![TenantKeys {
                id: 5,
                name: "acme".into(),
                key_hashes: vec![key_digest("sk-acme")],
                keys: vec![surge_proto::v1::ScopedKeyHash {
                    hash: key_digest("sk-print"),
                    scopes: vec![KeyScope::Print as i32, 99],
                }],
                ..TenantKeys::default()
            }],
            ..HeartbeatResponse::default()
        };
        let engine = MemEngine::new(&[Family::META]);
        assert_eq!(load(&engine)?, None);
        save(&engine, &resp)?;
        let dir = Directory::from_heartbeat(&load(&engine)?.unwrap_or_default());
        assert_eq!(dir.tenant_of_key("sk-acme"), Some(5));
        assert_eq!(dir.names.get(&5).map(String::as_str), Some("acme"));
        assert_eq!(dir.tenant_of_key("sk-other"), None);
        // A digest from before scoped keys may do everything but be read-only; an unknown
        // scope number (a newer coordinator's) grants nothing.
        let legacy = dir.grant_of_key("sk-acme").expect("legacy key");
        assert!(legacy.has(KeyScope::Orders) && legacy.has(KeyScope::Print));
        let print = dir.grant_of_key("sk-print").expect("print key");
        assert_eq!(print.tenant, 5);
        assert_eq!(print.scopes, [KeyScope::Print]);
        assert_eq!(dir.address(2), Some("127.0.0.1:7201"));
        assert!(dir.certificate_is(2, "node-2"));
        assert!(
            !dir.certificate_is(2, "node-4"),
            "another node's certificate"
        );
        assert!(!dir.certificate_is(3, "node-2"), "an unknown node");
        assert!(dir.is_loaded());
        Ok(())
    }
}
