//! Tenant rules and waybill ranges: what operators set up for a merchant, through the
//! coordinators.

use std::path::PathBuf;

use anyhow::Context;
use surge_grpc::v1::admin_service_client::AdminServiceClient;
use surge_grpc::v1::{
    AddWaybillRangeRequest, GetTenantRulesRequest, SetTenantRulesRequest, WaybillStatusRequest,
};

use crate::calls::{meta_client as meta, status_error};
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
