//! The deterministic simulation harness (DESIGN.md §11, tier 2), shared by the raft and shard
//! simulations: `raftstore/tests/sim.rs` (one group of a test state machine) and
//! `node/tests/{shard_sim,membership_sim}.rs` (multi-raft clusters of the real `ShardSm`).
//!
//! Everything random comes from one seeded RNG that the simulation owns and passes in, and
//! every piece here draws from it in a fixed, documented order: a seed replays exactly, and a
//! change to a draw changes what the recorded seeds replay.
//!
//! Layout:
//! - [`Faults`]: a seed's fault profile (drawn per seed, or fixed).
//! - [`Network`]: packets in flight through drop, duplicate, delay and partition filters, over
//!   any [`Packet`]; [`Sent`] tells queued, lost and refused apart.
//! - [`chaos`]: the crash / restart and partition / heal decisions, over [`Processes`].
//! - [`Outbox`]: a Ready's messages sent, and raft-rs told which could not go.
//! - [`Seeds`]: the seed runner (replay variable, failures that name the seed, totals).
//! - [`ShardCluster`]: nodes of `ShardSm` replicas (open, crash, restart, re-seed election
//!   timeouts, handle Readies, compact, dump), and [`LeaderBook`], election safety per shard.
//! - [`ShardSim`]: a simulation on a `ShardCluster`, with the chaos step, ticking and healing.
//! - [`counters!`]: a struct of counters that add up, for a run's totals.

pub mod chaos;
mod faults;
mod leader_book;
mod network;
mod outbox;
mod seeds;
mod shard_cluster;
mod shard_sim;

pub use chaos::{crash_or_restart, partition_or_heal, Processes};
pub use faults::{CrashPolicy, Faults, LateDelivery, PartitionShape};
pub use leader_book::LeaderBook;
pub use network::{NetStats, Network, Packet, Sent};
pub use outbox::Outbox;
pub use seeds::{Outcome, Seeds};
pub use shard_cluster::{Birth, Round, ShardCluster, ShardNode, ShardPeer};
pub use shard_sim::ShardSim;

/// Declares a struct of `u64` counters that add up field by field, for what one seed of a
/// simulation did and the totals over its seeds (see [`Seeds::run`]).
#[macro_export]
macro_rules! counters {
    ($(#[$meta:meta])* $vis:vis struct $name:ident { $($field:ident),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        $vis struct $name {
            $($vis $field: u64,)*
        }

        impl ::std::ops::AddAssign for $name {
            fn add_assign(&mut self, other: $name) {
                $(self.$field += other.$field;)*
            }
        }
    };
}
