//! surge's gRPC services: the tonic clients and servers of `surge.v1`, generated from
//! `proto/proto/surge/v1/surge.proto` over the messages of [`surge_proto`].
//!
//! The messages are re-exported, so `surge_grpc::v1::Order` is `surge_proto::v1::Order`: the
//! servers and clients name one module. The pure crates (the shard and metadata state machines)
//! depend on `surge-proto` alone and never link tonic.

pub mod error;
pub mod tls;

pub use error::{retryable_code, retryable_wire, ApiError, ErrorKind};

/// The `surge.v1` package: every message of `surge-proto`, and the services.
#[allow(unreachable_pub, clippy::all, clippy::unwrap_used)]
pub mod v1 {
    pub use surge_proto::v1::*;
    tonic::include_proto!("surge.v1");
}
