//! surge's wire contract: the `surge.v1` gRPC package, generated from `proto/surge/v1/surge.proto`.
//!
//! Every process and the client library speak only these types on the wire. The file descriptor
//! set is exported so that servers can offer gRPC server reflection to stock tools, and
//! [`routing`] fixes which shard an order belongs to.

/// The generated `surge.v1` package.
#[allow(unreachable_pub, clippy::all, clippy::unwrap_used)]
pub mod v1 {
    tonic::include_proto!("surge.v1");
}

/// The encoded file descriptor set of `surge.v1`, for `tonic-reflection`.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("surge_descriptor");

pub mod auth;
pub mod routing;
pub mod validate;

/// Metadata key under which a non-leader names the leader it knows, so a caller can retry there.
pub const LEADER_HINT_METADATA: &str = "x-surge-leader";
