//! The pipeline commands: tenant rules and waybill ranges (operators, through the
//! coordinators), order actions, labels and the event stream (a tenant, through the nodes), and
//! the printing-station agent.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use surge_client::OrderClient;
use surge_grpc::v1::admin_service_client::AdminServiceClient;
use surge_grpc::v1::order_service_client::OrderServiceClient;
use surge_grpc::v1::print_service_client::PrintServiceClient;
use surge_grpc::v1::{
    AddWaybillRangeRequest, CancelAnswer, CancelOrderRequest, ConfirmPackedRequest,
    ConfirmShippedRequest, GetLabelRequest, GetTenantRulesRequest, LabelFormat,
    OrderActionResponse, OrderStatus, OrderView, PlaceHoldRequest, ReleaseHoldRequest,
    ReprintRequest, SetTenantRulesRequest, WatchOrdersRequest, WaybillStatusRequest,
};
use surgectl::station::{self, Sink, StationConfig};

use crate::calls::{meta_client as meta, status_error};
use crate::output::{emit, print_json, print_table, Format};

fn orders(nodes: &[String], api_key: &str) -> anyhow::Result<OrderClient> {
    OrderClient::new(nodes.to_vec(), api_key).map_err(|s| anyhow::anyhow!(s.message().to_string()))
}

fn status_name(status: i32) -> String {
    OrderStatus::try_from(status)
        .map(|s| {
            s.as_str_name()
                .trim_start_matches("ORDER_STATUS_")
                .to_string()
        })
        .unwrap_or_else(|_| status.to_string())
}

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

/// An order with its holds and history, as `order get` shows it.
pub(crate) fn print_order_detail(format: Format, o: &OrderView) {
    if let Format::Json = format {
        print_json(&serde_json::json!({
            "order_id": o.order_id,
            "status": status_name(o.status),
            "carrier": o.carrier,
            "carrier_rule": o.carrier_rule,
            "waybill": o.waybill,
            "waybill_voided": o.waybill_voided,
            "intercepted": o.intercepted,
            "reprints": o.reprints,
            "holds": o.holds.iter().map(|h| serde_json::json!({"code": h.code, "detail": h.detail, "actor": h.actor, "at_ms": h.at_ms})).collect::<Vec<_>>(),
            "history": o.history.iter().map(|t| serde_json::json!({
                "from": status_name(t.from), "to": status_name(t.to), "action": t.action,
                "actor": t.actor, "reason": t.reason, "at_ms": t.at_ms,
            })).collect::<Vec<_>>(),
        }));
        return;
    }
    let order = o.order.clone().unwrap_or_default();
    emit(&format!(
        "order {} ({}:{}) is {}{}",
        o.order_id,
        order.platform,
        order.external_order_id,
        status_name(o.status),
        if o.intercepted {
            ", INTERCEPTED: do not ship"
        } else {
            ""
        }
    ));
    if !o.carrier.is_empty() {
        emit(&format!("carrier {} (rule {})", o.carrier, o.carrier_rule));
    }
    if !o.waybill.is_empty() {
        emit(&format!(
            "waybill {}{}; reprints {}",
            o.waybill,
            if o.waybill_voided { " (voided)" } else { "" },
            o.reprints
        ));
    }
    for h in &o.holds {
        emit(&format!("hold {}: {} (by {})", h.code, h.detail, h.actor));
    }
    let rows: Vec<Vec<String>> = o
        .history
        .iter()
        .map(|t| {
            vec![
                t.at_ms.to_string(),
                t.action.clone(),
                status_name(t.from),
                status_name(t.to),
                t.actor.clone(),
                t.reason.clone(),
            ]
        })
        .collect();
    print_table(
        &["AT (MS)", "ACTION", "FROM", "TO", "ACTOR", "REASON"],
        &rows,
    );
}

pub(crate) async fn get(
    nodes: &[String],
    api_key: &str,
    format: Format,
    id: &str,
) -> anyhow::Result<()> {
    let order = orders(nodes, api_key)?
        .get(id)
        .await
        .map_err(status_error)?;
    print_order_detail(format, &order);
    Ok(())
}

/// What `order` subcommands ask of one order.
pub(crate) enum Act {
    Hold { code: String, reason: String },
    Release { code: String, reason: String },
    Pack,
    Ship { weight_grams: i64 },
}

pub(crate) async fn act(
    nodes: &[String],
    api_key: &str,
    format: Format,
    order_id: String,
    act: Act,
) -> anyhow::Result<()> {
    let c = orders(nodes, api_key)?;
    let id = order_id.clone();
    let resp: OrderActionResponse = match act {
        Act::Hold { code, reason } => {
            let req = PlaceHoldRequest {
                order_id,
                code,
                reason,
            };
            c.on_order(&id, req, |ch, r| async move {
                OrderServiceClient::new(ch).place_hold(r).await
            })
            .await
        }
        Act::Release { code, reason } => {
            let req = ReleaseHoldRequest {
                order_id,
                code,
                reason,
            };
            c.on_order(&id, req, |ch, r| async move {
                OrderServiceClient::new(ch).release_hold(r).await
            })
            .await
        }
        Act::Pack => {
            let req = ConfirmPackedRequest { order_id };
            c.on_order(&id, req, |ch, r| async move {
                OrderServiceClient::new(ch).confirm_packed(r).await
            })
            .await
        }
        Act::Ship { weight_grams } => {
            let req = ConfirmShippedRequest {
                order_id,
                weight_grams,
            };
            c.on_order(&id, req, |ch, r| async move {
                OrderServiceClient::new(ch).confirm_shipped(r).await
            })
            .await
        }
    }
    .map_err(status_error)?;
    if !resp.changed {
        emit("(already done: nothing changed)");
    }
    if let Some(o) = resp.order {
        print_order_detail(format, &o);
    }
    Ok(())
}

pub(crate) async fn cancel(
    nodes: &[String],
    api_key: &str,
    format: Format,
    order_id: String,
    reason: String,
) -> anyhow::Result<()> {
    let c = orders(nodes, api_key)?;
    let id = order_id.clone();
    let req = CancelOrderRequest { order_id, reason };
    let resp = c
        .on_order(&id, req, |ch, r| async move {
            OrderServiceClient::new(ch).cancel_order(r).await
        })
        .await
        .map_err(status_error)?;
    let answer = match CancelAnswer::try_from(resp.answer) {
        Ok(CancelAnswer::Stopped) if resp.intercepted => {
            "STOPPED: intercepted after printing; the label is voided, pull the parcel"
        }
        Ok(CancelAnswer::Stopped) => "STOPPED: cancelled before printing",
        Ok(CancelAnswer::TooLate) => "TOO_LATE: the parcel has shipped",
        _ => "unknown answer",
    };
    emit(answer);
    if let Some(o) = resp.order {
        print_order_detail(format, &o);
    }
    Ok(())
}

pub(crate) async fn label(
    nodes: &[String],
    api_key: &str,
    order_id: String,
    pdf: bool,
    out: PathBuf,
) -> anyhow::Result<()> {
    let c = orders(nodes, api_key)?;
    let id = order_id.clone();
    let format = if pdf {
        LabelFormat::Pdf
    } else {
        LabelFormat::Zpl
    };
    let req = GetLabelRequest {
        order_id,
        format: format as i32,
    };
    let doc = c
        .on_order(&id, req, |ch, r| async move {
            OrderServiceClient::new(ch).get_label(r).await
        })
        .await
        .map_err(status_error)?;
    std::fs::write(&out, &doc.content).with_context(|| format!("writing {}", out.display()))?;
    emit(&format!(
        "label of order {} (waybill {}, {}) written to {}",
        doc.order_id,
        doc.waybill,
        doc.content_type,
        out.display()
    ));
    Ok(())
}

pub(crate) async fn reprint(
    nodes: &[String],
    api_key: &str,
    order_id: String,
    reason: String,
) -> anyhow::Result<()> {
    let c = orders(nodes, api_key)?;
    let id = order_id.clone();
    let req = ReprintRequest { order_id, reason };
    let resp = c
        .on_order(&id, req, |ch, r| async move {
            PrintServiceClient::new(ch).reprint(r).await
        })
        .await
        .map_err(status_error)?;
    emit(&format!(
        "reprint {} of order {id} queued as job {}",
        resp.reprint, resp.job_id
    ));
    Ok(())
}

/// Streams the tenant's order events as JSON lines; stops after `max_events` or `seconds`.
pub(crate) async fn watch(
    nodes: &[String],
    api_key: &str,
    cursor: String,
    max_events: u64,
    seconds: u64,
) -> anyhow::Result<()> {
    let c = orders(nodes, api_key)?;
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut cursor = cursor;
    let mut seen = 0u64;
    while seen < max_events && Instant::now() < deadline {
        let addresses = c.node_addresses().await.map_err(status_error)?;
        let address = &addresses[(seen as usize) % addresses.len().max(1)];
        let (ch, req) = c
            .stream_request(
                address,
                WatchOrdersRequest {
                    cursor: cursor.clone(),
                },
            )
            .map_err(status_error)?;
        let mut stream = match OrderServiceClient::new(ch).watch_orders(req).await {
            Ok(s) => s.into_inner(),
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let next = tokio::time::timeout(left, stream.message()).await;
            let Ok(Ok(Some(batch))) = next else { break };
            for e in &batch.events {
                println!(
                    "{}",
                    serde_json::json!({
                        "order_id": e.order_id, "shard": e.shard, "index": e.index, "pos": e.pos,
                        "from": status_name(e.from), "to": status_name(e.to), "action": e.action,
                        "actor": e.actor, "reason": e.reason, "at_ms": e.at_ms,
                        "external_order_id": e.external_order_id, "waybill": e.waybill,
                    })
                );
            }
            seen += batch.events.len() as u64;
            cursor = batch.cursor;
            if seen >= max_events {
                break;
            }
        }
    }
    eprintln!("cursor: {cursor}");
    Ok(())
}

pub(crate) struct StationArgs {
    pub tenant: String,
    pub station: String,
    pub printer: Option<String>,
    pub out_dir: Option<PathBuf>,
    pub window: u32,
    pub exit_after_idle: Option<u64>,
}

pub(crate) async fn station_run(
    nodes: &[String],
    api_key: &str,
    format: Format,
    args: StationArgs,
) -> anyhow::Result<()> {
    let sink = match (args.printer, args.out_dir) {
        (Some(p), None) => Sink::Printer(p),
        (None, Some(d)) => Sink::Dir(d),
        _ => anyhow::bail!("give exactly one of --printer HOST:9100 and --out-dir DIR"),
    };
    let client = Arc::new(orders(nodes, api_key)?);
    // A station prints what its key's tenant ships: make sure that is the tenant it was
    // started for, rather than printing another merchant's labels.
    let map = client.shard_map().await.map_err(status_error)?;
    if map.tenant_name != args.tenant {
        anyhow::bail!(
            "--tenant {}: the API key belongs to tenant {:?} (id {}); refusing to print its labels",
            args.tenant,
            map.tenant_name,
            map.tenant_id
        );
    }
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        let _ = stop_tx.send(true);
    });
    let config = StationConfig {
        station: args.station.clone(),
        sink,
        window: args.window,
        exit_after_idle: args.exit_after_idle.map(Duration::from_secs),
    };
    let report = station::run(client, config, stop)
        .await
        .map_err(status_error)?;
    match format {
        Format::Json => print_json(&report),
        Format::Table => emit(&format!(
            "station {}: {} labels printed ({} reprints), {} redeliveries skipped, {} acked, {} acks refused, {} printer errors",
            args.station, report.printed, report.reprints, report.duplicates_skipped, report.acked, report.ack_refused, report.printer_errors
        )),
    }
    Ok(())
}
