//! `surge-bench labels`: the pipeline end to end at peak. A burst of orders is submitted as fast
//! as the clients go; the shard leaders review, allocate and bind waybills; printing stations
//! (in this process, writing to a null TCP 9100 printer) print and ack. A watcher on the event
//! stream takes each order's intake and print times, both stamped by shard leaders, so the
//! figures are labels per second (overall and the peak second) and submit-to-printed latency.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde::Serialize;
use surge_client::{sample, OrderClient};
use surge_grpc::v1::admin_service_client::AdminServiceClient;
use surge_grpc::v1::order_service_client::OrderServiceClient;
use surge_grpc::v1::{
    AddWaybillRangeRequest, OrderEvent, SetTenantRulesRequest, WatchOrdersRequest,
};
use surgectl::dev_cluster::ClusterFile;
use surgectl::station::{self, Sink, StationConfig};
use tokio::io::AsyncReadExt;
use tokio::sync::{watch, Semaphore};

use crate::failover::start_cluster;
use crate::stats::{summarize, Summary};

#[derive(Clone, Debug)]
pub(crate) struct LabelArgs {
    pub(crate) cluster_dir: Option<PathBuf>,
    pub(crate) orders: u64,
    pub(crate) batch: usize,
    pub(crate) clients: usize,
    pub(crate) stations: usize,
    pub(crate) shards: u32,
    pub(crate) base_port: u16,
}

#[derive(Debug, Serialize)]
struct Report {
    workload: &'static str,
    orders: u64,
    stations: usize,
    submit_seconds: f64,
    labels: usize,
    labels_per_second: f64,
    peak_labels_per_second: usize,
    submit_to_printed: Summary,
}

/// Review passes every order; two carriers by region.
const RULES: &str = r#"
[sender]
name = "surge 压测店"
phone = "0571-00000000"
province = "浙江省"
city = "杭州市"
street = "余杭区文一西路 1 号"

[[carriers]]
name = "SF"
cost_cents = 1800
days = 1

[[carriers]]
name = "ZTO"
cost_cents = 600
days = 3

[allocation]
default_carrier = "ZTO"

[[allocation.rules]]
name = "south-by-sf"
regions = ["广东省"]
carriers = ["SF"]
"#;

async fn bench_tenant(file: &ClusterFile, orders: u64) -> anyhow::Result<String> {
    let meta = file.meta_client()?;
    let id = uuid::Uuid::new_v4().simple().to_string();
    let name = format!("labels-{}", &id[..12]);
    let key = meta
        .create_tenant(&name)
        .await
        .map_err(|s| anyhow::anyhow!("tenant: {}", s.message()))?
        .api_key;
    let rules = SetTenantRulesRequest {
        tenant: name.clone(),
        rules_toml: RULES.into(),
    };
    meta.call(|ch| {
        let req = rules.clone();
        async move { AdminServiceClient::new(ch).set_tenant_rules(req).await }
    })
    .await
    .map_err(|s| anyhow::anyhow!("rules: {}", s.message()))?;
    for carrier in ["SF", "ZTO"] {
        // A fresh prefix per run, so ranges never overlap those of earlier runs.
        let range = AddWaybillRangeRequest {
            tenant: name.clone(),
            carrier: carrier.into(),
            prefix: format!("{carrier}{}", id[..6].to_uppercase()),
            from: 1,
            to: orders * 4 + 10_000,
        };
        meta.call(|ch| {
            let req = range.clone();
            async move { AdminServiceClient::new(ch).add_waybill_range(req).await }
        })
        .await
        .map_err(|s| anyhow::anyhow!("range: {}", s.message()))?;
    }
    // Nodes take in the rules with their next heartbeat.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    Ok(key)
}

/// A printer that accepts labels and throws them away.
async fn null_printer() -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?.to_string();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut sink = Vec::new();
                let _ = conn.read_to_end(&mut sink).await;
            });
        }
    });
    Ok(address)
}

/// Collects the tenant's events until `stop`, resuming from its cursor after a break.
async fn watch_events(
    client: Arc<OrderClient>,
    events: Arc<Mutex<Vec<OrderEvent>>>,
    mut stop: watch::Receiver<bool>,
) {
    let mut cursor = String::new();
    let mut attempt = 0usize;
    while !*stop.borrow() {
        let nodes = client.node_addresses().await.unwrap_or_default();
        if nodes.is_empty() {
            return;
        }
        attempt += 1;
        let Ok((ch, req)) = client.stream_request(
            &nodes[attempt % nodes.len()],
            WatchOrdersRequest {
                cursor: cursor.clone(),
            },
        ) else {
            return;
        };
        let Ok(resp) = OrderServiceClient::new(ch).watch_orders(req).await else {
            tokio::time::sleep(Duration::from_millis(300)).await;
            continue;
        };
        let mut stream = resp.into_inner();
        loop {
            tokio::select! {
                _ = stop.changed() => return,
                next = stream.message() => match next {
                    Ok(Some(batch)) => {
                        cursor = batch.cursor;
                        if let Ok(mut e) = events.lock() {
                            e.extend(batch.events.into_iter().filter(|e| e.action == "receive" || e.action == "print"));
                        }
                    }
                    _ => break,
                },
            }
        }
    }
}

pub(crate) async fn run(args: LabelArgs) -> anyhow::Result<()> {
    let (dir, _own) = match &args.cluster_dir {
        Some(d) => (d.clone(), None),
        None => {
            let (d, own) = start_cluster(args.base_port, args.shards)?;
            (d, Some(own))
        }
    };
    let file = ClusterFile::load(&dir).context("cluster.json")?;
    let key = bench_tenant(&file, args.orders).await?;
    let nodes: Vec<String> = file.nodes.iter().map(|n| n.grpc_address.clone()).collect();
    let client = Arc::new(
        OrderClient::new(nodes, &key)
            .map_err(|s| anyhow::anyhow!(s.message().to_string()))?
            .with_transport(file.client_transport()?),
    );
    client
        .shard_map()
        .await
        .map_err(|s| anyhow::anyhow!(s.message().to_string()))?;

    let (stop_tx, stop) = watch::channel(false);
    let events = Arc::new(Mutex::new(Vec::new()));
    let watcher = tokio::spawn(watch_events(client.clone(), events.clone(), stop.clone()));
    let printer = null_printer().await?;
    let mut stations = Vec::new();
    for i in 0..args.stations {
        let config = StationConfig {
            station: format!("bench-{i}"),
            sink: Sink::Printer(printer.clone()),
            window: 200,
            exit_after_idle: None,
        };
        stations.push(tokio::spawn(station::run(
            client.clone(),
            config,
            stop.clone(),
        )));
    }

    let started = Instant::now();
    let gate = Arc::new(Semaphore::new(args.clients.max(1)));
    let run = format!("labels-{}", uuid::Uuid::new_v4().simple());
    let mut calls = Vec::new();
    for first in (0..args.orders).step_by(args.batch.max(1)) {
        let permit = gate.clone().acquire_owned().await?;
        let (client, run) = (client.clone(), run.clone());
        let last = (first + args.batch as u64).min(args.orders);
        calls.push(tokio::spawn(async move {
            let orders = (first..last).map(|n| sample::order(&run, n)).collect();
            let out = client.submit_batch(orders).await;
            drop(permit);
            out
        }));
    }
    for c in calls {
        if c.await?.is_err() {
            bail!("a batch failed");
        }
    }
    let submit_seconds = started.elapsed().as_secs_f64();
    let deadline = Instant::now() + Duration::from_secs(300);
    // The bench rules hold nothing: every order prints.
    let printable = args.orders;
    loop {
        let printed = events
            .lock()
            .map(|e| e.iter().filter(|e| e.action == "print").count())
            .unwrap_or(0);
        if printed as u64 >= printable || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = stop_tx.send(true);
    for s in stations {
        let _ = s.await;
    }
    let _ = watcher.await;

    let events = events.lock().map(|e| e.clone()).unwrap_or_default();
    let received: HashMap<&str, u64> = events
        .iter()
        .filter(|e| e.action == "receive")
        .map(|e| (e.order_id.as_str(), e.at_ms))
        .collect();
    let prints: Vec<&OrderEvent> = events.iter().filter(|e| e.action == "print").collect();
    let latencies: Vec<Duration> = prints
        .iter()
        .filter_map(|p| {
            received
                .get(p.order_id.as_str())
                .map(|r| Duration::from_millis(p.at_ms.saturating_sub(*r)))
        })
        .collect();
    let mut per_second: BTreeMap<u64, usize> = BTreeMap::new();
    for p in &prints {
        *per_second.entry(p.at_ms / 1000).or_default() += 1;
    }
    let first = received.values().min().copied().unwrap_or(0);
    let last = prints.iter().map(|p| p.at_ms).max().unwrap_or(first);
    let report = Report {
        workload: "labels",
        orders: args.orders,
        stations: args.stations,
        submit_seconds,
        labels: prints.len(),
        labels_per_second: prints.len() as f64 / ((last - first) as f64 / 1000.0).max(1e-3),
        peak_labels_per_second: per_second.values().copied().max().unwrap_or(0),
        submit_to_printed: summarize(&latencies),
    };
    println!(
        "{} orders submitted in {:.2} s; {} labels printed at {} stations: {:.0} labels/s from first intake to last print, {} in the peak second",
        report.orders, report.submit_seconds, report.labels, report.stations, report.labels_per_second, report.peak_labels_per_second
    );
    let l = &report.submit_to_printed;
    println!(
        "submit-to-printed latency: p50 {:.0} ms, p90 {:.0} ms, p99 {:.0} ms, max {:.0} ms ({} orders)",
        l.p50_ms, l.p90_ms, l.p99_ms, l.max_ms, l.count
    );
    println!("{}", serde_json::to_string(&report)?);
    if (report.labels as u64) < printable {
        bail!(
            "only {} of {} labels printed within 300 s",
            report.labels,
            printable
        );
    }
    Ok(())
}
