//! The coordinator stand-in: the leader's report, the operator's step function that moves one
//! replica (`coordinator::operator::move_replica`), and the directives on their way to a
//! leader. The decisions are pure; `operator.rs` runs them against the cluster.

use std::collections::{BTreeMap, BTreeSet};

use surge_node::replicas::FOUNDING_EPOCH;
use surge_proto::v1::ConfChangeStep;
use surge_raftstore::raft::ProgressState;
use surge_sim::ShardPeer;

use crate::books::Membership;
use crate::{CATCH_UP_SLACK, FOUNDERS, SHARDS};

#[derive(Clone, Copy, Debug)]
pub(crate) struct Progress {
    pub(crate) matched: u64,
    pub(crate) snapshot: bool,
    /// Heard from within the leader's last check-quorum round.
    pub(crate) active: bool,
}

/// What a shard's leader reports in its heartbeat.
#[derive(Clone, Debug)]
pub(crate) struct Report {
    pub(crate) leader: u64,
    pub(crate) epoch: u64,
    pub(crate) membership: Membership,
    pub(crate) commit: u64,
    pub(crate) followers: BTreeMap<u64, Progress>,
}

impl Report {
    pub(crate) fn of(peer: &ShardPeer) -> Report {
        let followers = peer
            .node
            .raft
            .prs()
            .iter()
            .filter(|(id, _)| **id != peer.id())
            .map(|(id, p)| {
                let snapshot = p.state == ProgressState::Snapshot;
                (
                    *id,
                    Progress {
                        matched: p.matched,
                        snapshot,
                        active: p.recent_active,
                    },
                )
            })
            .collect();
        Report {
            leader: peer.id(),
            epoch: peer.epoch(),
            membership: Membership::of(peer.conf_state()),
            commit: peer.commit_index(),
            followers,
        }
    }

    /// `coordinator::shard_view::ShardView::caught_up`.
    pub(crate) fn caught_up(&self, id: u64) -> bool {
        id == self.leader
            || self.followers.get(&id).is_some_and(|f| {
                !f.snapshot && f.matched > 0 && f.matched + CATCH_UP_SLACK >= self.commit
            })
    }

    /// `ShardView::can_lead`: caught up and heard from lately.
    pub(crate) fn can_lead(&self, id: u64) -> bool {
        self.caught_up(id) && self.followers.get(&id).is_some_and(|f| f.active)
    }
}

/// Replace the replica of a shard on `from` by one on `to`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Move {
    pub(crate) from: u64,
    pub(crate) to: u64,
}

/// What the shard's leader is asked to do (`coordinator::operator::Instruction`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Instruction {
    AddLearner(u64),
    EnterJoint { promote: u64, demote: u64 },
    LeaveJoint,
    Remove(u64),
    TransferLeader(u64),
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    Do(Instruction),
    Wait,
    Done,
    Failed(String),
}

/// The operator step as a `ConfChangeStep`, which the node's executor turns into Raft.
pub(crate) fn step_of(what: Instruction) -> ConfChangeStep {
    match what {
        Instruction::AddLearner(id) => ConfChangeStep {
            add_learners: vec![id],
            ..ConfChangeStep::default()
        },
        Instruction::EnterJoint { promote, demote } => ConfChangeStep {
            promote: vec![promote],
            demote: vec![demote],
            joint: true,
            ..ConfChangeStep::default()
        },
        Instruction::LeaveJoint => ConfChangeStep {
            leave_joint: true,
            ..ConfChangeStep::default()
        },
        Instruction::Remove(id) => ConfChangeStep {
            remove: vec![id],
            ..ConfChangeStep::default()
        },
        Instruction::TransferLeader(_) => ConfChangeStep::default(),
    }
}

/// A caught-up live voter other than `not` and the leader, the lowest id first.
fn transfer_target(r: &Report, not: u64, alive: &BTreeSet<u64>) -> Decision {
    r.membership
        .voters
        .iter()
        .copied()
        .filter(|v| *v != not && *v != r.leader && alive.contains(v) && r.can_lead(*v))
        .min()
        .map_or(Decision::Wait, |t| {
            Decision::Do(Instruction::TransferLeader(t))
        })
}

/// `coordinator::operator::move_replica`, from the leader's report.
pub(crate) fn decide(r: &Report, mv: &Move, alive: &BTreeSet<u64>) -> Decision {
    let (from, to) = (mv.from, mv.to);
    let m = &r.membership;
    let to_voter = m.voters.contains(&to);
    if to_voter && !m.contains(from) {
        return Decision::Done;
    }
    if m.is_joint() {
        return Decision::Do(Instruction::LeaveJoint);
    }
    if to_voter {
        if r.leader == from {
            return transfer_target(r, from, alive);
        }
        return Decision::Do(Instruction::Remove(from));
    }
    if !m.voters.contains(&from) {
        return Decision::Failed(format!("node {from} no longer holds a voter"));
    }
    if !m.contains(to) {
        return Decision::Do(Instruction::AddLearner(to));
    }
    if !r.caught_up(to) {
        return Decision::Wait;
    }
    if r.leader == from {
        return transfer_target(r, from, alive);
    }
    Decision::Do(Instruction::EnterJoint {
        promote: to,
        demote: from,
    })
}

/// An instruction on its way to the leader it was computed for.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Directive {
    pub(crate) at: u64,
    pub(crate) node: u64,
    pub(crate) shard: u32,
    pub(crate) epoch: u64,
    pub(crate) what: Instruction,
    /// The executor let it through; the raft loop judges it next.
    pub(crate) executed: bool,
}

pub(crate) struct Coordinator {
    /// Per shard: the newest epoch a leader reported, and its configuration (the routing
    /// table nodes reconcile against).
    pub(crate) routes: BTreeMap<u32, (u64, Membership)>,
    pub(crate) moves: BTreeMap<u32, Move>,
    /// Per shard: the voters the finished moves left.
    pub(crate) intended: BTreeMap<u32, BTreeSet<u64>>,
    pub(crate) outbox: Vec<Directive>,
}

impl Coordinator {
    pub(crate) fn new() -> Coordinator {
        let founders = Membership::voters(&FOUNDERS);
        Coordinator {
            routes: (0..SHARDS)
                .map(|s| (s, (FOUNDING_EPOCH, founders.clone())))
                .collect(),
            moves: BTreeMap::new(),
            intended: (0..SHARDS).map(|s| (s, founders.voters.clone())).collect(),
            outbox: Vec::new(),
        }
    }

    pub(crate) fn take_report(&mut self, shard: u32, r: &Report) {
        let route = self.routes.entry(shard).or_default();
        if r.epoch > route.0 {
            *route = (r.epoch, r.membership.clone());
        }
    }
}
