//! [`Reports`]: what the nodes' heartbeats told this coordinator while it leads — each
//! shard as its leader sees it, each replica's own applied index and role, each node's disk
//! and snapshot figures, and when each node was last heard from. Memory only: a new leader
//! starts empty and is filled within a heartbeat period.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use surge_proto::v1::HeartbeatRequest;

use crate::shard_view::{NodeView, ShardView};

/// A leader's report older than this is not acted on (the leader may have moved or died).
pub const FRESH_FOR: Duration = Duration::from_secs(5);
/// A node heard from within this is alive for scheduling (well before it is marked Down).
pub const ALIVE_FOR: Duration = Duration::from_secs(3);

/// One replica as it reported itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicaReport {
    pub role: String,
    pub applied: u64,
    pub epoch: u64,
}

#[derive(Default)]
struct Inner {
    shards: HashMap<u32, (Instant, ShardView)>,
    replicas: HashMap<(u32, u64), ReplicaReport>,
    nodes: HashMap<u64, NodeView>,
    heard: HashMap<u64, Instant>,
}

#[derive(Default)]
pub struct Reports {
    inner: Mutex<Inner>,
}

impl Reports {
    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut inner)
    }

    /// Takes in one heartbeat, received at `now_ms` (the coordinator's clock).
    pub fn ingest(&self, req: &HeartbeatRequest, now_ms: u64) {
        let node = req.node_id;
        let now = Instant::now();
        self.with(|inner| {
            inner.heard.insert(node, now);
            if let Some(stats) = &req.stats {
                inner
                    .nodes
                    .insert(node, NodeView::from_stats(stats, now_ms));
            }
            inner.replicas.retain(|(_, n), _| *n != node);
            for r in &req.replicas {
                inner.replicas.insert(
                    (r.shard, node),
                    ReplicaReport {
                        role: r.role.clone(),
                        applied: r.applied_index,
                        epoch: r.epoch,
                    },
                );
                let Some(view) = ShardView::from_report(node, r, now_ms) else {
                    continue;
                };
                // A deposed leader may report after its successor: the newer term wins, and
                // within a term the newer epoch.
                let newer = inner
                    .shards
                    .get(&r.shard)
                    .is_none_or(|(_, old)| (view.term, view.epoch) >= (old.term, old.epoch));
                if newer {
                    inner.shards.insert(r.shard, (now, view));
                }
            }
        });
    }

    /// Records that `node` was heard from (registration).
    pub fn heard(&self, node: u64) {
        self.with(|inner| {
            inner.heard.insert(node, Instant::now());
        });
    }

    /// When each node was last heard from.
    pub fn last_heard(&self) -> HashMap<u64, Instant> {
        self.with(|inner| inner.heard.clone())
    }

    pub fn alive(&self, node: u64) -> bool {
        self.with(|inner| {
            inner
                .heard
                .get(&node)
                .is_some_and(|t| t.elapsed() <= ALIVE_FOR)
        })
    }

    /// True once `node` has sent this leader a heartbeat with its stats. A node that only
    /// registered (it may never start serving) is not given replicas or leadership.
    pub fn reported(&self, node: u64) -> bool {
        self.with(|inner| inner.nodes.contains_key(&node))
    }

    /// Every node heard from within [`ALIVE_FOR`].
    pub fn alive_nodes(&self) -> Vec<u64> {
        self.with(|inner| {
            inner
                .heard
                .iter()
                .filter(|(_, t)| t.elapsed() <= ALIVE_FOR)
                .map(|(n, _)| *n)
                .collect()
        })
    }

    /// The shard's latest leader report if it is fresh and its leader alive.
    pub fn fresh_view(&self, shard: u32) -> Option<ShardView> {
        self.with(|inner| {
            let (at, view) = inner.shards.get(&shard)?;
            let leader_alive = inner
                .heard
                .get(&view.leader)
                .is_some_and(|t| t.elapsed() <= ALIVE_FOR);
            (at.elapsed() <= FRESH_FOR && leader_alive).then(|| view.clone())
        })
    }

    /// Every shard's latest leader report, fresh or not, with its age.
    pub fn views(&self) -> HashMap<u32, (Duration, ShardView)> {
        self.with(|inner| {
            inner
                .shards
                .iter()
                .map(|(s, (at, v))| (*s, (at.elapsed(), v.clone())))
                .collect()
        })
    }

    pub fn replica(&self, shard: u32, node: u64) -> Option<ReplicaReport> {
        self.with(|inner| inner.replicas.get(&(shard, node)).cloned())
    }

    pub fn node(&self, node: u64) -> Option<NodeView> {
        self.with(|inner| inner.nodes.get(&node).cloned())
    }

    /// The leader each shard last reported (for routing hints), by shard.
    pub fn leaders(&self) -> HashMap<u32, u64> {
        self.with(|inner| {
            inner
                .shards
                .iter()
                .map(|(s, (_, v))| (*s, v.leader))
                .collect()
        })
    }

    /// Leaders reported by each node, counted.
    pub fn leader_counts(&self) -> HashMap<u64, usize> {
        let mut counts = HashMap::new();
        for leader in self.leaders().values() {
            *counts.entry(*leader).or_default() += 1;
        }
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use surge_proto::v1::NodeStats;

    #[test]
    fn a_node_that_only_registered_has_not_reported() {
        let reports = Reports::default();
        reports.heard(6);
        assert!(reports.alive(6));
        assert!(!reports.reported(6), "registration alone is not a report");
        let beat = HeartbeatRequest {
            node_id: 6,
            stats: Some(NodeStats::default()),
            ..HeartbeatRequest::default()
        };
        reports.ingest(&beat, 1_000);
        assert!(reports.reported(6));
        assert!(!reports.reported(7));
    }
}
