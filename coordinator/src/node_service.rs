//! `NodeService`: nodes register and heartbeat to the coordinator leader.

use std::sync::Arc;
use std::time::Instant;

use surge_proto::v1::node_service_client::NodeServiceClient;
use surge_proto::v1::node_service_server::NodeService;
use surge_proto::v1::{
    HeartbeatRequest, HeartbeatResponse, LeaseWaybillsRequest, LeaseWaybillsResponse, NodeAddress,
    RegisterNodeRequest, RegisterNodeResponse, ShardRoute, ShardStatus, TenantKeys,
};
use tonic::{Request, Response, Status};
use tracing::info;

use crate::admin_service::{forwarded, hop, route, Route};
use crate::config::check_address;
use crate::coordinator::{now_ms, Coordinator};
use crate::meta::{Command, MetaError, NodeState, Reply};
use crate::meta_state::META_GROUP;

const MAX_ZONE_LEN: usize = 64;
const MAX_INSTANCE_ID_LEN: usize = 64;

pub struct NodeApi {
    pub coordinator: Arc<Coordinator>,
}

fn invalid(field: &str, reason: impl std::fmt::Display) -> Status {
    Status::invalid_argument(format!("{field}: {reason}"))
}

fn check_cluster(ours: Option<&str>, theirs: &str) -> Result<(), Status> {
    match ours {
        Some(ours) if !theirs.is_empty() && ours != theirs => Err(Status::permission_denied(format!(
            "cluster_id: the node's data dir belongs to cluster {theirs}, this is cluster {ours}; refusing it"
        ))),
        _ => Ok(()),
    }
}

#[tonic::async_trait]
impl NodeService for NodeApi {
    async fn register_node(
        &self,
        request: Request<RegisterNodeRequest>,
    ) -> Result<Response<RegisterNodeResponse>, Status> {
        if let Route::Forward(ch) = route(&self.coordinator, &request).await? {
            return hop(NodeServiceClient::new(ch)
                .register_node(forwarded(request.into_inner()))
                .await);
        }
        let req = request.into_inner();
        if req.instance_id.is_empty() || req.instance_id.len() > MAX_INSTANCE_ID_LEN {
            return Err(invalid(
                "instance_id",
                format!("must be 1 to {MAX_INSTANCE_ID_LEN} bytes"),
            ));
        }
        check_address("address", &req.address)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        if !req.http_address.is_empty() {
            check_address("http_address", &req.http_address)
                .map_err(|e| Status::invalid_argument(e.to_string()))?;
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
            zone: req.zone,
            at_ms: now_ms(),
        };
        match c.propose(cmd).await? {
            Reply::Registered {
                node_id,
                cluster_id,
            } => {
                info!(node_id, "node registered");
                if let Ok(mut h) = c.heartbeats.lock() {
                    h.insert(node_id, Instant::now());
                }
                Ok(Response::new(RegisterNodeResponse {
                    node_id,
                    cluster_id,
                }))
            }
            other => Err(Status::internal(format!(
                "unexpected reply to register: {other:?}"
            ))),
        }
    }

    async fn heartbeat(
        &self,
        request: Request<HeartbeatRequest>,
    ) -> Result<Response<HeartbeatResponse>, Status> {
        if let Route::Forward(ch) = route(&self.coordinator, &request).await? {
            return hop(NodeServiceClient::new(ch)
                .heartbeat(forwarded(request.into_inner()))
                .await);
        }
        let req = request.into_inner();
        let c = &self.coordinator;
        let node_id = req.node_id;
        if let Ok(mut leaders) = c.shard_leaders.lock() {
            for r in &req.replicas {
                if r.leader == 0 {
                    continue;
                }
                let entry = leaders.entry(r.shard).or_insert((0, 0));
                if r.term >= entry.0 {
                    *entry = (r.term, r.leader);
                }
            }
        }
        if let Ok(mut usage) = c.waybill_usage.lock() {
            for r in req.replicas.iter().filter(|r| r.role == "leader") {
                let entry = usage.entry(r.shard).or_insert((0, Vec::new()));
                if r.term >= entry.0 {
                    *entry = (r.term, r.waybills.clone());
                }
            }
        }
        let found = c
            .handle
            .read(META_GROUP, move |sm| {
                let node = sm.nodes.get(&node_id).cloned();
                let shards: Vec<ShardStatus> = sm
                    .shards_of(node_id)
                    .into_iter()
                    .map(|s| ShardStatus {
                        id: s.id,
                        epoch: s.epoch,
                        replicas: s.replicas.clone(),
                    })
                    .collect();
                let directory = HeartbeatResponse {
                    assigned_shards: Vec::new(),
                    shard_count: sm.cluster.as_ref().map(|c| c.shards).unwrap_or(0),
                    shards: sm
                        .shards
                        .values()
                        .map(|s| ShardRoute {
                            id: s.id,
                            epoch: s.epoch,
                            replicas: s.replicas.clone(),
                            leader: 0,
                        })
                        .collect(),
                    nodes: sm
                        .nodes
                        .values()
                        .filter(|n| n.state != NodeState::Removed)
                        .map(|n| NodeAddress {
                            id: n.id,
                            address: n.address.clone(),
                        })
                        .collect(),
                    tenants: sm
                        .tenants
                        .values()
                        .map(|t| TenantKeys {
                            id: t.id,
                            name: t.name.clone(),
                            key_hashes: t.key_hashes.clone(),
                            rules_toml: t.rules_toml.clone(),
                            rules_version: t.rules_version,
                        })
                        .collect(),
                };
                (sm.cluster_id().map(str::to_string), node, shards, directory)
            })
            .await
            .map_err(|e| c.map_request(e))?;
        let (cluster, node, assigned_shards, mut directory) = found;
        if let Ok(leaders) = c.shard_leaders.lock() {
            for s in &mut directory.shards {
                if let Some((_, leader)) = leaders.get(&s.id) {
                    s.leader = *leader;
                }
            }
        }
        check_cluster(cluster.as_deref(), &req.cluster_id)?;
        let Some(node) = node else {
            return Err(crate::error::from_meta(MetaError::UnknownNode(node_id)));
        };
        if let Ok(mut h) = c.heartbeats.lock() {
            h.insert(node_id, Instant::now());
        }
        if !req.address.is_empty()
            && (req.address != node.address || req.http_address != node.http_address)
        {
            check_address("address", &req.address)
                .map_err(|e| Status::invalid_argument(e.to_string()))?;
            c.propose(Command::UpdateNodeAddress {
                node_id,
                address: req.address,
                http_address: req.http_address,
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
        Ok(Response::new(HeartbeatResponse {
            assigned_shards,
            ..directory
        }))
    }

    async fn lease_waybills(
        &self,
        request: Request<LeaseWaybillsRequest>,
    ) -> Result<Response<LeaseWaybillsResponse>, Status> {
        if let Route::Forward(ch) = route(&self.coordinator, &request).await? {
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
