//! `OrderService`: merchants' ERPs. Every call is authenticated by its bearer API key and
//! scoped to that key's tenant. Any node accepts any call: the shard's leader serves it, any
//! other node forwards it once to the leader, and a node that cannot answers UNAVAILABLE with
//! the leader's address in `x-surge-leader`.

use std::collections::BTreeMap;
use std::time::Instant;

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
    ReadEventsResponse, Rejection, ReleaseHoldRequest, ShardCommand, ShardMap, ShardRoute,
    SubmitBatch, SubmitItem, SubmitOrderRequest, SubmitOrderResponse, SubmitOrdersRequest,
    SubmitOrdersResponse, SubmitResult, WatchOrdersRequest,
};
use surge_proto::{routing, validate};
use surge_shard::{view_of, Applied, Cursor, ItemOutcome, ShardSm};
use tonic::metadata::MetadataValue;
use tonic::{Code, Request, Response, Status};

use crate::actions::now_ms;
use crate::dispatch::{forward_failed, is_forwarded, with_hint, with_leader, Route, Target};
use crate::metrics::{self, OrderMetrics};
use crate::order_api::OrderApi;

mod grpc;

/// On ALREADY_EXISTS: the order that already holds the external id.
pub const EXISTING_ORDER_METADATA: &str = "x-surge-existing-order";
/// Most orders listed per page.
pub const MAX_PAGE: u32 = 1000;
const DEFAULT_PAGE: u32 = 100;
fn invalid(e: validate::FieldError) -> Status {
    Status::invalid_argument(e.to_string())
}

pub(crate) fn field_error(field: &str, reason: impl Into<String>) -> Status {
    Status::invalid_argument(format!("{field}: {}", reason.into()))
}

fn payload_hash(order: &Order) -> Vec<u8> {
    Sha256::digest(order.encode_to_vec()).to_vec()
}

fn conflict_status(platform: &str, external_id: &str, existing: &str) -> Status {
    with_existing(
        Status::already_exists(format!(
            "external_order_id: ({platform}, {external_id}) is already order {existing}, with a different payload"
        )),
        existing,
    )
}

/// Names the order that holds an external id, in metadata as well as in the message.
fn with_existing(mut status: Status, existing: &str) -> Status {
    if let Ok(v) = MetadataValue::try_from(existing) {
        status.metadata_mut().insert(EXISTING_ORDER_METADATA, v);
    }
    status
}

fn rejection(status: &Status, field: &str, existing: &str) -> Rejection {
    Rejection {
        code: format!("{:?}", status.code()),
        message: status.message().to_string(),
        field: field.to_string(),
        existing_order_id: existing.to_string(),
    }
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
            .map_err(|e| self.map_request(e))?;
        match outcome.map_err(Status::internal)? {
            Applied::Submitted(items) => Ok(items),
            other => Err(Status::internal(format!("unexpected answer {other:?}"))),
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
                let outcomes = self.propose_local(tenant, shard, orders).await?;
                Ok(outcomes
                    .into_iter()
                    .zip(ids.iter())
                    .map(|(o, (platform, ext))| match o {
                        ItemOutcome::Accepted(a) => Ok(a),
                        ItemOutcome::Conflict { existing_order_id } => Err(rejection(
                            &conflict_status(platform, ext, &existing_order_id),
                            "external_order_id",
                            &existing_order_id,
                        )),
                    })
                    .collect())
            }
            Route::Forward { address, channel } => {
                let n = orders.len();
                let request = self.forward_request(original, SubmitOrdersRequest { orders });
                let resp = OrderServiceClient::new(channel)
                    .submit_orders(request)
                    .await
                    .map_err(|s| forward_failed(s, &address))?
                    .into_inner();
                let mut out = vec![
                    Err(Rejection {
                        code: "UNAVAILABLE".into(),
                        message: "no result from the shard leader; retry".into(),
                        ..Rejection::default()
                    });
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
                Ok(out)
            }
        }
    }

    fn shard_of_order(&self, tenant: u64, order: &Order) -> Result<u32, Status> {
        let count = self.shard_count();
        if count == 0 {
            return Err(Status::unavailable(
                "the shard map is not loaded yet; retry",
            ));
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
            Ok(Err(e)) => Err(Status::internal(e.to_string())),
            Err(e) => Err(self.map_request(e)),
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

    async fn list_shard<U>(
        &self,
        original: &Request<U>,
        tenant: u64,
        shard: u32,
        req: &ListOrdersRequest,
        after: Option<Cursor>,
        limit: usize,
    ) -> Result<Vec<OrderView>, Status> {
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
                Ok(found.into_iter().map(view_of).collect())
            }
            Route::Forward { channel, .. } => {
                let mut sub = req.clone();
                sub.only_shard = Some(shard);
                sub.page_size = limit as u32;
                sub.page_token = after.map(|c| c.encode()).unwrap_or_default();
                let request = self.forward_request(original, sub);
                Ok(OrderServiceClient::new(channel)
                    .list_orders(request)
                    .await?
                    .into_inner()
                    .orders)
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
