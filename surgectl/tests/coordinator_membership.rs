//! Tier 3: `coordinator add` brings a fourth coordinator in through a learner and a joint
//! configuration (it catches up by snapshot, as it has no log below the bootstrap index), and
//! `coordinator remove` takes it out again, also through a joint configuration.

mod common;

use std::time::Duration;

use common::{eventually, local_status, status, DevCluster};
use surge_grpc::tls::PeerIdentity;
use surge_grpc::v1::admin_service_client::AdminServiceClient;
use surge_grpc::v1::{AddCoordinatorRequest, RemoveCoordinatorRequest};
use surgectl::held_listeners::HeldListeners;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinator_is_added_and_removed_through_joint_consensus() {
    let mut cluster = DevCluster::start(4);
    // Its ports, chosen by the OS and held until the process takes them over.
    let listeners = HeldListeners::bind_loopback().expect("listeners");
    let grpc = listeners.grpc_address().expect("address");
    let http = listeners.http_address().expect("address");
    let peer = listeners.peer_address().expect("address");
    let mut config = format!(
        "id = 4\ndata_dir = {:?}\ngrpc_listen = \"{grpc}\"\npeer_listen = \"{peer}\"\nhttp_listen = \"{http}\"\njoin = true\n",
        cluster.dir.path().join("coordinator-4")
    );
    for c in &cluster.file.coordinators {
        config.push_str(&format!(
            "\n[[initial_peers]]\nid = {}\naddress = \"{}\"\npeer_address = \"{}\"\n",
            c.id, c.grpc_address, c.peer_address
        ));
    }
    config.push_str(&cluster.tls_table(&PeerIdentity::coordinator(4)));
    let config_path = cluster.dir.path().join("coordinator-4.toml");
    std::fs::write(&config_path, config).expect("config");
    let mut entry = cluster.file.coordinators[0].clone();
    entry.name = "coordinator-4".into();
    entry.id = 4;
    entry.grpc_address = grpc.clone();
    entry.http_address = http.clone();
    entry.peer_address = peer.clone();
    entry.log = cluster.dir.path().join("logs/coordinator-4.log");
    entry.command[2] = config_path.display().to_string();
    cluster.file.coordinators.push(entry);
    cluster.start_process("coordinator-4", Some(listeners));

    let client = cluster.client().with_call_timeout(Duration::from_secs(60));
    let before = status(&client).await.expect("status");
    let added = client
        .call(|ch| {
            let req = AddCoordinatorRequest {
                id: 4,
                address: grpc.clone(),
                http_address: http.clone(),
                peer_address: peer.clone(),
            };
            async move { AdminServiceClient::new(ch).add_coordinator(req).await }
        })
        .await
        .expect("add");
    assert_eq!(added.voters, vec![1, 2, 3, 4]);
    assert!(added.learners.is_empty());
    let target = status(&client)
        .await
        .expect("status")
        .coordinators
        .iter()
        .map(|c| c.commit_index)
        .max()
        .unwrap_or(0);
    let address = peer.clone();
    let transport = cluster.transport();
    eventually(
        Duration::from_secs(20),
        "coordinator 4 to apply the whole log",
        || {
            let address = address.clone();
            let transport = transport.clone();
            async move {
                local_status(&transport, &address)
                    .await
                    .is_some_and(|s| s.voter && s.applied_index >= target)
            }
        },
    )
    .await;
    let with_four = status(&client).await.expect("status");
    assert_eq!(with_four.coordinators.len(), 4);
    assert_eq!(with_four.cluster_id, before.cluster_id);

    let removed = client
        .call(|ch| async move {
            AdminServiceClient::new(ch)
                .remove_coordinator(RemoveCoordinatorRequest { id: 4 })
                .await
        })
        .await
        .expect("remove");
    assert_eq!(removed.voters, vec![1, 2, 3]);
    let after = status(&client).await.expect("status");
    assert_eq!(
        after.coordinators.iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
}
