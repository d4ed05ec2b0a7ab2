//! Delivery: the membership simulation's [`Packet`]s, and the `impl Sim` that handles a
//! replica's Readies and sends them (each message with its sender's epoch), and judges what
//! arrives by the real `epoch::check` as the raft loop does: a refused stale sender is sent a
//! tombstone notice, which destroys it if it is older than the notice.

use surge_raftstore::epoch::{self, Verdict};
use surge_raftstore::raft::eraftpb::{ConfChangeV2, Message};
use surge_raftstore::{Applied as AppliedEntry, ApplyResult};
use surge_shard::{Applied, ItemOutcome, ShardOutput};
use surge_sim::{Round, ShardSim as _};

use crate::books::Membership;
use crate::sim::Sim;
use crate::TOMBSTONE_EVERY;

/// A peer with more Readies than this after one operation is stuck in a loop.
const MAX_READY_ROUNDS: usize = 64;

#[derive(Clone, Debug)]
pub(crate) enum Packet {
    Raft {
        shard: u32,
        /// The sender's epoch, as the real envelope carries it.
        epoch: u64,
        /// Harness bookkeeping, not on the wire: the epoch the sending replica was created
        /// at, which tells its incarnations apart.
        incarnation: u64,
        msg: Message,
    },
    /// Node `from` tells node `to` it is no member of `shard` as of `epoch` — or, with
    /// `older_incarnation`, that `to`'s id joined at `epoch`, after its replica was created.
    Tombstone {
        shard: u32,
        epoch: u64,
        from: u64,
        to: u64,
        older_incarnation: bool,
    },
}

impl surge_sim::Packet for Packet {
    fn ends(&self) -> (u64, u64) {
        match self {
            Packet::Raft { msg, .. } => (msg.from, msg.to),
            Packet::Tombstone { from, to, .. } => (*from, *to),
        }
    }
}

// Readies, messages and notices.
impl Sim {
    /// Handles the replica's Readies until it has none: records the configurations they
    /// applied, sends their messages and answers the submits they completed.
    pub(crate) fn handle_readies(&mut self, id: u64, shard: u32) {
        for _ in 0..MAX_READY_ROUNDS {
            let Some(Round {
                out,
                installed_snapshot: installing,
            }) = self.cluster.handle_ready(id, shard)
            else {
                return;
            };
            let peer = self.cluster.peer(id, shard).expect("ran");
            // The raft loop proposes leaving a joint configuration after every round.
            let leave = peer.needs_leave_joint();
            if leave {
                let _ = peer
                    .node
                    .propose_conf_change(Vec::new(), ConfChangeV2::default());
            }
            let epoch = peer.epoch();
            self.stats.auto_leaves += u64::from(leave);
            self.stats.snapshots_installed += u64::from(installing);
            let confs: Vec<Membership> = out
                .applied
                .iter()
                .filter_map(|a| match &a.result {
                    ApplyResult::ConfChange(cs) => Some(Membership::of(cs)),
                    _ => None,
                })
                .collect();
            // The configuration and epoch move only at a conf change or a snapshot.
            if installing || !confs.is_empty() {
                self.note_confs(id, shard, epoch, confs);
                self.note_state(id, shard);
            }
            self.send_all(id, shard, epoch, out.messages);
            self.complete(id, shard, &out.applied);
        }
        panic!("node {id} shard {shard}: endless Readies");
    }

    /// Records the configuration each conf change of one Ready produced: every one bumped the
    /// epoch by one, so they end at `epoch`.
    fn note_confs(&mut self, id: u64, shard: u32, epoch: u64, confs: Vec<Membership>) {
        let n = confs.len() as u64;
        for (k, m) in (0u64..).zip(confs) {
            let at = epoch + 1 + k - n;
            self.trace(|| format!("node {id} shard {shard} applies epoch {at}: {m:?}"));
            let result = self.epochs.record(shard, at, id, m);
            self.cluster.flag(result);
        }
    }

    /// Checks a replica's stored configuration against raft-rs's and the epoch book, and that
    /// its epoch never goes back (nor below its creation epoch).
    pub(crate) fn note_state(&mut self, id: u64, shard: u32) {
        let Some(peer) = self.cluster.peer_ref(id, shard) else {
            return;
        };
        let created = self.record(id, shard).map_or(0, |r| r.epoch);
        let stored = Membership::of(peer.conf_state());
        let live = Membership::of(&peer.node.raft.prs().conf().to_conf_state());
        let epoch = peer.epoch();
        let floor = self
            .epoch_floor
            .get(&(id, shard))
            .copied()
            .unwrap_or(created);
        let result = if epoch < floor {
            Err(format!(
                "node {id} shard {shard}: epoch went back from {floor} to {epoch}"
            ))
        } else if stored != live {
            Err(format!(
                "node {id} shard {shard} epoch {epoch}: raft-rs runs {live:?}, storage holds \
                 {stored:?}"
            ))
        } else if stored.is_empty() {
            Ok(())
        } else {
            self.epochs.record(shard, epoch, id, stored)
        };
        self.epoch_floor.insert((id, shard), epoch.max(floor));
        self.cluster.flag(result);
    }

    /// Sends a Ready's messages with the sender's epoch, as `RaftLoop::send_messages` does.
    fn send_all(&mut self, id: u64, shard: u32, epoch: u64, messages: Vec<Message>) {
        let incarnation = self.record(id, shard).map_or(0, |r| r.epoch);
        let wrap = |msg| Packet::Raft {
            shard,
            epoch,
            incarnation,
            msg,
        };
        self.stats.snapshots_sent += self.cluster.send_ready(id, shard, messages, wrap);
    }

    /// Answers the submits whose entries applied.
    fn complete(&mut self, id: u64, shard: u32, applied: &[AppliedEntry<ShardOutput>]) {
        let Some(waits) = self.waiting.get_mut(&(id, shard)) else {
            return;
        };
        let mut done = Vec::new();
        for a in applied {
            waits.retain(|w| {
                if w.index != a.index {
                    return true;
                }
                if let (true, ApplyResult::Command(result)) = (w.term == a.term, &a.result) {
                    done.push((w.ext.clone(), result.clone()));
                }
                false
            });
        }
        for (ext, result) in done {
            let outcome = match result {
                Ok(Applied::Submitted(items)) => items.into_iter().next(),
                other => {
                    self.cluster
                        .flag(Err(format!("a submit of {ext} answered {other:?}")));
                    continue;
                }
            };
            match outcome {
                Some(ItemOutcome::Accepted(a)) => {
                    self.stats.acked += 1;
                    self.acked.insert(ext, (shard, a.order_id));
                }
                other => self
                    .cluster
                    .flag(Err(format!("a fresh {ext} was answered {other:?}"))),
            }
        }
    }

    pub(crate) fn deliver(&mut self) {
        for packet in self.cluster.take_due() {
            match packet {
                Packet::Raft {
                    shard,
                    epoch,
                    incarnation,
                    msg,
                } => self.deliver_raft(shard, epoch, incarnation, msg),
                Packet::Tombstone {
                    shard,
                    epoch,
                    to,
                    older_incarnation,
                    ..
                } => self.deliver_notice(shard, epoch, to, older_incarnation),
            }
        }
    }

    /// `RaftLoop::on_message`: a message for a group the node does not run is dropped; the
    /// others are judged by their epoch first.
    fn deliver_raft(&mut self, shard: u32, epoch: u64, incarnation: u64, msg: Message) {
        let (from, to) = (msg.from, msg.to);
        let Some(peer) = self.cluster.peer(to, shard) else {
            self.stats.no_group += 1;
            let removed = self.record(to, shard).is_some_and(|r| r.tombstone);
            if removed {
                self.stats.late_for_removed += 1;
                let result = self.check_stays_removed(to, shard);
                self.cluster.flag(result);
            }
            return;
        };
        let local = peer.epoch();
        let since = peer.member_since(from);
        match epoch::check(local, peer.conf_state(), from, since, epoch) {
            Verdict::Accept => {
                let conf = Membership::of(peer.conf_state());
                let current = msg.term >= peer.term();
                let result = if current && self.sender_check {
                    self.check_sender_alive(shard, local, &conf, incarnation, &msg)
                } else {
                    Ok(())
                };
                self.cluster.flag(result);
                if let Some(peer) = self.cluster.peer(to, shard) {
                    let _ = peer.node.step(msg);
                }
                self.drain(to, shard);
            }
            Verdict::Drop => self.stats.refused_before_creation += 1,
            Verdict::StaleSender => {
                self.trace(|| {
                    format!("node {to} shard {shard} at {local}: stale {from} at {epoch}")
                });
                self.stats.stale_refusals += 1;
                self.notify(to, shard, local, from, false);
            }
            Verdict::OlderIncarnation { since } => {
                self.trace(|| {
                    format!(
                        "node {to} shard {shard}: {from} at {epoch} predates its join at {since}"
                    )
                });
                self.stats.older_incarnation_refusals += 1;
                self.notify(to, shard, since, from, true);
            }
        }
    }

    /// Tells a removed replica so, at most once per `TOMBSTONE_EVERY`.
    fn notify(&mut self, informant: u64, shard: u32, epoch: u64, removed: u64, older: bool) {
        let key = (informant, shard, removed);
        if self
            .notices
            .get(&key)
            .is_some_and(|t| self.cluster.now - t < TOMBSTONE_EVERY)
        {
            return;
        }
        self.notices.insert(key, self.cluster.now);
        self.stats.notices_sent += 1;
        let _ = self.cluster.send(Packet::Tombstone {
            shard,
            epoch,
            from: informant,
            to: removed,
            older_incarnation: older,
        });
    }

    /// `Replicas::on_tombstone`: destroy the replica if it is older than the notice (for an
    /// older incarnation: created before its id joined, tombstone just below that epoch).
    fn deliver_notice(&mut self, shard: u32, epoch: u64, to: u64, older: bool) {
        let Some(peer) = self.cluster.peer_ref(to, shard) else {
            return;
        };
        let created = self.record(to, shard).map_or(0, |r| r.epoch);
        let (stale, tombstone_at) = if older {
            (created < epoch, epoch.saturating_sub(1))
        } else {
            (peer.epoch().max(created) < epoch, epoch)
        };
        if !stale {
            self.stats.notices_ignored += 1;
            return;
        }
        self.destroy_replica(to, shard, tombstone_at);
        self.stats.notice_destroys += 1;
    }
}
