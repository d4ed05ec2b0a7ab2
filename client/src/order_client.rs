//! [`OrderClient`]: what a merchant's ERP links to submit and read orders.
//!
//! It caches the shard map (tenant id, shard count, each shard's leader and the node
//! addresses), computes each order's shard with the wire-contract hash, and calls the shard's
//! leader directly. On a leader hint — in a refusal, or in the answer of a node that forwarded
//! the call because the map was stale — it goes there next; on any other transient failure it
//! refreshes the map from another node and retries with the same order under a bounded
//! backoff and deadline. Intake is idempotent on (tenant, platform, external order id), so a
//! retry after an ambiguous failure never creates a second order.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use surge_grpc::tls::Transport;
use surge_grpc::v1::order_service_client::OrderServiceClient;
use surge_grpc::v1::submit_result::Outcome;
use surge_grpc::v1::{
    Acceptance, GetOrderByExternalIdRequest, GetOrderRequest, GetShardMapRequest,
    ListOrdersRequest, ListOrdersResponse, Order, OrderView, ShardMap, SubmitOrderRequest,
    SubmitOrdersRequest, SubmitResult,
};
use surge_proto::{auth, routing, LEADER_HINT_METADATA};
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use tonic::{Request, Status};
use tracing::debug;

use crate::channels::ChannelCache;
use crate::retry::{is_retryable, RetryPolicy, Tries};

mod batch;
mod calls;

/// The cached routing picture.
#[derive(Clone, Debug, Default)]
struct Routes {
    tenant_id: u64,
    shard_count: u32,
    /// Shard → leader address, when known.
    leaders: HashMap<u32, String>,
    nodes: Vec<String>,
}

/// The shard of `order` under `routes`.
fn shard_in(routes: &Routes, order: &Order) -> u32 {
    let key = if order.routing_key.is_empty() {
        &order.external_order_id
    } else {
        &order.routing_key
    };
    routing::shard_for(&routes.tenant_id.to_string(), key, routes.shard_count)
}

fn hint(status: &Status) -> Option<String> {
    leader_of(status.metadata())
}

/// The leader address a node named in a refusal's or a forwarded answer's metadata.
fn leader_of(metadata: &tonic::metadata::MetadataMap) -> Option<String> {
    metadata
        .get(LEADER_HINT_METADATA)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

/// A client of the nodes' `OrderService`, for one tenant (its API key).
pub struct OrderClient {
    seeds: Vec<String>,
    authorization: MetadataValue<tonic::metadata::Ascii>,
    routes: RwLock<Routes>,
    channels: ChannelCache,
    policy: RetryPolicy,
    call_timeout: Duration,
    next_seed: Mutex<usize>,
    /// Nodes that just failed at the connection level, with when: skipped for a while.
    unreachable: Mutex<HashMap<String, Instant>>,
    /// Calls and batched orders sent again after a transient failure, since it was made.
    retries: AtomicU64,
}

/// How long a node that refused connections is skipped when picking a node to ask.
const UNREACHABLE_FOR: Duration = Duration::from_secs(3);

/// True when the call never reached a serving node (refused, reset, timed out connecting):
/// the failure was made here, with the transport's error as its source.
fn is_connection_error(status: &Status) -> bool {
    hint(status).is_none() && crate::retry::no_answer_cause(status).is_some()
}

impl OrderClient {
    /// A client that finds the cluster through `seeds` (node addresses, `host:port`).
    pub fn new(seeds: Vec<String>, api_key: &str) -> Result<OrderClient, Status> {
        if seeds.is_empty() {
            return Err(Status::invalid_argument(
                "nodes: at least one node address is needed",
            ));
        }
        let authorization = MetadataValue::try_from(format!("Bearer {api_key}"))
            .map_err(|_| Status::invalid_argument("api_key: not a valid header value"))?;
        Ok(OrderClient {
            seeds,
            authorization,
            routes: RwLock::new(Routes::default()),
            channels: ChannelCache::new("nodes", Transport::Plaintext),
            policy: RetryPolicy {
                first_backoff: Duration::from_millis(25),
                max_backoff: Duration::from_millis(400),
                max_attempts: 200,
                deadline: Duration::from_secs(20),
                unreachable_after: None,
            },
            call_timeout: Duration::from_secs(8),
            next_seed: Mutex::new(0),
            unreachable: Mutex::new(HashMap::new()),
            retries: AtomicU64::new(0),
        })
    }

    /// Calls over `transport` (TLS verified against the cluster CA) instead of plaintext.
    pub fn with_transport(mut self, transport: Transport) -> OrderClient {
        self.channels = ChannelCache::new("nodes", transport);
        self
    }

    /// The transport this client calls over.
    pub fn transport(&self) -> &Transport {
        self.channels.transport()
    }

    pub fn with_policy(mut self, policy: RetryPolicy) -> OrderClient {
        self.policy = policy;
        self
    }

    pub fn with_call_timeout(mut self, timeout: Duration) -> OrderClient {
        self.call_timeout = timeout;
        self
    }

    fn channel(&self, address: &str) -> Result<Channel, Status> {
        self.channels.get(address, |e| {
            e.http2_keep_alive_interval(Duration::from_secs(1))
                .keep_alive_timeout(Duration::from_secs(2))
        })
    }

    fn request<T>(&self, message: T) -> Request<T> {
        let mut request = Request::new(message);
        request
            .metadata_mut()
            .insert(auth::AUTHORIZATION, self.authorization.clone());
        request.set_timeout(self.call_timeout);
        request
    }

    /// Some node to ask: the seeds and known nodes in turn.
    fn any_node(&self) -> String {
        let known = self
            .routes
            .read()
            .map(|r| r.nodes.clone())
            .unwrap_or_default();
        let mut all = self.seeds.clone();
        all.extend(known.into_iter().filter(|n| !self.seeds.contains(n)));
        let reachable: Vec<String> = all
            .iter()
            .filter(|a| !self.is_unreachable(a))
            .cloned()
            .collect();
        let pool = if reachable.is_empty() { all } else { reachable };
        let mut next = self.next_seed.lock().unwrap_or_else(|p| p.into_inner());
        *next = next.wrapping_add(1);
        pool[*next % pool.len()].clone()
    }

    fn is_unreachable(&self, address: &str) -> bool {
        self.unreachable
            .lock()
            .ok()
            .and_then(|u| u.get(address).copied())
            .is_some_and(|at| at.elapsed() < UNREACHABLE_FOR)
    }

    /// Remembers that `address` failed at the connection level, if `status` says so.
    fn note_connection(&self, address: &str, status: &Status) {
        if is_connection_error(status) {
            if let Ok(mut u) = self.unreachable.lock() {
                u.retain(|_, at| at.elapsed() < UNREACHABLE_FOR);
                u.insert(address.to_string(), Instant::now());
            }
        }
    }

    /// The shard map from some node (cached too), retried on other nodes under the policy.
    pub async fn shard_map(&self) -> Result<ShardMap, Status> {
        self.with_retry(|| self.refresh()).await
    }

    /// Fetches the shard map from one node and caches it; no retry.
    /// How many times this client sent something again after a transient failure (a leader
    /// change, a moved replica, a node down): each retried call counts one, each order of a
    /// batch sent again counts one. What a dashboard or a benchmark shows next to latency.
    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }

    fn count_retried(&self, n: usize) {
        self.retries.fetch_add(n as u64, Ordering::Relaxed);
    }

    pub async fn refresh(&self) -> Result<ShardMap, Status> {
        let address = self.any_node();
        let map = OrderServiceClient::new(self.channel(&address)?)
            .get_shard_map(self.request(GetShardMapRequest {}))
            .await
            .inspect_err(|s| self.note_connection(&address, s))?
            .into_inner();
        let nodes: HashMap<u64, String> = map
            .nodes
            .iter()
            .map(|n| (n.id, n.address.clone()))
            .collect();
        let leaders = map
            .shards
            .iter()
            .filter_map(|s| nodes.get(&s.leader).map(|a| (s.id, a.clone())))
            .collect();
        if let Ok(mut r) = self.routes.write() {
            *r = Routes {
                tenant_id: map.tenant_id,
                shard_count: map.shard_count,
                leaders,
                nodes: nodes.into_values().collect(),
            };
        }
        Ok(map)
    }

    async fn routes(&self) -> Result<Routes, Status> {
        let cached = self.routes.read().map(|r| r.clone()).unwrap_or_default();
        if cached.shard_count > 0 {
            return Ok(cached);
        }
        self.with_retry(|| async { self.refresh().await.map(|_| ()) })
            .await?;
        Ok(self.routes.read().map(|r| r.clone()).unwrap_or_default())
    }

    /// The shard `order` belongs to (needs the shard map).
    pub async fn shard_of(&self, order: &Order) -> Result<u32, Status> {
        let routes = self.routes().await?;
        Ok(shard_in(&routes, order))
    }

    fn address_for(&self, shard: u32) -> String {
        self.routes
            .read()
            .ok()
            .and_then(|r| r.leaders.get(&shard).cloned())
            .filter(|a| !self.is_unreachable(a))
            .unwrap_or_else(|| self.any_node())
    }

    /// Learns from a failed call on `shard`: follow a hint, or forget the leader.
    fn note_failure(&self, shard: Option<u32>, status: &Status) {
        let Some(shard) = shard else { return };
        if let Ok(mut r) = self.routes.write() {
            match hint(status) {
                Some(h) => {
                    r.leaders.insert(shard, h);
                }
                None => {
                    r.leaders.remove(&shard);
                }
            }
        }
    }

    fn note_leader(&self, shard: u32, address: &str) {
        if let Ok(mut r) = self.routes.write() {
            if r.leaders.get(&shard).map(String::as_str) != Some(address) {
                r.leaders.insert(shard, address.to_string());
            }
        }
    }

    async fn with_retry<T, F, Fut>(&self, mut f: F) -> Result<T, Status>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, Status>>,
    {
        let mut tries = Tries::new(&self.policy);
        loop {
            let status = match f().await {
                Ok(v) => return Ok(v),
                Err(status) if is_retryable(&status) => status,
                Err(status) => return Err(status),
            };
            debug!(code = ?status.code(), message = status.message(), attempt = tries.attempt(), "retrying");
            // Straight to a fresh hint; otherwise (no hint, or one naming a node that just
            // refused connections) back off first.
            let pause = if hint(&status).is_none_or(|h| self.is_unreachable(&h)) {
                tries.backoff(1)
            } else {
                Duration::ZERO
            };
            tries.again(status, pause).await?;
            self.count_retried(1);
        }
    }

    /// Calls `f` at the leader of the shard `order_id` names (any node when the id is
    /// malformed: it answers the error), retrying transient failures and following hints.
    /// For lifecycle calls, which are idempotent: a retried action answers the current state.
    pub async fn on_order<Req, T, F, Fut>(
        &self,
        order_id: &str,
        message: Req,
        f: F,
    ) -> Result<T, Status>
    where
        Req: Clone,
        F: Fn(Channel, Request<Req>) -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<T>, Status>>,
    {
        let shard = order_id
            .split('-')
            .next()
            .and_then(|s| s.parse::<u32>().ok());
        self.with_retry(|| {
            let message = message.clone();
            let f = &f;
            async move {
                let address = match shard {
                    Some(s) => self.address_for(s),
                    None => self.any_node(),
                };
                match f(self.channel(&address)?, self.request(message)).await {
                    Ok(r) => {
                        if let Some(s) = shard {
                            // A forwarded answer names the leader that gave it.
                            self.note_leader(s, &leader_of(r.metadata()).unwrap_or(address));
                        }
                        Ok(r.into_inner())
                    }
                    Err(status) => {
                        self.note_connection(&address, &status);
                        self.note_failure(shard, &status);
                        // The shard may have moved: a stale map is refreshed on the first
                        // refusal that names no leader.
                        if hint(&status).is_none() && is_retryable(&status) {
                            let _ = self.refresh().await;
                        }
                        Err(status)
                    }
                }
            }
        })
        .await
    }

    /// Calls `f` on some node (any node serves it), retrying transient failures elsewhere.
    pub async fn on_any<Req, T, F, Fut>(&self, message: Req, f: F) -> Result<T, Status>
    where
        Req: Clone,
        F: Fn(Channel, Request<Req>) -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<T>, Status>>,
    {
        self.with_retry(|| {
            let message = message.clone();
            let f = &f;
            async move {
                let address = self.any_node();
                f(self.channel(&address)?, self.request(message))
                    .await
                    .map(|r| r.into_inner())
                    .inspect_err(|s| self.note_connection(&address, s))
            }
        })
        .await
    }

    /// A request to `address` with this client's key and no deadline, for long-lived streams.
    pub fn stream_request<T>(
        &self,
        address: &str,
        message: T,
    ) -> Result<(Channel, Request<T>), Status> {
        let mut request = Request::new(message);
        request
            .metadata_mut()
            .insert(auth::AUTHORIZATION, self.authorization.clone());
        Ok((self.channel(address)?, request))
    }

    /// Every node address the shard map names (fetched if not cached).
    pub async fn node_addresses(&self) -> Result<Vec<String>, Status> {
        let mut nodes = self.routes().await?.nodes;
        nodes.sort();
        Ok(nodes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A failure made here, as tonic makes one when a connection is refused.
    fn refused() -> Status {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "tcp connect error");
        Status::from_error(Box::new(io))
    }

    #[test]
    fn transient_and_connection_failures_are_told_apart() {
        assert!(is_retryable(&Status::unavailable("not the leader")));
        assert!(is_retryable(&refused()));
        assert!(!is_retryable(&Status::invalid_argument(
            "lines[0].quantity: ..."
        )));
        assert!(!is_retryable(&Status::already_exists(
            "external_order_id: ..."
        )));
        assert!(is_connection_error(&refused()));
        assert!(!is_connection_error(&Status::unavailable(
            "tcp connect error, said a server"
        )));
        let mut hinted = refused();
        hinted
            .metadata_mut()
            .insert(LEADER_HINT_METADATA, MetadataValue::from_static("n:1"));
        assert!(
            !is_connection_error(&hinted),
            "a node that answered is reachable"
        );
    }

    #[test]
    fn an_unreachable_node_is_skipped_for_a_while() {
        let c = OrderClient::new(vec!["a:1".into(), "b:1".into()], "k").expect("client");
        c.note_connection("a:1", &refused());
        for _ in 0..10 {
            assert_eq!(c.any_node(), "b:1");
        }
        c.note_connection("b:1", &refused());
        let picked: std::collections::BTreeSet<String> = (0..4).map(|_| c.any_node()).collect();
        assert_eq!(picked.len(), 2, "with every node down, all are tried");
    }
}
