//! A tenant's API keys on real processes: made by the cluster, several per tenant, each with
//! scopes the nodes enforce (a `print` key cannot submit orders, a `read-only` key changes
//! nothing); a revoked key is refused by every node; no key is in clear in a data dir or log,
//! and no answer to an operator carries a key's hash.

mod common;

use std::time::{Duration, Instant};

use common::{wait_for_intake, DevCluster};
use surge_grpc::v1::order_service_client::OrderServiceClient;
use surge_grpc::v1::print_service_client::PrintServiceClient;
use surge_grpc::v1::{AckJobsRequest, GetOrderRequest, GetShardMapRequest, SubmitOrderRequest};
use tonic::metadata::MetadataValue;
use tonic::{Code, Request};

fn with_key<T>(message: T, key: &str) -> Request<T> {
    let mut request = Request::new(message);
    request.set_timeout(Duration::from_secs(5));
    request.metadata_mut().insert(
        "authorization",
        MetadataValue::try_from(format!("Bearer {key}")).expect("header"),
    );
    request
}

/// A key `surgectl tenant key add` made.
fn add_key(cluster: &DevCluster, tenant: &str, scope: &str, label: &str) -> (u64, String) {
    let out = cluster
        .surgectl()
        .args(["-o", "json", "tenant", "key", "add", "--tenant", tenant])
        .args(["--scope", scope, "--label", label])
        .output()
        .expect("surgectl tenant key add");
    assert!(out.status.success(), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let key = v["api_key"].as_str().expect("api_key").to_string();
    (v["key"]["id"].as_u64().expect("id"), key)
}

/// A channel to node `address`'s client port, as a merchant's ERP has it.
fn node_channel(cluster: &DevCluster, address: &str) -> tonic::transport::Channel {
    cluster
        .client_transport()
        .endpoint(address)
        .expect("endpoint")
        .connect_lazy()
}

/// Whether node `address` (its own answer, not a forwarded one) takes `key`.
async fn node_takes(cluster: &DevCluster, address: &str, key: &str) -> Result<(), tonic::Status> {
    OrderServiceClient::new(node_channel(cluster, address))
        .get_shard_map(with_key(GetShardMapRequest::default(), key))
        .await
        .map(|_| ())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_scoped_revoked_everywhere_and_never_in_clear() {
    let cluster = DevCluster::start(4);
    let meta = cluster.client();
    let tenant = "hz-flagship";
    let created = meta.create_tenant(tenant).await.expect("tenant");
    let full = created.api_key.clone();
    assert_eq!(
        created.key.as_ref().map(|k| k.scopes.clone()),
        Some(vec!["orders".to_string(), "print".to_string()])
    );
    let (_, print) = add_key(&cluster, tenant, "print", "dock-1 打印机");
    let (_, read_only) = add_key(&cluster, tenant, "read-only", "杭州 BI 看板");
    let client = cluster.order_client(cluster.node_addresses(), &full);
    wait_for_intake(&client).await;
    let order = client
        .submit(surge_client::sample::order("keys", 1))
        .await
        .expect("an orders key submits");

    // Every node answers a print key's order submit with PERMISSION_DENIED, and lets it and
    // the read-only key read.
    for address in cluster.node_addresses() {
        let channel = node_channel(&cluster, &address);
        let mut orders = OrderServiceClient::new(channel.clone());
        for key in [&print, &read_only] {
            let submit = SubmitOrderRequest {
                order: Some(surge_client::sample::order("keys", 2)),
            };
            let err = orders
                .submit_order(with_key(submit, key))
                .await
                .expect_err("a print or read-only key submits");
            assert_eq!(err.code(), Code::PermissionDenied, "{address}: {err:?}");
            assert!(err.message().contains("needs an orders key"), "{err:?}");
            let get = GetOrderRequest {
                order_id: order.order_id.clone(),
                ..GetOrderRequest::default()
            };
            orders
                .get_order(with_key(get, key))
                .await
                .unwrap_or_else(|e| panic!("{address}: a key that may read reads: {e:?}"));
        }
        let ack = AckJobsRequest {
            station: "dock-1".into(),
            acks: Vec::new(),
        };
        let err = PrintServiceClient::new(channel)
            .ack_jobs(with_key(ack, &read_only))
            .await
            .expect_err("a read-only key acknowledges print jobs");
        assert_eq!(err.code(), Code::PermissionDenied, "{address}: {err:?}");
        assert!(err.message().contains("needs a print key"), "{err:?}");
    }

    // The operator sees ids, scopes, labels and hints: never a key or its hash.
    let out = cluster
        .surgectl()
        .args(["-o", "json", "tenant", "key", "list", "--tenant", tenant])
        .output()
        .expect("surgectl tenant key list");
    assert!(out.status.success(), "{out:?}");
    let listed = String::from_utf8_lossy(&out.stdout).to_string();
    let keys: serde_json::Value = serde_json::from_str(&listed).expect("json");
    assert_eq!(keys.as_array().map(Vec::len), Some(3), "{listed}");
    for secret in [&full, &print, &read_only] {
        assert!(!listed.contains(secret.as_str()), "{listed}");
        let hash = surge_proto::auth::key_digest(secret);
        assert!(!listed.contains(&hash), "a key hash in {listed}");
    }
    assert!(
        listed.contains(&full[..10]),
        "the hint of the first key: {listed}"
    );

    // A stream opened with the key before it is revoked.
    let first_node = cluster.node_addresses()[0].clone();
    let mut stream = OrderServiceClient::new(node_channel(&cluster, &first_node))
        .watch_orders(with_key(
            surge_grpc::v1::WatchOrdersRequest::default(),
            &full,
        ))
        .await
        .expect("a stream")
        .into_inner();

    // Revoked: every node refuses it (measured from the revoke's answer; about a heartbeat).
    let first_id = created.key.as_ref().map(|k| k.id).expect("key id");
    let out = cluster
        .surgectl()
        .args([
            "tenant",
            "key",
            "revoke",
            "--tenant",
            tenant,
            &first_id.to_string(),
        ])
        .output()
        .expect("surgectl tenant key revoke");
    assert!(out.status.success(), "{out:?}");
    let revoked_at = Instant::now();
    let mut pending = cluster.node_addresses();
    while !pending.is_empty() {
        let mut still = Vec::new();
        for address in pending {
            match node_takes(&cluster, &address, &full).await {
                Err(e) if e.code() == Code::Unauthenticated => {
                    assert!(e.message().contains("revoked"), "{e:?}");
                }
                _ => still.push(address),
            }
        }
        pending = still;
        assert!(
            revoked_at.elapsed() < Duration::from_secs(10),
            "nodes {pending:?} still take the revoked key after 10 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!(
        "the revoked key was refused by every node {} ms after the revoke answered",
        revoked_at.elapsed().as_millis()
    );
    // The open stream ends with the refusal too.
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match stream.message().await {
                Ok(Some(_)) => continue,
                Ok(None) => return None,
                Err(e) => return Some(e),
            }
        }
    })
    .await
    .expect("the stream of a revoked key ends within 10 s");
    let ended = ended.expect("it ends with a refusal, not quietly");
    assert_eq!(ended.code(), Code::Unauthenticated, "{ended:?}");
    for address in cluster.node_addresses() {
        node_takes(&cluster, &address, &print)
            .await
            .unwrap_or_else(|e| panic!("{address}: the other keys still work: {e:?}"));
    }

    limits_refuse_the_excess_with_a_retry_after(&cluster, &meta).await;
    common::assert_nowhere_in_clear(&cluster, &[full, print, read_only]);
}

/// A tenant over its orders/s limit is refused RESOURCE_EXHAUSTED with how long to wait, and
/// over its streams limit cannot open another; the nodes count both.
async fn limits_refuse_the_excess_with_a_retry_after(
    cluster: &DevCluster,
    meta: &surge_client::MetaClient,
) {
    let tenant = "flash-sale";
    let key = meta.create_tenant(tenant).await.expect("tenant").api_key;
    let out = cluster
        .surgectl()
        .args(["tenant", "limits", "set", "--tenant", tenant])
        .args(["--orders-per-sec", "50", "--streams", "1"])
        .output()
        .expect("surgectl tenant limits set");
    assert!(out.status.success(), "{out:?}");
    let listed = cluster
        .surgectl()
        .args(["-o", "json", "tenant", "list"])
        .output()
        .expect("surgectl tenant list");
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).expect("json");
    let row = listed
        .as_array()
        .and_then(|a| a.iter().find(|t| t["name"] == tenant))
        .cloned()
        .expect("the tenant listed");
    assert_eq!(row["limits"]["orders_per_sec"], 50);
    assert_eq!(row["limits"]["streams"], 1);
    // The nodes take the limits in with their next heartbeat.
    tokio::time::sleep(Duration::from_secs(3)).await;

    let address = cluster.node_addresses()[0].clone();
    let mut orders = OrderServiceClient::new(node_channel(cluster, &address));
    let (mut admitted, mut throttled) = (0, 0);
    for round in 0..4u64 {
        let batch = (0..250)
            .map(|i| surge_client::sample::order("limits", round * 1000 + i))
            .collect();
        let req = surge_grpc::v1::SubmitOrdersRequest { orders: batch };
        let resp = orders
            .submit_orders(with_key(req, &key))
            .await
            .expect("a batch answers per order")
            .into_inner();
        for r in resp.results {
            match r.outcome {
                Some(surge_grpc::v1::submit_result::Outcome::Accepted(_)) => admitted += 1,
                Some(surge_grpc::v1::submit_result::Outcome::Rejected(rej)) => {
                    assert_eq!(
                        rej.code,
                        surge_grpc::v1::ErrorCode::ResourceExhausted as i32,
                        "{rej:?}"
                    );
                    assert!(rej.retry_after_ms > 0, "{rej:?}");
                    assert!(rej.message.contains("50 orders/s"), "{rej:?}");
                    throttled += 1;
                }
                None => panic!("an empty result"),
            }
        }
    }
    assert!(
        admitted > 0 && throttled > 0,
        "admitted {admitted}, throttled {throttled}"
    );
    // 1000 orders offered at once against 50/s: most are refused.
    assert!(
        throttled > admitted,
        "admitted {admitted}, throttled {throttled}"
    );

    // One stream on this node at a time.
    let watch = || surge_grpc::v1::WatchOrdersRequest::default();
    let first = orders
        .watch_orders(with_key(watch(), &key))
        .await
        .expect("the first stream");
    let err = orders
        .watch_orders(with_key(watch(), &key))
        .await
        .expect_err("a second stream");
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    assert!(surge_grpc::ApiError::from_status(&err)
        .retry_after
        .is_some());
    drop(first);

    let http = cluster
        .file
        .nodes
        .iter()
        .find(|n| n.grpc_address == address)
        .map(|n| n.http_address.clone())
        .expect("node");
    let (_, page) = common::http_get(&http, "/metrics").await;
    let throttled_metric =
        format!("surge_tenant_throttled_total{{kind=\"streams\",tenant=\"{tenant}\"}}");
    assert!(
        common::metric(&page, &throttled_metric).is_some_and(|v| v >= 1.0),
        "{throttled_metric} not in the node's metrics"
    );
}
