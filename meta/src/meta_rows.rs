//! Where the coordinator's records live: every row is JSON in the `meta` family under group 0,
//! so a Raft snapshot of the group carries them as they are. Keys are a prefix and an id or
//! name.

use serde::de::DeserializeOwned;
use serde::Serialize;
use surge_storage::{keys, Cf, Engine, EngineError, WriteBatch};

/// The coordinator's Raft group.
pub const META_GROUP: u64 = 0;

pub const CLUSTER_KEY: &[u8] = b"cluster";
pub const SETTINGS_KEY: &[u8] = b"settings";
pub const COORD_PREFIX: &[u8] = b"coord/";
pub const NODE_PREFIX: &[u8] = b"node/";
pub const SHARD_PREFIX: &[u8] = b"shard/";
pub const INSTANCE_PREFIX: &[u8] = b"instance/";
pub const NEXT_NODE_KEY: &[u8] = b"seq/node";
pub const TENANT_PREFIX: &[u8] = b"tenant/";
pub const NEXT_TENANT_KEY: &[u8] = b"seq/tenant";
pub const RANGE_PREFIX: &[u8] = b"waybill-range/";
pub const LEASE_PREFIX: &[u8] = b"waybill-lease/";
pub const NEXT_RANGE_KEY: &[u8] = b"seq/waybill-range";
pub const OPERATOR_PREFIX: &[u8] = b"operator/";
pub const FINISHED_PREFIX: &[u8] = b"operator-done/";
pub const OPERATOR_TOTALS_KEY: &[u8] = b"operator-totals";
pub const TOKEN_PREFIX: &[u8] = b"token/";
pub const NEXT_TOKEN_KEY: &[u8] = b"seq/token";
pub const AUDIT_PREFIX: &[u8] = b"audit/";
pub const NEXT_AUDIT_KEY: &[u8] = b"seq/audit";

pub fn lease_key(shard: u32, tenant: u64, carrier: &str) -> Vec<u8> {
    let mut suffix = LEASE_PREFIX.to_vec();
    suffix.extend_from_slice(&shard.to_be_bytes());
    suffix.extend_from_slice(&tenant.to_be_bytes());
    suffix.extend_from_slice(carrier.as_bytes());
    keys::data_key(META_GROUP, &suffix)
}

pub fn id_key(prefix: &[u8], id: u64) -> Vec<u8> {
    let mut suffix = prefix.to_vec();
    suffix.extend_from_slice(&id.to_be_bytes());
    keys::data_key(META_GROUP, &suffix)
}

pub fn named_key(prefix: &[u8], name: &str) -> Vec<u8> {
    let mut suffix = prefix.to_vec();
    suffix.extend_from_slice(name.as_bytes());
    keys::data_key(META_GROUP, &suffix)
}

pub fn single_key(key: &[u8]) -> Vec<u8> {
    keys::data_key(META_GROUP, key)
}

pub fn put_json<T: Serialize>(batch: &mut WriteBatch, key: Vec<u8>, value: &T) {
    // Serializing these plain records cannot fail; an empty value would fail loudly on reload.
    batch.put(Cf::META, key, serde_json::to_vec(value).unwrap_or_default());
}

/// Visits every row under `prefix`, decoded.
pub fn scan_rows<E: Engine + ?Sized, T: DeserializeOwned>(
    engine: &E,
    prefix: &[u8],
    mut each: impl FnMut(T),
) -> Result<(), EngineError> {
    let start = keys::data_key(META_GROUP, prefix);
    let end = keys::prefix_end(&start);
    let mut failure = None;
    engine.scan(
        Cf::META,
        &start,
        &end,
        &mut |k, v| match serde_json::from_slice(v) {
            Ok(row) => {
                each(row);
                true
            }
            Err(e) => {
                failure = Some(EngineError::Corrupt {
                    cf: Cf::META,
                    key: k.to_vec(),
                    reason: e.to_string(),
                });
                false
            }
        },
    )?;
    failure.map_or(Ok(()), Err)
}

/// The row at `key`, decoded.
pub fn get_row<E: Engine + ?Sized, T: DeserializeOwned>(
    engine: &E,
    key: &[u8],
) -> Result<Option<T>, EngineError> {
    let full = keys::data_key(META_GROUP, key);
    match engine.get(Cf::META, &full)? {
        Some(v) => serde_json::from_slice(&v)
            .map(Some)
            .map_err(|e| EngineError::Corrupt {
                cf: Cf::META,
                key: full,
                reason: e.to_string(),
            }),
        None => Ok(None),
    }
}
