//! `surge-node --config FILE`: binds the sockets, installs signal handlers, runs.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use surge_node::config::ConfigFile;

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
    if let Some(zone) = args.zone {
        file.zone = zone;
    }
    let config = file.validate()?;
    let grpc = tokio::net::TcpListener::bind(&config.grpc_listen)
        .await
        .with_context(|| format!("grpc_listen: cannot bind {}", config.grpc_listen))?;
    let http = tokio::net::TcpListener::bind(&config.http_listen)
        .await
        .with_context(|| format!("http_listen: cannot bind {}", config.http_listen))?;
    surge_node::server::run(config, grpc, http, surge_server::ops::shutdown_signal()).await?;
    Ok(())
}
