//! The coordinator binary refuses to start on a malformed config (naming the key) and on a
//! data dir that belongs to another coordinator or cluster — and leaves that data dir intact.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use surge_grpc::v1::admin_service_client::AdminServiceClient;
use surge_grpc::v1::InitClusterRequest;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port")
}

fn write_config(
    dir: &Path,
    name: &str,
    id: u64,
    data_dir: &Path,
    extra: &str,
    (grpc, peer): (u16, u16),
) -> std::path::PathBuf {
    let path = dir.join(name);
    let text = format!(
        "id = {id}\ndata_dir = {data_dir:?}\ngrpc_listen = \"127.0.0.1:{grpc}\"\npeer_listen = \"127.0.0.1:{peer}\"\nhttp_listen = \"127.0.0.1:{}\"\ninsecure = true\n{extra}\n[[initial_peers]]\nid = {id}\naddress = \"127.0.0.1:{grpc}\"\npeer_address = \"127.0.0.1:{peer}\"\n",
        free_port()
    );
    std::fs::write(&path, text).expect("config");
    path
}

fn run_to_exit(config: &Path) -> Output {
    run_to_exit_with(config, &[])
}

fn run_to_exit_with(config: &Path, args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_surge-coordinator"))
        .arg("--config")
        .arg(config)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start");
    let deadline = Instant::now() + Duration::from_secs(20);
    while matches!(child.try_wait(), Ok(None)) {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the coordinator kept running; it should have refused to start");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("output")
}

#[test]
fn a_malformed_config_is_refused_with_the_key_named() {
    let dir = tempfile::tempdir().expect("dir");
    let cases = [
        ("id = 1\ndata_dir = \"d\"\ngrpc_listen = \"127.0.0.1:1\"\nhttp_listen = \"127.0.0.1:2\"\ngrpc_lisen = \"x\"\n", "grpc_lisen"),
        ("id = 1\ndata_dir = \"d\"\ngrpc_listen = \"nowhere\"\npeer_listen = \"127.0.0.1:3\"\nhttp_listen = \"127.0.0.1:2\"\n", "grpc_listen"),
        ("id = 1\ndata_dir = \"d\"\ngrpc_listen = \"127.0.0.1:1\"\nhttp_listen = \"127.0.0.1:2\"\n", "peer_listen"),
        ("id = \"one\"\n", "id"),
    ];
    for (text, key) in cases {
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, text).expect("write");
        let out = run_to_exit(&path);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "accepted a config with a bad {key}");
        assert!(stderr.contains(key), "stderr does not name {key}: {stderr}");
    }
    assert!(
        !dir.path().join("d").exists(),
        "a refused config must not create a data dir"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_dir_of_another_coordinator_or_cluster_is_refused() {
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path().join("data");
    let (grpc, peer_port) = (free_port(), free_port());
    let config = write_config(dir.path(), "c1.toml", 1, &data, "", (grpc, peer_port));
    // Without --initialize an empty data dir is refused: only a first start founds the group.
    let out = run_to_exit(&config);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("--initialize"), "{stderr}");
    assert!(
        !data.join("db").exists(),
        "a refused start created the data dir"
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_surge-coordinator"))
        .arg("--config")
        .arg(&config)
        .arg("--initialize")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start");
    // A one-coordinator cluster elects itself; initialize it.
    let deadline = Instant::now() + Duration::from_secs(30);
    let (cluster_id, admin_token) = loop {
        assert!(
            Instant::now() < deadline,
            "single coordinator never initialized"
        );
        if let Ok(mut client) =
            AdminServiceClient::connect(format!("http://127.0.0.1:{grpc}")).await
        {
            let req = InitClusterRequest {
                shards: 2,
                replicas: 1,
                request_token: "t".into(),
                admin_token: String::new(),
            };
            if let Ok(resp) = client.init_cluster(req).await {
                let resp = resp.into_inner();
                break (resp.cluster_id, resp.admin_token);
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // A coordinator of the same group that lost its disk, started with --initialize as on
    // the first day (compose does), must not found the group again.
    let lost = dir.path().join("lost-disk");
    let ports = (free_port(), free_port());
    let peer = format!("[[initial_peers]]\nid = 1\naddress = \"127.0.0.1:{grpc}\"\npeer_address = \"127.0.0.1:{peer_port}\"\n");
    let twin = write_config(dir.path(), "c2-lost.toml", 2, &lost, &peer, ports);
    let out = run_to_exit_with(&twin, &["--initialize"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "a lost-disk coordinator founded the group again"
    );
    assert!(
        stderr.contains(&format!("coordinator 1 already runs cluster {cluster_id}"))
            && stderr.contains("coordinator remove 2"),
        "{stderr}"
    );
    assert!(
        !lost.join("db").exists(),
        "a refused start created the data dir"
    );

    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid"));
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
    let _ = child.wait();

    let ports = (free_port(), free_port());
    let as_other_id = write_config(dir.path(), "c2.toml", 2, &data, "", ports);
    let out = run_to_exit(&as_other_id);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("belongs to coordinator 1"), "{stderr}");

    let pinned = write_config(
        dir.path(),
        "c3.toml",
        1,
        &data,
        "cluster_id = \"some-other-cluster\"\n",
        (free_port(), free_port()),
    );
    let out = run_to_exit(&pinned);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains(&format!("belongs to cluster {cluster_id}")),
        "{stderr}"
    );

    // The data dir is intact: the right config still starts and keeps its cluster.
    let right = write_config(
        dir.path(),
        "c4.toml",
        1,
        &data,
        &format!("cluster_id = {cluster_id:?}\n"),
        (grpc, peer_port),
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_surge-coordinator"))
        .arg("--config")
        .arg(&right)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("restart");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(
            Instant::now() < deadline,
            "restarted coordinator never answered"
        );
        if let Ok(mut client) =
            AdminServiceClient::connect(format!("http://127.0.0.1:{grpc}")).await
        {
            let mut status = tonic::Request::new(surge_grpc::v1::ClusterStatusRequest {});
            let bearer = format!("Bearer {admin_token}").parse().expect("ascii");
            status.metadata_mut().insert("authorization", bearer);
            if let Ok(s) = client.cluster_status(status).await {
                assert_eq!(s.into_inner().cluster_id, cluster_id);
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
}
