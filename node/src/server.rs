//! Starting a node: check the data dir, register, heartbeat, serve gRPC and HTTP.

use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use surge_client::{MetaClient, RetryPolicy};
use surge_grpc::tls::{require, Caller, Role, Transport};
use surge_grpc::v1::order_service_server::OrderServiceServer;
use surge_grpc::v1::print_service_server::PrintServiceServer;
use surge_grpc::v1::replica_service_server::ReplicaServiceServer;
use surge_raftstore::snapshot_staging::EngineStaging;
use surge_raftstore::transport::{start_loop, Inbound, RaftTransportService};
use surge_rocks::RocksEngine;
use surge_server::identity::{self, Identity};
use surge_server::listeners::Bound;
use surge_server::ops::{health_and_reflection, serve_http, stop_within_grace, Readiness};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::service::interceptor::InterceptedService;
use tracing::{info, warn};

use crate::config::Config;
use crate::directory::{self, Directory, DirectoryRefresh, SharedDirectory};
use crate::instructions::Executor;
use crate::membership::{self, HeartbeatContext, MembershipError};
use crate::order_api::OrderApi;
use crate::pipeline::{Pipeline, UsageBoard};
use crate::print_service::PrintApi;
use crate::replica_service::ReplicaApi;
use crate::replicas::{self, Replicas};

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("data dir {path}: {reason}")]
    DataDir { path: String, reason: String },
    #[error(transparent)]
    Engine(#[from] surge_raftstore::EngineError),
    #[error(transparent)]
    Membership(#[from] MembershipError),
    #[error(transparent)]
    Peer(#[from] surge_raftstore::PeerError),
    #[error("serving: {0}")]
    Serve(String),
}

fn open_checked(config: &Config) -> Result<(Arc<RocksEngine>, Identity), ServerError> {
    let path = config.data_dir.display().to_string();
    std::fs::create_dir_all(&config.data_dir).map_err(|e| ServerError::DataDir {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    let engine = Arc::new(RocksEngine::open(
        &config.data_dir.join("db"),
        &crate::families(),
    )?);
    surge_rocks::rocks_metrics::register(&engine);
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
///
/// HTTP (health, metrics) serves from the start; gRPC once the node knows its id (at once
/// on a restart), since the peer transport and the order service need it.
pub async fn run(
    config: Config,
    bound: Bound,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let Bound { grpc, peer, http } = bound;
    let transport = config
        .transport()
        .map_err(|e| ServerError::Serve(e.to_string()))?;
    surge_server::ops::report_transport(&transport);
    let renderer =
        crate::label_fonts::load(&config).map_err(|e| ServerError::Serve(e.to_string()))?;
    let (engine, identity) = open_checked(&config)?;
    let client = Arc::new(
        MetaClient::new(config.coordinators.clone())
            .map_err(|s| ServerError::Serve(s.message().to_string()))?
            .with_transport(transport.clone())
            .with_policy(RetryPolicy {
                deadline: Duration::from_secs(3),
                ..RetryPolicy::default()
            })
            .with_call_timeout(Duration::from_secs(3)),
    );
    let (stop_tx, stop_rx) = watch::channel(false);
    let ready = Readiness::default();
    let mut http_stop = stop_rx.clone();
    let http_task = tokio::spawn(serve_http(http, ready.clone(), async move {
        let _ = http_stop.changed().await;
    }));
    info!(http = %config.http_listen, "node starting");

    let mut work = tokio::spawn(serve(
        config.clone(),
        engine,
        (client, renderer),
        (identity, transport),
        (grpc, peer),
        ready.clone(),
        stop_rx.clone(),
    ));
    let finished = tokio::select! {
        _ = shutdown => None,
        joined = &mut work => Some(joined.unwrap_or_else(|e| Err(ServerError::Serve(e.to_string())))),
    };
    let outcome = match finished {
        Some(outcome) => outcome,
        None => {
            // Stop serving and stop the Raft loop after its current round, then return.
            let _ = stop_tx.send(true);
            stop_within_grace(work).await.unwrap_or(Ok(()))
        }
    };
    let _ = stop_tx.send(true);
    let _ = stop_within_grace(http_task).await;
    outcome
}

/// A node certificate speaks for the node id the coordinators bound it to at registration,
/// and for no other.
fn sender_check(directory: SharedDirectory) -> surge_raftstore::transport::SenderCheck {
    Arc::new(move |caller: &Caller, from_store| match caller {
        Caller::Plaintext => true,
        Caller::Peer(id) if id.role == Role::Node => directory
            .read()
            .is_ok_and(|d| d.certificate_is(from_store, &id.name)),
        _ => false,
    })
}

/// The longest a client call waits for its answer on this node (intake waits at most the
/// Raft request timeout, a forwarded call 7 s).
const CLIENT_DEADLINE: Duration = Duration::from_secs(30);

async fn serve(
    config: Config,
    engine: Arc<RocksEngine>,
    // The coordinators, and how labels are drawn.
    (client, renderer): (Arc<MetaClient>, Arc<surge_label::Renderer>),
    // Who this node is: its data dir's identity, and its certificate (or plaintext).
    (identity, transport): (Identity, Transport),
    (grpc, peer_port): (TcpListener, TcpListener),
    ready: Readiness,
    mut stop: watch::Receiver<bool>,
) -> Result<(), ServerError> {
    let Some(identity) =
        membership::register(&config, &engine, &client, identity, &mut stop).await?
    else {
        return Ok(());
    };
    let node_id = identity.id;
    let cluster_id = Arc::new(RwLock::new(identity.cluster_id.clone()));
    let directory: SharedDirectory = Arc::new(RwLock::new(
        directory::load(engine.as_ref())?
            .map(|d| Directory::from_heartbeat(&d))
            .unwrap_or_default(),
    ));

    let metas = replicas::load_all(engine.as_ref())?;
    let mut peers = Vec::new();
    for meta in metas.iter().filter(|m| !m.tombstone) {
        peers.push(replicas::open_peer(&engine, node_id, meta, &config.raft)?);
    }
    info!(node_id, replicas = peers.len(), "recovered shard replicas");

    let resolver_dir = directory.clone();
    let (handle, loop_thread) = start_loop(
        node_id,
        transport.clone(),
        cluster_id.clone(),
        Arc::new(move |_group, peer| {
            let dir = resolver_dir.read().ok()?;
            dir.peer_address(peer).map(|a| (peer, a.to_string()))
        }),
        peers,
        config.raft.clone(),
    );

    let replicas = Arc::new(Replicas::new(
        engine.clone(),
        node_id,
        config.raft.clone(),
        handle.clone(),
        metas,
    ));
    let wanted = Arc::new(tokio::sync::Notify::new());
    let (version_tx, version_rx) = watch::channel(0u64);
    let orders = Arc::new(OrderApi::new(
        node_id,
        handle.clone(),
        directory.clone(),
        DirectoryRefresh {
            wanted: wanted.clone(),
            version: version_rx,
        },
        transport.clone(),
        renderer,
    ));
    let prints = PrintApi::new(orders.clone());
    let usage: UsageBoard = Arc::default();
    let pipeline = Arc::new(Pipeline::new(
        handle.clone(),
        directory.clone(),
        client.clone(),
        usage.clone(),
    ));
    let pipeline_task = tokio::spawn(pipeline.run(stop.clone()));
    let (reporter, health, reflection) = health_and_reflection();
    reporter.set_serving::<OrderServiceServer<OrderApi>>().await;
    reporter.set_serving::<PrintServiceServer<PrintApi>>().await;
    let (peer_reporter, peer_health, _) = health_and_reflection();
    peer_reporter
        .set_serving::<ReplicaServiceServer<ReplicaApi>>()
        .await;
    let inbound_handle = handle.clone();
    let notified = replicas.clone();
    let raft_service = RaftTransportService::new(
        node_id,
        cluster_id,
        Arc::new(move |inbound| match inbound {
            Inbound::Message {
                group,
                epoch,
                message,
            } => inbound_handle.step(group, epoch, message),
            Inbound::Tombstone {
                group,
                epoch,
                from,
                older_incarnation,
            } => {
                let Ok(shard) = u32::try_from(group) else {
                    return false;
                };
                info!(shard, epoch, from, older_incarnation, "tombstone notice");
                let replicas = notified.clone();
                tokio::spawn(async move {
                    replicas.on_tombstone(shard, epoch, older_incarnation).await
                });
                true
            }
        }),
    )
    .with_staging(EngineStaging::new(engine.clone()))
    .with_sender_check(sender_check(directory.clone()));
    let replica_api = ReplicaApi {
        node_id,
        engine: engine.clone(),
        replicas: replicas.clone(),
    };
    // A full batch of the largest orders is a valid request (surge_proto::limits).
    let orders_server = OrderServiceServer::from_arc(orders)
        .max_decoding_message_size(surge_proto::limits::MAX_REQUEST_BYTES);
    let prints_server = PrintServiceServer::from_arc(Arc::new(prints));
    // The client port: merchants' ERPs and print stations.
    let mut grpc_stop = stop.clone();
    let grpc_task = tokio::spawn(
        surge_server::ops::client_server(&transport, CLIENT_DEADLINE)
            .map_err(ServerError::Serve)?
            .add_service(health)
            .add_service(reflection)
            .add_service(orders_server.clone())
            .add_service(prints_server.clone())
            .serve_with_incoming_shutdown(TcpListenerStream::new(grpc), async move {
                let _ = grpc_stop.changed().await;
            }),
    );
    // The peer port: Raft, snapshots, and calls other nodes forward to this one as leader.
    let mut peer_stop = stop.clone();
    let peer_task = tokio::spawn(
        surge_server::ops::peer_server(&transport)
            .map_err(ServerError::Serve)?
            .add_service(peer_health)
            .add_service(InterceptedService::new(
                orders_server,
                require(&[Role::Node], "OrderService on the peer port"),
            ))
            .add_service(InterceptedService::new(
                prints_server,
                require(&[Role::Node], "PrintService on the peer port"),
            ))
            .add_service(InterceptedService::new(
                ReplicaServiceServer::new(replica_api),
                require(&[Role::Node, Role::Operator], "ReplicaService"),
            ))
            .add_service(InterceptedService::new(
                raft_service.into_server(),
                require(&[Role::Node], "RaftTransport"),
            ))
            .serve_with_incoming_shutdown(TcpListenerStream::new(peer_port), async move {
                let _ = peer_stop.changed().await;
            }),
    );
    info!(node_id, grpc = %config.advertise_address, peer = %config.advertise_peer, "node serving");

    let ctx = HeartbeatContext {
        config,
        client,
        identity,
        engine,
        directory,
        replicas,
        handle: handle.clone(),
        ready,
        wanted: wanted.clone(),
        version: version_tx,
        waybills: usage,
        executor: Executor::new(handle.clone(), wanted.clone()),
        rates: std::sync::Mutex::default(),
    };
    let loop_watch = tokio::task::spawn_blocking(move || loop_thread.join());
    let outcome = tokio::select! {
        result = membership::heartbeat_loop(ctx, stop) => result.map_err(ServerError::from),
        joined = loop_watch => match joined {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(e))) => Err(ServerError::Peer(e)),
            _ => Err(ServerError::Serve("the raft loop thread panicked".into())),
        },
    };
    handle.stop();
    pipeline_task.abort();
    for (port, task) in [("client", grpc_task), ("peer", peer_task)] {
        if let Some(Err(e)) = stop_within_grace(task).await {
            warn!(port, error = %e, "gRPC server stopped with an error");
        }
    }
    outcome
}
