//! `surge-coordinator --config FILE`: takes over or binds the sockets, installs signal
//! handlers, runs.

use std::path::PathBuf;

use clap::Parser;
use surge_coordinator::config::ConfigFile;
use surge_server::listeners::Listeners;

/// A surge coordinator: one member of the Raft-replicated metadata quorum.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// TOML configuration file (see deploy/config/coordinator-1.toml).
    #[arg(long, short)]
    config: PathBuf,
    /// Overrides `id`.
    #[arg(long)]
    id: Option<u64>,
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
    /// Overrides `join`.
    #[arg(long)]
    join: bool,
    /// First start only: found the coordinator group from `initial_peers` if the data dir is
    /// empty. Restarts never pass it, so a wiped data dir is refused instead of re-founding.
    #[arg(long)]
    initialize: bool,
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
    if let Some(id) = args.id {
        file.id = id;
    }
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
    file.join |= args.join;
    let mut config = file.validate()?;
    config.initialize = args.initialize;
    let bound = listeners.take_all(&config.listen_addresses()).await?;
    surge_coordinator::server::run(config, bound, surge_server::ops::shutdown_signal()).await?;
    Ok(())
}
