//! Tier 3: real processes. Kill -9 the coordinator leader: a new leader answers `cluster
//! status`, the killed process restarts and catches up, and no committed metadata is lost.
//! The 20-kill timing run with median and worst figures is `surge-bench coordinator-failover`.

mod common;

use std::time::Duration;

use common::{eventually, local_status, status, DevCluster};
use surge_grpc::v1::node_service_client::NodeServiceClient;
use surge_grpc::v1::RegisterNodeRequest;

/// Commits a metadata change (a node registration) and returns its node id.
async fn commit_marker(client: &surge_client::MetaClient, n: usize) -> u64 {
    let req = RegisterNodeRequest {
        instance_id: format!("marker-{n}"),
        address: format!("127.0.0.1:{}", 1000 + n),
        peer_address: format!("127.0.0.1:{}", 2000 + n),
        http_address: String::new(),
        zone: "marker".into(),
        cluster_id: String::new(),
        certificate_name: String::new(),
    };
    client
        .call(|ch| {
            let req = req.clone();
            async move { NodeServiceClient::new(ch).register_node(req).await }
        })
        .await
        .expect("register marker")
        .node_id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_kill_fails_over_and_the_restarted_coordinator_catches_up() {
    let mut cluster = DevCluster::start(8);
    let client = cluster.client();
    let nodes = cluster.peer_client();
    let mut markers = Vec::new();
    for round in 0..3 {
        markers.push(commit_marker(&nodes, round).await);
        let before = status(&client).await.expect("status");
        let leader = before.leader_id;
        let entry = cluster.coordinator(leader).clone();
        cluster.kill9(&entry);
        let answered = eventually(
            Duration::from_secs(15),
            "a new leader to answer cluster status",
            || {
                let client = &client;
                async move { matches!(status(client).await, Ok(s) if s.leader_id != leader) }
            },
        )
        .await;
        let after = status(&client).await.expect("status after failover");
        println!(
            "round {round}: coordinator {leader} killed; new leader {} answered after {answered:?}",
            after.leader_id
        );
        let ids: Vec<u64> = after.nodes.iter().map(|n| n.id).collect();
        for m in &markers {
            assert!(
                ids.contains(m),
                "committed node {m} lost after failover; nodes now {ids:?}"
            );
        }
        assert_eq!(after.cluster_id, before.cluster_id);
        // The recorded membership; the leader fields are hints a new leader learns anew.
        let table =
            |s: &surge_grpc::v1::ClusterStatusResponse| -> Vec<(u32, u64, Vec<u64>, Vec<u64>)> {
                s.shards
                    .iter()
                    .map(|sh| (sh.id, sh.epoch, sh.replicas.clone(), sh.learners.clone()))
                    .collect()
            };
        assert_eq!(
            table(&after),
            table(&before),
            "shard table changed across failover"
        );

        cluster.restart(&entry.name);
        let target = after
            .coordinators
            .iter()
            .map(|c| c.commit_index)
            .max()
            .unwrap_or(0);
        let address = entry.peer_address.clone();
        let transport = cluster.transport();
        eventually(
            Duration::from_secs(20),
            "the restarted coordinator to catch up",
            || {
                let address = address.clone();
                let transport = transport.clone();
                async move {
                    local_status(&transport, &address)
                        .await
                        .is_some_and(|s| s.applied_index >= target)
                }
            },
        )
        .await;
    }
    let last = status(&client).await.expect("final status");
    assert_eq!(
        last.coordinators
            .iter()
            .filter(|c| c.role == "unreachable")
            .count(),
        0,
        "{:?}",
        last.coordinators
    );
}
