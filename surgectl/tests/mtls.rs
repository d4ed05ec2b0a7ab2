//! Mutual TLS on real processes (`surgectl dev up` makes a CA and a certificate per process):
//! a peer port takes no connection without a cluster certificate; a node's certificate speaks
//! for the node it registered as and no other; a forged Raft message sent with a valid
//! certificate is refused and counted and the process keeps running; no key material ends up
//! in a data dir or log.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{eventually, http_get, metric, DevCluster};
use protobuf::Message as _;
use raft::eraftpb::{Message, MessageType};
use surge_grpc::tls::{PeerIdentity, Role, Transport};
use surge_grpc::v1::node_service_client::NodeServiceClient;
use surge_grpc::v1::raft_transport_client::RaftTransportClient;
use surge_grpc::v1::{HeartbeatRequest, ListShardsRequest, RaftBatch, RaftEnvelope, ShardDetail};
use tonic::Code;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

/// A health check at `address` over `transport`: Ok once a connection and a call went through.
async fn health(transport: &Transport, address: &str) -> Result<(), tonic::Status> {
    let channel = transport
        .endpoint(address)
        .map_err(|e| tonic::Status::internal(e.to_string()))?
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(2))
        .connect()
        .await
        .map_err(|e| tonic::Status::unavailable(format!("connect: {e:?}")))?;
    HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .map(|_| ())
}

/// Sends one batch of `envelopes` to `address`'s RaftTransport as `from_store`.
async fn send(
    transport: &Transport,
    address: &str,
    (cluster_id, from_store, to_store): (&str, u64, u64),
    envelopes: Vec<RaftEnvelope>,
) -> Result<(), tonic::Status> {
    let channel = transport
        .endpoint(address)
        .map_err(|e| tonic::Status::internal(e.to_string()))?
        .timeout(Duration::from_secs(5))
        .connect()
        .await
        .map_err(|e| tonic::Status::unavailable(format!("connect: {e:?}")))?;
    let batch = RaftBatch {
        cluster_id: cluster_id.to_string(),
        from_store,
        to_store,
        messages: envelopes,
    };
    RaftTransportClient::new(channel)
        .raft(tokio_stream::iter(vec![batch]))
        .await
        .map(|_| ())
}

fn raft_message(kind: MessageType, from: u64, to: u64, term: u64) -> Message {
    let mut message = Message::default();
    message.set_msg_type(kind);
    message.from = from;
    message.to = to;
    message.term = term;
    message
}

fn envelope(shard: &ShardDetail, from: u64, to: u64, message: &Message) -> RaftEnvelope {
    RaftEnvelope {
        group_id: u64::from(shard.id),
        epoch: shard.epoch,
        from_peer: from,
        to_peer: to,
        message: message.write_to_bytes().expect("encode"),
        ..RaftEnvelope::default()
    }
}

async fn refused(http: &str, reason: &str) -> f64 {
    let (_, page) = http_get(http, "/metrics").await;
    metric(
        &page,
        &format!("surge_raft_refused_messages_total{{reason=\"{reason}\"}}"),
    )
    .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_ports_take_only_cluster_certificates_speaking_for_themselves() {
    let cluster = DevCluster::start(4);
    let meta = cluster.client();
    let status = common::status(&meta).await.expect("status");
    let ids: HashMap<String, u64> = status
        .nodes
        .iter()
        .map(|n| (n.address.clone(), n.id))
        .collect();
    let entry = |n: usize| &cluster.file.nodes[n];
    let id = |n: usize| ids[&entry(n).grpc_address];
    let (target, sender, other) = (entry(1), 2, 0);
    let peer = target.peer_address.as_str();

    // Every process reports TLS, and `cluster status` shows it.
    assert!(
        status.coordinators.iter().all(|c| !c.insecure),
        "{status:?}"
    );
    assert!(
        status
            .nodes
            .iter()
            .all(|n| !n.insecure && n.certificate_name.starts_with("node-")),
        "{:?}",
        status.nodes
    );

    // No connection without a certificate from the cluster CA; one with it goes through.
    let node_tls =
        |n: usize| cluster.transport_as(&PeerIdentity::new(Role::Node, format!("node-{}", n + 1)));
    health(&node_tls(sender), peer)
        .await
        .expect("a node certificate");
    health(&Transport::Plaintext, peer)
        .await
        .expect_err("plaintext on a TLS peer port");
    health(&cluster.client_transport(), peer)
        .await
        .expect_err("TLS without a client certificate on a peer port");
    let foreign = tempfile::tempdir().expect("temp dir");
    // Made as an operator makes them: `surgectl cert init`, then `cert issue` for one more.
    for args in [
        vec![
            "cert",
            "init",
            "--coordinator-count",
            "0",
            "--node-count",
            "2",
        ],
        vec![
            "cert",
            "issue",
            "--node",
            "node-3",
            "--host",
            "node3.example",
        ],
    ] {
        let out = cluster
            .surgectl()
            .args(&args)
            .arg("--dir")
            .arg(foreign.path())
            .output()
            .expect("surgectl cert");
        assert!(out.status.success(), "{args:?}: {out:?}");
    }
    let (cert, key) =
        surgectl::certs::paths(foreign.path(), &PeerIdentity::new(Role::Node, "node-3"));
    let foreign_cert = surge_grpc::tls::ClusterTls::load(
        &cluster
            .file
            .certs
            .as_ref()
            .expect("certs")
            .join(surgectl::certs::CA_CERT),
        Some((&cert, &key)),
    )
    .expect("a node-3 certificate of another CA");
    health(&Transport::tls(foreign_cert), peer)
        .await
        .expect_err("a certificate another CA signed");

    // A node certificate cannot heartbeat for another node (which would rewrite its
    // addresses and draw its forwarded calls), nor can an operator's call NodeService.
    let err = cluster
        .peer_client()
        .call(|ch| async move {
            let req = HeartbeatRequest {
                node_id: id(other),
                cluster_id: String::new(),
                ..HeartbeatRequest::default()
            };
            NodeServiceClient::new(ch).heartbeat(req).await
        })
        .await
        .expect_err("node-probe's certificate heartbeating as node 1");
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    assert!(
        err.message().contains("bound to certificate"),
        "{}",
        err.message()
    );
    let operator = surge_client::MetaClient::new(cluster.file.coordinator_peer_addresses())
        .expect("client")
        .with_transport(cluster.transport());
    let err = operator
        .call(|ch| async move {
            NodeServiceClient::new(ch)
                .heartbeat(HeartbeatRequest::default())
                .await
        })
        .await
        .expect_err("an operator certificate on NodeService");
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");

    // An operator certificate may read (shard verify) but not speak Raft.
    let err = send(
        &cluster.transport(),
        peer,
        (&status.cluster_id, id(sender), id(1)),
        Vec::new(),
    )
    .await
    .expect_err("an operator certificate on RaftTransport");
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");

    // Node 3's certificate cannot send as node 1.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let shard = loop {
        let shards = common::admin(&meta, ListShardsRequest {}, |mut c, r| async move {
            c.list_shards(r).await
        })
        .await
        .map(|r| r.shards)
        .unwrap_or_default();
        // The highest term, so a term below it is stale at every replica.
        let found = shards
            .into_iter()
            .filter(|s| {
                let on = |node: u64| s.replicas.iter().any(|r| r.node_id == node);
                s.leader != 0 && on(id(1)) && on(id(sender))
            })
            .max_by_key(|s| s.term);
        if let Some(shard) = found {
            break shard;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no led shard on both nodes"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let before = refused(&target.http_address, "wrong_sender").await;
    let heartbeat = raft_message(MessageType::MsgHeartbeat, id(other), id(1), shard.term);
    let err = send(
        &node_tls(sender),
        peer,
        (&status.cluster_id, id(other), id(1)),
        vec![envelope(&shard, id(other), id(1), &heartbeat)],
    )
    .await
    .expect_err("node 3's certificate sending as node 1");
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    assert!(refused(&target.http_address, "wrong_sender").await > before);
    // Nor can it slip node 1's messages into a batch of its own.
    let before = refused(&target.http_address, "wrong_sender").await;
    send(
        &node_tls(sender),
        peer,
        (&status.cluster_id, id(sender), id(1)),
        vec![envelope(&shard, id(other), id(1), &heartbeat)],
    )
    .await
    .expect("a batch of node 3's own (its foreign message dropped)");
    assert!(refused(&target.http_address, "wrong_sender").await > before);

    // A forged heartbeat with a valid certificate, speaking for itself: a commit index past
    // the follower's log (raft-rs would stop the process) and a stale term.
    let before = refused(&target.http_address, "impossible_commit").await;
    let mut forged = raft_message(MessageType::MsgHeartbeat, id(sender), id(1), shard.term);
    forged.commit = 1 << 40;
    let stale_term = shard.term.saturating_sub(1).max(1);
    let stale = raft_message(MessageType::MsgAppend, id(sender), id(1), stale_term);
    let stale_before = refused(&target.http_address, "stale_term").await;
    send(
        &node_tls(sender),
        peer,
        (&status.cluster_id, id(sender), id(1)),
        vec![
            envelope(&shard, id(sender), id(1), &forged),
            envelope(&shard, id(sender), id(1), &stale),
        ],
    )
    .await
    .expect("the batch is taken; its messages judged one by one");
    eventually(
        Duration::from_secs(10),
        "the forged heartbeat counted",
        || async { refused(&target.http_address, "impossible_commit").await > before },
    )
    .await;
    if shard.term > 1 {
        eventually(
            Duration::from_secs(10),
            "the stale append counted",
            || async { refused(&target.http_address, "stale_term").await > stale_before },
        )
        .await;
    }
    assert!(
        !common::exited(target.pid),
        "the node stopped on a forged message"
    );
    assert_eq!(http_get(&target.http_address, "/healthz").await.0, 200);
    health(&node_tls(sender), peer)
        .await
        .expect("the node still serves its peer port");

    // A tenant's API key, used for an order, appears nowhere either (only its hash is kept).
    let api_key = common::tenant_with_rules(&meta, "tls-shop", &common::example_rules()).await;
    let client = cluster.order_client(cluster.node_addresses(), &api_key);
    common::wait_for_intake(&client).await;
    let order = surge_client::sample::order("tls", 1);
    client.submit(order).await.expect("an order over TLS");

    // Certificates' keys stay in the certificate directory: none in a data dir or log.
    let certs = cluster.file.certs.clone().expect("certs");
    let mut keys = Vec::new();
    for file in std::fs::read_dir(&certs).expect("certs dir") {
        let path = file.expect("entry").path();
        if path.extension().is_some_and(|e| e == "key") {
            let text = std::fs::read_to_string(&path).expect("key");
            let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
            assert!(body.len() > 40, "{}", path.display());
            keys.push(body[..40].to_string());
        }
    }
    keys.push(api_key.clone());
    common::assert_nowhere_in_clear(&cluster, &keys);
}
