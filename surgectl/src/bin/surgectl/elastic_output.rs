//! Rendering of shards, operators, verdicts and settings: tables for people (human times and
//! sizes), JSON for scripts (milliseconds and bytes).

use serde_json::json;
use surge_client::verify::{ShardVerdict, Verdict};
use surge_proto::v1::{ClusterConfig, OperatorInfo, RebalanceProgress, ShardDetail};

use crate::human;
use crate::output::{emit, print_json, print_table, Format};

fn shard_json(s: &ShardDetail) -> serde_json::Value {
    json!({
        "id": s.id,
        "epoch": s.epoch,
        "leader": s.leader,
        "term": s.term,
        "commit_index": s.commit_index,
        "last_index": s.last_index,
        "size_bytes": s.size_bytes,
        "writes_per_sec": s.writes_per_sec,
        "operator_id": s.operator_id,
        "report_age_ms": s.report_age_ms,
        "replicas": s.replicas.iter().map(|r| json!({
            "node_id": r.node_id,
            "role": r.role,
            "leader": r.leader,
            "matched": r.matched,
            "lag": r.lag,
            "progress": r.progress,
            "applied_index": r.applied_index,
            "node_up": r.node_up,
        })).collect::<Vec<_>>(),
    })
}

fn members(s: &ShardDetail, role: &str) -> Vec<u64> {
    s.replicas
        .iter()
        .filter(|r| r.role == role)
        .map(|r| r.node_id)
        .collect()
}

pub(crate) fn print_shards(format: Format, shards: &[ShardDetail]) {
    if format == Format::Json {
        return print_json(&shards.iter().map(shard_json).collect::<Vec<_>>());
    }
    let rows: Vec<Vec<String>> = shards
        .iter()
        .map(|s| {
            let max_lag = s.replicas.iter().map(|r| r.lag).max().unwrap_or(0);
            vec![
                s.id.to_string(),
                s.epoch.to_string(),
                if s.leader == 0 {
                    "-".into()
                } else {
                    s.leader.to_string()
                },
                human::ids(&members(s, "voter")),
                human::ids(&members(s, "learner")),
                human::ids(&members(s, "outgoing")),
                max_lag.to_string(),
                human::bytes(s.size_bytes),
                format!("{:.1}", s.writes_per_sec),
                if s.operator_id == 0 {
                    "-".into()
                } else {
                    s.operator_id.to_string()
                },
            ]
        })
        .collect();
    print_table(
        &[
            "SHARD", "EPOCH", "LEADER", "VOTERS", "LEARNERS", "OUTGOING", "MAX LAG", "SIZE",
            "WRITES/S", "OPERATOR",
        ],
        &rows,
    );
}

pub(crate) fn print_shard(format: Format, s: &ShardDetail) {
    if format == Format::Json {
        return print_json(&shard_json(s));
    }
    emit(&format!(
        "shard {}  epoch {}  leader {}  term {}  commit {}  last index {}",
        s.id,
        s.epoch,
        if s.leader == 0 {
            "unknown".to_string()
        } else {
            format!("node {}", s.leader)
        },
        s.term,
        s.commit_index,
        s.last_index
    ));
    emit(&format!(
        "size {}  writes {:.1}/s  operator {}  reported {}",
        human::bytes(s.size_bytes),
        s.writes_per_sec,
        if s.operator_id == 0 {
            "none".to_string()
        } else {
            s.operator_id.to_string()
        },
        if s.report_age_ms < 0 {
            "never".to_string()
        } else {
            format!("{:.1}s ago", s.report_age_ms as f64 / 1000.0)
        }
    ));
    emit("");
    let rows: Vec<Vec<String>> = s
        .replicas
        .iter()
        .map(|r| {
            vec![
                r.node_id.to_string(),
                r.role.clone(),
                if r.leader { "yes" } else { "" }.into(),
                r.matched.to_string(),
                r.lag.to_string(),
                if r.progress.is_empty() {
                    "-".into()
                } else {
                    r.progress.clone()
                },
                r.applied_index.to_string(),
                if r.node_up { "up" } else { "not heard" }.into(),
            ]
        })
        .collect();
    print_table(
        &[
            "NODE", "ROLE", "LEADER", "MATCHED", "LAG", "PROGRESS", "APPLIED", "NODE",
        ],
        &rows,
    );
}

fn operator_json(o: &OperatorInfo) -> serde_json::Value {
    json!({
        "id": o.id,
        "shard": o.shard,
        "kind": o.kind,
        "from_node": o.from_node,
        "to_node": o.to_node,
        "reason": o.reason,
        "step": o.step,
        "created_at_ms": o.created_at_ms,
        "step_since_ms": o.step_since_ms,
        "outcome": o.outcome,
        "note": o.note,
        "finished_at_ms": o.finished_at_ms,
        "epoch": o.epoch,
        "cancel_requested": o.cancel_requested,
        "bytes": o.bytes,
    })
}

pub(crate) fn print_operators(format: Format, ops: &[OperatorInfo]) {
    if format == Format::Json {
        return print_json(&ops.iter().map(operator_json).collect::<Vec<_>>());
    }
    let node = |n: u64| {
        if n == 0 {
            "-".to_string()
        } else {
            n.to_string()
        }
    };
    let rows: Vec<Vec<String>> = ops
        .iter()
        .map(|o| {
            vec![
                o.id.to_string(),
                o.shard.to_string(),
                o.kind.clone(),
                node(o.from_node),
                node(o.to_node),
                o.reason.clone(),
                if o.outcome.is_empty() {
                    o.step.clone()
                } else {
                    o.outcome.clone()
                },
                human::local_time(o.created_at_ms),
                if o.outcome.is_empty() {
                    human::age(o.created_at_ms)
                } else {
                    "-".into()
                },
                if o.outcome.is_empty() {
                    human::age(o.step_since_ms)
                } else {
                    "-".into()
                },
                human::bytes(o.bytes),
                o.note.clone(),
            ]
        })
        .collect();
    print_table(
        &[
            "OPERATOR", "SHARD", "KIND", "FROM", "TO", "REASON", "STEP", "STARTED", "AGE",
            "IN STEP", "SIZE", "NOTE",
        ],
        &rows,
    );
}

pub(crate) fn print_verdicts(format: Format, verdicts: &[ShardVerdict]) {
    if format == Format::Json {
        let all: Vec<serde_json::Value> = verdicts
            .iter()
            .map(|v| match &v.verdict {
                Verdict::Identical {
                    applied_index,
                    digest,
                    replicas,
                } => json!({"shard": v.shard, "verdict": "identical", "applied_index": applied_index, "digest": digest, "replicas": replicas}),
                Verdict::Differ {
                    applied_index,
                    digests,
                } => json!({"shard": v.shard, "verdict": "differ", "applied_index": applied_index, "digests": digests}),
                Verdict::Unsettled { reason } => {
                    json!({"shard": v.shard, "verdict": "unsettled", "reason": reason})
                }
            })
            .collect();
        return print_json(&all);
    }
    let rows: Vec<Vec<String>> = verdicts
        .iter()
        .map(|v| match &v.verdict {
            Verdict::Identical {
                applied_index,
                digest,
                replicas,
            } => vec![
                v.shard.to_string(),
                "identical".into(),
                applied_index.to_string(),
                replicas.to_string(),
                digest.chars().take(16).collect(),
            ],
            Verdict::Differ {
                applied_index,
                digests,
            } => vec![
                v.shard.to_string(),
                "DIFFER".into(),
                applied_index.to_string(),
                digests.len().to_string(),
                format!("{digests:?}"),
            ],
            Verdict::Unsettled { reason } => vec![
                v.shard.to_string(),
                "unsettled".into(),
                "-".into(),
                "-".into(),
                reason.clone(),
            ],
        })
        .collect();
    print_table(
        &["SHARD", "VERDICT", "APPLIED", "REPLICAS", "DIGEST"],
        &rows,
    );
}

pub(crate) fn print_config(format: Format, c: &ClusterConfig) {
    match format {
        Format::Json => print_json(&json!({
            "max_down_time_ms": c.max_down_time_ms,
            "max_operators": c.max_operators,
            "max_snapshots_per_node": c.max_snapshots_per_node,
        })),
        Format::Table => emit(&format!(
            "max-down-time {}  max operators {}  max snapshots per node {}",
            humantime::format_duration(std::time::Duration::from_millis(c.max_down_time_ms)),
            c.max_operators,
            c.max_snapshots_per_node
        )),
    }
}

/// The rebalancing lines of `cluster status`.
pub(crate) fn rebalance_lines(r: &RebalanceProgress, c: Option<&ClusterConfig>) -> Vec<String> {
    let state = if r.balanced {
        "balanced".to_string()
    } else if r.under_replicated > 0 {
        format!(
            "repairing: {} shard(s) under-replicated",
            r.under_replicated
        )
    } else {
        "rebalancing".to_string()
    };
    let mut lines = vec![
        format!(
            "scheduler: {state}; operators {} in flight, {} done, {} planned, {} failed or rolled back",
            r.operators_in_flight, r.operators_done, r.operators_planned, r.operators_failed
        ),
        format!(
            "moved {}; replica spread {}, leader spread {} (max - min over up nodes)",
            human::bytes(r.bytes_moved),
            r.replica_spread,
            r.leader_spread
        ),
    ];
    if let Some(c) = c {
        lines.push(format!(
            "max-down-time {}",
            humantime::format_duration(std::time::Duration::from_millis(c.max_down_time_ms))
        ));
    }
    lines
}

pub(crate) fn rebalance_json(r: &RebalanceProgress) -> serde_json::Value {
    json!({
        "balanced": r.balanced,
        "operators_in_flight": r.operators_in_flight,
        "operators_done": r.operators_done,
        "operators_planned": r.operators_planned,
        "operators_failed": r.operators_failed,
        "bytes_moved": r.bytes_moved,
        "replica_spread": r.replica_spread,
        "leader_spread": r.leader_spread,
        "under_replicated": r.under_replicated,
    })
}
