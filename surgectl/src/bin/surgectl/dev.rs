//! `surgectl dev up`: a whole cluster on loopback, as child processes of this command; and
//! `surgectl dev add-node`: one more node for it (scale-out), recorded in its cluster.json.
//! Their ports ([`crate::dev_ports`]), config files ([`crate::dev_configs`]) and children
//! ([`crate::dev_children`]) have files of their own.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use surge_client::{MetaClient, RetryPolicy};
use surge_grpc::tls::{PeerIdentity, Role};
use surge_proto::v1::{ClusterStatusResponse, NodeState};
use surgectl::dev_cluster::{self, ClusterFile, ProcessEntry};
use surgectl::held_listeners::HeldListeners;

use crate::dev_children::Children;
use crate::dev_configs::{coordinator_config, entry, node_config, zone_of, PeerLine};
use crate::dev_ports::Ports;
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
    /// Coordinators listen on BASE.., their HTTP on BASE+100.., nodes on BASE+200.. and
    /// BASE+300..; 0 lets the OS choose every port (DIR/cluster.json lists them).
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
    /// Run every port in plaintext (`insecure = true`), without certificates. By default dev
    /// up makes a cluster CA and a certificate per process in DIR/certs.
    #[arg(long)]
    insecure: bool,
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

/// The node entry `n` of a dev cluster, with its listeners when the OS chose its ports.
fn node_entry(
    dir: &Path,
    n: u64,
    ports: Ports,
    zone: &str,
    coordinators: &[String],
    snapshot_rate: Option<u64>,
    certs: Option<&Path>,
) -> anyhow::Result<(ProcessEntry, Option<HeldListeners>)> {
    let mut own = ports.node(n)?;
    if let Some(certs) = certs {
        ensure_certificate(certs, &PeerIdentity::new(Role::Node, format!("node-{n}")))?;
    }
    let config = node_config(dir, n, &own, zone, coordinators, snapshot_rate, certs);
    let binary = crate::sibling_binary("surge-node")?;
    let e = entry(dir, "node", n, &binary, config, &own)?;
    Ok((e, own.listeners.take()))
}

/// Issues `identity`'s certificate from the CA in `certs` unless it is there already.
fn ensure_certificate(certs: &Path, identity: &PeerIdentity) -> anyhow::Result<()> {
    surgectl::certs::ensure(certs, identity)
        .with_context(|| format!("issuing the certificate of {identity}"))
}

/// The dev cluster's CA (made on first use of `dir`) and the certificates of its
/// coordinators and operator; nodes get theirs as they are added.
fn ensure_certificates(certs: &Path, coordinators: u64) -> anyhow::Result<()> {
    if !certs.join(surgectl::certs::CA_CERT).exists() {
        surgectl::certs::init_ca(certs, "dev")
            .with_context(|| format!("making the cluster CA in {}", certs.display()))?;
    }
    for id in 1..=coordinators {
        ensure_certificate(certs, &PeerIdentity::coordinator(id))?;
    }
    ensure_certificate(certs, &surgectl::certs::surgectl_operator())
}

/// The client of a dev cluster's coordinators, over its transport, with its admin token
/// once it has one.
fn dev_meta_client(file: &ClusterFile) -> anyhow::Result<MetaClient> {
    file.meta_client()
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

/// Listeners bound for processes not started yet, by process name.
type Held = BTreeMap<String, HeldListeners>;

/// Starts every process and initializes the cluster; answers the status once all nodes are
/// up and every shard is placed.
async fn start_all(
    args: &UpArgs,
    file: &mut ClusterFile,
    held: &mut Held,
    children: &mut Children,
) -> anyhow::Result<ClusterStatusResponse> {
    for c in &mut file.coordinators {
        let listeners = held.remove(&c.name);
        // A new data dir founds the group; the recorded command (used for restarts) never
        // does, so a restart on a wiped data dir is refused rather than re-founding.
        if c.data_dir.exists() {
            children.start(c, listeners)?;
        } else {
            let mut first = c.clone();
            first.command.push("--initialize".into());
            children.start(&mut first, listeners)?;
            c.pid = first.pid;
        }
    }
    let client = dev_meta_client(file)?.with_policy(RetryPolicy {
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
    let mut client = client;
    if !first.initialized {
        let resp = client
            .init_cluster(args.shards, args.replicas)
            .await
            .map_err(|s| anyhow::anyhow!("cluster init: {}", s.message()))?;
        let path = file
            .admin_token_file
            .clone()
            .unwrap_or_else(|| args.dir.join(dev_cluster::ADMIN_TOKEN_FILE));
        // A token file of a cluster whose data dirs were wiped is stale.
        let _ = std::fs::remove_file(&path);
        dev_cluster::write_secret(&path, &resp.admin_token)
            .with_context(|| format!("writing {}", path.display()))?;
        file.admin_token_file = Some(path);
        client = dev_meta_client(file)?.with_policy(RetryPolicy {
            deadline: Duration::from_secs(3),
            ..RetryPolicy::default()
        });
    } else if file.admin_token()?.is_none() {
        bail!(
            "the cluster in {} is initialized but {} is missing: its admin token is lost (wipe \
             the directory to start afresh)",
            args.dir.display(),
            dev_cluster::ADMIN_TOKEN_FILE
        );
    }
    for n in &mut file.nodes {
        let listeners = held.remove(&n.name);
        children.start(n, listeners)?;
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
    let ports = Ports::from_base(args.base_port);
    let certs = (!args.insecure).then(|| dir.join("certs"));
    if let Some(certs) = &certs {
        ensure_certificates(certs, args.coordinator_count)?;
    }
    // Every address is known (and, when the OS chose it, bound) before anything starts.
    let mut held = Held::new();
    let mut file = ClusterFile::default();
    let mut coordinators = Vec::new();
    for id in 1..=args.coordinator_count {
        coordinators.push((id, ports.coordinator(id)?));
    }
    let peers: Vec<PeerLine> = coordinators
        .iter()
        .map(|(id, e)| PeerLine {
            id: *id,
            grpc: e.grpc.clone(),
            http: e.http.clone(),
            peer: e.peer.clone(),
        })
        .collect();
    for (id, mut own) in coordinators {
        let config = coordinator_config(
            &dir,
            id,
            &own,
            &peers,
            args.max_snapshots_per_node,
            certs.as_deref(),
        );
        let e = entry(&dir, "coordinator", id, &coordinator_bin, config, &own)?;
        if let Some(listeners) = own.listeners.take() {
            held.insert(e.name.clone(), listeners);
        }
        file.coordinators.push(e);
    }
    let coordinator_addrs = file.coordinator_peer_addresses();
    let snapshot_rate = args.snapshot_mib_per_sec.map(|m| m << 20);
    for n in 1..=args.node_count {
        let zone = zone_of(n);
        let (e, listeners) = node_entry(
            &dir,
            n,
            ports,
            &zone,
            &coordinator_addrs,
            snapshot_rate,
            certs.as_deref(),
        )?;
        if let Some(listeners) = listeners {
            held.insert(e.name.clone(), listeners);
        }
        file.nodes.push(e);
    }
    file.base_port = ports.base_port();
    file.snapshot_bytes_per_sec = snapshot_rate;
    file.certs = certs.clone();
    file.admin_token_file = Some(dir.join(dev_cluster::ADMIN_TOKEN_FILE));

    let mut children = Children::default();
    // Ctrl-C or SIGTERM while starting still stops every child (they are dropped with
    // `children`), so no process is left holding its ports.
    let stop = shutdown_signal();
    tokio::pin!(stop);
    let ready = tokio::select! {
        ready = start_all(&args, &mut file, &mut held, &mut children) => ready?,
        _ = &mut stop => bail!("interrupted while starting; stopping every process"),
    };
    file.cluster_id = ready.cluster_id.clone();
    file.save(&dir)?;
    print_status(format, &ready);
    if format == Format::Table {
        println!();
        println!("cluster file: {}", ClusterFile::path(&dir).display());
        println!("logs:         {}", dir.join("logs").display());
        match &certs {
            Some(certs) => {
                let (cert, key) =
                    surgectl::certs::paths(certs, &surgectl::certs::surgectl_operator());
                println!("certificates: {} (TLS on every port)", certs.display());
                println!(
                    "for other shells: export SURGE_CA={} SURGE_CERT={} SURGE_KEY={}",
                    certs.join(surgectl::certs::CA_CERT).display(),
                    cert.display(),
                    key.display()
                );
            }
            None => println!("transport:    PLAINTEXT (--insecure): pass --insecure to surgectl"),
        }
        if let Some(path) = &file.admin_token_file {
            println!("admin token:  {} (mode 0600)", path.display());
            println!("              export SURGE_TOKEN_FILE={}", path.display());
        }
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
        let ours = children.names();
        children.adopt(
            now.nodes
                .iter()
                .filter(|n| !ours.contains(&n.name) && n.pid != 0)
                .map(|n| n.pid)
                .collect(),
        );
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
    let ports = Ports::from_base(file.base_port);
    let n = file.nodes.iter().map(|e| e.id).max().unwrap_or(0) + 1;
    let zone = args.zone.unwrap_or_else(|| zone_of(n));
    let (mut e, listeners) = node_entry(
        &dir,
        n,
        ports,
        &zone,
        &file.coordinator_peer_addresses(),
        file.snapshot_bytes_per_sec,
        file.certs.as_deref(),
    )?;
    let child =
        dev_cluster::spawn_with(&e, listeners).with_context(|| format!("starting {}", e.name))?;
    e.pid = child.id();
    // The node outlives this command: `dev up` stops it by pid when it stops the cluster.
    drop(child);
    let address = e.grpc_address.clone();
    file.nodes.push(e);
    file.save(&dir)?;
    let client = dev_meta_client(&file)?;
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
