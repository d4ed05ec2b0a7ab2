//! The leader's background duties: marking silent nodes Down, placing shard replicas once
//! enough nodes are up, and keeping the local address book, readiness and gauges fresh.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use prometheus::{IntGaugeVec, Opts};
use surge_raftstore::ops::Readiness;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::coordinator::{now_ms, Coordinator};
use crate::meta::{ClusterInfo, Command, NodeInfo, NodeState, ShardInfo};
use crate::meta_state::META_GROUP;
use crate::placement::{place, Candidate};

const ROUND: Duration = Duration::from_millis(500);

fn nodes_gauge() -> &'static IntGaugeVec {
    static GAUGE: OnceLock<IntGaugeVec> = OnceLock::new();
    GAUGE.get_or_init(|| {
        let g = IntGaugeVec::new(
            Opts::new("surge_coordinator_nodes", "Nodes by state"),
            &["state"],
        )
        .unwrap_or_else(|e| panic!("nodes gauge: {e}"));
        let _ = prometheus::default_registry().register(Box::new(g.clone()));
        g
    })
}

struct View {
    is_leader: bool,
    /// The leader has committed an entry of its term and applied everything committed, so
    /// its state is the latest; before that it must not act on it.
    settled: bool,
    leader_id: u64,
    cluster: Option<ClusterInfo>,
    nodes: Vec<NodeInfo>,
    shards: Vec<ShardInfo>,
}

/// Runs until `shutdown` flips.
pub async fn run(c: Arc<Coordinator>, ready: Readiness, mut shutdown: watch::Receiver<bool>) {
    let mut leader_since: Option<Instant> = None;
    let mut ticker = tokio::time::interval(ROUND);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = shutdown.changed() => return,
        }
        c.refresh_from_state().await;
        let Ok(view) = c
            .handle
            .inspect(META_GROUP, |p| View {
                is_leader: p.is_leader(),
                settled: p.node.raft.commit_to_current_term()
                    && p.applied_index() >= p.commit_index(),
                leader_id: p.leader_id(),
                cluster: p.sm.cluster.clone(),
                nodes: p.sm.nodes.values().cloned().collect(),
                shards: p.sm.shards.values().cloned().collect(),
            })
            .await
        else {
            ready.set(false);
            continue;
        };
        ready.set(view.leader_id != 0);
        publish_gauges(&view.nodes);
        if !view.is_leader {
            leader_since = None;
            continue;
        }
        let since = *leader_since.get_or_insert_with(Instant::now);
        if !view.settled {
            continue;
        }
        mark_silent_nodes_down(&c, &view, since).await;
        place_unplaced_shards(&c, &view).await;
    }
}

fn publish_gauges(nodes: &[NodeInfo]) {
    let gauge = nodes_gauge();
    for state in [
        NodeState::Up,
        NodeState::Down,
        NodeState::Draining,
        NodeState::Removed,
    ] {
        let n = nodes.iter().filter(|n| n.state == state).count();
        gauge.with_label_values(&[state.as_str()]).set(n as i64);
    }
}

async fn mark_silent_nodes_down(c: &Coordinator, view: &View, leader_since: Instant) {
    let seen = c.heartbeats.lock().map(|h| h.clone()).unwrap_or_default();
    for node in view.nodes.iter().filter(|n| n.state == NodeState::Up) {
        // A new leader has heard nobody yet: everyone gets a full grace period from its start.
        let last = seen
            .get(&node.id)
            .copied()
            .unwrap_or(leader_since)
            .max(leader_since);
        if last.elapsed() > c.config.node_down_after {
            warn!(
                node_id = node.id,
                silent_secs = last.elapsed().as_secs(),
                "node silent; marking it down"
            );
            let cmd = Command::SetNodeState {
                node_id: node.id,
                state: NodeState::Down,
                at_ms: now_ms(),
            };
            if let Err(e) = c.propose(cmd).await {
                warn!(node_id = node.id, error = %e, "could not mark node down");
            }
        }
    }
}

async fn place_unplaced_shards(c: &Coordinator, view: &View) {
    let Some(cluster) = &view.cluster else { return };
    let unplaced: Vec<u32> = view
        .shards
        .iter()
        .filter(|s| s.replicas.is_empty())
        .map(|s| s.id)
        .collect();
    if unplaced.is_empty() {
        return;
    }
    let candidates: Vec<Candidate> = view
        .nodes
        .iter()
        .filter(|n| n.state == NodeState::Up)
        .map(|n| Candidate {
            id: n.id,
            zone: n.zone.clone(),
        })
        .collect();
    let mut existing: BTreeMap<u64, usize> = BTreeMap::new();
    for shard in &view.shards {
        for r in &shard.replicas {
            *existing.entry(*r).or_default() += 1;
        }
    }
    let assignments = place(&unplaced, cluster.replicas as usize, &candidates, &existing);
    if assignments.is_empty() {
        return;
    }
    info!(
        shards = assignments.len(),
        nodes = candidates.len(),
        "placing shard replicas"
    );
    if let Err(e) = c.propose(Command::PlaceShards { assignments }).await {
        warn!(error = %e, "could not place shard replicas");
    }
}
