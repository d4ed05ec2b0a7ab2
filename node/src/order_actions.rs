//! The lifecycle half of `OrderService`: holds, packing, shipping, cancel, labels and the event
//! stream. Each action goes to the shard leader (forwarded once, like intake) and is applied
//! from the shard's log; see `surge_shard::actions`.

use surge_grpc::v1::order_action::Kind;
use surge_grpc::v1::order_service_client::OrderServiceClient;
use surge_grpc::v1::{
    CancelAnswer, CancelOrderRequest, CancelOrderResponse, CarrierRouting, ConfirmPackedRequest,
    ConfirmShippedRequest, Empty, GetLabelRequest, HoldEntry, LabelDocument, LabelFormat,
    OrderAction, OrderActionResponse, PlaceHoldRequest, ReleaseHoldRequest,
    SetCarrierRoutingRequest,
};
use surge_grpc::ApiError;
use surge_shard::{check_routing, shard_of, view_of, ActionOutcome, CARRIER_HOLD, WAYBILL_HOLD};
use tonic::{Request, Response, Status};

use crate::actions::{self, refusal_status, ProposeError};
use crate::dispatch::{forward_failed, with_leader, Route};
use crate::order_api::{Need, OrderApi};
use crate::order_service::field_error;

/// Most bytes of a reason or detail.
const MAX_REASON: usize = 256;

/// The actor recorded for calls from a tenant's ERP.
const API_ACTOR: &str = "erp";

fn check_reason(field: &str, reason: &str) -> Result<(), Status> {
    if reason.len() > MAX_REASON {
        return Err(field_error(field, format!("at most {MAX_REASON} bytes")));
    }
    Ok(())
}

fn check_code(code: &str) -> Result<(), Status> {
    let ok = (1..=32).contains(&code.len())
        && code
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(field_error("code", "1-32 of [a-z0-9_-]"))
    }
}

impl OrderApi {
    /// The shard of an order id, or INVALID_ARGUMENT naming `order_id`.
    pub(crate) fn shard_of_id(&self, order_id: &str) -> Result<u32, Status> {
        let count = self.shard_count();
        match shard_of(order_id) {
            Some(s) if s < count => Ok(s),
            _ => Err(field_error(
                "order_id",
                format!("{order_id:?} is not an order id of this cluster"),
            )),
        }
    }

    /// Proposes one action here (this node leads `shard`).
    pub(crate) async fn act(
        &self,
        shard: u32,
        action: OrderAction,
    ) -> Result<ActionOutcome, Status> {
        match actions::propose(&self.handle, shard, vec![action]).await {
            Ok(outcomes) => actions::single(outcomes),
            Err(ProposeError::Request(e)) => Err(self.map_request(shard, e).into()),
            Err(ProposeError::Apply(m)) => Err(ApiError::internal(m).into()),
        }
    }

    async fn act_answer(
        &self,
        shard: u32,
        action: OrderAction,
    ) -> Result<OrderActionResponse, Status> {
        match self.act(shard, action).await? {
            ActionOutcome::Done(done) => Ok(OrderActionResponse {
                changed: done.changed,
                order: Some(view_of(done.record)),
            }),
            ActionOutcome::TooLate(rec) => Err(ApiError::failed_precondition(format!(
                "order {} has shipped",
                rec.order_id
            ))
            .into()),
            ActionOutcome::Refused { code, message } => Err(refusal_status(code, message)),
        }
    }

    fn action(tenant: u64, order_id: &str, reason: &str, kind: Kind) -> OrderAction {
        OrderAction {
            tenant_id: tenant,
            expect_status: 0,
            order_id: order_id.to_string(),
            actor: API_ACTOR.into(),
            reason: reason.to_string(),
            kind: Some(kind),
        }
    }

    pub(crate) async fn place_hold_call(
        &self,
        request: Request<PlaceHoldRequest>,
    ) -> Result<Response<OrderActionResponse>, Status> {
        let tenant = self.tenant(&request, Need::Orders).await?;
        let req = request.get_ref().clone();
        check_code(&req.code)?;
        if [WAYBILL_HOLD, CARRIER_HOLD].contains(&req.code.as_str()) {
            return Err(field_error(
                "code",
                format!("{:?} is reserved for the pipeline's own holds", req.code),
            ));
        }
        check_reason("reason", &req.reason)?;
        let shard = self.shard_of_id(&req.order_id)?;
        match self.route(&request, shard, "action")? {
            Route::Local => {
                let hold = HoldEntry {
                    code: req.code.clone(),
                    detail: req.reason.clone(),
                    ..HoldEntry::default()
                };
                let action = Self::action(tenant, &req.order_id, &req.reason, Kind::Hold(hold));
                self.act_answer(shard, action).await.map(Response::new)
            }
            Route::Forward { address, channel } => OrderServiceClient::new(channel)
                .place_hold(self.forward_request(&request, req))
                .await
                .map_err(|s| forward_failed(s, &address))
                .map(|r| with_leader(r, Some(&address))),
        }
    }

    pub(crate) async fn release_hold_call(
        &self,
        request: Request<ReleaseHoldRequest>,
    ) -> Result<Response<OrderActionResponse>, Status> {
        let tenant = self.tenant(&request, Need::Orders).await?;
        let req = request.get_ref().clone();
        if !req.code.is_empty() {
            check_code(&req.code)?;
        }
        check_reason("reason", &req.reason)?;
        let shard = self.shard_of_id(&req.order_id)?;
        match self.route(&request, shard, "action")? {
            Route::Local => {
                let action = Self::action(
                    tenant,
                    &req.order_id,
                    &req.reason,
                    Kind::Release(req.code.clone()),
                );
                self.act_answer(shard, action).await.map(Response::new)
            }
            Route::Forward { address, channel } => OrderServiceClient::new(channel)
                .release_hold(self.forward_request(&request, req))
                .await
                .map_err(|s| forward_failed(s, &address))
                .map(|r| with_leader(r, Some(&address))),
        }
    }

    pub(crate) async fn confirm_packed_call(
        &self,
        request: Request<ConfirmPackedRequest>,
    ) -> Result<Response<OrderActionResponse>, Status> {
        let tenant = self.tenant(&request, Need::Warehouse).await?;
        let req = request.get_ref().clone();
        let shard = self.shard_of_id(&req.order_id)?;
        match self.route(&request, shard, "action")? {
            Route::Local => {
                let action = Self::action(tenant, &req.order_id, "", Kind::Packed(Empty {}));
                self.act_answer(shard, action).await.map(Response::new)
            }
            Route::Forward { address, channel } => OrderServiceClient::new(channel)
                .confirm_packed(self.forward_request(&request, req))
                .await
                .map_err(|s| forward_failed(s, &address))
                .map(|r| with_leader(r, Some(&address))),
        }
    }

    pub(crate) async fn confirm_shipped_call(
        &self,
        request: Request<ConfirmShippedRequest>,
    ) -> Result<Response<OrderActionResponse>, Status> {
        let tenant = self.tenant(&request, Need::Warehouse).await?;
        let req = request.get_ref().clone();
        if !(1..=1_000_000).contains(&req.weight_grams) {
            return Err(field_error("weight_grams", "1..=1000000 grams"));
        }
        let shard = self.shard_of_id(&req.order_id)?;
        match self.route(&request, shard, "action")? {
            Route::Local => {
                let kind = Kind::ShippedWeightGrams(req.weight_grams);
                let action = Self::action(tenant, &req.order_id, "", kind);
                self.act_answer(shard, action).await.map(Response::new)
            }
            Route::Forward { address, channel } => OrderServiceClient::new(channel)
                .confirm_shipped(self.forward_request(&request, req))
                .await
                .map_err(|s| forward_failed(s, &address))
                .map(|r| with_leader(r, Some(&address))),
        }
    }

    pub(crate) async fn set_carrier_routing_call(
        &self,
        request: Request<SetCarrierRoutingRequest>,
    ) -> Result<Response<OrderActionResponse>, Status> {
        let tenant = self.tenant(&request, Need::Orders).await?;
        let req = request.get_ref().clone();
        if req.waybill.is_empty() {
            return Err(field_error(
                "waybill",
                "required: the waybill the carrier answered for",
            ));
        }
        let routing = CarrierRouting {
            waybill: req.waybill.clone(),
            sorting_code: req.sorting_code.trim().to_owned(),
            destination: req.destination.trim().to_owned(),
        };
        check_routing(&routing).map_err(|(field, why)| field_error(field, why))?;
        let shard = self.shard_of_id(&req.order_id)?;
        match self.route(&request, shard, "action")? {
            Route::Local => {
                let action = Self::action(tenant, &req.order_id, "", Kind::Route(routing));
                self.act_answer(shard, action).await.map(Response::new)
            }
            Route::Forward { address, channel } => OrderServiceClient::new(channel)
                .set_carrier_routing(self.forward_request(&request, req))
                .await
                .map_err(|s| forward_failed(s, &address))
                .map(|r| with_leader(r, Some(&address))),
        }
    }

    pub(crate) async fn cancel_order_call(
        &self,
        request: Request<CancelOrderRequest>,
    ) -> Result<Response<CancelOrderResponse>, Status> {
        let tenant = self.tenant(&request, Need::Orders).await?;
        let req = request.get_ref().clone();
        check_reason("reason", &req.reason)?;
        let shard = self.shard_of_id(&req.order_id)?;
        match self.route(&request, shard, "action")? {
            Route::Local => {
                let action =
                    Self::action(tenant, &req.order_id, &req.reason, Kind::Cancel(Empty {}));
                let resp = match self.act(shard, action).await? {
                    ActionOutcome::Done(done) => CancelOrderResponse {
                        answer: CancelAnswer::Stopped as i32,
                        intercepted: done.record.intercepted,
                        order: Some(view_of(done.record)),
                    },
                    ActionOutcome::TooLate(rec) => CancelOrderResponse {
                        answer: CancelAnswer::TooLate as i32,
                        intercepted: false,
                        order: Some(view_of(*rec)),
                    },
                    ActionOutcome::Refused { code, message } => {
                        return Err(refusal_status(code, message))
                    }
                };
                Ok(Response::new(resp))
            }
            Route::Forward { address, channel } => OrderServiceClient::new(channel)
                .cancel_order(self.forward_request(&request, req))
                .await
                .map_err(|s| forward_failed(s, &address))
                .map(|r| with_leader(r, Some(&address))),
        }
    }

    pub(crate) async fn get_label_call(
        &self,
        request: Request<GetLabelRequest>,
    ) -> Result<Response<LabelDocument>, Status> {
        let tenant = self.tenant(&request, Need::Print).await?;
        let req = request.get_ref().clone();
        let format = match req.format() {
            LabelFormat::Unspecified | LabelFormat::Zpl => LabelFormat::Zpl,
            LabelFormat::Pdf => LabelFormat::Pdf,
        };
        let shard = self.shard_of_id(&req.order_id)?;
        match self.route(&request, shard, "action")? {
            Route::Local => {
                let id = req.order_id.clone();
                let rec = self
                    .read_shard(shard, false, move |sm| sm.get(tenant, &id))
                    .await?
                    .flatten()
                    .ok_or_else(|| {
                        ApiError::not_found(format!("order_id: no order {}", req.order_id))
                    })?;
                if rec.waybill.is_empty() {
                    return Err(ApiError::failed_precondition(format!(
                        "order {} has no waybill yet ({:?})",
                        rec.order_id,
                        rec.status()
                    ))
                    .into());
                }
                if rec.waybill_voided || rec.intercepted {
                    return Err(ApiError::failed_precondition(format!(
                        "order {}: waybill {} is voided (the order was cancelled); no label",
                        rec.order_id, rec.waybill
                    ))
                    .into());
                }
                let rules = self
                    .directory
                    .read()
                    .map(|d| d.rules_of(tenant))
                    .unwrap_or_default();
                let label = crate::labels::label_of(&rec, &rules, rec.reprints);
                let (content_type, content) = match format {
                    LabelFormat::Pdf => ("application/pdf", self.renderer.pdf(&label)),
                    _ => ("application/zpl", self.renderer.zpl(&label).into_bytes()),
                };
                Ok(Response::new(LabelDocument {
                    order_id: rec.order_id,
                    waybill: rec.waybill,
                    content_type: content_type.into(),
                    content,
                }))
            }
            Route::Forward { address, channel } => OrderServiceClient::new(channel)
                .get_label(self.forward_request(&request, req))
                .await
                .map_err(|s| forward_failed(s, &address))
                .map(|r| with_leader(r, Some(&address))),
        }
    }
}
