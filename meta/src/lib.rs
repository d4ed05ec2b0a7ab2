//! surge's cluster metadata, pure: what the coordinators replicate in their Raft group (group 0)
//! and how the leader plans changes to the shards, with no I/O. Times arrive as arguments; the
//! coordinator crate runs this under Raft on RocksDB and serves it over gRPC.
//!
//! - [`meta`]: records (cluster, nodes, shards, tenants) and commands ([`error`]: refusals); [`meta_state`]: the state
//!   machine, its rows in [`meta_rows`], node and membership rules in [`node_rules`], operators
//!   in flight in [`operator_book`], waybill ranges and leases in [`waybills`].
//! - [`access`]: operator tokens and their roles, and the audit trail of admin changes.
//! - [`tenant_keys`]: a tenant's API keys and their scopes; [`tenant_limits`]: its admission
//!   limits.
//! - [`placement`]: the initial placement of shards on nodes.
//! - [`operator`]: one operator's steps (add learner, promote, demote, remove, transfer leader).
//! - [`balance`]: the planner (repair, drain, replica and leader balance), tested by tables;
//!   [`shard_view`]: what heartbeats tell it about each shard.

pub mod access;
pub mod balance;
pub mod error;
pub mod meta;
pub mod meta_rows;
pub mod meta_state;
pub mod node_rules;
pub mod operator;
pub mod operator_book;
pub mod placement;
pub mod shard_view;
pub mod tenant_keys;
pub mod tenant_limits;
pub mod waybills;
