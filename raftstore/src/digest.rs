//! [`group_digest`]: a fingerprint of one group's replica — every state-machine row and the
//! applied index they cover, read from one point-in-time view — so replicas of a group can be
//! compared (`surgectl shard verify`). Runs off the Raft loop, against the engine.

use prost::Message as _;
use sha2::{Digest, Sha256};
use surge_proto::v1::RaftLocalState;

use crate::engine::{Engine, EngineError, ReadView};
use crate::families::{APPLY_STATE, RAFT_STATE};
use crate::keys;

/// One replica's fingerprint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupDigest {
    pub applied_index: u64,
    pub epoch: u64,
    /// SHA-256 over every (family, key, value) of the group's data, in family then key order.
    pub digest: [u8; 32],
    pub rows: u64,
    pub bytes: u64,
}

impl GroupDigest {
    pub fn hex(&self) -> String {
        self.digest.iter().map(|b| format!("{b:02x}")).collect()
    }
}

fn read_applied(view: &dyn ReadView, group: u64) -> Result<u64, EngineError> {
    let key = keys::state_key(group);
    match view.get(APPLY_STATE, &key)? {
        None => Ok(0),
        Some(raw) => raw
            .as_slice()
            .try_into()
            .map(u64::from_be_bytes)
            .map_err(|_| EngineError::Corrupt {
                cf: APPLY_STATE,
                key,
                reason: "applied index is not 8 bytes".into(),
            }),
    }
}

fn read_epoch(view: &dyn ReadView, group: u64) -> Result<u64, EngineError> {
    let key = keys::state_key(group);
    match view.get(RAFT_STATE, &key)? {
        None => Ok(0),
        Some(raw) => {
            let local =
                RaftLocalState::decode(raw.as_slice()).map_err(|e| EngineError::Corrupt {
                    cf: RAFT_STATE,
                    key,
                    reason: e.to_string(),
                })?;
            if !local.staged_files.is_empty() {
                // The applied index is ahead of the data until the snapshot's files are in.
                return Err(EngineError::Backend(format!(
                    "group {group} is installing a snapshot; try again"
                )));
            }
            Ok(local.conf_epoch)
        }
    }
}

/// Fingerprints `group`'s replica on `engine`.
pub fn group_digest<E: Engine + ?Sized>(
    engine: &E,
    group: u64,
) -> Result<GroupDigest, EngineError> {
    let mut out = None;
    engine.read_consistent(&mut |view| {
        let applied_index = read_applied(view, group)?;
        let epoch = read_epoch(view, group)?;
        let prefix = keys::group_prefix(group);
        let end = keys::group_end(group);
        let mut hasher = Sha256::new();
        let (mut rows, mut bytes) = (0u64, 0u64);
        for cf in engine.group_families() {
            view.scan(cf, &prefix, &end, &mut |k, v| {
                hasher.update(cf.code().to_be_bytes());
                hasher.update((k.len() as u64).to_be_bytes());
                hasher.update(k);
                hasher.update((v.len() as u64).to_be_bytes());
                hasher.update(v);
                rows += 1;
                bytes += (k.len() + v.len()) as u64;
                true
            })?;
        }
        out = Some(GroupDigest {
            applied_index,
            epoch,
            digest: hasher.finalize().into(),
            rows,
            bytes,
        });
        Ok(())
    })?;
    out.ok_or_else(|| EngineError::Backend("the consistent read did not run".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::WriteBatch;
    use crate::families::for_tests::{self, DATA, OTHER};
    use crate::MemEngine;

    #[test]
    fn equal_rows_give_equal_digests_and_any_difference_shows() -> Result<(), EngineError> {
        let fill = |value: &[u8]| -> Result<MemEngine, EngineError> {
            let engine = for_tests::engine();
            let mut batch = WriteBatch::default();
            batch.put(DATA, keys::data_key(3, b"a"), b"x".to_vec());
            batch.put(OTHER, keys::data_key(3, b"b"), value.to_vec());
            // Another group's rows do not count.
            batch.put(DATA, keys::data_key(4, b"a"), b"other".to_vec());
            batch.put(APPLY_STATE, keys::state_key(3), 9u64.to_be_bytes().to_vec());
            engine.write(&batch, true)?;
            Ok(engine)
        };
        let a = group_digest(&fill(b"y")?, 3)?;
        let b = group_digest(&fill(b"y")?, 3)?;
        let c = group_digest(&fill(b"z")?, 3)?;
        assert_eq!(a, b);
        assert_ne!(a.digest, c.digest);
        // Two rows of a 9-byte key and a 1-byte value.
        assert_eq!((a.applied_index, a.rows, a.bytes), (9, 2, 20));
        assert_eq!(a.hex().len(), 64);
        Ok(())
    }
}
