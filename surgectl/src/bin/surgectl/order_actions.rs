//! What a tenant does to one order through the nodes: read it, hold and release it, confirm
//! packing and shipping, record the carrier's routing, cancel it, fetch and reprint its label.

use std::path::PathBuf;

use anyhow::Context;
use surge_grpc::v1::order_service_client::OrderServiceClient;
use surge_grpc::v1::print_service_client::PrintServiceClient;
use surge_grpc::v1::{
    CancelAnswer, CancelOrderRequest, ConfirmPackedRequest, ConfirmShippedRequest, GetLabelRequest,
    LabelFormat, OrderActionResponse, PlaceHoldRequest, ReleaseHoldRequest, ReprintRequest,
    SetCarrierRoutingRequest,
};

use crate::calls::{order_client as orders, status_error};
use crate::order_view::print_order_detail;
use crate::output::{emit, Format};

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
    Hold {
        code: String,
        reason: String,
    },
    Release {
        code: String,
        reason: String,
    },
    Pack,
    Ship {
        weight_grams: i64,
    },
    Route {
        waybill: String,
        sorting_code: String,
        destination: String,
    },
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
        Act::Route {
            waybill,
            sorting_code,
            destination,
        } => {
            let req = SetCarrierRoutingRequest {
                order_id,
                waybill,
                sorting_code,
                destination,
            };
            c.on_order(&id, req, |ch, r| async move {
                OrderServiceClient::new(ch).set_carrier_routing(r).await
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
