//! surgectl pointed at addresses where nothing listens: it says so within a few seconds,
//! names every address and its cause, and says how to start or find a cluster.

use std::net::TcpListener;
use std::process::Command;
use std::time::{Duration, Instant};

/// Three loopback addresses nobody listens on (bound for a moment by this test, then freed).
fn silent_addresses() -> Vec<String> {
    let listeners: Vec<TcpListener> = (0..3)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().expect("address").to_string())
        .collect()
}

#[test]
fn surgectl_without_a_cluster_answers_soon_and_says_what_to_do() {
    let addresses = silent_addresses();
    for args in [
        vec!["cluster", "status"],
        vec!["tenant", "create", "杭州小店"],
    ] {
        let started = Instant::now();
        let out = Command::new(env!("CARGO_BIN_EXE_surgectl"))
            // Nothing answers there, whatever the transport: plaintext needs no CA.
            .arg("--insecure")
            .arg("--coordinators")
            .arg(addresses.join(","))
            .args(&args)
            .env_remove("SURGE_COORDINATORS")
            .output()
            .expect("run surgectl");
        let took = started.elapsed();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?} printed {:?}", out.stdout);
        // The default retry deadline is 15 s; with nothing listening it stops after about 3.
        assert!(
            took < Duration::from_secs(8),
            "{args:?} took {took:?} to give up: {stderr}"
        );
        let first = stderr.lines().next().unwrap_or_default();
        let command = args[..2].join(" ");
        assert!(
            first.starts_with(&format!("error: {command}: no coordinators answered in ")),
            "{first}"
        );
        for a in &addresses {
            assert!(
                first.contains(&format!("{a} (")) && first.contains("refused"),
                "{a} and its cause missing from {first}"
            );
        }
        assert!(stderr.contains("`surgectl dev up`"), "{stderr}");
        assert!(stderr.contains("--coordinators"), "{stderr}");
        assert!(stderr.contains("SURGE_COORDINATORS"), "{stderr}");
        println!("{args:?}: {took:?}\n{stderr}");
    }
}
