//! Received snapshots staged off the raft loop. The transport hands each assembled snapshot to a
//! [`SnapshotStaging`], which writes its rows aside as engine files (RocksDB: SST files) and
//! replaces them in the message by the files' names. The loop then installs the snapshot with
//! a write of the Raft state alone and ingests the files once that write is durable
//! ([`crate::GroupStorage::stage_snapshot`]): a few milliseconds of its time, where writing every
//! row through the WAL took hundreds (TiKV applies snapshots by SST ingestion for the same reason).

use std::sync::Arc;

use surge_proto::v1::{SnapshotData, SnapshotRow};

use crate::engine::{Cf, Engine, EngineError, FamilyRow};
use crate::families::RAFT_STATE;
use crate::keys;

/// Stages a received snapshot's rows for the process's engine.
pub trait SnapshotStaging: Send + Sync + 'static {
    /// Writes `data`'s rows for `group` aside and returns `data` naming the files instead.
    fn stage(&self, group: u64, data: SnapshotData) -> Result<SnapshotData, EngineError>;

    /// Removes what [`SnapshotStaging::stage`] wrote for a snapshot that will not be installed.
    fn discard(&self, data: &SnapshotData);
}

/// [`SnapshotStaging`] on an [`Engine`].
pub struct EngineStaging<E: Engine> {
    engine: Arc<E>,
}

impl<E: Engine> EngineStaging<E> {
    pub fn new(engine: Arc<E>) -> Arc<EngineStaging<E>> {
        Arc::new(EngineStaging { engine })
    }
}

impl<E: Engine> SnapshotStaging for EngineStaging<E> {
    fn stage(&self, group: u64, mut data: SnapshotData) -> Result<SnapshotData, EngineError> {
        if !data.staged_files.is_empty() {
            return Err(corrupt(b"", "staged_files: set by the sender"));
        }
        let families = self.engine.group_families();
        let rows = group_rows(&families, group, std::mem::take(&mut data.rows))?;
        let start = keys::group_prefix(group);
        let end = keys::group_end(group);
        data.staged_files = self
            .engine
            .stage_replacement(&families, &start, &end, rows)?;
        Ok(data)
    }

    fn discard(&self, data: &SnapshotData) {
        self.engine.discard_staged(&data.staged_files);
    }
}

/// A snapshot's rows with their families, each checked to be a row of `group` in one of
/// `families` (the engine's per-group families).
pub(crate) fn group_rows(
    families: &[Cf],
    group: u64,
    rows: Vec<SnapshotRow>,
) -> Result<Vec<FamilyRow>, EngineError> {
    let prefix = keys::group_prefix(group);
    rows.into_iter()
        .map(|row| {
            let cf = families
                .iter()
                .copied()
                .find(|cf| cf.code() == row.cf)
                .ok_or_else(|| corrupt(&row.key, "snapshot row in unknown family"))?;
            if !row.key.starts_with(&prefix) {
                return Err(corrupt(&row.key, "snapshot row outside the group"));
            }
            Ok((cf, row.key, row.value))
        })
        .collect()
}

fn corrupt(key: &[u8], reason: &str) -> EngineError {
    EngineError::Corrupt {
        cf: RAFT_STATE,
        key: key.to_vec(),
        reason: reason.to_string(),
    }
}
