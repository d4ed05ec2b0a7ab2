//! Tenant rules and waybill ranges, as operators manage them (`surgectl tenant rules`,
//! `surgectl waybill`), and the block leases shard leaders ask for.

use std::collections::HashMap;

use surge_grpc::ApiError;
use surge_proto::v1::{
    AddWaybillRangeRequest, GetTenantRulesRequest, GetTenantRulesResponse, LeaseWaybillsRequest,
    LeaseWaybillsResponse, SetTenantRulesRequest, SetTenantRulesResponse, WaybillBlock,
    WaybillRangeStatus, WaybillStatusRequest, WaybillStatusResponse,
};
use tonic::Status;

use crate::access::AuditEntry;
use crate::admin_writes::unexpected;
use crate::coordinator::{now_ms, Coordinator};
use crate::meta::{Command, Reply, TenantInfo};
use crate::meta_state::META_GROUP;
use crate::waybills::WaybillRange;

/// Largest rules file accepted.
pub const MAX_RULES_BYTES: usize = 256 * 1024;

impl Coordinator {
    /// The tenant named `name` (linearizable read at the leader).
    pub(crate) async fn tenant_named(&self, name: &str) -> Result<TenantInfo, Status> {
        if name.is_empty() {
            return Err(ApiError::invalid_argument("tenant", "required").into());
        }
        let wanted = name.to_string();
        self.handle
            .read(META_GROUP, move |sm| {
                sm.tenants.values().find(|t| t.name == wanted).cloned()
            })
            .await
            .map_err(|e| self.map_request(e))?
            .ok_or_else(|| ApiError::not_found(format!("tenant: no tenant named {name:?}")).into())
    }

    pub async fn set_tenant_rules(
        &self,
        req: SetTenantRulesRequest,
        audit: AuditEntry,
    ) -> Result<SetTenantRulesResponse, Status> {
        if req.rules_toml.len() > MAX_RULES_BYTES {
            return Err(ApiError::invalid_argument(
                "rules_toml",
                format!("at most {MAX_RULES_BYTES} bytes"),
            )
            .into());
        }
        surge_rules::parse(&req.rules_toml)
            .map_err(|e| ApiError::invalid_argument("rules_toml", format!("{e}")))?;
        let tenant = self.tenant_named(&req.tenant).await?;
        let cmd = Command::SetTenantRules {
            tenant_id: tenant.id,
            rules_toml: req.rules_toml,
        };
        match self.propose_audited(audit, cmd).await? {
            Reply::RulesSet { version } => Ok(SetTenantRulesResponse {
                tenant_id: tenant.id,
                version,
            }),
            other => Err(unexpected("set rules", other)),
        }
    }

    pub async fn get_tenant_rules(
        &self,
        req: GetTenantRulesRequest,
    ) -> Result<GetTenantRulesResponse, Status> {
        let tenant = self.tenant_named(&req.tenant).await?;
        Ok(GetTenantRulesResponse {
            tenant_id: tenant.id,
            version: tenant.rules_version,
            rules_toml: tenant.rules_toml,
        })
    }

    pub async fn add_waybill_range(
        &self,
        req: AddWaybillRangeRequest,
        audit: AuditEntry,
    ) -> Result<WaybillRangeStatus, Status> {
        let tenant = self.tenant_named(&req.tenant).await?;
        let rules = surge_rules::parse(&tenant.rules_toml).unwrap_or_default();
        if rules.carrier(&req.carrier).is_none() {
            let known: Vec<&str> = rules.carriers.iter().map(|c| c.name.as_str()).collect();
            return Err(ApiError::invalid_argument(
                "carrier",
                format!(
                    "unknown carrier {:?} for tenant {}; its rules declare {}",
                    req.carrier,
                    req.tenant,
                    if known.is_empty() {
                        "none (set them with `surgectl tenant rules set`)".to_string()
                    } else {
                        known.join(", ")
                    }
                ),
            )
            .into());
        }
        crate::waybills::check_range(&req.carrier, &req.prefix, req.from, req.to)
            .map_err(crate::error::from_meta)?;
        let cmd = Command::AddWaybillRange {
            tenant_id: tenant.id,
            carrier: req.carrier,
            prefix: req.prefix,
            from: req.from,
            to: req.to,
            at_ms: now_ms(),
        };
        match self.propose_audited(audit, cmd).await? {
            Reply::RangeAdded(range) => Ok(self.range_status(&range, &HashMap::new())),
            other => Err(unexpected("add range", other)),
        }
    }

    fn range_status(
        &self,
        r: &WaybillRange,
        used: &HashMap<u64, (u64, u64)>,
    ) -> WaybillRangeStatus {
        let leased_total = r.next - r.from;
        // Shards count every number they ever bound, voided ones included.
        let (ever_bound, voided) = used.get(&r.id).copied().unwrap_or_default();
        let bound = ever_bound.saturating_sub(voided);
        WaybillRangeStatus {
            id: r.id,
            tenant_id: r.tenant_id,
            carrier: r.carrier.clone(),
            prefix: r.prefix.clone(),
            from: r.from,
            to: r.to,
            free: r.to + 1 - r.next,
            leased: leased_total.saturating_sub(ever_bound),
            bound,
            voided,
            width: r.width,
        }
    }

    pub async fn waybill_status(
        &self,
        req: WaybillStatusRequest,
    ) -> Result<WaybillStatusResponse, Status> {
        let tenant = if req.tenant.is_empty() {
            None
        } else {
            Some(self.tenant_named(&req.tenant).await?.id)
        };
        let ranges: Vec<WaybillRange> = self
            .handle
            .read(META_GROUP, move |sm| {
                sm.waybills
                    .ranges
                    .values()
                    .filter(|r| tenant.is_none_or(|t| r.tenant_id == t))
                    .cloned()
                    .collect()
            })
            .await
            .map_err(|e| self.map_request(e))?;
        let mut used: HashMap<u64, (u64, u64)> = HashMap::new();
        if let Ok(usage) = self.waybill_usage.lock() {
            for (_, ranges) in usage.values() {
                for u in ranges {
                    let e = used.entry(u.range_id).or_default();
                    // Figures from heartbeats: summed without trusting them not to overflow.
                    e.0 = e.0.saturating_add(u.bound);
                    e.1 = e.1.saturating_add(u.voided);
                }
            }
        }
        Ok(WaybillStatusResponse {
            ranges: ranges.iter().map(|r| self.range_status(r, &used)).collect(),
        })
    }

    pub async fn lease_waybills(
        &self,
        req: LeaseWaybillsRequest,
    ) -> Result<LeaseWaybillsResponse, Status> {
        let cmd = Command::LeaseWaybills {
            shard: req.shard,
            tenant_id: req.tenant_id,
            carrier: req.carrier,
            seq: req.seq,
        };
        match self.propose(cmd).await? {
            Reply::Leased(record) => Ok(LeaseWaybillsResponse {
                block: record.block.map(|b| WaybillBlock {
                    range_id: b.range_id,
                    prefix: b.prefix,
                    from: b.from,
                    to: b.to,
                    width: b.width,
                }),
            }),
            other => Err(unexpected("lease", other)),
        }
    }
}
