//! The coordinator state machine's refusals as the one error vocabulary ([`ApiError`]) answers
//! them. Raft request failures map through [`surge_raftstore::RequestError::into_api`].

use surge_grpc::{ApiError, ErrorKind};
use surge_server::config_file::ConfigError;

use crate::meta::MetaError;

/// Maps a state-machine refusal.
pub fn from_meta(err: MetaError) -> ApiError {
    let message = err.to_string();
    match &err {
        MetaError::AlreadyInitialized { .. } | MetaError::TenantExists { .. } => {
            ApiError::already_exists(message)
        }
        MetaError::UnknownNode(_)
        | MetaError::UnknownShard(_)
        | MetaError::UnknownTenant(_)
        | MetaError::UnknownOperator(_)
        | MetaError::UnknownToken(_)
        | MetaError::UnknownKey { .. } => ApiError::not_found(message),
        MetaError::BadPlacement { .. } => invalid("replicas", message),
        MetaError::RangeOverlap { .. } => invalid("from", message),
        MetaError::BadRange { field, .. } | MetaError::BadSetting { field, .. } => {
            invalid(field, message)
        }
        MetaError::NotInitialized
        | MetaError::StaleLease { .. }
        | MetaError::ShardBusy { .. }
        | MetaError::DrainRefused { .. }
        | MetaError::NodeHoldsReplicas { .. }
        | MetaError::TooManyNodes { .. }
        | MetaError::LastAdminToken(_) => ApiError::failed_precondition(message),
        MetaError::Undecodable(_) => ApiError::internal(message),
        MetaError::CertificateMismatch { .. } => ApiError::permission_denied(message),
    }
}

/// An InvalidArgument whose message (the MetaError's) already reads "field: reason".
fn invalid(field: &str, message: String) -> ApiError {
    ApiError::new(ErrorKind::InvalidArgument, message).with_field(field)
}

/// Checks that `value`, the request's field `key`, is a `host:port` address.
pub fn check_address(key: &str, value: &str) -> Result<(), ApiError> {
    surge_server::config_file::check_address(key, value).map_err(|e| match e {
        ConfigError::Invalid { key, reason } => ApiError::invalid_argument(key, reason),
        other => ApiError::invalid_argument(key, other),
    })
}
