//! Installing a snapshot received from the leader, with its rows either in the message (the
//! in-process simulations) or staged as engine files by the transport
//! ([`crate::snapshot_staging`]), ingested once the Raft state naming them is durable.

use prost::Message as _;
use raft::eraftpb::Snapshot;
use surge_proto::v1::SnapshotData;

use super::{corrupt, GroupStorage};
use crate::engine::{Engine, EngineError, WriteBatch};
use crate::families::{RAFT_LOG, RAFT_STATE};
use crate::keys;
use crate::snapshot_staging::group_rows;

impl<E: Engine> GroupStorage<E> {
    /// Installs a snapshot received from the leader: replaces the log, the conf state and every
    /// data row of the group, and moves the applied index to the snapshot's. Rows carried in
    /// the snapshot go into `batch`; staged rows are named in the Raft state, and the caller
    /// calls [`GroupStorage::ingest_staged`] once `batch` is durable, before anything reads the
    /// group's data.
    pub fn stage_snapshot(
        &mut self,
        snap: &Snapshot,
        batch: &mut WriteBatch,
    ) -> Result<(), EngineError> {
        let meta = snap.get_metadata();
        let data = SnapshotData::decode(snap.data.as_ref())
            .map_err(|e| corrupt(RAFT_STATE, &keys::state_key(self.group), e))?;
        batch.delete_range(
            RAFT_LOG,
            keys::log_key(self.group, 0),
            keys::group_end(self.group),
        );
        if data.staged_files.is_empty() {
            let families = self.engine.group_families();
            let rows = group_rows(&families, self.group, data.rows)?;
            let prefix = keys::group_prefix(self.group);
            let end = keys::group_end(self.group);
            for cf in families {
                batch.delete_range(cf, prefix.to_vec(), end.clone());
            }
            for (cf, key, value) in rows {
                batch.put(cf, key, value);
            }
        }
        self.state.staged_files = data.staged_files;
        self.state.truncated_index = meta.index;
        self.state.truncated_term = meta.term;
        self.state.last_index = meta.index;
        self.state.last_term = meta.term;
        self.state.conf_state = meta.get_conf_state().clone();
        self.state.conf_epoch = data.conf_epoch;
        self.state.member_since = data.member_since.iter().map(|m| (m.id, m.epoch)).collect();
        if self.state.hard_state.commit < meta.index {
            self.state.hard_state.commit = meta.index;
        }
        if self.state.hard_state.term < meta.term {
            self.state.hard_state.term = meta.term;
        }
        self.stage_local_state(batch);
        self.stage_applied(meta.index, batch);
        Ok(())
    }

    /// Ingests the installed snapshot's staged files, if it had any, and stages the Raft state
    /// that no longer names them into `batch`. Replaying after a crash is safe: an ingested
    /// file is gone, and nothing was applied on top of the snapshot before the state that
    /// drops the names (which is written with, or before, the first entries applied after it).
    pub fn ingest_staged(&mut self, batch: &mut WriteBatch) -> Result<(), EngineError> {
        if self.state.staged_files.is_empty() {
            return Ok(());
        }
        let started = std::time::Instant::now();
        self.engine.ingest_staged(&self.state.staged_files)?;
        tracing::debug!(
            group = self.group,
            files = self.state.staged_files.len(),
            ms = started.elapsed().as_millis() as u64,
            "snapshot files ingested"
        );
        self.state.staged_files.clear();
        self.stage_local_state(batch);
        Ok(())
    }

    /// At open: finishes a snapshot installation the process stopped in the middle of.
    pub(super) fn recover_staged(&mut self) -> Result<(), EngineError> {
        if self.state.staged_files.is_empty() {
            return Ok(());
        }
        tracing::info!(
            group = self.group,
            files = self.state.staged_files.len(),
            "finishing a snapshot installation interrupted by a stop"
        );
        let mut batch = WriteBatch::default();
        self.ingest_staged(&mut batch)?;
        self.engine.write(&batch, true)
    }
}
