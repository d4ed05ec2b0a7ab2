//! The state every node service shares: this node's id, the shard replicas' Raft handle, the
//! directory (routes and tenants) from the coordinators, and channels to the other nodes; with
//! the lookups every call starts with (its tenant, a node's address, the shard count).

use std::sync::Arc;
use std::time::Duration;

use surge_client::channels::ChannelCache;
use surge_grpc::ApiError;
use surge_proto::auth;
use tonic::transport::Channel;
use tonic::{Request, Status};

use crate::directory::{DirectoryRefresh, SharedDirectory};
use crate::replicas::ShardHandle;

/// How long a call with an unknown API key waits for a fresher directory.
const KEY_REFRESH_WAIT: Duration = Duration::from_millis(1500);

/// What `OrderService`, `PrintService` and the forwarding between nodes work with.
#[derive(Clone)]
pub struct OrderApi {
    pub(crate) node_id: u64,
    pub(crate) handle: ShardHandle,
    pub(crate) directory: SharedDirectory,
    pub(crate) refresh: DirectoryRefresh,
    pub(crate) channels: Arc<ChannelCache>,
}

impl OrderApi {
    pub fn new(
        node_id: u64,
        handle: ShardHandle,
        directory: SharedDirectory,
        refresh: DirectoryRefresh,
        transport: surge_grpc::tls::Transport,
    ) -> OrderApi {
        OrderApi {
            node_id,
            handle,
            directory,
            refresh,
            channels: Arc::new(ChannelCache::new("nodes", transport)),
        }
    }

    /// The tenant of the call's API key.
    /// A key this node does not know may have been created a moment ago: ask for an early
    /// heartbeat and look again once the directory changed (bounded wait), then refuse.
    pub(crate) async fn tenant<T>(&self, request: &Request<T>) -> Result<u64, Status> {
        let Some(value) = request.metadata().get(auth::AUTHORIZATION) else {
            return Err(ApiError::unauthenticated(
                "authorization: missing; send `authorization: Bearer <api key>`",
            )
            .into());
        };
        let key = value.to_str().ok().and_then(auth::bearer).ok_or_else(|| {
            ApiError::unauthenticated("authorization: expected `Bearer <api key>`")
        })?;
        if let Some(tenant) = self.lookup_key(key)? {
            return Ok(tenant);
        }
        let mut version = self.refresh.version.clone();
        version.borrow_and_update();
        self.refresh.wanted.notify_one();
        let _ = tokio::time::timeout(KEY_REFRESH_WAIT, version.changed()).await;
        self.lookup_key(key)?
            .ok_or_else(|| ApiError::unauthenticated("authorization: unknown API key").into())
    }

    fn lookup_key(&self, key: &str) -> Result<Option<u64>, Status> {
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
