//! Tenant rules, limits and waybill ranges: what operators set up for a merchant, through the
//! coordinators.

use std::path::PathBuf;

use anyhow::Context;
use surge_grpc::v1::admin_service_client::AdminServiceClient;
use surge_grpc::v1::{
    AddWaybillRangeRequest, GetTenantRulesRequest, ListTenantsRequest, SetTenantLimitsRequest,
    SetTenantRulesRequest, WaybillStatusRequest,
};

use crate::calls::{admin, meta_client as meta, status_error};
use crate::cli::LimitsCmd;
use crate::output::{emit, print_json, print_table, Format};

pub(crate) async fn rules_set(
    coordinators: &[String],
    tenant: String,
    file: PathBuf,
) -> anyhow::Result<()> {
    let rules_toml =
        std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
    let req = SetTenantRulesRequest { tenant, rules_toml };
    let resp = meta(coordinators)?
        .call(|ch| {
            let req = req.clone();
            async move { AdminServiceClient::new(ch).set_tenant_rules(req).await }
        })
        .await
        .map_err(|s| anyhow::anyhow!("{}: {}", file.display(), s.message()))?;
    emit(&format!(
        "rules of tenant {} are now version {}",
        resp.tenant_id, resp.version
    ));
    Ok(())
}

pub(crate) async fn rules_get(coordinators: &[String], tenant: String) -> anyhow::Result<()> {
    let req = GetTenantRulesRequest { tenant };
    let resp = meta(coordinators)?
        .call(|ch| {
            let req = req.clone();
            async move { AdminServiceClient::new(ch).get_tenant_rules(req).await }
        })
        .await
        .map_err(status_error)?;
    emit(&format!(
        "# tenant {} rules version {}",
        resp.tenant_id, resp.version
    ));
    emit(&resp.rules_toml);
    Ok(())
}

pub(crate) async fn waybill_add(
    coordinators: &[String],
    format: Format,
    req: AddWaybillRangeRequest,
) -> anyhow::Result<()> {
    let range = meta(coordinators)?
        .call(|ch| {
            let req = req.clone();
            async move { AdminServiceClient::new(ch).add_waybill_range(req).await }
        })
        .await
        .map_err(status_error)
        .context("waybill add-range")?;
    print_ranges(format, &[range]);
    Ok(())
}

pub(crate) async fn waybill_status(
    coordinators: &[String],
    format: Format,
    tenant: String,
) -> anyhow::Result<()> {
    let req = WaybillStatusRequest { tenant };
    let resp = meta(coordinators)?
        .call(|ch| {
            let req = req.clone();
            async move { AdminServiceClient::new(ch).waybill_status(req).await }
        })
        .await
        .map_err(status_error)?;
    print_ranges(format, &resp.ranges);
    Ok(())
}

fn print_ranges(format: Format, ranges: &[surge_grpc::v1::WaybillRangeStatus]) {
    match format {
        Format::Json => print_json(
            &ranges
                .iter()
                .map(|r| {
                    serde_json::json!({
                        "id": r.id, "tenant_id": r.tenant_id, "carrier": r.carrier,
                        "prefix": r.prefix, "from": r.from, "to": r.to, "free": r.free,
                        "leased": r.leased, "bound": r.bound, "voided": r.voided,
                    })
                })
                .collect::<Vec<_>>(),
        ),
        Format::Table => {
            let rows: Vec<Vec<String>> = ranges
                .iter()
                .map(|r| {
                    vec![
                        r.id.to_string(),
                        r.tenant_id.to_string(),
                        r.carrier.clone(),
                        format!(
                            "{}{:0w$}-{}{:0w$}",
                            r.prefix,
                            r.from,
                            r.prefix,
                            r.to,
                            w = r.width as usize
                        ),
                        r.free.to_string(),
                        r.leased.to_string(),
                        r.bound.to_string(),
                        r.voided.to_string(),
                    ]
                })
                .collect();
            print_table(
                &[
                    "RANGE", "TENANT", "CARRIER", "NUMBERS", "FREE", "LEASED", "BOUND", "VOIDED",
                ],
                &rows,
            );
        }
    }
}

/// `tenant limits set`: the flags given replace those limits; the others stay as they are.
pub(crate) async fn limits(
    coordinators: &[String],
    format: Format,
    cmd: LimitsCmd,
) -> anyhow::Result<()> {
    let LimitsCmd::Set {
        tenant,
        orders_per_sec,
        burst,
        streams,
        reads_per_sec,
    } = cmd;
    let tenants = admin(
        coordinators,
        "tenant list",
        ListTenantsRequest {},
        |mut c, r| async move { c.list_tenants(r).await },
    )
    .await?
    .tenants;
    let Some(current) = tenants.iter().find(|t| t.name == tenant) else {
        anyhow::bail!("tenant: no tenant named {tenant:?} (`surgectl tenant list`)");
    };
    let mut limits = current.limits.unwrap_or_default();
    limits.orders_per_sec = orders_per_sec.unwrap_or(limits.orders_per_sec);
    limits.orders_burst = burst.unwrap_or(limits.orders_burst);
    limits.streams = streams.unwrap_or(limits.streams);
    limits.reads_per_sec = reads_per_sec.unwrap_or(limits.reads_per_sec);
    let req = SetTenantLimitsRequest {
        tenant,
        limits: Some(limits),
    };
    let resp = admin(
        coordinators,
        "tenant limits set",
        req,
        |mut c, r| async move { c.set_tenant_limits(r).await },
    )
    .await?;
    let l = resp.limits.unwrap_or_default();
    match format {
        Format::Json => print_json(&serde_json::json!({
            "tenant_id": resp.tenant_id,
            "limits": {
                "orders_per_sec": l.orders_per_sec, "orders_burst": l.orders_burst,
                "streams": l.streams, "reads_per_sec": l.reads_per_sec,
            },
        })),
        Format::Table => emit(&format!(
            "tenant {}: {} orders/s (burst {}), {} streams and {} reads/s per node (0: no limit); nodes enforce them from their next heartbeat",
            resp.tenant_id, l.orders_per_sec, l.orders_burst, l.streams, l.reads_per_sec
        )),
    }
    Ok(())
}
