//! Steps 3 and 4 of the planner, once repair and drain have had their turn: replica
//! balance (by count, or by bytes when shard sizes differ widely) and leader balance.

use std::collections::BTreeSet;

use super::{Planner, ALIKE_RATIO, SMALL_SHARD_BYTES};
use crate::operator::{OperatorKind, Reason};

impl Planner<'_> {
    pub(super) fn sizes_alike(&self) -> bool {
        // Only reported sizes: a shard nobody reported on is not a 0-byte shard.
        let sizes: Vec<u64> = self
            .shards
            .values()
            .filter_map(|s| s.view.as_ref().map(|v| v.bytes))
            .collect();
        let max = sizes.iter().max().copied().unwrap_or(0);
        let min = sizes.iter().min().copied().unwrap_or(0);
        max < SMALL_SHARD_BYTES || max <= min.saturating_mul(ALIKE_RATIO)
    }

    /// A shard on `src` that can move to `dst` without hurting it: healthy, `dst` holds no
    /// replica of it, zones no less spread; preferring shards `src` does not lead, then the
    /// size `want` (or the smallest), then the lowest id.
    pub(super) fn movable(&self, src: u64, dst: u64, fits: impl Fn(u64) -> bool) -> Option<u32> {
        let mut best: Option<(bool, u64, u32)> = None;
        for (shard, voters) in &self.voters {
            if !voters.contains(&src) || voters.contains(&dst) {
                continue;
            }
            let Some(view) = self.workable(*shard) else {
                continue;
            };
            if view.is_member(dst) || view.is_joint() || !self.leader_has_room(*shard) {
                continue;
            }
            let healthy =
                voters.len() == self.limits.replicas && voters.iter().all(|v| self.eligible(*v));
            if !healthy {
                continue;
            }
            let before: BTreeSet<&str> = voters.iter().map(|n| self.zone(*n)).collect();
            let after: BTreeSet<&str> = voters
                .iter()
                .filter(|n| **n != src)
                .map(|n| self.zone(*n))
                .chain([self.zone(dst)])
                .collect();
            if after.len() < before.len() {
                continue;
            }
            let bytes = view.bytes;
            if !fits(bytes) {
                continue;
            }
            let key = (view.leader == src, bytes, *shard);
            if best.is_none_or(|b| key < b) {
                best = Some(key);
            }
        }
        best.map(|(_, _, s)| s)
    }

    pub(super) fn balance_replicas(&mut self) {
        let by_bytes = !self.sizes_alike();
        while self.budget > 0 {
            let found = if by_bytes {
                self.next_bytes_move()
            } else {
                self.next_count_move()
            };
            let Some((shard, from, to)) = found else {
                return;
            };
            self.start(
                shard,
                OperatorKind::MoveReplica { from, to },
                Reason::Balance,
            );
        }
    }

    pub(super) fn next_count_move(&self) -> Option<(u32, u64, u64)> {
        let counts = self.counts();
        let mut srcs: Vec<(u64, usize)> = counts.iter().map(|(n, c)| (*n, *c)).collect();
        srcs.sort_by_key(|(n, c)| (std::cmp::Reverse(*c), *n));
        let mut dsts = srcs.clone();
        dsts.sort_by_key(|(n, c)| (*c, *n));
        for (src, high) in &srcs {
            for (dst, low) in &dsts {
                if high.saturating_sub(*low) <= 1 {
                    break;
                }
                if !self.has_snapshot_room(*dst) {
                    continue;
                }
                if let Some(shard) = self.movable(*src, *dst, |_| true) {
                    return Some((shard, *src, *dst));
                }
            }
        }
        None
    }

    pub(super) fn next_bytes_move(&self) -> Option<(u32, u64, u64)> {
        let bytes = self.node_bytes();
        let mut srcs: Vec<(u64, u64)> = bytes.iter().map(|(n, b)| (*n, *b)).collect();
        srcs.sort_by_key(|(n, b)| (std::cmp::Reverse(*b), *n));
        let mut dsts = srcs.clone();
        dsts.sort_by_key(|(n, b)| (*b, *n));
        for (src, high) in &srcs {
            for (dst, low) in &dsts {
                let gap = high.saturating_sub(*low);
                if gap == 0 {
                    break;
                }
                if !self.has_snapshot_room(*dst) {
                    continue;
                }
                // Only a strict improvement: the pair's larger side shrinks.
                if let Some(shard) = self.movable(*src, *dst, |b| b > 0 && b <= gap / 2) {
                    return Some((shard, *src, *dst));
                }
            }
        }
        None
    }

    pub(super) fn balance_leaders(&mut self) {
        while self.budget > 0 {
            let Some((shard, from, to)) = self.next_leader_move() else {
                return;
            };
            self.start(
                shard,
                OperatorKind::TransferLeader { from, to },
                Reason::BalanceLeader,
            );
        }
    }

    pub(super) fn next_leader_move(&self) -> Option<(u32, u64, u64)> {
        let leaders = self.leaders();
        let mut srcs: Vec<(u64, usize)> = leaders.iter().map(|(n, c)| (*n, *c)).collect();
        srcs.sort_by_key(|(n, c)| (std::cmp::Reverse(*c), *n));
        for (src, high) in srcs {
            for (shard, leader) in &self.leader {
                if *leader != src {
                    continue;
                }
                let Some(view) = self.workable(*shard) else {
                    continue;
                };
                if view.is_joint() || view.leader != src {
                    continue;
                }
                let Some(to) = self.leader_target(*shard, view, src, true) else {
                    continue;
                };
                if leaders.get(&to).copied().unwrap_or(0) + 1 < high {
                    return Some((*shard, src, to));
                }
            }
        }
        None
    }
}
