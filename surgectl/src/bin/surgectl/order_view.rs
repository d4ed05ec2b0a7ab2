//! One order as `order get` and the order actions show it: status, carrier, waybill, holds
//! and history, and the carrier's routing when one was recorded.

use surge_grpc::v1::{OrderStatus, OrderView};

use crate::human::local_time;
use crate::output::{emit, print_json, print_table, Format};

/// A refusal's code as the proto names it, without its prefix (`DUPLICATE`, `INVALID_ARGUMENT`).
pub(crate) fn error_code_name(code: i32) -> &'static str {
    surge_proto::v1::ErrorCode::try_from(code)
        .unwrap_or(surge_proto::v1::ErrorCode::Unspecified)
        .as_str_name()
        .trim_start_matches("ERROR_CODE_")
}

/// `RECEIVED`, `LABEL_PRINTED`, ...: the status without its enum prefix.
pub(crate) fn status_name(status: i32) -> String {
    OrderStatus::try_from(status)
        .map(|s| {
            s.as_str_name()
                .trim_start_matches("ORDER_STATUS_")
                .to_string()
        })
        .unwrap_or_else(|_| status.to_string())
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
            "carrier_routing": o.carrier_routing.as_ref().map(|r| serde_json::json!({
                "waybill": r.waybill, "sorting_code": r.sorting_code, "destination": r.destination,
            })),
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
    if let Some(r) = &o.carrier_routing {
        emit(&format!(
            "carrier routing for waybill {}: sorting code {}, destination {}",
            r.waybill,
            if r.sorting_code.is_empty() {
                "(derived)"
            } else {
                &r.sorting_code
            },
            if r.destination.is_empty() {
                "(derived)"
            } else {
                &r.destination
            },
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
                local_time(t.at_ms),
                t.action.clone(),
                status_name(t.from),
                status_name(t.to),
                t.actor.clone(),
                t.reason.clone(),
            ]
        })
        .collect();
    print_table(&["AT", "ACTION", "FROM", "TO", "ACTOR", "REASON"], &rows);
}
