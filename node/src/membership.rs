//! The node's side of cluster membership: register once (keeping the node id in the data
//! dir), then heartbeat every period and learn the shard replicas placed here.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use prometheus::{IntCounter, IntGauge};
use surge_client::MetaClient;
use surge_proto::v1::node_service_client::NodeServiceClient;
use surge_proto::v1::{HeartbeatRequest, HeartbeatResponse, RegisterNodeRequest, ReplicaStats};
use surge_raftstore::identity::{self, Identity};
use surge_raftstore::ops::Readiness;
use surge_raftstore::raft::StateRole;
use surge_raftstore::RocksEngine;
use tokio::sync::watch;
use tonic::Code;
use tracing::{info, warn};

use crate::config::Config;
use crate::directory::{self, Directory, SharedDirectory};
use crate::replicas::{Replicas, ShardHandle};

/// Why the node gave up on the cluster (it then exits instead of running as a stranger).
#[derive(Debug, thiserror::Error)]
pub enum MembershipError {
    #[error("refused by the coordinators: {0}")]
    Refused(String),
    #[error(transparent)]
    Engine(#[from] surge_raftstore::EngineError),
}

struct Gauges {
    assigned: IntGauge,
    heartbeat_failures: IntCounter,
}

fn gauges() -> &'static Gauges {
    static G: OnceLock<Gauges> = OnceLock::new();
    G.get_or_init(|| {
        let assigned = IntGauge::new(
            "surge_node_assigned_replicas",
            "Shard replicas placed on this node",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let heartbeat_failures = IntCounter::new(
            "surge_node_heartbeat_failures_total",
            "Heartbeats that failed",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let r = prometheus::default_registry();
        let _ = r.register(Box::new(assigned.clone()));
        let _ = r.register(Box::new(heartbeat_failures.clone()));
        Gauges {
            assigned,
            heartbeat_failures,
        }
    })
}

/// Codes after which retrying cannot help: this data dir is not welcome in this cluster.
fn is_refusal(code: Code) -> bool {
    matches!(
        code,
        Code::PermissionDenied | Code::NotFound | Code::InvalidArgument
    )
}

/// Registers (unless the data dir already holds a node id) and returns the identity.
pub async fn register(
    config: &Config,
    engine: &RocksEngine,
    client: &MetaClient,
    mut identity: Identity,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<Option<Identity>, MembershipError> {
    if identity.id != 0 {
        return Ok(Some(identity));
    }
    let mut attempt = 0u32;
    loop {
        let req = RegisterNodeRequest {
            instance_id: identity.instance_id.clone(),
            address: config.advertise_address.clone(),
            http_address: config.advertise_http.clone(),
            zone: config.zone.clone(),
            cluster_id: identity.cluster_id.clone(),
        };
        let result = client
            .call(|ch| {
                let req = req.clone();
                async move { NodeServiceClient::new(ch).register_node(req).await }
            })
            .await;
        match result {
            Ok(resp) => {
                identity.id = resp.node_id;
                identity.cluster_id = resp.cluster_id;
                identity::save(engine, &identity)?;
                info!(node_id = identity.id, cluster_id = %identity.cluster_id, "registered");
                return Ok(Some(identity));
            }
            Err(s) if is_refusal(s.code()) => {
                return Err(MembershipError::Refused(s.message().to_string()))
            }
            Err(s) => {
                if attempt.is_multiple_of(10) {
                    info!(code = ?s.code(), message = s.message(), "waiting to register");
                }
                attempt += 1;
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = shutdown.changed() => return Ok(None),
        }
    }
}

/// What the heartbeat loop works with.
pub struct HeartbeatContext {
    pub config: Config,
    pub client: Arc<MetaClient>,
    pub identity: Identity,
    pub engine: Arc<RocksEngine>,
    pub directory: SharedDirectory,
    pub replicas: Arc<Replicas>,
    pub handle: ShardHandle,
    pub ready: Readiness,
    /// Asks for a heartbeat now (e.g. a call came with an API key not known yet).
    pub wanted: Arc<tokio::sync::Notify>,
    /// Bumped after every heartbeat answer was taken in.
    pub version: tokio::sync::watch::Sender<u64>,
    /// Waybill usage of the shards this node leads, kept by the pipeline.
    pub waybills: crate::pipeline::UsageBoard,
}

fn role_name(role: Option<StateRole>) -> &'static str {
    match role {
        Some(StateRole::Leader) => "leader",
        Some(StateRole::Follower) => "follower",
        Some(StateRole::Candidate) => "candidate",
        Some(StateRole::PreCandidate) => "pre-candidate",
        None => "unknown",
    }
}

/// Per-shard stats of every live local replica.
fn replica_stats(ctx: &HeartbeatContext) -> Vec<ReplicaStats> {
    let statuses = ctx.handle.statuses();
    ctx.replicas
        .live()
        .into_iter()
        .map(|m| {
            let st = statuses
                .get(&u64::from(m.shard))
                .copied()
                .unwrap_or_default();
            ReplicaStats {
                shard: m.shard,
                epoch: m.epoch,
                role: role_name(st.role).into(),
                term: st.term,
                commit_index: st.commit,
                applied_index: st.applied,
                leader: st.leader,
                waybills: if st.is_leader() {
                    ctx.waybills
                        .read()
                        .ok()
                        .and_then(|b| b.get(&m.shard).cloned())
                        .unwrap_or_default()
                } else {
                    Vec::new()
                },
            }
        })
        .collect()
}

/// Heartbeats until shutdown; a refusal ends the loop with an error.
pub async fn heartbeat_loop(
    ctx: HeartbeatContext,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), MembershipError> {
    let mut ticker = tokio::time::interval(ctx.config.heartbeat_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = ctx.wanted.notified() => {}
            _ = shutdown.changed() => return Ok(()),
        }
        let req = HeartbeatRequest {
            node_id: ctx.identity.id,
            cluster_id: ctx.identity.cluster_id.clone(),
            address: ctx.config.advertise_address.clone(),
            http_address: ctx.config.advertise_http.clone(),
            replicas: replica_stats(&ctx),
        };
        let result = ctx
            .client
            .call(|ch| {
                let req = req.clone();
                async move {
                    let mut request = tonic::Request::new(req);
                    request.set_timeout(Duration::from_secs(2));
                    NodeServiceClient::new(ch).heartbeat(request).await
                }
            })
            .await;
        match result {
            Ok(resp) => {
                gauges().assigned.set(resp.assigned_shards.len() as i64);
                apply_directory(&ctx, &resp).await?;
                ctx.version.send_modify(|v| *v += 1);
                ctx.ready.set(true);
            }
            Err(s) if is_refusal(s.code()) => {
                ctx.ready.set(false);
                return Err(MembershipError::Refused(s.message().to_string()));
            }
            Err(s) => {
                gauges().heartbeat_failures.inc();
                warn!(code = ?s.code(), message = s.message(), "heartbeat failed");
            }
        }
    }
}

/// Takes in a heartbeat answer: routing table, tenants, and this node's replicas.
pub async fn apply_directory(
    ctx: &HeartbeatContext,
    resp: &HeartbeatResponse,
) -> Result<(), MembershipError> {
    let (fresh, changed) = ctx
        .directory
        .read()
        .map(|d| {
            let fresh = Directory::from_heartbeat_after(&d, resp);
            let versions = |dir: &Directory| -> Vec<(u64, u64)> {
                let mut v: Vec<_> = dir.rules.iter().map(|(t, (v, _))| (*t, *v)).collect();
                v.sort_unstable();
                v
            };
            let changed = d.shard_count != fresh.shard_count
                || d.nodes != fresh.nodes
                || d.keys != fresh.keys
                || d.shards.len() != fresh.shards.len()
                || versions(&d) != versions(&fresh);
            (fresh, changed)
        })
        .unwrap_or_else(|_| (Directory::from_heartbeat(resp), true));
    let routes = fresh
        .shards
        .values()
        .map(|s| (s.id, (s.epoch, s.replicas.clone())))
        .collect();
    if let Ok(mut d) = ctx.directory.write() {
        *d = fresh;
    }
    if changed {
        directory::save(ctx.engine.as_ref(), resp)?;
    }
    ctx.replicas.reconcile(&resp.assigned_shards, &routes).await;
    Ok(())
}
