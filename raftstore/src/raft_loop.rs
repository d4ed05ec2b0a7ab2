//! [`RaftLoop`]: one OS thread that drives every Raft group of the process — ticks, inbound
//! messages, proposals, reads — with one group commit per round. Its front door is
//! [`crate::RaftHandle`]; what it publishes about its groups is in [`crate::group_status`].
//!
//! The loop does consensus only: it steps, ticks, proposes and persists Readies. Inbound
//! messages are judged by their membership epoch first ([`crate::epoch`]), so a removed
//! replica's late messages never reach raft-rs.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use raft::eraftpb::Message;
use raft::SnapshotStatus;
use tracing::{debug, error, info};

use crate::config::RaftConfig;
use crate::engine::{Engine, WriteBatch};
use crate::epoch::{self, Verdict};
use crate::group_status::{publish, stats_of, StatusBoard};
use crate::metrics::write_timed;
use crate::metrics::RaftMetrics;
use crate::peer::{Peer, PeerError};
use crate::pending::{Pending, PendingRead, Waiter};
use crate::raft_handle::{LoopMsg, MessageSink, RaftHandle, RequestError};
use crate::state_machine::StateMachine;

pub(crate) mod inbox;
mod membership;
mod ready;

/// Capacity of each lane of the loop's inbox (Raft traffic, client requests).
pub const INBOX_CAPACITY: usize = 16 * 1024;
/// At most this many inbox messages are handled between two Ready rounds.
const DRAIN_LIMIT: usize = 4096;
/// Proposals and reads in flight at once; beyond this, requests fail with `Busy`.
const MAX_IN_FLIGHT: usize = 16 * 1024;
/// Compaction is considered every this many ticks.
const GC_EVERY_TICKS: u64 = 30;
/// A leader hands leadership only to a voter at most this many entries behind (TiKV's
/// `leader_transfer_max_log_lag`): a transfer to a far-behind one stalls writes until it
/// catches up or the transfer times out.
const TRANSFER_MAX_LAG: u64 = 128;
/// A removed replica is told so at most this often per (group, replica).
const TOMBSTONE_EVERY: Duration = Duration::from_secs(1);
/// Bound on the remembered tombstone notices.
const MAX_NOTICES: usize = 4096;
/// A Ready round longer than this is logged with where its time went.
const SLOW_ROUND: Duration = Duration::from_millis(100);

/// The loop: owns every peer of the process.
pub struct RaftLoop<E: Engine, S: StateMachine> {
    peers: HashMap<u64, Peer<E, S>>,
    inbox: inbox::Inbox<LoopMsg<E, S>>,
    sink: Arc<dyn MessageSink>,
    config: RaftConfig,
    next_ctx: u64,
    proposals: HashMap<u64, Pending<S::Output>>,
    /// `(group, index)` → proposal context.
    by_index: HashMap<(u64, u64), u64>,
    reads: HashMap<u64, PendingRead<S>>,
    ticks: u64,
    board: StatusBoard,
    /// `(group, replica)` → when it was last told it was removed.
    notices: HashMap<(u64, u64), Instant>,
}

impl<E: Engine, S: StateMachine> RaftLoop<E, S> {
    /// Builds a loop over `peers` and the handle that feeds it.
    pub fn new(
        peers: Vec<Peer<E, S>>,
        sink: Arc<dyn MessageSink>,
        config: RaftConfig,
    ) -> (RaftLoop<E, S>, RaftHandle<E, S>) {
        let (inbox, tx) = inbox::inbox(INBOX_CAPACITY);
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
            notices: HashMap::new(),
        };
        (raft_loop, handle)
    }

    /// Runs until every handle is dropped or `Stop` arrives; an error is fatal for the process.
    pub fn run(mut self) -> Result<(), PeerError> {
        let mut next_tick = Instant::now() + self.config.tick;
        let mut batch = Vec::with_capacity(DRAIN_LIMIT);
        let mut backlog = false;
        for peer in self.peers.values() {
            publish(peer, &self.board);
        }
        loop {
            // A peer can still hold a Ready after a round (e.g. it proposed leaving a joint
            // configuration): then only poll the inbox.
            let pending_ready = self.peers.values().any(|p| p.node.has_ready());
            let wait = if pending_ready || backlog {
                Duration::ZERO
            } else {
                next_tick.saturating_duration_since(Instant::now())
            };
            if !self.inbox.wait(wait) {
                return Ok(());
            }
            batch.clear();
            backlog = self.inbox.drain(DRAIN_LIMIT, &mut batch);
            for msg in batch.drain(..) {
                if let LoopMsg::Stop = msg {
                    return Ok(());
                }
                self.handle_msg(msg);
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
            LoopMsg::Raft {
                group,
                epoch,
                message,
            } => self.on_message(group, epoch, message),
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
            LoopMsg::ConfChange {
                group,
                cc,
                epoch,
                reply,
            } => self.on_conf_change(group, cc, epoch, deadline, reply),
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
            LoopMsg::TransferLeader { group, to } => self.on_transfer_leader(group, to),
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
            LoopMsg::Stats { reply } => {
                let mut all: Vec<_> = self.peers.values().map(stats_of).collect();
                all.sort_by_key(|s| s.group);
                let _ = reply.send(all);
            }
            LoopMsg::Create { peer, reply } => {
                let group = peer.group();
                if self.peers.contains_key(&group) {
                    let _ = reply.send(Err(RequestError::Refused(format!(
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

    /// Steps an inbound message unless its epoch shows it is not for this replica.
    fn on_message(&mut self, group: u64, epoch: u64, message: Message) {
        let refused = &RaftMetrics::get().refused;
        let Some(peer) = self.peers.get_mut(&group) else {
            refused.with_label_values(&["no_group"]).inc();
            return;
        };
        let local = peer.epoch();
        let since = peer.member_since(message.from);
        let verdict = epoch::check(local, peer.conf_state(), message.from, since, epoch);
        let (notice_epoch, older) = match verdict {
            Verdict::StaleSender => (local, false),
            Verdict::OlderIncarnation { since } => (since, true),
            _ => (0, false),
        };
        match verdict {
            Verdict::Accept => {
                let last_index = peer.node.raft.raft_log.last_index();
                // Counted, not logged: a flood of them must not flood the log too.
                if let Some(reason) = crate::forged::impossible(&message, last_index) {
                    refused.with_label_values(&[reason]).inc();
                    debug!(
                        group,
                        from = message.from,
                        commit = message.commit,
                        last_index,
                        "impossible raft message refused"
                    );
                    return;
                }
                // raft-rs answers or ignores a message of an older term and never applies it;
                // counted so a forged or lagging sender shows.
                if message.term != 0 && message.term < peer.node.raft.term {
                    refused.with_label_values(&["stale_term"]).inc();
                }
                peer.note_heard(message.from);
                if let Err(e) = peer.node.step(message) {
                    debug!(group, error = %e, "raft message not stepped");
                }
            }
            Verdict::Drop => refused.with_label_values(&["before_creation"]).inc(),
            Verdict::StaleSender | Verdict::OlderIncarnation { .. } => {
                refused
                    .with_label_values(&[if older {
                        "older_incarnation"
                    } else {
                        "stale_sender"
                    }])
                    .inc();
                let from = message.from;
                let now = Instant::now();
                let due = self
                    .notices
                    .get(&(group, from))
                    .is_none_or(|t| now.duration_since(*t) >= TOMBSTONE_EVERY);
                if self.notices.len() >= MAX_NOTICES {
                    self.notices
                        .retain(|_, t| now.duration_since(*t) < TOMBSTONE_EVERY);
                }
                // Still full: every entry is recent; this notice waits for a later message.
                if due && self.notices.len() < MAX_NOTICES {
                    self.notices.insert((group, from), now);
                    info!(
                        group,
                        from,
                        their_epoch = epoch,
                        our_epoch = local,
                        older_incarnation = older,
                        "message from a removed replica; telling it"
                    );
                    self.sink.send_tombstone(group, notice_epoch, from, older);
                }
            }
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
        let engine = peer.engine().clone();
        crate::group_storage::stage_destroy(engine.as_ref(), group, &mut batch);
        if let Ok(mut board) = self.board.write() {
            board.remove(&group);
        }
        drop(peer);
        write_timed(engine.as_ref(), &batch, true).map_err(|e| {
            error!(group, error = %e, "destroying a replica failed");
            RequestError::Failed(e.to_string())
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
