//! The leader's background duties, every round: mark silent nodes Down, place the shards of a
//! new cluster, carry every operator in flight to its next step (or its end), start the
//! operators the planner ([`crate::balance`]) asks for, and mark drained nodes Removable.
//! Also keeps the local address book, readiness and gauges fresh on every coordinator.
//!
//! The operators' instructions reach shard leaders in heartbeat answers
//! ([`crate::node_service`]); this loop records their progress in the log, so a new leader
//! carries on from where the old one was.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use prometheus::{IntGauge, IntGaugeVec, Opts};
use surge_server::ops::Readiness;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::balance::{self, Limits, NodeFacts, ShardFacts};
use crate::coordinator::{now_ms, Coordinator, Progress};
use crate::membership;
use crate::meta::{ClusterInfo, Command, NodeInfo, NodeState, ShardInfo};
use crate::meta_state::{Settings, META_GROUP};
use crate::operator::{self, Operator};
use crate::placement::{place, Candidate};

const ROUND: Duration = Duration::from_millis(500);
/// An operator whose shard's leader has not reported for this long is given up.
const NO_REPORT_TIMEOUT_MS: u64 = 10 * 60_000;

struct Gauges {
    nodes: IntGaugeVec,
    operators: IntGauge,
    planned: IntGauge,
    voters_heard: IntGauge,
}

fn gauges() -> &'static Gauges {
    static GAUGES: OnceLock<Gauges> = OnceLock::new();
    GAUGES.get_or_init(|| {
        let nodes = IntGaugeVec::new(
            Opts::new("surge_coordinator_nodes", "Nodes by state"),
            &["state"],
        )
        .unwrap_or_else(|e| panic!("nodes gauge: {e}"));
        let operators = IntGauge::new(
            "surge_scheduler_operators_in_flight",
            "Operators in flight (on the leader)",
        )
        .unwrap_or_else(|e| panic!("operators gauge: {e}"));
        let planned = IntGauge::new(
            "surge_scheduler_operators_planned",
            "Operators the planner would still start to reach balance (on the leader)",
        )
        .unwrap_or_else(|e| panic!("planned gauge: {e}"));
        let voters_heard = IntGauge::new(
            "surge_coordinator_voters_heard",
            "On the leader: voters (itself included) heard from lately enough to count as healthy when a removal checks the quorum; 0 elsewhere",
        )
        .unwrap_or_else(|e| panic!("voters gauge: {e}"));
        let r = prometheus::default_registry();
        let _ = r.register(Box::new(nodes.clone()));
        let _ = r.register(Box::new(operators.clone()));
        let _ = r.register(Box::new(planned.clone()));
        let _ = r.register(Box::new(voters_heard.clone()));
        Gauges {
            nodes,
            operators,
            planned,
            voters_heard,
        }
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
    operators: Vec<Operator>,
    settings: Settings,
    /// On the leader, the voters that count as healthy ([`membership::alive_window`]).
    voters_heard: usize,
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
        let alive = membership::alive_window(&c);
        let Ok(view) = c
            .handle
            .inspect(META_GROUP, move |p| View {
                is_leader: p.is_leader(),
                settled: p.node.raft.commit_to_current_term()
                    && p.applied_index() >= p.commit_index(),
                leader_id: p.leader_id(),
                cluster: p.sm.cluster.clone(),
                nodes: p.sm.nodes.values().cloned().collect(),
                shards: p.sm.shards.values().cloned().collect(),
                operators: p.sm.operators.in_flight.values().cloned().collect(),
                settings: p.sm.settings.clone(),
                voters_heard: if p.is_leader() {
                    p.conf_state()
                        .voters
                        .iter()
                        .filter(|v| **v == p.id() || p.heard_within(**v, alive))
                        .count()
                } else {
                    0
                },
            })
            .await
        else {
            ready.set(false);
            continue;
        };
        ready.set(view.leader_id != 0);
        publish_gauges(&view.nodes);
        gauges().voters_heard.set(view.voters_heard as i64);
        if !view.is_leader {
            leader_since = None;
            c.leading_since_ms.store(0, Ordering::Relaxed);
            continue;
        }
        let since = *leader_since.get_or_insert_with(|| {
            c.leading_since_ms.store(now_ms(), Ordering::Relaxed);
            Instant::now()
        });
        if !view.settled {
            continue;
        }
        mark_silent_nodes_down(&c, &view, since).await;
        if place_unplaced_shards(&c, &view).await {
            continue;
        }
        drive_operators(&c, &view).await;
        plan_operators(&c, &view).await;
    }
}

fn publish_gauges(nodes: &[NodeInfo]) {
    let gauge = &gauges().nodes;
    for state in NodeState::ALL {
        let n = nodes.iter().filter(|n| n.state == state).count();
        gauge.with_label_values(&[state.as_str()]).set(n as i64);
    }
}

async fn mark_silent_nodes_down(c: &Coordinator, view: &View, leader_since: Instant) {
    let seen = c.reports.last_heard();
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

/// Places a new cluster's shards once R nodes are up; true while some are still unplaced.
async fn place_unplaced_shards(c: &Coordinator, view: &View) -> bool {
    let Some(cluster) = &view.cluster else {
        return true;
    };
    let unplaced: Vec<u32> = view
        .shards
        .iter()
        .filter(|s| s.replicas.is_empty())
        .map(|s| s.id)
        .collect();
    if unplaced.is_empty() {
        return false;
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
        return true;
    }
    info!(
        shards = assignments.len(),
        nodes = candidates.len(),
        "placing shard replicas"
    );
    if let Err(e) = c.propose(Command::PlaceShards { assignments }).await {
        warn!(error = %e, "could not place shard replicas");
    }
    true
}

/// Records each operator's step, or its end.
async fn drive_operators(c: &Coordinator, view: &View) {
    let draining: Vec<u64> = view
        .nodes
        .iter()
        .filter(|n| !n.state.takes_replicas())
        .map(|n| n.id)
        .collect();
    let alive = |n: u64| c.reports.alive(n) && !draining.contains(&n);
    let now = now_ms();
    let ctx = operator::Context {
        now_ms: now,
        leading_since_ms: c.leading_since_ms(),
        alive: &alive,
    };
    for op in &view.operators {
        let recorded = view
            .shards
            .iter()
            .find(|s| s.id == op.shard)
            .map_or(0, |s| s.epoch);
        // A view older than what the log recorded (a new leader still applying) is not used.
        let fresh = c
            .reports
            .fresh_view(op.shard)
            .filter(|v| v.epoch >= recorded);
        let cmd = match fresh {
            None => {
                let since = op.step_since_ms.max(ctx.leading_since_ms);
                if now.saturating_sub(since) <= NO_REPORT_TIMEOUT_MS {
                    continue;
                }
                Command::FinishOperator {
                    id: op.id,
                    outcome: operator::Outcome::Failed,
                    note: "no report from the shard's leader".into(),
                    at_ms: now,
                }
            }
            Some(shard) => {
                let d = operator::decide(op, &shard, &ctx);
                match d.finish {
                    Some((outcome, note)) => {
                        info!(
                            operator = op.id,
                            shard = op.shard,
                            kind = op.kind.name(),
                            outcome = outcome.name(),
                            note,
                            "operator finished"
                        );
                        Command::FinishOperator {
                            id: op.id,
                            outcome,
                            note,
                            at_ms: now,
                        }
                    }
                    None if d.step != op.step || d.note != op.note => Command::AdvanceOperator {
                        id: op.id,
                        step: d.step,
                        note: d.note,
                        at_ms: now,
                    },
                    None => continue,
                }
            }
        };
        if let Err(e) = c.propose(cmd).await {
            warn!(operator = op.id, error = %e, "could not record an operator's progress");
            return;
        }
    }
}

/// The scheduler's limits, with the run-time settings applied.
pub fn limits(c: &Coordinator, cluster: &ClusterInfo, settings: &Settings) -> Limits {
    let s = c.config.scheduler;
    Limits {
        replicas: cluster.replicas as usize,
        max_operators: s.max_operators,
        max_snapshots_per_node: s.max_snapshots_per_node,
        max_down_time_ms: settings
            .max_down_time_ms
            .unwrap_or(s.max_down_time.as_millis() as u64),
    }
}

/// What the planner gets to see.
pub fn facts(
    c: &Coordinator,
    nodes: &[NodeInfo],
    shards: &[ShardInfo],
) -> (Vec<NodeFacts>, Vec<ShardFacts>) {
    let now = now_ms();
    let nodes = nodes
        .iter()
        .map(|n| NodeFacts {
            id: n.id,
            zone: n.zone.clone(),
            state: n.state,
            alive: c.reports.alive(n.id) && c.reports.reported(n.id),
            down_for_ms: (n.state == NodeState::Down)
                .then(|| now.saturating_sub(n.state_changed_at_ms)),
        })
        .collect();
    let shards = shards
        .iter()
        .map(|s| ShardFacts {
            info: s.clone(),
            view: c.reports.fresh_view(s.id).filter(|v| v.epoch >= s.epoch),
        })
        .collect();
    (nodes, shards)
}

async fn plan_operators(c: &Coordinator, view: &View) {
    let Some(cluster) = &view.cluster else { return };
    let limits = limits(c, cluster, &view.settings);
    let (nodes, shards) = facts(c, &view.nodes, &view.shards);
    let plan = balance::plan(&nodes, &shards, &view.operators, &limits);
    let now = now_ms();
    for new in &plan.new {
        let Some(shard) = shards.iter().find(|s| s.info.id == new.shard) else {
            continue;
        };
        let (epoch, bytes) = shard
            .view
            .as_ref()
            .map_or((shard.info.epoch, 0), |v| (v.epoch, v.bytes));
        let op = Operator::new(new.shard, new.kind, new.reason, epoch, bytes, now);
        info!(
            shard = new.shard,
            kind = new.kind.name(),
            from = ?new.kind.from_node(),
            to = ?new.kind.to_node(),
            reason = new.reason.name(),
            "starting an operator"
        );
        if let Err(e) = c.propose(Command::CreateOperator(op)).await {
            warn!(shard = new.shard, error = %e, "could not start an operator");
            break;
        }
    }
    for node in &plan.drained {
        info!(node_id = node, "node drained; marking it removable");
        let cmd = Command::SetNodeState {
            node_id: *node,
            state: NodeState::Removable,
            at_ms: now,
        };
        if let Err(e) = c.propose(cmd).await {
            warn!(node_id = node, error = %e, "could not mark a drained node removable");
        }
    }
    let in_flight = view.operators.len() + plan.new.len();
    let progress = Progress {
        planned: plan.new.len() + plan.pending,
        under_replicated: plan.under_replicated,
        replica_spread: plan.replica_spread,
        leader_spread: plan.leader_spread,
        balanced: in_flight == 0 && plan.pending == 0 && plan.under_replicated == 0,
    };
    gauges().operators.set(in_flight as i64);
    gauges().planned.set(progress.planned as i64);
    if let Ok(mut p) = c.progress.lock() {
        *p = progress;
    }
}
