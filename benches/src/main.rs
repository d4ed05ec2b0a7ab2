//! `surge-bench`: workloads against a local cluster started by `surgectl dev up`, reported as a
//! human table and as JSON.
//!
//! `intake`: order intake, closed or open loop, single or batched, optionally killing a node
//! that leads shards every few seconds and reporting each unavailability window.
//!
//! `labels`: the pipeline end to end: a burst of orders through review, allocation and waybill
//! binding to printing stations; labels per second and submit-to-printed latency.
//!
//! `coordinator-failover`: kill -9 the coordinator leader N times; each time measure how long
//! until `cluster status` answers again from a new leader, then restart the killed process and
//! wait until it has caught up before the next kill.
//!
//! `rebalance`: load the cluster, add a node under steady intake; time until balanced, bytes
//! moved per second, and intake throughput and latency before, during and after the moves.
//!
//! `noisy-neighbour`: tenant A offers several times its orders/s limit while tenant B submits
//! at its normal rate; B's latency alone and with A, and A's admitted and refused orders.

mod failover;
mod intake;
mod labels;
mod node_metrics;
mod noisy;
mod rebalance;
mod stats;
mod steady;
mod timeline;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Orders from intake to printed labels: labels per second and submit-to-printed latency.
    Labels {
        /// A running dev cluster's directory (with cluster.json); started in a temp dir if absent.
        #[arg(long)]
        cluster_dir: Option<PathBuf>,
        #[arg(long, default_value_t = 20_000)]
        orders: u64,
        #[arg(long, default_value_t = 500)]
        batch: usize,
        /// Batches in flight.
        #[arg(long, default_value_t = 8)]
        clients: usize,
        /// Printing stations.
        #[arg(long, default_value_t = 2)]
        stations: usize,
        #[arg(long, default_value_t = 64)]
        shards: u32,
        #[arg(long, default_value_t = 27001)]
        base_port: u16,
    },
    /// Coordinator leader kill -9 → metadata operations answer again; repeated N times.
    CoordinatorFailover {
        /// A running dev cluster's directory (with cluster.json); started in a temp dir if absent.
        #[arg(long)]
        cluster_dir: Option<PathBuf>,
        #[arg(long, default_value_t = 20)]
        kills: u32,
        /// Base port for a cluster this command starts itself.
        #[arg(long, default_value_t = 27001)]
        base_port: u16,
    },
    /// Scale out under load: fill the cluster, add a node while a steady intake runs, report
    /// the time until balanced, bytes moved per second and intake latency before, during and
    /// after the moves.
    Rebalance {
        /// A running dev cluster's directory (with cluster.json); started in a temp dir if absent.
        #[arg(long)]
        cluster_dir: Option<PathBuf>,
        /// GiB of orders (about 1 KiB each) loaded before the node joins.
        #[arg(long, default_value_t = 1.0)]
        load_gib: f64,
        #[arg(long, default_value_t = 8)]
        load_clients: usize,
        #[arg(long, default_value_t = 500)]
        load_batch: usize,
        /// The steady intake: calls per second...
        #[arg(long, default_value_t = 50)]
        rate: u64,
        /// ...of this many orders each.
        #[arg(long, default_value_t = 20)]
        batch: usize,
        /// Seconds measured before the join and after the balance (about as long as the
        /// moves take, so that the phases' p99 rest on as many calls).
        #[arg(long, default_value_t = 120)]
        phase_secs: u64,
        /// Longest wait for balance, in seconds.
        #[arg(long, default_value_t = 1800)]
        timeout_secs: u64,
        #[arg(long, default_value_t = 64)]
        shards: u32,
        #[arg(long, default_value_t = 27001)]
        base_port: u16,
        /// The nodes' snapshot rate in MiB/s, for a cluster this command starts.
        #[arg(long)]
        snapshot_mib_per_sec: Option<u64>,
        /// Snapshots one node may send or receive at once, for a cluster this command starts.
        #[arg(long)]
        max_snapshots_per_node: Option<u32>,
        /// Nodes of a cluster this command starts.
        #[arg(long, default_value_t = 3)]
        nodes: u32,
        /// Add no node: the middle phase is one more steady phase, a baseline for "after".
        #[arg(long)]
        no_join: bool,
        /// Write one CSV line per second (intake p99, RocksDB background work) to this file.
        #[arg(long)]
        timeline: Option<PathBuf>,
    },
    /// Order intake throughput and latency through surge-client; optionally with node kills.
    Intake {
        /// A running dev cluster's directory (with cluster.json); started in a temp dir if absent.
        #[arg(long)]
        cluster_dir: Option<PathBuf>,
        /// Concurrent clients (closed loop), or the in-flight bound (open loop).
        #[arg(long, default_value_t = 64)]
        clients: usize,
        /// Open loop: target calls per second instead of a closed loop.
        #[arg(long)]
        rate: Option<u64>,
        /// Orders per call: 0 submits single orders (SubmitOrder), N batches (SubmitOrders).
        #[arg(long, default_value_t = 0)]
        batch: usize,
        #[arg(long, default_value_t = 20)]
        seconds: u64,
        /// Kill -9 (and restart) the node leading most shards every this many seconds.
        #[arg(long)]
        kill_every: Option<u64>,
        /// Shards of a cluster this command starts itself.
        #[arg(long, default_value_t = 64)]
        shards: u32,
        #[arg(long, default_value_t = 27001)]
        base_port: u16,
        /// An existing tenant's API key; a bench tenant is created when absent.
        #[arg(long, env = "SURGE_API_KEY")]
        api_key: Option<String>,
        /// Start the cluster in plaintext (`dev up --insecure`), to measure what TLS costs.
        #[arg(long)]
        insecure: bool,
    },
    /// Per-tenant admission: A offers `offer`× its limit, B its normal rate; B's latency
    /// alone and with A (alternating phases), A's admitted and refused orders.
    NoisyNeighbour {
        /// A running dev cluster's directory (with cluster.json); started in a temp dir if absent.
        #[arg(long)]
        cluster_dir: Option<PathBuf>,
        /// A's limit, orders per second.
        #[arg(long, default_value_t = 500)]
        limit: u32,
        /// A offers this many times its limit.
        #[arg(long, default_value_t = 5)]
        offer: u32,
        /// A's orders per call.
        #[arg(long, default_value_t = 50)]
        batch: usize,
        /// B's single orders per second.
        #[arg(long, default_value_t = 100)]
        b_rate: u64,
        #[arg(long, default_value_t = 20)]
        phase_secs: u64,
        /// Alternations of "B alone" and "B with A".
        #[arg(long, default_value_t = 2)]
        rounds: u32,
        #[arg(long, default_value_t = 64)]
        shards: u32,
        #[arg(long, default_value_t = 27001)]
        base_port: u16,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Labels {
            cluster_dir,
            orders,
            batch,
            clients,
            stations,
            shards,
            base_port,
        } => {
            labels::run(labels::LabelArgs {
                cluster_dir,
                orders,
                batch,
                clients,
                stations,
                shards,
                base_port,
            })
            .await
        }
        Command::CoordinatorFailover {
            cluster_dir,
            kills,
            base_port,
        } => failover::coordinator(cluster_dir, kills, base_port).await,
        Command::Rebalance {
            cluster_dir,
            load_gib,
            load_clients,
            load_batch,
            rate,
            batch,
            phase_secs,
            timeout_secs,
            shards,
            base_port,
            snapshot_mib_per_sec,
            max_snapshots_per_node,
            nodes,
            no_join,
            timeline,
        } => {
            rebalance::run(rebalance::RebalanceArgs {
                cluster_dir,
                load_gib,
                load_clients,
                load_batch,
                rate,
                batch,
                phase_secs,
                timeout_secs,
                shards,
                base_port,
                snapshot_mib_per_sec,
                max_snapshots_per_node,
                nodes,
                join: !no_join,
                timeline,
            })
            .await
        }
        Command::Intake {
            cluster_dir,
            clients,
            rate,
            batch,
            seconds,
            kill_every,
            shards,
            base_port,
            api_key,
            insecure,
        } => {
            intake::run(intake::IntakeArgs {
                cluster_dir,
                clients,
                rate,
                batch,
                seconds,
                kill_every,
                shards,
                base_port,
                api_key,
                insecure,
            })
            .await
        }
        Command::NoisyNeighbour {
            cluster_dir,
            limit,
            offer,
            batch,
            b_rate,
            phase_secs,
            rounds,
            shards,
            base_port,
        } => {
            noisy::run(noisy::NoisyArgs {
                cluster_dir,
                limit,
                offer,
                batch,
                b_rate,
                phase_secs,
                rounds,
                shards,
                base_port,
            })
            .await
        }
    }
}
