//! [`ShardView`]: a shard as its leader last reported it in a heartbeat — configuration,
//! replication of every follower, size and write rate — and [`NodeView`], what a node said of
//! itself. Kept in the coordinator leader's memory only (never in the log): the next leader
//! rebuilds them from the next round of heartbeats.

use std::collections::BTreeMap;

use surge_proto::v1::{NodeStats, ReplicaStats};

/// The leader's view of one follower.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Follower {
    pub matched: u64,
    /// Being sent a snapshot.
    pub snapshot: bool,
    /// In raft-rs's replicate state (probing is over).
    pub replicating: bool,
    /// Heard from within the leader's last check-quorum round.
    pub active: bool,
}

/// One shard as its leader reported it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ShardView {
    pub shard: u32,
    /// The leader's node id.
    pub leader: u64,
    pub term: u64,
    pub epoch: u64,
    pub voters: Vec<u64>,
    pub learners: Vec<u64>,
    pub outgoing: Vec<u64>,
    pub learners_next: Vec<u64>,
    pub commit: u64,
    pub last_index: u64,
    pub applied: u64,
    pub pending_conf: bool,
    pub followers: BTreeMap<u64, Follower>,
    pub bytes: u64,
    pub writes_per_sec: f64,
    /// When the report arrived, by the coordinator's clock (ms).
    pub reported_at_ms: u64,
}

/// A node's own figures.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeView {
    pub disk_capacity: u64,
    pub disk_available: u64,
    pub used_bytes: u64,
    pub snapshots_sending: u32,
    pub snapshots_receiving: u32,
    pub reported_at_ms: u64,
}

impl NodeView {
    pub fn from_stats(stats: &NodeStats, now_ms: u64) -> NodeView {
        NodeView {
            disk_capacity: stats.disk_capacity_bytes,
            disk_available: stats.disk_available_bytes,
            used_bytes: stats.used_bytes,
            snapshots_sending: stats.snapshots_sending,
            snapshots_receiving: stats.snapshots_receiving,
            reported_at_ms: now_ms,
        }
    }
}

fn sorted(ids: &[u64]) -> Vec<u64> {
    let mut v = ids.to_vec();
    v.sort_unstable();
    v.dedup();
    v
}

impl ShardView {
    /// The view in a leader's report, or None when the report is not a leader's or carries
    /// no configuration.
    pub fn from_report(node: u64, r: &ReplicaStats, now_ms: u64) -> Option<ShardView> {
        if r.role != "leader" || r.voters.is_empty() {
            return None;
        }
        let followers = r
            .progress
            .iter()
            .map(|p| {
                (
                    p.node_id,
                    Follower {
                        matched: p.matched,
                        snapshot: p.state == "snapshot",
                        replicating: p.state == "replicate",
                        active: p.recent_active,
                    },
                )
            })
            .collect();
        Some(ShardView {
            shard: r.shard,
            leader: node,
            term: r.term,
            epoch: r.epoch,
            voters: sorted(&r.voters),
            learners: sorted(&r.learners),
            outgoing: sorted(&r.voters_outgoing),
            learners_next: sorted(&r.learners_next),
            commit: r.commit_index,
            last_index: r.last_index,
            applied: r.applied_index,
            pending_conf: r.pending_conf_change,
            followers,
            bytes: r.approximate_bytes,
            writes_per_sec: r.writes_per_sec,
            reported_at_ms: now_ms,
        })
    }

    /// In any part of the configuration.
    pub fn is_member(&self, id: u64) -> bool {
        self.is_voter(id) || self.is_learner(id)
    }

    /// A voter of the configuration (the incoming one while joint).
    pub fn is_voter(&self, id: u64) -> bool {
        self.voters.contains(&id)
    }

    /// A learner now, or once the joint configuration is left.
    pub fn is_learner(&self, id: u64) -> bool {
        self.learners.contains(&id) || self.learners_next.contains(&id) && !self.is_voter(id)
    }

    pub fn is_joint(&self) -> bool {
        !self.outgoing.is_empty()
    }

    /// Every member, sorted.
    pub fn members(&self) -> Vec<u64> {
        let mut all: Vec<u64> = self
            .voters
            .iter()
            .chain(&self.outgoing)
            .chain(&self.learners)
            .chain(&self.learners_next)
            .copied()
            .collect();
        all.sort_unstable();
        all.dedup();
        all
    }

    /// `id` is not waiting for a snapshot and is at most `slack` entries behind the commit
    /// index. (Not "replicating": on an idle shard a follower that caught up through a
    /// snapshot stays in raft-rs's probe state until the next write.)
    pub fn caught_up(&self, id: u64, slack: u64) -> bool {
        if id == self.leader {
            return true;
        }
        self.followers.get(&id).is_some_and(|f| {
            !f.snapshot && f.matched > 0 && self.commit.saturating_sub(f.matched) <= slack
        })
    }

    /// [`ShardView::caught_up`], and heard from lately: fit to take over leadership.
    pub fn can_lead(&self, id: u64, slack: u64) -> bool {
        self.caught_up(id, slack) && self.followers.get(&id).is_some_and(|f| f.active)
    }

    /// Entries `id` is behind the leader's last index (0 for the leader, None if unknown).
    pub fn lag(&self, id: u64) -> Option<u64> {
        if id == self.leader {
            return Some(0);
        }
        self.followers
            .get(&id)
            .map(|f| self.last_index.saturating_sub(f.matched))
    }
}
