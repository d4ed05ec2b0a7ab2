//! The surge coordinator: cluster metadata replicated by one Raft group (group 0) over RocksDB,
//! the operators' `AdminService`, the nodes' `NodeService`, and the leader's scheduler.
//!
//! Layout: [`config`] (TOML → validated `Config`), [`meta`] (records and commands),
//! [`meta_state`] (the sans-IO state machine, its rows in [`meta_rows`], node and membership
//! rules in [`node_rules`], operators in [`operator_book`]), [`placement`] (pure initial
//! placement), [`operator`] (pure operator steps), [`balance`] (the pure planner: repair,
//! drain, replica and leader balance), [`shard_view`] and [`reports`] (what heartbeats tell
//! the leader), [`coordinator`] (shared service state), [`admin_service`] with
//! [`cluster_ops`], [`node_service`], [`peer_service`], [`membership`] (the coordinators'
//! own joint-consensus add/remove), [`scheduler`] (the leader's loop), [`error`] (the one
//! error → gRPC code table) and [`server`] (start-up and serving).

pub mod admin_service;
pub mod balance;
pub mod cluster_ops;
pub mod config;
pub mod coordinator;
pub mod error;
pub mod membership;
pub mod meta;
pub mod meta_rows;
pub mod meta_state;
pub mod node_rules;
pub mod node_service;
pub mod operator;
pub mod operator_book;
pub mod peer_service;
pub mod placement;
pub mod reports;
pub mod scheduler;
pub mod server;
pub mod shard_view;
pub mod tenant_ops;
pub mod waybills;
