//! Starting a node: check the data dir, register, heartbeat, serve gRPC and HTTP.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use surge_client::{MetaClient, RetryPolicy};
use surge_raftstore::identity::{self, Identity};
use surge_raftstore::ops::{health_and_reflection, serve_http, stop_within_grace, Readiness};
use surge_raftstore::RocksEngine;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_stream::wrappers::TcpListenerStream;
use tracing::info;

use crate::config::Config;
use crate::membership::{self, MembershipError};

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("data dir {path}: {reason}")]
    DataDir { path: String, reason: String },
    #[error(transparent)]
    Engine(#[from] surge_raftstore::EngineError),
    #[error(transparent)]
    Membership(#[from] MembershipError),
    #[error("serving: {0}")]
    Serve(String),
}

fn open_checked(config: &Config) -> Result<(Arc<RocksEngine>, Identity), ServerError> {
    let path = config.data_dir.display().to_string();
    std::fs::create_dir_all(&config.data_dir).map_err(|e| ServerError::DataDir {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    let engine = Arc::new(RocksEngine::open(&config.data_dir.join("db"))?);
    let identity = match identity::load(engine.as_ref())? {
        Some(found) if found.kind != "node" => {
            return Err(ServerError::DataDir {
                path,
                reason: format!(
                    "belongs to {} {}, not to a node; refusing to start",
                    found.kind, found.id
                ),
            })
        }
        Some(found) => found,
        None => {
            let fresh = Identity {
                kind: "node".into(),
                id: 0,
                instance_id: uuid::Uuid::new_v4().to_string(),
                cluster_id: String::new(),
            };
            identity::save(engine.as_ref(), &fresh)?;
            fresh
        }
    };
    Ok((engine, identity))
}

/// Runs a node until `shutdown` resolves, or until the cluster refuses it.
pub async fn run(
    config: Config,
    grpc: TcpListener,
    http: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let (engine, identity) = open_checked(&config)?;
    let client = Arc::new(
        MetaClient::new(config.coordinators.clone())
            .map_err(|s| ServerError::Serve(s.message().to_string()))?
            .with_policy(RetryPolicy {
                deadline: Duration::from_secs(3),
                ..RetryPolicy::default()
            })
            .with_call_timeout(Duration::from_secs(3)),
    );
    let (stop_tx, stop_rx) = watch::channel(false);
    let ready = Readiness::default();

    let (_reporter, health, reflection) = health_and_reflection();
    let mut grpc_stop = stop_rx.clone();
    let grpc_task = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(health)
            .add_service(reflection)
            .serve_with_incoming_shutdown(TcpListenerStream::new(grpc), async move {
                let _ = grpc_stop.changed().await;
            }),
    );
    let mut http_stop = stop_rx.clone();
    let http_task = tokio::spawn(serve_http(http, ready.clone(), async move {
        let _ = http_stop.changed().await;
    }));
    info!(grpc = %config.advertise_address, http = %config.http_listen, "node serving");

    let work = {
        let config = config.clone();
        let ready = ready.clone();
        let mut stop = stop_rx.clone();
        async move {
            let Some(identity) =
                membership::register(&config, &engine, &client, identity, &mut stop).await?
            else {
                return Ok(());
            };
            let assigned = Arc::new(Mutex::new(Vec::new()));
            membership::heartbeat_loop(config, client, identity, assigned, ready, stop).await
        }
    };
    let outcome = tokio::select! {
        _ = shutdown => Ok(()),
        result = work => result.map_err(ServerError::from),
    };
    let _ = stop_tx.send(true);
    let _ = stop_within_grace(grpc_task).await;
    let _ = stop_within_grace(http_task).await;
    outcome
}
