//! `surge-bench rebalance`: scale out under load. A cluster is filled with at least
//! `--load-gib` of ~1 KiB orders; then a steady open-loop intake runs throughout while one
//! node joins (`surgectl dev add-node`) and the scheduler moves replicas and leaders onto it.
//! Reported: the time until the scheduler reports the cluster balanced, bytes of snapshot data
//! moved (the nodes' `surge_raft_snapshot_bytes_total` counters) and bytes per second, and the
//! steady intake's throughput and latency before, during and after the moves.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use prost::Message as _;
use serde::Serialize;
use surge_client::dev_cluster::ClusterFile;
use surge_client::{sample, MetaClient, OrderClient, RetryPolicy};
use surge_proto::v1::admin_service_client::AdminServiceClient;
use surge_proto::v1::{ClusterStatusRequest, CreateTenantRequest, Order};
use tokio::sync::Semaphore;

use crate::failover::start_cluster_with;
use crate::stats::{summarize, Summary};

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
}

#[derive(Debug, Serialize)]
struct Phase {
    seconds: f64,
    orders: u64,
    orders_per_second: f64,
    failed_calls: u64,
    latency: Summary,
}

#[derive(Debug, Serialize)]
struct Report {
    workload: &'static str,
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

/// Every call of the steady intake: when it started, how long it took, whether it failed.
#[derive(Default)]
struct Calls {
    log: Mutex<Vec<(Instant, Duration, u64, bool)>>,
}

impl Calls {
    fn phase(&self, from: Instant, to: Instant) -> Phase {
        let log = self.log.lock().map(|l| l.clone()).unwrap_or_default();
        let inside: Vec<_> = log
            .iter()
            .filter(|(at, _, _, _)| *at >= from && *at < to)
            .collect();
        let seconds = to.duration_since(from).as_secs_f64();
        let orders: u64 = inside.iter().filter(|c| !c.3).map(|c| c.2).sum();
        let latencies: Vec<Duration> = inside.iter().filter(|c| !c.3).map(|c| c.1).collect();
        Phase {
            seconds: (seconds * 10.0).round() / 10.0,
            orders,
            orders_per_second: (orders as f64 / seconds.max(0.001)).round(),
            failed_calls: inside.iter().filter(|c| c.3).count() as u64,
            latency: summarize(&latencies),
        }
    }
}

async fn tenant(file: &ClusterFile) -> anyhow::Result<String> {
    let meta = MetaClient::new(file.coordinator_addresses())
        .map_err(|s| anyhow::anyhow!(s.message().to_string()))?;
    let id = uuid::Uuid::new_v4().simple();
    let (key, name) = (format!("sk-bench-{id}"), format!("rebalance-{id}"));
    meta.call(|ch| {
        let req = CreateTenantRequest {
            name: name.clone(),
            api_key: key.clone(),
        };
        async move { AdminServiceClient::new(ch).create_tenant(req).await }
    })
    .await
    .map_err(|s| anyhow::anyhow!("creating the bench tenant: {}", s.message()))?;
    Ok(key)
}

async fn submit(client: &OrderClient, orders: Vec<Order>) -> bool {
    let n = orders.len();
    match client.submit_batch(orders).await {
        Ok(results) => {
            results
                .iter()
                .filter(|r| {
                    matches!(
                        r.outcome,
                        Some(surge_proto::v1::submit_result::Outcome::Accepted(_))
                    )
                })
                .count()
                == n
        }
        Err(e) => {
            eprintln!("batch failed: {:?} {}", e.code(), e.message());
            false
        }
    }
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

/// The sum over the nodes of one counter of their metrics.
async fn metric_sum(file: &ClusterFile, series: &str) -> u64 {
    let mut total = 0;
    for n in &file.nodes {
        let Ok(mut conn) = tokio::net::TcpStream::connect(&n.http_address).await else {
            continue;
        };
        let req = format!("GET /metrics HTTP/1.0\r\nHost: {}\r\n\r\n", n.http_address);
        if tokio::io::AsyncWriteExt::write_all(&mut conn, req.as_bytes())
            .await
            .is_err()
        {
            continue;
        }
        let mut body = String::new();
        let _ = tokio::io::AsyncReadExt::read_to_string(&mut conn, &mut body).await;
        for line in body.lines() {
            if line.starts_with(series) {
                total += line
                    .rsplit(' ')
                    .next()
                    .and_then(|v| v.parse::<f64>().ok())
                    .unwrap_or(0.0) as u64;
            }
        }
    }
    total
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
    // RocksDB flushes and compacts after a load: let it.
    tokio::time::sleep(Duration::from_secs(15)).await;
    println!(
        "settled {:.0} s after loading",
        started.elapsed().as_secs_f64()
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
            .with_policy(RetryPolicy {
                first_backoff: Duration::from_millis(20),
                max_backoff: Duration::from_millis(200),
                max_attempts: 1000,
                deadline: Duration::from_secs(30),
                unreachable_after: None,
            }),
    );
    let meta = MetaClient::new(file.coordinator_addresses())
        .map_err(|s| anyhow::anyhow!(s.message().to_string()))?;
    let ready_by = Instant::now() + Duration::from_secs(60);
    loop {
        match client.refresh().await {
            Ok(m) if m.shard_count > 0 && m.shards.iter().all(|s| s.leader != 0) => break,
            _ if Instant::now() > ready_by => bail!("shards have no leaders after 60 s"),
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }

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
    let calls = Arc::new(Calls::default());
    let stop = Arc::new(AtomicBool::new(false));
    let steady = {
        let (client, calls, stop) = (client.clone(), calls.clone(), stop.clone());
        let (rate, batch) = (args.rate.max(1), args.batch.max(1));
        tokio::spawn(async move {
            let limit = Arc::new(Semaphore::new(256));
            let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let run = format!("steady-{}", uuid::Uuid::new_v4().simple());
            let mut n = 0u64;
            let mut inflight = tokio::task::JoinSet::new();
            while !stop.load(Ordering::Relaxed) {
                ticker.tick().await;
                let Ok(permit) = limit.clone().try_acquire_owned() else {
                    if let Ok(mut l) = calls.log.lock() {
                        l.push((Instant::now(), Duration::ZERO, 0, true));
                    }
                    continue;
                };
                let orders: Vec<Order> = (n..n + batch as u64)
                    .map(|i| sample::order(&run, i))
                    .collect();
                n += batch as u64;
                let (client, calls) = (client.clone(), calls.clone());
                inflight.spawn(async move {
                    let at = Instant::now();
                    let ok = submit(&client, orders).await;
                    if let Ok(mut l) = calls.log.lock() {
                        l.push((at, at.elapsed(), batch as u64, !ok));
                    }
                    drop(permit);
                });
                while inflight.try_join_next().is_some() {}
            }
            while inflight.join_next().await.is_some() {}
        })
    };
    let phase = Duration::from_secs(args.phase_secs);
    let before_from = Instant::now();
    tokio::time::sleep(phase).await;
    let before_to = Instant::now();

    let sent_before = bytes_sent(&file).await;
    let done_before = status(&meta)
        .await?
        .rebalance
        .map_or(0, |r| r.operators_done);
    let surgectl = std::env::current_exe()?.with_file_name("surgectl");
    let joined = Command::new(&surgectl)
        .args(["dev", "add-node", "--dir"])
        .arg(&dir)
        .output()
        .with_context(|| format!("running {}", surgectl.display()))?;
    if !joined.status.success() {
        bail!(
            "dev add-node failed: {}",
            String::from_utf8_lossy(&joined.stderr)
        );
    }
    let during_from = Instant::now();
    let deadline = during_from + Duration::from_secs(args.timeout_secs);
    let mut balanced_rounds = 0;
    let mut last = None;
    while balanced_rounds < 2 {
        if Instant::now() > deadline {
            bail!("not balanced within {} s", args.timeout_secs);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let r = status(&meta).await?.rebalance.unwrap_or_default();
        balanced_rounds = if r.balanced { balanced_rounds + 1 } else { 0 };
        last = Some(r);
    }
    let during_to = Instant::now();
    let file_now = ClusterFile::load(&dir)?;
    let moved = bytes_sent(&file_now).await.saturating_sub(sent_before);
    let after_from = Instant::now();
    tokio::time::sleep(phase).await;
    let after_to = Instant::now();
    stop.store(true, Ordering::Relaxed);
    let _ = steady.await;

    let secs = during_to.duration_since(during_from).as_secs_f64();
    let before = calls.phase(before_from, before_to);
    let during = calls.phase(during_from, during_to);
    let after = calls.phase(after_from, after_to);
    let report = Report {
        workload: "rebalance",
        orders_loaded: count,
        bytes_loaded: count * bytes_per_order,
        load_orders_per_second: load_rate.round(),
        seconds_to_balance: (secs * 10.0).round() / 10.0,
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

async fn status(meta: &MetaClient) -> anyhow::Result<surge_proto::v1::ClusterStatusResponse> {
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
    println!(
        "{:<30} {} calls/s of {} orders",
        "steady intake", r.steady_rate_calls, r.steady_batch
    );
    println!(
        "{:<10} {:>8} {:>10} {:>8} {:>8} {:>8} {:>8} {:>7}",
        "phase", "seconds", "orders/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "failed"
    );
    for (name, p) in [
        ("before", &r.before),
        ("during", &r.during),
        ("after", &r.after),
    ] {
        println!(
            "{:<10} {:>8.1} {:>10.0} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>7}",
            name,
            p.seconds,
            p.orders_per_second,
            p.latency.p50_ms,
            p.latency.p90_ms,
            p.latency.p99_ms,
            p.latency.max_ms,
            p.failed_calls
        );
    }
    println!(
        "{:<30} {:.2}x",
        "p99 during / p99 before", r.during_p99_over_before_p99
    );
}
