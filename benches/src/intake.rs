//! The order intake workload: closed loop (C clients, each submitting as soon as its last call
//! returned) or open loop (a target rate), single orders or batches of ~1 KiB orders, through
//! `surge-client`. With `--kill-every`, a node holding shard leaders is killed (-9) and
//! restarted during the run, and each kill's unavailability window is measured by probes:
//! the time until every shard it led accepts a write again.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Child;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use nix::sys::signal::Signal;
use serde::Serialize;
use surge_client::{sample, OrderClient, RetryPolicy};
use surge_grpc::v1::Order;
use surge_proto::routing;
use surgectl::dev_cluster::{self, ClusterFile};
use tokio::sync::Semaphore;

use crate::failover::start_cluster_with;
use crate::stats::{summarize, Summary};

/// What to run.
#[derive(Clone, Debug)]
pub(crate) struct IntakeArgs {
    pub(crate) cluster_dir: Option<PathBuf>,
    pub(crate) clients: usize,
    pub(crate) rate: Option<u64>,
    pub(crate) batch: usize,
    pub(crate) seconds: u64,
    pub(crate) kill_every: Option<u64>,
    pub(crate) shards: u32,
    pub(crate) base_port: u16,
    pub(crate) api_key: Option<String>,
    /// A cluster this command starts runs in plaintext.
    pub(crate) insecure: bool,
}

#[derive(Debug, Serialize)]
struct Report {
    workload: &'static str,
    mode: String,
    /// "tls" or "plaintext".
    transport: &'static str,
    clients: usize,
    batch: usize,
    seconds: f64,
    calls: usize,
    orders: u64,
    orders_per_second: f64,
    calls_per_second: f64,
    errors: u64,
    latency: Summary,
    kills: Vec<KillReport>,
}

#[derive(Debug, Serialize, Clone)]
struct KillReport {
    node: u64,
    shards_led: usize,
    window_ms: f64,
}

/// Creates a tenant for the run and returns its API key.
async fn bench_tenant(file: &ClusterFile) -> anyhow::Result<String> {
    let meta = file.meta_client()?;
    let name = format!("bench-{}", uuid_like());
    let created = meta
        .create_tenant(&name)
        .await
        .map_err(|s| anyhow::anyhow!("creating the bench tenant: {}", s.message()))?;
    Ok(created.api_key)
}

fn uuid_like() -> uuid::fmt::Simple {
    uuid::Uuid::new_v4().simple()
}

struct Shared {
    client: OrderClient,
    run: String,
    next: AtomicU64,
    errors: AtomicU64,
    orders: AtomicU64,
    latencies: Mutex<Vec<Duration>>,
    stop: AtomicBool,
}

impl Shared {
    async fn one_call(&self, batch: usize) {
        let started = Instant::now();
        let ok = if batch == 0 {
            let n = self.next.fetch_add(1, Ordering::Relaxed);
            match self.client.submit(sample::order(&self.run, n)).await {
                Ok(_) => {
                    self.orders.fetch_add(1, Ordering::Relaxed);
                    true
                }
                Err(e) => {
                    eprintln!("submit failed: {:?} {}", e.code(), e.message());
                    false
                }
            }
        } else {
            let first = self.next.fetch_add(batch as u64, Ordering::Relaxed);
            let orders: Vec<Order> = (first..first + batch as u64)
                .map(|n| sample::order(&self.run, n))
                .collect();
            match self.client.submit_batch(orders).await {
                Ok(results) => {
                    let accepted = results
                        .iter()
                        .filter(|r| {
                            matches!(
                                r.outcome,
                                Some(surge_grpc::v1::submit_result::Outcome::Accepted(_))
                            )
                        })
                        .count();
                    self.orders.fetch_add(accepted as u64, Ordering::Relaxed);
                    accepted == batch
                }
                Err(e) => {
                    eprintln!("batch failed: {:?} {}", e.code(), e.message());
                    false
                }
            }
        };
        if ok {
            if let Ok(mut l) = self.latencies.lock() {
                l.push(started.elapsed());
            }
        } else {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// A routing key per shard, so a probe can write to a chosen shard.
fn probe_keys(tenant: u64, shards: u32) -> BTreeMap<u32, String> {
    let mut keys = BTreeMap::new();
    let tenant = tenant.to_string();
    let mut i = 0u64;
    while keys.len() < shards as usize && i < 1_000_000 {
        let key = format!("probe-{i}");
        keys.entry(routing::shard_for(&tenant, &key, shards))
            .or_insert(key);
        i += 1;
    }
    keys
}

/// Kills the node leading most shards, measures until each of those shards takes a write,
/// restarts the node.
async fn kill_round(
    dir: &std::path::Path,
    client: &OrderClient,
    probe: &OrderClient,
    run: &str,
    round: u64,
    restarted: &mut Vec<Child>,
) -> anyhow::Result<KillReport> {
    let mut file = ClusterFile::load(dir)?;
    let map = client
        .shard_map()
        .await
        .map_err(|s| anyhow::anyhow!(s.message().to_string()))?;
    let mut led: BTreeMap<u64, Vec<u32>> = BTreeMap::new();
    for s in &map.shards {
        if s.leader != 0 {
            led.entry(s.leader).or_default().push(s.id);
        }
    }
    let Some((victim, shards)) = led.into_iter().max_by_key(|(_, s)| s.len()) else {
        bail!("no shard leader known");
    };
    let address = map
        .nodes
        .iter()
        .find(|n| n.id == victim)
        .map(|n| n.address.clone())
        .context("victim address")?;
    let entry = file
        .nodes
        .iter()
        .find(|n| n.grpc_address == address)
        .cloned()
        .context("victim not in cluster.json")?;
    let keys = probe_keys(map.tenant_id, map.shard_count);
    dev_cluster::signal(entry.pid, Signal::SIGKILL)?;
    let killed = Instant::now();
    let probes = shards.iter().map(|shard| {
        let key = keys.get(shard).cloned().unwrap_or_default();
        async move {
            let mut n = 0u64;
            loop {
                let mut order = sample::order(&format!("{run}-probe-{round}-{shard}"), n);
                order.routing_key = key.clone();
                if probe.submit(order).await.is_ok() {
                    return killed.elapsed();
                }
                n += 1;
                if killed.elapsed() > Duration::from_secs(60) {
                    return killed.elapsed();
                }
            }
        }
    });
    let window = futures::future::join_all(probes)
        .await
        .into_iter()
        .max()
        .unwrap_or_default();
    let child = dev_cluster::spawn(&entry)?;
    if let Some(e) = file.nodes.iter_mut().find(|n| n.name == entry.name) {
        e.pid = child.id();
    }
    file.save(dir)?;
    restarted.push(child);
    Ok(KillReport {
        node: victim,
        shards_led: shards.len(),
        window_ms: (window.as_secs_f64() * 1e6).round() / 1e3,
    })
}

/// Waits until every shard has a leader: a fresh cluster is still electing.
pub(crate) async fn wait_for_leaders(client: &OrderClient) -> anyhow::Result<()> {
    let ready_by = Instant::now() + Duration::from_secs(60);
    loop {
        match client.refresh().await {
            Ok(m) if m.shard_count > 0 && m.shards.iter().all(|s| s.leader != 0) => return Ok(()),
            _ if Instant::now() > ready_by => bail!("shards have no leaders after 60 s"),
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

pub(crate) async fn run(args: IntakeArgs) -> anyhow::Result<()> {
    let (dir, own) = match &args.cluster_dir {
        Some(d) => (d.clone(), None),
        None => {
            let extra = match args.insecure {
                true => vec!["--insecure".to_string()],
                false => Vec::new(),
            };
            let (d, own) = start_cluster_with(args.base_port, args.shards, &extra)?;
            (d, Some(own))
        }
    };
    let file = ClusterFile::load(&dir).context("reading cluster.json")?;
    let api_key = match &args.api_key {
        Some(k) => k.clone(),
        None => bench_tenant(&file).await?,
    };
    let nodes: Vec<String> = file.nodes.iter().map(|n| n.grpc_address.clone()).collect();
    let client = OrderClient::new(nodes.clone(), &api_key)
        .map_err(|s| anyhow::anyhow!(s.message().to_string()))?
        .with_transport(file.client_transport()?)
        .with_call_timeout(Duration::from_secs(2))
        .with_policy(RetryPolicy {
            first_backoff: Duration::from_millis(20),
            max_backoff: Duration::from_millis(200),
            max_attempts: 1000,
            deadline: Duration::from_secs(30),
            unreachable_after: None,
        });
    wait_for_leaders(&client).await?;
    let probe = OrderClient::new(nodes, &api_key)
        .map_err(|s| anyhow::anyhow!(s.message().to_string()))?
        .with_transport(file.client_transport()?)
        .with_call_timeout(Duration::from_millis(300))
        .with_policy(RetryPolicy {
            first_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(20),
            max_attempts: 10_000,
            deadline: Duration::from_secs(60),
            unreachable_after: None,
        });
    let shared = Arc::new(Shared {
        client,
        run: format!("bench-{}", uuid_like()),
        next: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        orders: AtomicU64::new(0),
        latencies: Mutex::new(Vec::new()),
        stop: AtomicBool::new(false),
    });
    let duration = Duration::from_secs(args.seconds);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let mode = match args.rate {
        None => {
            for _ in 0..args.clients {
                let shared = shared.clone();
                let batch = args.batch;
                tasks.spawn(async move {
                    while !shared.stop.load(Ordering::Relaxed) {
                        shared.one_call(batch).await;
                    }
                });
            }
            format!("closed loop, {} clients", args.clients)
        }
        Some(rate) => {
            let shared = shared.clone();
            let batch = args.batch;
            let limit = Arc::new(Semaphore::new(args.clients.max(1)));
            tasks.spawn(async move {
                let period = Duration::from_secs_f64(1.0 / rate.max(1) as f64);
                let mut ticker = tokio::time::interval(period);
                ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
                let mut inflight = tokio::task::JoinSet::new();
                while !shared.stop.load(Ordering::Relaxed) {
                    ticker.tick().await;
                    let Ok(permit) = limit.clone().try_acquire_owned() else {
                        // Over the in-flight bound: the arrival is counted as an error.
                        shared.errors.fetch_add(1, Ordering::Relaxed);
                        continue;
                    };
                    let shared = shared.clone();
                    inflight.spawn(async move {
                        shared.one_call(batch).await;
                        drop(permit);
                    });
                    while inflight.try_join_next().is_some() {}
                }
                while inflight.join_next().await.is_some() {}
            });
            format!(
                "open loop, {rate} calls/s, at most {} in flight",
                args.clients
            )
        }
    };
    let mut kills = Vec::new();
    let mut restarted = Vec::new();
    if let Some(every) = args.kill_every {
        let mut round = 0;
        while started.elapsed() + Duration::from_secs(every) < duration {
            tokio::time::sleep(Duration::from_secs(every)).await;
            round += 1;
            let report = kill_round(
                &dir,
                &shared.client,
                &probe,
                &shared.run,
                round,
                &mut restarted,
            )
            .await?;
            println!(
                "kill {round}: node {} (leading {} shards) → writes again after {:.0} ms",
                report.node, report.shards_led, report.window_ms
            );
            kills.push(report);
        }
    }
    let left = duration.saturating_sub(started.elapsed());
    tokio::time::sleep(left).await;
    shared.stop.store(true, Ordering::Relaxed);
    while tasks.join_next().await.is_some() {}
    let elapsed = started.elapsed().as_secs_f64();
    let latencies = shared
        .latencies
        .lock()
        .map(|l| l.clone())
        .unwrap_or_default();
    let orders = shared.orders.load(Ordering::Relaxed);
    let report = Report {
        workload: "intake",
        mode,
        transport: if file.transport()?.is_tls() {
            "tls"
        } else {
            "plaintext"
        },
        clients: args.clients,
        batch: args.batch,
        seconds: (elapsed * 10.0).round() / 10.0,
        calls: latencies.len(),
        orders,
        orders_per_second: (orders as f64 / elapsed).round(),
        calls_per_second: (latencies.len() as f64 / elapsed).round(),
        errors: shared.errors.load(Ordering::Relaxed),
        latency: summarize(&latencies),
        kills,
    };
    println!();
    println!("{:<34} {}", "mode", report.mode);
    println!("{:<34} {}", "transport", report.transport);
    println!(
        "{:<34} {}",
        "orders per call",
        if args.batch == 0 { 1 } else { args.batch }
    );
    println!("{:<34} {:.1}", "seconds", report.seconds);
    println!("{:<34} {}", "orders accepted", report.orders);
    println!("{:<34} {:.0}", "orders/s", report.orders_per_second);
    println!("{:<34} {:.0}", "calls/s", report.calls_per_second);
    println!(
        "{:<34} p50 {:.1}  p90 {:.1}  p99 {:.1}  max {:.1}",
        "call latency ms",
        report.latency.p50_ms,
        report.latency.p90_ms,
        report.latency.p99_ms,
        report.latency.max_ms
    );
    println!("{:<34} {}", "failed calls", report.errors);
    if !report.kills.is_empty() {
        let windows: Vec<Duration> = report
            .kills
            .iter()
            .map(|k| Duration::from_secs_f64(k.window_ms / 1e3))
            .collect();
        let s = summarize(&windows);
        println!(
            "{:<34} {} kills: median {:.0} ms, p90 {:.0} ms, worst {:.0} ms",
            "unavailability window", s.count, s.p50_ms, s.p90_ms, s.max_ms
        );
    }
    println!("{}", serde_json::to_string(&report)?);
    if own.is_some() {
        for mut child in restarted {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
    drop(own);
    Ok(())
}
