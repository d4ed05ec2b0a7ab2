//! Tier 2: shard membership changes on an in-process multi-raft cluster, interleaved with
//! faults (DESIGN.md §11).
//!
//! Five nodes, each with its own in-memory engine; three shards, each founded on nodes 1-3 at
//! the founding epoch. The real `Peer` and `ShardSm` run every replica, driven step by step
//! from a seeded RNG. Every message carries its sender's membership epoch at send time and is
//! judged on arrival by the real `epoch::check`, as the raft loop does: a refused stale sender
//! gets a tombstone notice and destroys itself if its epoch is older than the notice's; a
//! message from before its sender's id (re)joined is an older incarnation's, and that replica
//! is told so.
//!
//! A small coordinator plays the operators. Every few ticks it reads the shard leaders'
//! reports and now and then starts moving one replica of a shard to a node that holds none,
//! step by step as `coordinator::operator` does: add a learner → wait until it has caught up
//! (matched near commit, no snapshot pending) → hand leadership away if the leaving replica
//! leads → one explicit joint change promoting the learner and demoting the leaving voter →
//! leave the joint configuration (the leader also does that by itself, as the raft loop does
//! when `needs_leave_joint`) → remove the old replica. Each step names the epoch it was
//! computed at and reaches the leader a little later, where the executor's and the loop's
//! epoch checks refuse it if the shard moved on. Nodes heartbeat and reconcile like
//! `node::replicas`: a node named in a shard's configuration creates an empty replica at that
//! epoch (a snapshot fills it); one that is no longer named destroys its replica
//! (`stage_destroy`) and keeps a tombstone, which an older epoch never brings back.
//!
//! Faults: node crashes (a restart rebuilds every live replica from the engine), partitions,
//! message drop, duplication and reordering, lost heartbeats, and log compaction small enough
//! that snapshots happen. Clients submit orders throughout. A second test replays the seeds
//! that once credited a destroyed replica's messages to its node's next replica (fixed by join
//! epochs, see `surge_raftstore::epoch`) and adds rare very late messages (2-20 s: a stalled
//! stream or raft loop delivering its queue).
//!
//! Checked for every seed: (1) after healing and settling, every acknowledged order is stored
//! on every member's replica; (2) a destroyed replica stays destroyed: its node never runs the
//! shard again unless re-added at a newer epoch and keeps no row of it, late messages for it
//! change nothing, and late messages from it are never credited to its node's next replica;
//! (3) one epoch names one configuration on every replica (at every applied conf change,
//! snapshot install and restart), and raft-rs's configuration always equals the stored one;
//! (4) at most one leader per shard and term; (5) after settling, every member holds
//! byte-identical data rows and the same applied index, non-members hold nothing, and the
//! membership reached is the one the coordinator intended. The run also counts what happened
//! (moves, snapshots, refusals, notices, faults) and asserts lower bounds on it.
//!
//! A failure names the seed; `MEMBERSHIP_SIM_SEED=<n>` replays it alone, and
//! `MEMBERSHIP_SIM_TRACE=1` prints its membership events.

//!
//! Layout, under `membership_sim/`: `books.rs` the invariant books, `coordinator.rs` the
//! coordinator stand-in's decisions, `sim.rs` the cluster's nodes, replicas, clients and step,
//! `delivery.rs` Readies, messages and notices, `operator.rs` the coordinator's side of a step,
//! `checks.rs` the checks, `stats.rs` the counters. The cluster, network, faults, chaos and
//! seed runner are surge-sim's, shared with the shard and raft simulations.

#[path = "membership_sim/books.rs"]
mod books;
#[path = "membership_sim/checks.rs"]
mod checks;
#[path = "membership_sim/coordinator.rs"]
mod coordinator;
#[path = "membership_sim/delivery.rs"]
mod delivery;
#[path = "membership_sim/operator.rs"]
mod operator;
#[path = "membership_sim/sim.rs"]
mod sim;
#[path = "membership_sim/stats.rs"]
mod stats;

use std::collections::{BTreeMap, BTreeSet};

use surge_node::instructions::conf_change_of;
use surge_node::replicas::FOUNDING_EPOCH;
use surge_raftstore::raft::eraftpb::ConfState;
use surge_sim::{LeaderBook, Outcome, Seeds, ShardSim as _};

use books::{check_orders, EpochBook, Membership, TombstoneBook};
use coordinator::{decide, step_of, Decision, Instruction, Move, Progress, Report};
use sim::Sim;
use stats::Stats;

const NODES: [u64; 5] = [1, 2, 3, 4, 5];
const FOUNDERS: [u64; 3] = [1, 2, 3];
const SHARDS: u32 = 3;
const TENANT: u64 = 7;
const STEPS: u64 = 1_500;
const SETTLE_STEPS: u64 = 900;
const SEEDS: u64 = 12;
const LOG_GC_THRESHOLD: u64 = 16;
/// The coordinator reads reports and decides every this many ticks.
const COORD_EVERY: u64 = 4;
/// Each node heartbeats (and reconciles its replicas) every this many ticks.
const HEARTBEAT_EVERY: u64 = 8;
/// Chance per coordinator round that an idle shard starts a move, while faults run.
const MOVE_CHANCE: f64 = 0.1;
/// `coordinator::operator::CATCH_UP_SLACK`.
const CATCH_UP_SLACK: u64 = 64;
/// The raft loop's `TRANSFER_MAX_LAG`.
const TRANSFER_MAX_LAG: u64 = 128;
/// The raft loop's `TOMBSTONE_EVERY` (1 s), in ticks of 100 ms.
const TOMBSTONE_EVERY: u64 = 10;

fn run(seed: u64, late: bool) -> Result<Stats, String> {
    let mut sim = Sim::new(seed, late);
    for _ in 0..STEPS {
        sim.step();
        sim.take_violation()?;
    }
    sim.heal();
    // The coordinator finishes the moves it started, and starts no more.
    sim.moving = false;
    for i in 0..SETTLE_STEPS {
        sim.clients = i < SETTLE_STEPS / 3;
        sim.step();
        sim.take_violation()?;
    }
    sim.check_settled()?;
    Ok(sim.stats())
}

/// The seeds of one of the two runs; `MEMBERSHIP_SIM_SEED` replays one of them in the test
/// that runs it (with `late`, the one with very late messages).
fn seeds(late: bool) -> Seeds {
    let test = if late {
        "a_destroyed_replicas_messages_never_reach_its_successor"
    } else {
        "replicas_move_between_nodes_without_losing_orders_or_epochs"
    };
    let command = format!("cargo test -p surge-node --test membership_sim {test}");
    Seeds::new("MEMBERSHIP_SIM_SEED", 0..SEEDS, command)
}

/// Runs every seed, or `MEMBERSHIP_SIM_SEED` alone, and sums their stats; a failure names its
/// seed.
fn run_seeds(late: bool) -> Outcome<Stats> {
    let label = format!("membership sim (late messages: {late})");
    seeds(late).run(&label, |seed| run(seed, late))
}

#[test]
fn replicas_move_between_nodes_without_losing_orders_or_epochs() {
    let outcome = run_seeds(false);
    let (t, many) = (&outcome.totals, outcome.seeds);
    let busy = t.moves_done >= 10 * many && t.acked >= 400 * many;
    outcome.assert_did(busy, "too little happened");
    let caught_up = t.snapshots_installed >= t.moves_done / 2 && t.recreated >= 5 * many;
    outcome.assert_did(caught_up, "learners were not caught up by snapshots");
    let told = t.stale_refusals >= 20 * many
        && t.notices_sent >= 5 * many
        && t.notice_destroys >= many
        && t.late_for_removed >= 20 * many;
    outcome.assert_did(told, "removed replicas were not refused and told");
    let faults = t.crashes >= many && t.partitions >= 1 && t.transfers >= 5 * many;
    outcome.assert_did(faults, "faults did not happen");
    let refused = t.stale_directives + t.epoch_rejections >= 10 * many;
    outcome.assert_did(refused, "no step was refused for its epoch");
}

/// Seeds (and whether messages may arrive very late) on which a destroyed replica's message is
/// credited to its node's next replica of the shard: 24 with ordinary reordering, 6 with late
/// messages (where, unchecked, raft-rs panics).
const BUG_SEEDS: [(u64, bool); 2] = [(24, false), (6, true)];

/// Invariant 2 on the seeds above, then every seed with rare very late messages: a stream or a
/// raft loop that stalled for a few seconds delivers its queue, so a destroyed replica's last
/// messages can arrive after its node was added to the shard again.
#[test]
fn a_destroyed_replicas_messages_never_reach_its_successor() {
    if std::env::var_os("MEMBERSHIP_SIM_SEED").is_none() {
        for (seed, late) in BUG_SEEDS {
            seeds(late).check(seed, |seed| run(seed, late));
        }
    }
    let outcome = run_seeds(true);
    let (t, many) = (&outcome.totals, outcome.seeds);
    let busy = t.moves_done >= 10 * many && t.delayed >= many;
    outcome.assert_did(busy, "too little happened");
}

#[test]
fn the_checkers_catch_violations() {
    let joint = Membership {
        voters: [2, 3, 4].into(),
        outgoing: [1, 2, 3].into(),
        learners_next: [1].into(),
        ..Membership::default()
    };
    let mut epochs = EpochBook::default();
    assert_eq!(epochs.record(0, 4, 1, joint.clone()), Ok(()));
    assert_eq!(epochs.record(0, 4, 2, joint.clone()), Ok(()));
    assert_eq!(
        epochs.record(1, 4, 2, Membership::voters(&[1, 2, 3])),
        Ok(())
    );
    assert!(epochs
        .record(0, 4, 3, Membership::voters(&[2, 3, 4]))
        .is_err());
    // Node 1 is a member from the founding epoch 2 through 4 (outgoing), gone at 5, back at 6:
    // a message of its replica from before 6 is not from the member at 6.
    let learner_1 = Membership {
        learners: [1].into(),
        ..Membership::voters(&[2, 3, 4])
    };
    assert_eq!(
        epochs.record(0, 2, 1, Membership::voters(&[1, 2, 3])),
        Ok(())
    );
    assert_eq!(
        epochs.record(0, 3, 1, Membership::voters(&[1, 2, 3])),
        Ok(())
    );
    assert_eq!(
        epochs.record(0, 5, 2, Membership::voters(&[2, 3, 4])),
        Ok(())
    );
    assert_eq!(epochs.record(0, 6, 2, learner_1), Ok(()));
    assert_eq!(epochs.joined(0, 1, 4), Some(2));
    assert_eq!(epochs.joined(0, 1, 5), None);
    assert_eq!(epochs.joined(0, 1, 6), Some(6));
    assert_eq!(epochs.joined(0, 1, 7), None);
    // Order inside a ConfState does not matter; content does.
    let a = ConfState {
        voters: vec![1, 2, 3],
        ..ConfState::default()
    };
    let b = ConfState {
        voters: vec![3, 1, 2],
        ..ConfState::default()
    };
    assert_eq!(Membership::of(&a), Membership::of(&b));

    let mut leaders = LeaderBook::default();
    assert_eq!(leaders.record(0, 5, 1), Ok(()));
    assert_eq!(leaders.record(0, 5, 1), Ok(()));
    assert_eq!(leaders.record(1, 5, 2), Ok(()));
    assert!(leaders.record(0, 5, 2).is_err());

    let mut tombstones = TombstoneBook::default();
    tombstones.destroyed(4, 0, 7);
    assert_eq!(tombstones.check_running(4, 1, 3), Ok(()));
    assert_eq!(tombstones.check_running(4, 0, 8), Ok(()));
    assert!(tombstones.check_running(4, 0, 7).is_err());
    assert!(tombstones.check_running(4, 0, 5).is_err());

    let acked = BTreeMap::from([("ext-1".to_string(), (0, "o1".to_string()))]);
    let members = BTreeMap::from([(0, BTreeSet::from([1, 2, 4]))]);
    let everywhere = |_: u64, _: u32, _: &str| Some("o1".to_string());
    assert_eq!(check_orders(&acked, &members, &everywhere), Ok(()));
    let lost_on_4 = |id: u64, _: u32, _: &str| (id != 4).then(|| "o1".to_string());
    assert!(check_orders(&acked, &members, &lost_on_4).is_err());
}

#[test]
fn the_step_function_moves_a_replica_in_order() {
    let alive: BTreeSet<u64> = NODES.into_iter().collect();
    let mv = Move { from: 1, to: 4 };
    let progress = |matched| Progress {
        matched,
        snapshot: false,
        active: true,
    };
    let mut r = Report {
        leader: 1,
        epoch: FOUNDING_EPOCH,
        membership: Membership::voters(&[1, 2, 3]),
        commit: 100,
        followers: BTreeMap::from([(2, progress(100)), (3, progress(100))]),
    };
    assert_eq!(
        decide(&r, &mv, &alive),
        Decision::Do(Instruction::AddLearner(4))
    );
    r.membership.learners.insert(4);
    r.followers.insert(4, progress(0));
    assert_eq!(decide(&r, &mv, &alive), Decision::Wait);
    r.followers.insert(4, progress(90));
    assert_eq!(
        decide(&r, &mv, &alive),
        Decision::Do(Instruction::TransferLeader(2))
    );
    r.leader = 2;
    assert_eq!(
        decide(&r, &mv, &alive),
        Decision::Do(Instruction::EnterJoint {
            promote: 4,
            demote: 1
        })
    );
    r.membership = joint_of(&[2, 3, 4], &[1, 2, 3], &[1]);
    assert_eq!(
        decide(&r, &mv, &alive),
        Decision::Do(Instruction::LeaveJoint)
    );
    r.membership = Membership {
        learners: [1].into(),
        ..Membership::voters(&[2, 3, 4])
    };
    assert_eq!(
        decide(&r, &mv, &alive),
        Decision::Do(Instruction::Remove(1))
    );
    r.membership = Membership::voters(&[2, 3, 4]);
    assert_eq!(decide(&r, &mv, &alive), Decision::Done);
    let leave = conf_change_of(&step_of(Instruction::LeaveJoint)).expect("leave");
    assert!(leave.changes.is_empty());
}

fn joint_of(voters: &[u64], outgoing: &[u64], learners_next: &[u64]) -> Membership {
    Membership {
        voters: voters.iter().copied().collect(),
        outgoing: outgoing.iter().copied().collect(),
        learners_next: learners_next.iter().copied().collect(),
        ..Membership::default()
    }
}
