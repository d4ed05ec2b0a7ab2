//! The coordinator failover workload.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use nix::sys::signal::Signal;
use surge_client::{MetaClient, RetryPolicy};
use surge_grpc::tls::Transport;
use surge_grpc::v1::coordinator_peer_service_client::CoordinatorPeerServiceClient;
use surge_grpc::v1::{ClusterStatusResponse, LocalStatusRequest};
use surgectl::dev_cluster::{self, ClusterFile};

use crate::stats::summarize;

/// A cluster this command started and stops again.
pub(crate) struct OwnCluster {
    surgectl: Child,
    _dir: tempfile::TempDir,
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        let _ = dev_cluster::signal(self.surgectl.id(), Signal::SIGTERM);
        let _ = self.surgectl.wait();
    }
}

pub(crate) fn start_cluster(base_port: u16, shards: u32) -> anyhow::Result<(PathBuf, OwnCluster)> {
    start_cluster_with(base_port, shards, &[])
}

/// [`start_cluster`], with more `dev up` arguments.
pub(crate) fn start_cluster_with(
    base_port: u16,
    shards: u32,
    extra: &[String],
) -> anyhow::Result<(PathBuf, OwnCluster)> {
    let temp = tempfile::Builder::new().prefix("surge-bench-").tempdir()?;
    let dir = temp.path().to_path_buf();
    let surgectl = std::env::current_exe()?.with_file_name("surgectl");
    let child = Command::new(&surgectl)
        .args([
            "dev",
            "up",
            "--shards",
            &shards.to_string(),
            "--base-port",
            &base_port.to_string(),
            "--dir",
        ])
        .arg(&dir)
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", surgectl.display()))?;
    let own = OwnCluster {
        surgectl: child,
        _dir: temp,
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    while ClusterFile::load(&dir).is_err() {
        if Instant::now() > deadline {
            bail!(
                "the dev cluster did not come up; see {}/logs",
                dir.display()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok((dir, own))
}

async fn status(client: &MetaClient) -> Result<ClusterStatusResponse, tonic::Status> {
    client.cluster_status().await
}

async fn applied_index(transport: &Transport, address: &str) -> Option<u64> {
    let ch = transport
        .endpoint(address)
        .ok()?
        .timeout(Duration::from_millis(500))
        .connect()
        .await
        .ok()?;
    let s = CoordinatorPeerServiceClient::new(ch)
        .local_status(LocalStatusRequest {})
        .await
        .ok()?;
    Some(s.into_inner().applied_index)
}

pub(crate) async fn coordinator(
    cluster_dir: Option<PathBuf>,
    kills: u32,
    base_port: u16,
) -> anyhow::Result<()> {
    let (dir, own) = match cluster_dir {
        Some(d) => (d, None),
        None => {
            let (d, own) = start_cluster(base_port, 8)?;
            (d, Some(own))
        }
    };
    let mut file = ClusterFile::load(&dir).context("reading cluster.json")?;
    // Short per-call timeouts: a call stuck on the dead leader must not hide the new one.
    let client = file
        .meta_client()?
        .with_call_timeout(Duration::from_millis(500))
        .with_policy(RetryPolicy {
            first_backoff: Duration::from_millis(20),
            max_backoff: Duration::from_millis(100),
            max_attempts: 1000,
            deadline: Duration::from_secs(30),
            unreachable_after: None,
        });
    let mut restarted: Vec<Child> = Vec::new();
    let mut windows = Vec::new();
    println!(
        "{:>4}  {:>6}  {:>10}  {:>10}",
        "kill", "leader", "new leader", "window ms"
    );
    for round in 1..=kills {
        let leader = status(&client)
            .await
            .map_err(|s| anyhow::anyhow!(s.message().to_string()))?
            .leader_id;
        let entry = file
            .coordinators
            .iter()
            .find(|c| c.id == leader)
            .context("leader not in cluster.json")?
            .clone();
        dev_cluster::signal(entry.pid, Signal::SIGKILL)?;
        let killed = Instant::now();
        let new_leader = loop {
            match status(&client).await {
                Ok(s) if s.leader_id != leader && s.leader_id != 0 => break s.leader_id,
                _ if killed.elapsed() > Duration::from_secs(30) => {
                    bail!("no new leader 30 s after kill {round}")
                }
                _ => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        };
        let window = killed.elapsed();
        windows.push(window);
        println!(
            "{round:>4}  {leader:>6}  {new_leader:>10}  {:>10.1}",
            window.as_secs_f64() * 1e3
        );
        let target = status(&client)
            .await
            .map(|s| {
                s.coordinators
                    .iter()
                    .map(|c| c.commit_index)
                    .max()
                    .unwrap_or(0)
            })
            .unwrap_or(0);
        let child = dev_cluster::spawn(&entry)?;
        if let Some(e) = file.coordinators.iter_mut().find(|c| c.id == leader) {
            e.pid = child.id();
        }
        restarted.push(child);
        let caught_up = Instant::now();
        // LocalStatus is on the peer port (CoordinatorPeerService).
        while applied_index(client.transport(), &entry.peer_address)
            .await
            .is_none_or(|a| a < target)
        {
            if caught_up.elapsed() > Duration::from_secs(30) {
                bail!("coordinator {leader} did not catch up after restart {round}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let summary = summarize(&windows);
    println!();
    println!(
        "coordinator failover over {} kills: median {:.0} ms, p90 {:.0} ms, worst {:.0} ms",
        summary.count, summary.p50_ms, summary.p90_ms, summary.max_ms
    );
    println!(
        "{}",
        serde_json::json!({ "workload": "coordinator-failover", "windows": summary })
    );
    // Processes restarted in a cluster this command started die with it; in an operator's
    // cluster they keep running in place of the ones killed.
    if own.is_some() {
        for mut child in restarted {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
    drop(own);
    Ok(())
}
