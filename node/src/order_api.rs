//! The state every node service shares: this node's id, the shard replicas' Raft handle, the
//! directory (routes and tenants) from the coordinators, and channels to the other nodes; with
//! the lookups every call starts with (its tenant, a node's address, the shard count).

use std::sync::Arc;
use std::time::Duration;

use surge_client::channels::ChannelCache;
use surge_grpc::ApiError;
use surge_proto::auth;
use surge_proto::v1::{KeyScope, TenantLimits};
use tonic::transport::Channel;
use tonic::{Request, Status};

use crate::admission::{Admission, StreamSlot};
use crate::directory::{DirectoryRefresh, KeyGrant, SharedDirectory};
use crate::dispatch::is_forwarded;
use crate::replicas::ShardHandle;

/// How long a call with an unknown API key waits for a fresher directory.
const KEY_REFRESH_WAIT: Duration = Duration::from_millis(1500);

/// What a call needs its API key to allow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Need {
    /// Reads: any key.
    Read,
    /// Order changes: an `orders` key.
    Orders,
    /// Print jobs and labels: a `print` key.
    Print,
    /// Packing and shipping, done by the ERP or at the printing station: `orders` or `print`.
    Warehouse,
}

impl Need {
    fn check(self, grant: &KeyGrant) -> Result<(), Status> {
        let (ok, wanted) = match self {
            Need::Read => (true, ""),
            Need::Orders => (grant.has(KeyScope::Orders), "an orders key"),
            Need::Print => (grant.has(KeyScope::Print), "a print key"),
            Need::Warehouse => (
                grant.has(KeyScope::Orders) || grant.has(KeyScope::Print),
                "an orders or print key",
            ),
        };
        if ok {
            return Ok(());
        }
        let has: Vec<&str> = grant.scopes.iter().map(|s| scope_name(*s)).collect();
        Err(ApiError::permission_denied(format!(
            "authorization: this call needs {wanted}; the key's scopes are {}",
            if has.is_empty() {
                "none".to_string()
            } else {
                has.join(", ")
            }
        ))
        .into())
    }
}

fn scope_name(scope: KeyScope) -> &'static str {
    match scope {
        KeyScope::Orders => "orders",
        KeyScope::Print => "print",
        KeyScope::ReadOnly => "read-only",
        KeyScope::Unspecified => "unspecified",
    }
}

/// What `OrderService`, `PrintService` and the forwarding between nodes work with.
#[derive(Clone)]
pub struct OrderApi {
    pub(crate) node_id: u64,
    pub(crate) handle: ShardHandle,
    pub(crate) directory: SharedDirectory,
    pub(crate) refresh: DirectoryRefresh,
    pub(crate) channels: Arc<ChannelCache>,
    pub(crate) admission: Arc<Admission>,
    /// Draws labels (ZPL for print jobs, ZPL or PDF for GetLabel).
    pub(crate) renderer: Arc<surge_label::Renderer>,
}

impl OrderApi {
    pub fn new(
        node_id: u64,
        handle: ShardHandle,
        directory: SharedDirectory,
        refresh: DirectoryRefresh,
        transport: surge_grpc::tls::Transport,
        renderer: Arc<surge_label::Renderer>,
    ) -> OrderApi {
        OrderApi {
            node_id,
            handle,
            directory,
            refresh,
            channels: Arc::new(ChannelCache::new("nodes", transport)),
            admission: Arc::new(Admission::default()),
            renderer,
        }
    }

    /// The tenant of the call's API key, once the key's scopes allow `need`.
    /// A key this node does not know may have been created a moment ago: ask for an early
    /// heartbeat and look again once the directory changed (bounded wait), then refuse.
    pub(crate) async fn tenant<T>(&self, request: &Request<T>, need: Need) -> Result<u64, Status> {
        let Some(value) = request.metadata().get(auth::AUTHORIZATION) else {
            return Err(ApiError::unauthenticated(
                "authorization: missing; send `authorization: Bearer <api key>`",
            )
            .into());
        };
        let key = value.to_str().ok().and_then(auth::bearer).ok_or_else(|| {
            ApiError::unauthenticated("authorization: expected `Bearer <api key>`")
        })?;
        let grant = match self.lookup_key(key)? {
            Some(grant) => grant,
            None => {
                let mut version = self.refresh.version.clone();
                version.borrow_and_update();
                self.refresh.wanted.notify_one();
                let _ = tokio::time::timeout(KEY_REFRESH_WAIT, version.changed()).await;
                self.lookup_key(key)?.ok_or_else(|| {
                    ApiError::unauthenticated("authorization: unknown or revoked API key")
                })?
            }
        };
        need.check(&grant)?;
        Ok(grant.tenant)
    }

    /// Whether the key a stream was opened with still grants `need` (it may have been revoked
    /// since): an open stream asks on every poll and ends with the refusal.
    pub(crate) fn still_granted(&self, key: &str, need: Need) -> Result<(), Status> {
        match self.lookup_key(key) {
            Ok(Some(grant)) => need.check(&grant),
            Ok(None) => Err(ApiError::unauthenticated(
                "authorization: the API key was revoked; the stream ends",
            )
            .into()),
            // A node that lost its directory keeps serving what it had.
            Err(_) => Ok(()),
        }
    }

    /// The API key the call carries (empty: none).
    pub(crate) fn key_of<T>(request: &Request<T>) -> String {
        request
            .metadata()
            .get(auth::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(auth::bearer)
            .unwrap_or_default()
            .to_string()
    }

    fn lookup_key(&self, key: &str) -> Result<Option<KeyGrant>, Status> {
        let dir = self
            .directory
            .read()
            .map_err(|_| ApiError::internal("directory lock poisoned"))?;
        if !dir.is_loaded() {
            return Err(ApiError::unavailable(
                "this node has not heard from the coordinators yet; retry",
            )
            .into());
        }
        Ok(dir.grant_of_key(key).cloned())
    }

    /// The tenant's name and limits, as the directory has them.
    fn limits_of(&self, tenant: u64) -> (String, TenantLimits) {
        let Ok(dir) = self.directory.read() else {
            return (tenant.to_string(), TenantLimits::default());
        };
        let name = dir
            .names
            .get(&tenant)
            .cloned()
            .unwrap_or_else(|| tenant.to_string());
        (name, dir.limits.get(&tenant).copied().unwrap_or_default())
    }

    /// Admits `n` orders of `tenant` for a shard this node leads, at this node's share of the
    /// tenant's rate: the shards it leads over all shards.
    pub(crate) fn admit_orders(&self, tenant: u64, n: usize) -> Result<(), Status> {
        let (name, limits) = self.limits_of(tenant);
        if limits.orders_per_sec == 0 {
            // No limit (the default): counted as admitted, without working out this node's share.
            return self.admission.orders((tenant, &name), n, &limits, 1.0);
        }
        let shards = self.shard_count().max(1);
        let led = self
            .handle
            .statuses()
            .values()
            .filter(|st| st.is_leader())
            .count()
            .max(1);
        let share = led as f64 / f64::from(shards);
        self.admission.orders((tenant, &name), n, &limits, share)
    }

    /// The refusal of `n` orders of `tenant` whose shard leader holds them off for `wait`.
    pub(crate) fn held_refusal(&self, tenant: u64, n: usize, wait: Duration) -> ApiError {
        let (name, limits) = self.limits_of(tenant);
        let counted = (n as u64, limits.orders_per_sec);
        self.admission.count_held(&name, counted, wait)
    }

    /// Admits one read of `tenant` where the call arrived (a forwarded call was counted at the
    /// node it came through).
    pub(crate) fn admit_read<T>(&self, request: &Request<T>, tenant: u64) -> Result<(), Status> {
        // Believed only from another node: a client could set the header to skip its limit.
        let from_a_node = match surge_grpc::tls::Caller::of(request) {
            surge_grpc::tls::Caller::Peer(id) => id.role == surge_grpc::tls::Role::Node,
            surge_grpc::tls::Caller::Plaintext => true,
            surge_grpc::tls::Caller::Anonymous => false,
        };
        if is_forwarded(request) && from_a_node {
            return Ok(());
        }
        let (name, limits) = self.limits_of(tenant);
        self.admission.read((tenant, &name), &limits)
    }

    /// Opens one stream of `tenant` here: counted as a read, and held until the slot drops.
    pub(crate) fn open_stream<T>(
        &self,
        request: &Request<T>,
        tenant: u64,
    ) -> Result<StreamSlot, Status> {
        self.admit_read(request, tenant)?;
        let (name, limits) = self.limits_of(tenant);
        self.admission.stream((tenant, &name), &limits)
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

    /// Node `node`'s peer port, where calls are forwarded to it.
    pub(crate) fn peer_address_of(&self, node: u64) -> Option<String> {
        self.directory
            .read()
            .ok()?
            .peer_address(node)
            .map(str::to_string)
    }

    pub(crate) fn channel(&self, address: &str) -> Result<Channel, Status> {
        self.channels.get(address, |e| e)
    }
}
