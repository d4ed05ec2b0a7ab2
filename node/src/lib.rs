//! The surge worker node: it keeps a stable identity in its data dir, registers with the
//! coordinators, heartbeats every second, runs the shard replicas placed on it (multi-raft: one
//! loop for every local shard, one group commit per round) and serves merchants' ERPs.
//!
//! Layout: [`config`] (TOML → validated `Config`), [`membership`] (registration and
//! heartbeats), [`directory`] (routing table and tenants from the coordinators), [`lifecycle`]
//! (the order lifecycle as a pure function, for the pipeline), [`replicas`]
//! (creating and removing shard replicas), [`instructions`] (carrying out the coordinator's
//! operator steps), [`replica_service`] (replica digests), [`shard`] (the shard state machine),
//! [`order_service`] (the `OrderService` API), [`metrics`], [`server`] (start-up and serving).

pub mod actions;
pub mod config;
pub mod directory;
pub mod instructions;
pub mod labels;
pub mod lifecycle;
pub mod membership;
pub mod metrics;
pub mod order_actions;
pub mod order_service;
pub mod pipeline;
pub mod print_service;
pub mod replica_service;
pub mod replicas;
pub mod server;
pub mod shard;
pub mod shard_actions;
pub mod shard_keys;
