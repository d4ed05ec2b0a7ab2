//! `NodeService`: nodes register and heartbeat to the coordinator leader. A heartbeat brings
//! each replica's figures (kept in [`crate::reports`]); it answers with the node's replicas,
//! the routing table, tenants, and the next step of every operator on a shard the node leads.

use std::sync::Arc;

use surge_grpc::tls::{Caller, Role};
use surge_grpc::v1::node_service_client::NodeServiceClient;
use surge_grpc::v1::node_service_server::NodeService;
use surge_grpc::v1::shard_instruction::Kind as InstructionKind;
use surge_grpc::v1::{
    ConfChangeStep, HeartbeatRequest, HeartbeatResponse, KeyScope, LeaseWaybillsRequest,
    LeaseWaybillsResponse, NodeAddress, RegisterNodeRequest, RegisterNodeResponse, ScopedKeyHash,
    ShardInstruction, ShardRoute, ShardStatus, TenantKeys, TransferLeaderStep,
};
use surge_grpc::ApiError;
use tonic::{Request, Response, Status};
use tracing::{info, warn};

use crate::coordinator::{now_ms, Coordinator};
use crate::dispatch::{forwarded, hop, route_peer, Route};
use crate::error::check_address;
use crate::meta::{Command, MetaError, NodeInfo, NodeState, Reply, ShardInfo};
use crate::meta_state::META_GROUP;
use crate::operator::{self, Instruction, Operator};

const MAX_ZONE_LEN: usize = 64;
const MAX_INSTANCE_ID_LEN: usize = 64;
/// Membership updates one heartbeat may propose (the rest wait for the next one).
const MAX_UPDATES_PER_HEARTBEAT: usize = 64;

pub struct NodeApi {
    pub coordinator: Arc<Coordinator>,
}

fn invalid(field: &str, reason: impl std::fmt::Display) -> Status {
    ApiError::invalid_argument(field, reason).into()
}

/// The node certificate a NodeService call speaks for: the caller's own, or, from a
/// coordinator forwarding the call, the one it names. Empty in plaintext.
fn node_certificate(caller: &Caller, forwarded_name: &str) -> Result<String, Status> {
    match caller {
        Caller::Plaintext => Ok(forwarded_name.to_string()),
        Caller::Peer(id) if id.role == Role::Node => Ok(id.name.clone()),
        Caller::Peer(id) if id.role == Role::Coordinator => Ok(forwarded_name.to_string()),
        _ => Err(ApiError::permission_denied(format!(
            "certificate: {} is no node; NodeService takes node certificates only",
            caller.describe()
        ))
        .into()),
    }
}

/// Refuses a heartbeat whose certificate is not the one `node` registered with.
fn check_bound(node: &NodeInfo, certificate: &str) -> Result<(), Status> {
    if node.certificate_name == certificate {
        return Ok(());
    }
    let bound = match node.certificate_name.as_str() {
        "" => "no certificate (it registered in plaintext)".to_string(),
        name => format!("certificate {name:?}"),
    };
    let presented = match certificate {
        "" => "none".to_string(),
        name => format!("{name:?}"),
    };
    Err(ApiError::permission_denied(format!(
        "node_id: node {} is bound to {bound}; this call presented {presented}",
        node.id
    ))
    .into())
}

fn check_cluster(ours: Option<&str>, theirs: &str) -> Result<(), Status> {
    match ours {
        Some(ours) if !theirs.is_empty() && ours != theirs => Err(ApiError::permission_denied(format!(
            "cluster_id: the node's data dir belongs to cluster {theirs}, this is cluster {ours}; refusing it"
        )).into()),
        _ => Ok(()),
    }
}

/// A shard's status as the nodes see it.
pub fn shard_status(s: &ShardInfo, leader: u64) -> ShardStatus {
    ShardStatus {
        id: s.id,
        epoch: s.epoch,
        replicas: s.replicas.clone(),
        learners: s.learners.clone(),
        leader,
    }
}

/// An operator step as the wire carries it.
pub fn instruction(shard: u32, epoch: u64, op: u64, i: Instruction) -> ShardInstruction {
    let change = |f: &dyn Fn(&mut ConfChangeStep)| {
        let mut step = ConfChangeStep::default();
        f(&mut step);
        InstructionKind::Change(step)
    };
    let kind = match i {
        Instruction::AddLearner(n) => change(&|s| s.add_learners = vec![n]),
        Instruction::Promote(n) => change(&|s| s.promote = vec![n]),
        Instruction::EnterJoint { promote, demote } => change(&|s| {
            s.promote = vec![promote];
            s.demote = vec![demote];
            s.joint = true;
        }),
        Instruction::LeaveJoint => change(&|s| s.leave_joint = true),
        Instruction::Remove(n) => change(&|s| s.remove = vec![n]),
        Instruction::TransferLeader(to) => {
            InstructionKind::TransferLeader(TransferLeaderStep { to })
        }
    };
    ShardInstruction {
        shard,
        epoch,
        operator_id: op,
        kind: Some(kind),
    }
}

/// What one heartbeat reads from the state machine.
struct Found {
    cluster: Option<String>,
    node: Option<NodeInfo>,
    shards: Vec<ShardInfo>,
    operators: Vec<Operator>,
    /// Nodes that may not take leadership (draining, drained, removed).
    not_leading: Vec<u64>,
    directory: HeartbeatResponse,
}

#[tonic::async_trait]
impl NodeService for NodeApi {
    async fn register_node(
        &self,
        request: Request<RegisterNodeRequest>,
    ) -> Result<Response<RegisterNodeResponse>, Status> {
        let certificate =
            node_certificate(&Caller::of(&request), &request.get_ref().certificate_name)?;
        if let Route::Forward(ch) = route_peer(&self.coordinator, &request).await? {
            let mut req = request.into_inner();
            req.certificate_name = certificate;
            return hop(NodeServiceClient::new(ch)
                .register_node(forwarded(req))
                .await);
        }
        let req = request.into_inner();
        if req.instance_id.is_empty() || req.instance_id.len() > MAX_INSTANCE_ID_LEN {
            return Err(invalid(
                "instance_id",
                format!("must be 1 to {MAX_INSTANCE_ID_LEN} bytes"),
            ));
        }
        check_address("address", &req.address)?;
        check_address("peer_address", &req.peer_address)?;
        if !req.http_address.is_empty() {
            check_address("http_address", &req.http_address)?;
        }
        if req.zone.len() > MAX_ZONE_LEN {
            return Err(invalid("zone", format!("at most {MAX_ZONE_LEN} bytes")));
        }
        let c = &self.coordinator;
        let cluster = c
            .handle
            .read(META_GROUP, |sm| sm.cluster_id().map(str::to_string))
            .await
            .map_err(|e| c.map_request(e))?;
        check_cluster(cluster.as_deref(), &req.cluster_id)?;
        let cmd = Command::RegisterNode {
            instance_id: req.instance_id,
            address: req.address,
            http_address: req.http_address,
            peer_address: req.peer_address,
            zone: req.zone,
            at_ms: now_ms(),
            certificate_name: certificate,
        };
        match c.propose(cmd).await? {
            Reply::Registered {
                node_id,
                cluster_id,
            } => {
                info!(node_id, "node registered");
                c.reports.heard(node_id);
                Ok(Response::new(RegisterNodeResponse {
                    node_id,
                    cluster_id,
                }))
            }
            other => {
                Err(ApiError::internal(format!("unexpected reply to register: {other:?}")).into())
            }
        }
    }

    async fn heartbeat(
        &self,
        request: Request<HeartbeatRequest>,
    ) -> Result<Response<HeartbeatResponse>, Status> {
        let certificate =
            node_certificate(&Caller::of(&request), &request.get_ref().certificate_name)?;
        if let Route::Forward(ch) = route_peer(&self.coordinator, &request).await? {
            let mut req = request.into_inner();
            req.certificate_name = certificate;
            return hop(NodeServiceClient::new(ch).heartbeat(forwarded(req)).await);
        }
        let req = request.into_inner();
        let c = &self.coordinator;
        let node_id = req.node_id;
        let found = read_directory(c, node_id).await?;
        check_cluster(found.cluster.as_deref(), &req.cluster_id)?;
        let Some(node) = found.node.clone() else {
            return Err(crate::error::from_meta(MetaError::UnknownNode(node_id)).into());
        };
        if node.state == NodeState::Removed {
            return Err(ApiError::permission_denied(format!(
                "node_id: node {node_id} was removed from the cluster; wipe its data dir to join again as a new node"
            )).into());
        }
        check_bound(&node, &certificate)?;
        c.reports.ingest(&req, now_ms());
        if let Ok(mut usage) = c.waybill_usage.lock() {
            // Only shards of the table: the map is keyed by what a heartbeat says.
            let shards = found.directory.shard_count;
            for r in req
                .replicas
                .iter()
                .filter(|r| r.role == "leader" && r.shard < shards)
            {
                let entry = usage.entry(r.shard).or_insert((0, Vec::new()));
                if r.term >= entry.0 {
                    *entry = (r.term, r.waybills.clone());
                }
            }
        }
        if !req.address.is_empty()
            && !req.peer_address.is_empty()
            && (req.address != node.address
                || req.http_address != node.http_address
                || req.peer_address != node.peer_address)
        {
            check_address("address", &req.address)?;
            check_address("peer_address", &req.peer_address)?;
            c.propose(Command::UpdateNodeAddress {
                node_id,
                address: req.address.clone(),
                http_address: req.http_address.clone(),
                peer_address: req.peer_address.clone(),
            })
            .await?;
        }
        if node.state == NodeState::Down {
            info!(node_id, "node is back; marking it up");
            c.propose(Command::SetNodeState {
                node_id,
                state: NodeState::Up,
                at_ms: now_ms(),
            })
            .await?;
        }
        record_membership(c, &req, &found.shards).await;
        let instructions = instructions_for(c, node_id, &found);
        let leaders = c.reports.leaders();
        let mut directory = found.directory;
        for s in &mut directory.shards {
            s.leader = leaders.get(&s.id).copied().unwrap_or(0);
        }
        let assigned_shards = found
            .shards
            .iter()
            .filter(|s| s.is_member(node_id))
            .map(|s| shard_status(s, leaders.get(&s.id).copied().unwrap_or(0)))
            .collect();
        // The directory only when the node's is not the current one.
        let digest = surge_proto::directory::directory_digest(&directory);
        let unchanged = !req.directory_digest.is_empty() && req.directory_digest == digest;
        let directory = if unchanged {
            HeartbeatResponse::default()
        } else {
            directory
        };
        Ok(Response::new(HeartbeatResponse {
            assigned_shards,
            instructions,
            directory_digest: digest,
            directory_unchanged: unchanged,
            ..directory
        }))
    }

    async fn lease_waybills(
        &self,
        request: Request<LeaseWaybillsRequest>,
    ) -> Result<Response<LeaseWaybillsResponse>, Status> {
        node_certificate(&Caller::of(&request), "")?;
        if let Route::Forward(ch) = route_peer(&self.coordinator, &request).await? {
            return hop(NodeServiceClient::new(ch)
                .lease_waybills(forwarded(request.into_inner()))
                .await);
        }
        self.coordinator
            .lease_waybills(request.into_inner())
            .await
            .map(Response::new)
    }
}

/// A live key as the nodes' directory carries it: digest and scopes.
fn scoped_hash(key: &surge_meta::tenant_keys::TenantKey) -> ScopedKeyHash {
    use surge_meta::tenant_keys::KeyScope as Meta;
    let scopes = key
        .scopes
        .iter()
        .map(|s| match s {
            Meta::Orders => KeyScope::Orders,
            Meta::Print => KeyScope::Print,
            Meta::ReadOnly => KeyScope::ReadOnly,
        } as i32)
        .collect();
    ScopedKeyHash {
        hash: key.hash.clone(),
        scopes,
    }
}

async fn read_directory(c: &Coordinator, node_id: u64) -> Result<Found, Status> {
    c.handle
        .read(META_GROUP, move |sm| {
            let directory = HeartbeatResponse {
                shard_count: sm.cluster.as_ref().map(|c| c.shards).unwrap_or(0),
                shards: sm
                    .shards
                    .values()
                    .map(|s| ShardRoute {
                        id: s.id,
                        epoch: s.epoch,
                        replicas: s.replicas.clone(),
                        leader: 0,
                        learners: s.learners.clone(),
                    })
                    .collect(),
                nodes: sm
                    .nodes
                    .values()
                    .filter(|n| n.state != NodeState::Removed)
                    .map(|n| NodeAddress {
                        id: n.id,
                        address: n.address.clone(),
                        peer_address: n.peer().to_string(),
                        certificate_name: n.certificate_name.clone(),
                    })
                    .collect(),
                tenants: sm
                    .tenants
                    .values()
                    .map(|t| TenantKeys {
                        id: t.id,
                        name: t.name.clone(),
                        key_hashes: Vec::new(),
                        keys: t.live_keys().map(scoped_hash).collect(),
                        limits: Some(crate::tenant_key_ops::limits_msg(&t.limits)),
                        rules_toml: t.rules_toml.clone(),
                        rules_version: t.rules_version,
                    })
                    .collect(),
                ..HeartbeatResponse::default()
            };
            Found {
                cluster: sm.cluster_id().map(str::to_string),
                node: sm.nodes.get(&node_id).cloned(),
                shards: sm.shards.values().cloned().collect(),
                operators: sm.operators.in_flight.values().cloned().collect(),
                not_leading: sm
                    .nodes
                    .values()
                    .filter(|n| !n.state.takes_replicas())
                    .map(|n| n.id)
                    .collect(),
                directory,
            }
        })
        .await
        .map_err(|e| c.map_request(e).into())
}

/// Records every newer membership this node's leaders report (the shard's group is the
/// truth; the log follows it, epoch by epoch).
async fn record_membership(c: &Coordinator, req: &HeartbeatRequest, shards: &[ShardInfo]) {
    let recorded: std::collections::HashMap<u32, u64> =
        shards.iter().map(|s| (s.id, s.epoch)).collect();
    let newer = req.replicas.iter().filter(|r| {
        r.role == "leader"
            && !r.voters.is_empty()
            && recorded.get(&r.shard).is_some_and(|e| r.epoch > *e)
    });
    let updates = newer.take(MAX_UPDATES_PER_HEARTBEAT).map(|r| async move {
        let cmd = Command::UpdateShardMembership {
            shard: r.shard,
            epoch: r.epoch,
            voters: r.voters.clone(),
            learners: r
                .learners
                .iter()
                .chain(&r.learners_next)
                .filter(|l| !r.voters.contains(l))
                .copied()
                .collect(),
            outgoing: r.voters_outgoing.clone(),
        };
        match c.propose(cmd).await {
            Ok(_) => info!(shard = r.shard, epoch = r.epoch, voters = ?r.voters, learners = ?r.learners, "shard membership changed"),
            Err(e) => warn!(shard = r.shard, epoch = r.epoch, error = %e, "could not record a membership change"),
        }
    });
    // Proposed together, they share the log's batching.
    futures::future::join_all(updates).await;
}

/// The next step of each operator on a shard `node_id` leads, by the freshest report.
fn instructions_for(c: &Coordinator, node_id: u64, found: &Found) -> Vec<ShardInstruction> {
    let alive = |n: u64| c.reports.alive(n) && !found.not_leading.contains(&n);
    let ctx = operator::Context {
        now_ms: now_ms(),
        leading_since_ms: c.leading_since_ms(),
        alive: &alive,
    };
    found
        .operators
        .iter()
        .filter_map(|op| {
            let view = c.reports.fresh_view(op.shard)?;
            let recorded = found.shards.iter().find(|s| s.id == op.shard)?.epoch;
            if view.leader != node_id || view.epoch < recorded {
                return None;
            }
            let d = operator::decide(op, &view, &ctx);
            operator::leader_instruction(op, &d)
                .map(|i| instruction(op.shard, view.epoch, op.id, i))
        })
        .collect()
}
