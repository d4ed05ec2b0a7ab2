//! The scheduler's planner: a pure function from the cluster as the coordinator leader sees
//! it (nodes, shards with their leaders' latest reports, operators in flight) to the
//! operators to start now, within the limits.
//!
//! In order of priority, as PD's checkers:
//! 1. **Repair**: a voter on a node that is gone (removed, or down longer than
//!    `max_down_time`) is replaced elsewhere; a shard short of R voters gets one; a surplus
//!    voter or a learner no operator owns is removed; replicas sharing a zone move to a zone
//!    the shard lacks, where one is up.
//! 2. **Drain**: leaders leave a draining node first, then its replicas.
//! 3. **Replica balance**: from the node with the most replicas to the one with the fewest
//!    while they differ by more than one (by bytes instead when shard sizes differ widely).
//! 4. **Leader balance**: leadership moves to the voter with the fewest leaders while the
//!    counts differ by more than one — never to a node replicas are still being copied to
//!    (installing a snapshot stalls its raft loop, and with it the shards it leads).
//!
//! Every plan accounts for what operators in flight will do, never starts two operators on a
//! shard, never touches a shard whose leader has not reported lately, and never starts more
//! than the operator budget or more snapshots into or out of a node than allowed.

mod even;
mod repair;

use std::collections::{BTreeMap, BTreeSet};

use crate::meta::{NodeState, ShardInfo};
use crate::operator::{Operator, OperatorKind, Reason, Step};
use crate::shard_view::ShardView;

/// What the planner knows of a node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeFacts {
    pub id: u64,
    pub zone: String,
    pub state: NodeState,
    /// Heartbeated lately, with its stats (a node that only registered is not alive).
    pub alive: bool,
    /// How long it has been Down; None unless it is.
    pub down_for_ms: Option<u64>,
}

/// What the planner knows of a shard.
#[derive(Clone, Debug, PartialEq)]
pub struct ShardFacts {
    pub info: ShardInfo,
    /// Its leader's latest report, if fresh.
    pub view: Option<ShardView>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub replicas: usize,
    pub max_operators: usize,
    pub max_snapshots_per_node: usize,
    pub max_down_time_ms: u64,
}

/// An operator to start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NewOperator {
    pub shard: u32,
    pub kind: OperatorKind,
    pub reason: Reason,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub new: Vec<NewOperator>,
    /// Operators the planner would still start after these, with no limits (an estimate).
    pub pending: usize,
    /// Shards with fewer than R voters on up nodes.
    pub under_replicated: usize,
    /// max − min over up nodes, as things are now.
    pub replica_spread: usize,
    pub leader_spread: usize,
    /// Draining nodes that hold nothing and that no operator touches: ready to be Removable.
    pub drained: Vec<u64>,
}

/// Shard sizes count as alike (so counts are balanced, not bytes) when the largest is at
/// most this many times the smallest, or below [`SMALL_SHARD_BYTES`].
const ALIKE_RATIO: u64 = 2;
const SMALL_SHARD_BYTES: u64 = 64 << 20;

struct Planner<'a> {
    nodes: BTreeMap<u64, &'a NodeFacts>,
    shards: BTreeMap<u32, &'a ShardFacts>,
    limits: Limits,
    /// Voters each shard will have once the operators in flight (and planned) are done.
    voters: BTreeMap<u32, BTreeSet<u64>>,
    leader: BTreeMap<u32, u64>,
    busy: BTreeSet<u32>,
    snapshots: BTreeMap<u64, usize>,
    /// Nodes copies are going to (in flight or planned).
    receiving: BTreeSet<u64>,
    budget: usize,
    enforce_snapshots: bool,
    new: Vec<NewOperator>,
}

/// Plans the next operators; see the module docs.
pub fn plan(
    nodes: &[NodeFacts],
    shards: &[ShardFacts],
    in_flight: &[Operator],
    limits: &Limits,
) -> Plan {
    let budget = limits.max_operators.saturating_sub(in_flight.len());
    let mut now = Planner::new(nodes, shards, in_flight, limits, budget, true);
    now.run();
    let mut rest = Planner::new(nodes, shards, in_flight, limits, usize::MAX, false);
    rest.run();
    let mut drained: Vec<u64> = nodes
        .iter()
        .filter(|n| n.state == NodeState::Draining)
        .map(|n| n.id)
        .filter(|id| {
            shards.iter().all(|s| !s.info.is_member(*id))
                && in_flight.iter().all(|o| !o.nodes().contains(id))
        })
        .collect();
    drained.sort_unstable();
    let counts = now.current_counts();
    let leaders = now.current_leaders();
    let under_replicated = now.under_replicated();
    Plan {
        pending: rest.new.len().saturating_sub(now.new.len()),
        new: now.new,
        under_replicated,
        replica_spread: spread(&counts),
        leader_spread: spread(&leaders),
        drained,
    }
}

fn spread(counts: &BTreeMap<u64, usize>) -> usize {
    let max = counts.values().max().copied().unwrap_or(0);
    let min = counts.values().min().copied().unwrap_or(0);
    max - min
}

impl<'a> Planner<'a> {
    fn new(
        nodes: &'a [NodeFacts],
        shards: &'a [ShardFacts],
        in_flight: &[Operator],
        limits: &Limits,
        budget: usize,
        enforce_snapshots: bool,
    ) -> Planner<'a> {
        let mut p = Planner {
            nodes: nodes.iter().map(|n| (n.id, n)).collect(),
            shards: shards.iter().map(|s| (s.info.id, s)).collect(),
            limits: *limits,
            voters: BTreeMap::new(),
            leader: BTreeMap::new(),
            busy: BTreeSet::new(),
            snapshots: BTreeMap::new(),
            receiving: BTreeSet::new(),
            budget,
            enforce_snapshots,
            new: Vec::new(),
        };
        for s in shards {
            let voters = match &s.view {
                Some(v) => v.voters.iter().copied().collect(),
                None => s.info.voters.iter().copied().collect(),
            };
            p.voters.insert(s.info.id, voters);
            if let Some(v) = &s.view {
                p.leader.insert(s.info.id, v.leader);
            }
        }
        for op in in_flight {
            p.busy.insert(op.shard);
            p.project(op.shard, op.kind);
            let copying = matches!(op.step, Step::AddLearner | Step::CatchUp);
            if op.kind.adds_replica() && copying {
                p.count_snapshot(op.shard, op.kind);
            }
        }
        p
    }

    fn project(&mut self, shard: u32, kind: OperatorKind) {
        let voters = self.voters.entry(shard).or_default();
        match kind {
            OperatorKind::MoveReplica { from, to } => {
                voters.remove(&from);
                voters.insert(to);
                if self.leader.get(&shard) == Some(&from) {
                    self.leader.remove(&shard);
                }
            }
            OperatorKind::AddReplica { to } => {
                voters.insert(to);
            }
            OperatorKind::RemoveReplica { from } => {
                voters.remove(&from);
                if self.leader.get(&shard) == Some(&from) {
                    self.leader.remove(&shard);
                }
            }
            OperatorKind::TransferLeader { to, .. } => {
                self.leader.insert(shard, to);
            }
        }
    }

    fn count_snapshot(&mut self, shard: u32, kind: OperatorKind) {
        if let Some(to) = kind.to_node() {
            *self.snapshots.entry(to).or_default() += 1;
            self.receiving.insert(to);
        }
        if let Some(leader) = self.view(shard).map(|v| v.leader) {
            *self.snapshots.entry(leader).or_default() += 1;
        }
    }

    fn view(&self, shard: u32) -> Option<&'a ShardView> {
        self.shards.get(&shard).and_then(|s| s.view.as_ref())
    }

    fn eligible(&self, node: u64) -> bool {
        self.nodes
            .get(&node)
            .is_some_and(|n| n.state.takes_replicas() && n.alive)
    }

    /// A replica there is lost for good, and why.
    fn lost(&self, node: u64) -> Option<Reason> {
        match self.nodes.get(&node) {
            None => Some(Reason::Repair),
            Some(n) => match n.state {
                NodeState::Removed | NodeState::Removable => Some(Reason::Repair),
                NodeState::Down if n.down_for_ms.unwrap_or(0) > self.limits.max_down_time_ms => {
                    Some(Reason::DownNode)
                }
                _ => None,
            },
        }
    }

    fn draining(&self, node: u64) -> bool {
        self.nodes
            .get(&node)
            .is_some_and(|n| n.state == NodeState::Draining)
    }

    fn zone(&self, node: u64) -> &str {
        self.nodes.get(&node).map_or("", |n| n.zone.as_str())
    }

    fn has_snapshot_room(&self, node: u64) -> bool {
        !self.enforce_snapshots
            || self.snapshots.get(&node).copied().unwrap_or(0) < self.limits.max_snapshots_per_node
    }

    fn current_counts(&self) -> BTreeMap<u64, usize> {
        let mut counts: BTreeMap<u64, usize> = self
            .nodes
            .keys()
            .filter(|n| self.eligible(**n))
            .map(|n| (*n, 0))
            .collect();
        for s in self.shards.values() {
            for r in &s.info.replicas {
                if let Some(c) = counts.get_mut(r) {
                    *c += 1;
                }
            }
        }
        counts
    }

    fn current_leaders(&self) -> BTreeMap<u64, usize> {
        let mut counts: BTreeMap<u64, usize> = self
            .nodes
            .keys()
            .filter(|n| self.eligible(**n))
            .map(|n| (*n, 0))
            .collect();
        for s in self.shards.values() {
            if let Some(c) = s.view.as_ref().and_then(|v| counts.get_mut(&v.leader)) {
                *c += 1;
            }
        }
        counts
    }

    fn under_replicated(&self) -> usize {
        self.shards
            .values()
            .filter(|s| {
                let voters = match &s.view {
                    Some(v) => &v.voters,
                    None => &s.info.voters,
                };
                voters.iter().filter(|n| self.eligible(**n)).count() < self.limits.replicas
            })
            .count()
    }

    /// Projected replica counts per eligible node.
    fn counts(&self) -> BTreeMap<u64, usize> {
        let mut counts: BTreeMap<u64, usize> = self
            .nodes
            .keys()
            .filter(|n| self.eligible(**n))
            .map(|n| (*n, 0))
            .collect();
        for voters in self.voters.values() {
            for v in voters {
                if let Some(c) = counts.get_mut(v) {
                    *c += 1;
                }
            }
        }
        counts
    }

    fn bytes_of(&self, shard: u32) -> u64 {
        self.view(shard).map_or(0, |v| v.bytes)
    }

    /// Projected bytes per eligible node.
    fn node_bytes(&self) -> BTreeMap<u64, u64> {
        let mut bytes: BTreeMap<u64, u64> = self
            .nodes
            .keys()
            .filter(|n| self.eligible(**n))
            .map(|n| (*n, 0))
            .collect();
        for (shard, voters) in &self.voters {
            let b = self.bytes_of(*shard);
            for v in voters {
                if let Some(total) = bytes.get_mut(v) {
                    *total = total.saturating_add(b);
                }
            }
        }
        bytes
    }

    fn leaders(&self) -> BTreeMap<u64, usize> {
        let mut counts: BTreeMap<u64, usize> = self
            .nodes
            .keys()
            .filter(|n| self.eligible(**n))
            .map(|n| (*n, 0))
            .collect();
        for l in self.leader.values() {
            if let Some(c) = counts.get_mut(l) {
                *c += 1;
            }
        }
        counts
    }

    fn start(&mut self, shard: u32, kind: OperatorKind, reason: Reason) {
        self.busy.insert(shard);
        if kind.adds_replica() {
            self.count_snapshot(shard, kind);
        }
        self.project(shard, kind);
        self.budget = self.budget.saturating_sub(1);
        self.new.push(NewOperator {
            shard,
            kind,
            reason,
        });
    }

    /// A shard the planner may start an operator on, with its view.
    fn workable(&self, shard: u32) -> Option<&'a ShardView> {
        if self.busy.contains(&shard) {
            return None;
        }
        self.view(shard)
    }

    /// The best node to receive a new replica of `shard` next to `keep`.
    fn target(&self, shard: u32, keep: &BTreeSet<u64>) -> Option<u64> {
        let zones: BTreeSet<&str> = keep.iter().map(|n| self.zone(*n)).collect();
        let counts = self.counts();
        let members = self.view(shard).map(|v| v.members()).unwrap_or_default();
        self.nodes
            .keys()
            .copied()
            .filter(|n| self.eligible(*n) && !keep.contains(n) && !members.contains(n))
            .filter(|n| self.has_snapshot_room(*n))
            .min_by_key(|n| {
                (
                    zones.contains(self.zone(*n)),
                    counts.get(n).copied().unwrap_or(0),
                    *n,
                )
            })
    }

    fn leader_has_room(&self, shard: u32) -> bool {
        self.view(shard)
            .is_some_and(|v| self.has_snapshot_room(v.leader))
    }

    fn run(&mut self) {
        self.repair();
        self.drain_leaders();
        self.drain_replicas();
        self.balance_replicas();
        self.balance_leaders();
    }

    fn shard_ids(&self) -> Vec<u32> {
        // Shards with the fewest healthy voters first.
        let mut ids: Vec<u32> = self.shards.keys().copied().collect();
        ids.sort_by_key(|s| {
            let healthy = self
                .voters
                .get(s)
                .map_or(0, |v| v.iter().filter(|n| self.eligible(**n)).count());
            (healthy, *s)
        });
        ids
    }
}
