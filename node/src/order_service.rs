//! `OrderService`: merchants' ERPs. Every call is authenticated by its bearer API key and
//! scoped to that key's tenant. Any node accepts any call: the shard's leader serves it, any
//! other node forwards it once to the leader, and a node that cannot answers UNAVAILABLE with
//! the leader's address in `x-surge-leader`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use prost::Message as _;
use sha2::{Digest, Sha256};
use surge_grpc::v1::order_service_client::OrderServiceClient;
use surge_grpc::v1::order_service_server::OrderService;
use surge_grpc::v1::shard_command::Command as ShardCmd;
use surge_grpc::v1::submit_result::Outcome;
use surge_grpc::v1::{
    CancelOrderRequest, CancelOrderResponse, ConfirmPackedRequest, ConfirmShippedRequest,
    GetLabelRequest, GetOrderByExternalIdRequest, GetOrderRequest, GetOrderResponse,
    GetShardMapRequest, LabelDocument, ListOrdersRequest, ListOrdersResponse, NodeAddress, Order,
    OrderActionResponse, OrderStatus, OrderView, PlaceHoldRequest, ReadEventsRequest,
    ReadEventsResponse, Rejection, ReleaseHoldRequest, SetCarrierRoutingRequest, ShardCommand,
    ShardMap, ShardRoute, SubmitBatch, SubmitItem, SubmitOrderRequest, SubmitOrderResponse,
    SubmitOrdersRequest, SubmitOrdersResponse, SubmitResult, WatchOrdersRequest,
};
use surge_grpc::ApiError;
use surge_proto::limits::{self, MAX_REPLY_BYTES};
use surge_proto::{routing, validate};
use surge_shard::{view_of, Applied, Cursor, ItemOutcome, ShardSm};
use tonic::{Code, Request, Response, Status};

use crate::actions::now_ms;
use crate::dispatch::{forward_failed, is_forwarded, not_leader, with_leader, Route, Target};
use crate::metrics::{self, OrderMetrics};
use crate::order_api::OrderApi;

mod grpc;

/// Most orders listed per page.
pub const MAX_PAGE: u32 = 1000;
const DEFAULT_PAGE: u32 = 100;

fn invalid(e: validate::FieldError) -> Status {
    ApiError::invalid_argument(e.field, e.reason).into()
}

pub(crate) fn field_error(field: &str, reason: impl Into<String>) -> Status {
    ApiError::invalid_argument(field, reason.into()).into()
}

fn payload_hash(order: &Order) -> Vec<u8> {
    Sha256::digest(order.encode_to_vec()).to_vec()
}

/// An external id that already names another order with a different payload.
fn conflict(platform: &str, external_id: &str, existing: &str) -> ApiError {
    ApiError::already_exists(format!(
        "external_order_id: ({platform}, {external_id}) is already order {existing}, with a different payload"
    ))
    .with_field("external_order_id")
    .with_existing_order(existing)
}

impl OrderApi {
    /// Proposes `orders` (one tenant, one shard) here; one outcome per order.
    async fn propose_local(
        &self,
        tenant: u64,
        shard: u32,
        orders: Vec<Order>,
    ) -> Result<Vec<ItemOutcome>, Status> {
        let items = orders
            .into_iter()
            .map(|order| SubmitItem {
                payload_hash: payload_hash(&order),
                order: Some(order),
            })
            .collect();
        let cmd = ShardCommand {
            command: Some(ShardCmd::Submit(SubmitBatch {
                tenant_id: tenant,
                received_at_ms: now_ms(),
                items,
            })),
        };
        let outcome = self
            .handle
            .propose(u64::from(shard), cmd.encode_to_vec())
            .await
            .map_err(|e| self.map_request(shard, e))?;
        match outcome.map_err(ApiError::internal)? {
            Applied::Submitted(items) => Ok(items),
            other => Err(ApiError::internal(format!("unexpected answer {other:?}")).into()),
        }
    }

    /// Submits the orders of one shard: here if this node leads it, else at the leader.
    async fn submit_shard<U>(
        &self,
        original: &Request<U>,
        tenant: u64,
        shard: u32,
        orders: Vec<Order>,
    ) -> Result<Vec<Result<surge_grpc::v1::Acceptance, Rejection>>, Status> {
        match self.route(original, shard, "submit")? {
            Route::Local => {
                // Only the ids are kept for the answers: the orders move into the command.
                let ids: Vec<(String, String)> = orders
                    .iter()
                    .map(|o| (o.platform.clone(), o.external_order_id.clone()))
                    .collect();
                self.admit_orders(tenant, orders.len())?;
                let outcomes = self.propose_local(tenant, shard, orders).await?;
                Ok(outcomes
                    .into_iter()
                    .zip(ids.iter())
                    .map(|(o, (platform, ext))| match o {
                        ItemOutcome::Accepted(a) => Ok(a),
                        ItemOutcome::Conflict { existing_order_id } => {
                            Err(conflict(platform, ext, &existing_order_id).rejection())
                        }
                    })
                    .collect())
            }
            Route::Forward { address, channel } => {
                let n = orders.len();
                if let Some(wait) = self.admission.held(tenant, &address) {
                    let refusal = self.held_refusal(tenant, n, wait).rejection();
                    return Ok(vec![Err(refusal); n]);
                }
                let request = self.forward_request(original, SubmitOrdersRequest { orders });
                let resp = OrderServiceClient::new(channel)
                    .submit_orders(request)
                    .await
                    .map_err(|s| forward_failed(s, &address))?
                    .into_inner();
                let mut out = vec![
                    Err(ApiError::unavailable(
                        "no result from the shard leader; retry"
                    )
                    .rejection());
                    n
                ];
                for r in resp.results {
                    if let Some(slot) = out.get_mut(r.index as usize) {
                        *slot = match r.outcome {
                            Some(Outcome::Accepted(a)) => Ok(a),
                            Some(Outcome::Rejected(rej)) => Err(rej),
                            None => continue,
                        };
                    }
                }
                // The leader turned the whole sub-batch away over the tenant's limit: ask it
                // again only once it said to.
                let exhausted = surge_grpc::v1::ErrorCode::ResourceExhausted as i32;
                let throttled = |o: &Result<_, Rejection>| matches!(o, Err(r) if r.code == exhausted && r.retry_after_ms > 0);
                if n > 0 && out.iter().all(throttled) {
                    let wait = out
                        .iter()
                        .filter_map(|o| o.as_ref().err().map(|r| r.retry_after_ms))
                        .min()
                        .unwrap_or(0);
                    let wait = Duration::from_millis(wait);
                    self.admission.hold(tenant, &address, wait);
                }
                Ok(out)
            }
        }
    }

    fn shard_of_order(&self, tenant: u64, order: &Order) -> Result<u32, Status> {
        let count = self.shard_count();
        if count == 0 {
            return Err(ApiError::unavailable("the shard map is not loaded yet; retry").into());
        }
        let key = if order.routing_key.is_empty() {
            &order.external_order_id
        } else {
            &order.routing_key
        };
        Ok(routing::shard_for(&tenant.to_string(), key, count))
    }

    /// Runs a read on the shard: locally at the leader (ReadIndex) or a local replica when
    /// `stale_ok`, else forwarded via `forward`.
    pub(crate) async fn read_shard<R, F>(
        &self,
        shard: u32,
        stale_ok: bool,
        f: F,
    ) -> Result<Option<R>, Status>
    where
        R: Send + 'static,
        F: FnOnce(&ShardSm<surge_rocks::RocksEngine>) -> Result<R, surge_raftstore::EngineError>
            + Send
            + 'static,
    {
        let group = u64::from(shard);
        let result = if stale_ok && self.handle.status(group).is_some() {
            self.handle.inspect(group, move |peer| f(&peer.sm)).await
        } else {
            self.handle.read(group, f).await
        };
        match result {
            Ok(Ok(r)) => Ok(Some(r)),
            Ok(Err(e)) => Err(ApiError::internal(e.to_string()).into()),
            Err(e) => Err(self.map_request(shard, e).into()),
        }
    }

    async fn get_order_here(
        &self,
        tenant: u64,
        shard: u32,
        order_id: String,
        stale_ok: bool,
    ) -> Result<Option<OrderView>, Status> {
        let found = self
            .read_shard(shard, stale_ok, move |sm| sm.get(tenant, &order_id))
            .await?;
        Ok(found.flatten().map(view_of))
    }

    /// One shard's orders of a `ListOrders` page, in (accepted_at_ms, order_id) order, and
    /// whether the shard has more that were cut to keep the reply under the byte limit.
    async fn list_shard<U>(
        &self,
        original: &Request<U>,
        tenant: u64,
        shard: u32,
        req: &ListOrdersRequest,
        after: Option<Cursor>,
        limit: usize,
    ) -> Result<(Vec<OrderView>, bool), Status> {
        match self.route(original, shard, "list")? {
            Route::Local => {
                let status = req.status();
                let (from, to) = (req.from_ms, req.to_ms);
                let found = self
                    .read_shard(shard, false, move |sm| {
                        sm.list(tenant, status, from, to, after.as_ref(), limit)
                    })
                    .await?
                    .unwrap_or_default();
                let mut views: Vec<OrderView> = found.into_iter().map(view_of).collect();
                let cut = !limits::fit(&mut views, MAX_REPLY_BYTES).is_empty();
                Ok((views, cut))
            }
            Route::Forward { channel, .. } => {
                let mut sub = req.clone();
                sub.only_shard = Some(shard);
                sub.page_size = limit as u32;
                sub.page_token = after.map(|c| c.encode()).unwrap_or_default();
                let request = self.forward_request(original, sub);
                let page = OrderServiceClient::new(channel)
                    .list_orders(request)
                    .await?
                    .into_inner();
                // Fewer than asked for, with a next page: the leader cut it by bytes.
                let cut = !page.next_page_token.is_empty() && page.orders.len() < limit;
                Ok((page.orders, cut))
            }
        }
    }
}

pub(crate) fn observe<T>(method: &str, started: Instant, result: &Result<T, Status>) {
    let code = match result {
        Ok(_) => Code::Ok,
        Err(s) => s.code(),
    };
    metrics::observe_rpc(method, code, started.elapsed());
}
