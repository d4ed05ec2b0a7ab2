//! Where a shard's call is served from this node, decided in one place for every service: here
//! if this node leads the shard; else forwarded once to the leader (a forwarded call carries a
//! mark and is never forwarded again, and its answer names the leader so the caller goes there
//! next time); else UNAVAILABLE, with the leader's address as a hint when one is known.

use std::time::Duration;

use surge_grpc::ApiError;
use surge_proto::{auth, FORWARDED_METADATA, LEADER_HINT_METADATA};
use surge_raftstore::RequestError;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use tonic::{Code, Request, Response, Status};

use crate::metrics::OrderMetrics;
use crate::order_api::OrderApi;

/// A forwarded call's deadline.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(7);

/// Where a shard's calls go from this node.
pub(crate) enum Target {
    Local,
    /// At the leader: `address` is its client port (what callers are told), `peer` its peer
    /// port (where this node forwards).
    Remote {
        address: String,
        peer: String,
    },
    Unknown,
}

/// Where a call for a shard is served.
pub(crate) enum Route {
    Local,
    /// At the leader, over `channel`.
    Forward {
        address: String,
        channel: Channel,
    },
}

/// A successful answer that was forwarded, naming the leader that gave it (as a refusal's hint
/// does), so the caller's stale shard map is corrected without a refusal.
pub(crate) fn with_leader<T>(mut response: Response<T>, address: Option<&str>) -> Response<T> {
    if let Some(value) = address.and_then(|a| MetadataValue::try_from(a).ok()) {
        response.metadata_mut().insert(LEADER_HINT_METADATA, value);
    }
    response
}

/// The refusal of a call that reached a node which does not lead its shard and may not
/// forward it: the caller goes to `address`.
pub(crate) fn not_leader(address: &str) -> ApiError {
    ApiError::not_leader("not the shard leader; retry at the leader", Some(address))
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
        ApiError::unavailable(format!(
            "the shard leader at {leader} did not answer ({}); retry",
            status.message()
        ))
        .into()
    }
}

pub(crate) fn is_forwarded<T>(request: &Request<T>) -> bool {
    request.metadata().contains_key(FORWARDED_METADATA)
}

impl OrderApi {
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
            Some(address) => Target::Remote {
                peer: self
                    .peer_address_of(leader)
                    .unwrap_or_else(|| address.clone()),
                address,
            },
            None => Target::Unknown,
        }
    }

    /// Where `request`'s call `call` (a metrics label) for `shard` is served: here, forwarded
    /// (counted), or refused UNAVAILABLE with the leader's address when the call was forwarded
    /// to this node already or no leader is known.
    pub(crate) fn route<U>(
        &self,
        request: &Request<U>,
        shard: u32,
        call: &'static str,
    ) -> Result<Route, Status> {
        match self.target(shard) {
            Target::Local => Ok(Route::Local),
            Target::Remote { address, peer } if !is_forwarded(request) => {
                let channel = self.channel(&peer)?;
                OrderMetrics::get()
                    .forwarded
                    .with_label_values(&[call])
                    .inc();
                Ok(Route::Forward { address, channel })
            }
            Target::Remote { address, .. } => Err(not_leader(&address).into()),
            Target::Unknown => Err(self.unavailable(shard).into()),
        }
    }

    /// The leader's address if a call for `shard` would be forwarded from here: the caller is
    /// told it with the answer, so its next call goes straight there.
    pub(crate) fn forwards_to<U>(&self, original: &Request<U>, shard: u32) -> Option<String> {
        match self.target(shard) {
            Target::Remote { address, .. } if !is_forwarded(original) => Some(address),
            _ => None,
        }
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

    pub(crate) fn unavailable(&self, shard: u32) -> ApiError {
        ApiError::unavailable(format!(
            "shard {shard} has no known leader right now; retry"
        ))
    }

    /// A Raft request's failure on `shard`, naming the leader's address when known.
    pub(crate) fn map_request(&self, shard: u32, err: RequestError) -> ApiError {
        err.into_api(&format!("shard {shard}"), |l| self.address_of(l))
    }
}
