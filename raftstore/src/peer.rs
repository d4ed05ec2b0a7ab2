//! [`Peer`]: one replica of one Raft group — a raft-rs `RawNode`, its storage and its state
//! machine — driven without any I/O of its own.
//!
//! The caller ticks, steps and proposes, then calls [`Peer::handle_ready`], which follows
//! raft-rs's documented order: persist snapshot, entries and HardState in one synced batch;
//! only then release persisted messages and apply committed entries; persist the commit index
//! with (never after) the data it lets us apply. The same code runs in the deterministic
//! simulation and in the processes.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use protobuf::Message as _;
use raft::eraftpb::{
    ConfChange, ConfChangeType, ConfChangeV2, ConfState, Entry, EntryType, Message,
};
use raft::{RawNode, ReadState, SoftState, StateRole};

use crate::config::RaftConfig;
use crate::engine::{Engine, EngineError, WriteBatch};
use crate::group_storage::GroupStorage;
use crate::metrics::write_timed;
use crate::state_machine::{MemberChange, Membership, StateMachine};

/// What applying one committed entry produced.
#[derive(Debug)]
pub enum ApplyResult<O> {
    /// A command; its output goes back to the proposer.
    Command(O),
    /// A membership change, with the configuration after it.
    ConfChange(ConfState),
    /// The empty entry a new leader appends, or an entry raft-rs blanked out.
    Empty,
}

/// One applied entry, with the proposer's context so it can be matched to its waiter.
#[derive(Debug)]
pub struct Applied<O> {
    pub index: u64,
    pub term: u64,
    pub context: Vec<u8>,
    pub result: ApplyResult<O>,
}

/// Everything a Ready produced that the driver must act on.
#[derive(Debug)]
pub struct ReadyOutput<O> {
    /// Messages to send; every one of them may go out now (persistence already happened).
    pub messages: Vec<Message>,
    pub applied: Vec<Applied<O>>,
    pub read_states: Vec<ReadState>,
    /// Set when the role or leader changed.
    pub soft_state: Option<SoftState>,
}

impl<O> Default for ReadyOutput<O> {
    fn default() -> Self {
        ReadyOutput {
            messages: Vec::new(),
            applied: Vec::new(),
            read_states: Vec::new(),
            soft_state: None,
        }
    }
}

/// A Ready whose writes are staged but not yet durable.
pub struct StagedReady {
    rd: raft::Ready,
    snapshot_installed: bool,
    messages: Vec<Message>,
    soft_state: Option<SoftState>,
}

/// An error that stops the peer: the engine failed or a persisted record was unreadable.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("raft: {0}")]
    Raft(#[from] raft::Error),
    #[error("committed entry {index} is undecodable: {reason}")]
    BadEntry { index: u64, reason: String },
}

/// A legacy single-change `ConfChange` as the equivalent `ConfChangeV2`.
fn v1_to_v2(mut cc: ConfChange) -> ConfChangeV2 {
    let mut single = raft::eraftpb::ConfChangeSingle {
        node_id: cc.node_id,
        ..Default::default()
    };
    single.set_change_type(cc.get_change_type());
    let mut v2 = ConfChangeV2::default();
    v2.mut_changes().push(single);
    v2.set_context(cc.take_context());
    v2
}

/// One replica of one Raft group.
pub struct Peer<E: Engine, S: StateMachine> {
    pub node: RawNode<GroupStorage<E>>,
    pub sm: S,
    group: u64,
    engine: Arc<E>,
    /// When each other replica was last heard from (any message), for liveness questions
    /// raft-rs's `recent_active` cannot answer: it is cleared every check-quorum round.
    last_heard: HashMap<u64, Instant>,
}

impl<E: Engine, S: StateMachine> Peer<E, S> {
    /// Builds a peer from what storage holds; `Config.applied` comes from the applied index.
    pub fn open(
        id: u64,
        storage: GroupStorage<E>,
        sm: S,
        config: &RaftConfig,
        logger: &slog::Logger,
    ) -> Result<Peer<E, S>, PeerError> {
        let group = storage.group();
        let engine = storage.engine().clone();
        let mut cfg = config.to_raft(id);
        cfg.applied = storage.applied_index();
        let node = RawNode::new(&cfg, storage, logger)?;
        Ok(Peer {
            node,
            sm,
            group,
            engine,
            last_heard: HashMap::new(),
        })
    }

    pub fn group(&self) -> u64 {
        self.group
    }

    pub fn engine(&self) -> &Arc<E> {
        &self.engine
    }

    /// Records that replica `from` was just heard from. Only members are recorded, so the
    /// map stays as small as the configuration whatever ids arrive over the network.
    pub fn note_heard(&mut self, from: u64) {
        let cs = self.conf_state();
        let member = [
            &cs.voters,
            &cs.learners,
            &cs.voters_outgoing,
            &cs.learners_next,
        ]
        .iter()
        .any(|ids| ids.contains(&from));
        if member {
            self.last_heard.insert(from, Instant::now());
        } else {
            self.last_heard.remove(&from);
        }
    }

    /// True if replica `id` was heard from within `within`.
    pub fn heard_within(&self, id: u64, within: Duration) -> bool {
        self.last_heard
            .get(&id)
            .is_some_and(|t| t.elapsed() <= within)
    }

    pub fn id(&self) -> u64 {
        self.node.raft.id
    }

    pub fn role(&self) -> StateRole {
        self.node.raft.state
    }

    pub fn is_leader(&self) -> bool {
        self.node.raft.state == StateRole::Leader
    }

    pub fn leader_id(&self) -> u64 {
        self.node.raft.leader_id
    }

    pub fn term(&self) -> u64 {
        self.node.raft.term
    }

    pub fn commit_index(&self) -> u64 {
        self.node.raft.raft_log.committed
    }

    pub fn applied_index(&self) -> u64 {
        self.node.store().applied_index()
    }

    pub fn conf_state(&self) -> &ConfState {
        self.node.store().conf_state()
    }

    /// The membership epoch of the applied configuration.
    pub fn epoch(&self) -> u64 {
        self.node.store().conf_epoch()
    }

    /// The epoch replica `id` (last) joined the group at (0 if unknown).
    pub fn member_since(&self, id: u64) -> u64 {
        self.node.store().member_since(id)
    }

    /// Processes one Ready, if there is one, with its own synced write.
    pub fn handle_ready(&mut self) -> Result<ReadyOutput<S::Output>, PeerError> {
        let mut batch = WriteBatch::default();
        let Some(staged) = self.begin_ready(&mut batch)? else {
            return Ok(ReadyOutput::default());
        };
        if !batch.is_empty() {
            write_timed(self.engine.as_ref(), &batch, true)?;
        }
        self.finish_ready(staged)
    }

    /// First half of a Ready: stages the snapshot, entries and HardState into `batch`, which
    /// the caller must write with `sync` (possibly merged with other groups' — group commit)
    /// before calling [`Peer::finish_ready`]. None when there is no Ready.
    pub fn begin_ready(
        &mut self,
        batch: &mut WriteBatch,
    ) -> Result<Option<StagedReady>, PeerError> {
        if !self.node.has_ready() {
            return Ok(None);
        }
        let mut rd = self.node.ready();
        let soft_state = rd.ss().map(|ss| SoftState {
            leader_id: ss.leader_id,
            raft_state: ss.raft_state,
        });
        // A leader's own messages may go out before its write is durable (raft-rs's rule).
        let messages = rd.take_messages();
        let snapshot_installed = !rd.snapshot().is_empty();
        if snapshot_installed {
            let snap = rd.snapshot().clone();
            self.node.mut_store().stage_snapshot(&snap, batch)?;
        }
        self.node.mut_store().stage_entries(rd.entries(), batch);
        if let Some(hs) = rd.hs() {
            let hs = hs.clone();
            self.node.mut_store().stage_hard_state(&hs, batch);
        }
        Ok(Some(StagedReady {
            rd,
            snapshot_installed,
            messages,
            soft_state,
        }))
    }

    /// Second half of a Ready, once its batch is durable: releases the persisted messages,
    /// applies committed entries (writing them with the applied index) and advances.
    pub fn finish_ready(
        &mut self,
        staged: StagedReady,
    ) -> Result<ReadyOutput<S::Output>, PeerError> {
        let mut batch = WriteBatch::default();
        let out = self.finish_ready_into(staged, &mut batch)?;
        if !batch.is_empty() {
            // Not synced on its own: the log it derives from is durable, and a lost apply batch
            // rolls back together with its applied index and is re-applied on restart.
            write_timed(self.engine.as_ref(), &batch, false)?;
        }
        self.apply_written();
        Ok(out)
    }

    /// [`Peer::finish_ready`], staging the applied entries and the applied index into `apply`
    /// (which may carry other groups' too) instead of writing them. The caller writes `apply`
    /// before anything else touches the peer (no step, no read served), then calls
    /// [`Peer::apply_written`].
    pub fn finish_ready_into(
        &mut self,
        staged: StagedReady,
        apply: &mut WriteBatch,
    ) -> Result<ReadyOutput<S::Output>, PeerError> {
        let StagedReady {
            mut rd,
            snapshot_installed,
            messages,
            soft_state,
        } = staged;
        let mut out = ReadyOutput {
            messages,
            soft_state,
            ..ReadyOutput::default()
        };
        if snapshot_installed {
            self.node.mut_store().ingest_staged(apply)?;
            self.sm.reload()?;
        }
        out.messages.extend(rd.take_persisted_messages());
        out.read_states = rd.take_read_states();

        let committed = rd.take_committed_entries();
        self.apply_entries(committed, None, apply, &mut out)?;

        let mut light = self.node.advance(rd);
        out.messages.extend(light.take_messages());
        let commit = light.commit_index();
        let committed = light.take_committed_entries();
        self.apply_entries(committed, commit, apply, &mut out)?;
        self.node.advance_apply();
        Ok(out)
    }

    /// The batch [`Peer::finish_ready_into`] staged has been written.
    pub fn apply_written(&mut self) {
        self.sm.on_batch_written();
    }

    /// Stages applied entries into `batch` with the applied index (and the commit index that
    /// covers them, when it was not persisted yet).
    fn apply_entries(
        &mut self,
        entries: Vec<Entry>,
        commit: Option<u64>,
        batch: &mut WriteBatch,
        out: &mut ReadyOutput<S::Output>,
    ) -> Result<(), PeerError> {
        if let Some(commit) = commit {
            self.node.mut_store().stage_commit(commit, batch);
        }
        let mut last = None;
        for entry in entries {
            last = Some(entry.index);
            let result = self.apply_entry(&entry, batch)?;
            out.applied.push(Applied {
                index: entry.index,
                term: entry.term,
                context: entry.context.to_vec(),
                result,
            });
        }
        if let Some(index) = last {
            self.node.mut_store().stage_applied(index, batch);
        }
        Ok(())
    }

    fn apply_entry(
        &mut self,
        entry: &Entry,
        batch: &mut WriteBatch,
    ) -> Result<ApplyResult<S::Output>, PeerError> {
        let bad = |reason: String| PeerError::BadEntry {
            index: entry.index,
            reason,
        };
        match entry.get_entry_type() {
            EntryType::EntryNormal if entry.data.is_empty() => Ok(ApplyResult::Empty),
            EntryType::EntryNormal => Ok(ApplyResult::Command(self.sm.apply(
                entry.index,
                &entry.data,
                batch,
            ))),
            EntryType::EntryConfChange => {
                let cc =
                    ConfChange::parse_from_bytes(&entry.data).map_err(|e| bad(e.to_string()))?;
                let cc = v1_to_v2(cc);
                self.apply_conf_change(entry.index, &cc, batch)
            }
            EntryType::EntryConfChangeV2 => {
                let cc =
                    ConfChangeV2::parse_from_bytes(&entry.data).map_err(|e| bad(e.to_string()))?;
                self.apply_conf_change(entry.index, &cc, batch)
            }
        }
    }

    fn apply_conf_change(
        &mut self,
        index: u64,
        cc: &ConfChangeV2,
        batch: &mut WriteBatch,
    ) -> Result<ApplyResult<S::Output>, PeerError> {
        let cs = self.node.apply_conf_change(cc)?;
        self.node.mut_store().stage_conf_state(&cs, batch);
        self.sm.on_conf_change(index, &membership(cc), batch);
        Ok(ApplyResult::ConfChange(cs))
    }

    /// True while the group sits in a joint configuration that nobody has proposed to leave.
    pub fn needs_leave_joint(&self) -> bool {
        self.is_leader()
            && !self.conf_state().voters_outgoing.is_empty()
            && !self.node.raft.has_pending_conf()
    }

    /// Truncates the log below `compact_to` (bounded by the applied index).
    pub fn compact_log(&mut self, compact_to: u64) -> Result<(), PeerError> {
        let mut batch = WriteBatch::default();
        self.node
            .mut_store()
            .stage_compact(compact_to, &mut batch)?;
        if !batch.is_empty() {
            write_timed(self.engine.as_ref(), &batch, false)?;
        }
        Ok(())
    }

    /// The index below which this peer may drop its log: everything applied, and — on a
    /// leader — nothing a follower still replicating normally needs, nor the entries after a
    /// snapshot being sent (else a busy shard compacts past it while it travels, and the
    /// follower needs another, for ever: learners that never catch up). Followers that lag
    /// more than `max_lag` entries (or, after a snapshot, 4 × that) do not hold the log back.
    /// (Not `recent_active`: raft-rs clears it every check-quorum round.)
    pub fn compaction_point(&self, max_lag: u64) -> u64 {
        let applied = self.applied_index();
        if !self.is_leader() {
            return applied;
        }
        let mut point = applied;
        for (id, progress) in self.node.raft.prs().iter() {
            if *id == self.id() {
                continue;
            }
            let (needed, limit) = if progress.state == raft::ProgressState::Snapshot {
                (progress.pending_snapshot, max_lag.saturating_mul(4))
            } else {
                (progress.matched, max_lag)
            };
            if applied.saturating_sub(needed) <= limit {
                point = point.min(needed);
            }
        }
        point
    }
}

/// A conf change as the state machine sees it (no Raft types).
fn membership(cc: &ConfChangeV2) -> Membership {
    let changes = cc
        .get_changes()
        .iter()
        .map(|c| match c.get_change_type() {
            ConfChangeType::AddNode => MemberChange::AddVoter(c.node_id),
            ConfChangeType::AddLearnerNode => MemberChange::AddLearner(c.node_id),
            ConfChangeType::RemoveNode => MemberChange::Remove(c.node_id),
        })
        .collect();
    Membership {
        changes,
        context: cc.context.to_vec(),
    }
}
