//! The shard state machine, pure (DESIGN.md §3, §4, §5): order intake deduplicated on (tenant,
//! platform, external order id), and every later step of an order's life (review, holds,
//! allocation, waybill binding, printing, packing, shipping, cancel), each applied from the
//! shard's log with the order row, its index rows, its history and its event written in the same
//! batch as the applied index.
//!
//! It depends on `surge-proto` (the messages) and `surge-storage` (the engine trait) only: no
//! Raft, no RocksDB, no tokio, no clock (times come inside the commands). The node runs it under
//! Raft on RocksDB; the deterministic tier runs it on the in-memory engine.
//!
//! - [`ShardSm`] ([`state`]): applying commands; [`reads`]: what it answers off the loop.
//! - [`actions`], [`waybills`], [`print_jobs`]: the lifecycle actions, decided by
//!   [`lifecycle::decide`], a pure function of the order and the step.
//! - [`planner`]: the pipeline's next steps for a waiting order, from the tenant's rules.
//! - [`families`]: the column families a shard keeps its rows in.
//! - [`outcome`]: what applying answers; [`ids`]: order ids and cursors; [`stage`]: where an
//!   order stands in the pipeline; [`keys`]: where a shard keeps its rows.

pub mod actions;
pub mod families;
pub mod ids;
pub mod keys;
pub mod lifecycle;
pub mod outcome;
pub mod planner;
pub mod print_jobs;
pub mod reads;
pub mod routing;
pub mod stage;
pub mod state;
pub mod waybills;

#[cfg(test)]
mod tests;

pub use actions::{MAX_BLOCKS, MAX_HISTORY, MAX_REPRINTS};
pub use ids::{order_id, parse_id, shard_of, Cursor};
pub use outcome::{
    acceptance_of, view_of, ActionOutcome, Applied, Done, ItemOutcome, RefuseCode, ShardOutput,
    Trimmed,
};
pub use routing::{check_routing, routing_for};
pub use stage::{stage_of, Stage, CARRIER_HOLD, REVIEW_ACTOR, WAYBILL_HOLD};
pub use state::ShardSm;
pub use waybills::free_numbers;
