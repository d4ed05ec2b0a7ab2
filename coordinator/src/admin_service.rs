//! `AdminService`: what operators call. Any coordinator accepts it; a follower forwards the call
//! once to the leader (with the caller's token and address), or answers UNAVAILABLE with a
//! leader hint. The leader checks the operator token and its role ([`crate::operator_auth`])
//! and proposes every change with its audit record. The answers are in [`crate::admin_reads`],
//! [`crate::admin_writes`], [`crate::cluster_ops`] and [`crate::tenant_ops`].

use std::sync::Arc;

use surge_grpc::v1::admin_service_client::AdminServiceClient;
use surge_grpc::v1::admin_service_server::AdminService;
use surge_grpc::v1::{
    AddCoordinatorRequest, AddWaybillRangeRequest, CancelOperatorRequest, ClusterConfig,
    ClusterStatusRequest, ClusterStatusResponse, CreateOperatorRequest, CreateTenantRequest,
    CreateTenantResponse, CreateTokenRequest, CreateTokenResponse, DrainNodeRequest,
    GetShardRequest, GetTenantRulesRequest, GetTenantRulesResponse, InitClusterRequest,
    InitClusterResponse, ListAuditRequest, ListAuditResponse, ListNodesRequest, ListNodesResponse,
    ListOperatorsRequest, ListOperatorsResponse, ListShardsRequest, ListShardsResponse,
    ListTenantsRequest, ListTenantsResponse, ListTokensRequest, ListTokensResponse,
    MembershipResponse, NodeStatus, OperatorInfo, OperatorTokenInfo, RemoveCoordinatorRequest,
    RemoveNodeRequest, RevokeTokenRequest, SetClusterConfigRequest, SetTenantRulesRequest,
    SetTenantRulesResponse, ShardDetail, WaybillRangeStatus, WaybillStatusRequest,
    WaybillStatusResponse,
};
use surge_grpc::v1::{
    AddTenantKeyRequest, AddTenantKeyResponse, ListTenantKeysRequest, ListTenantKeysResponse,
    RevokeTenantKeyRequest, SetTenantLimitsRequest, TenantKeyInfo, TenantLimitsResponse,
};
use surge_grpc::ApiError;
use tonic::{Request, Response, Status};

use crate::access::TokenRole::{Admin, Operator, Viewer};
use crate::coordinator::Coordinator;
use crate::dispatch::{
    forward_admin, hop, route, Route, FORWARD_MEMBERSHIP_TIMEOUT, FORWARD_TIMEOUT,
};
use crate::error::check_address;
use crate::membership;
use crate::operator_auth::{authorize, bootstrap, refuse_nodes};

/// Shard counts and replication factors `cluster init` accepts.
pub const MAX_SHARDS: u32 = 4096;
pub const MAX_REPLICAS: u32 = 7;

pub struct AdminApi {
    pub coordinator: Arc<Coordinator>,
}

/// Forwards the call to the leader unless this coordinator is it; at the leader, checks that
/// the token grants `$role` and binds the caller to `$actor`.
macro_rules! at_leader {
    ($self:ident, $request:ident, $method:ident, $role:expr, $name:literal) => {
        at_leader!($self, $request, $method, $role, $name, FORWARD_TIMEOUT)
    };
    ($self:ident, $request:ident, $method:ident, $role:expr, $name:literal, $timeout:expr) => {{
        refuse_nodes(&$request, $name)?;
        if let Route::Forward(ch) = route(&$self.coordinator, &$request).await? {
            let forwarded = forward_admin($request, $timeout);
            return hop(AdminServiceClient::new(ch).$method(forwarded).await);
        }
        authorize(&$self.coordinator, &$request, $role, $name).await?
    }};
}

#[tonic::async_trait]
impl AdminService for AdminApi {
    async fn init_cluster(
        &self,
        request: Request<InitClusterRequest>,
    ) -> Result<Response<InitClusterResponse>, Status> {
        // No token exists before init; only the init that creates the cluster makes one.
        refuse_nodes(&request, "InitCluster")?;
        if let Route::Forward(ch) = route(&self.coordinator, &request).await? {
            let forwarded = forward_admin(request, FORWARD_TIMEOUT);
            return hop(AdminServiceClient::new(ch).init_cluster(forwarded).await);
        }
        let actor = bootstrap(&request);
        self.init(request.into_inner(), actor)
            .await
            .map(Response::new)
    }

    async fn cluster_status(
        &self,
        request: Request<ClusterStatusRequest>,
    ) -> Result<Response<ClusterStatusResponse>, Status> {
        at_leader!(self, request, cluster_status, Viewer, "ClusterStatus");
        self.status().await.map(Response::new)
    }

    async fn list_nodes(
        &self,
        request: Request<ListNodesRequest>,
    ) -> Result<Response<ListNodesResponse>, Status> {
        at_leader!(self, request, list_nodes, Viewer, "ListNodes");
        let nodes = self.coordinator.node_statuses().await?;
        Ok(Response::new(ListNodesResponse { nodes }))
    }

    async fn add_coordinator(
        &self,
        request: Request<AddCoordinatorRequest>,
    ) -> Result<Response<MembershipResponse>, Status> {
        let timeout = FORWARD_MEMBERSHIP_TIMEOUT;
        let actor = at_leader!(
            self,
            request,
            add_coordinator,
            Admin,
            "AddCoordinator",
            timeout
        );
        let req = request.into_inner();
        if req.id == 0 {
            return Err(ApiError::invalid_argument("id", "must be greater than 0").into());
        }
        check_address("address", &req.address)?;
        check_address("peer_address", &req.peer_address)?;
        if !req.http_address.is_empty() {
            check_address("http_address", &req.http_address)?;
        }
        let id = req.id;
        let result = membership::add(&self.coordinator, req).await;
        self.audit_membership("AddCoordinator", id, &actor, &result)
            .await;
        result.map(Response::new)
    }

    async fn remove_coordinator(
        &self,
        request: Request<RemoveCoordinatorRequest>,
    ) -> Result<Response<MembershipResponse>, Status> {
        let timeout = FORWARD_MEMBERSHIP_TIMEOUT;
        let actor = at_leader!(
            self,
            request,
            remove_coordinator,
            Admin,
            "RemoveCoordinator",
            timeout
        );
        let id = request.get_ref().id;
        if id == 0 {
            return Err(ApiError::invalid_argument("id", "must be greater than 0").into());
        }
        let result = membership::remove(&self.coordinator, id).await;
        self.audit_membership("RemoveCoordinator", id, &actor, &result)
            .await;
        result.map(Response::new)
    }

    async fn create_tenant(
        &self,
        request: Request<CreateTenantRequest>,
    ) -> Result<Response<CreateTenantResponse>, Status> {
        let actor = at_leader!(self, request, create_tenant, Admin, "CreateTenant");
        self.create_tenant_as(request.into_inner(), actor)
            .await
            .map(Response::new)
    }

    async fn add_tenant_key(
        &self,
        request: Request<AddTenantKeyRequest>,
    ) -> Result<Response<AddTenantKeyResponse>, Status> {
        let actor = at_leader!(self, request, add_tenant_key, Admin, "AddTenantKey");
        self.add_tenant_key_as(request.into_inner(), actor)
            .await
            .map(Response::new)
    }

    async fn list_tenant_keys(
        &self,
        request: Request<ListTenantKeysRequest>,
    ) -> Result<Response<ListTenantKeysResponse>, Status> {
        at_leader!(self, request, list_tenant_keys, Admin, "ListTenantKeys");
        self.list_tenant_keys_as(request.into_inner())
            .await
            .map(Response::new)
    }

    async fn revoke_tenant_key(
        &self,
        request: Request<RevokeTenantKeyRequest>,
    ) -> Result<Response<TenantKeyInfo>, Status> {
        let actor = at_leader!(self, request, revoke_tenant_key, Admin, "RevokeTenantKey");
        self.revoke_tenant_key_as(request.into_inner(), actor)
            .await
            .map(Response::new)
    }

    async fn set_tenant_limits(
        &self,
        request: Request<SetTenantLimitsRequest>,
    ) -> Result<Response<TenantLimitsResponse>, Status> {
        let actor = at_leader!(
            self,
            request,
            set_tenant_limits,
            Operator,
            "SetTenantLimits"
        );
        self.set_tenant_limits_as(request.into_inner(), actor)
            .await
            .map(Response::new)
    }

    async fn set_tenant_rules(
        &self,
        request: Request<SetTenantRulesRequest>,
    ) -> Result<Response<SetTenantRulesResponse>, Status> {
        let actor = at_leader!(self, request, set_tenant_rules, Operator, "SetTenantRules");
        let req = request.into_inner();
        let audit = actor.audit("SetTenantRules", format!("tenant {} rules", req.tenant));
        self.coordinator
            .set_tenant_rules(req, audit)
            .await
            .map(Response::new)
    }

    async fn get_tenant_rules(
        &self,
        request: Request<GetTenantRulesRequest>,
    ) -> Result<Response<GetTenantRulesResponse>, Status> {
        at_leader!(self, request, get_tenant_rules, Viewer, "GetTenantRules");
        self.coordinator
            .get_tenant_rules(request.into_inner())
            .await
            .map(Response::new)
    }

    async fn add_waybill_range(
        &self,
        request: Request<AddWaybillRangeRequest>,
    ) -> Result<Response<WaybillRangeStatus>, Status> {
        let actor = at_leader!(
            self,
            request,
            add_waybill_range,
            Operator,
            "AddWaybillRange"
        );
        let req = request.into_inner();
        let detail = format!(
            "tenant {} carrier {} {}{}-{}",
            req.tenant, req.carrier, req.prefix, req.from, req.to
        );
        let audit = actor.audit("AddWaybillRange", detail);
        self.coordinator
            .add_waybill_range(req, audit)
            .await
            .map(Response::new)
    }

    async fn waybill_status(
        &self,
        request: Request<WaybillStatusRequest>,
    ) -> Result<Response<WaybillStatusResponse>, Status> {
        at_leader!(self, request, waybill_status, Viewer, "WaybillStatus");
        self.coordinator
            .waybill_status(request.into_inner())
            .await
            .map(Response::new)
    }

    async fn list_shards(
        &self,
        request: Request<ListShardsRequest>,
    ) -> Result<Response<ListShardsResponse>, Status> {
        at_leader!(self, request, list_shards, Viewer, "ListShards");
        self.coordinator.list_shards().await.map(Response::new)
    }

    async fn get_shard(
        &self,
        request: Request<GetShardRequest>,
    ) -> Result<Response<ShardDetail>, Status> {
        at_leader!(self, request, get_shard, Viewer, "GetShard");
        let id = request.get_ref().id;
        self.coordinator.get_shard(id).await.map(Response::new)
    }

    async fn list_operators(
        &self,
        request: Request<ListOperatorsRequest>,
    ) -> Result<Response<ListOperatorsResponse>, Status> {
        at_leader!(self, request, list_operators, Viewer, "ListOperators");
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
        let actor = at_leader!(self, request, create_operator, Operator, "CreateOperator");
        let req = request.into_inner();
        let detail = format!(
            "shard {}: {} from node {} to node {}",
            req.shard, req.kind, req.from_node, req.to_node
        );
        let audit = actor.audit("CreateOperator", detail);
        self.coordinator
            .create_operator(req, audit)
            .await
            .map(Response::new)
    }

    async fn cancel_operator(
        &self,
        request: Request<CancelOperatorRequest>,
    ) -> Result<Response<OperatorInfo>, Status> {
        let actor = at_leader!(self, request, cancel_operator, Operator, "CancelOperator");
        let id = request.get_ref().id;
        let audit = actor.audit("CancelOperator", format!("operator {id}"));
        self.coordinator
            .cancel_operator(id, audit)
            .await
            .map(Response::new)
    }

    async fn drain_node(
        &self,
        request: Request<DrainNodeRequest>,
    ) -> Result<Response<NodeStatus>, Status> {
        let actor = at_leader!(self, request, drain_node, Operator, "DrainNode");
        let id = request.get_ref().id;
        let audit = actor.audit("DrainNode", format!("node {id}"));
        self.coordinator
            .drain_node(id, audit)
            .await
            .map(Response::new)
    }

    async fn remove_node(
        &self,
        request: Request<RemoveNodeRequest>,
    ) -> Result<Response<NodeStatus>, Status> {
        let actor = at_leader!(self, request, remove_node, Operator, "RemoveNode");
        let id = request.get_ref().id;
        let audit = actor.audit("RemoveNode", format!("node {id}"));
        self.coordinator
            .remove_node(id, audit)
            .await
            .map(Response::new)
    }

    async fn set_cluster_config(
        &self,
        request: Request<SetClusterConfigRequest>,
    ) -> Result<Response<ClusterConfig>, Status> {
        let actor = at_leader!(
            self,
            request,
            set_cluster_config,
            Operator,
            "SetClusterConfig"
        );
        let req = request.into_inner();
        let audit = actor.audit("SetClusterConfig", format!("{req:?}"));
        self.coordinator
            .set_cluster_config(req, audit)
            .await
            .map(Response::new)
    }

    async fn list_tenants(
        &self,
        request: Request<ListTenantsRequest>,
    ) -> Result<Response<ListTenantsResponse>, Status> {
        at_leader!(self, request, list_tenants, Viewer, "ListTenants");
        self.tenants().await.map(Response::new)
    }

    async fn create_token(
        &self,
        request: Request<CreateTokenRequest>,
    ) -> Result<Response<CreateTokenResponse>, Status> {
        let actor = at_leader!(self, request, create_token, Admin, "CreateToken");
        self.create_token_as(request.into_inner(), actor)
            .await
            .map(Response::new)
    }

    async fn list_tokens(
        &self,
        request: Request<ListTokensRequest>,
    ) -> Result<Response<ListTokensResponse>, Status> {
        at_leader!(self, request, list_tokens, Admin, "ListTokens");
        self.list_tokens_as(request.into_inner())
            .await
            .map(Response::new)
    }

    async fn revoke_token(
        &self,
        request: Request<RevokeTokenRequest>,
    ) -> Result<Response<OperatorTokenInfo>, Status> {
        let actor = at_leader!(self, request, revoke_token, Admin, "RevokeToken");
        self.revoke_token_as(request.into_inner(), actor)
            .await
            .map(Response::new)
    }

    async fn list_audit(
        &self,
        request: Request<ListAuditRequest>,
    ) -> Result<Response<ListAuditResponse>, Status> {
        at_leader!(self, request, list_audit, Admin, "ListAudit");
        self.list_audit_as(request.into_inner())
            .await
            .map(Response::new)
    }
}
