//! Tier 2: the shard state machine on an in-process multi-raft cluster (DESIGN.md §11).
//!
//! Three nodes, each with its own in-memory engine, run every shard's replica — the real
//! `Peer` and the real `ShardSm`, driven step by step from a seeded RNG. Faults: node crashes
//! (all of a node's replicas at once; a restart rebuilds them from the engine), partitions,
//! message drop, duplication and reordering, and log compaction small enough that snapshots
//! happen. Clients submit orders from a small pool of external ids (so retries and conflicting
//! payloads are common) and read them back with ReadIndex.
//!
//! Checked for every seed: at most one leader per shard and term; every acknowledged order is
//! stored exactly once and readable on every replica; one external id is one order id; the
//! per-key histories of submits and reads are linearizable (a write-once register: see
//! [`register::check_register`]); all replicas of a shard hold identical data.
//! A failure names the seed; `SHARD_SIM_SEED=<n>` replays it alone.
//!
//! Layout: `shard_sim/sim.rs` holds the clients and their bookkeeping, `shard_sim/register.rs`
//! the history and its checker. The cluster, network, faults, chaos and seed runner are
//! surge-sim's, shared with the membership and raft simulations.

#[path = "shard_sim/register.rs"]
mod register;
#[path = "shard_sim/sim.rs"]
mod sim;

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use surge_proto::v1::OrderStatus;
use surge_sim::{Seeds, ShardSim as _};

use register::{check_register, Op, OpKind, OpResult};
use sim::{Sim, Stats};

/// The seeds, and the steps per seed: of faults, then of settling (clients stop halfway).
const SEEDS: Range<u64> = 0..24;
const STEPS: u64 = 1_500;
const SETTLE_STEPS: u64 = 1_500;
/// Every node holds a replica of every shard; clients are one tenant's.
const NODES: [u64; 3] = [1, 2, 3];
const SHARDS: u32 = 3;
const TENANT: u64 = 7;

fn shard_of_key(key: u64) -> u32 {
    surge_proto::routing::shard_for(&TENANT.to_string(), &format!("ext-{key}"), SHARDS)
}

fn run(seed: u64) -> Result<Stats, String> {
    let mut sim = Sim::new(seed);
    for _ in 0..STEPS {
        sim.step()?;
    }
    sim.heal();
    for i in 0..SETTLE_STEPS {
        sim.clients = i < SETTLE_STEPS / 2;
        sim.step()?;
    }
    check_converged(&sim)?;
    // Linearizable per key.
    let mut by_key: BTreeMap<u64, Vec<&Op>> = BTreeMap::new();
    for op in &sim.ops {
        by_key.entry(op.key).or_default().push(op);
    }
    for (key, ops) in &by_key {
        check_register(*key, ops)?;
    }
    check_exactly_once(&sim)?;
    Ok(sim.stats())
}

/// Converged: every replica applied the same index and holds the same data.
fn check_converged(sim: &Sim) -> Result<(), String> {
    for s in 0..SHARDS {
        let applied: BTreeSet<u64> = NODES
            .iter()
            .map(|id| sim.cluster.peer_ref(*id, s).expect("up").applied_index())
            .collect();
        if applied.len() != 1 {
            return Err(format!(
                "shard {s}: replicas applied {applied:?} after settling"
            ));
        }
        let first = sim.cluster.dump(NODES[0], s);
        for id in &NODES[1..] {
            if sim.cluster.dump(*id, s) != first {
                return Err(format!("shard {s}: node {id} holds other data than node 1"));
            }
        }
    }
    Ok(())
}

/// Every acknowledged order is stored exactly once, on every replica.
fn check_exactly_once(sim: &Sim) -> Result<(), String> {
    for id in NODES {
        let peers = sim.cluster.nodes[&id].peers.as_ref().expect("up");
        let mut seen: BTreeMap<String, String> = BTreeMap::new();
        for (s, peer) in peers {
            let all = peer
                .sm
                .list(TENANT, OrderStatus::Received, 0, 0, None, usize::MAX)
                .map_err(|e| e.to_string())?;
            for rec in all {
                let ext = rec.order.map(|o| o.external_order_id).unwrap_or_default();
                if shard_of_key(ext.trim_start_matches("ext-").parse().unwrap_or(u64::MAX)) != *s {
                    return Err(format!("{ext} stored on shard {s}"));
                }
                if let Some(other) = seen.insert(ext.clone(), rec.order_id.clone()) {
                    return Err(format!(
                        "node {id}: {ext} stored twice ({other}, {})",
                        rec.order_id
                    ));
                }
            }
        }
        for op in &sim.ops {
            if let Some((_, OpResult::Accepted(order_id))) = &op.completed {
                let ext = format!("ext-{}", op.key);
                if seen.get(&ext) != Some(order_id) {
                    return Err(format!(
                        "node {id}: acknowledged {ext} = {order_id} not stored (found {:?})",
                        seen.get(&ext)
                    ));
                }
            }
        }
    }
    Ok(())
}

#[test]
fn orders_stay_exactly_once_and_linearizable_under_faults() {
    let test = "orders_stay_exactly_once_and_linearizable_under_faults";
    let seeds = Seeds::new(
        "SHARD_SIM_SEED",
        SEEDS,
        format!("cargo test -p surge-node --test shard_sim {test}"),
    );
    let outcome = seeds.run("shard sim", run);
    let t: &Stats = &outcome.totals;
    outcome.assert_did(t.acked > 100 && t.reads > 100, "too little happened");
    outcome.assert_did(t.crashes > 0 && t.snapshots > 0, "faults did not happen");
}

/// A submit of `payload` invoked at `invoked`, answered at `done`.
fn submit(payload: u8, invoked: u64, done: u64, result: OpResult) -> Op {
    Op {
        key: 1,
        kind: OpKind::Submit { payload },
        invoked,
        completed: Some((done, result)),
    }
}

/// A read invoked at `invoked` that found `found` at `done`.
fn read(invoked: u64, done: u64, found: Option<&str>) -> Op {
    let found = found.map(str::to_string);
    Op {
        key: 1,
        kind: OpKind::Read,
        invoked,
        completed: Some((done, OpResult::Found(found))),
    }
}

fn check(history: &[Op]) -> Result<(), String> {
    check_register(1, &history.iter().collect::<Vec<_>>())
}

#[test]
fn the_register_checker_catches_violations() {
    let accepted = |id: &str| OpResult::Accepted(id.into());
    let conflict = |id: &str| OpResult::Conflict(id.into());
    let ok = [
        read(0, 1, None),
        submit(0, 2, 5, accepted("a")),
        read(3, 4, Some("a")),
        submit(1, 6, 7, conflict("a")),
    ];
    assert_eq!(check(&ok), Ok(()));
    let stale = [submit(0, 0, 1, accepted("a")), read(2, 3, None)];
    assert!(check(&stale).is_err());
    let two_ids = [
        submit(0, 0, 1, accepted("a")),
        submit(0, 2, 3, accepted("b")),
    ];
    assert!(check(&two_ids).is_err());
    let phantom = [read(0, 1, Some("a"))];
    assert!(check(&phantom).is_err());
    let refused_own = [
        submit(0, 0, 1, accepted("a")),
        submit(0, 2, 3, conflict("a")),
    ];
    assert!(check(&refused_own).is_err());
}
