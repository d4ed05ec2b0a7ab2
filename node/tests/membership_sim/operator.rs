//! The coordinator's side of a step, as an `impl Sim`: it reads the shard leaders' reports,
//! starts and drives replica moves through the operator step function (`coordinator.rs`),
//! and its directives reach the leader a little later, where the executor's and the raft
//! loop's epoch checks refuse them if the shard moved on. Nodes heartbeat and reconcile their
//! replicas against the coordinator's routes, like `node::replicas`.

use std::collections::BTreeSet;

use rand::Rng;
use surge_node::instructions::conf_change_of;
use surge_sim::{ShardPeer, ShardSim as _};

use crate::coordinator::{decide, step_of, Decision, Directive, Instruction, Move, Report};
use crate::sim::Sim;
use crate::{COORD_EVERY, HEARTBEAT_EVERY, MOVE_CHANCE, NODES, SHARDS, TRANSFER_MAX_LAG};

impl Sim {
    /// The report of the leader with the highest term, if any replica leads.
    fn report(&self, shard: u32) -> Option<Report> {
        let mut best: Option<&ShardPeer> = None;
        for node in self.cluster.nodes.values() {
            let Some(peer) = node.peers.as_ref().and_then(|p| p.get(&shard)) else {
                continue;
            };
            if peer.is_leader() && best.is_none_or(|b| peer.term() > b.term()) {
                best = Some(peer);
            }
        }
        best.map(Report::of)
    }

    fn alive(&self) -> BTreeSet<u64> {
        NODES
            .into_iter()
            .filter(|id| self.cluster.is_up(*id))
            .collect()
    }

    pub(crate) fn coordinate(&mut self) {
        if !self.cluster.now.is_multiple_of(COORD_EVERY) {
            return;
        }
        for shard in 0..SHARDS {
            let Some(report) = self.report(shard) else {
                continue;
            };
            self.coord.take_report(shard, &report);
            if self.coord.moves.contains_key(&shard) {
                self.drive_move(shard, &report);
            } else if self.moving && self.cluster.rng.gen_bool(MOVE_CHANCE) {
                self.start_move(shard);
            }
        }
    }

    fn drive_move(&mut self, shard: u32, report: &Report) {
        let Some(mv) = self.coord.moves.get(&shard).copied() else {
            return;
        };
        match decide(report, &mv, &self.alive()) {
            Decision::Done => {
                self.coord.moves.remove(&shard);
                let voters = report.membership.voters.clone();
                self.coord.intended.insert(shard, voters);
                self.stats.moves_done += 1;
                self.trace(|| format!("shard {shard}: {mv:?} done"));
            }
            Decision::Failed(why) => {
                self.coord.moves.remove(&shard);
                self.cluster
                    .flag(Err(format!("shard {shard}: {mv:?} failed: {why}")));
            }
            Decision::Wait => {}
            Decision::Do(what) => {
                let at = self.cluster.now + self.cluster.rng.gen_range(1..4);
                self.coord.outbox.push(Directive {
                    at,
                    node: report.leader,
                    shard,
                    epoch: report.epoch,
                    what,
                    executed: false,
                });
            }
        }
    }

    /// Moves a random voter of the shard to a random node that holds no replica of it.
    fn start_move(&mut self, shard: u32) {
        let (_, route) = &self.coord.routes[&shard];
        if route.is_joint() || !route.learners.is_empty() || route.voters.len() != 3 {
            return;
        }
        let voters: Vec<u64> = route.voters.iter().copied().collect();
        let spare: Vec<u64> = NODES
            .into_iter()
            .filter(|id| !route.contains(*id))
            .collect();
        let from = voters[self.cluster.rng.gen_range(0..voters.len())];
        let to = spare[self.cluster.rng.gen_range(0..spare.len())];
        self.coord.moves.insert(shard, Move { from, to });
        self.trace(|| format!("shard {shard}: move {from} -> {to} starts"));
        self.stats.moves_started += 1;
    }

    pub(crate) fn run_directives(&mut self) {
        let (due, later): (Vec<Directive>, Vec<Directive>) = std::mem::take(&mut self.coord.outbox)
            .into_iter()
            .partition(|d| d.at <= self.cluster.now);
        self.coord.outbox = later;
        for d in due {
            if d.executed {
                self.loop_request(d);
            } else {
                self.execute(d);
            }
        }
    }

    /// `Executor::run`: only the leader the step was computed for, at that epoch, acts on it;
    /// it hands the change to its raft loop, which sees it a tick later.
    fn execute(&mut self, d: Directive) {
        let Some(peer) = self.cluster.peer(d.node, d.shard) else {
            return;
        };
        if !peer.is_leader() || peer.epoch() != d.epoch {
            self.stats.stale_directives += 1;
            return;
        }
        self.coord.outbox.push(Directive {
            at: self.cluster.now + 1,
            executed: true,
            ..d
        });
    }

    fn loop_request(&mut self, d: Directive) {
        self.trace(|| {
            format!(
                "node {} shard {}: {:?} at epoch {}",
                d.node, d.shard, d.what, d.epoch
            )
        });
        match d.what {
            Instruction::TransferLeader(to) => self.transfer_leader(d.node, d.shard, to),
            what => self.propose_change(d.node, d.shard, what, d.epoch),
        }
        self.drain(d.node, d.shard);
    }

    /// `RaftLoop::on_conf_change`: the leader checks the epoch the change was meant for, and
    /// that no other change is in progress, before proposing.
    fn propose_change(&mut self, id: u64, shard: u32, what: Instruction, want: u64) {
        let cc = conf_change_of(&step_of(what)).expect("a valid step");
        let Some(peer) = self.cluster.peer(id, shard) else {
            return;
        };
        if !peer.is_leader() {
            return;
        }
        if peer.epoch() != want {
            self.stats.epoch_rejections += 1;
            return;
        }
        let joint = !peer.conf_state().voters_outgoing.is_empty();
        if peer.node.raft.has_pending_conf() || joint && !cc.changes.is_empty() {
            self.stats.busy_rejections += 1;
            return;
        }
        if peer.node.propose_conf_change(Vec::new(), cc).is_ok() {
            self.stats.changes_proposed += 1;
        }
    }

    /// `RaftLoop::on_transfer_leader`.
    fn transfer_leader(&mut self, id: u64, shard: u32, to: u64) {
        let Some(peer) = self.cluster.peer(id, shard) else {
            return;
        };
        if !peer.is_leader() || peer.id() == to {
            return;
        }
        if !peer.conf_state().voters.contains(&to) || peer.node.raft.has_pending_conf() {
            return;
        }
        let last = peer.node.raft.raft_log.last_index();
        let matched = peer.node.raft.prs().get(to).map_or(0, |p| p.matched);
        if last.saturating_sub(matched) > TRANSFER_MAX_LAG {
            return;
        }
        peer.node.transfer_leader(to);
        self.stats.transfers += 1;
    }

    /// Every node heartbeats now and then (some heartbeats get lost) and reconciles.
    pub(crate) fn heartbeats(&mut self) {
        for id in NODES {
            if !(self.cluster.now + id).is_multiple_of(HEARTBEAT_EVERY) || !self.cluster.is_up(id) {
                continue;
            }
            if self.faulty() && self.cluster.rng.gen_bool(0.3) {
                continue;
            }
            self.reconcile(id);
        }
    }

    /// `Replicas::reconcile` against the coordinator's routes: create a replica where the
    /// node is named (unless a tombstone at that epoch or newer says no), destroy one the
    /// shard left at a newer epoch.
    fn reconcile(&mut self, id: u64) {
        let routes = self.coord.routes.clone();
        for (shard, (epoch, membership)) in routes {
            let record = self.record(id, shard);
            if membership.contains(id) {
                if record.is_none_or(|r| r.tombstone && r.epoch < epoch) {
                    self.create_replica(id, shard, epoch);
                }
            } else if record.is_some_and(|r| !r.tombstone && epoch > r.epoch) {
                self.destroy_replica(id, shard, epoch);
                self.stats.coordinator_destroys += 1;
            }
        }
    }
}
