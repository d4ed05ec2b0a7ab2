//! The surge coordinator: cluster metadata replicated by one Raft group (group 0) over RocksDB,
//! the operators' `AdminService`, the nodes' `NodeService`, and the leader's scheduler.
//!
//! The metadata state machine, placement, operators and the planner are `surge-meta`'s (pure),
//! re-exported here under their module names ([`meta`], [`meta_state`], [`balance`], ...).
//!
//! Layout: [`config`] (TOML → validated `Config`), [`reports`] (what heartbeats tell the
//! leader), [`coordinator`] (shared service state), [`admin_service`] with [`cluster_ops`],
//! [`node_service`], [`peer_service`], [`dispatch`] (serve here or forward to the leader),
//! [`membership`] (the coordinators' own joint-consensus add/remove), [`scheduler`] (the
//! leader's loop), [`error`] (the one error → gRPC code table) and [`server`] (start-up and
//! serving).

pub mod admin_reads;
pub mod admin_service;
pub mod admin_writes;
pub mod cluster_ops;
pub mod coordinator;
pub mod dispatch;
pub mod error;
pub mod founding;
pub mod membership;
pub mod node_service;
pub mod operator_auth;
pub mod peer_service;
pub mod reports;
pub mod scheduler;
pub mod server;
pub mod tenant_key_ops;
pub mod tenant_keys;
pub mod tenant_ops;

/// The config file (`surge-config`'s, re-exported under its old name).
pub use surge_config::coordinator as config;
pub use surge_meta::{
    access, balance, meta, meta_rows, meta_state, node_rules, operator, operator_book, placement,
    shard_view, waybills,
};

/// The column families a coordinator opens: the Raft library's and `meta`, where the
/// metadata state machine keeps its rows.
pub fn families() -> Vec<surge_raftstore::Family> {
    surge_raftstore::families::process_families(&[])
}
