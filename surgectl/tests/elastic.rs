//! Tier 3: elastic nodes on real processes (3 coordinators, nodes added and lost, RocksDB on
//! disk), with single and batched intake and a printing station running throughout.
//!
//! Start with 3 nodes; node-4 and node-5 join (`surgectl dev add-node`) and, with no further
//! command, replicas and leaders spread until each count is within 1 across the 5 nodes. Drain
//! node-2 (removing it first is refused, naming its replicas), then remove it. With
//! `max-down-time 20s`, node-3 is killed -9 for good and every shard gets back to 3 voters on
//! up nodes; the coordinator leader is killed -9 while those repairs are in flight, and every
//! operator it left completes or rolls back. Then one more node is killed -9: no shard loses
//! its quorum. Bad input (draining the last nodes, removing a node holding replicas, an
//! operator on a shard that does not exist, a zero or garbage max-down-time) is refused and
//! changes nothing.
//!
//! Node-3 comes back after max-down-time: it destroys its moved replicas and gets new ones by
//! balancing.
//!
//! Afterwards: no submission failed; every acknowledged order is readable on each current
//! replica of its shard, from that replica's own copy; the replicas of every shard hold
//! identical data (digests at one applied index, checked also mid-run); no waybill is bound
//! twice and no label printed twice; a watcher that kept moving from node to node with its
//! cursor saw every transition of every order once, with no gap.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{eventually, DevCluster};
use futures::StreamExt;
use surge_client::verify::{self, VerifyPolicy};
use surge_client::{sample, MetaClient, OrderClient};
use surge_grpc::v1::order_service_client::OrderServiceClient;
use surge_grpc::v1::{
    CreateOperatorRequest, DrainNodeRequest, GetOrderRequest, ListNodesRequest,
    ListOperatorsRequest, ListShardsRequest, NodeState, NodeStatus, OrderEvent, OrderStatus as S,
    RemoveNodeRequest, SetClusterConfigRequest, ShardDetail, WatchOrdersRequest,
};
use surgectl::station::{self, Sink, StationConfig, StationReport};
use tokio::sync::watch;
use tonic::Code;

const SHARDS: u32 = 16;
const TENANT: &str = "elastic";
/// Bounds on the writers: at most this many orders each, whatever happens.
const MAX_SINGLE: u64 = 20_000;
const MAX_BATCHES: u64 = 5_000;
const BATCH: u64 = 20;

/// The writers and the station, running until stopped.
struct Workload {
    stop: Arc<AtomicBool>,
    paused: Arc<AtomicBool>,
    /// Writers waiting while paused.
    parked: Arc<AtomicUsize>,
    /// External id → order id, for every acknowledged order.
    acked: Arc<Mutex<BTreeMap<String, String>>>,
    failures: Arc<Mutex<Vec<String>>>,
    submitted: Arc<AtomicU64>,
    writers: Vec<tokio::task::JoinHandle<()>>,
    station_stop: watch::Sender<bool>,
    station: tokio::task::JoinHandle<Result<StationReport, tonic::Status>>,
    /// Every event the watcher saw, and the watcher itself.
    events: Arc<Mutex<Vec<OrderEvent>>>,
    watcher: tokio::task::JoinHandle<()>,
}

/// Follows the tenant's events from one node at a time with its cursor, moving on to the next
/// node of the current shard map whenever a stream ends or fails: shards move under it.
async fn watch_events(client: Arc<OrderClient>, events: Arc<Mutex<Vec<OrderEvent>>>) {
    let mut cursor = String::new();
    let mut turn = 0usize;
    for _ in 0..10_000 {
        let nodes = client.node_addresses().await.unwrap_or_default();
        if nodes.is_empty() {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        turn += 1;
        let node = &nodes[turn % nodes.len()];
        let request = WatchOrdersRequest {
            cursor: cursor.clone(),
        };
        let Ok((ch, req)) = client.stream_request(node, request) else {
            continue;
        };
        let Ok(resp) = OrderServiceClient::new(ch).watch_orders(req).await else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        let mut stream = resp.into_inner();
        // Stay a while on one node, then move on (a reconnect with the cursor).
        for _ in 0..40 {
            let next = tokio::time::timeout(Duration::from_secs(3), stream.message()).await;
            let Ok(Ok(Some(batch))) = next else { break };
            events.lock().expect("lock").extend(batch.events);
            cursor = batch.cursor;
        }
    }
}

/// Waits while the writers are paused (and not stopped), counted in `parked`.
async fn park_while_paused(paused: &AtomicBool, stop: &AtomicBool, parked: &AtomicUsize) {
    if !paused.load(Ordering::Relaxed) {
        return;
    }
    parked.fetch_add(1, Ordering::Relaxed);
    while paused.load(Ordering::Relaxed) && !stop.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    parked.fetch_sub(1, Ordering::Relaxed);
}

fn record(
    acked: &Mutex<BTreeMap<String, String>>,
    failures: &Mutex<Vec<String>>,
    ext: String,
    result: Result<String, String>,
) {
    match result {
        Ok(id) => {
            acked.lock().expect("lock").insert(ext, id);
        }
        Err(e) => failures.lock().expect("lock").push(format!("{ext}: {e}")),
    }
}

impl Workload {
    fn start(client: Arc<OrderClient>, labels: std::path::PathBuf) -> Workload {
        let stop = Arc::new(AtomicBool::new(false));
        let paused = Arc::new(AtomicBool::new(false));
        let parked = Arc::new(AtomicUsize::new(0));
        let acked: Arc<Mutex<BTreeMap<String, String>>> = Arc::default();
        let failures: Arc<Mutex<Vec<String>>> = Arc::default();
        let submitted = Arc::new(AtomicU64::new(0));
        let single = {
            let (client, stop, paused, parked, acked, failures, submitted) = (
                client.clone(),
                stop.clone(),
                paused.clone(),
                parked.clone(),
                acked.clone(),
                failures.clone(),
                submitted.clone(),
            );
            tokio::spawn(async move {
                for n in 0..MAX_SINGLE {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    park_while_paused(&paused, &stop, &parked).await;
                    let order = sample::order("single", n);
                    let ext = order.external_order_id.clone();
                    let result = client.submit(order).await;
                    submitted.fetch_add(1, Ordering::Relaxed);
                    let result = result.map(|a| a.order_id).map_err(|s| s.to_string());
                    record(&acked, &failures, ext, result);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
        };
        let batched = {
            let (client, stop, paused, parked, acked, failures, submitted) = (
                client.clone(),
                stop.clone(),
                paused.clone(),
                parked.clone(),
                acked.clone(),
                failures.clone(),
                submitted.clone(),
            );
            tokio::spawn(async move {
                for b in 0..MAX_BATCHES {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    park_while_paused(&paused, &stop, &parked).await;
                    let orders: Vec<_> = (0..BATCH)
                        .map(|i| sample::order("batch", b * BATCH + i))
                        .collect();
                    let exts: Vec<String> =
                        orders.iter().map(|o| o.external_order_id.clone()).collect();
                    submitted.fetch_add(BATCH, Ordering::Relaxed);
                    match client.submit_batch(orders).await {
                        Ok(results) => {
                            for (ext, r) in exts.into_iter().zip(results) {
                                let result = match r.outcome {
                                    Some(surge_grpc::v1::submit_result::Outcome::Accepted(a)) => {
                                        Ok(a.order_id)
                                    }
                                    other => Err(format!("{other:?}")),
                                };
                                record(&acked, &failures, ext, result);
                            }
                        }
                        Err(s) => failures
                            .lock()
                            .expect("lock")
                            .push(format!("batch {b}: {s}")),
                    }
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            })
        };
        let (station_stop, stop_rx) = watch::channel(false);
        let config = StationConfig {
            station: "dock-1".into(),
            sink: Sink::Dir(labels),
            window: 50,
            exit_after_idle: None,
        };
        let events: Arc<Mutex<Vec<OrderEvent>>> = Arc::default();
        let watcher = tokio::spawn(watch_events(client.clone(), events.clone()));
        let station = tokio::spawn(station::run(client, config, stop_rx));
        Workload {
            stop,
            paused,
            parked,
            acked,
            failures,
            submitted,
            writers: vec![single, batched],
            station_stop,
            station,
            events,
            watcher,
        }
    }

    /// True once no writer has a submission in flight: each is parked or done.
    fn quiet(&self) -> bool {
        let done = self.writers.iter().filter(|w| w.is_finished()).count();
        self.parked.load(Ordering::Relaxed) + done == self.writers.len()
    }

    fn failures(&self) -> Vec<String> {
        self.failures.lock().expect("lock").clone()
    }

    fn acked(&self) -> usize {
        self.acked.lock().expect("lock").len()
    }
}

async fn nodes(meta: &MetaClient) -> Vec<NodeStatus> {
    common::admin(meta, ListNodesRequest {}, |mut c, r| async move {
        c.list_nodes(r).await
    })
    .await
    .expect("node list")
    .nodes
}

async fn shards(meta: &MetaClient) -> Vec<ShardDetail> {
    common::admin(meta, ListShardsRequest {}, |mut c, r| async move {
        c.list_shards(r).await
    })
    .await
    .expect("shard list")
    .shards
}

fn node_id(nodes: &[NodeStatus], address: &str) -> u64 {
    nodes
        .iter()
        .find(|n| n.address == address)
        .map(|n| n.id)
        .expect("node by address")
}

/// Up nodes' replica and leader counts, as (max − min, max − min).
fn spreads(nodes: &[NodeStatus]) -> (u32, u32) {
    let up: Vec<&NodeStatus> = nodes
        .iter()
        .filter(|n| n.state == NodeState::Up as i32)
        .collect();
    let spread = |f: &dyn Fn(&NodeStatus) -> u32| {
        let max = up.iter().map(|n| f(n)).max().unwrap_or(0);
        let min = up.iter().map(|n| f(n)).min().unwrap_or(0);
        max - min
    };
    (spread(&|n| n.replica_count), spread(&|n| n.leader_count))
}

/// True once no operator is in flight.
async fn idle(meta: &MetaClient) -> bool {
    let req = ListOperatorsRequest {
        include_finished: false,
    };
    common::admin(
        meta,
        req,
        |mut c, r| async move { c.list_operators(r).await },
    )
    .await
    .map(|r| r.operators.is_empty())
    .unwrap_or(false)
}

/// Every shard has `replicas` voters, all on up nodes in `up`, no learner, and a leader.
fn fully_replicated(shards: &[ShardDetail], up: &BTreeSet<u64>, replicas: usize) -> bool {
    shards.iter().all(|s| {
        let voters: Vec<u64> = s
            .replicas
            .iter()
            .filter(|r| r.role == "voter")
            .map(|r| r.node_id)
            .collect();
        voters.len() == replicas
            && s.replicas.len() == replicas
            && voters.iter().all(|v| up.contains(v))
            && s.leader != 0
            && up.contains(&s.leader)
    })
}

/// Pauses the writers, waits until the pipeline has printed what it can, verifies that every
/// shard's replicas are identical, and resumes.
async fn checkpoint(meta: &MetaClient, client: &OrderClient, w: &Workload, what: &str) {
    w.paused.store(true, Ordering::Relaxed);
    eventually(
        Duration::from_secs(60),
        "the writers to finish their submissions in flight",
        || async { w.quiet() },
    )
    .await;
    eventually(
        Duration::from_secs(120),
        "the pipeline to settle",
        || async {
            let busy = [S::Received, S::Approved, S::Allocated, S::WaybillAssigned];
            for status in busy {
                let open = common::list_status(client, status).await;
                // Orders held for review stay in RECEIVED: only the others must move on.
                if open.iter().any(|o| o.holds.is_empty()) {
                    return false;
                }
            }
            true
        },
    )
    .await;
    let policy = VerifyPolicy {
        attempts: 80,
        pause: Duration::from_millis(250),
    };
    let verdicts = verify::verify(meta, &[], policy).await.expect("verify");
    let bad: Vec<_> = verdicts
        .iter()
        .filter(|v| !v.verdict.is_identical())
        .collect();
    assert!(
        bad.is_empty(),
        "{what}: replicas differ or never settled: {bad:?}"
    );
    println!("{what}: all {} shards' replicas identical", verdicts.len());
    w.paused.store(false, Ordering::Relaxed);
}

/// Refusals of bad operator input; each names its field, and nothing changes.
async fn bad_input_is_refused(cluster: &DevCluster, meta: &MetaClient) {
    // Compared before and after: let the scheduler finish what it is doing first.
    eventually(
        Duration::from_secs(120),
        "no operator in flight",
        || async { idle(meta).await },
    )
    .await;
    let before = shards(meta).await;
    let max_down =
        |s: surge_grpc::v1::ClusterStatusResponse| s.config.map_or(0, |c| c.max_down_time_ms);
    let down_before = max_down(common::status(meta).await.expect("status"));
    let req = CreateOperatorRequest {
        shard: 999,
        kind: "move-replica".into(),
        from_node: 1,
        to_node: 2,
    };
    let err = common::admin(
        meta,
        req,
        |mut c, r| async move { c.create_operator(r).await },
    )
    .await
    .expect_err("an operator on a shard that does not exist");
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    assert!(err.message().starts_with("shard:"), "{}", err.message());
    for (ms, field) in [(0, "max_down_time_ms"), (u64::MAX, "max_down_time_ms")] {
        let req = SetClusterConfigRequest {
            max_down_time_ms: Some(ms),
        };
        let err = common::admin(meta, req, |mut c, r| async move {
            c.set_cluster_config(r).await
        })
        .await
        .expect_err("a bad max-down-time");
        assert_eq!(err.code(), Code::InvalidArgument);
        assert!(err.message().contains(field), "{}", err.message());
    }
    let garbage = cluster
        .surgectl()
        .args(["cluster", "set", "max-down-time", "soon"])
        .output()
        .expect("surgectl");
    assert!(!garbage.status.success());
    assert!(
        String::from_utf8_lossy(&garbage.stderr).contains("max-down-time"),
        "{}",
        String::from_utf8_lossy(&garbage.stderr)
    );
    assert_eq!(
        max_down(common::status(meta).await.expect("status")),
        down_before,
        "a refused max-down-time changed the setting"
    );
    let after = shards(meta).await;
    let members = |s: &[ShardDetail]| -> Vec<(u32, u64, Vec<u64>)> {
        s.iter()
            .map(|d| {
                (
                    d.id,
                    d.epoch,
                    d.replicas.iter().map(|r| r.node_id).collect(),
                )
            })
            .collect()
    };
    assert_eq!(
        members(&before),
        members(&after),
        "bad input changed membership"
    );
}

async fn drain(meta: &MetaClient, id: u64) -> Result<NodeStatus, tonic::Status> {
    common::admin(meta, DrainNodeRequest { id }, |mut c, r| async move {
        c.drain_node(r).await
    })
    .await
}

async fn remove(meta: &MetaClient, id: u64) -> Result<NodeStatus, tonic::Status> {
    common::admin(meta, RemoveNodeRequest { id }, |mut c, r| async move {
        c.remove_node(r).await
    })
    .await
}

/// The coordinator leader's dev entry name.
async fn coordinator_leader(cluster: &DevCluster, meta: &MetaClient) -> String {
    let status = common::status(meta).await.expect("status");
    cluster.coordinator(status.leader_id).name.clone()
}

/// Reads every acknowledged order from each current replica's own copy (stale_ok at the
/// node holding it, so nothing is forwarded).
async fn every_order_on_every_replica(
    meta: &MetaClient,
    key: &str,
    acked: &BTreeMap<String, String>,
) {
    let by_node: HashMap<u64, String> = nodes(meta)
        .await
        .into_iter()
        .filter(|n| n.state == NodeState::Up as i32)
        .map(|n| (n.id, n.address))
        .collect();
    let members: HashMap<u32, Vec<u64>> = shards(meta)
        .await
        .into_iter()
        .map(|s| (s.id, s.replicas.iter().map(|r| r.node_id).collect()))
        .collect();
    let mut asks = Vec::new();
    for (node, address) in &by_node {
        for order_id in acked.values() {
            let shard: u32 = order_id
                .split('-')
                .next()
                .and_then(|s| s.parse().ok())
                .expect("order id carries its shard");
            if members.get(&shard).is_some_and(|m| m.contains(node)) {
                asks.push((*node, address.clone(), order_id.clone()));
            }
        }
    }
    let reads = asks.len();
    let client = OrderClient::new(by_node.values().cloned().collect(), key)
        .expect("client")
        .with_transport(meta.transport().clone());
    let client = &client;
    let failed: Vec<String> = futures::stream::iter(asks)
        .map(|(node, address, order_id)| async move {
            let (ch, req) = client
                .stream_request(
                    &address,
                    GetOrderRequest {
                        order_id: order_id.clone(),
                        stale_ok: true,
                    },
                )
                .expect("request");
            match OrderServiceClient::new(ch).get_order(req).await {
                Ok(_) => None,
                Err(e) => Some(format!("{order_id} on node {node}: {e}")),
            }
        })
        .buffer_unordered(32)
        .filter_map(|f| async move { f })
        .collect()
        .await;
    assert!(
        failed.is_empty(),
        "orders not readable on a replica: {failed:?}"
    );
    println!(
        "{reads} replica reads of {} acknowledged orders",
        acked.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nodes_join_drain_and_heal_while_orders_flow() {
    let mut cluster = DevCluster::start(SHARDS);
    let meta = cluster.client();
    let key = common::tenant_with_rules(&meta, TENANT, &common::example_rules()).await;
    for (carrier, prefix) in [("SF", "SF"), ("ZTO", "ZT")] {
        common::add_range(&meta, TENANT, carrier, prefix, (1, 500_000)).await;
    }
    let client = Arc::new(cluster.order_client(cluster.node_addresses(), &key));
    common::wait_for_intake(&client).await;
    cluster.wait_for_rules(TENANT, 1).await;
    let labels = cluster.dir.path().join("labels");
    let work = Workload::start(client.clone(), labels.clone());
    eventually(
        Duration::from_secs(60),
        "orders acknowledged before the nodes join",
        || async { work.acked() >= 100 },
    )
    .await;

    // Scale out: two nodes join and, with no command, receive replicas and leaders.
    let node4 = cluster.add_node();
    let node5 = cluster.add_node();
    let took = eventually(
        Duration::from_secs(240),
        "replica and leader counts within 1 across 5 nodes",
        || async {
            let n = nodes(&meta).await;
            let up = n.iter().filter(|x| x.state == NodeState::Up as i32).count();
            up == 5 && spreads(&n) <= (1, 1) && idle(&meta).await
        },
    )
    .await;
    let n = nodes(&meta).await;
    println!(
        "balanced over 5 nodes in {took:?}: replicas {:?}, leaders {:?}",
        n.iter().map(|x| x.replica_count).collect::<Vec<_>>(),
        n.iter().map(|x| x.leader_count).collect::<Vec<_>>()
    );
    assert!(n
        .iter()
        .any(|x| x.address == node4.grpc_address && x.leader_count > 0));
    assert!(n
        .iter()
        .any(|x| x.address == node5.grpc_address && x.leader_count > 0));

    // Drain node-2, then remove it; removing it while it holds replicas is refused.
    let node2 = node_id(&n, &cluster.file.nodes[1].grpc_address);
    let err = remove(&meta, node2)
        .await
        .expect_err("remove a node holding replicas");
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.message().contains("replica"), "{}", err.message());
    drain(&meta, node2).await.expect("drain node-2");
    eventually(Duration::from_secs(240), "node-2 drained", || async {
        nodes(&meta).await.iter().any(|x| {
            x.id == node2 && x.state == NodeState::Removable as i32 && x.replica_count == 0
        })
    })
    .await;
    remove(&meta, node2).await.expect("remove node-2");
    checkpoint(&meta, &client, &work, "after scale-out and drain").await;
    bad_input_is_refused(&cluster, &meta).await;

    // Self-heal: node-3 dies for good; after max-down-time its replicas are rebuilt on the
    // three other up nodes — and the coordinator leader dies while that happens.
    let req = SetClusterConfigRequest {
        max_down_time_ms: Some(20_000),
    };
    common::admin(&meta, req, |mut c, r| async move {
        c.set_cluster_config(r).await
    })
    .await
    .expect("max-down-time 20s");
    let node3_entry = cluster.file.nodes[2].clone();
    let node3 = node_id(&nodes(&meta).await, &node3_entry.grpc_address);
    cluster.kill9(&node3_entry);
    let in_flight_now = || async {
        common::admin(
            &meta,
            ListOperatorsRequest {
                include_finished: false,
            },
            |mut c, r| async move { c.list_operators(r).await },
        )
        .await
        .map(|r| r.operators)
        .unwrap_or_default()
    };
    eventually(
        Duration::from_secs(90),
        "a repair operator changing membership in flight",
        || async {
            in_flight_now()
                .await
                .iter()
                .any(|o| o.kind != "transfer-leader")
        },
    )
    .await;
    let in_flight: Vec<u64> = in_flight_now().await.iter().map(|o| o.id).collect();
    let leader = coordinator_leader(&cluster, &meta).await;
    let entry = cluster
        .file
        .coordinators
        .iter()
        .find(|c| c.name == leader)
        .cloned()
        .expect("leader entry");
    cluster.kill9(&entry);
    println!("killed coordinator leader {leader} with operators {in_flight:?} in flight");
    // It comes back once another coordinator leads and carries the operators on.
    eventually(
        Duration::from_secs(30),
        "another coordinator to lead",
        || async {
            common::status(&meta)
                .await
                .is_ok_and(|s| s.leader_id != entry.id)
        },
    )
    .await;
    cluster.restart(&leader);
    let up: BTreeSet<u64> = nodes(&meta)
        .await
        .iter()
        .filter(|x| x.state == NodeState::Up as i32 && x.id != node3)
        .map(|x| x.id)
        .collect();
    assert_eq!(up.len(), 3, "node-1, node-4 and node-5 remain: {up:?}");
    let healed = eventually(
        Duration::from_secs(240),
        "every shard back to 3 up voters",
        || async { fully_replicated(&shards(&meta).await, &up, 3) && idle(&meta).await },
    )
    .await;
    println!("healed {healed:?} after the repairs began");
    let finished = common::admin(
        &meta,
        ListOperatorsRequest {
            include_finished: true,
        },
        |mut c, r| async move { c.list_operators(r).await },
    )
    .await
    .expect("operators")
    .operators;
    for id in &in_flight {
        let op = finished
            .iter()
            .find(|o| o.id == *id)
            .expect("the operator is remembered");
        // A membership change ends done or rolled back; moving only leadership may also
        // time out (the scheduler plans again), and the balance checks below cover it.
        let ended = match op.outcome.as_str() {
            "done" | "rolled-back" => true,
            "failed" => op.kind == "transfer-leader" || op.step == "transfer-leader",
            _ => false,
        };
        assert!(
            ended,
            "operator {id} ({} at {}) ended {:?}: {}",
            op.kind, op.step, op.outcome, op.note
        );
    }

    // Now only R nodes are up: draining any of them is refused up front.
    let last = *up.iter().next().expect("an up node");
    let err = drain(&meta, last)
        .await
        .expect_err("draining one of the last R nodes");
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.message().contains("only 2 other"), "{}", err.message());

    // Node-3 comes back long after max-down-time: its shards moved on, so it destroys those
    // replicas (keeping tombstones) and gets new ones by balancing, with no command.
    cluster.restart(&node3_entry.name);
    let rejoined = eventually(
        Duration::from_secs(240),
        "node-3 back with new replicas, balanced over 4 nodes",
        || async {
            let n = nodes(&meta).await;
            let back = n
                .iter()
                .any(|x| x.id == node3 && x.state == NodeState::Up as i32 && x.replica_count > 0);
            back && spreads(&n) <= (1, 1) && idle(&meta).await
        },
    )
    .await;
    let log = std::fs::read_to_string(&node3_entry.log).unwrap_or_default();
    let destroyed = log.matches("tombstone kept").count();
    assert!(destroyed > 0, "node-3 destroyed none of its moved replicas");
    println!("node-3 destroyed {destroyed} moved replicas and was rebalanced in {rejoined:?}");
    let up: BTreeSet<u64> = up.iter().copied().chain([node3]).collect();

    // One more node dies: every shard keeps its quorum and intake goes on; it comes back and
    // catches up.
    let victim = cluster
        .file
        .nodes
        .iter()
        .find(|e| e.name == "node-4")
        .cloned()
        .expect("node-4");
    let victim_id = node_id(&nodes(&meta).await, &victim.grpc_address);
    cluster.kill9(&victim);
    let before = work.acked();
    eventually(
        Duration::from_secs(60),
        "intake to go on after the kill",
        || async { work.acked() > before + 200 },
    )
    .await;
    eventually(
        Duration::from_secs(30),
        "every shard led by a live node",
        || async {
            shards(&meta)
                .await
                .iter()
                .all(|d| d.leader != 0 && d.leader != victim_id)
        },
    )
    .await;
    cluster.restart("node-4");
    eventually(
        Duration::from_secs(120),
        "node-4 back in every shard",
        || async {
            let s = shards(&meta).await;
            fully_replicated(&s, &up, 3)
                && s.iter()
                    .all(|d| d.replicas.iter().all(|r| r.node_up && r.lag < 100))
        },
    )
    .await;

    // Stop and check.
    work.stop.store(true, Ordering::Relaxed);
    eventually(Duration::from_secs(60), "the writers to stop", || async {
        work.writers.iter().all(|w| w.is_finished())
    })
    .await;
    let failures = work.failures();
    assert!(failures.is_empty(), "failed submissions: {failures:?}");
    let acked = work.acked.lock().expect("lock").clone();
    println!(
        "{} orders acknowledged of {} submitted",
        acked.len(),
        work.submitted.load(Ordering::Relaxed)
    );
    checkpoint(&meta, &client, &work, "at the end").await;
    let _ = work.station_stop.send(true);
    let report = work.station.await.expect("station task").expect("station");
    println!("station: {report:?}");
    eventually(
        Duration::from_secs(60),
        "the watcher to see every order",
        || async {
            let seen: BTreeSet<String> = work
                .events
                .lock()
                .expect("lock")
                .iter()
                .map(|e| e.order_id.clone())
                .collect();
            acked.values().all(|id| seen.contains(id))
        },
    )
    .await;
    // The writers stopped and the pipeline settled: every status is stable now (orders held
    // for review stay RECEIVED).
    let mut all = Vec::new();
    for status in [
        S::Received,
        S::Approved,
        S::Allocated,
        S::WaybillAssigned,
        S::LabelPrinted,
        S::Packed,
        S::Shipped,
        S::Cancelled,
    ] {
        all.extend(common::list_status(&client, status).await);
    }
    eventually(
        Duration::from_secs(60),
        "the watcher to reach every order's status",
        || async {
            let events = work.events.lock().expect("lock");
            let mut last: HashMap<&str, (u64, u32, i32)> = HashMap::new();
            for e in events.iter() {
                let at = last.entry(e.order_id.as_str()).or_insert((0, 0, 0));
                if (e.index, e.pos) >= (at.0, at.1) {
                    *at = (e.index, e.pos, e.to);
                }
            }
            all.iter().all(|o| {
                last.get(o.order_id.as_str())
                    .is_some_and(|l| l.2 == o.status)
            })
        },
    )
    .await;
    work.watcher.abort();
    let events = work.events.lock().expect("lock").clone();
    every_order_on_every_replica(&meta, &key, &acked).await;

    let ids: BTreeSet<&str> = all.iter().map(|o| o.order_id.as_str()).collect();
    for id in acked.values() {
        assert!(ids.contains(id.as_str()), "acknowledged order {id} is gone");
    }
    assert_eq!(all.len(), ids.len(), "an order is listed twice");
    // The watcher, reconnecting to node after node with its cursor while shards moved, saw
    // every transition of every order once, in log order, with no gap, up to its status now.
    let keys: BTreeSet<(u32, u64, u32)> =
        events.iter().map(|e| (e.shard, e.index, e.pos)).collect();
    assert_eq!(keys.len(), events.len(), "an event was delivered twice");
    let mut by_order: BTreeMap<&str, Vec<&OrderEvent>> = BTreeMap::new();
    for e in &events {
        by_order.entry(e.order_id.as_str()).or_default().push(e);
    }
    for o in &all {
        let Some(seen) = by_order.get_mut(o.order_id.as_str()) else {
            panic!("no events for {}", o.order_id);
        };
        seen.sort_by_key(|e| (e.index, e.pos));
        assert_eq!(seen[0].to(), S::Received, "{} starts at intake", o.order_id);
        for w in seen.windows(2) {
            assert_eq!(w[0].to, w[1].from, "{}: a gap in its events", o.order_id);
        }
        let last = seen.last().map(|e| e.to).unwrap_or_default();
        assert_eq!(
            last, o.status,
            "{}: its last event is not its status",
            o.order_id
        );
    }
    println!("{} events watched across the moves", events.len());
    let mut waybills = BTreeMap::new();
    for o in all.iter().filter(|o| !o.waybill.is_empty()) {
        if let Some(other) = waybills.insert(o.waybill.clone(), o.order_id.clone()) {
            panic!(
                "waybill {} bound to {} and {}",
                o.waybill, other, o.order_id
            );
        }
    }
    let log = std::fs::read_to_string(labels.join("printed.log")).expect("printed.log");
    let mut jobs = BTreeSet::new();
    let mut printed_waybills = BTreeSet::new();
    for line in log.lines() {
        let cols: Vec<&str> = line.split('\t').collect();
        assert!(
            jobs.insert(cols[0].to_string()),
            "job {} printed twice",
            cols[0]
        );
        assert!(
            printed_waybills.insert(cols[3].to_string()),
            "waybill {} printed twice",
            cols[3]
        );
    }
    let printed = all.iter().filter(|o| o.status() == S::LabelPrinted).count();
    assert_eq!(
        printed,
        jobs.len(),
        "every printed order has exactly one label"
    );
    assert!(printed > 0);
    println!("{printed} labels, {} waybills bound", waybills.len());
}
