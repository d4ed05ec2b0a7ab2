//! surge's client library. [`MetaClient`] calls the coordinator quorum: it tries the
//! coordinators it was given, follows the leader hints non-leaders answer with, and retries
//! retryable failures under a bounded backoff and deadline.
//!
//! The `surgectl` operator CLI (in `src/bin/surgectl/`) is built on it, and so is the node's
//! registration and heartbeat.

pub mod dev_cluster;
pub mod meta_client;
pub mod retry;

pub use meta_client::MetaClient;
pub use retry::RetryPolicy;
