//! The surge worker node: it keeps a stable identity in its data dir, registers with the
//! coordinators, heartbeats every second, runs the shard replicas placed on it (multi-raft: one
//! loop for every local shard, one group commit per round) and serves merchants' ERPs.
//!
//! Layout: [`config`] (TOML → validated `Config`), [`membership`] (registration and
//! heartbeats), [`directory`] (routing table and tenants from the coordinators), [`replicas`]
//! (creating and removing shard replicas), [`instructions`] (carrying out the coordinator's
//! operator steps), [`replica_service`] (replica digests), the shard state machine (`surge-shard`),
//! [`order_service`] (the `OrderService` API; `dispatch` decides where a shard's call is
//! served), [`metrics`], [`server`] (start-up and serving).

pub mod actions;
pub mod admission;
/// The config file (`surge-config`'s, re-exported under its old name).
pub use surge_config::node as config;
pub mod directory;
mod dispatch;
pub mod instructions;
pub mod label_fonts;
pub mod labels;
pub mod membership;
pub mod metrics;
pub mod order_actions;
pub mod order_api;
pub mod order_events;
pub mod order_service;
pub mod pipeline;
pub mod print_service;
pub mod replica_service;
pub mod replicas;
pub mod server;

/// The column families a node opens: the Raft library's, `meta` (identity, node-local records)
/// and the shards' ([`surge_shard::families`]).
pub fn families() -> Vec<surge_raftstore::Family> {
    surge_raftstore::families::process_families(&surge_shard::families::SHARD_FAMILIES)
}
