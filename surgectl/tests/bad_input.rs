//! Tier 3: bad input against a real cluster gets a clear error and changes nothing.

mod common;

use std::time::Duration;

use common::{eventually, status, DevCluster};
use surge_client::{sample, OrderClient};
use surge_grpc::v1::admin_service_client::AdminServiceClient;
use surge_grpc::v1::node_service_client::NodeServiceClient;
use surge_grpc::v1::order_service_client::OrderServiceClient;
use surge_grpc::v1::submit_result::Outcome;
use surge_grpc::v1::ErrorCode;
use surge_grpc::v1::{
    CreateTenantRequest, GetOrderRequest, HeartbeatRequest, InitClusterRequest, ListOrdersRequest,
    ListTenantsRequest, Order, RemoveCoordinatorRequest, SubmitOrderRequest, SubmitOrdersRequest,
};
use surge_server::identity::{self, Identity};
use tonic::metadata::MetadataValue;
use tonic::Code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_name_the_problem_and_change_nothing() {
    let mut cluster = DevCluster::start(8);
    let client = cluster.client();
    let before = status(&client).await.expect("status");

    // A second init.
    let err = client
        .call(|ch| async move {
            let req = InitClusterRequest {
                shards: 4,
                replicas: 1,
                request_token: "another".into(),
                ..Default::default()
            };
            AdminServiceClient::new(ch).init_cluster(req).await
        })
        .await
        .expect_err("second init must be refused");
    assert_eq!(err.code(), Code::AlreadyExists, "{err:?}");
    assert!(
        err.message().contains(&before.cluster_id),
        "{}",
        err.message()
    );

    // NodeService is not served on the client port: only on the peer port.
    let err = client
        .call(|ch| async move {
            NodeServiceClient::new(ch)
                .heartbeat(HeartbeatRequest::default())
                .await
        })
        .await
        .expect_err("NodeService on the client port");
    assert_eq!(err.code(), Code::Unimplemented, "{err:?}");

    // A heartbeat from a node id nobody registered.
    let err = cluster
        .peer_client()
        .call(|ch| async move {
            let req = HeartbeatRequest {
                node_id: 999,
                ..Default::default()
            };
            NodeServiceClient::new(ch).heartbeat(req).await
        })
        .await
        .expect_err("unknown node must be refused");
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    assert!(
        err.message().contains("node_id") && err.message().contains("999"),
        "{}",
        err.message()
    );

    // Invalid init arguments name the field.
    let err = client
        .call(|ch| async move {
            let req = InitClusterRequest {
                shards: 0,
                replicas: 3,
                request_token: String::new(),
                ..Default::default()
            };
            AdminServiceClient::new(ch).init_cluster(req).await
        })
        .await
        .expect_err("zero shards");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().starts_with("shards:"), "{}", err.message());
    let err = client
        .call(|ch| async move {
            let req = InitClusterRequest {
                shards: 4,
                replicas: 1,
                admin_token: "口令".into(),
                ..Default::default()
            };
            AdminServiceClient::new(ch).init_cluster(req).await
        })
        .await
        .expect_err("a malformed admin token");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().starts_with("admin_token:"),
        "{}",
        err.message()
    );

    // Tenants: keys are the cluster's to make; a retry (the same request token) is the same
    // tenant with a fresh first key in place of the lost one; another create of the name is
    // refused.
    let create = |token: &'static str, picked: &'static str| {
        let client = &client;
        async move {
            client
                .call(|ch| async move {
                    #[allow(deprecated)]
                    let req = CreateTenantRequest {
                        name: "acme".into(),
                        api_key: picked.into(),
                        request_token: token.into(),
                    };
                    AdminServiceClient::new(ch).create_tenant(req).await
                })
                .await
        }
    };
    let err = create("r0", "sk_0123456789abcdef0123")
        .await
        .expect_err("a key the caller picked");
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert!(err.message().starts_with("api_key:"), "{}", err.message());
    let first = create("r1", "").await.expect("create tenant");
    let again = create("r1", "").await.expect("retry create tenant");
    assert_eq!(first.tenant_id, again.tenant_id);
    assert_ne!(first.api_key, again.api_key, "a fresh key for the retry");
    assert!(again.api_key.starts_with("sk_") && again.api_key.len() == 67);
    let err = create("r2", "")
        .await
        .expect_err("a second tenant named acme");
    assert_eq!(err.code(), Code::AlreadyExists, "{err:?}");
    assert!(err.message().starts_with("name:"), "{}", err.message());
    let tenants = client
        .call(|ch| async move {
            AdminServiceClient::new(ch)
                .list_tenants(ListTenantsRequest {})
                .await
        })
        .await
        .expect("list tenants")
        .tenants;
    assert_eq!(tenants.len(), 1, "{tenants:?}");
    assert_eq!(tenants[0].api_keys, 1);

    bad_orders_are_refused_by_field_and_store_nothing(&cluster, &client, &again.api_key).await;

    let after = status(&client).await.expect("status");
    assert_eq!(after.cluster_id, before.cluster_id);
    assert_eq!(after.shard_count, before.shard_count);
    assert_eq!(
        after.nodes.len(),
        before.nodes.len(),
        "a refused heartbeat added a node"
    );

    // A node whose data dir belongs to another cluster is refused and exits.
    let foreign = cluster.dir.path().join("foreign-node");
    {
        let engine =
            surge_rocks::RocksEngine::open(&foreign.join("db"), &[surge_raftstore::Family::META])
                .expect("engine");
        let id = Identity {
            kind: "node".into(),
            id: 0,
            instance_id: "foreign".into(),
            cluster_id: "another-cluster".into(),
        };
        identity::save(&engine, &id).expect("identity");
    }
    let mut node = cluster.file.nodes[0].clone();
    node.name = "foreign-node".into();
    node.data_dir = foreign.clone();
    node.log = cluster.dir.path().join("logs/foreign-node.log");
    node.command.extend([
        "--data-dir".to_string(),
        foreign.display().to_string(),
        "--grpc-listen".into(),
        "127.0.0.1:0".into(),
        "--http-listen".into(),
        "127.0.0.1:0".into(),
        "--peer-listen".into(),
        "127.0.0.1:0".into(),
    ]);
    let mut child = surgectl::dev_cluster::spawn(&node).expect("start foreign node");
    let exited = eventually(Duration::from_secs(20), "the foreign node to exit", || {
        let done = matches!(child.try_wait(), Ok(Some(_)));
        async move { done }
    })
    .await;
    let code = child.wait().expect("wait").code();
    assert_ne!(code, Some(0), "a foreign node must exit with an error");
    let log = std::fs::read_to_string(&node.log).unwrap_or_default();
    assert!(
        log.contains("belongs to cluster another-cluster"),
        "log: {log}"
    );
    println!("foreign node refused after {exited:?}");
    let after = status(&client).await.expect("status");
    assert_eq!(
        after.nodes.len(),
        before.nodes.len(),
        "the foreign node was admitted"
    );

    // Removing a healthy coordinator while another one is down would break quorum.
    let leader = after.leader_id;
    let followers: Vec<u64> = after
        .coordinators
        .iter()
        .map(|c| c.id)
        .filter(|id| *id != leader)
        .collect();
    let (dead, victim) = (followers[0], followers[1]);
    let dead_entry = cluster.coordinator(dead).clone();
    cluster.kill9(&dead_entry);
    // The leader stops counting it as healthy once it has not heard from it for two election
    // timeouts; its gauge says when.
    let leader_http = cluster.coordinator(leader).http_address.clone();
    let voters = after.coordinators.len() as f64;
    let noticed = eventually(
        Duration::from_secs(20),
        "the leader to count the killed coordinator as unhealthy",
        || async {
            let (_, metrics) = common::http_get(&leader_http, "/metrics").await;
            common::metric(&metrics, "surge_coordinator_voters_heard") == Some(voters - 1.0)
        },
    )
    .await;
    println!("the leader noticed coordinator {dead} was gone after {noticed:?}");
    let err = client
        .call(|ch| async move {
            AdminServiceClient::new(ch)
                .remove_coordinator(RemoveCoordinatorRequest { id: victim })
                .await
        })
        .await
        .expect_err("remove that breaks quorum");
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert!(err.message().contains("quorum"), "{}", err.message());
    cluster.restart(&dead_entry.name);
    let client = &client;
    eventually(
        Duration::from_secs(20),
        "all three coordinators to be members again",
        || async move {
            status(client).await.is_ok_and(|s| {
                s.coordinators.len() == 3 && s.coordinators.iter().all(|c| c.role != "unreachable")
            })
        },
    )
    .await;
}

fn bearer<T>(message: T, key: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if !key.is_empty() {
        request.metadata_mut().insert(
            "authorization",
            MetadataValue::try_from(format!("Bearer {key}")).expect("header"),
        );
    }
    request
}

/// The bad-order table: each answered with the right code and field, nothing stored.
async fn bad_orders_are_refused_by_field_and_store_nothing(
    cluster: &DevCluster,
    meta: &surge_client::MetaClient,
    acme_key: &str,
) {
    let other = meta.create_tenant("globex").await.expect("second tenant");
    let (key, other_key) = (acme_key, other.api_key.as_str());
    let nodes: Vec<String> = cluster.node_addresses();
    let client = cluster.order_client(nodes.clone(), key);
    let client = &client;
    eventually(
        Duration::from_secs(60),
        "intake to be ready",
        || async move {
            matches!(client.refresh().await, Ok(m) if m.shards.iter().all(|s| s.leader != 0))
        },
    )
    .await;
    let good = client
        .submit(sample::order("bad", 0))
        .await
        .expect("a good order");

    type Mutate = fn(&mut Order);
    let table: Vec<(&str, Mutate, &str)> = vec![
        ("no platform", |o| o.platform.clear(), "platform: required"),
        (
            "no external id",
            |o| o.external_order_id.clear(),
            "external_order_id: required",
        ),
        ("no lines", |o| o.lines.clear(), "lines:"),
        (
            "zero quantity",
            |o| o.lines[0].quantity = 0,
            "lines[0].quantity:",
        ),
        (
            "negative price",
            |o| o.lines[1].unit_price_cents = -1,
            "lines[1].unit_price_cents:",
        ),
        (
            "negative weight",
            |o| o.lines[2].weight_grams = -5,
            "lines[2].weight_grams:",
        ),
        (
            "negative total",
            |o| o.totals.as_mut().expect("totals").payable_cents = -1,
            "totals.payable_cents:",
        ),
        (
            "huge remark",
            |o| o.buyer_remark = "x".repeat(2000),
            "buyer_remark:",
        ),
        (
            "long external id",
            |o| o.external_order_id = "e".repeat(200),
            "external_order_id:",
        ),
        (
            "too many lines",
            |o| o.lines = vec![o.lines[0].clone(); 201],
            "lines:",
        ),
        (
            "unknown payment state",
            |o| o.payment_state = 99,
            "payment_state:",
        ),
    ];
    let channel = client
        .transport()
        .endpoint(&nodes[0])
        .expect("endpoint")
        .connect()
        .await
        .expect("connect");
    let mut raw = OrderServiceClient::new(channel);
    for (i, (what, mutate, field)) in table.iter().enumerate() {
        let mut order = sample::order("bad", 100 + i as u64);
        mutate(&mut order);
        let err = raw
            .submit_order(bearer(SubmitOrderRequest { order: Some(order) }, key))
            .await
            .expect_err(what);
        assert_eq!(err.code(), Code::InvalidArgument, "{what}: {err:?}");
        assert!(
            err.message().starts_with(field),
            "{what}: {}",
            err.message()
        );
    }
    // A batch: the bad order is refused by index and field, the good ones are accepted.
    let mut batch: Vec<Order> = (200..203).map(|n| sample::order("bad", n)).collect();
    batch[1].lines[0].quantity = 0;
    let results = raw
        .submit_orders(bearer(SubmitOrdersRequest { orders: batch }, key))
        .await
        .expect("batch")
        .into_inner()
        .results;
    assert_eq!(results.len(), 3);
    match &results[1].outcome {
        Some(Outcome::Rejected(r)) => {
            assert_eq!(r.code, ErrorCode::InvalidArgument as i32);
            assert!(!surge_grpc::retryable_wire(r.code), "a bad field is final");
            assert_eq!(r.field, "orders[1].lines[0].quantity", "{r:?}");
        }
        other => panic!("batch item 1: {other:?}"),
    }
    assert!(matches!(results[0].outcome, Some(Outcome::Accepted(_))));
    assert!(matches!(results[2].outcome, Some(Outcome::Accepted(_))));
    let too_many: Vec<Order> = (0..501).map(|n| sample::order("many", n)).collect();
    let err = raw
        .submit_orders(bearer(SubmitOrdersRequest { orders: too_many }, key))
        .await
        .expect_err("501 orders");
    assert!(
        matches!(
            err.code(),
            Code::InvalidArgument | Code::OutOfRange | Code::ResourceExhausted
        ),
        "{err:?}"
    );
    // Another payload under a taken external id names the existing order.
    let mut changed = sample::order("bad", 0);
    changed.buyer_remark = "a different order".into();
    let err = raw
        .submit_order(bearer(
            SubmitOrderRequest {
                order: Some(changed),
            },
            key,
        ))
        .await
        .expect_err("conflict");
    assert_eq!(err.code(), Code::AlreadyExists, "{err:?}");
    assert!(err.message().contains(&good.order_id), "{}", err.message());
    // No key, a wrong key, another tenant's order, a malformed id.
    let err = raw
        .get_order(bearer(
            GetOrderRequest {
                order_id: good.order_id.clone(),
                stale_ok: false,
            },
            "",
        ))
        .await
        .expect_err("no key");
    assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
    assert!(
        err.message().starts_with("authorization:"),
        "{}",
        err.message()
    );
    let err = raw
        .get_order(bearer(
            GetOrderRequest {
                order_id: good.order_id.clone(),
                stale_ok: false,
            },
            "sk_wrong",
        ))
        .await
        .expect_err("wrong key");
    assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
    let err = raw
        .get_order(bearer(
            GetOrderRequest {
                order_id: good.order_id.clone(),
                stale_ok: false,
            },
            other_key,
        ))
        .await
        .expect_err("another tenant's order");
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    let err = raw
        .get_order(bearer(
            GetOrderRequest {
                order_id: "nonsense".into(),
                stale_ok: false,
            },
            key,
        ))
        .await
        .expect_err("malformed id");
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert!(err.message().starts_with("order_id:"), "{}", err.message());
    let err = raw
        .list_orders(bearer(ListOrdersRequest::default(), key))
        .await
        .expect_err("no status");
    assert!(err.message().starts_with("status:"), "{}", err.message());

    // Nothing of the refused orders was stored: the tenant holds exactly the 3 accepted ones,
    // and the other tenant none.
    let listed = common::list_settled(client).await;
    let ext: Vec<String> = listed
        .iter()
        .filter_map(|o| o.order.as_ref().map(|o| o.external_order_id.clone()))
        .collect();
    assert_eq!(listed.len(), 3, "{ext:?}");
    let other = OrderClient::new(nodes, other_key)
        .expect("client")
        .with_transport(client.transport().clone());
    let theirs = common::list_settled(&other).await;
    assert!(theirs.is_empty(), "tenant isolation: {theirs:?}");
}
