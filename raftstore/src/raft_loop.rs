//! [`RaftLoop`]: one OS thread that drives every Raft group of the process — ticks, inbound
//! messages, proposals, reads — and [`RaftHandle`], the async front door the servers use.
//!
//! Every queue into the loop is bounded; a request that cannot be queued fails at once with
//! [`RequestError::Busy`]. Every waiter has a deadline.

use std::collections::HashMap;
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use protobuf::Message as _;
use raft::eraftpb::{ConfChangeV2, ConfState, Message, MessageType};
use raft::{SnapshotStatus, StateRole};
use tokio::sync::oneshot;
use tracing::{error, info, warn};

use crate::config::RaftConfig;
use crate::engine::{write_timed, Engine, WriteBatch};
use crate::metrics::RaftMetrics;
use crate::peer::{ApplyResult, Peer, PeerError, ReadyOutput};
use crate::state_machine::StateMachine;

/// Capacity of the loop's inbox.
pub const INBOX_CAPACITY: usize = 16 * 1024;
/// At most this many inbox messages are handled between two Ready rounds.
const DRAIN_LIMIT: usize = 4096;
/// Proposals and reads in flight at once; beyond this, requests fail with `Busy`.
const MAX_IN_FLIGHT: usize = 16 * 1024;
/// Compaction is considered every this many ticks.
const GC_EVERY_TICKS: u64 = 30;

/// Why a request did not get an answer from the state machine.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("not the leader (leader: {leader:?})")]
    NotLeader { leader: Option<u64> },
    #[error("the outcome is unknown: no answer within the request timeout")]
    Timeout,
    #[error("raft dropped the proposal (leadership transfer or a membership change in flight)")]
    Dropped,
    #[error("no raft group {0} on this process")]
    NoGroup(u64),
    #[error("too many requests in flight")]
    Busy,
    #[error("the raft loop has stopped")]
    Stopped,
    #[error("{0}")]
    Rejected(String),
}

/// Where the loop sends outbound Raft messages.
pub trait MessageSink: Send + Sync + 'static {
    /// Queues `msg` of `group` for delivery; false if it could not be queued.
    fn send(&self, group: u64, msg: Message) -> bool;

    /// True if the sink reports each snapshot's outcome itself (through
    /// [`RaftHandle::report_snapshot`]) once the transfer ends; otherwise a queued snapshot
    /// counts as delivered.
    fn reports_snapshots(&self) -> bool {
        false
    }
}

type ReadFn<S> = Box<dyn FnOnce(Result<&S, RequestError>) + Send>;
type InspectFn<E, S> = Box<dyn FnOnce(Option<&mut Peer<E, S>>) + Send>;

/// A request to the loop.
pub enum LoopMsg<E: Engine, S: StateMachine> {
    Raft {
        group: u64,
        message: Message,
    },
    Propose {
        group: u64,
        data: Vec<u8>,
        reply: oneshot::Sender<Result<S::Output, RequestError>>,
    },
    ConfChange {
        group: u64,
        cc: ConfChangeV2,
        reply: oneshot::Sender<Result<ConfState, RequestError>>,
    },
    Read {
        group: u64,
        read: ReadFn<S>,
    },
    Inspect {
        group: u64,
        inspect: InspectFn<E, S>,
    },
    TransferLeader {
        group: u64,
        to: u64,
    },
    Unreachable {
        group: u64,
        to: u64,
    },
    SnapshotStatus {
        group: u64,
        to: u64,
        delivered: bool,
    },
    /// Starts driving a new replica (its storage already holds its initial state).
    Create {
        peer: Box<Peer<E, S>>,
        reply: oneshot::Sender<Result<(), RequestError>>,
    },
    /// Stops driving a replica and deletes every row of it, writing `extra` (e.g. a
    /// tombstone) in the same synced batch.
    Destroy {
        group: u64,
        extra: WriteBatch,
        reply: oneshot::Sender<Result<(), RequestError>>,
    },
    Stop,
}

/// What the loop last published about one of its groups, readable without a loop round trip.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GroupStatus {
    pub role: Option<StateRole>,
    pub term: u64,
    /// Replica id of the leader this replica knows, 0 if none.
    pub leader: u64,
    pub commit: u64,
    pub applied: u64,
}

impl GroupStatus {
    pub fn is_leader(&self) -> bool {
        self.role == Some(StateRole::Leader)
    }
}

/// The published status of every group of the loop.
pub type StatusBoard = Arc<RwLock<HashMap<u64, GroupStatus>>>;

enum Waiter<O> {
    Command(oneshot::Sender<Result<O, RequestError>>),
    ConfChange(oneshot::Sender<Result<ConfState, RequestError>>),
}

struct Pending<O> {
    group: u64,
    /// Where raft-rs put the proposal: it succeeded only if the entry applied at this index
    /// has this term and carries our context.
    index: u64,
    term: u64,
    deadline: Instant,
    started: Instant,
    waiter: Waiter<O>,
}

impl<O> Pending<O> {
    fn fail(self, err: RequestError) {
        let outcome = match &err {
            RequestError::NotLeader { .. } => "not_leader",
            RequestError::Timeout => "timeout",
            _ => "dropped",
        };
        RaftMetrics::get()
            .proposals
            .with_label_values(&[&self.group.to_string(), outcome])
            .inc();
        match self.waiter {
            Waiter::Command(tx) => drop(tx.send(Err(err))),
            Waiter::ConfChange(tx) => drop(tx.send(Err(err))),
        }
    }
}

struct PendingRead<S> {
    group: u64,
    deadline: Instant,
    issued: bool,
    index: Option<u64>,
    read: ReadFn<S>,
}

/// The loop: owns every peer of the process.
pub struct RaftLoop<E: Engine, S: StateMachine> {
    peers: HashMap<u64, Peer<E, S>>,
    inbox: Receiver<LoopMsg<E, S>>,
    sink: Arc<dyn MessageSink>,
    config: RaftConfig,
    next_ctx: u64,
    proposals: HashMap<u64, Pending<S::Output>>,
    /// `(group, index)` → proposal context.
    by_index: HashMap<(u64, u64), u64>,
    reads: HashMap<u64, PendingRead<S>>,
    ticks: u64,
    board: StatusBoard,
}

/// The async side of the loop; cheap to clone.
pub struct RaftHandle<E: Engine, S: StateMachine> {
    tx: SyncSender<LoopMsg<E, S>>,
    timeout: Duration,
    board: StatusBoard,
}

impl<E: Engine, S: StateMachine> Clone for RaftHandle<E, S> {
    fn clone(&self) -> Self {
        RaftHandle {
            tx: self.tx.clone(),
            timeout: self.timeout,
            board: self.board.clone(),
        }
    }
}

impl<E: Engine, S: StateMachine> RaftLoop<E, S> {
    /// Builds a loop over `peers` and the handle that feeds it.
    pub fn new(
        peers: Vec<Peer<E, S>>,
        sink: Arc<dyn MessageSink>,
        config: RaftConfig,
    ) -> (RaftLoop<E, S>, RaftHandle<E, S>) {
        let (tx, inbox) = sync_channel(INBOX_CAPACITY);
        let board = StatusBoard::default();
        let handle = RaftHandle {
            tx,
            timeout: config.request_timeout,
            board: board.clone(),
        };
        let peers = peers.into_iter().map(|p| (p.group(), p)).collect();
        let raft_loop = RaftLoop {
            peers,
            inbox,
            sink,
            config,
            next_ctx: rand::random::<u64>() >> 1,
            proposals: HashMap::new(),
            by_index: HashMap::new(),
            reads: HashMap::new(),
            ticks: 0,
            board,
        };
        (raft_loop, handle)
    }

    /// Runs until every handle is dropped or `Stop` arrives; an error is fatal for the process.
    pub fn run(mut self) -> Result<(), PeerError> {
        let mut next_tick = Instant::now() + self.config.tick;
        for peer in self.peers.values() {
            publish(peer, &self.board);
        }
        loop {
            // A peer can still hold a Ready after a round (e.g. it proposed leaving a joint
            // configuration): then only poll the inbox.
            let pending_ready = self.peers.values().any(|p| p.node.has_ready());
            let wait = if pending_ready {
                Duration::ZERO
            } else {
                next_tick.saturating_duration_since(Instant::now())
            };
            match self.inbox.recv_timeout(wait) {
                Ok(LoopMsg::Stop) => return Ok(()),
                Ok(msg) => {
                    self.handle_msg(msg);
                    for _ in 0..DRAIN_LIMIT {
                        match self.inbox.try_recv() {
                            Ok(LoopMsg::Stop) => return Ok(()),
                            Ok(msg) => self.handle_msg(msg),
                            Err(_) => break,
                        }
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return Ok(()),
            }
            let now = Instant::now();
            if now >= next_tick {
                next_tick = now + self.config.tick;
                self.on_tick(now)?;
            }
            self.process_readies()?;
        }
    }

    fn alloc_ctx(&mut self) -> u64 {
        self.next_ctx = self.next_ctx.wrapping_add(1);
        self.next_ctx
    }

    fn not_leader(peer: &Peer<E, S>) -> RequestError {
        let leader = peer.leader_id();
        RequestError::NotLeader {
            leader: (leader != 0).then_some(leader),
        }
    }

    fn handle_msg(&mut self, msg: LoopMsg<E, S>) {
        let deadline = Instant::now() + self.config.request_timeout;
        match msg {
            LoopMsg::Raft { group, message } => {
                if let Some(peer) = self.peers.get_mut(&group) {
                    peer.note_heard(message.from);
                    if let Err(e) = peer.node.step(message) {
                        warn!(group, error = %e, "raft message rejected");
                    }
                }
            }
            LoopMsg::Propose { group, data, reply } => {
                if self.proposals.len() >= MAX_IN_FLIGHT {
                    let _ = reply.send(Err(RequestError::Busy));
                    return;
                }
                let ctx = self.alloc_ctx();
                let Some(peer) = self.peers.get_mut(&group) else {
                    let _ = reply.send(Err(RequestError::NoGroup(group)));
                    return;
                };
                if !peer.is_leader() {
                    let _ = reply.send(Err(Self::not_leader(peer)));
                    return;
                }
                let result = peer.node.propose(ctx.to_be_bytes().to_vec(), data);
                let result = result.map_err(|_| RequestError::Dropped);
                self.track(group, ctx, deadline, Waiter::Command(reply), result);
            }
            LoopMsg::ConfChange { group, cc, reply } => {
                let ctx = self.alloc_ctx();
                let Some(peer) = self.peers.get_mut(&group) else {
                    let _ = reply.send(Err(RequestError::NoGroup(group)));
                    return;
                };
                if !peer.is_leader() {
                    let _ = reply.send(Err(Self::not_leader(peer)));
                    return;
                }
                if peer.node.raft.has_pending_conf()
                    || !peer.conf_state().voters_outgoing.is_empty() && !cc.changes.is_empty()
                {
                    let _ = reply.send(Err(RequestError::Rejected(
                        "another membership change is in progress; retry when it completes".into(),
                    )));
                    return;
                }
                let result = peer
                    .node
                    .propose_conf_change(ctx.to_be_bytes().to_vec(), cc);
                let result = result.map_err(|e| RequestError::Rejected(e.to_string()));
                self.track(group, ctx, deadline, Waiter::ConfChange(reply), result);
            }
            LoopMsg::Read { group, read } => {
                if self.reads.len() >= MAX_IN_FLIGHT {
                    read(Err(RequestError::Busy));
                    return;
                }
                let Some(peer) = self.peers.get(&group) else {
                    read(Err(RequestError::NoGroup(group)));
                    return;
                };
                if peer.leader_id() == 0 {
                    read(Err(RequestError::NotLeader { leader: None }));
                    return;
                }
                let ctx = self.alloc_ctx();
                self.reads.insert(
                    ctx,
                    PendingRead {
                        group,
                        deadline,
                        issued: false,
                        index: None,
                        read,
                    },
                );
            }
            LoopMsg::Inspect { group, inspect } => inspect(self.peers.get_mut(&group)),
            LoopMsg::TransferLeader { group, to } => {
                if let Some(peer) = self.peers.get_mut(&group) {
                    peer.node.transfer_leader(to);
                }
            }
            LoopMsg::Unreachable { group, to } => {
                if let Some(peer) = self.peers.get_mut(&group) {
                    peer.node.report_unreachable(to);
                }
            }
            LoopMsg::SnapshotStatus {
                group,
                to,
                delivered,
            } => {
                if let Some(peer) = self.peers.get_mut(&group) {
                    let status = if delivered {
                        SnapshotStatus::Finish
                    } else {
                        SnapshotStatus::Failure
                    };
                    peer.node.report_snapshot(to, status);
                }
            }
            LoopMsg::Create { peer, reply } => {
                let group = peer.group();
                if self.peers.contains_key(&group) {
                    let _ = reply.send(Err(RequestError::Rejected(format!(
                        "group {group} already runs here"
                    ))));
                    return;
                }
                publish(&peer, &self.board);
                self.peers.insert(group, *peer);
                let _ = reply.send(Ok(()));
            }
            LoopMsg::Destroy {
                group,
                extra,
                reply,
            } => {
                let result = self.destroy(group, extra);
                let _ = reply.send(result);
            }
            LoopMsg::Stop => {}
        }
    }

    /// Fails every proposal waiting on `group`.
    fn fail_proposals(&mut self, group: u64, err: RequestError) {
        let lost: Vec<u64> = self
            .proposals
            .iter()
            .filter(|(_, p)| p.group == group)
            .map(|(k, _)| *k)
            .collect();
        for ctx in lost {
            if let Some(p) = self.forget(ctx) {
                p.fail(err.clone());
            }
        }
    }

    /// Fails every read waiting on `group`.
    fn fail_reads(&mut self, group: u64, err: RequestError) {
        let lost: Vec<u64> = self
            .reads
            .iter()
            .filter(|(_, r)| r.group == group)
            .map(|(k, _)| *k)
            .collect();
        for ctx in lost {
            if let Some(read) = self.reads.remove(&ctx) {
                (read.read)(Err(err.clone()));
            }
        }
    }

    fn destroy(&mut self, group: u64, mut batch: WriteBatch) -> Result<(), RequestError> {
        let Some(peer) = self.peers.remove(&group) else {
            return Err(RequestError::NoGroup(group));
        };
        self.fail_proposals(group, RequestError::NoGroup(group));
        self.fail_reads(group, RequestError::NoGroup(group));
        crate::group_storage::stage_destroy(group, &mut batch);
        let engine = peer.engine().clone();
        if let Ok(mut board) = self.board.write() {
            board.remove(&group);
        }
        drop(peer);
        write_timed(engine.as_ref(), &batch, true).map_err(|e| {
            error!(group, error = %e, "destroying a replica failed");
            RequestError::Rejected(e.to_string())
        })
    }

    /// Records a proposal raft-rs accepted at the index it was appended at, or fails it.
    fn track(
        &mut self,
        group: u64,
        ctx: u64,
        deadline: Instant,
        waiter: Waiter<S::Output>,
        result: Result<(), RequestError>,
    ) {
        let (index, term) = self
            .peers
            .get(&group)
            .map(|p| (p.node.raft.raft_log.last_index(), p.term()))
            .unwrap_or_default();
        let pending = Pending {
            group,
            index,
            term,
            deadline,
            started: Instant::now(),
            waiter,
        };
        match result {
            Ok(()) => {
                self.by_index.insert((group, index), ctx);
                self.proposals.insert(ctx, pending);
            }
            Err(e) => pending.fail(e),
        }
    }

    fn forget(&mut self, ctx: u64) -> Option<Pending<S::Output>> {
        let pending = self.proposals.remove(&ctx)?;
        self.by_index.remove(&(pending.group, pending.index));
        Some(pending)
    }

    fn on_tick(&mut self, now: Instant) -> Result<(), PeerError> {
        self.ticks += 1;
        for peer in self.peers.values_mut() {
            peer.node.tick();
        }
        let expired: Vec<u64> = self
            .proposals
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(k, _)| *k)
            .collect();
        for ctx in expired {
            if let Some(p) = self.forget(ctx) {
                p.fail(RequestError::Timeout);
            }
        }
        let expired: Vec<u64> = self
            .reads
            .iter()
            .filter(|(_, r)| r.deadline <= now)
            .map(|(k, _)| *k)
            .collect();
        for ctx in expired {
            if let Some(r) = self.reads.remove(&ctx) {
                (r.read)(Err(RequestError::Timeout));
            }
        }
        if self.ticks.is_multiple_of(GC_EVERY_TICKS) {
            for peer in self.peers.values_mut() {
                let first = peer.node.store().first_log_index();
                if peer.applied_index().saturating_sub(first) >= self.config.log_gc_threshold {
                    let point = peer.compaction_point(self.config.log_gc_threshold * 4);
                    peer.compact_log(point)?;
                }
            }
        }
        Ok(())
    }

    /// One round: every group's Ready is staged into one batch, written with one fsync
    /// (group commit), and only then are persisted messages sent and entries applied.
    fn process_readies(&mut self) -> Result<(), PeerError> {
        let groups: Vec<u64> = self.peers.keys().copied().collect();
        let mut batch = WriteBatch::default();
        let mut staged = Vec::new();
        let mut engine = None;
        for group in groups {
            self.issue_reads(group);
            let Some(peer) = self.peers.get_mut(&group) else {
                continue;
            };
            if !peer.node.has_ready() {
                continue;
            }
            if let Some(ready) = peer.begin_ready(&mut batch)? {
                engine.get_or_insert_with(|| peer.engine().clone());
                staged.push((group, ready));
            }
        }
        if let Some(engine) = &engine {
            if !batch.is_empty() {
                write_timed(engine.as_ref(), &batch, true)?;
                RaftMetrics::get()
                    .groups_per_write
                    .observe(staged.len() as f64);
            }
        }
        // Apply every group's committed entries into one batch too, written once before any
        // proposer hears back or any read is served.
        let mut apply = WriteBatch::default();
        let mut outputs = Vec::with_capacity(staged.len());
        for (group, ready) in staged {
            let Some(peer) = self.peers.get_mut(&group) else {
                continue;
            };
            let out = peer.finish_ready_into(ready, &mut apply)?;
            outputs.push((group, out));
        }
        if let Some(engine) = engine {
            if !apply.is_empty() {
                write_timed(engine.as_ref(), &apply, false)?;
            }
        }
        for (group, out) in outputs {
            let Some(peer) = self.peers.get_mut(&group) else {
                continue;
            };
            peer.apply_written();
            if peer.needs_leave_joint() {
                info!(group, "leaving joint configuration");
                if let Err(e) = peer
                    .node
                    .propose_conf_change(Vec::new(), ConfChangeV2::default())
                {
                    warn!(group, error = %e, "could not propose leaving the joint configuration");
                }
            }
            publish(peer, &self.board);
            self.after_ready(group, out);
        }
        Ok(())
    }

    fn issue_reads(&mut self, group: u64) {
        let Some(peer) = self.peers.get_mut(&group) else {
            return;
        };
        let ready_to_issue = if peer.is_leader() {
            peer.node.raft.commit_to_current_term()
        } else {
            peer.leader_id() != 0
        };
        if !ready_to_issue {
            return;
        }
        for (ctx, read) in self
            .reads
            .iter_mut()
            .filter(|(_, r)| r.group == group && !r.issued)
        {
            peer.node.read_index(ctx.to_be_bytes().to_vec());
            read.issued = true;
        }
    }

    fn after_ready(&mut self, group: u64, out: ReadyOutput<S::Output>) {
        let metrics = RaftMetrics::get();
        let label = group.to_string();
        for msg in out.messages {
            let is_snapshot = msg.get_msg_type() == MessageType::MsgSnapshot;
            let to = msg.to;
            let sent = self.sink.send(group, msg);
            metrics.messages_sent.with_label_values(&[&label]).inc();
            if let Some(peer) = self.peers.get_mut(&group) {
                if !sent {
                    metrics.unreachable.with_label_values(&[&label]).inc();
                    peer.node.report_unreachable(to);
                }
                if is_snapshot && !(sent && self.sink.reports_snapshots()) {
                    let status = if sent {
                        SnapshotStatus::Finish
                    } else {
                        SnapshotStatus::Failure
                    };
                    peer.node.report_snapshot(to, status);
                }
            }
        }
        for applied in out.applied {
            let Some(ctx) = self.by_index.get(&(group, applied.index)).copied() else {
                continue;
            };
            let Some(pending) = self.forget(ctx) else {
                continue;
            };
            let ours = applied.term == pending.term && applied.context == ctx.to_be_bytes();
            if !ours {
                // Another entry took the index (a new leader's log won), or raft-rs blanked
                // the proposal out (a second membership change): it did not happen.
                pending.fail(RequestError::Dropped);
                continue;
            }
            metrics.proposals.with_label_values(&[&label, "ok"]).inc();
            metrics
                .proposal_seconds
                .with_label_values(&[&label])
                .observe(pending.started.elapsed().as_secs_f64());
            match (pending.waiter, applied.result) {
                (Waiter::Command(tx), ApplyResult::Command(output)) => drop(tx.send(Ok(output))),
                (Waiter::ConfChange(tx), ApplyResult::ConfChange(cs)) => drop(tx.send(Ok(cs))),
                (Waiter::Command(tx), _) => drop(tx.send(Err(RequestError::Dropped))),
                (Waiter::ConfChange(tx), _) => drop(tx.send(Err(RequestError::Dropped))),
            }
        }
        for rs in out.read_states {
            let Ok(ctx_bytes) = <[u8; 8]>::try_from(rs.request_ctx.as_slice()) else {
                continue;
            };
            if let Some(read) = self.reads.get_mut(&u64::from_be_bytes(ctx_bytes)) {
                read.index = Some(rs.index);
            }
        }
        if let Some(ss) = out.soft_state {
            metrics.leader_changes.with_label_values(&[&label]).inc();
            info!(group, leader = ss.leader_id, role = ?ss.raft_state, "raft role changed");
            let leader = (ss.leader_id != 0).then_some(ss.leader_id);
            if ss.raft_state != StateRole::Leader {
                self.fail_proposals(group, RequestError::NotLeader { leader });
            }
            // A read index issued under the old leadership may never come back: fail the
            // group's reads so callers retry against the current leader.
            self.fail_reads(group, RequestError::NotLeader { leader });
        }
        self.serve_reads(group);
    }

    fn serve_reads(&mut self, group: u64) {
        let Some(peer) = self.peers.get(&group) else {
            return;
        };
        let applied = peer.applied_index();
        let done: Vec<u64> = self
            .reads
            .iter()
            .filter(|(_, r)| r.group == group && r.index.is_some_and(|i| i <= applied))
            .map(|(k, _)| *k)
            .collect();
        for ctx in done {
            if let Some(read) = self.reads.remove(&ctx) {
                (read.read)(Ok(&peer.sm));
            }
        }
    }
}

fn publish<E: Engine, S: StateMachine>(peer: &Peer<E, S>, board: &StatusBoard) {
    let status = GroupStatus {
        role: Some(peer.role()),
        term: peer.term(),
        leader: peer.leader_id(),
        commit: peer.commit_index(),
        applied: peer.applied_index(),
    };
    if let Ok(mut board) = board.write() {
        board.insert(peer.group(), status);
    }
    let m = RaftMetrics::get();
    let label = peer.group().to_string();
    let role = match peer.role() {
        StateRole::Follower => 0,
        StateRole::Candidate => 1,
        StateRole::Leader => 2,
        StateRole::PreCandidate => 3,
    };
    m.role.with_label_values(&[&label]).set(role);
    m.term.with_label_values(&[&label]).set(peer.term() as i64);
    m.commit_index
        .with_label_values(&[&label])
        .set(peer.commit_index() as i64);
    m.applied_index
        .with_label_values(&[&label])
        .set(peer.applied_index() as i64);
    let lag = if peer.is_leader() {
        let last = peer.node.raft.raft_log.last_index();
        peer.node
            .raft
            .prs()
            .iter()
            .map(|(_, p)| last.saturating_sub(p.matched))
            .max()
            .unwrap_or(0)
    } else {
        0
    };
    m.replication_lag
        .with_label_values(&[&label])
        .set(lag as i64);
}

/// Spawns the loop on its own named thread; a fatal error is logged and ends the thread.
pub fn spawn<E: Engine, S: StateMachine>(
    raft_loop: RaftLoop<E, S>,
) -> std::thread::JoinHandle<Result<(), PeerError>> {
    std::thread::Builder::new()
        .name("raft-loop".into())
        .spawn(move || {
            let result = raft_loop.run();
            if let Err(e) = &result {
                error!(error = %e, "raft loop stopped on a fatal storage error");
            }
            result
        })
        .unwrap_or_else(|e| panic!("cannot spawn the raft loop thread: {e}"))
}

impl<E: Engine, S: StateMachine> RaftHandle<E, S> {
    fn enqueue(&self, msg: LoopMsg<E, S>) -> Result<(), RequestError> {
        match self.tx.try_send(msg) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => Err(RequestError::Busy),
            Err(TrySendError::Disconnected(_)) => Err(RequestError::Stopped),
        }
    }

    async fn wait<T>(
        &self,
        rx: oneshot::Receiver<Result<T, RequestError>>,
    ) -> Result<T, RequestError> {
        match tokio::time::timeout(self.timeout + Duration::from_secs(1), rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(RequestError::Stopped),
            Err(_) => Err(RequestError::Timeout),
        }
    }

    /// Proposes a command and waits until it is applied (or definitely not).
    pub async fn propose(&self, group: u64, data: Vec<u8>) -> Result<S::Output, RequestError> {
        let (reply, rx) = oneshot::channel();
        self.enqueue(LoopMsg::Propose { group, data, reply })?;
        self.wait(rx).await
    }

    /// Proposes a membership change and waits until it is applied.
    pub async fn conf_change(
        &self,
        group: u64,
        cc: ConfChangeV2,
    ) -> Result<ConfState, RequestError> {
        let (reply, rx) = oneshot::channel();
        self.enqueue(LoopMsg::ConfChange { group, cc, reply })?;
        self.wait(rx).await
    }

    /// A linearizable read (ReadIndex): `f` runs once the state machine has applied everything
    /// committed before the read began.
    pub async fn read<R, F>(&self, group: u64, f: F) -> Result<R, RequestError>
    where
        R: Send + 'static,
        F: FnOnce(&S) -> R + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let read: ReadFn<S> = Box::new(move |sm| {
            let _ = tx.send(sm.map(f));
        });
        self.enqueue(LoopMsg::Read { group, read })?;
        self.wait(rx).await
    }

    /// Runs `f` on the loop thread against the local peer (no consensus: local, possibly stale).
    pub async fn inspect<R, F>(&self, group: u64, f: F) -> Result<R, RequestError>
    where
        R: Send + 'static,
        F: FnOnce(&mut Peer<E, S>) -> R + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let inspect: InspectFn<E, S> = Box::new(move |peer| {
            let _ = tx.send(peer.map(f).ok_or(RequestError::NoGroup(group)));
        });
        self.enqueue(LoopMsg::Inspect { group, inspect })?;
        self.wait(rx).await
    }

    /// Hands an inbound message to the loop; false if the inbox is full (raft will resend).
    pub fn step(&self, group: u64, message: Message) -> bool {
        self.enqueue(LoopMsg::Raft { group, message }).is_ok()
    }

    pub fn transfer_leader(&self, group: u64, to: u64) -> Result<(), RequestError> {
        self.enqueue(LoopMsg::TransferLeader { group, to })
    }

    pub fn report_unreachable(&self, group: u64, to: u64) {
        let _ = self.enqueue(LoopMsg::Unreachable { group, to });
    }

    /// A snapshot transfer to `to` ended; raft resumes replication or retries.
    pub fn report_snapshot(&self, group: u64, to: u64, delivered: bool) {
        let _ = self.enqueue(LoopMsg::SnapshotStatus {
            group,
            to,
            delivered,
        });
    }

    /// Starts driving `peer`.
    pub async fn create(&self, peer: Peer<E, S>) -> Result<(), RequestError> {
        let (reply, rx) = oneshot::channel();
        self.enqueue(LoopMsg::Create {
            peer: Box::new(peer),
            reply,
        })?;
        self.wait(rx).await
    }

    /// Stops driving `group` and deletes its rows, writing `extra` in the same batch.
    pub async fn destroy(&self, group: u64, extra: WriteBatch) -> Result<(), RequestError> {
        let (reply, rx) = oneshot::channel();
        self.enqueue(LoopMsg::Destroy {
            group,
            extra,
            reply,
        })?;
        self.wait(rx).await
    }

    /// The last published status of `group`, if the loop drives it.
    pub fn status(&self, group: u64) -> Option<GroupStatus> {
        self.board.read().ok()?.get(&group).copied()
    }

    /// The last published status of every group.
    pub fn statuses(&self) -> HashMap<u64, GroupStatus> {
        self.board.read().map(|b| b.clone()).unwrap_or_default()
    }

    /// Asks the loop to stop after the current round.
    pub fn stop(&self) {
        let _ = self.tx.send(LoopMsg::Stop);
    }
}

/// Decodes a rust-protobuf encoded raft message from the wire.
pub fn decode_message(bytes: &[u8]) -> Result<Message, protobuf::ProtobufError> {
    Message::parse_from_bytes(bytes)
}
