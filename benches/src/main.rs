//! `surge-bench`: workloads against a local cluster started by `surgectl dev up`, reported as a
//! human table and as JSON.
//!
//! `coordinator-failover`: kill -9 the coordinator leader N times; each time measure how long
//! until `cluster status` answers again from a new leader, then restart the killed process and
//! wait until it has caught up before the next kill.

mod failover;
mod stats;

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
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::CoordinatorFailover {
            cluster_dir,
            kills,
            base_port,
        } => failover::coordinator(cluster_dir, kills, base_port).await,
    }
}
