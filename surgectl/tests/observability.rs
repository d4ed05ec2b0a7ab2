//! Tier 3: every process serves /metrics, /healthz and /readyz over HTTP, and grpc.health.v1
//! plus server reflection on its gRPC port.

mod common;

use std::time::Duration;

use common::DevCluster;
use surge_grpc::tls::Transport;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
use tonic_reflection::pb::v1::ServerReflectionRequest;

async fn channel(transport: &Transport, address: &str) -> tonic::transport::Channel {
    transport
        .endpoint(address)
        .expect("uri")
        .connect()
        .await
        .expect("connect")
}

async fn services(transport: &Transport, address: &str) -> Vec<String> {
    let mut client = ServerReflectionClient::new(channel(transport, address).await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = client
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .expect("reflection")
        .into_inner();
    match responses
        .message()
        .await
        .expect("answer")
        .and_then(|r| r.message_response)
    {
        Some(MessageResponse::ListServicesResponse(list)) => {
            list.service.into_iter().map(|s| s.name).collect()
        }
        other => panic!("unexpected reflection answer {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_process_serves_metrics_health_and_reflection() {
    let cluster = DevCluster::start(4);
    // As a merchant's client calls: the cluster CA, no certificate of its own.
    let tls = cluster.client_transport();
    for p in cluster.file.coordinators.iter().chain(&cluster.file.nodes) {
        assert_eq!(
            common::http_get(&p.http_address, "/healthz").await.0,
            200,
            "{} /healthz",
            p.name
        );
        assert_eq!(
            common::http_get(&p.http_address, "/readyz").await.0,
            200,
            "{} /readyz",
            p.name
        );
        let mut health = HealthClient::new(channel(&tls, &p.grpc_address).await);
        let status = health
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await
            .expect("health");
        assert_eq!(
            status.into_inner().status(),
            ServingStatus::Serving,
            "{}",
            p.name
        );
        let names = services(&tls, &p.grpc_address).await;
        assert!(
            names.iter().any(|n| n == "grpc.health.v1.Health"),
            "{}: {names:?}",
            p.name
        );
    }
    // The leader has proposed (init, registrations, placement), so every family has samples.
    let leader = common::status(&cluster.client())
        .await
        .expect("status")
        .leader_id;
    let coordinator = cluster.coordinator(leader);
    let names = services(&tls, &coordinator.grpc_address).await;
    assert!(
        names.iter().any(|n| n == "surge.v1.AdminService"),
        "{names:?}"
    );
    let (code, metrics) = common::http_get(&coordinator.http_address, "/metrics").await;
    assert_eq!(code, 200);
    for family in [
        "surge_raft_role",
        "surge_raft_term",
        "surge_raft_commit_index",
        "surge_raft_applied_index",
        "surge_raft_leader_changes_total",
        "surge_raft_proposals_total",
        "surge_raft_proposal_seconds_bucket",
        "surge_raft_fsync_seconds_bucket",
        "surge_coordinator_nodes{state=\"up\"} 3",
        "surge_coordinator_voters_heard",
        // TLS is on: dev up made certificates.
        "surge_transport_insecure 0",
    ] {
        assert!(
            metrics.contains(family),
            "/metrics lacks {family}:\n{metrics}"
        );
    }
    // Once the directory settles, heartbeat answers leave it out (the node's is current).
    let node_http = cluster.file.nodes[0].http_address.clone();
    common::eventually(
        Duration::from_secs(30),
        "a heartbeat answer without the directory",
        || async {
            let (_, page) = common::http_get(&node_http, "/metrics").await;
            common::metric(
                &page,
                "surge_node_directory_answers_total{kind=\"unchanged\"}",
            )
            .is_some_and(|n| n > 0.0)
        },
    )
    .await;
    let (_, node_metrics) = common::http_get(&cluster.file.nodes[0].http_address, "/metrics").await;
    assert!(
        node_metrics.contains("surge_node_assigned_replicas")
            && node_metrics.contains("surge_transport_insecure 0"),
        "{node_metrics}"
    );
}
