//! surge's Raft library, shared by the coordinator (one group) and the nodes (one group per
//! shard replica). Built on raft-rs 0.7, with no knowledge of orders or metadata.
//!
//! Layout:
//! - [`engine`], [`keys`], [`MemEngine`]: surge-storage's, re-exported (the storage trait, the
//!   key layout, the in-memory engine); RocksDB is surge-rocks', which this crate does not link.
//! - [`GroupStorage`]: a group's log, HardState, ConfState, applied index and snapshots on an
//!   engine, implementing raft-rs's `Storage`.
//! - [`snapshot_worker`]: snapshots built off the loop from a point-in-time view.
//! - [`Peer`]: a `RawNode` plus its [`StateMachine`], with the Ready handling in the order
//!   raft-rs requires (persist, then send persisted messages and apply).
//! - [`raft_loop`]: the thread that drives every group of a process; [`raft_handle`], its
//!   async handle; [`group_status`], what it publishes about its groups.
//! - [`transport`]: batched gRPC streams between processes ([`transport_service`] receives).
//! - [`epoch`]: membership epochs and which inbound messages a replica refuses.
//! - [`digest`]: a fingerprint of one replica, to compare replicas.
//! - [`families`]: the log and state column families; the application declares its data
//!   families.
//! - [`metrics`], [`logger`] (raft-rs's slog into tracing), [`config`] (timers).

pub mod config;
pub mod digest;
pub mod epoch;
pub mod families;
pub mod forged;
pub mod group_status;
pub mod group_storage;
pub mod logger;
pub mod metrics;
pub mod peer;
mod pending;
pub mod raft_handle;
pub mod raft_loop;
pub mod snapshot_staging;
pub mod snapshot_worker;
pub mod transport;
pub mod transport_service;
mod wire;

pub use config::RaftConfig;
pub use group_status::{GroupStats, GroupStatus, Replication, ReplicationState};
pub use group_storage::GroupStorage;
pub use peer::{Applied, ApplyResult, Peer, PeerError, ReadyOutput, StagedReady};
pub use raft;
pub use raft_handle::{MessageSink, RaftHandle, RequestError};
pub use raft_loop::RaftLoop;
pub use surge_storage::MemEngine;
pub use surge_storage::{engine, keys, mem_engine, state_machine};
pub use surge_storage::{Cf, Engine, EngineError, Family, ReadView, Tuning, WriteBatch, WriteOp};
pub use surge_storage::{MemberChange, Membership, StateMachine};
