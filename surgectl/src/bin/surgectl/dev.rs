//! `surgectl dev up`: a whole cluster on loopback, as child processes of this command; and
//! `surgectl dev add-node`: one more node for it (scale-out), recorded in its cluster.json.
//!
//! Every node of a dev cluster is its own zone (zone-a, zone-b, ...): on one machine each
//! process is its own failure domain, so replicas spread over any set of nodes.

use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use surge_client::{MetaClient, RetryPolicy};
use surge_proto::v1::{ClusterStatusResponse, NodeState};
use surgectl::dev_cluster::{self, ClusterFile, ProcessEntry};

use crate::output::{print_status, Format};

#[derive(clap::Args, Debug)]
pub(crate) struct UpArgs {
    /// Working directory: configs, data dirs, logs and cluster.json.
    #[arg(long)]
    dir: PathBuf,
    #[arg(long, default_value_t = 3)]
    coordinator_count: u64,
    #[arg(long, default_value_t = 3)]
    node_count: u64,
    #[arg(long, default_value_t = 64)]
    shards: u32,
    #[arg(long, default_value_t = 3)]
    replicas: u32,
    /// Coordinators listen on BASE.., their HTTP on BASE+100.., nodes on BASE+200.. and BASE+300..
    #[arg(long, default_value_t = 7001)]
    base_port: u16,
    /// Stop the cluster once it is up and its status printed, instead of waiting for Ctrl-C.
    #[arg(long)]
    exit_when_ready: bool,
    /// Snapshot data each node sends per second when replicas move, in MiB (the nodes'
    /// `snapshot_max_bytes_per_sec`); the node default when absent.
    #[arg(long)]
    snapshot_mib_per_sec: Option<u64>,
    /// Snapshots the scheduler lets one node send or receive at once (the coordinators'
    /// `scheduler.max_snapshots_per_node`); the coordinator default when absent.
    #[arg(long)]
    max_snapshots_per_node: Option<u32>,
}

/// Node `n`'s zone: zone-a, zone-b, ... zone-z, then zone-27, ...
fn zone_of(n: u64) -> String {
    match u8::try_from(n) {
        Ok(k @ 1..=26) => format!("zone-{}", (b'a' + k - 1) as char),
        _ => format!("zone-{n}"),
    }
}

#[derive(clap::Args, Debug)]
pub(crate) struct AddNodeArgs {
    /// The dev cluster's directory (holding cluster.json).
    #[arg(long)]
    dir: PathBuf,
    /// Its zone label (default: a zone of its own).
    #[arg(long)]
    zone: Option<String>,
}

fn port(base: u16, offset: u64) -> anyhow::Result<u16> {
    u16::try_from(u64::from(base) + offset).context("base_port: the port range runs past 65535")
}

fn coordinator_config(dir: &Path, id: u64, args: &UpArgs) -> anyhow::Result<String> {
    let mut text = format!(
        "# written by surgectl dev up\nid = {id}\ndata_dir = {:?}\ngrpc_listen = \"127.0.0.1:{}\"\nhttp_listen = \"127.0.0.1:{}\"\n",
        dir.join(format!("coordinator-{id}")),
        port(args.base_port, id - 1)?,
        port(args.base_port, 100 + id - 1)?,
    );
    for peer in 1..=args.coordinator_count {
        text.push_str(&format!(
            "\n[[initial_peers]]\nid = {peer}\naddress = \"127.0.0.1:{}\"\nhttp_address = \"127.0.0.1:{}\"\n",
            port(args.base_port, peer - 1)?,
            port(args.base_port, 100 + peer - 1)?,
        ));
    }
    if let Some(n) = args.max_snapshots_per_node {
        text.push_str(&format!("\n[scheduler]\nmax_snapshots_per_node = {n}\n"));
    }
    Ok(text)
}

fn node_config(
    dir: &Path,
    n: u64,
    base_port: u16,
    zone: &str,
    coordinators: &[String],
    snapshot_rate: Option<u64>,
) -> anyhow::Result<String> {
    let list: Vec<String> = coordinators.iter().map(|c| format!("{c:?}")).collect();
    let mut text = format!(
        "# written by surgectl dev\ndata_dir = {:?}\ngrpc_listen = \"127.0.0.1:{}\"\nhttp_listen = \"127.0.0.1:{}\"\nzone = \"{zone}\"\ncoordinators = [{}]\n",
        dir.join(format!("node-{n}")),
        port(base_port, 200 + n - 1)?,
        port(base_port, 300 + n - 1)?,
        list.join(", "),
    );
    if let Some(rate) = snapshot_rate {
        text.push_str(&format!("snapshot_max_bytes_per_sec = {rate}\n"));
    }
    Ok(text)
}

/// The node entry `n` of a dev cluster at `base_port`.
fn node_entry(
    dir: &Path,
    n: u64,
    base_port: u16,
    zone: &str,
    coordinators: &[String],
    snapshot_rate: Option<u64>,
) -> anyhow::Result<ProcessEntry> {
    if n > 99 {
        bail!("a dev cluster has at most 99 nodes");
    }
    let grpc = format!("127.0.0.1:{}", port(base_port, 200 + n - 1)?);
    let http = format!("127.0.0.1:{}", port(base_port, 300 + n - 1)?);
    let config = node_config(dir, n, base_port, zone, coordinators, snapshot_rate)?;
    entry(
        dir,
        "node",
        n,
        &crate::sibling_binary("surge-node")?,
        config,
        grpc,
        http,
    )
}

fn entry(
    dir: &Path,
    kind: &str,
    id: u64,
    binary: &Path,
    config: String,
    grpc: String,
    http: String,
) -> anyhow::Result<ProcessEntry> {
    let name = format!("{kind}-{id}");
    let config_path = dir.join(format!("{name}.toml"));
    std::fs::write(&config_path, config)
        .with_context(|| format!("writing {}", config_path.display()))?;
    Ok(ProcessEntry {
        name: name.clone(),
        id,
        grpc_address: grpc,
        http_address: http,
        pid: 0,
        data_dir: dir.join(&name),
        config: config_path.clone(),
        log: dir.join("logs").join(format!("{name}.log")),
        command: vec![
            binary.display().to_string(),
            "--config".into(),
            config_path.display().to_string(),
        ],
    })
}

/// Children this command owns, and pids of nodes added later; stopped (SIGTERM, then SIGKILL
/// for children) when dropped.
struct Children(Vec<(String, Child)>, Vec<u32>);

impl Children {
    fn start(&mut self, e: &mut ProcessEntry) -> anyhow::Result<()> {
        let child = dev_cluster::spawn(e).with_context(|| format!("starting {}", e.name))?;
        e.pid = child.id();
        self.0.push((e.name.clone(), child));
        Ok(())
    }

    /// Names of children that have exited.
    fn exited(&mut self) -> Vec<String> {
        self.0
            .iter_mut()
            .filter_map(|(n, c)| matches!(c.try_wait(), Ok(Some(_))).then(|| n.clone()))
            .collect()
    }

    /// Stops every child, and the nodes `dev add-node` started (recorded in cluster.json).
    fn stop(&mut self) {
        for (_, child) in &self.0 {
            let _ = dev_cluster::signal(child.id(), nix::sys::signal::Signal::SIGTERM);
        }
        for pid in &self.1 {
            let _ = dev_cluster::signal(*pid, nix::sys::signal::Signal::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        for (name, child) in &mut self.0 {
            while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(50));
            }
            if matches!(child.try_wait(), Ok(None)) {
                eprintln!("{name} did not stop in time; killing it");
                let _ = child.kill();
            }
            let _ = child.wait();
        }
        self.0.clear();
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn status(client: &MetaClient) -> Result<ClusterStatusResponse, tonic::Status> {
    client.cluster_status().await
}

/// Polls `check` on the cluster status until it holds or `within` passes.
async fn wait_for(
    client: &MetaClient,
    children: &mut Children,
    what: &str,
    within: Duration,
    check: impl Fn(&ClusterStatusResponse) -> bool,
) -> anyhow::Result<ClusterStatusResponse> {
    let deadline = Instant::now() + within;
    loop {
        let exited = children.exited();
        if !exited.is_empty() {
            bail!(
                "{} exited while waiting for {what}; see the logs",
                exited.join(", ")
            );
        }
        match status(client).await {
            Ok(s) if check(&s) => return Ok(s),
            Ok(_) | Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            Ok(_) => bail!("timed out after {}s waiting for {what}", within.as_secs()),
            Err(e) => bail!(
                "timed out after {}s waiting for {what}: {}",
                within.as_secs(),
                e.message()
            ),
        }
    }
}

/// Starts every process and initializes the cluster; answers the status once all nodes are
/// up and every shard is placed.
async fn start_all(
    args: &UpArgs,
    file: &mut ClusterFile,
    children: &mut Children,
) -> anyhow::Result<ClusterStatusResponse> {
    for c in &mut file.coordinators {
        // A new data dir founds the group; the recorded command (used for restarts) never
        // does, so a restart on a wiped data dir is refused rather than re-founding.
        if c.data_dir.exists() {
            children.start(c)?;
        } else {
            let mut first = c.clone();
            first.command.push("--initialize".into());
            children.start(&mut first)?;
            c.pid = first.pid;
        }
    }
    let client = MetaClient::new(file.coordinator_addresses())
        .map_err(|s| anyhow::anyhow!(s.message().to_string()))?
        .with_policy(RetryPolicy {
            deadline: Duration::from_secs(3),
            ..RetryPolicy::default()
        });
    let first = wait_for(
        &client,
        children,
        "a coordinator leader",
        Duration::from_secs(60),
        |_| true,
    )
    .await?;
    if !first.initialized {
        client
            .init_cluster(args.shards, args.replicas)
            .await
            .map_err(|s| anyhow::anyhow!("cluster init: {}", s.message()))?;
    }
    for n in &mut file.nodes {
        children.start(n)?;
    }
    let want_nodes = args.node_count as usize;
    wait_for(
        &client,
        children,
        "nodes up and shards placed",
        Duration::from_secs(60),
        |s| {
            let up = s
                .nodes
                .iter()
                .filter(|n| n.state == NodeState::Up as i32)
                .count();
            s.initialized && up >= want_nodes && s.shards.iter().all(|sh| !sh.replicas.is_empty())
        },
    )
    .await
}

async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

pub(crate) async fn up(args: UpArgs, format: Format) -> anyhow::Result<()> {
    if args.coordinator_count == 0 || args.node_count == 0 {
        bail!("coordinator_count and node_count must be at least 1");
    }
    if u64::from(args.replicas) > args.node_count {
        bail!(
            "replicas: {} replicas need at least as many nodes (node_count is {})",
            args.replicas,
            args.node_count
        );
    }
    let coordinator_bin = crate::sibling_binary("surge-coordinator")?;
    std::fs::create_dir_all(args.dir.join("logs"))
        .with_context(|| format!("creating {}", args.dir.display()))?;
    let dir = args.dir.canonicalize()?;
    let mut file = ClusterFile::default();
    for id in 1..=args.coordinator_count {
        let grpc = format!("127.0.0.1:{}", port(args.base_port, id - 1)?);
        let http = format!("127.0.0.1:{}", port(args.base_port, 100 + id - 1)?);
        let config = coordinator_config(&dir, id, &args)?;
        file.coordinators.push(entry(
            &dir,
            "coordinator",
            id,
            &coordinator_bin,
            config,
            grpc,
            http,
        )?);
    }
    let coordinator_addrs = file.coordinator_addresses();
    let snapshot_rate = args.snapshot_mib_per_sec.map(|m| m << 20);
    for n in 1..=args.node_count {
        file.nodes.push(node_entry(
            &dir,
            n,
            args.base_port,
            &zone_of(n),
            &coordinator_addrs,
            snapshot_rate,
        )?);
    }
    file.base_port = args.base_port;
    file.snapshot_bytes_per_sec = snapshot_rate;

    let mut children = Children(Vec::new(), Vec::new());
    // Ctrl-C or SIGTERM while starting still stops every child (they are dropped with
    // `children`), so no process is left holding its ports.
    let stop = shutdown_signal();
    tokio::pin!(stop);
    let ready = tokio::select! {
        ready = start_all(&args, &mut file, &mut children) => ready?,
        _ = &mut stop => bail!("interrupted while starting; stopping every process"),
    };
    file.cluster_id = ready.cluster_id.clone();
    file.save(&dir)?;
    print_status(format, &ready);
    if format == Format::Table {
        println!();
        println!("cluster file: {}", ClusterFile::path(&dir).display());
        println!("logs:         {}", dir.join("logs").display());
    }
    if args.exit_when_ready {
        children.stop();
        return Ok(());
    }
    if format == Format::Table {
        println!("running; Ctrl-C stops every process");
    }
    stop.await;
    eprintln!("stopping the dev cluster");
    // Nodes `dev add-node` started are not our children: stop them by pid.
    if let Ok(now) = ClusterFile::load(&dir) {
        let ours: Vec<String> = children.0.iter().map(|(n, _)| n.clone()).collect();
        children.1 = now
            .nodes
            .iter()
            .filter(|n| !ours.contains(&n.name) && n.pid != 0)
            .map(|n| n.pid)
            .collect();
    }
    children.stop();
    Ok(())
}

/// Starts one more node for the dev cluster in `args.dir` and waits until it is up.
pub(crate) async fn add_node(args: AddNodeArgs, format: Format) -> anyhow::Result<()> {
    let dir = args
        .dir
        .canonicalize()
        .with_context(|| format!("dir: {}", args.dir.display()))?;
    let mut file = ClusterFile::load(&dir).with_context(|| {
        format!(
            "dir: no dev cluster in {} (run `surgectl dev up` first)",
            dir.display()
        )
    })?;
    let base = file.base_port;
    if base == 0 {
        bail!(
            "{}: cluster.json records no base port; restart it with this surgectl",
            dir.display()
        );
    }
    let n = file.nodes.iter().map(|e| e.id).max().unwrap_or(0) + 1;
    let zone = args.zone.unwrap_or_else(|| zone_of(n));
    let mut e = node_entry(
        &dir,
        n,
        base,
        &zone,
        &file.coordinator_addresses(),
        file.snapshot_bytes_per_sec,
    )?;
    let child = dev_cluster::spawn(&e).with_context(|| format!("starting {}", e.name))?;
    e.pid = child.id();
    // The node outlives this command: `dev up` stops it by pid when it stops the cluster.
    drop(child);
    let address = e.grpc_address.clone();
    file.nodes.push(e);
    file.save(&dir)?;
    let client = MetaClient::new(file.coordinator_addresses())
        .map_err(|s| anyhow::anyhow!(s.message().to_string()))?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(s) = status(&client).await {
            if let Some(node) = s
                .nodes
                .iter()
                .find(|x| x.address == address && x.state == NodeState::Up as i32)
            {
                crate::output::print_nodes(format, std::slice::from_ref(node));
                if format == Format::Table {
                    println!("node-{n} joined in zone {zone}; the scheduler now moves replicas and leaders onto it (`surgectl cluster status --wait-balanced` follows it)");
                }
                return Ok(());
            }
        }
        if Instant::now() >= deadline {
            bail!(
                "node-{n} did not come up within 60 s; see {}",
                dir.join("logs").display()
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
