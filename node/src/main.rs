//! `surge-node --config FILE`: takes over or binds the sockets, installs signal handlers, runs.

use std::path::PathBuf;

use clap::Parser;
use surge_node::config::ConfigFile;
use surge_server::listeners::Listeners;

/// A surge worker node.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// TOML configuration file (see deploy/config/node-1.toml).
    #[arg(long, short)]
    config: PathBuf,
    /// Overrides `data_dir`.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Overrides `grpc_listen`.
    #[arg(long)]
    grpc_listen: Option<String>,
    /// Overrides `http_listen`.
    #[arg(long)]
    http_listen: Option<String>,
    /// Overrides `peer_listen`.
    #[arg(long)]
    peer_listen: Option<String>,
    /// Overrides `zone`.
    #[arg(long)]
    zone: Option<String>,
}

/// mimalloc: the many short-lived allocations of the request and Raft paths (messages,
/// entries, batches) spend far less time in the allocator than with glibc's malloc.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // First: it takes the handed-over sockets' variables out of the environment.
    let mut listeners = Listeners::from_env();
    surge_server::ops::init_tracing();
    let args = Args::parse();
    let mut file = ConfigFile::load(&args.config)?;
    if let Some(dir) = args.data_dir {
        file.data_dir = dir;
    }
    if let Some(addr) = args.grpc_listen {
        file.grpc_listen = addr;
    }
    if let Some(addr) = args.http_listen {
        file.http_listen = addr;
    }
    if let Some(addr) = args.peer_listen {
        file.peer_listen = addr;
    }
    if let Some(zone) = args.zone {
        file.zone = zone;
    }
    let config = file.validate()?;
    let bound = listeners.take_all(&config.listen_addresses()).await?;
    surge_node::server::run(config, bound, surge_server::ops::shutdown_signal()).await?;
    Ok(())
}
