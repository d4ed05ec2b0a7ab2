//! Tier 3: order intake on real processes (3 coordinators, 3 nodes, RocksDB on disk).
//!
//! Clients submit for 20 s while one node is killed -9 and restarted, then another. Afterwards
//! every acknowledged order is on every replica of its shard, the tenant holds exactly the
//! acknowledged orders, a retry maps to the same order id, and no client call failed. Then all
//! nodes are killed and restarted, and every order is still there. Before all that, a batch sent
//! to a node that does not lead its shard is answered with the leader's address.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{eventually, DevCluster};
use futures::StreamExt;
use surge_client::{sample, MetaClient, OrderClient};
use surge_grpc::v1::order_service_client::OrderServiceClient;
use surge_grpc::v1::submit_result::Outcome;
use surge_grpc::v1::{Acceptance, GetOrderRequest, SubmitOrdersRequest, SubmitResult};
use tonic::metadata::MetadataValue;

pub async fn create_tenant(meta: &MetaClient, name: &str) -> String {
    meta.create_tenant(name)
        .await
        .expect("create tenant")
        .api_key
}

fn channel(transport: &surge_grpc::tls::Transport, address: &str) -> tonic::transport::Channel {
    transport
        .endpoint(address)
        .expect("endpoint")
        .timeout(Duration::from_secs(2))
        .connect_lazy()
}

/// Reads `order_id` from one node's own replica, without forwarding.
async fn read_replica(
    channel: tonic::transport::Channel,
    key: &str,
    order_id: &str,
) -> Option<String> {
    let mut request = tonic::Request::new(GetOrderRequest {
        order_id: order_id.to_string(),
        stale_ok: true,
    });
    let auth = MetadataValue::try_from(format!("Bearer {key}")).ok()?;
    request.metadata_mut().insert("authorization", auth);
    request
        .metadata_mut()
        .insert("x-surge-forwarded", MetadataValue::from_static("1"));
    let view = OrderServiceClient::new(channel)
        .get_order(request)
        .await
        .ok()?
        .into_inner()
        .order?;
    view.order.map(|o| o.external_order_id)
}

/// A batch sent to a node that does not lead the order's shard is forwarded, and the answer
/// names the leader so a client with a stale map goes there next; the leader's own answer
/// names none.
async fn forwarded_answers_name_the_leader(client: &OrderClient, key: &str) {
    let mut order = sample::order("forwarded", 0);
    order.buyer_remark = "请转发给分片的领导者".into();
    let shard = client.shard_of(&order).await.expect("shard");
    eventually(
        Duration::from_secs(30),
        "a forwarded answer naming the leader",
        || {
            let order = order.clone();
            async move {
                let Ok(map) = client.refresh().await else {
                    return false;
                };
                let address = |id: u64| {
                    map.nodes
                        .iter()
                        .find(|n| n.id == id)
                        .map(|n| n.address.clone())
                };
                let Some(leader) = map
                    .shards
                    .iter()
                    .find(|s| s.id == shard)
                    .and_then(|s| address(s.leader))
                else {
                    return false;
                };
                let Some(other) = map.nodes.iter().find(|n| n.address != leader) else {
                    return false;
                };
                let submit = |at: String| {
                    let order = order.clone();
                    async move {
                        let mut request = tonic::Request::new(SubmitOrdersRequest {
                            orders: vec![order],
                        });
                        let auth = MetadataValue::try_from(format!("Bearer {key}")).expect("key");
                        request.metadata_mut().insert("authorization", auth);
                        OrderServiceClient::new(channel(client.transport(), &at))
                            .submit_orders(request)
                            .await
                            .ok()
                            .map(|r| r.into_inner().results)
                    }
                };
                let accepted = |results: &[SubmitResult]| {
                    matches!(
                        results.first(),
                        Some(SubmitResult {
                            outcome: Some(Outcome::Accepted(_)),
                            ..
                        })
                    )
                };
                let (Some(via_other), Some(at_leader)) = (
                    submit(other.address.clone()).await,
                    submit(leader.clone()).await,
                ) else {
                    return false;
                };
                let Some(Outcome::Accepted(acceptance)) = via_other[0].outcome.clone() else {
                    return false;
                };
                // A read forwarded by the same node names the leader in its metadata.
                let mut get = tonic::Request::new(GetOrderRequest {
                    order_id: acceptance.order_id,
                    stale_ok: false,
                });
                let auth = MetadataValue::try_from(format!("Bearer {key}")).expect("key");
                get.metadata_mut().insert("authorization", auth);
                let read_hint =
                    OrderServiceClient::new(channel(client.transport(), &other.address))
                        .get_order(get)
                        .await
                        .ok()
                        .and_then(|r| {
                            r.metadata()
                                .get(surge_proto::LEADER_HINT_METADATA)
                                .and_then(|v| v.to_str().ok())
                                .map(str::to_string)
                        });
                accepted(&at_leader)
                    && via_other[0].leader == leader
                    && at_leader[0].leader.is_empty()
                    && read_hint.as_deref() == Some(leader.as_str())
            }
        },
    )
    .await;
}

async fn count_listed(client: &OrderClient) -> (usize, BTreeSet<String>) {
    let all = common::list_settled(client).await;
    let ids = all.iter().map(|o| o.order_id.clone()).collect();
    (all.len(), ids)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_orders_survive_node_kills_and_a_full_restart() {
    let mut cluster = DevCluster::start(8);
    let meta = cluster.client();
    let key = create_tenant(&meta, "intake").await;
    let nodes: Vec<String> = cluster.node_addresses();
    let client = Arc::new(
        OrderClient::new(nodes.clone(), &key)
            .expect("client")
            .with_transport(cluster.client_transport())
            .with_call_timeout(Duration::from_secs(2)),
    );
    common::wait_for_intake(&client).await;
    // In a tenant of its own, so the orders counted below are only the acknowledged ones.
    let other_key = create_tenant(&meta, "forwarding").await;
    let other = cluster.order_client(nodes.clone(), &other_key);
    forwarded_answers_name_the_leader(&other, &other_key).await;

    // 16 clients submit single orders for 20 s; every acknowledgement is recorded.
    let acked: Arc<Mutex<HashMap<String, Acceptance>>> = Arc::default();
    let failures: Arc<Mutex<Vec<String>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let (client, acked, failures, stop, next) = (
            client.clone(),
            acked.clone(),
            failures.clone(),
            stop.clone(),
            next.clone(),
        );
        tasks.spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let n = next.fetch_add(1, Ordering::Relaxed);
                let order = sample::order("kills", n);
                let ext = order.external_order_id.clone();
                match client.submit(order).await {
                    Ok(a) => {
                        acked.lock().expect("lock").insert(ext, a);
                    }
                    Err(e) => failures.lock().expect("lock").push(format!(
                        "{ext}: {:?} {}",
                        e.code(),
                        e.message()
                    )),
                }
            }
        });
    }
    let started = Instant::now();
    let mut killed = Vec::new();
    for (at, victim) in [(4u64, 0usize), (11, 1)] {
        tokio::time::sleep(Duration::from_secs(at).saturating_sub(started.elapsed())).await;
        let entry = cluster.file.nodes[victim].clone();
        eprintln!("{:?}: kill -9 {}", started.elapsed(), entry.name);
        cluster.kill9(&entry);
        tokio::time::sleep(Duration::from_secs(3)).await;
        eprintln!("{:?}: restart {}", started.elapsed(), entry.name);
        cluster.restart(&entry.name);
        killed.push(entry.name);
    }
    tokio::time::sleep(Duration::from_secs(20).saturating_sub(started.elapsed())).await;
    stop.store(true, Ordering::Relaxed);
    while tasks.join_next().await.is_some() {}
    let failures = failures.lock().expect("lock").clone();
    assert!(failures.is_empty(), "failed submissions: {failures:?}");
    let acked = acked.lock().expect("lock").clone();
    eprintln!(
        "{} orders acknowledged in {:?} across kills of {killed:?}",
        acked.len(),
        started.elapsed()
    );
    assert!(
        acked.len() > 100,
        "too few orders went through: {}",
        acked.len()
    );

    // One external order is one order id.
    let mut by_id: BTreeMap<String, String> = BTreeMap::new();
    for (ext, a) in &acked {
        if let Some(other) = by_id.insert(a.order_id.clone(), ext.clone()) {
            panic!("order {} acknowledged for {other} and {ext}", a.order_id);
        }
    }
    // A retry of acknowledged orders returns the original acceptance.
    for (n, (ext, a)) in acked.iter().take(20).enumerate() {
        let idx: u64 = ext
            .rsplit('-')
            .next()
            .and_then(|s| s.parse().ok())
            .expect("n");
        let again = client
            .submit(sample::order("kills", idx))
            .await
            .expect("retry");
        assert_eq!(again.order_id, a.order_id, "retry {n} of {ext}");
        assert!(again.duplicate);
    }

    // Every acknowledged order is on every replica of its shard, and the tenant holds exactly
    // the acknowledged ones.
    let map = client.shard_map().await.expect("shard map");
    let addresses: HashMap<u64, String> = map
        .nodes
        .iter()
        .map(|n| (n.id, n.address.clone()))
        .collect();
    let replicas: HashMap<u32, Vec<u64>> = map
        .shards
        .iter()
        .map(|s| (s.id, s.replicas.clone()))
        .collect();
    let channels: HashMap<u64, tonic::transport::Channel> = addresses
        .iter()
        .map(|(id, a)| (*id, channel(client.transport(), a)))
        .collect();
    let check_all = |acked: HashMap<String, Acceptance>| {
        let key = key.clone();
        let channels = channels.clone();
        let replicas = replicas.clone();
        async move {
            let mut jobs = Vec::new();
            for (ext, a) in &acked {
                for node in &replicas[&a.shard] {
                    jobs.push((
                        ext.clone(),
                        a.order_id.clone(),
                        *node,
                        channels[node].clone(),
                    ));
                }
            }
            let reads = jobs.into_iter().map(|(ext, order_id, node, channel)| {
                let key = key.clone();
                async move {
                    let what = format!("order {order_id} on node {node}");
                    eventually(Duration::from_secs(30), &what, || {
                        let (key, channel) = (key.clone(), channel.clone());
                        let (ext, order_id) = (ext.clone(), order_id.clone());
                        async move {
                            read_replica(channel, &key, &order_id).await.as_deref()
                                == Some(ext.as_str())
                        }
                    })
                    .await;
                }
            });
            futures::stream::iter(reads)
                .buffer_unordered(64)
                .collect::<Vec<_>>()
                .await;
        }
    };
    check_all(acked.clone()).await;
    let (listed, ids) = count_listed(&client).await;
    let expected: BTreeSet<String> = acked.values().map(|a| a.order_id.clone()).collect();
    assert_eq!(listed, ids.len(), "an order was listed twice");
    assert_eq!(ids, expected, "stored orders differ from acknowledged ones");

    // Every node killed at once and restarted: every order is still there.
    for entry in cluster.file.nodes.clone() {
        cluster.kill9(&entry);
    }
    eventually(Duration::from_secs(10), "every node to exit", || async {
        cluster.file.nodes.iter().all(|n| common::exited(n.pid))
    })
    .await;
    for entry in cluster.file.nodes.clone() {
        cluster.restart(&entry.name);
    }
    common::wait_for_intake(&client).await;
    check_all(acked.clone()).await;
    let (_, after) = count_listed(&client).await;
    assert_eq!(after, expected, "orders changed across a full restart");
}
