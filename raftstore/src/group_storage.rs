//! [`GroupStorage`]: one Raft group's log, hard state, conf state and applied index on an
//! [`Engine`], implementing raft-rs's read-side `Storage` trait.
//!
//! Writes are *staged*: each `stage_*` call appends ops to a caller's [`WriteBatch`] and updates
//! the cached view at once (raft-rs must see appended entries before `advance`). The caller writes
//! the batch (synced) before it sends persisted messages or applies anything; a failed write is
//! fatal for the group, as in TiKV.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use prost::Message as _;
use protobuf::Message as _;
use raft::eraftpb::{ConfState, Entry, HardState, Snapshot};
use raft::{GetEntriesContext, RaftState, StorageError};
use surge_proto::v1::{MemberSince, RaftLocalState};

use crate::engine::{Cf, Engine, EngineError, WriteBatch};
use crate::families::{APPLY_STATE, RAFT_LOG, RAFT_STATE};
use crate::keys;
use crate::snapshot_worker::SnapshotWorker;

mod install;
mod open;

/// The index of the implicit snapshot a bootstrapped group starts from.
pub const BOOTSTRAP_INDEX: u64 = 1;
/// The term of that implicit snapshot.
pub const BOOTSTRAP_TERM: u64 = 1;

/// The cached, always-current view of a group's Raft bookkeeping.
#[derive(Clone, Debug, Default, PartialEq)]
struct LocalState {
    hard_state: HardState,
    conf_state: ConfState,
    truncated_index: u64,
    truncated_term: u64,
    last_index: u64,
    last_term: u64,
    /// The membership epoch of `conf_state`: bumped by every applied membership change.
    conf_epoch: u64,
    /// Member → the epoch it (last) joined at.
    member_since: BTreeMap<u64, u64>,
    /// A snapshot's staged files, named in the Raft state until they are ingested.
    staged_files: Vec<String>,
}

/// One Raft group's storage on a shared engine.
pub struct GroupStorage<E: Engine> {
    engine: Arc<E>,
    group: u64,
    state: LocalState,
    applied: u64,
    /// Builds snapshots off the loop thread; None: inline (the simulations).
    worker: Option<Arc<SnapshotWorker>>,
}

/// Stages the removal of every row of `group`: its log, Raft state, applied index and data
/// (every family of `engine` that holds rows of a group).
pub fn stage_destroy<E: Engine + ?Sized>(engine: &E, group: u64, batch: &mut WriteBatch) {
    let prefix = keys::group_prefix(group).to_vec();
    let end = keys::group_end(group);
    batch.delete_range(RAFT_LOG, prefix.clone(), end.clone());
    batch.delete(RAFT_STATE, keys::state_key(group));
    batch.delete(APPLY_STATE, keys::state_key(group));
    for cf in engine.group_families() {
        batch.delete_range(cf, prefix.clone(), end.clone());
    }
}

/// Every member of `cs`: voters (both halves of a joint configuration) and learners.
fn members(cs: &ConfState) -> BTreeSet<u64> {
    cs.voters
        .iter()
        .chain(&cs.voters_outgoing)
        .chain(&cs.learners)
        .chain(&cs.learners_next)
        .copied()
        .collect()
}

/// The join epochs as stored: sorted by id.
pub(crate) fn since_rows(map: &BTreeMap<u64, u64>) -> Vec<MemberSince> {
    map.iter()
        .map(|(id, epoch)| MemberSince {
            id: *id,
            epoch: *epoch,
        })
        .collect()
}

fn corrupt(cf: Cf, key: &[u8], reason: impl ToString) -> EngineError {
    EngineError::Corrupt {
        cf,
        key: key.to_vec(),
        reason: reason.to_string(),
    }
}

fn to_raft(e: EngineError) -> raft::Error {
    raft::Error::Store(StorageError::Other(Box::new(e)))
}

fn decode_entry(key: &[u8], value: &[u8]) -> Result<Entry, EngineError> {
    Entry::parse_from_bytes(value).map_err(|e| corrupt(RAFT_LOG, key, e))
}

impl<E: Engine> GroupStorage<E> {
    pub fn group(&self) -> u64 {
        self.group
    }

    pub fn engine(&self) -> &Arc<E> {
        &self.engine
    }

    /// True once the group has a configuration or any log: it must not be bootstrapped again.
    pub fn is_initialized(&self) -> bool {
        let cs = &self.state.conf_state;
        !cs.voters.is_empty() || !cs.learners.is_empty() || self.state.last_index > 0
    }

    /// Stages the very first state of a group that starts with these voters at membership
    /// epoch `epoch`: an implicit snapshot at [`BOOTSTRAP_INDEX`] (TiKV's way), so the log
    /// proper starts after it. Every founding replica stages the same state (and the caller the
    /// same initial rows); a replica added later has nothing below that index and is caught up
    /// by a real snapshot, which carries those rows too.
    pub fn stage_bootstrap(&mut self, voters: &[u64], epoch: u64, batch: &mut WriteBatch) {
        self.state.conf_state = ConfState {
            voters: voters.to_vec(),
            ..ConfState::default()
        };
        self.state.conf_epoch = epoch;
        self.state.member_since = voters.iter().map(|v| (*v, epoch)).collect();
        self.state.truncated_index = BOOTSTRAP_INDEX;
        self.state.truncated_term = BOOTSTRAP_TERM;
        self.state.last_index = BOOTSTRAP_INDEX;
        self.state.last_term = BOOTSTRAP_TERM;
        self.state.hard_state.term = BOOTSTRAP_TERM;
        self.state.hard_state.commit = BOOTSTRAP_INDEX;
        self.stage_local_state(batch);
        self.stage_applied(BOOTSTRAP_INDEX, batch);
    }

    /// Records the epoch an empty replica was created at (it joins a group that already
    /// exists and waits for a snapshot): messages from before that epoch are not for it.
    /// No-op once the replica holds any state.
    pub fn stage_creation_epoch(&mut self, epoch: u64, batch: &mut WriteBatch) {
        if self.is_initialized() || self.state.conf_epoch >= epoch {
            return;
        }
        self.state.conf_epoch = epoch;
        self.stage_local_state(batch);
    }

    /// A group written before membership epochs were kept holds state at epoch 0; it had no
    /// membership change since it was founded, so it is at `founding` with every member
    /// joined then.
    pub fn stage_legacy_epoch(&mut self, founding: u64, batch: &mut WriteBatch) {
        if !self.is_initialized() || self.state.conf_epoch != 0 {
            return;
        }
        self.state.conf_epoch = founding;
        self.state.member_since = members(&self.state.conf_state)
            .into_iter()
            .map(|id| (id, founding))
            .collect();
        self.stage_local_state(batch);
    }

    pub fn hard_state(&self) -> &HardState {
        &self.state.hard_state
    }

    /// The membership epoch of the latest applied configuration (staged or written).
    pub fn conf_epoch(&self) -> u64 {
        self.state.conf_epoch
    }

    pub fn conf_state(&self) -> &ConfState {
        &self.state.conf_state
    }

    /// The index the state machine's durable data covers; `Config.applied` on restart.
    pub fn applied_index(&self) -> u64 {
        self.applied
    }

    pub fn first_log_index(&self) -> u64 {
        self.state.truncated_index + 1
    }

    pub(crate) fn stage_local_state(&self, batch: &mut WriteBatch) {
        let record = RaftLocalState {
            hard_state: self.state.hard_state.write_to_bytes().unwrap_or_default(),
            conf_state: self.state.conf_state.write_to_bytes().unwrap_or_default(),
            truncated_index: self.state.truncated_index,
            truncated_term: self.state.truncated_term,
            conf_epoch: self.state.conf_epoch,
            member_since: since_rows(&self.state.member_since),
            staged_files: self.state.staged_files.clone(),
        };
        batch.put(
            RAFT_STATE,
            keys::state_key(self.group),
            record.encode_to_vec(),
        );
    }

    /// Appends entries, dropping any existing suffix they conflict with.
    pub fn stage_entries(&mut self, entries: &[Entry], batch: &mut WriteBatch) {
        let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
            return;
        };
        debug_assert!(
            first.index > self.state.truncated_index,
            "append below truncation"
        );
        for entry in entries {
            let value = entry.write_to_bytes().unwrap_or_default();
            batch.put(RAFT_LOG, keys::log_key(self.group, entry.index), value);
        }
        if last.index < self.state.last_index {
            batch.delete_range(
                RAFT_LOG,
                keys::log_key(self.group, last.index + 1),
                keys::log_key(self.group, self.state.last_index + 1),
            );
        }
        self.state.last_index = last.index;
        self.state.last_term = last.term;
    }

    pub fn stage_hard_state(&mut self, hs: &HardState, batch: &mut WriteBatch) {
        self.state.hard_state = hs.clone();
        self.stage_local_state(batch);
    }

    /// Persists a commit index learned after the hard state was written (LightReady).
    pub fn stage_commit(&mut self, commit: u64, batch: &mut WriteBatch) {
        if commit > self.state.hard_state.commit {
            self.state.hard_state.commit = commit;
            self.stage_local_state(batch);
        }
    }

    /// Records the configuration an applied membership change produced; its epoch is the
    /// next one.
    pub fn stage_conf_state(&mut self, cs: &ConfState, batch: &mut WriteBatch) {
        self.state.conf_epoch = self.state.conf_epoch.saturating_add(1);
        let epoch = self.state.conf_epoch;
        let now = members(cs);
        self.state.member_since.retain(|id, _| now.contains(id));
        for id in now {
            self.state.member_since.entry(id).or_insert(epoch);
        }
        self.state.conf_state = cs.clone();
        self.stage_local_state(batch);
    }

    /// The epoch `id` (last) joined the group at; 0 if unknown (a founding member of data
    /// written before join epochs were kept).
    pub fn member_since(&self, id: u64) -> u64 {
        self.state.member_since.get(&id).copied().unwrap_or(0)
    }

    /// Records the applied index; the caller puts the data it covers in the same batch.
    pub fn stage_applied(&mut self, index: u64, batch: &mut WriteBatch) {
        self.applied = index;
        batch.put(
            APPLY_STATE,
            keys::state_key(self.group),
            index.to_be_bytes().to_vec(),
        );
    }

    /// Drops log entries up to and including `compact_to`, which must be applied.
    pub fn stage_compact(
        &mut self,
        compact_to: u64,
        batch: &mut WriteBatch,
    ) -> Result<(), EngineError> {
        if compact_to <= self.state.truncated_index {
            return Ok(());
        }
        let compact_to = compact_to.min(self.applied).min(self.state.last_index);
        if compact_to <= self.state.truncated_index {
            return Ok(());
        }
        let term = self.term_of(compact_to)?;
        batch.delete_range(
            RAFT_LOG,
            keys::log_key(self.group, self.state.truncated_index + 1),
            keys::log_key(self.group, compact_to + 1),
        );
        self.state.truncated_index = compact_to;
        self.state.truncated_term = term;
        self.stage_local_state(batch);
        Ok(())
    }

    /// Builds a snapshot of the applied state, as written: every data row of the group.
    pub fn build_snapshot(&self) -> Result<Snapshot, EngineError> {
        crate::snapshot_worker::build(self.engine.as_ref(), self.group).map(|(snap, _)| snap)
    }

    /// Builds this group's snapshots on `worker`, off the thread that drives raft-rs.
    pub fn set_snapshot_worker(&mut self, worker: Arc<SnapshotWorker>) {
        self.worker = Some(worker);
    }

    fn term_of(&self, idx: u64) -> Result<u64, EngineError> {
        match raft::Storage::term(self, idx) {
            Ok(term) => Ok(term),
            Err(e) => Err(EngineError::Backend(format!(
                "group {} has no term for index {idx}: {e}",
                self.group
            ))),
        }
    }

    fn read_entry(&self, idx: u64) -> Result<Option<Entry>, EngineError> {
        let key = keys::log_key(self.group, idx);
        match self.engine.get(RAFT_LOG, &key)? {
            Some(v) => decode_entry(&key, &v).map(Some),
            None => Ok(None),
        }
    }
}

impl<E: Engine> raft::Storage for GroupStorage<E> {
    fn initial_state(&self) -> raft::Result<RaftState> {
        Ok(RaftState::new(
            self.state.hard_state.clone(),
            self.state.conf_state.clone(),
        ))
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        if low <= self.state.truncated_index {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if high > self.state.last_index + 1 {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        let max_size = max_size.into().unwrap_or(u64::MAX);
        let mut entries = Vec::with_capacity((high - low).min(1024) as usize);
        let mut size = 0u64;
        let mut failure = None;
        let start = keys::log_key(self.group, low);
        let end = keys::log_key(self.group, high);
        self.engine
            .scan(
                RAFT_LOG,
                &start,
                &end,
                &mut |k, v| match decode_entry(k, v) {
                    Ok(entry) => {
                        size += u64::from(protobuf::Message::compute_size(&entry));
                        if !entries.is_empty() && size > max_size {
                            return false;
                        }
                        entries.push(entry);
                        true
                    }
                    Err(e) => {
                        failure = Some(e);
                        false
                    }
                },
            )
            .map_err(to_raft)?;
        if let Some(e) = failure {
            return Err(to_raft(e));
        }
        let expected_first = entries.first().map(|e| e.index);
        if expected_first != Some(low) && low < high {
            return Err(to_raft(EngineError::Backend(format!(
                "group {} log has a hole at index {low}",
                self.group
            ))));
        }
        Ok(entries)
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        if idx == self.state.truncated_index {
            return Ok(self.state.truncated_term);
        }
        if idx < self.state.truncated_index {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if idx > self.state.last_index {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        if idx == self.state.last_index {
            return Ok(self.state.last_term);
        }
        match self.read_entry(idx).map_err(to_raft)? {
            Some(entry) => Ok(entry.term),
            None => Err(raft::Error::Store(StorageError::Unavailable)),
        }
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(self.state.truncated_index + 1)
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(self.state.last_index)
    }

    fn snapshot(&self, request_index: u64, _to: u64) -> raft::Result<Snapshot> {
        // Older than the log's start, a snapshot would leave the follower a gap.
        let min_index = request_index.max(self.state.truncated_index);
        let snap = match &self.worker {
            Some(worker) => {
                worker.take_or_start(&self.engine, self.group, min_index, self.state.conf_epoch)
            }
            None => Some(self.build_snapshot().map_err(to_raft)?),
        };
        match snap {
            Some(snap) if snap.get_metadata().index >= min_index => Ok(snap),
            _ => Err(raft::Error::Store(
                StorageError::SnapshotTemporarilyUnavailable,
            )),
        }
    }
}
