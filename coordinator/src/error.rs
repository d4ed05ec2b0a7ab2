//! The one place where coordinator errors become gRPC statuses.

use surge_proto::LEADER_HINT_METADATA;
use surge_raftstore::RequestError;
use tonic::{Code, Status};

use crate::meta::MetaError;

/// An UNAVAILABLE status that names the leader's address when one is known.
pub fn unavailable(message: impl Into<String>, leader_address: Option<&str>) -> Status {
    let mut status = Status::unavailable(message);
    if let Some(addr) = leader_address {
        if let Ok(value) = addr.parse() {
            status.metadata_mut().insert(LEADER_HINT_METADATA, value);
        }
    }
    status
}

/// Maps a Raft request failure; `leader_address` resolves a leader id to its address.
pub fn from_request(err: RequestError, leader_address: impl Fn(u64) -> Option<String>) -> Status {
    match err {
        RequestError::NotLeader { leader } => {
            let addr = leader.and_then(&leader_address);
            let message = match (leader, &addr) {
                (Some(id), Some(a)) => format!("not the leader; coordinator {id} at {a} is"),
                _ => "no coordinator leader is known yet; retry shortly".to_string(),
            };
            unavailable(message, addr.as_deref())
        }
        RequestError::Timeout => unavailable(
            "no outcome within the request timeout; retrying is safe",
            None,
        ),
        RequestError::Dropped => {
            unavailable("the request was dropped by raft; retrying is safe", None)
        }
        RequestError::Busy => {
            Status::resource_exhausted("the coordinator is overloaded; retry with backoff")
        }
        RequestError::Rejected(reason) => unavailable(reason, None),
        RequestError::NoGroup(_) | RequestError::Stopped => {
            Status::unavailable("the coordinator is shutting down")
        }
    }
}

/// Maps a state-machine refusal.
pub fn from_meta(err: MetaError) -> Status {
    let code = match &err {
        MetaError::AlreadyInitialized { .. } | MetaError::TenantExists { .. } => {
            Code::AlreadyExists
        }
        MetaError::NotInitialized => Code::FailedPrecondition,
        MetaError::UnknownNode(_) | MetaError::UnknownShard(_) | MetaError::UnknownTenant(_) => {
            Code::NotFound
        }
        MetaError::BadPlacement { .. } | MetaError::BadRange { .. } => Code::InvalidArgument,
        MetaError::RangeOverlap { .. } => Code::InvalidArgument,
        MetaError::StaleLease { .. } => Code::FailedPrecondition,
        MetaError::Undecodable(_) => Code::Internal,
        MetaError::UnknownOperator(_) => Code::NotFound,
        MetaError::ShardBusy { .. }
        | MetaError::DrainRefused { .. }
        | MetaError::NodeHoldsReplicas { .. } => Code::FailedPrecondition,
        MetaError::BadSetting { .. } => Code::InvalidArgument,
    };
    Status::new(code, err.to_string())
}
