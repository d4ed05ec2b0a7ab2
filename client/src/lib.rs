//! surge's client library. [`MetaClient`] calls the coordinator quorum: it tries the
//! coordinators it was given, follows the leader hints non-leaders answer with, and retries
//! retryable failures under a bounded backoff and deadline.
//!
//! [`OrderClient`] is what a merchant's ERP uses: it routes each order to its shard's leader
//! from a cached shard map and retries idempotently. [`verify`] compares the replicas of each
//! shard. The node's registration and heartbeat use it too, and so does the `surgectl` crate;
//! it links no CLI.

pub mod channels;
pub mod meta_client;
pub mod order_client;
pub mod retry;
pub mod sample;
pub mod verify;

pub use meta_client::{CoordinatorChannel, MetaClient};
pub use order_client::OrderClient;
pub use retry::RetryPolicy;
