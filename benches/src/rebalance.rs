//! `surge-bench rebalance`: scale out under load. A cluster is filled with at least
//! `--load-gib` of ~1 KiB orders; then a steady open-loop intake runs throughout while one
//! node joins (`surgectl dev add-node`) and the scheduler moves replicas and leaders onto it.
//! Reported: the time until the scheduler reports the cluster balanced, bytes of snapshot data
//! moved (the nodes' `surge_raft_snapshot_bytes_total` counters) and bytes per second, and the
//! steady intake's throughput and latency before, during and after the moves, with how busy the
//! disks were in each (fsync and raft-round p99, RocksDB compactions and write stalls).
//! `--no-join` measures the same three phases on a cluster that does not change, the baseline.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use prost::Message as _;
use serde::Serialize;
use surge_client::{sample, MetaClient, OrderClient, RetryPolicy};
use surge_grpc::v1::admin_service_client::AdminServiceClient;
use surge_grpc::v1::ClusterStatusRequest;
use surgectl::dev_cluster::ClusterFile;

use crate::failover::start_cluster_with;
use crate::intake::wait_for_leaders;
use crate::node_metrics::{self, metric_sum, Samples};
use crate::steady::{submit, Phase, Steady};

#[derive(Clone, Debug)]
pub(crate) struct RebalanceArgs {
    pub(crate) cluster_dir: Option<PathBuf>,
    /// GiB of orders (1 KiB each) to load before the node joins.
    pub(crate) load_gib: f64,
    pub(crate) load_clients: usize,
    pub(crate) load_batch: usize,
    /// The steady intake: calls per second, orders per call.
    pub(crate) rate: u64,
    pub(crate) batch: usize,
    /// How long the steady intake is measured before the join and after the balance.
    pub(crate) phase_secs: u64,
    /// Longest wait for balance.
    pub(crate) timeout_secs: u64,
    pub(crate) shards: u32,
    pub(crate) base_port: u16,
    /// The nodes' snapshot rate in MiB/s (the node default when absent).
    pub(crate) snapshot_mib_per_sec: Option<u64>,
    /// The coordinators' per-node snapshot limit (the coordinator default when absent).
    pub(crate) max_snapshots_per_node: Option<u32>,
    /// Nodes of a cluster this command starts.
    pub(crate) nodes: u32,
    /// Add a node (the bench); without, the middle phase is one more steady phase of
    /// `phase_secs`, the baseline to compare a run's "after" with.
    pub(crate) join: bool,
    /// Where to write one line per second of the steady intake (calls, p99) and background work.
    pub(crate) timeline: Option<PathBuf>,
}

#[derive(Debug, Serialize)]
struct Report {
    workload: &'static str,
    nodes_before: u32,
    joined: bool,
    orders_loaded: u64,
    bytes_loaded: u64,
    load_orders_per_second: f64,
    seconds_to_balance: f64,
    bytes_moved: u64,
    moved_bytes_per_second: f64,
    seconds_per_gib_moved: f64,
    operators: u64,
    steady_rate_calls: u64,
    steady_batch: usize,
    before: Phase,
    during: Phase,
    after: Phase,
    during_p99_over_before_p99: f64,
}

async fn tenant(file: &ClusterFile) -> anyhow::Result<String> {
    let meta = file.meta_client()?;
    let id = uuid::Uuid::new_v4().simple();
    let created = meta
        .create_tenant(&format!("rebalance-{id}"))
        .await
        .map_err(|s| anyhow::anyhow!("creating the bench tenant: {}", s.message()))?;
    Ok(created.api_key)
}

/// Fills the cluster with `count` orders from `clients` closed-loop batch writers.
async fn load(
    client: &Arc<OrderClient>,
    run: &str,
    count: u64,
    clients: usize,
    batch: usize,
) -> anyhow::Result<f64> {
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..clients.max(1) {
        let (client, next, run) = (client.clone(), next.clone(), run.to_string());
        tasks.spawn(async move {
            loop {
                let first = next.fetch_add(batch as u64, Ordering::Relaxed);
                if first >= count {
                    return true;
                }
                let last = (first + batch as u64).min(count);
                let orders = (first..last).map(|n| sample::order(&run, n)).collect();
                if !submit(&client, orders).await {
                    return false;
                }
            }
        });
    }
    let mut progress = Instant::now();
    while let Some(done) = tasks.join_next().await {
        if !done.unwrap_or(false) {
            bail!("loading failed");
        }
        if progress.elapsed() > Duration::from_secs(10) {
            progress = Instant::now();
        }
    }
    Ok(count as f64 / started.elapsed().as_secs_f64())
}

/// Snapshot bytes the nodes sent so far.
async fn bytes_sent(file: &ClusterFile) -> u64 {
    metric_sum(file, "surge_raft_snapshot_bytes_total{direction=\"sent\"}").await
}

/// Waits (at most `limit`) until the pipeline has worked through the loaded orders: its
/// action counters stand still for 5 s. Measuring before that would count its catch-up.
async fn settle(file: &ClusterFile, limit: Duration) {
    let started = Instant::now();
    let mut last = metric_sum(file, "surge_pipeline_actions_total").await;
    while started.elapsed() < limit {
        tokio::time::sleep(Duration::from_secs(5)).await;
        let now = metric_sum(file, "surge_pipeline_actions_total").await;
        if now == last {
            break;
        }
        last = now;
    }
    // RocksDB flushes and compacts after a load: let it finish (bounded).
    let compacting = node_metrics::wait_compactions(file, limit).await;
    println!(
        "settled {:.0} s after loading ({:.0} s of it for compactions)",
        started.elapsed().as_secs_f64(),
        compacting.as_secs_f64()
    );
}

pub(crate) async fn run(args: RebalanceArgs) -> anyhow::Result<()> {
    let (dir, own) = match &args.cluster_dir {
        Some(d) => (d.clone(), None),
        None => {
            let mut extra: Vec<String> = Vec::new();
            if let Some(m) = args.snapshot_mib_per_sec {
                extra.extend(["--snapshot-mib-per-sec".to_string(), m.to_string()]);
            }
            if let Some(n) = args.max_snapshots_per_node {
                extra.extend(["--max-snapshots-per-node".to_string(), n.to_string()]);
            }
            extra.extend(["--node-count".to_string(), args.nodes.to_string()]);
            let (d, own) = start_cluster_with(args.base_port, args.shards, &extra)?;
            (d, Some(own))
        }
    };
    let file = ClusterFile::load(&dir).context("reading cluster.json")?;
    let key = tenant(&file).await?;
    let nodes: Vec<String> = file.nodes.iter().map(|n| n.grpc_address.clone()).collect();
    let client = Arc::new(
        OrderClient::new(nodes, &key)
            .map_err(|s| anyhow::anyhow!(s.message().to_string()))?
            .with_transport(file.client_transport()?)
            .with_policy(RetryPolicy {
                first_backoff: Duration::from_millis(20),
                max_backoff: Duration::from_millis(200),
                max_attempts: 1000,
                deadline: Duration::from_secs(30),
                unreachable_after: None,
            }),
    );
    let meta = file.meta_client()?;
    wait_for_leaders(&client).await?;

    let bytes_per_order = sample::order("size", 0).encoded_len() as u64;
    let count = (args.load_gib * (1u64 << 30) as f64 / bytes_per_order as f64).ceil() as u64;
    let run = format!("load-{}", uuid::Uuid::new_v4().simple());
    println!(
        "loading {count} orders ({bytes_per_order} bytes each, {:.2} GiB)",
        args.load_gib
    );
    let load_rate = load(&client, &run, count, args.load_clients, args.load_batch).await?;
    println!("loaded at {load_rate:.0} orders/s");
    settle(&file, Duration::from_secs(600)).await;

    // The steady intake, open loop, until stopped.
    let steady = Steady::start(client.clone(), args.rate, args.batch);
    let samples = Arc::new(Samples::default());
    let sampler = tokio::spawn(node_metrics::sample_background(
        dir.clone(),
        samples.clone(),
        Duration::from_secs(args.timeout_secs + 4 * args.phase_secs),
    ));
    let phase = Duration::from_secs(args.phase_secs);
    let before_from = Instant::now();
    let before_start = node_metrics::histograms(&file).await;
    tokio::time::sleep(phase).await;
    let before_to = Instant::now();
    let before_end = node_metrics::histograms(&file).await;

    let sent_before = bytes_sent(&file).await;
    let done_before = status(&meta)
        .await?
        .rebalance
        .map_or(0, |r| r.operators_done);
    let mut last = None;
    let during_from = if args.join {
        join(&dir)?;
        let from = Instant::now();
        last = Some(wait_balanced(&meta, from, args.timeout_secs).await?);
        from
    } else {
        let from = Instant::now();
        tokio::time::sleep(phase).await;
        from
    };
    let during_to = Instant::now();
    let file_now = ClusterFile::load(&dir)?;
    let during_end = node_metrics::histograms(&file_now).await;
    let moved = bytes_sent(&file_now).await.saturating_sub(sent_before);
    let after_from = Instant::now();
    tokio::time::sleep(phase).await;
    let after_to = Instant::now();
    let after_end = node_metrics::histograms(&file_now).await;
    let calls = steady.stop().await;
    sampler.abort();
    if let Some(path) = &args.timeline {
        crate::timeline::write(path, &calls, &samples, before_from)?;
    }

    let secs = during_to.duration_since(during_from).as_secs_f64();
    let before = calls.phase(
        before_from,
        before_to,
        samples.phase(before_from, before_to, &before_start, &before_end),
    );
    let during = calls.phase(
        during_from,
        during_to,
        samples.phase(during_from, during_to, &before_end, &during_end),
    );
    let after = calls.phase(
        after_from,
        after_to,
        samples.phase(after_from, after_to, &during_end, &after_end),
    );
    let report = Report {
        workload: "rebalance",
        nodes_before: file.nodes.len() as u32,
        joined: args.join,
        orders_loaded: count,
        bytes_loaded: count * bytes_per_order,
        load_orders_per_second: load_rate.round(),
        seconds_to_balance: if args.join {
            (secs * 10.0).round() / 10.0
        } else {
            0.0
        },
        bytes_moved: moved,
        moved_bytes_per_second: (moved as f64 / secs.max(0.001)).round(),
        seconds_per_gib_moved: if moved == 0 {
            0.0
        } else {
            (secs / (moved as f64 / (1u64 << 30) as f64) * 10.0).round() / 10.0
        },
        operators: last.map_or(0, |r| r.operators_done.saturating_sub(done_before)),
        steady_rate_calls: args.rate,
        steady_batch: args.batch,
        during_p99_over_before_p99: if before.latency.p99_ms > 0.0 {
            (during.latency.p99_ms / before.latency.p99_ms * 100.0).round() / 100.0
        } else {
            0.0
        },
        before,
        during,
        after,
    };
    print_report(&report);
    println!("{}", serde_json::to_string(&report)?);
    drop(own);
    Ok(())
}

/// Starts one more node (`surgectl dev add-node`), which registers and joins by itself.
fn join(dir: &std::path::Path) -> anyhow::Result<()> {
    let surgectl = std::env::current_exe()?.with_file_name("surgectl");
    let joined = Command::new(&surgectl)
        .args(["dev", "add-node", "--dir"])
        .arg(dir)
        .output()
        .with_context(|| format!("running {}", surgectl.display()))?;
    if !joined.status.success() {
        bail!(
            "dev add-node failed: {}",
            String::from_utf8_lossy(&joined.stderr)
        );
    }
    Ok(())
}

/// Waits until the scheduler says balanced twice in a row, at most `timeout_secs` after `from`.
async fn wait_balanced(
    meta: &MetaClient,
    from: Instant,
    timeout_secs: u64,
) -> anyhow::Result<surge_grpc::v1::RebalanceProgress> {
    let deadline = from + Duration::from_secs(timeout_secs);
    let mut balanced_rounds = 0;
    loop {
        if Instant::now() > deadline {
            bail!("not balanced within {timeout_secs} s");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let r = status(meta).await?.rebalance.unwrap_or_default();
        balanced_rounds = if r.balanced { balanced_rounds + 1 } else { 0 };
        if balanced_rounds >= 2 {
            return Ok(r);
        }
    }
}

async fn status(meta: &MetaClient) -> anyhow::Result<surge_grpc::v1::ClusterStatusResponse> {
    meta.call(|ch| async move {
        AdminServiceClient::new(ch)
            .cluster_status(ClusterStatusRequest {})
            .await
    })
    .await
    .map_err(|s| anyhow::anyhow!("cluster status: {}", s.message()))
}

fn print_report(r: &Report) {
    let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
    println!();
    println!(
        "{:<30} {} orders, {:.2} GiB, at {:.0} orders/s",
        "loaded",
        r.orders_loaded,
        gib(r.bytes_loaded),
        r.load_orders_per_second
    );
    if r.joined {
        println!(
            "{:<30} {:.1} s ({} operators)",
            "time until balanced", r.seconds_to_balance, r.operators
        );
        println!(
            "{:<30} {:.2} GiB at {:.1} MiB/s ({:.0} s per GiB moved)",
            "snapshot data moved",
            gib(r.bytes_moved),
            r.moved_bytes_per_second / (1u64 << 20) as f64,
            r.seconds_per_gib_moved
        );
    } else {
        println!(
            "{:<30} none: {} nodes throughout (the baseline)",
            "node added", r.nodes_before
        );
    }
    println!(
        "{:<30} {} calls/s of {} orders",
        "steady intake", r.steady_rate_calls, r.steady_batch
    );
    println!(
        "{:<10} {:>8} {:>10} {:>8} {:>8} {:>8} {:>8} {:>7} {:>8}",
        "phase", "seconds", "orders/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "failed", "retried"
    );
    let phases = [
        ("before", &r.before),
        (if r.joined { "during" } else { "middle" }, &r.during),
        ("after", &r.after),
    ];
    for (name, p) in phases {
        println!(
            "{:<10} {:>8.1} {:>10.0} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>7} {:>8}",
            name,
            p.seconds,
            p.orders_per_second,
            p.latency.p50_ms,
            p.latency.p90_ms,
            p.latency.p99_ms,
            p.latency.max_ms,
            p.failed_calls,
            p.retried_orders
        );
    }
    println!(
        "{:<10} {:>8} {:>10} {:>10} {:>12} {:>14} {:>9} {:>9}",
        "phase",
        "fsyncs",
        "fsync p99",
        "round p99",
        "compactions",
        "pending MiB",
        "max L0",
        "delayed s"
    );
    for (name, p) in phases {
        let d = &p.disk;
        println!(
            "{:<10} {:>8} {:>10.1} {:>10.1} {:>12.2} {:>14.0} {:>9.0} {:>9}",
            name,
            d.fsyncs,
            d.fsync_p99_ms,
            d.raft_round_p99_ms,
            d.mean_running_compactions,
            d.max_pending_compaction_mib,
            d.max_level0_files,
            d.seconds_writes_delayed
        );
    }
    println!(
        "{:<30} {:.2}x",
        "p99 during / p99 before", r.during_p99_over_before_p99
    );
}
