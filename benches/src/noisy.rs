//! The noisy-neighbour workload: tenant A (a flash sale) offers several times its orders/s limit
//! while tenant B submits at its normal rate on the same cluster. Phases alternate, "B alone"
//! then "B with A", for a number of rounds, and the report gives B's latency in each and how
//! much of A's offer was admitted and how much refused RESOURCE_EXHAUSTED. A sends batches
//! straight to the nodes with no retries, so every refused order is counted; B uses
//! surge-client as a merchant's ERP would.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;
use surge_client::{sample, OrderClient, RetryPolicy};
use surge_grpc::v1::admin_service_client::AdminServiceClient;
use surge_grpc::v1::order_service_client::OrderServiceClient;
use surge_grpc::v1::submit_result::Outcome;
use surge_grpc::v1::{ErrorCode, SetTenantLimitsRequest, SubmitOrdersRequest, TenantLimits};
use surgectl::dev_cluster::ClusterFile;
use tonic::metadata::MetadataValue;

use crate::failover::start_cluster_with;
use crate::intake::wait_for_leaders;
use crate::stats::{summarize, Summary};

#[derive(Clone, Debug)]
pub(crate) struct NoisyArgs {
    pub(crate) cluster_dir: Option<PathBuf>,
    /// A's limit, orders per second.
    pub(crate) limit: u32,
    /// A offers this many times its limit.
    pub(crate) offer: u32,
    /// A's batch size.
    pub(crate) batch: usize,
    /// B's rate: single orders per second.
    pub(crate) b_rate: u64,
    pub(crate) phase_secs: u64,
    pub(crate) rounds: u32,
    pub(crate) shards: u32,
    pub(crate) base_port: u16,
}

#[derive(Debug, Serialize)]
struct Phase {
    name: &'static str,
    round: u32,
    b: Summary,
    b_errors: u64,
    a_offered: u64,
    a_admitted: u64,
    a_throttled: u64,
    a_other_refusals: u64,
    a_admitted_per_second: f64,
}

#[derive(Debug, Serialize)]
struct Report {
    workload: &'static str,
    a_limit_orders_per_second: u32,
    a_offered_orders_per_second: u64,
    b_orders_per_second: u64,
    phases: Vec<Phase>,
    b_alone_p99_ms: f64,
    b_with_a_p99_ms: f64,
    /// B's p99 with A over B's p99 alone (the aim: at most 1.5).
    p99_ratio: f64,
}

#[derive(Default)]
struct ACounts {
    offered: AtomicU64,
    admitted: AtomicU64,
    throttled: AtomicU64,
    other: AtomicU64,
}

async fn tenant(meta: &surge_client::MetaClient, name: &str) -> anyhow::Result<String> {
    Ok(meta
        .create_tenant(name)
        .await
        .map_err(|s| anyhow::anyhow!("tenant {name}: {}", s.message()))?
        .api_key)
}

/// B: single orders at `rate`/s through surge-client for `secs`; each call's latency.
async fn run_b(
    client: Arc<OrderClient>,
    run: String,
    rate: u64,
    secs: u64,
) -> (Vec<Duration>, u64) {
    let stop = Instant::now() + Duration::from_secs(secs);
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate.max(1) as f64));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let errors = Arc::new(AtomicU64::new(0));
    let mut calls = tokio::task::JoinSet::new();
    let mut n = 0u64;
    while Instant::now() < stop {
        ticker.tick().await;
        n += 1;
        let (client, latencies, errors) = (client.clone(), latencies.clone(), errors.clone());
        let order = sample::order(&run, n);
        calls.spawn(async move {
            let started = Instant::now();
            match client.submit(order).await {
                Ok(_) => latencies
                    .lock()
                    .map(|mut l| l.push(started.elapsed()))
                    .unwrap_or(()),
                Err(_) => {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        while calls.try_join_next().is_some() {}
    }
    while calls.join_next().await.is_some() {}
    let out = latencies.lock().map(|l| l.clone()).unwrap_or_default();
    (out, errors.load(Ordering::Relaxed))
}

/// A: batches of `batch` at `rate` orders/s, round-robin over the nodes, no retries.
async fn run_a(
    channels: Vec<tonic::transport::Channel>,
    (key, run): (String, String),
    (rate, batch): (u64, usize),
    stop: Arc<AtomicBool>,
    counts: Arc<ACounts>,
) {
    let calls_per_sec = (rate as f64 / batch.max(1) as f64).max(1.0);
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / calls_per_sec));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let bearer: MetadataValue<_> = match format!("Bearer {key}").parse() {
        Ok(v) => v,
        Err(_) => return,
    };
    let inflight = Arc::new(tokio::sync::Semaphore::new(32));
    let mut calls = tokio::task::JoinSet::new();
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        ticker.tick().await;
        let Ok(permit) = inflight.clone().try_acquire_owned() else {
            continue;
        };
        let channel = channels[(n as usize) % channels.len()].clone();
        let orders = (0..batch)
            .map(|i| sample::order(&run, n * batch as u64 + i as u64))
            .collect();
        n += 1;
        let (bearer, counts) = (bearer.clone(), counts.clone());
        calls.spawn(async move {
            let mut request = tonic::Request::new(SubmitOrdersRequest { orders });
            request.set_timeout(Duration::from_secs(5));
            request.metadata_mut().insert("authorization", bearer);
            counts.offered.fetch_add(batch as u64, Ordering::Relaxed);
            match OrderServiceClient::new(channel)
                .submit_orders(request)
                .await
            {
                Ok(resp) => {
                    for r in resp.into_inner().results {
                        let counter = match r.outcome {
                            Some(Outcome::Accepted(_)) => &counts.admitted,
                            Some(Outcome::Rejected(rej))
                                if rej.code == ErrorCode::ResourceExhausted as i32 =>
                            {
                                &counts.throttled
                            }
                            _ => &counts.other,
                        };
                        counter.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Err(s) if s.code() == tonic::Code::ResourceExhausted => {
                    counts.throttled.fetch_add(batch as u64, Ordering::Relaxed);
                }
                Err(_) => {
                    counts.other.fetch_add(batch as u64, Ordering::Relaxed);
                }
            }
            drop(permit);
        });
        while calls.try_join_next().is_some() {}
    }
    while calls.join_next().await.is_some() {}
}

pub(crate) async fn run(args: NoisyArgs) -> anyhow::Result<()> {
    let (dir, _own) = match &args.cluster_dir {
        Some(d) => (d.clone(), None),
        None => {
            let (d, own) = start_cluster_with(args.base_port, args.shards, &[])?;
            (d, Some(own))
        }
    };
    let file = ClusterFile::load(&dir).context("reading cluster.json")?;
    let meta = file.meta_client()?;
    let id = uuid::Uuid::new_v4().simple().to_string();
    let a_name = format!("flash-sale-{}", &id[..8]);
    let a_key = tenant(&meta, &a_name).await?;
    let b_key = tenant(&meta, &format!("steady-shop-{}", &id[..8])).await?;
    let limits = SetTenantLimitsRequest {
        tenant: a_name.clone(),
        limits: Some(TenantLimits {
            orders_per_sec: args.limit,
            ..TenantLimits::default()
        }),
    };
    meta.call(|ch| {
        let req = limits.clone();
        async move { AdminServiceClient::new(ch).set_tenant_limits(req).await }
    })
    .await
    .map_err(|s| anyhow::anyhow!("tenant limits: {}", s.message()))?;
    let nodes: Vec<String> = file.nodes.iter().map(|n| n.grpc_address.clone()).collect();
    let b = Arc::new(
        OrderClient::new(nodes.clone(), &b_key)
            .map_err(|s| anyhow::anyhow!(s.message().to_string()))?
            .with_transport(file.client_transport()?)
            .with_call_timeout(Duration::from_secs(2))
            .with_policy(RetryPolicy {
                deadline: Duration::from_secs(10),
                ..RetryPolicy::default()
            }),
    );
    wait_for_leaders(&b).await?;
    // Nodes take the limits in with their next heartbeat.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let transport = file.client_transport()?;
    let mut channels = Vec::new();
    for n in &nodes {
        channels.push(transport.endpoint(n)?.connect_lazy());
    }
    let offer = u64::from(args.limit) * u64::from(args.offer);
    let mut phases = Vec::new();
    for round in 1..=args.rounds {
        for with_a in [false, true] {
            let counts = Arc::new(ACounts::default());
            let stop = Arc::new(AtomicBool::new(false));
            let a = with_a.then(|| {
                tokio::spawn(run_a(
                    channels.clone(),
                    (a_key.clone(), format!("flash-sale-{id}-{round}")),
                    (offer, args.batch),
                    stop.clone(),
                    counts.clone(),
                ))
            });
            if with_a {
                // A's first burst is spent before B is measured.
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            let started = Instant::now();
            let run = format!("steady-{id}-{round}-{with_a}");
            let (latencies, b_errors) = run_b(b.clone(), run, args.b_rate, args.phase_secs).await;
            let took = started.elapsed().as_secs_f64();
            stop.store(true, Ordering::Relaxed);
            if let Some(a) = a {
                let _ = a.await;
            }
            let admitted = counts.admitted.load(Ordering::Relaxed);
            phases.push(Phase {
                name: if with_a { "B with A" } else { "B alone" },
                round,
                b: summarize(&latencies),
                b_errors,
                a_offered: counts.offered.load(Ordering::Relaxed),
                a_admitted: admitted,
                a_throttled: counts.throttled.load(Ordering::Relaxed),
                a_other_refusals: counts.other.load(Ordering::Relaxed),
                a_admitted_per_second: (admitted as f64 / (took + 2.0) * 10.0).round() / 10.0,
            });
            eprintln!(
                "{}",
                serde_json::to_string(phases.last().expect("a phase"))?
            );
        }
    }
    let p99 = |name: &str| {
        let all: Vec<f64> = phases
            .iter()
            .filter(|p| p.name == name)
            .map(|p| p.b.p99_ms)
            .collect();
        all.iter().sum::<f64>() / all.len().max(1) as f64
    };
    let (alone, with) = (p99("B alone"), p99("B with A"));
    let report = Report {
        workload: "noisy-neighbour",
        a_limit_orders_per_second: args.limit,
        a_offered_orders_per_second: offer,
        b_orders_per_second: args.b_rate,
        phases,
        b_alone_p99_ms: alone,
        b_with_a_p99_ms: with,
        p99_ratio: (with / alone.max(0.001) * 100.0).round() / 100.0,
    };
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
