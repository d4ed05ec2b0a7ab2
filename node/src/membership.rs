//! The node's side of cluster membership: register once (keeping the node id in the data
//! dir), then heartbeat every period and learn the shard replicas placed here.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use prometheus::{IntCounter, IntGauge, IntGaugeVec, Opts};
use surge_client::MetaClient;
use surge_grpc::v1::node_service_client::NodeServiceClient;
use surge_grpc::v1::{
    HeartbeatRequest, HeartbeatResponse, NodeStats, PeerProgress, RegisterNodeRequest, ReplicaStats,
};
use surge_raftstore::raft::StateRole;
use surge_raftstore::{keys, Engine, GroupStats};
use surge_rocks::RocksEngine;
use surge_server::identity::{self, Identity};
use surge_server::ops::Readiness;
use tokio::sync::watch;
use tonic::Code;
use tracing::{info, warn};

use crate::config::Config;
use crate::directory::{self, Directory, SharedDirectory};
use crate::instructions::Executor;
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
    rules_version: IntGaugeVec,
    directory_answers: prometheus::IntCounterVec,
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
        let rules_version = IntGaugeVec::new(
            Opts::new(
                "surge_node_tenant_rules_version",
                "The version of each tenant's rules in the last heartbeat answer, which the pipeline applies",
            ),
            &["tenant"],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let directory_answers = prometheus::IntCounterVec::new(
            Opts::new(
                "surge_node_directory_answers_total",
                "Heartbeat answers by what they carried: kind=\"full\" (a changed directory) or \"unchanged\" (none: the node's is current)",
            ),
            &["kind"],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let r = prometheus::default_registry();
        let _ = r.register(Box::new(directory_answers.clone()));
        let _ = r.register(Box::new(assigned.clone()));
        let _ = r.register(Box::new(heartbeat_failures.clone()));
        let _ = r.register(Box::new(rules_version.clone()));
        Gauges {
            assigned,
            heartbeat_failures,
            rules_version,
            directory_answers,
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
            peer_address: config.advertise_peer.clone(),
            zone: config.zone.clone(),
            cluster_id: identity.cluster_id.clone(),
            // Named by the certificate this call presents; set only by a coordinator that
            // forwards the call.
            certificate_name: String::new(),
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
    /// Carries out the operator steps heartbeat answers bring.
    pub executor: Executor,
    /// Per shard, the applied index at the last heartbeat and when: the write rate.
    pub rates: Mutex<HashMap<u32, (Instant, u64)>>,
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

/// Approximate bytes of `shard`'s data on `engine` (flushed files only: RocksDB's estimate).
fn replica_size(engine: &RocksEngine, shard: u32) -> u64 {
    let group = u64::from(shard);
    let (start, end) = (keys::group_prefix(group), keys::group_end(group));
    engine
        .group_families()
        .into_iter()
        .map(|cf| engine.approximate_size(cf, &start, &end))
        .sum()
}

/// The data dir's file system: (capacity, available) bytes.
fn disk_of(path: &std::path::Path) -> (u64, u64) {
    match nix::sys::statvfs::statvfs(path) {
        Ok(v) => {
            let unit = v.fragment_size();
            (
                v.blocks().saturating_mul(unit),
                v.blocks_available().saturating_mul(unit),
            )
        }
        Err(_) => (0, 0),
    }
}

fn progress_of(g: &GroupStats) -> Vec<PeerProgress> {
    g.replication
        .iter()
        .map(|r| PeerProgress {
            node_id: r.id,
            matched: r.matched,
            next_index: r.next_index,
            state: r.state.as_str().into(),
            pending_snapshot: r.pending_snapshot,
            recent_active: r.recent_active,
        })
        .collect()
}

/// Entries applied per second since the last heartbeat, per shard.
fn write_rates(ctx: &HeartbeatContext, stats: &HashMap<u64, GroupStats>) -> HashMap<u32, f64> {
    let now = Instant::now();
    let Ok(mut rates) = ctx.rates.lock() else {
        return HashMap::new();
    };
    let mut out = HashMap::new();
    for (group, g) in stats {
        let shard = *group as u32;
        let applied = g.status.applied;
        if let Some((at, before)) = rates.get(&shard) {
            let secs = now.duration_since(*at).as_secs_f64();
            if secs > 0.0 {
                out.insert(shard, applied.saturating_sub(*before) as f64 / secs);
            }
        }
        rates.insert(shard, (now, applied));
    }
    rates.retain(|s, _| stats.contains_key(&u64::from(*s)));
    out
}

/// Per-shard stats of every live local replica, and the node's own figures.
async fn replica_stats(ctx: &HeartbeatContext) -> (Vec<ReplicaStats>, NodeStats) {
    let stats: HashMap<u64, GroupStats> = ctx
        .handle
        .stats()
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|g| (g.group, g))
        .collect();
    let live = ctx.replicas.live();
    let engine = ctx.engine.clone();
    let shards: Vec<u32> = live.iter().map(|m| m.shard).collect();
    let data_dir = ctx.config.data_dir.clone();
    let (sizes, (capacity, available)) = tokio::task::spawn_blocking(move || {
        let sizes: HashMap<u32, u64> = shards
            .iter()
            .map(|s| (*s, replica_size(&engine, *s)))
            .collect();
        (sizes, disk_of(&data_dir))
    })
    .await
    .unwrap_or_default();
    let rates = write_rates(ctx, &stats);
    let replicas: Vec<ReplicaStats> = live
        .into_iter()
        .map(|m| {
            let group = u64::from(m.shard);
            let g = stats.get(&group);
            let st = g.map(|g| g.status).unwrap_or_default();
            let conf = g.map(|g| g.conf.clone()).unwrap_or_default();
            ReplicaStats {
                shard: m.shard,
                // The applied configuration's epoch; before the loop drives the replica, the
                // epoch it was created at.
                epoch: if g.is_some() { st.epoch } else { m.epoch },
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
                last_index: st.last_index,
                progress: g.map(progress_of).unwrap_or_default(),
                approximate_bytes: sizes.get(&m.shard).copied().unwrap_or(0),
                writes_per_sec: rates.get(&m.shard).copied().unwrap_or(0.0),
                voters: conf.voters,
                learners: conf.learners,
                voters_outgoing: conf.voters_outgoing,
                learners_next: conf.learners_next,
                pending_conf_change: g.is_some_and(|g| g.pending_conf),
            }
        })
        .collect();
    let (sending, receiving) = surge_raftstore::transport::snapshots_in_flight();
    let node = NodeStats {
        disk_capacity_bytes: capacity,
        disk_available_bytes: available,
        used_bytes: replicas.iter().map(|r| r.approximate_bytes).sum(),
        replica_count: replicas.len() as u32,
        leader_count: replicas.iter().filter(|r| r.role == "leader").count() as u32,
        snapshots_sending: sending,
        snapshots_receiving: receiving,
    };
    (replicas, node)
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
        crate::replicas::purge_snapshots();
        let (replicas, stats) = replica_stats(&ctx).await;
        let req = HeartbeatRequest {
            node_id: ctx.identity.id,
            cluster_id: ctx.identity.cluster_id.clone(),
            address: ctx.config.advertise_address.clone(),
            http_address: ctx.config.advertise_http.clone(),
            peer_address: ctx.config.advertise_peer.clone(),
            replicas,
            stats: Some(stats),
            certificate_name: String::new(),
            directory_digest: ctx
                .directory
                .read()
                .map(|d| d.digest.clone())
                .unwrap_or_default(),
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
                ctx.executor.run(&resp.instructions);
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
/// Each shard's epoch and replicas, as the directory routes them.
fn routes_of(directory: &Directory) -> HashMap<u32, (u64, Vec<u64>)> {
    directory
        .shards
        .values()
        .map(|s| (s.id, (s.epoch, s.replicas.clone())))
        .collect()
}

pub async fn apply_directory(
    ctx: &HeartbeatContext,
    resp: &HeartbeatResponse,
) -> Result<(), MembershipError> {
    if resp.directory_unchanged {
        gauges()
            .directory_answers
            .with_label_values(&["unchanged"])
            .inc();
        let routes = ctx
            .directory
            .read()
            .map(|d| routes_of(&d))
            .unwrap_or_default();
        ctx.replicas.reconcile(&resp.assigned_shards, &routes).await;
        return Ok(());
    }
    gauges()
        .directory_answers
        .with_label_values(&["full"])
        .inc();
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
                || d.peers != fresh.peers
                || d.certificates != fresh.certificates
                || d.keys != fresh.keys
                || d.shards.len() != fresh.shards.len()
                || versions(&d) != versions(&fresh);
            (fresh, changed)
        })
        .unwrap_or_else(|_| (Directory::from_heartbeat(resp), true));
    let routes = routes_of(&fresh);
    for (tenant, (version, _)) in &fresh.rules {
        let name = fresh.names.get(tenant).map_or("", String::as_str);
        gauges()
            .rules_version
            .with_label_values(&[name])
            .set(*version as i64);
    }
    if let Ok(mut d) = ctx.directory.write() {
        *d = fresh;
    }
    if changed {
        directory::save(ctx.engine.as_ref(), resp)?;
    }
    ctx.replicas.reconcile(&resp.assigned_shards, &routes).await;
    Ok(())
}
