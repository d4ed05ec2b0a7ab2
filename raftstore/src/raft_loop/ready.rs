//! The loop's Ready round: every group's Ready staged into one synced write (group commit), the
//! committed entries applied into one more, then messages sent, proposers answered and reads
//! served.

use std::time::Instant;

use raft::eraftpb::{ConfChangeV2, Message, MessageType};
use raft::{SnapshotStatus, StateRole};
use tracing::{info, warn};

use super::{RaftLoop, SLOW_ROUND};
use crate::engine::{Engine, WriteBatch};
use crate::group_status::publish;
use crate::metrics::write_timed;
use crate::metrics::RaftMetrics;
use crate::peer::{ApplyResult, PeerError, ReadyOutput};
use crate::pending::Waiter;
use crate::raft_handle::RequestError;
use crate::state_machine::StateMachine;

impl<E: Engine, S: StateMachine> RaftLoop<E, S> {
    /// One round: every group's Ready is staged into one batch, written with one fsync
    /// (group commit), and only then are persisted messages sent and entries applied.
    pub(super) fn process_readies(&mut self) -> Result<(), PeerError> {
        let started = Instant::now();
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
        let staged_at = Instant::now();
        let raft_bytes = batch.size_bytes();
        if let Some(engine) = &engine {
            if !batch.is_empty() {
                write_timed(engine.as_ref(), &batch, true)?;
                RaftMetrics::get()
                    .groups_per_write
                    .observe(staged.len() as f64);
            }
        }
        let written_at = Instant::now();
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
        let applied_at = Instant::now();
        if let Some(engine) = engine {
            if !apply.is_empty() {
                write_timed(engine.as_ref(), &apply, false)?;
            }
        }
        let round = started.elapsed();
        if round >= SLOW_ROUND {
            // Every group of the process waited this long: say where the time went.
            warn!(
                groups = outputs.len(),
                raft_bytes,
                apply_bytes = apply.size_bytes(),
                stage_ms = staged_at.duration_since(started).as_millis() as u64,
                raft_write_ms = written_at.duration_since(staged_at).as_millis() as u64,
                apply_ms = applied_at.duration_since(written_at).as_millis() as u64,
                apply_write_ms = applied_at.elapsed().as_millis() as u64,
                "slow raft round"
            );
        }
        RaftMetrics::get()
            .round_seconds
            .observe(round.as_secs_f64());
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

    fn send_messages(&mut self, group: u64, messages: Vec<Message>) {
        let metrics = RaftMetrics::get();
        let label = group.to_string();
        let epoch = self.peers.get(&group).map_or(0, |p| p.epoch());
        for msg in messages {
            let is_snapshot = msg.get_msg_type() == MessageType::MsgSnapshot;
            let to = msg.to;
            let sent = self.sink.send(group, epoch, msg);
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
    }

    fn after_ready(&mut self, group: u64, out: ReadyOutput<S::Output>) {
        let metrics = RaftMetrics::get();
        let label = group.to_string();
        self.send_messages(group, out.messages);
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
