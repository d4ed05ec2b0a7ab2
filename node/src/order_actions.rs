//! The lifecycle half of `OrderService`: holds, packing, shipping, cancel, labels and the event
//! stream. Each action goes to the shard leader (forwarded once, like intake) and is applied
//! from the shard's log; see `surge_shard::actions`.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::time::Duration;

use surge_grpc::v1::order_action::Kind;
use surge_grpc::v1::order_service_client::OrderServiceClient;
use surge_grpc::v1::{
    CancelAnswer, CancelOrderRequest, CancelOrderResponse, ConfirmPackedRequest,
    ConfirmShippedRequest, Empty, GetLabelRequest, HoldEntry, LabelDocument, LabelFormat,
    OrderAction, OrderActionResponse, OrderEvent, PlaceHoldRequest, ReadEventsRequest,
    ReadEventsResponse, ReleaseHoldRequest, WatchOrdersRequest, WatchOrdersResponse,
};
use surge_shard::{shard_of, view_of, ActionOutcome, CARRIER_HOLD, WAYBILL_HOLD};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use crate::actions::{self, refusal_status, ProposeError};
use crate::dispatch::{forward_failed, is_forwarded, with_leader, Route, Target};
use crate::order_api::OrderApi;
use crate::order_service::field_error;

pub type WatchStream =
    Pin<Box<dyn tokio_stream::Stream<Item = Result<WatchOrdersResponse, Status>> + Send>>;

/// Most events per `ReadEvents` answer and per shard in one watch poll.
const EVENTS_PER_READ: u32 = 500;
/// How often an idle watch looks for new events.
const WATCH_POLL: Duration = Duration::from_millis(200);
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

/// A watch position: per shard, the last (index, pos) delivered. Encoded
/// `"<shard>.<index>.<pos>,..."` over the shards that have one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WatchCursor(pub BTreeMap<u32, (u64, u32)>);

impl WatchCursor {
    pub fn encode(&self) -> String {
        self.0
            .iter()
            .map(|(s, (i, p))| format!("{s}.{i}.{p}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn decode(text: &str) -> Option<WatchCursor> {
        let mut map = BTreeMap::new();
        for part in text.split(',').filter(|p| !p.is_empty()) {
            let mut it = part.split('.');
            let shard = it.next()?.parse().ok()?;
            let index = it.next()?.parse().ok()?;
            let pos = it.next()?.parse().ok()?;
            if it.next().is_some() {
                return None;
            }
            map.insert(shard, (index, pos));
        }
        Some(WatchCursor(map))
    }

    pub fn advance(&mut self, e: &OrderEvent) {
        let at = self.0.entry(e.shard).or_default();
        *at = (*at).max((e.index, e.pos));
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
            Err(ProposeError::Request(e)) => Err(self.map_request(e)),
            Err(ProposeError::Apply(m)) => Err(Status::internal(m)),
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
            ActionOutcome::TooLate(rec) => Err(Status::failed_precondition(format!(
                "order {} has shipped",
                rec.order_id
            ))),
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
        let tenant = self.tenant(&request).await?;
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
        let tenant = self.tenant(&request).await?;
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
        let tenant = self.tenant(&request).await?;
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
        let tenant = self.tenant(&request).await?;
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

    pub(crate) async fn cancel_order_call(
        &self,
        request: Request<CancelOrderRequest>,
    ) -> Result<Response<CancelOrderResponse>, Status> {
        let tenant = self.tenant(&request).await?;
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
        let tenant = self.tenant(&request).await?;
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
                        Status::not_found(format!("order_id: no order {}", req.order_id))
                    })?;
                if rec.waybill.is_empty() {
                    return Err(Status::failed_precondition(format!(
                        "order {} has no waybill yet ({:?})",
                        rec.order_id,
                        rec.status()
                    )));
                }
                if rec.waybill_voided || rec.intercepted {
                    return Err(Status::failed_precondition(format!(
                        "order {}: waybill {} is voided (the order was cancelled); no label",
                        rec.order_id, rec.waybill
                    )));
                }
                let rules = self
                    .directory
                    .read()
                    .map(|d| d.rules_of(tenant))
                    .unwrap_or_default();
                let label = crate::labels::label_of(&rec, &rules, rec.reprints);
                let (content_type, content) = match format {
                    LabelFormat::Pdf => ("application/pdf", surge_label::pdf(&label)),
                    _ => ("application/zpl", surge_label::zpl(&label).into_bytes()),
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

    /// Events of one shard after `after`: from a local replica (any replica holds a prefix of
    /// the shard's events in log order, so this never skips one), else from the shard's leader.
    async fn shard_events<U>(
        &self,
        original: &Request<U>,
        tenant: u64,
        shard: u32,
        after: (u64, u32),
    ) -> Result<Vec<OrderEvent>, Status> {
        let group = u64::from(shard);
        if self.handle.status(group).is_some() {
            let events = self
                .handle
                .inspect(group, move |peer| {
                    peer.sm.events(tenant, after, EVENTS_PER_READ as usize)
                })
                .await
                .map_err(|e| self.map_request(e))?
                .map_err(|e| Status::internal(e.to_string()))?;
            return events.map_err(|t| {
                Status::out_of_range(format!(
                    "cursor: shard {shard}'s events before {}.{} are past retention and were deleted; start again from an empty cursor",
                    t.below.0, t.below.1
                ))
            });
        }
        if is_forwarded(original) {
            return Err(self.unavailable(shard));
        }
        let Target::Remote { address } = self.target(shard) else {
            return Err(self.unavailable(shard));
        };
        let req = ReadEventsRequest {
            shard,
            after_index: after.0,
            after_pos: after.1,
            limit: EVENTS_PER_READ,
        };
        OrderServiceClient::new(self.channel(&address)?)
            .read_events(self.forward_request(original, req))
            .await
            .map(|r| r.into_inner().events)
            .map_err(|s| forward_failed(s, &address))
    }

    pub(crate) async fn read_events_call(
        &self,
        request: Request<ReadEventsRequest>,
    ) -> Result<Response<ReadEventsResponse>, Status> {
        let tenant = self.tenant(&request).await?;
        let req = *request.get_ref();
        if req.shard >= self.shard_count() {
            return Err(field_error("shard", format!("no shard {}", req.shard)));
        }
        let events = self
            .shard_events(
                &request,
                tenant,
                req.shard,
                (req.after_index, req.after_pos),
            )
            .await?;
        Ok(Response::new(ReadEventsResponse { events }))
    }

    pub(crate) async fn watch_orders_call(
        &self,
        request: Request<WatchOrdersRequest>,
    ) -> Result<Response<WatchStream>, Status> {
        let tenant = self.tenant(&request).await?;
        let mut cursor = WatchCursor::decode(&request.get_ref().cursor)
            .ok_or_else(|| field_error("cursor", "not a cursor this service issued"))?;
        let (tx, rx) = mpsc::channel(8);
        let api = self.clone();
        // A bare request carrying only the caller's key, for the reads this stream makes.
        let mut probe = Request::new(());
        if let Some(v) = request.metadata().get(surge_proto::auth::AUTHORIZATION) {
            probe
                .metadata_mut()
                .insert(surge_proto::auth::AUTHORIZATION, v.clone());
        }
        tokio::spawn(async move {
            loop {
                let mut events = Vec::new();
                for shard in 0..api.shard_count() {
                    let after = cursor.0.get(&shard).copied().unwrap_or_default();
                    // A shard that cannot be read now is read on a later poll, from the same
                    // position: the stream waits rather than skipping. A cursor past retention
                    // ends the stream: resuming would skip deleted events.
                    match api.shard_events(&probe, tenant, shard, after).await {
                        Ok(found) => events.extend(found),
                        Err(s) if s.code() == tonic::Code::OutOfRange => {
                            let _ = tx.send(Err(s)).await;
                            return;
                        }
                        Err(_) => {}
                    }
                }
                if events.is_empty() {
                    if tx.is_closed() {
                        return;
                    }
                    tokio::time::sleep(WATCH_POLL).await;
                    continue;
                }
                for e in &events {
                    cursor.advance(e);
                }
                let msg = WatchOrdersResponse {
                    events,
                    cursor: cursor.encode(),
                };
                if tx.send(Ok(msg)).await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watch_cursors_round_trip_and_only_move_forward() {
        let mut c = WatchCursor::default();
        assert_eq!(c.encode(), "");
        let e = |shard, index, pos| OrderEvent {
            shard,
            index,
            pos,
            ..OrderEvent::default()
        };
        c.advance(&e(3, 10, 2));
        c.advance(&e(0, 7, 0));
        c.advance(&e(3, 9, 5));
        assert_eq!(c.encode(), "0.7.0,3.10.2");
        assert_eq!(WatchCursor::decode(&c.encode()), Some(c));
        for bad in ["x", "1.2", "1.2.3.4", "a.b.c"] {
            assert_eq!(WatchCursor::decode(bad), None, "{bad}");
        }
    }
}
