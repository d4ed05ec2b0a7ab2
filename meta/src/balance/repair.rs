//! Steps 1 and 2 of the planner: repair (replace voters on nodes gone for good, bring shards
//! to R voters, drop surplus voters and stray learners, spread zones) and drain (leaders off a
//! draining node first, then its replicas).

use std::collections::{BTreeMap, BTreeSet};

use super::Planner;
use crate::operator::{OperatorKind, Reason, CATCH_UP_SLACK};
use crate::shard_view::ShardView;

impl Planner<'_> {
    pub(super) fn repair(&mut self) {
        for shard in self.shard_ids() {
            if self.budget == 0 {
                return;
            }
            let Some(view) = self.workable(shard) else {
                continue;
            };
            let voters = self.voters.get(&shard).cloned().unwrap_or_default();
            let lost = voters.iter().find_map(|n| self.lost(*n).map(|r| (*n, r)));
            if let Some((from, reason)) = lost.filter(|_| voters.len() > self.limits.replicas) {
                // A surplus voter that is gone: simply remove it, nothing to copy.
                if from != view.leader {
                    self.start(shard, OperatorKind::RemoveReplica { from }, reason);
                }
                continue;
            }
            if let Some((from, reason)) = lost {
                let keep: BTreeSet<u64> = voters.iter().copied().filter(|n| *n != from).collect();
                if self.leader_has_room(shard) {
                    if let Some(to) = self.target(shard, &keep) {
                        self.start(shard, OperatorKind::MoveReplica { from, to }, reason);
                    }
                }
                continue;
            }
            if voters.len() < self.limits.replicas {
                if self.leader_has_room(shard) {
                    if let Some(to) = self.target(shard, &voters) {
                        self.start(shard, OperatorKind::AddReplica { to }, Reason::Repair);
                    }
                }
                continue;
            }
            if voters.len() > self.limits.replicas {
                let counts = self.counts();
                let victim = voters
                    .iter()
                    .copied()
                    .filter(|n| *n != view.leader)
                    .max_by_key(|n| (!self.eligible(*n), counts.get(n).copied().unwrap_or(0), *n));
                if let Some(from) = victim {
                    self.start(shard, OperatorKind::RemoveReplica { from }, Reason::Repair);
                }
                continue;
            }
            if let Some(learner) = view.learners.iter().copied().find(|l| !voters.contains(l)) {
                self.start(
                    shard,
                    OperatorKind::RemoveReplica { from: learner },
                    Reason::Repair,
                );
                continue;
            }
            self.repair_zones(shard, &voters, view.leader);
        }
    }

    /// Moves a replica sharing a zone with another to a zone the shard lacks, if one is up.
    pub(super) fn repair_zones(&mut self, shard: u32, voters: &BTreeSet<u64>, leader: u64) {
        let zones: BTreeSet<&str> = voters.iter().map(|n| self.zone(*n)).collect();
        let up_zones: BTreeSet<&str> = self
            .nodes
            .keys()
            .filter(|n| self.eligible(**n))
            .map(|n| self.zone(*n))
            .collect();
        let want = self.limits.replicas.min(up_zones.len());
        if zones.len() >= want || !self.leader_has_room(shard) {
            return;
        }
        let mut by_zone: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
        for v in voters {
            by_zone.entry(self.zone(*v)).or_default().push(*v);
        }
        let Some(from) = by_zone
            .values()
            .filter(|members| members.len() > 1)
            .flat_map(|members| members.iter().copied())
            .filter(|n| *n != leader)
            .max()
        else {
            return;
        };
        let keep: BTreeSet<u64> = voters.iter().copied().filter(|n| *n != from).collect();
        if let Some(to) = self.target(shard, &keep) {
            let new_zone = !keep.iter().any(|k| self.zone(*k) == self.zone(to));
            if new_zone {
                self.start(
                    shard,
                    OperatorKind::MoveReplica { from, to },
                    Reason::Repair,
                );
            }
        }
    }

    /// The voter of `view` other than `from` that should lead: eligible, caught up, fewest
    /// leaders. With `settled_only`, never a node replicas are being copied to: installing a
    /// snapshot stalls its whole raft loop for a moment, and the shards it leads with it.
    pub(super) fn leader_target(
        &self,
        shard: u32,
        view: &ShardView,
        from: u64,
        settled_only: bool,
    ) -> Option<u64> {
        let leaders = self.leaders();
        let voters = self.voters.get(&shard)?;
        voters
            .iter()
            .copied()
            .filter(|v| *v != from && self.eligible(*v) && view.can_lead(*v, CATCH_UP_SLACK))
            .filter(|v| !settled_only || !self.receiving.contains(v))
            .min_by_key(|v| (leaders.get(v).copied().unwrap_or(0), *v))
    }

    pub(super) fn drain_leaders(&mut self) {
        for shard in self.shard_ids() {
            if self.budget == 0 {
                return;
            }
            let Some(view) = self.workable(shard) else {
                continue;
            };
            if !self.draining(view.leader) || view.is_joint() {
                continue;
            }
            if let Some(to) = self.leader_target(shard, view, view.leader, false) {
                let kind = OperatorKind::TransferLeader {
                    from: view.leader,
                    to,
                };
                self.start(shard, kind, Reason::Drain);
            }
        }
    }

    pub(super) fn drain_replicas(&mut self) {
        for shard in self.shard_ids() {
            if self.budget == 0 {
                return;
            }
            let Some(view) = self.workable(shard) else {
                continue;
            };
            if !self.leader_has_room(shard) {
                continue;
            }
            // Leaders first: a shard the draining node still leads waits for its transfer.
            let voters = self.voters.get(&shard).cloned().unwrap_or_default();
            let Some(from) = voters
                .iter()
                .copied()
                .find(|n| self.draining(*n) && *n != view.leader)
            else {
                continue;
            };
            let keep: BTreeSet<u64> = voters.iter().copied().filter(|n| *n != from).collect();
            if let Some(to) = self.target(shard, &keep) {
                self.start(shard, OperatorKind::MoveReplica { from, to }, Reason::Drain);
            }
        }
    }
}
