//! `AdminService`: what operators call. Any coordinator accepts it; a follower forwards the call
//! once to the leader, or answers UNAVAILABLE with a leader hint.

use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use surge_grpc::v1::admin_service_client::AdminServiceClient;
use surge_grpc::v1::admin_service_server::AdminService;
use surge_grpc::v1::coordinator_peer_service_client::CoordinatorPeerServiceClient;
use surge_grpc::v1::{
    AddCoordinatorRequest, AddWaybillRangeRequest, CancelOperatorRequest, ClusterConfig,
    ClusterStatusRequest, ClusterStatusResponse, CoordinatorStatus, CreateOperatorRequest,
    CreateTenantRequest, CreateTenantResponse, DrainNodeRequest, GetShardRequest,
    GetTenantRulesRequest, GetTenantRulesResponse, InitClusterRequest, InitClusterResponse,
    ListNodesRequest, ListNodesResponse, ListOperatorsRequest, ListOperatorsResponse,
    ListShardsRequest, ListShardsResponse, ListTenantsRequest, ListTenantsResponse,
    LocalStatusRequest, MembershipResponse, NodeStatus, OperatorInfo, RemoveCoordinatorRequest,
    RemoveNodeRequest, SetClusterConfigRequest, SetTenantRulesRequest, SetTenantRulesResponse,
    ShardDetail, TenantInfo, WaybillRangeStatus, WaybillStatusRequest, WaybillStatusResponse,
};
use surge_grpc::ApiError;
use tonic::{Request, Response, Status};

use crate::coordinator::{now_ms, Coordinator};
use crate::dispatch::{forwarded, forwarded_within, hop, route, Route, FORWARD_MEMBERSHIP_TIMEOUT};
use crate::error::check_address;
use crate::membership;
use crate::meta::{Command, CoordinatorInfo, Reply};
use crate::meta_state::META_GROUP;
use crate::node_service::shard_status;
use crate::tenant_keys::{check_api_key, check_tenant_name, key_hash, new_api_key};

/// Shard counts and replication factors `cluster init` accepts.
pub const MAX_SHARDS: u32 = 4096;
pub const MAX_REPLICAS: u32 = 7;

pub struct AdminApi {
    pub coordinator: Arc<Coordinator>,
}

impl AdminApi {
    async fn nodes(&self) -> Result<Vec<NodeStatus>, Status> {
        self.coordinator.node_statuses().await
    }

    /// Coordinator `id`'s own status, asked at its peer port.
    async fn peer_status(&self, id: u64, info: Option<CoordinatorInfo>) -> CoordinatorStatus {
        let info = info.unwrap_or(CoordinatorInfo {
            id,
            address: String::new(),
            http_address: String::new(),
            peer_address: String::new(),
        });
        let unreachable = CoordinatorStatus {
            id,
            address: info.address.clone(),
            peer_address: info.peer().to_string(),
            role: "unreachable".into(),
            ..Default::default()
        };
        let Ok(channel) = self.coordinator.channel(info.peer()) else {
            return unreachable;
        };
        let mut client = CoordinatorPeerServiceClient::new(channel);
        let mut request = Request::new(LocalStatusRequest {});
        request.set_timeout(Duration::from_millis(800));
        match tokio::time::timeout(Duration::from_secs(1), client.local_status(request)).await {
            Ok(Ok(resp)) => resp.into_inner(),
            _ => unreachable,
        }
    }
}

#[tonic::async_trait]
impl AdminService for AdminApi {
    async fn init_cluster(
        &self,
        request: Request<InitClusterRequest>,
    ) -> Result<Response<InitClusterResponse>, Status> {
        if let Route::Forward(ch) = route(&self.coordinator, &request).await? {
            return hop(AdminServiceClient::new(ch)
                .init_cluster(forwarded(request.into_inner()))
                .await);
        }
        let req = request.into_inner();
        if req.shards == 0 || req.shards > MAX_SHARDS {
            return Err(ApiError::invalid_argument(
                "shards",
                format!("must be between 1 and {MAX_SHARDS}, got {}", req.shards),
            )
            .into());
        }
        if req.replicas == 0 || req.replicas > MAX_REPLICAS {
            return Err(ApiError::invalid_argument(
                "replicas",
                format!("must be between 1 and {MAX_REPLICAS}, got {}", req.replicas),
            )
            .into());
        }
        if req.request_token.len() > 128 {
            return Err(ApiError::invalid_argument("request_token", "at most 128 bytes").into());
        }
        let cmd = Command::InitCluster {
            cluster_id: uuid::Uuid::new_v4().to_string(),
            shards: req.shards,
            replicas: req.replicas,
            token: req.request_token,
            at_ms: now_ms(),
        };
        match self.coordinator.propose(cmd).await? {
            Reply::Initialized(info) => {
                if let Ok(mut shared) = self.coordinator.cluster_id.write() {
                    *shared = info.cluster_id.clone();
                }
                Ok(Response::new(InitClusterResponse {
                    cluster_id: info.cluster_id,
                    shards: info.shards,
                    replicas: info.replicas,
                }))
            }
            other => Err(ApiError::internal(format!("unexpected reply to init: {other:?}")).into()),
        }
    }

    async fn cluster_status(
        &self,
        request: Request<ClusterStatusRequest>,
    ) -> Result<Response<ClusterStatusResponse>, Status> {
        if let Route::Forward(ch) = route(&self.coordinator, &request).await? {
            return hop(AdminServiceClient::new(ch)
                .cluster_status(forwarded(request.into_inner()))
                .await);
        }
        let c = &self.coordinator;
        let (cluster, members, shards) = c
            .handle
            .read(META_GROUP, |sm| {
                (
                    sm.cluster.clone(),
                    sm.coordinators.clone(),
                    sm.shards.clone(),
                )
            })
            .await
            .map_err(|e| c.map_request(e))?;
        let voters = c
            .handle
            .inspect(META_GROUP, |p| {
                let cs = p.conf_state();
                let mut ids: Vec<u64> = cs
                    .voters
                    .iter()
                    .chain(&cs.voters_outgoing)
                    .chain(&cs.learners)
                    .copied()
                    .collect();
                ids.sort_unstable();
                ids.dedup();
                ids
            })
            .await
            .map_err(|e| c.map_request(e))?;
        let mut coordinators = Vec::with_capacity(voters.len());
        let mut lookups = Vec::new();
        for id in voters {
            if id == c.config.id {
                coordinators.push(c.local_status().await?);
            } else {
                let info = members.get(&id).cloned().or_else(|| c.info_of(id));
                lookups.push(self.peer_status(id, info));
            }
        }
        coordinators.extend(join_all(lookups).await);
        coordinators.sort_by_key(|s| s.id);
        let nodes = self.nodes().await?;
        let (rebalance, config) = c.rebalance_progress().await?;
        let leaders = c.reports.leaders();
        Ok(Response::new(ClusterStatusResponse {
            initialized: cluster.is_some(),
            cluster_id: cluster
                .as_ref()
                .map(|i| i.cluster_id.clone())
                .unwrap_or_default(),
            shard_count: cluster.as_ref().map_or(0, |i| i.shards),
            replicas: cluster.as_ref().map_or(0, |i| i.replicas),
            leader_id: c.config.id,
            coordinators,
            nodes,
            shards: shards
                .values()
                .map(|s| shard_status(s, leaders.get(&s.id).copied().unwrap_or(0)))
                .collect(),
            rebalance: Some(rebalance),
            config: Some(config),
        }))
    }

    async fn list_nodes(
        &self,
        request: Request<ListNodesRequest>,
    ) -> Result<Response<ListNodesResponse>, Status> {
        if let Route::Forward(ch) = route(&self.coordinator, &request).await? {
            return hop(AdminServiceClient::new(ch)
                .list_nodes(forwarded(request.into_inner()))
                .await);
        }
        Ok(Response::new(ListNodesResponse {
            nodes: self.nodes().await?,
        }))
    }

    async fn add_coordinator(
        &self,
        request: Request<AddCoordinatorRequest>,
    ) -> Result<Response<MembershipResponse>, Status> {
        if let Route::Forward(ch) = route(&self.coordinator, &request).await? {
            return hop(AdminServiceClient::new(ch)
                .add_coordinator(forwarded_within(
                    request.into_inner(),
                    FORWARD_MEMBERSHIP_TIMEOUT,
                ))
                .await);
        }
        let req = request.into_inner();
        if req.id == 0 {
            return Err(ApiError::invalid_argument("id", "must be greater than 0").into());
        }
        check_address("address", &req.address)?;
        check_address("peer_address", &req.peer_address)?;
        if !req.http_address.is_empty() {
            check_address("http_address", &req.http_address)?;
        }
        membership::add(&self.coordinator, req)
            .await
            .map(Response::new)
    }

    async fn remove_coordinator(
        &self,
        request: Request<RemoveCoordinatorRequest>,
    ) -> Result<Response<MembershipResponse>, Status> {
        if let Route::Forward(ch) = route(&self.coordinator, &request).await? {
            return hop(AdminServiceClient::new(ch)
                .remove_coordinator(forwarded_within(
                    request.into_inner(),
                    FORWARD_MEMBERSHIP_TIMEOUT,
                ))
                .await);
        }
        let req = request.into_inner();
        if req.id == 0 {
            return Err(ApiError::invalid_argument("id", "must be greater than 0").into());
        }
        membership::remove(&self.coordinator, req.id)
            .await
            .map(Response::new)
    }

    async fn create_tenant(
        &self,
        request: Request<CreateTenantRequest>,
    ) -> Result<Response<CreateTenantResponse>, Status> {
        if let Route::Forward(ch) = route(&self.coordinator, &request).await? {
            return hop(AdminServiceClient::new(ch)
                .create_tenant(forwarded(request.into_inner()))
                .await);
        }
        let req = request.into_inner();
        check_tenant_name(&req.name)?;
        let api_key = if req.api_key.is_empty() {
            new_api_key()
        } else {
            req.api_key
        };
        check_api_key(&api_key)?;
        let cmd = Command::CreateTenant {
            name: req.name.clone(),
            key_hash: key_hash(&api_key),
            at_ms: now_ms(),
        };
        match self.coordinator.propose(cmd).await? {
            Reply::TenantCreated { tenant_id } => Ok(Response::new(CreateTenantResponse {
                tenant_id,
                name: req.name,
                api_key,
            })),
            other => Err(ApiError::internal(format!(
                "unexpected reply to create tenant: {other:?}"
            ))
            .into()),
        }
    }

    async fn set_tenant_rules(
        &self,
        request: Request<SetTenantRulesRequest>,
    ) -> Result<Response<SetTenantRulesResponse>, Status> {
        if let Route::Forward(ch) = route(&self.coordinator, &request).await? {
            return hop(AdminServiceClient::new(ch)
                .set_tenant_rules(forwarded(request.into_inner()))
                .await);
        }
        self.coordinator
            .set_tenant_rules(request.into_inner())
            .await
            .map(Response::new)
    }

    async fn get_tenant_rules(
        &self,
        request: Request<GetTenantRulesRequest>,
    ) -> Result<Response<GetTenantRulesResponse>, Status> {
        if let Route::Forward(ch) = route(&self.coordinator, &request).await? {
            return hop(AdminServiceClient::new(ch)
                .get_tenant_rules(forwarded(request.into_inner()))
                .await);
        }
        self.coordinator
            .get_tenant_rules(request.into_inner())
            .await
            .map(Response::new)
    }

    async fn add_waybill_range(
        &self,
        request: Request<AddWaybillRangeRequest>,
    ) -> Result<Response<WaybillRangeStatus>, Status> {
        if let Route::Forward(ch) = route(&self.coordinator, &request).await? {
            return hop(AdminServiceClient::new(ch)
                .add_waybill_range(forwarded(request.into_inner()))
                .await);
        }
        self.coordinator
            .add_waybill_range(request.into_inner())
            .await
            .map(Response::new)
    }

    async fn waybill_status(
        &self,
        request: Request<WaybillStatusRequest>,
    ) -> Result<Response<WaybillStatusResponse>, Status> {
        if let Route::Forward(ch) = route(&self.coordinator, &request).await? {
            return hop(AdminServiceClient::new(ch)
                .waybill_status(forwarded(request.into_inner()))
                .await);
        }
        self.coordinator
            .waybill_status(request.into_inner())
            .await
            .map(Response::new)
    }

    async fn list_shards(
        &self,
        request: Request<ListShardsRequest>,
    ) -> Result<Response<ListShardsResponse>, Status> {
        if let Route::Forward(ch) = route(&self.coordinator, &request).await? {
            return hop(AdminServiceClient::new(ch)
                .list_shards(forwarded(request.into_inner()))
                .await);
        }
        self.coordinator.list_shards().await.map(Response::new)
    }

    async fn get_shard(
        &self,
        request: Request<GetShardRequest>,
    ) -> Result<Response<ShardDetail>, Status> {
        if let Route::Forward(ch) = route(&self.coordinator, &request).await? {
            return hop(AdminServiceClient::new(ch)
                .get_shard(forwarded(request.into_inner()))
                .await);
        }
        let id = request.get_ref().id;
        self.coordinator.get_shard(id).await.map(Response::new)
    }

    async fn list_operators(
        &self,
        request: Request<ListOperatorsRequest>,
    ) -> Result<Response<ListOperatorsResponse>, Status> {
        if let Route::Forward(ch) = route(&self.coordinator, &request).await? {
            return hop(AdminServiceClient::new(ch)
                .list_operators(forwarded(request.into_inner()))
                .await);
        }
        let all = request.get_ref().include_finished;
        self.coordinator
            .list_operators(all)
            .await
            .map(Response::new)
    }

    async fn create_operator(
        &self,
        request: Request<CreateOperatorRequest>,
    ) -> Result<Response<OperatorInfo>, Status> {
        if let Route::Forward(ch) = route(&self.coordinator, &request).await? {
            return hop(AdminServiceClient::new(ch)
                .create_operator(forwarded(request.into_inner()))
                .await);
        }
        self.coordinator
            .create_operator(request.into_inner())
            .await
            .map(Response::new)
    }

    async fn cancel_operator(
        &self,
        request: Request<CancelOperatorRequest>,
    ) -> Result<Response<OperatorInfo>, Status> {
        if let Route::Forward(ch) = route(&self.coordinator, &request).await? {
            return hop(AdminServiceClient::new(ch)
                .cancel_operator(forwarded(request.into_inner()))
                .await);
        }
        let id = request.get_ref().id;
        self.coordinator
            .cancel_operator(id)
            .await
            .map(Response::new)
    }

    async fn drain_node(
        &self,
        request: Request<DrainNodeRequest>,
    ) -> Result<Response<NodeStatus>, Status> {
        if let Route::Forward(ch) = route(&self.coordinator, &request).await? {
            return hop(AdminServiceClient::new(ch)
                .drain_node(forwarded(request.into_inner()))
                .await);
        }
        let id = request.get_ref().id;
        self.coordinator.drain_node(id).await.map(Response::new)
    }

    async fn remove_node(
        &self,
        request: Request<RemoveNodeRequest>,
    ) -> Result<Response<NodeStatus>, Status> {
        if let Route::Forward(ch) = route(&self.coordinator, &request).await? {
            return hop(AdminServiceClient::new(ch)
                .remove_node(forwarded(request.into_inner()))
                .await);
        }
        let id = request.get_ref().id;
        self.coordinator.remove_node(id).await.map(Response::new)
    }

    async fn set_cluster_config(
        &self,
        request: Request<SetClusterConfigRequest>,
    ) -> Result<Response<ClusterConfig>, Status> {
        if let Route::Forward(ch) = route(&self.coordinator, &request).await? {
            return hop(AdminServiceClient::new(ch)
                .set_cluster_config(forwarded(request.into_inner()))
                .await);
        }
        self.coordinator
            .set_cluster_config(request.into_inner())
            .await
            .map(Response::new)
    }

    async fn list_tenants(
        &self,
        request: Request<ListTenantsRequest>,
    ) -> Result<Response<ListTenantsResponse>, Status> {
        if let Route::Forward(ch) = route(&self.coordinator, &request).await? {
            return hop(AdminServiceClient::new(ch)
                .list_tenants(forwarded(request.into_inner()))
                .await);
        }
        let c = &self.coordinator;
        let tenants = c
            .handle
            .read(META_GROUP, |sm| {
                sm.tenants
                    .values()
                    .map(|t| TenantInfo {
                        id: t.id,
                        name: t.name.clone(),
                        created_at_ms: t.created_at_ms,
                        api_keys: t.key_hashes.len() as u32,
                    })
                    .collect()
            })
            .await
            .map_err(|e| c.map_request(e))?;
        Ok(Response::new(ListTenantsResponse { tenants }))
    }
}
