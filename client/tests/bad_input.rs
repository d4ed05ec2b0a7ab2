//! Tier 3: bad input against a real cluster gets a clear error and changes nothing.

mod common;

use std::time::Duration;

use common::{eventually, status, DevCluster};
use surge_proto::v1::admin_service_client::AdminServiceClient;
use surge_proto::v1::node_service_client::NodeServiceClient;
use surge_proto::v1::{
    CreateTenantRequest, HeartbeatRequest, InitClusterRequest, ListTenantsRequest,
    RemoveCoordinatorRequest,
};
use surge_raftstore::identity::{self, Identity};
use tonic::Code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_name_the_problem_and_change_nothing() {
    let mut cluster = DevCluster::start(1, 8);
    let client = cluster.client();
    let before = status(&client).await.expect("status");

    // A second init.
    let err = client
        .call(|ch| async move {
            let req = InitClusterRequest {
                shards: 4,
                replicas: 1,
                request_token: "another".into(),
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

    // A heartbeat from a node id nobody registered.
    let err = client
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
            };
            AdminServiceClient::new(ch).init_cluster(req).await
        })
        .await
        .expect_err("zero shards");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().starts_with("shards:"), "{}", err.message());

    // Tenants: a retry with the same key is the same tenant; another key for the name is refused.
    let create = |api_key: &'static str| {
        let client = &client;
        async move {
            client
                .call(|ch| async move {
                    let req = CreateTenantRequest {
                        name: "acme".into(),
                        api_key: api_key.into(),
                    };
                    AdminServiceClient::new(ch).create_tenant(req).await
                })
                .await
        }
    };
    let first = create("sk_0123456789abcdef0123")
        .await
        .expect("create tenant");
    let again = create("sk_0123456789abcdef0123")
        .await
        .expect("retry create tenant");
    assert_eq!(first.tenant_id, again.tenant_id);
    let err = create("sk_another-key-entirely")
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
        let engine = surge_raftstore::RocksEngine::open(&foreign.join("db")).expect("engine");
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
    let port = common::base_port(1) + 250;
    node.command.extend([
        "--data-dir".to_string(),
        foreign.display().to_string(),
        "--grpc-listen".into(),
        format!("127.0.0.1:{port}"),
        "--http-listen".into(),
        format!("127.0.0.1:{}", port + 1),
    ]);
    let mut child = surge_client::dev_cluster::spawn(&node).expect("start foreign node");
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
    // The leader notices within an election timeout (check-quorum marks the peer inactive).
    tokio::time::sleep(Duration::from_secs(3)).await;
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
