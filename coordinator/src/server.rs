//! Starting a coordinator: open and check the data dir, bootstrap the group once, start the
//! Raft loop, and serve gRPC and HTTP on listeners the caller bound.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, RwLock};

use surge_grpc::tls::{require, Caller, Role};
use surge_raftstore::snapshot_staging::EngineStaging;
use surge_raftstore::transport::{start_loop, Inbound, RaftTransportService};
use surge_raftstore::{logger, Engine, GroupStorage, Peer, WriteBatch};
use surge_rocks::RocksEngine;
use surge_server::identity::{self, Identity};
use surge_server::listeners::Bound;
use surge_server::ops::{health_and_reflection, serve_http, stop_within_grace, Readiness};
use tokio::sync::watch;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::service::interceptor::InterceptedService;
use tracing::{error, info};

use crate::admin_service::AdminApi;
use crate::config::Config;
use crate::coordinator::Coordinator;
use crate::meta_state::{MetaState, META_GROUP};
use crate::node_service::NodeApi;
use crate::peer_service::PeerApi;

/// Why a coordinator refused to start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("data dir {path}: {reason}")]
    DataDir { path: String, reason: String },
    #[error(transparent)]
    Engine(#[from] surge_raftstore::EngineError),
    #[error(transparent)]
    Peer(#[from] surge_raftstore::PeerError),
    #[error("serving: {0}")]
    Serve(String),
}

fn data_dir_error(config: &Config, reason: impl Into<String>) -> ServerError {
    ServerError::DataDir {
        path: config.data_dir.display().to_string(),
        reason: reason.into(),
    }
}

/// Opens the engine and refuses a data dir that belongs to another process or cluster.
fn open_checked(config: &Config) -> Result<Arc<RocksEngine>, ServerError> {
    std::fs::create_dir_all(&config.data_dir).map_err(|e| data_dir_error(config, e.to_string()))?;
    let engine = Arc::new(RocksEngine::open(
        &config.data_dir.join("db"),
        &crate::families(),
    )?);
    surge_rocks::rocks_metrics::register(&engine);
    let ours = Identity {
        kind: "coordinator".into(),
        id: config.id,
        ..Identity::default()
    };
    match identity::load(engine.as_ref())? {
        Some(found) => {
            if found.kind != ours.kind || found.id != ours.id {
                return Err(data_dir_error(
                    config,
                    format!(
                        "belongs to {} {}, not coordinator {}; refusing to start",
                        found.kind, found.id, config.id
                    ),
                ));
            }
        }
        None => identity::save(engine.as_ref(), &ours)?,
    }
    Ok(engine)
}

/// The longest an operator's call waits for its answer: above the 60 s a coordinator add
/// may wait for the learner to catch up.
const ADMIN_DEADLINE: std::time::Duration = std::time::Duration::from_secs(120);

/// Runs a coordinator until `shutdown` resolves or the Raft loop fails.
pub async fn run(
    config: Config,
    bound: Bound,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let Bound {
        grpc,
        peer: peer_port,
        http,
    } = bound;
    let transport = config
        .transport()
        .map_err(|e| ServerError::Serve(e.to_string()))?;
    surge_server::ops::report_transport(&transport);
    if !config.join && !config.initialize && !config.data_dir.join("db").exists() {
        return Err(data_dir_error(
            &config,
            "is empty; pass --initialize on the very first start to found the coordinator group \
             from initial_peers, or set join = true to join a running quorum",
        ));
    }
    if config.initialize && !config.join && !config.data_dir.join("db").exists() {
        if let Some((peer, cluster_id)) =
            crate::founding::running_cluster(config.id, &config.initial_peers, &transport).await
        {
            return Err(data_dir_error(
                &config,
                format!(
                    "is empty, but coordinator {peer} already runs cluster {cluster_id}: this coordinator \
                     lost its data and must not found the group again. Replace it: `surgectl coordinator \
                     remove {}`, then start one with a new id and join = true, and `surgectl coordinator add` it",
                    config.id
                ),
            ));
        }
    }
    let engine = open_checked(&config)?;
    let mut storage = GroupStorage::open(engine.clone(), META_GROUP)?;
    if !storage.is_initialized() && !config.join {
        if !config.initialize {
            return Err(data_dir_error(
                &config,
                "holds no coordinator state; pass --initialize to found the group from initial_peers",
            ));
        }
        let voters: Vec<u64> = config.initial_peers.iter().map(|p| p.id).collect();
        info!(?voters, "bootstrapping the coordinator group");
        let mut batch = WriteBatch::default();
        storage.stage_bootstrap(&voters, 1, &mut batch);
        MetaState::<RocksEngine>::stage_initial_coordinators(&config.initial_peers, &mut batch);
        engine.write(&batch, true)?;
    }
    let sm = MetaState::load(engine.clone())?;
    if let (Some(pinned), Some(found)) = (&config.cluster_id, sm.cluster_id()) {
        if pinned != found {
            return Err(data_dir_error(
                &config,
                format!("belongs to cluster {found}, but cluster_id = {pinned:?} is configured; refusing to start"),
            ));
        }
    }
    let cluster_id = Arc::new(RwLock::new(sm.cluster_id().unwrap_or_default().to_string()));
    let mut initial_book: BTreeMap<u64, _> = config
        .initial_peers
        .iter()
        .map(|p| (p.id, p.clone()))
        .collect();
    initial_book.extend(sm.coordinators.clone());
    let book = Arc::new(RwLock::new(initial_book));

    let peer = Peer::open(
        config.id,
        storage,
        sm,
        &config.raft,
        &logger::raft_logger(META_GROUP),
    )?;
    let resolver_book = book.clone();
    let (handle, loop_thread) = start_loop(
        config.id,
        transport.clone(),
        cluster_id.clone(),
        Arc::new(move |_group, peer| {
            resolver_book
                .read()
                .ok()
                .and_then(|b| b.get(&peer).map(|c| (peer, c.peer().to_string())))
        }),
        vec![peer],
        config.raft.clone(),
    );

    let coordinator = Arc::new(Coordinator::new(
        config.clone(),
        handle.clone(),
        book,
        cluster_id.clone(),
        transport.clone(),
    ));
    let (stop_tx, stop_rx) = watch::channel(false);
    let ready = Readiness::default();

    let (reporter, health, reflection) = health_and_reflection();
    reporter
        .set_serving::<surge_grpc::v1::admin_service_server::AdminServiceServer<AdminApi>>()
        .await;
    reporter
        .set_serving::<surge_grpc::v1::node_service_server::NodeServiceServer<NodeApi>>()
        .await;
    let (peer_reporter, peer_health, _) = health_and_reflection();
    peer_reporter
        .set_serving::<surge_grpc::v1::node_service_server::NodeServiceServer<NodeApi>>()
        .await;
    let inbound_handle = handle.clone();
    let raft_service = RaftTransportService::new(
        config.id,
        cluster_id,
        Arc::new(move |inbound| match inbound {
            Inbound::Message {
                group,
                epoch,
                message,
            } => inbound_handle.step(group, epoch, message),
            // A coordinator is removed through `coordinator remove`, never by a notice.
            Inbound::Tombstone { .. } => true,
        }),
    )
    .with_staging(EngineStaging::new(engine.clone()))
    // Coordinator N's certificate speaks for store N, and no other.
    .with_sender_check(Arc::new(|caller: &Caller, from_store| match caller {
        Caller::Plaintext => true,
        Caller::Peer(id) => id.coordinator_id() == Some(from_store),
        Caller::Anonymous => false,
    }));
    // The client port: what operators call.
    let mut grpc_stop = stop_rx.clone();
    let grpc_server = surge_server::ops::client_server(&transport, ADMIN_DEADLINE)
        .map_err(ServerError::Serve)?
        .add_service(health)
        .add_service(reflection)
        .add_service(
            surge_grpc::v1::admin_service_server::AdminServiceServer::new(AdminApi {
                coordinator: coordinator.clone(),
            }),
        )
        .serve_with_incoming_shutdown(TcpListenerStream::new(grpc), async move {
            let _ = grpc_stop.changed().await;
        });
    // The peer port: nodes and the other coordinators.
    let mut peer_stop = stop_rx.clone();
    let peer_server = surge_server::ops::peer_server(&transport)
        .map_err(ServerError::Serve)?
        .add_service(peer_health)
        .add_service(InterceptedService::new(
            surge_grpc::v1::node_service_server::NodeServiceServer::new(NodeApi {
                coordinator: coordinator.clone(),
            }),
            require(&[Role::Node, Role::Coordinator], "NodeService"),
        ))
        .add_service(InterceptedService::new(
            surge_grpc::v1::coordinator_peer_service_server::CoordinatorPeerServiceServer::new(
                PeerApi {
                    coordinator: coordinator.clone(),
                },
            ),
            require(
                &[Role::Coordinator, Role::Operator],
                "CoordinatorPeerService",
            ),
        ))
        .add_service(InterceptedService::new(
            raft_service.into_server(),
            require(&[Role::Coordinator], "RaftTransport"),
        ))
        .serve_with_incoming_shutdown(TcpListenerStream::new(peer_port), async move {
            let _ = peer_stop.changed().await;
        });
    let mut http_stop = stop_rx.clone();
    let http_server = serve_http(http, ready.clone(), async move {
        let _ = http_stop.changed().await;
    });
    let scheduler = tokio::spawn(crate::scheduler::run(coordinator, ready, stop_rx));
    info!(id = config.id, grpc = %config.advertise_address, peer = %config.advertise_peer, http = %config.http_listen, "coordinator serving");

    let grpc_task = tokio::spawn(grpc_server);
    let peer_task = tokio::spawn(peer_server);
    let http_task = tokio::spawn(http_server);
    let loop_watch = tokio::task::spawn_blocking(move || loop_thread.join());
    let outcome = tokio::select! {
        _ = shutdown => Ok(()),
        joined = loop_watch => match joined {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(e))) => Err(ServerError::Peer(e)),
            _ => Err(ServerError::Serve("the raft loop thread panicked".into())),
        },
    };
    let _ = stop_tx.send(true);
    handle.stop();
    for (port, task) in [("client", grpc_task), ("peer", peer_task)] {
        if let Some(Err(e)) = stop_within_grace(task).await {
            error!(port, error = %e, "gRPC server stopped with an error");
        }
    }
    let _ = stop_within_grace(http_task).await;
    let _ = scheduler.await;
    outcome
}
