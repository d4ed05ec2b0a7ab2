//! Snapshots built off the Raft loop. Building one is a scan of every row of a group, and a
//! moving replica needs one: done on the loop thread it would stall every other group of the
//! process for as long as the scan takes (DESIGN.md §13). So, as TiKV's region worker does,
//! [`SnapshotWorker`] builds them on threads of its own from a point-in-time view of the
//! engine, and the group's storage answers raft-rs "temporarily unavailable" until one is
//! ready; raft-rs asks again on the follower's next heartbeat response and gets it.
//!
//! [`build_from_view`] is the one way a snapshot is made, on a worker or (with no worker, as
//! in the simulations) inline: the applied index, the configuration and epoch it had, the
//! term of that index and every data row, all read from one consistent view.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prost::Message as _;
use protobuf::Message as _;
use raft::eraftpb::{ConfState, Entry, Snapshot, SnapshotMetadata};
use surge_proto::v1::{RaftLocalState, SnapshotData, SnapshotRow};
use tracing::{debug, warn};

use crate::engine::{Cf, Engine, EngineError, ReadView};
use crate::families::{APPLY_STATE, RAFT_LOG, RAFT_STATE};
use crate::keys;

fn corrupt(cf: Cf, key: &[u8], reason: impl ToString) -> EngineError {
    EngineError::Corrupt {
        cf,
        key: key.to_vec(),
        reason: reason.to_string(),
    }
}

/// Builds `group`'s snapshot from `view`: its applied state, as one consistent whole. Also
/// answers the membership epoch of the snapshot's configuration.
pub fn build_from_view(
    view: &dyn ReadView,
    families: &[Cf],
    group: u64,
) -> Result<(Snapshot, u64), EngineError> {
    let key = keys::state_key(group);
    let local = match view.get(RAFT_STATE, &key)? {
        Some(raw) => {
            RaftLocalState::decode(raw.as_slice()).map_err(|e| corrupt(RAFT_STATE, &key, e))?
        }
        None => RaftLocalState::default(),
    };
    if !local.staged_files.is_empty() {
        // Between the write that installs a received snapshot and its files' ingestion (a
        // few milliseconds on the loop thread) the applied index is ahead of the data.
        return Err(EngineError::Backend(format!(
            "group {group} is installing a snapshot; try again"
        )));
    }
    let conf_state =
        ConfState::parse_from_bytes(&local.conf_state).map_err(|e| corrupt(RAFT_STATE, &key, e))?;
    let applied = match view.get(APPLY_STATE, &key)? {
        Some(raw) => u64::from_be_bytes(
            raw.as_slice()
                .try_into()
                .map_err(|_| corrupt(APPLY_STATE, &key, "applied index is not 8 bytes"))?,
        ),
        None => local.truncated_index,
    };
    let term = if applied == local.truncated_index {
        local.truncated_term
    } else {
        let log_key = keys::log_key(group, applied);
        let raw = view.get(RAFT_LOG, &log_key)?.ok_or_else(|| {
            EngineError::Backend(format!(
                "group {group} has no log entry at its applied index {applied}"
            ))
        })?;
        Entry::parse_from_bytes(&raw)
            .map_err(|e| corrupt(RAFT_LOG, &log_key, e))?
            .term
    };
    let prefix = keys::group_prefix(group);
    let end = keys::group_end(group);
    let mut rows = Vec::new();
    for &cf in families {
        view.scan(cf, &prefix, &end, &mut |k, v| {
            rows.push(SnapshotRow {
                cf: cf.code(),
                key: k.to_vec(),
                value: v.to_vec(),
            });
            true
        })?;
    }
    let data = SnapshotData {
        rows,
        applied_index: applied,
        conf_epoch: local.conf_epoch,
        member_since: local.member_since.clone(),
        staged_files: Vec::new(),
    };
    let meta = SnapshotMetadata {
        index: applied,
        term,
        conf_state: protobuf::SingularPtrField::some(conf_state),
        ..SnapshotMetadata::default()
    };
    let snap = Snapshot {
        data: data.encode_to_vec().into(),
        metadata: protobuf::SingularPtrField::some(meta),
        ..Snapshot::default()
    };
    Ok((snap, local.conf_epoch))
}

/// Builds `group`'s snapshot (and its epoch) from a fresh point-in-time view of `engine`.
pub fn build<E: Engine + ?Sized>(engine: &E, group: u64) -> Result<(Snapshot, u64), EngineError> {
    let families = engine.group_families();
    let mut out = None;
    engine.read_consistent(&mut |view| {
        out = Some(build_from_view(view, &families, group)?);
        Ok(())
    })?;
    out.ok_or_else(|| EngineError::Backend("the consistent read did not run".into()))
}

/// A ready snapshot is dropped if nobody takes it within this long (it holds a shard's rows).
const READY_FOR: Duration = Duration::from_secs(60);

enum Slot {
    Building,
    /// With the membership epoch of its configuration, and when it was built.
    Ready(Snapshot, u64, Instant),
}

/// Builds snapshots on threads of their own, a bounded number at once.
pub struct SnapshotWorker {
    slots: Mutex<HashMap<u64, Slot>>,
    max_building: usize,
}

impl SnapshotWorker {
    pub fn new(max_building: usize) -> Arc<SnapshotWorker> {
        Arc::new(SnapshotWorker {
            slots: Mutex::new(HashMap::new()),
            max_building: max_building.max(1),
        })
    }

    /// A ready snapshot of `group` at index `min_index` or later and at membership epoch
    /// `min_epoch` or later (an older configuration may not even name the replica it is for),
    /// taken out of the worker; otherwise a build is started (when there is room) and None
    /// answered.
    pub fn take_or_start<E: Engine>(
        self: &Arc<Self>,
        engine: &Arc<E>,
        group: u64,
        min_index: u64,
        min_epoch: u64,
    ) -> Option<Snapshot> {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots.retain(|_, s| !matches!(s, Slot::Ready(_, _, at) if at.elapsed() > READY_FOR));
        match slots.remove(&group) {
            Some(Slot::Ready(snap, epoch, _))
                if snap.get_metadata().index >= min_index && epoch >= min_epoch =>
            {
                return Some(snap);
            }
            Some(Slot::Building) => {
                slots.insert(group, Slot::Building);
                return None;
            }
            Some(Slot::Ready(..)) | None => {}
        }
        let building = slots
            .values()
            .filter(|s| matches!(s, Slot::Building))
            .count();
        if building >= self.max_building {
            return None;
        }
        slots.insert(group, Slot::Building);
        drop(slots);
        let (worker, engine) = (self.clone(), engine.clone());
        let spawned = std::thread::Builder::new()
            .name(format!("snapshot-{group}"))
            .spawn(move || {
                let started = Instant::now();
                let built = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    build(engine.as_ref(), group)
                }))
                .unwrap_or_else(|_| {
                    Err(EngineError::Backend("the snapshot build panicked".into()))
                });
                let mut slots = worker.slots.lock().unwrap_or_else(|p| p.into_inner());
                match built {
                    Ok((snap, epoch)) => {
                        debug!(
                            group,
                            index = snap.get_metadata().index,
                            bytes = snap.data.len(),
                            took_ms = started.elapsed().as_millis() as u64,
                            "snapshot built"
                        );
                        slots.insert(group, Slot::Ready(snap, epoch, Instant::now()));
                    }
                    Err(e) => {
                        warn!(group, error = %e, "building a snapshot failed");
                        slots.remove(&group);
                    }
                }
            });
        if spawned.is_err() {
            self.forget(group);
        }
        None
    }

    /// Drops ready snapshots nobody took in time (call now and then: they hold shards' rows).
    pub fn purge_expired(&self) {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots.retain(|_, s| !matches!(s, Slot::Ready(_, _, at) if at.elapsed() > READY_FOR));
    }

    /// Drops whatever is kept for `group` (it was destroyed).
    pub fn forget(&self, group: u64) {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        if matches!(slots.get(&group), Some(Slot::Ready(..))) {
            slots.remove(&group);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::WriteBatch;
    use crate::families::for_tests::{self, DATA};
    use crate::MemEngine;

    fn group_with_rows(engine: &MemEngine) -> Result<(), EngineError> {
        let mut batch = WriteBatch::default();
        let local = RaftLocalState {
            conf_state: ConfState {
                voters: vec![1, 2, 3],
                ..ConfState::default()
            }
            .write_to_bytes()
            .unwrap_or_default(),
            truncated_index: 4,
            truncated_term: 2,
            conf_epoch: 5,
            ..RaftLocalState::default()
        };
        batch.put(RAFT_STATE, keys::state_key(9), local.encode_to_vec());
        batch.put(APPLY_STATE, keys::state_key(9), 6u64.to_be_bytes().to_vec());
        let entry = Entry {
            index: 6,
            term: 3,
            ..Entry::default()
        };
        batch.put(
            RAFT_LOG,
            keys::log_key(9, 6),
            entry.write_to_bytes().unwrap_or_default(),
        );
        batch.put(DATA, keys::data_key(9, b"o1"), b"order".to_vec());
        batch.put(DATA, keys::data_key(10, b"o2"), b"not ours".to_vec());
        engine.write(&batch, true)
    }

    #[test]
    fn a_snapshot_pairs_the_applied_index_with_its_term_configuration_and_rows(
    ) -> Result<(), EngineError> {
        let engine = for_tests::engine();
        group_with_rows(&engine)?;
        let (snap, epoch) = build(&engine, 9)?;
        assert_eq!(epoch, 5);
        let meta = snap.get_metadata();
        assert_eq!((meta.index, meta.term), (6, 3));
        assert_eq!(meta.get_conf_state().voters, vec![1, 2, 3]);
        let data =
            SnapshotData::decode(snap.data.as_ref()).map_err(|e| corrupt(Cf::META, b"", e))?;
        assert_eq!((data.applied_index, data.conf_epoch), (6, 5));
        assert_eq!(data.rows.len(), 1);
        Ok(())
    }

    #[test]
    fn the_worker_builds_in_the_background_and_hands_the_snapshot_out_once(
    ) -> Result<(), EngineError> {
        let engine = Arc::new(for_tests::engine());
        group_with_rows(&engine)?;
        let worker = SnapshotWorker::new(1);
        assert!(
            worker.take_or_start(&engine, 9, 6, 5).is_none(),
            "not built yet"
        );
        let mut got = None;
        for _ in 0..200 {
            if let Some(s) = worker.take_or_start(&engine, 9, 6, 5) {
                got = Some(s);
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let snap = got.ok_or_else(|| EngineError::Backend("no snapshot built".into()))?;
        assert_eq!(snap.get_metadata().index, 6);
        // Handed out once: the next request starts another build.
        assert!(worker.take_or_start(&engine, 9, 6, 5).is_none());
        // A snapshot older than what is asked for is not handed out.
        std::thread::sleep(Duration::from_millis(100));
        assert!(worker.take_or_start(&engine, 9, 7, 5).is_none());
        std::thread::sleep(Duration::from_millis(100));
        assert!(
            worker.take_or_start(&engine, 9, 6, 6).is_none(),
            "nor by epoch"
        );
        Ok(())
    }
}
