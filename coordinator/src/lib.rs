//! The surge coordinator: cluster metadata replicated by one Raft group (group 0) over RocksDB,
//! the operators' `AdminService`, the nodes' `NodeService`, and the leader's scheduler.
//!
//! Layout: [`config`] (TOML → validated `Config`), [`meta`] (records and commands),
//! [`meta_state`] (the sans-IO state machine), [`placement`] (pure replica placement),
//! [`coordinator`] (shared service state), [`admin_service`], [`node_service`], [`peer_service`],
//! [`membership`] (joint-consensus add/remove), [`scheduler`], [`error`] (the one
//! error → gRPC code table) and [`server`] (start-up and serving).

pub mod admin_service;
pub mod config;
pub mod coordinator;
pub mod error;
pub mod membership;
pub mod meta;
pub mod meta_state;
pub mod node_service;
pub mod peer_service;
pub mod placement;
pub mod scheduler;
pub mod server;
pub mod tenant_ops;
pub mod waybills;
