//! The node binary refuses a malformed config (naming the key) and a data dir that belongs to
//! a coordinator, without touching that data dir.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use surge_server::identity::{self, Identity};

fn run_to_exit(args: &[&str]) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_surge-node"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start");
    let deadline = Instant::now() + Duration::from_secs(20);
    while matches!(child.try_wait(), Ok(None)) {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the node kept running; it should have refused to start");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("output")
}

#[test]
fn bad_configs_and_foreign_data_dirs_are_refused() {
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("node.toml");
    std::fs::write(&config, "data_dir = \"d\"\ngrpc_listen = \"127.0.0.1:0\"\npeer_listen = \"127.0.0.1:0\"\nhttp_listen = \"127.0.0.1:0\"\ncoordinators = []\n")
        .expect("write");
    let out = run_to_exit(&["--config", config.to_str().expect("utf8")]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("coordinators"),
        "{out:?}"
    );

    let data = dir.path().join("coordinator-data");
    let theirs = Identity {
        kind: "coordinator".into(),
        id: 1,
        ..Identity::default()
    };
    {
        let engine = surge_rocks::RocksEngine::open(&data.join("db"), &surge_node::families())
            .expect("engine");
        identity::save(&engine, &theirs).expect("identity");
    }
    std::fs::write(
        &config,
        format!(
            "data_dir = {data:?}\ngrpc_listen = \"127.0.0.1:0\"\npeer_listen = \"127.0.0.1:0\"\nhttp_listen = \"127.0.0.1:0\"\ncoordinators = [\"127.0.0.1:1\"]\ninsecure = true\n"
        ),
    )
    .expect("write");
    let out = run_to_exit(&["--config", config.to_str().expect("utf8")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("belongs to coordinator 1"), "{stderr}");
    let engine =
        surge_rocks::RocksEngine::open(&data.join("db"), &surge_node::families()).expect("reopen");
    assert_eq!(
        identity::load(&engine).expect("load"),
        Some(theirs),
        "the refused data dir was changed"
    );
}
