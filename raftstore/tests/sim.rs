//! Tier 2 of DESIGN.md §11: a deterministic in-process Raft cluster on in-memory engines,
//! driven by a seeded RNG through drops, delays, duplicates, reordering, partitions and
//! crash/restarts, checked for election safety, log matching and that no committed entry is
//! ever lost.
//!
//! Every `cargo test` runs many seeds; a failing seed is printed with the command that replays
//! it alone (`SIM_SEED=<seed> cargo test -p surge-raftstore --test sim <test>`).
//!
//! Layout: `sim/cluster.rs` drives the peers, `sim/kv_sm.rs` is the test state machine,
//! `sim/invariants.rs` holds one checker per property. The network, the fault profile, the
//! chaos decisions and the seed runner are surge-sim's, shared with the shard simulations.

// A failed unwrap in a test is a failed test, with the error in the message.
#![allow(clippy::unwrap_used)]

#[path = "sim/cluster.rs"]
mod cluster;
#[path = "sim/invariants.rs"]
mod invariants;
#[path = "sim/kv_sm.rs"]
mod kv_sm;

use std::collections::{BTreeMap, BTreeSet};
use std::ops::AddAssign;

use surge_raftstore::raft::eraftpb::Entry;
use surge_sim::Seeds;

use cluster::{Cluster, Report};
use invariants::{AppliedCommand, History, LogView};

/// Logical ticks of chaos per seed, before the network heals.
const STEPS: u64 = 2_000;

/// Totals over all seeds of one test, to prove the runs did real work.
#[derive(Debug, Default)]
struct Totals {
    seeds: usize,
    committed: usize,
    crashes: u64,
    snapshot_installs: u64,
    dropped: u64,
    partitions: u64,
}

impl AddAssign<Report> for Totals {
    fn add_assign(&mut self, report: Report) {
        self.seeds += 1;
        self.committed += report.committed;
        self.crashes += report.crashes;
        self.snapshot_installs += report.snapshot_installs;
        // Lost on the way or refused by a partition: the sender is told either way.
        self.dropped += report.net.dropped + report.net.refused;
        self.partitions += report.net.partitions;
    }
}

/// Runs `seeds` (or only `SIM_SEED`) and checks that, together, they committed real work and
/// really injected faults. A violation or a panic (ours or raft-rs's) fails the test, naming
/// the seed and how to replay it.
fn run_seeds(test: &str, nodes: u64, seeds: std::ops::Range<u64>, min_committed_per_seed: usize) {
    let command = format!("cargo test -p surge-raftstore --test sim {test}");
    let outcome = Seeds::new("SIM_SEED", seeds, command).run(test, |seed| {
        Cluster::new(seed, nodes)
            .run(STEPS)
            .map_err(|violation| format!("{nodes} nodes: {violation}"))
    });
    let t: &Totals = &outcome.totals;
    let committed = t.committed >= t.seeds * min_committed_per_seed;
    outcome.assert_did(committed, "too little committed to mean anything");
    outcome.assert_did(
        t.crashes > 0 && t.snapshot_installs > 0,
        "faults never exercised",
    );
    outcome.assert_did(
        t.dropped > 0 && t.partitions > 0,
        "network filters never fired",
    );
}

#[test]
fn three_nodes_survive_faults() {
    run_seeds("three_nodes_survive_faults", 3, 0..60, 200);
}

#[test]
fn five_nodes_survive_faults() {
    run_seeds("five_nodes_survive_faults", 5, 0..30, 200);
}

/// A seed must replay exactly, or a printed seed is worthless. The seed compared is the first
/// one that crashed a node, partitioned the network and shipped a snapshot, so every source
/// of randomness (including raft-rs's election timeouts) is covered.
#[test]
fn a_seed_replays_identically() {
    let eventful = |r: &Report| r.crashes > 0 && r.snapshot_installs > 0 && r.net.partitions > 0;
    let (seed, first) = (0..20)
        .map(|seed| (seed, Cluster::new(seed, 3).run(STEPS).expect("seed passes")))
        .find(|(_, report)| eventful(report))
        .expect("some seed among the first 20 is eventful");
    let second = Cluster::new(seed, 3).run(STEPS).expect("seed passes");
    assert_eq!(first, second, "seed {seed} did not replay identically");
}

// ---- the checkers can fail ------------------------------------------------------------------

#[test]
fn election_checker_catches_two_leaders_in_one_term() {
    let fine: BTreeSet<(u64, u64)> = [(1, 1), (2, 3), (3, 3)].into();
    assert!(invariants::check_election_safety(&fine).is_ok());
    let split: BTreeSet<(u64, u64)> = [(1, 1), (2, 3), (2, 2)].into();
    let err = invariants::check_election_safety(&split).unwrap_err();
    assert!(err.contains("term 2"), "{err}");
}

fn entry(index: u64, term: u64, data: &str) -> Entry {
    Entry {
        index,
        term,
        data: data.as_bytes().to_vec().into(),
        ..Default::default()
    }
}

fn log(first: u64, commit: u64, entries: &[(u64, &str)]) -> LogView {
    let entries = entries
        .iter()
        .zip(first..)
        .map(|(&(term, data), i)| entry(i, term, data))
        .collect();
    LogView {
        first,
        commit,
        entries,
    }
}

#[test]
fn log_matching_checker_catches_diverging_logs() {
    // A follower with an uncommitted suffix from an old term is fine.
    let fine = BTreeMap::from([
        (1, log(1, 3, &[(1, "a"), (1, "b"), (2, "c"), (3, "d")])),
        (2, log(1, 3, &[(1, "a"), (1, "b"), (2, "c"), (2, "x")])),
        (3, log(3, 2, &[(2, "c")])),
    ]);
    assert!(invariants::check_log_matching(&fine).is_ok());

    // Same index and term at 3, but different entries before it.
    let broken = BTreeMap::from([
        (1, log(1, 1, &[(1, "a"), (1, "b"), (2, "c")])),
        (2, log(1, 1, &[(1, "a"), (1, "B"), (2, "c")])),
    ]);
    assert!(invariants::check_log_matching(&broken).is_err());

    // Different terms everywhere, but both claim index 2 committed.
    let committed_split = BTreeMap::from([
        (1, log(1, 2, &[(1, "a"), (2, "b")])),
        (2, log(1, 2, &[(1, "a"), (3, "z")])),
    ]);
    assert!(invariants::check_log_matching(&committed_split).is_err());
}

#[test]
fn durability_checkers_catch_lost_and_divergent_entries() {
    let mut history = History::default();
    history.record_applied(1, 1, 1, b"a".to_vec()).unwrap();
    history.record_applied(2, 1, 1, b"a".to_vec()).unwrap();
    history.record_applied(1, 2, 1, b"b".to_vec()).unwrap();
    assert!(
        history.record_applied(3, 2, 2, b"other".to_vec()).is_err(),
        "two commands at one index"
    );
    let expected = &history.applied;
    assert_eq!(
        expected.get(&2),
        Some(&AppliedCommand {
            term: 1,
            data: b"b".to_vec(),
            first_reported_by: 1
        })
    );

    let whole = vec![(1, b"a".to_vec()), (2, b"b".to_vec())];
    let states = BTreeMap::from([(1, whole.clone()), (2, whole.clone())]);
    assert!(invariants::check_no_committed_entry_lost(expected, &states).is_ok());
    assert!(invariants::check_state_machines_identical(&states).is_ok());

    let lost = BTreeMap::from([(1, whole.clone()), (2, vec![(1, b"a".to_vec())])]);
    assert!(invariants::check_no_committed_entry_lost(expected, &lost).is_err());
    assert!(invariants::check_state_machines_identical(&lost).is_err());

    let phantom = BTreeMap::from([(1, [whole.clone(), vec![(3, b"c".to_vec())]].concat())]);
    assert!(invariants::check_no_committed_entry_lost(expected, &phantom).is_err());
}
