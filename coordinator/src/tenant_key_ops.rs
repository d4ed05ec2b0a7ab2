//! A tenant's API keys and admission limits, as the admin API serves them: `tenant key
//! add|list|revoke` and `tenant limits set`. Keys are made here from 256 random bits and shown
//! once; the log and the rows keep their digests, the answers only id, scopes, label, hint and
//! times.

use surge_grpc::v1::{
    AddTenantKeyRequest, AddTenantKeyResponse, ListTenantKeysRequest, ListTenantKeysResponse,
    RevokeTenantKeyRequest, SetTenantLimitsRequest, TenantKeyInfo, TenantLimits as LimitsMsg,
    TenantLimitsResponse,
};
use surge_grpc::ApiError;
use tonic::Status;

use crate::admin_service::AdminApi;
use crate::admin_writes::unexpected;
use crate::coordinator::now_ms;
use crate::meta::{Command, Reply};
use crate::meta_state::META_GROUP;
use crate::operator_auth::Actor;
use crate::tenant_keys::{key_hash, key_hint, new_api_key};
use surge_meta::tenant_keys::{KeyScope, TenantKey, FIRST_KEY_LABEL};
use surge_meta::tenant_limits::TenantLimits;

/// Longest key label, in bytes.
pub const MAX_KEY_LABEL: usize = 64;

pub(crate) fn key_info(k: &TenantKey) -> TenantKeyInfo {
    TenantKeyInfo {
        id: k.id,
        scopes: k.scopes.iter().map(|s| s.as_str().to_string()).collect(),
        label: k.label.clone(),
        hint: k.hint.clone(),
        created_at_ms: k.created_at_ms,
        revoked_at_ms: k.revoked_at_ms.unwrap_or(0),
    }
}

/// A tenant's limits on the wire.
pub(crate) fn limits_msg(l: &TenantLimits) -> LimitsMsg {
    LimitsMsg {
        orders_per_sec: l.orders_per_sec,
        orders_burst: l.orders_burst,
        streams: l.streams,
        reads_per_sec: l.reads_per_sec,
    }
}

/// The scopes a request names: at least one, each known, no repeats.
fn parse_scopes(names: &[String]) -> Result<Vec<KeyScope>, Status> {
    if names.is_empty() {
        return Err(ApiError::invalid_argument(
            "scopes",
            "at least one of orders, print, read-only",
        )
        .into());
    }
    let mut scopes = Vec::with_capacity(names.len());
    for name in names {
        let scope = KeyScope::parse(name).ok_or_else(|| {
            ApiError::invalid_argument(
                "scopes",
                format!("unknown scope {name:?}; one of orders, print, read-only"),
            )
        })?;
        if !scopes.contains(&scope) {
            scopes.push(scope);
        }
    }
    scopes.sort();
    Ok(scopes)
}

impl AdminApi {
    /// Key `key_id` of tenant `tenant_id`, as operators see it.
    pub(crate) async fn tenant_key(
        &self,
        tenant_id: u64,
        key_id: u64,
    ) -> Result<Option<TenantKeyInfo>, Status> {
        let c = &self.coordinator;
        c.handle
            .read(META_GROUP, move |sm| {
                let tenant = sm.tenants.get(&tenant_id)?;
                tenant.keys.iter().find(|k| k.id == key_id).map(key_info)
            })
            .await
            .map_err(|e| c.map_request(e).into())
    }

    pub(crate) async fn add_tenant_key_as(
        &self,
        req: AddTenantKeyRequest,
        actor: Actor,
    ) -> Result<AddTenantKeyResponse, Status> {
        let scopes = parse_scopes(&req.scopes)?;
        if req.label.len() > MAX_KEY_LABEL || req.label.chars().any(char::is_control) {
            return Err(ApiError::invalid_argument(
                "label",
                format!("at most {MAX_KEY_LABEL} bytes without control characters"),
            )
            .into());
        }
        if req.label == FIRST_KEY_LABEL {
            return Err(ApiError::invalid_argument(
                "label",
                format!("{FIRST_KEY_LABEL:?} is the label of the key tenant create makes"),
            )
            .into());
        }
        let tenant = self.coordinator.tenant_named(&req.tenant).await?;
        let api_key = new_api_key();
        let names: Vec<&str> = scopes.iter().map(|s| s.as_str()).collect();
        let detail = format!(
            "tenant {} key {:?} ({})",
            tenant.name,
            req.label,
            names.join(", ")
        );
        let key = TenantKey {
            id: 0,
            hash: key_hash(&api_key),
            scopes,
            label: req.label,
            hint: key_hint(&api_key),
            created_at_ms: now_ms(),
            revoked_at_ms: None,
        };
        let cmd = Command::AddTenantKey {
            tenant_id: tenant.id,
            key,
        };
        let audit = actor.audit("AddTenantKey", detail);
        match self.coordinator.propose_audited(audit, cmd).await? {
            Reply::KeyAdded { tenant_id, key_id } => Ok(AddTenantKeyResponse {
                tenant_id,
                key: self.tenant_key(tenant_id, key_id).await?,
                api_key,
            }),
            other => Err(unexpected("add key", other)),
        }
    }

    pub(crate) async fn list_tenant_keys_as(
        &self,
        req: ListTenantKeysRequest,
    ) -> Result<ListTenantKeysResponse, Status> {
        let tenant = self.coordinator.tenant_named(&req.tenant).await?;
        let keys = tenant
            .keys
            .iter()
            .filter(|k| req.include_revoked || k.is_live())
            .map(key_info)
            .collect();
        Ok(ListTenantKeysResponse {
            tenant_id: tenant.id,
            keys,
        })
    }

    pub(crate) async fn revoke_tenant_key_as(
        &self,
        req: RevokeTenantKeyRequest,
        actor: Actor,
    ) -> Result<TenantKeyInfo, Status> {
        let tenant = self.coordinator.tenant_named(&req.tenant).await?;
        let cmd = Command::RevokeTenantKey {
            tenant_id: tenant.id,
            key_id: req.id,
            at_ms: now_ms(),
        };
        let detail = format!("tenant {} key {}", tenant.name, req.id);
        let audit = actor.audit("RevokeTenantKey", detail);
        match self.coordinator.propose_audited(audit, cmd).await? {
            Reply::Key(k) => Ok(key_info(&k)),
            other => Err(unexpected("revoke key", other)),
        }
    }

    pub(crate) async fn set_tenant_limits_as(
        &self,
        req: SetTenantLimitsRequest,
        actor: Actor,
    ) -> Result<TenantLimitsResponse, Status> {
        let l = req.limits.unwrap_or_default();
        let limits = TenantLimits {
            orders_per_sec: l.orders_per_sec,
            orders_burst: l.orders_burst,
            streams: l.streams,
            reads_per_sec: l.reads_per_sec,
        };
        limits.check().map_err(crate::error::from_meta)?;
        let tenant = self.coordinator.tenant_named(&req.tenant).await?;
        let detail = format!("tenant {} limits {limits:?}", tenant.name);
        let cmd = Command::SetTenantLimits {
            tenant_id: tenant.id,
            limits,
        };
        let audit = actor.audit("SetTenantLimits", detail);
        match self.coordinator.propose_audited(audit, cmd).await? {
            Reply::Done => Ok(TenantLimitsResponse {
                tenant_id: tenant.id,
                limits: Some(limits_msg(&limits)),
            }),
            other => Err(unexpected("set limits", other)),
        }
    }
}
