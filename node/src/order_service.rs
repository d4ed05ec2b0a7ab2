//! `OrderService`: merchants' ERPs. Every call is authenticated by its bearer API key and
//! scoped to that key's tenant. Any node accepts any call: the shard's leader serves it, any
//! other node forwards it once to the leader, and a node that cannot answers UNAVAILABLE with
//! the leader's address in `x-surge-leader`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use prost::Message as _;
use sha2::{Digest, Sha256};
use surge_client::channels::ChannelCache;
use surge_proto::v1::order_service_client::OrderServiceClient;
use surge_proto::v1::order_service_server::OrderService;
use surge_proto::v1::shard_command::Command as ShardCmd;
use surge_proto::v1::submit_result::Outcome;
use surge_proto::v1::{
    CancelOrderRequest, CancelOrderResponse, ConfirmPackedRequest, ConfirmShippedRequest,
    GetLabelRequest, GetOrderByExternalIdRequest, GetOrderRequest, GetOrderResponse,
    GetShardMapRequest, LabelDocument, ListOrdersRequest, ListOrdersResponse, NodeAddress, Order,
    OrderActionResponse, OrderStatus, OrderView, PlaceHoldRequest, ReadEventsRequest,
    ReadEventsResponse, Rejection, ReleaseHoldRequest, ShardCommand, ShardMap, ShardRoute,
    SubmitBatch, SubmitItem, SubmitOrderRequest, SubmitOrderResponse, SubmitOrdersRequest,
    SubmitOrdersResponse, SubmitResult, WatchOrdersRequest,
};
use surge_proto::{auth, routing, validate, LEADER_HINT_METADATA};
use surge_raftstore::RequestError;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use tonic::{Code, Request, Response, Status};

use crate::actions::now_ms;
use crate::directory::{DirectoryRefresh, SharedDirectory};
use crate::metrics::{self, OrderMetrics};
use crate::replicas::ShardHandle;
use crate::shard::{self, view_of, Applied, Cursor, ItemOutcome};

mod grpc;

/// Marks a call one node forwarded to another: it is never forwarded again.
pub const FORWARDED_METADATA: &str = "x-surge-forwarded";
/// On ALREADY_EXISTS: the order that already holds the external id.
pub const EXISTING_ORDER_METADATA: &str = "x-surge-existing-order";
/// Most orders listed per page.
pub const MAX_PAGE: u32 = 1000;
const DEFAULT_PAGE: u32 = 100;
/// How long a call with an unknown API key waits for a fresher directory.
const KEY_REFRESH_WAIT: Duration = Duration::from_millis(1500);
/// A forwarded call's deadline.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(7);

/// Where a shard's calls go from this node.
pub(crate) enum Target {
    Local,
    Remote { address: String },
    Unknown,
}

#[derive(Clone)]
pub struct OrderApi {
    pub(crate) node_id: u64,
    pub(crate) handle: ShardHandle,
    pub(crate) directory: SharedDirectory,
    pub(crate) refresh: DirectoryRefresh,
    pub(crate) channels: Arc<ChannelCache>,
}

fn invalid(e: validate::FieldError) -> Status {
    Status::invalid_argument(e.to_string())
}

pub(crate) fn field_error(field: &str, reason: impl Into<String>) -> Status {
    Status::invalid_argument(format!("{field}: {}", reason.into()))
}

fn payload_hash(order: &Order) -> Vec<u8> {
    Sha256::digest(order.encode_to_vec()).to_vec()
}

/// A successful answer that was forwarded, naming the leader that gave it (as a refusal's hint
/// does), so the caller's stale shard map is corrected without a refusal.
pub(crate) fn with_leader<T>(mut response: Response<T>, address: Option<&str>) -> Response<T> {
    if let Some(value) = address.and_then(|a| MetadataValue::try_from(a).ok()) {
        response.metadata_mut().insert(LEADER_HINT_METADATA, value);
    }
    response
}

pub(crate) fn with_hint(mut status: Status, address: Option<&str>) -> Status {
    if let Some(value) = address.and_then(|a| MetadataValue::try_from(a).ok()) {
        status.metadata_mut().insert(LEADER_HINT_METADATA, value);
    }
    status
}

/// A forwarded call's failure as this node answers it. If the leader never answered (it is
/// down or cut off), the caller is told to retry, without a hint at that leader: it is likely
/// being replaced, and the client's backoff should apply.
pub(crate) fn forward_failed(status: Status, leader: &str) -> Status {
    let reached = status.metadata().contains_key(LEADER_HINT_METADATA)
        || !matches!(
            status.code(),
            Code::Unavailable | Code::Unknown | Code::Cancelled
        );
    if reached {
        status
    } else {
        Status::unavailable(format!(
            "the shard leader at {leader} did not answer ({}); retry",
            status.message()
        ))
    }
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

pub(crate) fn is_forwarded<T>(request: &Request<T>) -> bool {
    request.metadata().contains_key(FORWARDED_METADATA)
}

impl OrderApi {
    pub fn new(
        node_id: u64,
        handle: ShardHandle,
        directory: SharedDirectory,
        refresh: DirectoryRefresh,
    ) -> OrderApi {
        OrderApi {
            node_id,
            handle,
            directory,
            refresh,
            channels: Arc::new(ChannelCache::new("nodes")),
        }
    }

    /// The tenant of the call's API key.
    /// A key this node does not know may have been created a moment ago: ask for an early
    /// heartbeat and look again once the directory changed (bounded wait), then refuse.
    pub(crate) async fn tenant<T>(&self, request: &Request<T>) -> Result<u64, Status> {
        let Some(value) = request.metadata().get(auth::AUTHORIZATION) else {
            return Err(Status::unauthenticated(
                "authorization: missing; send `authorization: Bearer <api key>`",
            ));
        };
        let key =
            value.to_str().ok().and_then(auth::bearer).ok_or_else(|| {
                Status::unauthenticated("authorization: expected `Bearer <api key>`")
            })?;
        if let Some(tenant) = self.lookup_key(key)? {
            return Ok(tenant);
        }
        let mut version = self.refresh.version.clone();
        version.borrow_and_update();
        self.refresh.wanted.notify_one();
        let _ = tokio::time::timeout(KEY_REFRESH_WAIT, version.changed()).await;
        self.lookup_key(key)?
            .ok_or_else(|| Status::unauthenticated("authorization: unknown API key"))
    }

    fn lookup_key(&self, key: &str) -> Result<Option<u64>, Status> {
        let dir = self
            .directory
            .read()
            .map_err(|_| Status::internal("directory lock poisoned"))?;
        if !dir.is_loaded() {
            return Err(Status::unavailable(
                "this node has not heard from the coordinators yet; retry",
            ));
        }
        Ok(dir.tenant_of_key(key))
    }

    pub(crate) fn shard_count(&self) -> u32 {
        self.directory.read().map(|d| d.shard_count).unwrap_or(0)
    }

    pub(crate) fn address_of(&self, node: u64) -> Option<String> {
        self.directory
            .read()
            .ok()?
            .address(node)
            .map(str::to_string)
    }

    pub(crate) fn target(&self, shard: u32) -> Target {
        let group = u64::from(shard);
        let leader = match self.handle.status(group) {
            Some(st) if st.is_leader() => return Target::Local,
            Some(st) if st.leader != 0 => st.leader,
            _ => self
                .directory
                .read()
                .ok()
                .and_then(|d| d.shards.get(&shard).map(|s| s.leader))
                .unwrap_or(0),
        };
        if leader == 0 || leader == self.node_id {
            return Target::Unknown;
        }
        match self.address_of(leader) {
            Some(address) => Target::Remote { address },
            None => Target::Unknown,
        }
    }

    pub(crate) fn channel(&self, address: &str) -> Result<Channel, Status> {
        self.channels.get(address, |e| e)
    }

    /// A request to forward, carrying the caller's API key and the forwarded mark.
    pub(crate) fn forward_request<T, U>(&self, original: &Request<U>, message: T) -> Request<T> {
        let mut request = Request::new(message);
        if let Some(v) = original.metadata().get(auth::AUTHORIZATION) {
            request
                .metadata_mut()
                .insert(auth::AUTHORIZATION, v.clone());
        }
        request
            .metadata_mut()
            .insert(FORWARDED_METADATA, MetadataValue::from_static("1"));
        request.set_timeout(FORWARD_TIMEOUT);
        request
    }

    pub(crate) fn map_request(&self, err: RequestError) -> Status {
        match err {
            RequestError::NotLeader { leader } => {
                let address = leader.and_then(|l| self.address_of(l));
                with_hint(
                    Status::unavailable("not the shard leader; retry at the leader"),
                    address.as_deref(),
                )
            }
            RequestError::Timeout => Status::unavailable(
                "no answer within the deadline; the outcome is unknown, and a retry with the same external order id is safe",
            ),
            RequestError::Dropped => {
                Status::unavailable("the proposal was dropped by a leader change; retry")
            }
            RequestError::NoGroup(g) => {
                Status::unavailable(format!("shard {g} has no replica on this node; retry"))
            }
            RequestError::Busy => Status::resource_exhausted("too many requests in flight; retry"),
            RequestError::Stopped => Status::unavailable("the node is stopping; retry elsewhere"),
            RequestError::Rejected(m) => Status::internal(m),
        }
    }

    pub(crate) fn unavailable(&self, shard: u32) -> Status {
        Status::unavailable(format!(
            "shard {shard} has no known leader right now; retry"
        ))
    }

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

    /// The leader's address if a call for `shard` would be forwarded from here: the caller is
    /// told it with the answer, so its next call goes straight there.
    fn forwards_to<U>(&self, original: &Request<U>, shard: u32) -> Option<String> {
        match self.target(shard) {
            Target::Remote { address } if !is_forwarded(original) => Some(address),
            _ => None,
        }
    }

    /// Submits the orders of one shard: here if this node leads it, else at the leader.
    async fn submit_shard<U>(
        &self,
        original: &Request<U>,
        tenant: u64,
        shard: u32,
        orders: Vec<Order>,
    ) -> Result<Vec<Result<surge_proto::v1::Acceptance, Rejection>>, Status> {
        match self.target(shard) {
            Target::Local => {
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
            Target::Remote { address } if !is_forwarded(original) => {
                OrderMetrics::get()
                    .forwarded
                    .with_label_values(&["submit"])
                    .inc();
                let n = orders.len();
                let request = self.forward_request(original, SubmitOrdersRequest { orders });
                let resp = OrderServiceClient::new(self.channel(&address)?)
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
            Target::Remote { address } => Err(with_hint(
                Status::unavailable("not the shard leader; retry at the leader"),
                Some(&address),
            )),
            Target::Unknown => Err(self.unavailable(shard)),
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
        F: FnOnce(
                &shard::ShardSm<surge_raftstore::RocksEngine>,
            ) -> Result<R, surge_raftstore::EngineError>
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
        match self.target(shard) {
            Target::Local => {
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
            Target::Remote { address } if !is_forwarded(original) => {
                OrderMetrics::get()
                    .forwarded
                    .with_label_values(&["list"])
                    .inc();
                let mut sub = req.clone();
                sub.only_shard = Some(shard);
                sub.page_size = limit as u32;
                sub.page_token = after.map(|c| c.encode()).unwrap_or_default();
                let request = self.forward_request(original, sub);
                Ok(OrderServiceClient::new(self.channel(&address)?)
                    .list_orders(request)
                    .await?
                    .into_inner()
                    .orders)
            }
            Target::Remote { address } => Err(with_hint(
                Status::unavailable("not the shard leader; retry at the leader"),
                Some(&address),
            )),
            Target::Unknown => Err(self.unavailable(shard)),
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
