//! Raft metrics, registered once in the process-wide Prometheus registry.

use std::sync::OnceLock;
use std::time::Instant;

use prometheus::{
    exponential_buckets, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts,
};

use crate::engine::{Engine, EngineError, WriteBatch};

/// Raft metrics shared by every group of the process, labelled by group where it matters.
pub struct RaftMetrics {
    /// 0 follower, 1 candidate, 2 leader, 3 pre-candidate.
    pub role: IntGaugeVec,
    pub term: IntGaugeVec,
    pub commit_index: IntGaugeVec,
    pub applied_index: IntGaugeVec,
    pub leader_changes: IntCounterVec,
    /// By outcome: ok, not_leader, dropped, timeout.
    pub proposals: IntCounterVec,
    pub proposal_seconds: HistogramVec,
    pub fsync_seconds: Histogram,
    pub write_batch_bytes: Histogram,
    /// Groups whose Ready writes shared one synced batch (group commit).
    pub groups_per_write: Histogram,
    /// How long one Ready round of the loop took (every group waits for it).
    pub round_seconds: Histogram,
    /// On a leader: entries the slowest follower is behind the leader's last index.
    pub replication_lag: IntGaugeVec,
    pub messages_sent: IntCounterVec,
    pub unreachable: IntCounterVec,
    /// Inbound messages not stepped, by reason: no_group, before_creation, stale_sender.
    pub refused: IntCounterVec,
    /// Snapshot data bytes, by direction: sent, received.
    pub snapshot_bytes: IntCounterVec,
    /// Snapshot transfers under way, by direction: sending, receiving.
    pub snapshots_in_flight: IntGaugeVec,
}

fn gauge(name: &str, help: &str) -> IntGaugeVec {
    IntGaugeVec::new(Opts::new(name, help), &["group"]).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn counter(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    IntCounterVec::new(Opts::new(name, help), labels).unwrap_or_else(|e| panic!("{name}: {e}"))
}

impl RaftMetrics {
    /// The process's instance, registered on first use.
    pub fn get() -> &'static RaftMetrics {
        static METRICS: OnceLock<RaftMetrics> = OnceLock::new();
        METRICS.get_or_init(|| {
            let latency = exponential_buckets(0.0001, 2.0, 18).unwrap_or_default();
            let m = RaftMetrics {
                role: gauge(
                    "surge_raft_role",
                    "Raft role: 0 follower, 1 candidate, 2 leader, 3 pre-candidate",
                ),
                term: gauge("surge_raft_term", "Current Raft term"),
                commit_index: gauge("surge_raft_commit_index", "Raft commit index"),
                applied_index: gauge("surge_raft_applied_index", "Raft applied index"),
                leader_changes: counter(
                    "surge_raft_leader_changes_total",
                    "Leader changes observed by this replica",
                    &["group"],
                ),
                proposals: counter(
                    "surge_raft_proposals_total",
                    "Proposals by outcome",
                    &["group", "outcome"],
                ),
                proposal_seconds: HistogramVec::new(
                    HistogramOpts::new("surge_raft_proposal_seconds", "Propose-to-apply latency")
                        .buckets(latency.clone()),
                    &["group"],
                )
                .unwrap_or_else(|e| panic!("proposal histogram: {e}")),
                fsync_seconds: Histogram::with_opts(
                    HistogramOpts::new(
                        "surge_raft_fsync_seconds",
                        "Latency of synced Raft write batches",
                    )
                    .buckets(latency),
                )
                .unwrap_or_else(|e| panic!("fsync histogram: {e}")),
                write_batch_bytes: Histogram::with_opts(
                    HistogramOpts::new(
                        "surge_raft_write_batch_bytes",
                        "Size of Raft write batches",
                    )
                    .buckets(exponential_buckets(64.0, 4.0, 10).unwrap_or_default()),
                )
                .unwrap_or_else(|e| panic!("batch histogram: {e}")),
                groups_per_write: Histogram::with_opts(
                    HistogramOpts::new(
                        "surge_raft_groups_per_write",
                        "Groups whose Ready writes shared one synced batch",
                    )
                    .buckets(exponential_buckets(1.0, 2.0, 9).unwrap_or_default()),
                )
                .unwrap_or_else(|e| panic!("group commit histogram: {e}")),
                round_seconds: Histogram::with_opts(
                    HistogramOpts::new(
                        "surge_raft_round_seconds",
                        "How long one Ready round of the raft loop took (every group waits for it)",
                    )
                    .buckets(exponential_buckets(0.0001, 2.0, 18).unwrap_or_default()),
                )
                .unwrap_or_else(|e| panic!("round histogram: {e}")),
                replication_lag: gauge(
                    "surge_raft_replication_lag",
                    "On a leader, entries the slowest follower is behind",
                ),
                messages_sent: counter(
                    "surge_raft_messages_sent_total",
                    "Raft messages handed to the transport",
                    &["group"],
                ),
                unreachable: counter(
                    "surge_raft_unreachable_total",
                    "Raft messages that could not be delivered",
                    &["group"],
                ),
                refused: counter(
                    "surge_raft_refused_messages_total",
                    "Inbound Raft messages refused: no_group, before_creation, stale_sender, older_incarnation, impossible_commit, no_term, impossible_value (an index or term past 2^62), wrong_sender (a certificate speaking for another store), snapshot_stalled (a snapshot stream that stopped sending); stale_term (answered by raft-rs, never applied)",
                    &["reason"],
                ),
                snapshot_bytes: counter(
                    "surge_raft_snapshot_bytes_total",
                    "Snapshot data bytes, by direction (sent, received)",
                    &["direction"],
                ),
                snapshots_in_flight: IntGaugeVec::new(
                    Opts::new(
                        "surge_raft_snapshots_in_flight",
                        "Snapshot transfers under way, by direction (sending, receiving)",
                    ),
                    &["direction"],
                )
                .unwrap_or_else(|e| panic!("snapshot gauge: {e}")),
            };
            let r = prometheus::default_registry();
            let collectors: Vec<Box<dyn prometheus::core::Collector>> = vec![
                Box::new(m.role.clone()),
                Box::new(m.term.clone()),
                Box::new(m.commit_index.clone()),
                Box::new(m.applied_index.clone()),
                Box::new(m.leader_changes.clone()),
                Box::new(m.proposals.clone()),
                Box::new(m.proposal_seconds.clone()),
                Box::new(m.fsync_seconds.clone()),
                Box::new(m.write_batch_bytes.clone()),
                Box::new(m.groups_per_write.clone()),
                Box::new(m.round_seconds.clone()),
                Box::new(m.replication_lag.clone()),
                Box::new(m.messages_sent.clone()),
                Box::new(m.unreachable.clone()),
                Box::new(m.refused.clone()),
                Box::new(m.snapshot_bytes.clone()),
                Box::new(m.snapshots_in_flight.clone()),
            ];
            for c in collectors {
                // Registering twice only happens if two instances race in one process (tests);
                // the metric is then already there.
                let _ = r.register(c);
            }
            m
        })
    }
}

/// Writes a batch and records its latency in the fsync histogram when synced.
pub fn write_timed<E: Engine + ?Sized>(
    engine: &E,
    batch: &WriteBatch,
    sync: bool,
) -> Result<(), EngineError> {
    let started = Instant::now();
    let result = engine.write(batch, sync);
    let metrics = RaftMetrics::get();
    if sync {
        metrics
            .fsync_seconds
            .observe(started.elapsed().as_secs_f64());
    }
    metrics.write_batch_bytes.observe(batch.size_bytes() as f64);
    result
}
