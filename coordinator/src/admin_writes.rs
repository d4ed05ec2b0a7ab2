//! AdminService's admin-role answers: `cluster init` (which makes the first admin token),
//! tenants, operator tokens and the audit trail, and the audit record of a coordinator
//! membership change.

use surge_grpc::v1::{
    AuditRecord as AuditRecordMsg, CreateTenantRequest, CreateTenantResponse, CreateTokenRequest,
    CreateTokenResponse, InitClusterRequest, InitClusterResponse, ListAuditRequest,
    ListAuditResponse, ListTokensRequest, ListTokensResponse, MembershipResponse,
    OperatorTokenInfo, RevokeTokenRequest,
};
use surge_grpc::ApiError;
use tonic::Status;

use crate::access::{AuditRecord, OperatorToken, TokenRole, MAX_NAME};
use crate::admin_service::{AdminApi, MAX_REPLICAS, MAX_SHARDS};
use crate::coordinator::now_ms;
use crate::meta::{Command, Reply};
use crate::meta_state::META_GROUP;
use crate::operator_auth::{check_token, new_token, Actor};
use crate::tenant_keys::{check_tenant_name, key_hash, key_hint, new_api_key};

/// Most audit records one `audit list` answer carries.
pub const MAX_AUDIT_PAGE: u32 = 1_000;

pub(crate) fn unexpected(what: &str, reply: Reply) -> Status {
    ApiError::internal(format!("unexpected reply to {what}: {reply:?}")).into()
}

pub(crate) fn token_info(t: &OperatorToken) -> OperatorTokenInfo {
    OperatorTokenInfo {
        id: t.id,
        name: t.name.clone(),
        role: t.role.as_str().to_string(),
        created_at_ms: t.created_at_ms,
        created_by: t.created_by.clone(),
        revoked_at_ms: t.revoked_at_ms.unwrap_or(0),
    }
}

fn audit_record(r: AuditRecord) -> AuditRecordMsg {
    AuditRecordMsg {
        seq: r.seq,
        at_ms: r.entry.at_ms,
        actor: r.entry.actor,
        from: r.entry.from,
        action: r.entry.action,
        detail: r.entry.detail,
        outcome: r.outcome,
    }
}

impl AdminApi {
    pub(crate) async fn init(
        &self,
        req: InitClusterRequest,
        actor: Actor,
    ) -> Result<InitClusterResponse, Status> {
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
        if !req.admin_token.is_empty() {
            check_token("admin_token", &req.admin_token)?;
        }
        // An initialized cluster answers here, without a log entry: init needs no token, so
        // anything it proposed could be repeated by anyone (and flood the audit trail).
        if let Some(answer) = self.init_answered(&req).await? {
            return answer;
        }
        let admin_token = match req.admin_token.is_empty() {
            true => new_token(),
            false => req.admin_token,
        };
        let detail = format!("{} shards, {} replicas", req.shards, req.replicas);
        let cmd = Command::InitCluster {
            cluster_id: uuid::Uuid::new_v4().to_string(),
            shards: req.shards,
            replicas: req.replicas,
            token: req.request_token,
            at_ms: now_ms(),
            admin_token_hash: key_hash(&admin_token),
        };
        let audit = actor.audit("InitCluster", detail);
        match self.coordinator.propose_audited(audit, cmd).await? {
            Reply::Initialized(info) => {
                if let Ok(mut shared) = self.coordinator.cluster_id.write() {
                    *shared = info.cluster_id.clone();
                }
                Ok(InitClusterResponse {
                    cluster_id: info.cluster_id,
                    shards: info.shards,
                    replicas: info.replicas,
                    admin_token,
                })
            }
            other => Err(unexpected("init", other)),
        }
    }

    /// The answer to an init of a cluster that is initialized already: success for the retry
    /// of the init that made it (the same request token; its admin token echoed when it is the
    /// one the cluster holds), ALREADY_EXISTS otherwise. None while it is not initialized.
    async fn init_answered(
        &self,
        req: &InitClusterRequest,
    ) -> Result<Option<Result<InitClusterResponse, Status>>, Status> {
        let c = &self.coordinator;
        let admin_hash = key_hash(&req.admin_token);
        let (cluster, admin_known) = c
            .handle
            .read(META_GROUP, move |sm| {
                let known = sm.access.by_hash(&admin_hash).is_some();
                (sm.cluster.clone(), known)
            })
            .await
            .map_err(|e| c.map_request(e))?;
        let Some(info) = cluster else {
            return Ok(None);
        };
        if req.request_token.is_empty() || req.request_token != info.init_token {
            let refusal = crate::meta::MetaError::AlreadyInitialized {
                cluster_id: info.cluster_id,
            };
            return Ok(Some(Err(crate::error::from_meta(refusal).into())));
        }
        Ok(Some(Ok(InitClusterResponse {
            cluster_id: info.cluster_id,
            shards: info.shards,
            replicas: info.replicas,
            admin_token: match admin_known && !req.admin_token.is_empty() {
                true => req.admin_token.clone(),
                false => String::new(),
            },
        })))
    }

    pub(crate) async fn create_tenant_as(
        &self,
        req: CreateTenantRequest,
        actor: Actor,
    ) -> Result<CreateTenantResponse, Status> {
        check_tenant_name(&req.name)?;
        #[allow(deprecated)]
        if !req.api_key.is_empty() {
            return Err(ApiError::invalid_argument(
                "api_key",
                "keys are made by the cluster; leave it empty (send request_token so a retry \
                 is recognised)",
            )
            .into());
        }
        if req.request_token.len() > 128 {
            return Err(ApiError::invalid_argument("request_token", "at most 128 bytes").into());
        }
        let api_key = new_api_key();
        let cmd = Command::CreateTenant {
            name: req.name.clone(),
            key_hash: key_hash(&api_key),
            at_ms: now_ms(),
            request_token_hash: match req.request_token.is_empty() {
                true => String::new(),
                false => key_hash(&req.request_token),
            },
            key_hint: key_hint(&api_key),
        };
        let audit = actor.audit("CreateTenant", format!("tenant {}", req.name));
        match self.coordinator.propose_audited(audit, cmd).await? {
            Reply::TenantCreated { tenant_id, key_id } => {
                let key = self.tenant_key(tenant_id, key_id).await?;
                Ok(CreateTenantResponse {
                    tenant_id,
                    name: req.name,
                    api_key,
                    key,
                })
            }
            other => Err(unexpected("create tenant", other)),
        }
    }

    pub(crate) async fn create_token_as(
        &self,
        req: CreateTokenRequest,
        actor: Actor,
    ) -> Result<CreateTokenResponse, Status> {
        if req.name.is_empty()
            || req.name.len() > MAX_NAME
            || req.name.chars().any(char::is_control)
        {
            return Err(ApiError::invalid_argument(
                "name",
                format!("1 to {MAX_NAME} bytes without control characters"),
            )
            .into());
        }
        let Some(role) = TokenRole::parse(&req.role) else {
            return Err(ApiError::invalid_argument(
                "role",
                format!("one of admin, operator, viewer; got {:?}", req.role),
            )
            .into());
        };
        let token = new_token();
        let cmd = Command::CreateToken {
            name: req.name.clone(),
            role,
            hash: key_hash(&token),
            created_by: actor.name.clone(),
            at_ms: now_ms(),
        };
        let audit = actor.audit(
            "CreateToken",
            format!("{} token {:?}", role.as_str(), req.name),
        );
        let id = match self.coordinator.propose_audited(audit, cmd).await? {
            Reply::TokenCreated { id } => id,
            other => return Err(unexpected("create token", other)),
        };
        let info = self
            .read_tokens(true)
            .await?
            .into_iter()
            .find(|t| t.id == id);
        Ok(CreateTokenResponse { info, token })
    }

    pub(crate) async fn read_tokens(
        &self,
        include_revoked: bool,
    ) -> Result<Vec<OperatorTokenInfo>, Status> {
        let c = &self.coordinator;
        let tokens = c
            .handle
            .read(META_GROUP, move |sm| {
                sm.access
                    .tokens
                    .values()
                    .filter(|t| include_revoked || t.revoked_at_ms.is_none())
                    .map(token_info)
                    .collect()
            })
            .await
            .map_err(|e| c.map_request(e))?;
        Ok(tokens)
    }

    pub(crate) async fn list_tokens_as(
        &self,
        req: ListTokensRequest,
    ) -> Result<ListTokensResponse, Status> {
        Ok(ListTokensResponse {
            tokens: self.read_tokens(req.include_revoked).await?,
        })
    }

    pub(crate) async fn revoke_token_as(
        &self,
        req: RevokeTokenRequest,
        actor: Actor,
    ) -> Result<OperatorTokenInfo, Status> {
        let cmd = Command::RevokeToken {
            id: req.id,
            at_ms: now_ms(),
        };
        let audit = actor.audit("RevokeToken", format!("token {}", req.id));
        match self.coordinator.propose_audited(audit, cmd).await? {
            Reply::Token(t) => Ok(token_info(&t)),
            other => Err(unexpected("revoke token", other)),
        }
    }

    pub(crate) async fn list_audit_as(
        &self,
        req: ListAuditRequest,
    ) -> Result<ListAuditResponse, Status> {
        if req.limit > MAX_AUDIT_PAGE {
            return Err(ApiError::invalid_argument(
                "limit",
                format!("at most {MAX_AUDIT_PAGE}, got {}", req.limit),
            )
            .into());
        }
        let limit = if req.limit == 0 { 100 } else { req.limit } as usize;
        let c = &self.coordinator;
        let records = c
            .handle
            .read(META_GROUP, move |sm| {
                sm.access.recent(req.before_seq, limit)
            })
            .await
            .map_err(|e| c.map_request(e))?;
        Ok(ListAuditResponse {
            records: records.into_iter().map(audit_record).collect(),
        })
    }

    /// Records a coordinator membership change (a Raft conf change, not a command) once it
    /// is done or refused. A record that cannot be written is logged: the change stands.
    pub(crate) async fn audit_membership(
        &self,
        action: &str,
        id: u64,
        actor: &Actor,
        result: &Result<MembershipResponse, Status>,
    ) {
        let detail = match result {
            Ok(_) => format!("coordinator {id}"),
            Err(s) => format!("coordinator {id}; refused: {}", s.message()),
        };
        let audit = actor.audit(action, detail);
        if let Err(e) = self.coordinator.propose(Command::Audit(audit)).await {
            tracing::warn!(action, id, error = %e.message(), "could not write the audit record");
        }
    }
}
