//! Table tests of [`operator::decide`]: for every operator kind, a shard as its leader
//! reported it and an operator at a recorded step, against the step `decide` says it is really
//! at, the instruction it gives the shard leader, and whether the operator is over.
//!
//! Each kind is also walked end to end: a tiny model of the shard carries out every
//! instruction (as raft-rs would report the configuration afterwards) and the trace of
//! (step, instruction) pairs is compared whole.

use surge_meta::operator::{
    decide, Context, Instruction, Operator, OperatorKind, Outcome, Reason, Step, CATCH_UP_SLACK,
};
use surge_meta::shard_view::{Follower, ShardView};

use Instruction as I;

/// When the operator's recorded step began.
const T0: u64 = 10_000_000;
const SEC: u64 = 1_000;
const MIN: u64 = 60 * SEC;
/// The shard's commit (and last) index in every view.
const COMMIT: u64 = 500;

const MOVE_1_TO_4: OperatorKind = OperatorKind::MoveReplica { from: 1, to: 4 };
const ADD_4: OperatorKind = OperatorKind::AddReplica { to: 4 };

// ---- shard views -------------------------------------------------------------------------

/// raft-rs's progress states, as the heartbeat names them.
#[derive(Clone, Copy)]
enum Progress {
    Replicate,
    Probe,
    Snapshot,
}

fn progress(matched: u64, state: Progress) -> Follower {
    Follower {
        matched,
        snapshot: matches!(state, Progress::Snapshot),
        replicating: matches!(state, Progress::Replicate),
        active: true,
    }
}

fn sorted(ids: &[u64]) -> Vec<u64> {
    let mut v = ids.to_vec();
    v.sort_unstable();
    v.dedup();
    v
}

/// A shard led by `leader`, not joint, every follower replicating at the commit index.
fn shard(leader: u64, voters: &[u64], learners: &[u64]) -> ShardView {
    let followers = voters
        .iter()
        .chain(learners)
        .filter(|n| **n != leader)
        .map(|n| (*n, progress(COMMIT, Progress::Replicate)))
        .collect();
    ShardView {
        shard: 7,
        leader,
        term: 3,
        epoch: 5,
        voters: sorted(voters),
        learners: sorted(learners),
        commit: COMMIT,
        last_index: COMMIT,
        applied: COMMIT,
        followers,
        reported_at_ms: T0,
        ..ShardView::default()
    }
}

/// A shard in a joint configuration: `incoming` votes, `outgoing` voted, `learners_next`
/// become learners when the joint configuration is left.
fn joint(leader: u64, incoming: &[u64], outgoing: &[u64], learners_next: &[u64]) -> ShardView {
    let mut all = incoming.to_vec();
    all.extend(outgoing);
    all.extend(learners_next);
    let mut v = shard(leader, &sorted(&all), &[]);
    v.voters = sorted(incoming);
    v.outgoing = sorted(outgoing);
    v.learners_next = sorted(learners_next);
    v
}

/// `view` with `id`'s progress replaced.
fn with(mut view: ShardView, id: u64, matched: u64, state: Progress) -> ShardView {
    view.followers.insert(id, progress(matched, state));
    view
}

/// `view` with `id` not heard from within the leader's last check-quorum round.
fn quiet(mut view: ShardView, id: u64) -> ShardView {
    if let Some(f) = view.followers.get_mut(&id) {
        f.active = false;
    }
    view
}

/// `view` with no progress known for `id`.
fn without(mut view: ShardView, id: u64) -> ShardView {
    view.followers.remove(&id);
    view
}

// ---- operators and contexts --------------------------------------------------------------

/// How long `step` may take: read from the operator's own table, so these rows follow its
/// tuning (which steps time out at all is pinned by its own test).
fn limit(step: Step) -> u64 {
    step.timeout_ms().expect("the step has a timeout")
}

/// An operator of `kind` recorded at `step` since [`T0`].
fn op(kind: OperatorKind, step: Step) -> Operator {
    let mut o = Operator::new(7, kind, Reason::Balance, 5, 0, T0 - MIN);
    o.id = 1;
    o.step = step;
    o.step_since_ms = T0;
    o
}

fn cancelled(mut o: Operator) -> Operator {
    o.cancel_requested = true;
    o
}

fn all_alive(_: u64) -> bool {
    true
}

fn all_but_2(n: u64) -> bool {
    n != 2
}

/// One row: the input, and exactly what `decide` must answer.
struct Row {
    name: &'static str,
    op: Operator,
    view: ShardView,
    now_ms: u64,
    leading_since_ms: u64,
    alive: fn(u64) -> bool,
    step: Step,
    instruction: Option<Instruction>,
    finish: Option<Outcome>,
    /// A piece of the decision's note (or of the finish note); "" checks nothing.
    note: &'static str,
}

/// A row decided one second after the step began, by a coordinator leading since forever,
/// every node alive; it expects to wait at `step` until `wants` says otherwise.
fn row(name: &'static str, op: Operator, view: ShardView) -> Row {
    let step = op.step;
    Row {
        name,
        op,
        view,
        now_ms: T0 + SEC,
        leading_since_ms: 0,
        alive: all_alive,
        step,
        instruction: None,
        finish: None,
        note: "",
    }
}

impl Row {
    /// Decided `ms` after the step began.
    fn after(mut self, ms: u64) -> Row {
        self.now_ms = T0 + ms;
        self
    }

    /// This coordinator became leader `ms` after the step began.
    fn leading_since(mut self, ms: u64) -> Row {
        self.leading_since_ms = T0 + ms;
        self
    }

    fn alive(mut self, alive: fn(u64) -> bool) -> Row {
        self.alive = alive;
        self
    }

    fn wants(mut self, step: Step, instruction: Option<Instruction>) -> Row {
        self.step = step;
        self.instruction = instruction;
        self
    }

    fn ends(mut self, step: Step, outcome: Outcome) -> Row {
        self.step = step;
        self.finish = Some(outcome);
        self
    }

    fn noting(mut self, note: &'static str) -> Row {
        self.note = note;
        self
    }
}

/// Decides every row and fails listing every row that answered otherwise.
fn check(rows: Vec<Row>) {
    let mut wrong = Vec::new();
    for r in &rows {
        let ctx = Context {
            now_ms: r.now_ms,
            leading_since_ms: r.leading_since_ms,
            alive: &r.alive,
        };
        let d = decide(&r.op, &r.view, &ctx);
        let finish = d.finish.as_ref().map(|(o, _)| *o);
        let note = d
            .finish
            .as_ref()
            .map_or(d.note.as_str(), |(_, n)| n.as_str());
        if d.step != r.step
            || d.instruction != r.instruction
            || finish != r.finish
            || !note.contains(r.note)
        {
            wrong.push(format!(
                "{}:\n    want step {:?}, {:?}, finish {:?}, note ~ {:?}\n    got  step {:?}, {:?}, finish {:?}, note {:?}",
                r.name, r.step, r.instruction, r.finish, r.note, d.step, d.instruction, finish, note
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} row(s) wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

// ---- a tiny shard that carries out instructions -------------------------------------------

/// The configuration the shard's leader would report after carrying out `i`.
fn carry_out(mut v: ShardView, i: Instruction) -> ShardView {
    match i {
        I::AddLearner(n) => {
            v.learners.push(n);
            v.followers.insert(n, progress(0, Progress::Snapshot));
        }
        I::Promote(n) => {
            v.learners.retain(|l| *l != n);
            v.voters.push(n);
        }
        I::EnterJoint { promote, demote } => {
            v.outgoing = v.voters.clone();
            v.voters.retain(|x| *x != demote);
            v.voters.push(promote);
            v.learners.retain(|l| *l != promote);
            v.learners_next = vec![demote];
        }
        I::LeaveJoint => {
            v.outgoing.clear();
            let next = std::mem::take(&mut v.learners_next);
            v.learners.extend(next);
        }
        I::Remove(n) => {
            for list in [
                &mut v.voters,
                &mut v.learners,
                &mut v.outgoing,
                &mut v.learners_next,
            ] {
                list.retain(|x| *x != n);
            }
            v.followers.remove(&n);
        }
        I::TransferLeader(n) => {
            v.followers.remove(&n);
            v.followers
                .insert(v.leader, progress(COMMIT, Progress::Replicate));
            v.leader = n;
            v.term += 1;
        }
    }
    if !matches!(i, I::TransferLeader(_)) {
        v.epoch += 1;
    }
    for list in [
        &mut v.voters,
        &mut v.learners,
        &mut v.outgoing,
        &mut v.learners_next,
    ] {
        list.sort_unstable();
    }
    v
}

/// Every follower done with its snapshot and at the commit index, but (as on an idle shard)
/// still in raft-rs's probe state.
fn caught_up_probing(mut v: ShardView) -> ShardView {
    for f in v.followers.values_mut() {
        *f = progress(COMMIT, Progress::Probe);
    }
    v
}

type Trace = Vec<(Step, Option<Instruction>)>;

/// Drives `op` as the scheduler would (recording each new step) against the model shard,
/// until it finishes; a round with nothing to do lets the followers catch up.
fn walk(mut op: Operator, mut view: ShardView) -> (Trace, Option<Outcome>) {
    let mut trace = Vec::new();
    for round in 0..16 {
        let now_ms = T0 + round * SEC;
        let ctx = Context {
            now_ms,
            leading_since_ms: 0,
            alive: &all_alive,
        };
        let d = decide(&op, &view, &ctx);
        trace.push((d.step, d.instruction));
        if let Some((outcome, _)) = d.finish {
            return (trace, Some(outcome));
        }
        if d.step != op.step {
            op.step = d.step;
            op.step_since_ms = now_ms;
        }
        view = match d.instruction {
            Some(i) => carry_out(view, i),
            None => caught_up_probing(view),
        };
    }
    (trace, None)
}

// ---- walks -------------------------------------------------------------------------------

#[test]
fn each_kind_walks_from_its_first_step_to_done() {
    let move_from_leader = walk(
        Operator::new(7, MOVE_1_TO_4, Reason::Balance, 5, 0, T0),
        shard(1, &[1, 2, 3], &[]),
    );
    assert_eq!(
        move_from_leader,
        (
            vec![
                (Step::AddLearner, Some(I::AddLearner(4))),
                (Step::CatchUp, None),
                (Step::TransferLeader, Some(I::TransferLeader(2))),
                (
                    Step::EnterJoint,
                    Some(I::EnterJoint {
                        promote: 4,
                        demote: 1
                    })
                ),
                (Step::LeaveJoint, Some(I::LeaveJoint)),
                (Step::RemoveOld, Some(I::Remove(1))),
                (Step::RemoveOld, None),
            ],
            Some(Outcome::Done)
        ),
        "move-replica 1 → 4 while 1 leads"
    );

    let move_from_follower = walk(
        Operator::new(7, MOVE_1_TO_4, Reason::Balance, 5, 0, T0),
        shard(2, &[1, 2, 3], &[]),
    );
    assert_eq!(
        move_from_follower,
        (
            vec![
                (Step::AddLearner, Some(I::AddLearner(4))),
                (Step::CatchUp, None),
                (
                    Step::EnterJoint,
                    Some(I::EnterJoint {
                        promote: 4,
                        demote: 1
                    })
                ),
                (Step::LeaveJoint, Some(I::LeaveJoint)),
                (Step::RemoveOld, Some(I::Remove(1))),
                (Step::RemoveOld, None),
            ],
            Some(Outcome::Done)
        ),
        "move-replica 1 → 4 while 2 leads: no transfer"
    );

    let add = walk(
        Operator::new(7, ADD_4, Reason::Repair, 5, 0, T0),
        shard(1, &[1, 2, 3], &[]),
    );
    assert_eq!(
        add,
        (
            vec![
                (Step::AddLearner, Some(I::AddLearner(4))),
                (Step::CatchUp, None),
                (Step::Promote, Some(I::Promote(4))),
                (Step::Promote, None),
            ],
            Some(Outcome::Done)
        ),
        "add-replica 4"
    );

    let remove_leader = walk(
        Operator::new(
            7,
            OperatorKind::RemoveReplica { from: 1 },
            Reason::Repair,
            5,
            0,
            T0,
        ),
        shard(1, &[1, 2, 3, 4], &[]),
    );
    assert_eq!(
        remove_leader,
        (
            vec![
                (Step::TransferLeader, Some(I::TransferLeader(2))),
                (Step::RemoveOld, Some(I::Remove(1))),
                (Step::RemoveOld, None),
            ],
            Some(Outcome::Done)
        ),
        "remove-replica 1 while 1 leads"
    );

    let transfer = walk(
        Operator::new(
            7,
            OperatorKind::TransferLeader { from: 1, to: 3 },
            Reason::BalanceLeader,
            5,
            0,
            T0,
        ),
        shard(1, &[1, 2, 3], &[]),
    );
    assert_eq!(
        transfer,
        (
            vec![
                (Step::TransferLeader, Some(I::TransferLeader(3))),
                (Step::TransferLeader, None),
            ],
            Some(Outcome::Done)
        ),
        "transfer-leader 1 → 3"
    );
}

// ---- move-replica ------------------------------------------------------------------------

#[test]
fn move_replica_goes_forward_one_step_per_report() {
    let caught_up = shard(1, &[1, 2, 3], &[4]);
    check(vec![
        row(
            "nothing done yet",
            op(MOVE_1_TO_4, Step::AddLearner),
            shard(1, &[1, 2, 3], &[]),
        )
        .wants(Step::AddLearner, Some(I::AddLearner(4))),
        row(
            "learner receiving its snapshot",
            op(MOVE_1_TO_4, Step::AddLearner),
            with(caught_up.clone(), 4, 0, Progress::Snapshot),
        )
        .wants(Step::CatchUp, None)
        .noting("learner on node 4: 500 entries behind"),
        row(
            "learner with no progress reported yet",
            op(MOVE_1_TO_4, Step::CatchUp),
            without(caught_up.clone(), 4),
        )
        .wants(Step::CatchUp, None)
        .noting("no progress yet"),
        row(
            "learner one entry past the slack",
            op(MOVE_1_TO_4, Step::CatchUp),
            with(
                caught_up.clone(),
                4,
                COMMIT - CATCH_UP_SLACK - 1,
                Progress::Replicate,
            ),
        )
        .wants(Step::CatchUp, None)
        .noting("65 entries behind"),
        row(
            "learner in snapshot state though matched reads high",
            op(MOVE_1_TO_4, Step::CatchUp),
            with(caught_up.clone(), 4, COMMIT, Progress::Snapshot),
        )
        .wants(Step::CatchUp, None),
        row(
            "learner probing with nothing matched",
            op(MOVE_1_TO_4, Step::CatchUp),
            with(caught_up.clone(), 4, 0, Progress::Probe),
        )
        .wants(Step::CatchUp, None),
        row(
            "learner exactly at the slack, leaving replica leads",
            op(MOVE_1_TO_4, Step::CatchUp),
            with(
                caught_up.clone(),
                4,
                COMMIT - CATCH_UP_SLACK,
                Progress::Replicate,
            ),
        )
        .wants(Step::TransferLeader, Some(I::TransferLeader(2))),
        row(
            "learner probing with matched == commit counts as caught up",
            op(MOVE_1_TO_4, Step::CatchUp),
            with(caught_up.clone(), 4, COMMIT, Progress::Probe),
        )
        .wants(Step::TransferLeader, Some(I::TransferLeader(2))),
        row(
            "leadership goes to the lowest caught-up voter: 2 is behind",
            op(MOVE_1_TO_4, Step::CatchUp),
            with(caught_up.clone(), 2, 10, Progress::Replicate),
        )
        .wants(Step::TransferLeader, Some(I::TransferLeader(3))),
        row(
            "leadership skips a caught-up voter not heard from lately",
            op(MOVE_1_TO_4, Step::CatchUp),
            quiet(caught_up.clone(), 2),
        )
        .wants(Step::TransferLeader, Some(I::TransferLeader(3))),
        row(
            "leadership goes to the lowest live voter: 2 is dead",
            op(MOVE_1_TO_4, Step::CatchUp),
            caught_up.clone(),
        )
        .alive(all_but_2)
        .wants(Step::TransferLeader, Some(I::TransferLeader(3))),
        row(
            "no voter fit to lead",
            op(MOVE_1_TO_4, Step::TransferLeader),
            with(
                with(caught_up.clone(), 2, 10, Progress::Replicate),
                3,
                0,
                Progress::Snapshot,
            ),
        )
        .wants(Step::TransferLeader, None)
        .noting("no caught-up voter to lead"),
        row(
            "caught up and the leaving replica does not lead",
            op(MOVE_1_TO_4, Step::TransferLeader),
            shard(2, &[1, 2, 3], &[4]),
        )
        .wants(
            Step::EnterJoint,
            Some(I::EnterJoint {
                promote: 4,
                demote: 1,
            }),
        ),
        row(
            "joint: 4 promoted, 1 demoted",
            op(MOVE_1_TO_4, Step::EnterJoint),
            joint(2, &[2, 3, 4], &[1, 2, 3], &[1]),
        )
        .wants(Step::LeaveJoint, Some(I::LeaveJoint)),
        row(
            "joint left: 1 is a learner",
            op(MOVE_1_TO_4, Step::LeaveJoint),
            shard(2, &[2, 3, 4], &[1]),
        )
        .wants(Step::RemoveOld, Some(I::Remove(1))),
        row(
            "4 votes beside a leading 1: leadership moves before 1 goes",
            op(MOVE_1_TO_4, Step::EnterJoint),
            shard(1, &[1, 2, 3, 4], &[]),
        )
        .wants(Step::RemoveOld, Some(I::TransferLeader(2))),
        row(
            "4 votes beside a leading 1, nobody fit to lead",
            op(MOVE_1_TO_4, Step::RemoveOld),
            with(
                with(
                    with(shard(1, &[1, 2, 3, 4], &[]), 2, 0, Progress::Snapshot),
                    3,
                    0,
                    Progress::Snapshot,
                ),
                4,
                0,
                Progress::Snapshot,
            ),
        )
        .wants(Step::RemoveOld, None)
        .noting("no caught-up voter to lead"),
        row(
            "1 is gone: done",
            op(MOVE_1_TO_4, Step::RemoveOld),
            shard(2, &[2, 3, 4], &[]),
        )
        .ends(Step::RemoveOld, Outcome::Done),
    ]);
}

#[test]
fn move_replica_fails_when_its_source_no_longer_votes() {
    check(vec![
        row(
            "node 1 left the shard before the learner was added",
            op(MOVE_1_TO_4, Step::AddLearner),
            shard(2, &[2, 3, 5], &[]),
        )
        .ends(Step::AddLearner, Outcome::Failed)
        .noting("node 1 no longer holds a voter of the shard"),
        row(
            "node 1 is only a learner now",
            op(MOVE_1_TO_4, Step::AddLearner),
            shard(2, &[2, 3, 5], &[1]),
        )
        .ends(Step::AddLearner, Outcome::Failed)
        .noting("node 1 no longer holds a voter"),
        row(
            "node 1 left while the learner caught up",
            op(MOVE_1_TO_4, Step::CatchUp),
            shard(2, &[2, 3, 5], &[4]),
        )
        .ends(Step::CatchUp, Outcome::Failed)
        .noting("node 1 no longer holds a voter"),
    ]);
}

#[test]
fn move_replica_rolls_back_only_before_the_new_replica_votes() {
    let behind = with(shard(1, &[1, 2, 3], &[4]), 4, 3, Progress::Replicate);
    let nobody_can_lead = with(
        with(shard(1, &[1, 2, 3], &[4]), 2, 0, Progress::Snapshot),
        3,
        0,
        Progress::Snapshot,
    );
    let mut rolling_back = op(MOVE_1_TO_4, Step::RollBack);
    rolling_back.note = "catch-up timed out".into();
    check(vec![
        // Timeouts.
        row(
            "catch-up at its timeout",
            op(MOVE_1_TO_4, Step::CatchUp),
            behind.clone(),
        )
        .after(limit(Step::CatchUp))
        .wants(Step::CatchUp, None),
        row(
            "catch-up past its timeout",
            op(MOVE_1_TO_4, Step::CatchUp),
            behind.clone(),
        )
        .after(limit(Step::CatchUp) + 1)
        .wants(Step::RollBack, Some(I::Remove(4)))
        .noting("catch-up timed out"),
        row(
            "rolling back, the learner still there",
            rolling_back.clone(),
            behind.clone(),
        )
        .wants(Step::RollBack, Some(I::Remove(4))),
        row(
            "rolling back, the learner gone",
            rolling_back.clone(),
            shard(1, &[1, 2, 3], &[]),
        )
        .ends(Step::RollBack, Outcome::RolledBack)
        .noting("catch-up timed out"),
        row(
            "add-learner past its timeout, the learner never appeared",
            op(MOVE_1_TO_4, Step::AddLearner),
            shard(1, &[1, 2, 3], &[]),
        )
        .after(limit(Step::AddLearner) + 1)
        .ends(Step::RollBack, Outcome::RolledBack)
        .noting("add-learner timed out"),
        row(
            "transfer-leader past its timeout",
            op(MOVE_1_TO_4, Step::TransferLeader),
            nobody_can_lead.clone(),
        )
        .after(limit(Step::TransferLeader) + 1)
        .wants(Step::RollBack, Some(I::Remove(4))),
        row(
            "enter-joint past its timeout, never applied",
            op(MOVE_1_TO_4, Step::EnterJoint),
            shard(2, &[1, 2, 3], &[4]),
        )
        .after(limit(Step::EnterJoint) + 1)
        .wants(Step::RollBack, Some(I::Remove(4))),
        row(
            "a recorded step the shard is past does not time out",
            op(MOVE_1_TO_4, Step::AddLearner),
            behind.clone(),
        )
        .after(limit(Step::CatchUp) + 1)
        .wants(Step::CatchUp, None),
        // Cancels.
        row(
            "cancel before the learner exists",
            cancelled(op(MOVE_1_TO_4, Step::AddLearner)),
            shard(1, &[1, 2, 3], &[]),
        )
        .ends(Step::RollBack, Outcome::RolledBack)
        .noting("cancelled"),
        row(
            "cancel while catching up",
            cancelled(op(MOVE_1_TO_4, Step::CatchUp)),
            behind.clone(),
        )
        .wants(Step::RollBack, Some(I::Remove(4)))
        .noting("cancelled"),
        row(
            "cancel at enter-joint, not yet applied",
            cancelled(op(MOVE_1_TO_4, Step::EnterJoint)),
            shard(2, &[1, 2, 3], &[4]),
        )
        .wants(Step::RollBack, Some(I::Remove(4))),
        // Past the point of no return.
        row(
            "cancel once joint",
            cancelled(op(MOVE_1_TO_4, Step::EnterJoint)),
            joint(2, &[2, 3, 4], &[1, 2, 3], &[1]),
        )
        .wants(Step::LeaveJoint, Some(I::LeaveJoint)),
        row(
            "cancel once the joint configuration is left",
            cancelled(op(MOVE_1_TO_4, Step::LeaveJoint)),
            shard(2, &[2, 3, 4], &[1]),
        )
        .wants(Step::RemoveOld, Some(I::Remove(1))),
        row(
            "enter-joint long overdue, but the shard is joint",
            op(MOVE_1_TO_4, Step::EnterJoint),
            joint(2, &[2, 3, 4], &[1, 2, 3], &[1]),
        )
        .after(60 * MIN)
        .wants(Step::LeaveJoint, Some(I::LeaveJoint)),
        row(
            "leave-joint never times out",
            cancelled(op(MOVE_1_TO_4, Step::LeaveJoint)),
            joint(2, &[2, 3, 4], &[1, 2, 3], &[1]),
        )
        .after(60 * MIN)
        .wants(Step::LeaveJoint, Some(I::LeaveJoint)),
        row(
            "remove-old never times out",
            cancelled(op(MOVE_1_TO_4, Step::RemoveOld)),
            shard(2, &[2, 3, 4], &[1]),
        )
        .after(60 * MIN)
        .wants(Step::RemoveOld, Some(I::Remove(1))),
        row(
            "remove-old overdue, waiting for a leader to hand over to",
            cancelled(op(MOVE_1_TO_4, Step::RemoveOld)),
            with(
                with(
                    with(shard(1, &[1, 2, 3, 4], &[]), 2, 0, Progress::Snapshot),
                    3,
                    0,
                    Progress::Snapshot,
                ),
                4,
                0,
                Progress::Snapshot,
            ),
        )
        .after(60 * MIN)
        .wants(Step::RemoveOld, None),
    ]);
}

#[test]
fn a_new_coordinator_leader_grants_a_full_step_before_timing_out() {
    let behind = with(shard(1, &[1, 2, 3], &[4]), 4, 3, Progress::Replicate);
    let catch_up = limit(Step::CatchUp);
    check(vec![
        row(
            "catch-up a minute overdue, but this coordinator leads for 1 s",
            op(MOVE_1_TO_4, Step::CatchUp),
            behind.clone(),
        )
        .after(catch_up + MIN)
        .leading_since(catch_up + MIN - SEC)
        .wants(Step::CatchUp, None),
        row(
            "catch-up long overdue, this coordinator leading for exactly the timeout",
            op(MOVE_1_TO_4, Step::CatchUp),
            behind.clone(),
        )
        .after(catch_up + 11 * MIN)
        .leading_since(11 * MIN)
        .wants(Step::CatchUp, None),
        row(
            "catch-up long overdue, this coordinator leading for the timeout + 1 ms",
            op(MOVE_1_TO_4, Step::CatchUp),
            behind.clone(),
        )
        .after(catch_up + 12 * MIN + 1)
        .leading_since(12 * MIN)
        .wants(Step::RollBack, Some(I::Remove(4))),
        row(
            "leading since before the step began: the step's own clock counts",
            op(MOVE_1_TO_4, Step::CatchUp),
            behind.clone(),
        )
        .after(catch_up + 1)
        .wants(Step::RollBack, Some(I::Remove(4))),
        row(
            "transfer-leader overdue, this coordinator leading for 1 s",
            op(
                OperatorKind::TransferLeader { from: 1, to: 3 },
                Step::TransferLeader,
            ),
            shard(1, &[1, 2, 3], &[]),
        )
        .after(limit(Step::TransferLeader) + SEC)
        .leading_since(limit(Step::TransferLeader))
        .wants(Step::TransferLeader, Some(I::TransferLeader(3))),
        row(
            "add-replica promote overdue, this coordinator leading for 1 s",
            op(ADD_4, Step::Promote),
            shard(1, &[1, 2, 3], &[4]),
        )
        .after(2 * limit(Step::Promote))
        .leading_since(2 * limit(Step::Promote) - SEC)
        .wants(Step::Promote, Some(I::Promote(4))),
    ]);
}

// ---- add-replica -------------------------------------------------------------------------

#[test]
fn add_replica_adds_a_learner_then_promotes_it() {
    let learner = shard(1, &[1, 2, 3], &[4]);
    check(vec![
        row(
            "nothing done yet",
            op(ADD_4, Step::AddLearner),
            shard(1, &[1, 2], &[]),
        )
        .wants(Step::AddLearner, Some(I::AddLearner(4))),
        row(
            "learner receiving its snapshot",
            op(ADD_4, Step::AddLearner),
            with(learner.clone(), 4, 0, Progress::Snapshot),
        )
        .wants(Step::CatchUp, None)
        .noting("learner on node 4 catching up"),
        row(
            "learner probing at the commit index",
            op(ADD_4, Step::CatchUp),
            with(learner.clone(), 4, COMMIT, Progress::Probe),
        )
        .wants(Step::Promote, Some(I::Promote(4))),
        row(
            "a joint configuration is left first",
            op(ADD_4, Step::AddLearner),
            joint(1, &[1, 2, 3], &[1, 2, 5], &[5]),
        )
        .wants(Step::LeaveJoint, Some(I::LeaveJoint)),
        row(
            "4 votes: done",
            op(ADD_4, Step::Promote),
            shard(1, &[1, 2, 3, 4], &[]),
        )
        .ends(Step::Promote, Outcome::Done),
        row(
            "4 votes: done, even when cancelled",
            cancelled(op(ADD_4, Step::Promote)),
            shard(1, &[1, 2, 3, 4], &[]),
        )
        .ends(Step::Promote, Outcome::Done),
        row(
            "cancel while catching up",
            cancelled(op(ADD_4, Step::CatchUp)),
            with(learner.clone(), 4, 0, Progress::Snapshot),
        )
        .wants(Step::RollBack, Some(I::Remove(4)))
        .noting("cancelled"),
        row(
            "promote past its timeout",
            op(ADD_4, Step::Promote),
            learner.clone(),
        )
        .after(limit(Step::Promote) + 1)
        .wants(Step::RollBack, Some(I::Remove(4)))
        .noting("promote timed out"),
        row(
            "rolled back once 4 is gone",
            op(ADD_4, Step::RollBack),
            shard(1, &[1, 2, 3], &[]),
        )
        .ends(Step::RollBack, Outcome::RolledBack),
    ]);
}

// ---- remove-replica ----------------------------------------------------------------------

#[test]
fn remove_replica_hands_over_leadership_then_removes() {
    let remove = |from| op(OperatorKind::RemoveReplica { from }, Step::RemoveOld);
    check(vec![
        row("a follower", remove(4), shard(1, &[1, 2, 3, 4], &[]))
            .wants(Step::RemoveOld, Some(I::Remove(4))),
        row("an orphan learner", remove(4), shard(1, &[1, 2, 3], &[4]))
            .wants(Step::RemoveOld, Some(I::Remove(4))),
        row("the leader", remove(1), shard(1, &[1, 2, 3, 4], &[]))
            .wants(Step::TransferLeader, Some(I::TransferLeader(2))),
        row(
            "the leader, 2 not heard from lately",
            remove(1),
            quiet(shard(1, &[1, 2, 3, 4], &[]), 2),
        )
        .wants(Step::TransferLeader, Some(I::TransferLeader(3))),
        row(
            "the leader, 2 dead",
            remove(1),
            shard(1, &[1, 2, 3, 4], &[]),
        )
        .alive(all_but_2)
        .wants(Step::TransferLeader, Some(I::TransferLeader(3))),
        row(
            "the leader, nobody fit to lead",
            remove(1),
            with(
                with(shard(1, &[1, 2, 3], &[]), 2, 0, Progress::Snapshot),
                3,
                0,
                Progress::Snapshot,
            ),
        )
        .wants(Step::TransferLeader, None)
        .noting("no caught-up voter to lead"),
        row(
            "a joint configuration is left first",
            remove(4),
            joint(1, &[1, 2, 3, 4], &[1, 2, 3, 5], &[5]),
        )
        .wants(Step::LeaveJoint, Some(I::LeaveJoint)),
        row("gone: done", remove(4), shard(1, &[1, 2, 3], &[]))
            .ends(Step::RemoveOld, Outcome::Done),
        row(
            "remove-old has no timeout",
            remove(4),
            shard(1, &[1, 2, 3, 4], &[]),
        )
        .after(60 * MIN)
        .wants(Step::RemoveOld, Some(I::Remove(4))),
    ]);
}

// ---- transfer-leader ---------------------------------------------------------------------

#[test]
fn transfer_leader_is_done_failed_or_timed_out() {
    let transfer = op(
        OperatorKind::TransferLeader { from: 1, to: 3 },
        Step::TransferLeader,
    );
    check(vec![
        row("1 leads", transfer.clone(), shard(1, &[1, 2, 3], &[]))
            .wants(Step::TransferLeader, Some(I::TransferLeader(3))),
        row("3 leads: done", transfer.clone(), shard(3, &[1, 2, 3], &[]))
            .ends(Step::TransferLeader, Outcome::Done),
        row(
            "3 leads, long overdue: still done",
            transfer.clone(),
            shard(3, &[1, 2, 3], &[]),
        )
        .after(60 * MIN)
        .ends(Step::TransferLeader, Outcome::Done),
        row(
            "2 leads: failed",
            transfer.clone(),
            shard(2, &[1, 2, 3], &[]),
        )
        .ends(Step::TransferLeader, Outcome::Failed)
        .noting("node 1 no longer leads the shard"),
        row(
            "3 is a learner: failed",
            transfer.clone(),
            shard(1, &[1, 2, 4], &[3]),
        )
        .ends(Step::TransferLeader, Outcome::Failed)
        .noting("node 3 holds no voter of the shard"),
        row(
            "3 is gone: failed",
            transfer.clone(),
            shard(1, &[1, 2, 4], &[]),
        )
        .ends(Step::TransferLeader, Outcome::Failed)
        .noting("node 3 holds no voter"),
        row(
            "joint: failed",
            transfer.clone(),
            joint(1, &[1, 2, 3], &[1, 2, 4], &[4]),
        )
        .ends(Step::TransferLeader, Outcome::Failed),
        row(
            "at its timeout",
            transfer.clone(),
            shard(1, &[1, 2, 3], &[]),
        )
        .after(limit(Step::TransferLeader))
        .wants(Step::TransferLeader, Some(I::TransferLeader(3))),
        row(
            "past its timeout",
            transfer.clone(),
            shard(1, &[1, 2, 3], &[]),
        )
        .after(limit(Step::TransferLeader) + 1)
        .ends(Step::TransferLeader, Outcome::Failed)
        .noting("the leader did not move in time"),
    ]);
}

// ---- gaps found while writing these tests ------------------------------------------------

#[test]
fn remove_replica_that_cannot_hand_over_leadership_gives_up() {
    let stuck = op(
        OperatorKind::RemoveReplica { from: 1 },
        Step::TransferLeader,
    );
    let nobody_can_lead = with(
        with(shard(1, &[1, 2, 3, 4], &[]), 2, 0, Progress::Snapshot),
        3,
        0,
        Progress::Snapshot,
    );
    let nobody_can_lead = with(nobody_can_lead, 4, 0, Progress::Snapshot);
    // Nothing irreversible happened yet: past the step's timeout it should end (as a
    // transfer-leader operator does) rather than hold the shard forever.
    check(vec![row(
        "remove-replica at transfer-leader, 1 h",
        stuck,
        nobody_can_lead,
    )
    .after(60 * MIN)
    .ends(Step::TransferLeader, Outcome::Failed)]);
}

#[test]
fn cancel_ends_an_operator_that_changed_no_membership_yet() {
    check(vec![
        row(
            "cancelled transfer-leader, 1 still leads",
            cancelled(op(
                OperatorKind::TransferLeader { from: 1, to: 3 },
                Step::TransferLeader,
            )),
            shard(1, &[1, 2, 3], &[]),
        )
        .ends(Step::TransferLeader, Outcome::RolledBack)
        .noting("cancelled"),
        row(
            "cancelled remove-replica, still handing over leadership",
            cancelled(op(
                OperatorKind::RemoveReplica { from: 1 },
                Step::TransferLeader,
            )),
            shard(1, &[1, 2, 3, 4], &[]),
        )
        .ends(Step::TransferLeader, Outcome::RolledBack)
        .noting("cancelled"),
    ]);
}

#[test]
fn only_the_steps_before_the_point_of_no_return_time_out() {
    for step in [
        Step::AddLearner,
        Step::CatchUp,
        Step::TransferLeader,
        Step::Promote,
        Step::EnterJoint,
    ] {
        assert!(step.timeout_ms().is_some_and(|t| t > 0), "{step:?}");
    }
    for step in [Step::LeaveJoint, Step::RemoveOld, Step::RollBack] {
        assert_eq!(step.timeout_ms(), None, "{step:?}");
    }
}

/// A rollback recorded just before the joint change applied (a cancel or a timeout racing
/// it) goes forward once the new replica votes: removing it would leave the shard a voter
/// short, and a leader is never asked to remove itself.
#[test]
fn a_rollback_recorded_too_late_goes_forward() {
    let rolling = |v: ShardView| {
        let mut o = cancelled(op(MOVE_1_TO_4, Step::RollBack));
        o.note = "cancelled".into();
        row("rollback recorded", o, v)
    };
    check(vec![
        // Before the promotion: the learner goes.
        rolling(shard(2, &[1, 2, 3], &[4])).wants(Step::RollBack, Some(I::Remove(4))),
        // The joint change applied meanwhile: leave it, as a move would.
        rolling(joint(2, &[2, 3, 4], &[1, 2, 3], &[1]))
            .wants(Step::LeaveJoint, Some(I::LeaveJoint)),
        // Joint left: the old replica goes, not the new voter.
        rolling(shard(2, &[2, 3, 4], &[1])).wants(Step::RemoveOld, Some(I::Remove(1))),
        // The new voter leads: still forward, never Remove(4).
        rolling(shard(4, &[2, 3, 4], &[1])).wants(Step::RemoveOld, Some(I::Remove(1))),
        rolling(shard(4, &[2, 3, 4], &[])).ends(Step::RemoveOld, Outcome::Done),
    ]);
}

/// A learner that caught up and then stopped answering is not promoted; it waits (and rolls
/// back on the step's timeout).
#[test]
fn a_learner_not_heard_from_is_not_promoted() {
    let caught_up = shard(2, &[1, 2, 3], &[4]);
    check(vec![
        row(
            "quiet learner",
            op(MOVE_1_TO_4, Step::CatchUp),
            quiet(caught_up.clone(), 4),
        )
        .wants(Step::CatchUp, None)
        .noting("not heard from"),
        row(
            "dead learner",
            op(MOVE_1_TO_4, Step::CatchUp),
            caught_up.clone(),
        )
        .alive(|n| n != 4)
        .wants(Step::CatchUp, None)
        .noting("not heard from"),
        row(
            "quiet add",
            op(ADD_4, Step::CatchUp),
            quiet(caught_up.clone(), 4),
        )
        .wants(Step::CatchUp, None),
        row("heard from", op(MOVE_1_TO_4, Step::CatchUp), caught_up).wants(
            Step::EnterJoint,
            Some(I::EnterJoint {
                promote: 4,
                demote: 1,
            }),
        ),
    ]);
}

/// The heartbeat path sends a rollback only once the log holds it: sent earlier, the next
/// decision would see the learner gone and add it back.
#[test]
fn a_rollback_reaches_the_leader_only_once_recorded() {
    use surge_meta::operator::leader_instruction;
    let view = with(shard(2, &[1, 2, 3], &[4]), 4, 10, Progress::Replicate);
    let ctx = Context {
        now_ms: T0 + limit(Step::CatchUp) + SEC,
        leading_since_ms: 0,
        alive: &all_alive,
    };
    let overdue = op(MOVE_1_TO_4, Step::CatchUp);
    let d = decide(&overdue, &view, &ctx);
    assert_eq!(
        (d.step, d.instruction),
        (Step::RollBack, Some(I::Remove(4)))
    );
    assert_eq!(leader_instruction(&overdue, &d), None, "not recorded yet");
    let recorded = op(MOVE_1_TO_4, Step::RollBack);
    let d = decide(&recorded, &view, &ctx);
    assert_eq!(leader_instruction(&recorded, &d), Some(I::Remove(4)));
    let forward = op(MOVE_1_TO_4, Step::AddLearner);
    let soon = Context {
        now_ms: T0 + SEC,
        leading_since_ms: 0,
        alive: &all_alive,
    };
    let d = decide(&forward, &shard(2, &[1, 2, 3], &[]), &soon);
    assert_eq!(
        leader_instruction(&forward, &d),
        Some(I::AddLearner(4)),
        "forward steps go out at once"
    );
}
