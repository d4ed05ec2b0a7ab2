//! surge's Raft library, shared by the coordinator (one group) and the nodes (one group per
//! shard replica). Built on raft-rs 0.7, with no knowledge of orders or metadata.
//!
//! Layout:
//! - [`engine`]: the storage trait (an ordered KV with column families and atomic batches),
//!   with [`RocksEngine`] and [`MemEngine`]; [`keys`] fixes the key layout.
//! - [`GroupStorage`]: a group's log, HardState, ConfState, applied index and snapshots on an
//!   engine, implementing raft-rs's `Storage`.
//! - [`Peer`]: a `RawNode` plus its [`StateMachine`], with the Ready handling in the order
//!   raft-rs requires (persist, then send persisted messages and apply).
//! - [`raft_loop`]: the thread that drives every group of a process, and its async handle.
//! - [`transport`]: batched gRPC streams between processes.
//! - [`metrics`], [`logger`] (raft-rs's slog into tracing), [`config`] (timers).

pub mod config;
pub mod config_file;
pub mod engine;
pub mod group_storage;
pub mod identity;
pub mod keys;
pub mod logger;
pub mod mem_engine;
pub mod metrics;
pub mod ops;
pub mod peer;
pub mod raft_loop;
pub mod rocks_engine;
pub mod state_machine;
pub mod transport;

pub use config::RaftConfig;
pub use engine::{Cf, Engine, EngineError, WriteBatch, WriteOp};
pub use group_storage::GroupStorage;
pub use mem_engine::MemEngine;
pub use peer::{Applied, ApplyResult, Peer, PeerError, ReadyOutput, StagedReady};
pub use raft;
pub use raft_loop::{MessageSink, RaftHandle, RaftLoop, RequestError};
pub use rocks_engine::RocksEngine;
pub use state_machine::StateMachine;
