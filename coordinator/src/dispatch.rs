//! Where a coordinator call is served: here at the Raft leader, or forwarded once to the
//! leader (marked, so it is never forwarded again, and with a bounded deadline); a follower
//! that cannot forward answers UNAVAILABLE naming the leader.

use std::time::Duration;

use surge_grpc::ApiError;
use tonic::{Request, Response, Status};

use crate::coordinator::Coordinator;

pub use surge_proto::FORWARDED_METADATA;
use surge_proto::{auth::AUTHORIZATION, FORWARDED_FOR_METADATA};

/// Where a call goes: handled here, or forwarded to the leader over this channel.
pub enum Route {
    Local,
    Forward(tonic::transport::Channel),
}

/// Decides whether this coordinator serves an AdminService call or forwards it to the
/// leader's client port.
pub async fn route<T>(c: &Coordinator, request: &Request<T>) -> Result<Route, Status> {
    route_to(c, request, false).await
}

/// [`route`] for a NodeService call: forwarded to the leader's peer port.
pub async fn route_peer<T>(c: &Coordinator, request: &Request<T>) -> Result<Route, Status> {
    route_to(c, request, true).await
}

async fn route_to<T>(c: &Coordinator, request: &Request<T>, peer: bool) -> Result<Route, Status> {
    let view = c.local_view().await?;
    if view.is_leader {
        return Ok(Route::Local);
    }
    // A caller of either port is told, and forwarded to, the leader's same port.
    let address = |id| match peer {
        true => c.peer_address_of(id),
        false => c.address_of(id),
    };
    let Some(addr) = (view.leader_id != 0)
        .then(|| address(view.leader_id))
        .flatten()
    else {
        return Err(
            ApiError::unavailable("no coordinator leader is known yet; retry shortly").into(),
        );
    };
    if request.metadata().contains_key(FORWARDED_METADATA) {
        return Err(ApiError::not_leader(
            format!(
                "not the leader; coordinator {} at {addr} is",
                view.leader_id
            ),
            Some(&addr),
        )
        .into());
    }
    Ok(Route::Forward(c.channel(&addr)?))
}

/// How long a forwarded call may take at the leader. Bounded, so that a leader that went
/// silent (partitioned, paused) costs the caller seconds, not minutes.
pub const FORWARD_TIMEOUT: Duration = Duration::from_secs(7);
/// The answer of a forwarded call. The hop's own failures (the leader did not answer in time)
/// become UNAVAILABLE, which callers retry, like the same failure at the leader itself.
pub fn hop<T>(result: Result<Response<T>, Status>) -> Result<Response<T>, Status> {
    result.map_err(|s| match s.code() {
        tonic::Code::DeadlineExceeded | tonic::Code::Cancelled => ApiError::unavailable(format!(
            "the leader did not answer in time: {}",
            s.message()
        ))
        .into(),
        _ => s,
    })
}

/// Membership changes wait for a learner to catch up at the leader.
pub const FORWARD_MEMBERSHIP_TIMEOUT: Duration = Duration::from_secs(60);

/// Wraps a message for forwarding, marked so the leader never forwards it again.
pub fn forwarded<T>(message: T) -> Request<T> {
    forwarded_within(message, FORWARD_TIMEOUT)
}

/// [`forwarded`] with a deadline of its own.
pub fn forwarded_within<T>(message: T, timeout: Duration) -> Request<T> {
    let mut request = Request::new(message);
    request.set_timeout(timeout);
    request.metadata_mut().insert(
        FORWARDED_METADATA,
        tonic::metadata::MetadataValue::from_static("1"),
    );
    request
}

/// An AdminService call forwarded to the leader: [`forwarded_within`], with the caller's
/// operator token (the leader checks it) and address (for the audit trail).
pub fn forward_admin<T>(request: Request<T>, timeout: Duration) -> Request<T> {
    let from = crate::operator_auth::origin(&request, &surge_grpc::tls::Caller::of(&request));
    let token = request.metadata().get(AUTHORIZATION).cloned();
    let mut out = forwarded_within(request.into_inner(), timeout);
    if let Some(token) = token {
        out.metadata_mut().insert(AUTHORIZATION, token);
    }
    if let Ok(from) = from.parse() {
        out.metadata_mut().insert(FORWARDED_FOR_METADATA, from);
    }
    out
}
