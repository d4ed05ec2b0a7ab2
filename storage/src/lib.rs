//! surge's storage contract, pure: what the state machines and the Raft library write to, and
//! the in-memory engine the deterministic tier runs on. RocksDB is `surge-rocks`, behind the
//! same trait.
//!
//! - [`engine`]: the [`Engine`] trait, [`WriteBatch`], the column families [`Cf`] and how
//!   a process declares them ([`Family`]).
//! - [`keys`]: the key layout every group shares (group prefix, log and state keys).
//! - [`mem_engine`]: [`MemEngine`], with the same semantics as RocksDB's, staging included.
//! - [`state_machine`]: what a replicated state machine implements ([`StateMachine`]).

pub mod engine;
pub mod keys;
pub mod mem_engine;
pub mod state_machine;

pub use engine::{Cf, Engine, EngineError, Family, ReadView, Tuning, WriteBatch, WriteOp};
pub use mem_engine::MemEngine;
pub use state_machine::{MemberChange, Membership, StateMachine};
