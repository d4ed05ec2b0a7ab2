//! The commands on tenants: creation, keys, limits and rules.

use super::records::{first_key, KeyChange};
use super::*;

impl<E: Engine> MetaState<E> {
    pub(super) fn apply_tenant(&mut self, cmd: Command, batch: &mut WriteBatch) -> Output {
        match cmd {
            Command::CreateTenant {
                name,
                key_hash,
                at_ms,
                request_token_hash,
                key_hint,
            } => {
                let first = first_key(key_hash, key_hint, at_ms);
                self.create_tenant(name, first, request_token_hash, at_ms, batch)
            }
            Command::AddTenantKey { tenant_id, key } => {
                self.tenant_key_change(tenant_id, KeyChange::Add(key), batch)
            }
            Command::RevokeTenantKey {
                tenant_id,
                key_id,
                at_ms,
            } => {
                let change = KeyChange::Revoke { key_id, at_ms };
                self.tenant_key_change(tenant_id, change, batch)
            }
            Command::SetTenantLimits { tenant_id, limits } => {
                limits.check()?;
                let tenant = self
                    .tenants
                    .get_mut(&tenant_id)
                    .ok_or_else(|| MetaError::UnknownTenant(tenant_id.to_string()))?;
                tenant.limits = limits;
                put_json(batch, id_key(TENANT_PREFIX, tenant_id), &*tenant);
                Ok(Reply::Done)
            }
            Command::SetTenantRules {
                tenant_id,
                rules_toml,
            } => {
                let tenant = self
                    .tenants
                    .get_mut(&tenant_id)
                    .ok_or_else(|| MetaError::UnknownTenant(tenant_id.to_string()))?;
                if tenant.rules_toml != rules_toml || tenant.rules_version == 0 {
                    tenant.rules_toml = rules_toml;
                    tenant.rules_version += 1;
                    put_json(batch, id_key(TENANT_PREFIX, tenant_id), &*tenant);
                }
                Ok(Reply::RulesSet {
                    version: tenant.rules_version,
                })
            }
            other => Err(MetaError::Undecodable(format!(
                "not a tenant command: {other:?}"
            ))),
        }
    }
}
