//! Operators: TiKV-style changes to one shard's replicas or leadership, kept in the
//! coordinator's log so a new coordinator leader carries on with them.
//!
//! A move is: add the new replica as a learner (the shard leader sends it a snapshot) → wait
//! until it has caught up → if the leaving replica leads, hand leadership to another voter →
//! one joint-consensus change that promotes the learner and demotes the leaving voter → leave
//! the joint configuration → remove the demoted replica (its node then deletes its rows and
//! keeps a tombstone). The replica to remove goes only once its replacement is a voter.
//!
//! [`decide`] is pure: from the operator and the shard as its leader last reported it, it
//! says which step the operator is really at, what the leader should do next (repeated until
//! the reported membership shows it done: every step is idempotent, and each instruction names
//! the epoch it was computed at, so a leader at another epoch ignores it), and when the
//! operator is over. Before the new replica is a voter a timeout or a cancel rolls the
//! operator back (the learner is removed); after that it only goes forward.

use serde::{Deserialize, Serialize};

use crate::shard_view::ShardView;

/// What an operator does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OperatorKind {
    /// Replaces the replica on `from` with a new one on `to`.
    MoveReplica {
        from: u64,
        to: u64,
    },
    /// Adds a voter on `to` (the shard has fewer than R).
    AddReplica {
        to: u64,
    },
    /// Removes the replica on `from` (a surplus voter, or a learner nobody needs).
    RemoveReplica {
        from: u64,
    },
    TransferLeader {
        from: u64,
        to: u64,
    },
}

impl OperatorKind {
    pub fn name(self) -> &'static str {
        match self {
            OperatorKind::MoveReplica { .. } => "move-replica",
            OperatorKind::AddReplica { .. } => "add-replica",
            OperatorKind::RemoveReplica { .. } => "remove-replica",
            OperatorKind::TransferLeader { .. } => "transfer-leader",
        }
    }

    /// The node a replica or leadership leaves, if any.
    pub fn from_node(self) -> Option<u64> {
        match self {
            OperatorKind::MoveReplica { from, .. }
            | OperatorKind::RemoveReplica { from }
            | OperatorKind::TransferLeader { from, .. } => Some(from),
            OperatorKind::AddReplica { .. } => None,
        }
    }

    /// The node a replica or leadership goes to, if any.
    pub fn to_node(self) -> Option<u64> {
        match self {
            OperatorKind::MoveReplica { to, .. }
            | OperatorKind::AddReplica { to }
            | OperatorKind::TransferLeader { to, .. } => Some(to),
            OperatorKind::RemoveReplica { .. } => None,
        }
    }

    /// The operator copies a replica (a snapshot goes to `to`).
    pub fn adds_replica(self) -> bool {
        matches!(
            self,
            OperatorKind::MoveReplica { .. } | OperatorKind::AddReplica { .. }
        )
    }
}

/// Why the scheduler made it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reason {
    Balance,
    BalanceLeader,
    Drain,
    Repair,
    DownNode,
    /// Started by an operator (`surgectl operator add`).
    Manual,
}

impl Reason {
    pub fn name(self) -> &'static str {
        match self {
            Reason::Balance => "balance",
            Reason::BalanceLeader => "balance-leader",
            Reason::Drain => "drain",
            Reason::Repair => "repair",
            Reason::DownNode => "down-node",
            Reason::Manual => "manual",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord, Hash)]
pub enum Step {
    AddLearner,
    CatchUp,
    TransferLeader,
    /// A learner becomes a voter on its own (add-replica).
    Promote,
    EnterJoint,
    LeaveJoint,
    RemoveOld,
    /// Removing the learner this operator added; then it is over.
    RollBack,
}

impl Step {
    pub fn name(self) -> &'static str {
        match self {
            Step::AddLearner => "add-learner",
            Step::CatchUp => "catch-up",
            Step::TransferLeader => "transfer-leader",
            Step::Promote => "promote",
            Step::EnterJoint => "enter-joint",
            Step::LeaveJoint => "leave-joint",
            Step::RemoveOld => "remove-old",
            Step::RollBack => "roll-back",
        }
    }

    /// How long the step may take before the operator rolls back (None: it only retries).
    pub fn timeout_ms(self) -> Option<u64> {
        match self {
            Step::AddLearner | Step::Promote | Step::EnterJoint => Some(60_000),
            Step::CatchUp => Some(10 * 60_000),
            Step::TransferLeader => Some(10_000),
            Step::LeaveJoint | Step::RemoveOld | Step::RollBack => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    Done,
    RolledBack,
    Failed,
}

impl Outcome {
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Done => "done",
            Outcome::RolledBack => "rolled-back",
            Outcome::Failed => "failed",
        }
    }
}

/// One operator, as the log keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Operator {
    /// Assigned when the creating command applies.
    pub id: u64,
    pub shard: u32,
    pub kind: OperatorKind,
    pub reason: Reason,
    pub step: Step,
    pub created_at_ms: u64,
    pub step_since_ms: u64,
    /// The shard's epoch when the operator was created.
    pub epoch: u64,
    /// The replica's size when the operator was created.
    pub bytes: u64,
    pub cancel_requested: bool,
    pub outcome: Option<Outcome>,
    pub finished_at_ms: u64,
    pub note: String,
}

impl Operator {
    pub fn new(
        shard: u32,
        kind: OperatorKind,
        reason: Reason,
        epoch: u64,
        bytes: u64,
        at_ms: u64,
    ) -> Operator {
        let step = match kind {
            OperatorKind::TransferLeader { .. } => Step::TransferLeader,
            OperatorKind::RemoveReplica { .. } => Step::RemoveOld,
            _ => Step::AddLearner,
        };
        Operator {
            id: 0,
            shard,
            kind,
            reason,
            step,
            created_at_ms: at_ms,
            step_since_ms: at_ms,
            epoch,
            bytes,
            cancel_requested: false,
            outcome: None,
            finished_at_ms: 0,
            note: String::new(),
        }
    }

    /// The nodes it touches.
    pub fn nodes(&self) -> Vec<u64> {
        self.kind
            .from_node()
            .into_iter()
            .chain(self.kind.to_node())
            .collect()
    }
}

/// What the shard's leader is asked to propose.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Instruction {
    AddLearner(u64),
    /// Learner → voter, a simple change.
    Promote(u64),
    /// Promote one learner and demote one voter in a joint configuration.
    EnterJoint {
        promote: u64,
        demote: u64,
    },
    LeaveJoint,
    Remove(u64),
    TransferLeader(u64),
}

/// What [`decide`] concluded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// The step the operator is at (record it if it differs from the operator's).
    pub step: Step,
    /// What the shard's leader should do now.
    pub instruction: Option<Instruction>,
    /// The operator is over.
    pub finish: Option<(Outcome, String)>,
    /// What it waits for, when there is nothing to instruct.
    pub note: String,
}

impl Decision {
    fn at(step: Step, instruction: Instruction) -> Decision {
        Decision {
            step,
            instruction: Some(instruction),
            finish: None,
            note: String::new(),
        }
    }

    fn waiting(step: Step, note: impl Into<String>) -> Decision {
        Decision {
            step,
            instruction: None,
            finish: None,
            note: note.into(),
        }
    }

    fn over(step: Step, outcome: Outcome, note: impl Into<String>) -> Decision {
        Decision {
            step,
            instruction: None,
            finish: Some((outcome, note.into())),
            note: String::new(),
        }
    }
}

/// A learner may be promoted when it is at most this many entries behind the commit index.
pub const CATCH_UP_SLACK: u64 = 64;

/// What else the decision needs: the clock, when this coordinator started leading (timeouts
/// never count time nobody was watching), and which nodes may take leadership (alive, and
/// not being drained).
pub struct Context<'a> {
    pub now_ms: u64,
    pub leading_since_ms: u64,
    pub alive: &'a (dyn Fn(u64) -> bool + Sync),
}

/// The next step of `op` on shard `view` (see the module docs).
pub fn decide(op: &Operator, view: &ShardView, ctx: &Context<'_>) -> Decision {
    let d = match op.kind {
        OperatorKind::MoveReplica { from, to } => move_replica(op, view, from, to, ctx),
        OperatorKind::AddReplica { to } => add_replica(op, view, to, ctx),
        OperatorKind::RemoveReplica { from } => remove_replica(view, from, ctx),
        OperatorKind::TransferLeader { from, to } => transfer_leader(view, from, to),
    };
    if d.finish.is_some() || d.step == Step::RollBack {
        return d;
    }
    // A cancel, or a step that took too long, rolls back what can be rolled back.
    let reversible = before_no_return(op, view);
    let since = op.step_since_ms.max(ctx.leading_since_ms);
    let overdue = d.step == op.step
        && d.step
            .timeout_ms()
            .is_some_and(|t| ctx.now_ms.saturating_sub(since) > t);
    if (op.cancel_requested || overdue) && reversible {
        let why = if op.cancel_requested {
            "cancelled".to_string()
        } else {
            format!("{} timed out", d.step.name())
        };
        return roll_back(op, view, why);
    }
    // Moving leadership changes no membership: a cancel simply ends it, a timeout fails it.
    let only_leadership = match op.kind {
        OperatorKind::TransferLeader { .. } => true,
        OperatorKind::RemoveReplica { .. } => d.step == Step::TransferLeader,
        _ => false,
    };
    if only_leadership && op.cancel_requested {
        return Decision::over(d.step, Outcome::RolledBack, "cancelled");
    }
    if only_leadership && overdue {
        return Decision::over(d.step, Outcome::Failed, "the leader did not move in time");
    }
    d
}

/// True while undoing the operator only means removing the learner it added.
fn before_no_return(op: &Operator, view: &ShardView) -> bool {
    match op.kind {
        OperatorKind::MoveReplica { to, .. } | OperatorKind::AddReplica { to } => {
            !view.is_voter(to) && !view.outgoing.contains(&to)
        }
        OperatorKind::TransferLeader { .. } => false,
        OperatorKind::RemoveReplica { .. } => false,
    }
}

fn roll_back(op: &Operator, view: &ShardView, why: String) -> Decision {
    let Some(to) = op.kind.to_node() else {
        return Decision::over(op.step, Outcome::Failed, why);
    };
    if !view.is_member(to) {
        return Decision::over(Step::RollBack, Outcome::RolledBack, why);
    }
    if view.leader == to {
        // Never ask a leader to remove itself (raft-rs 0.7 panics committing afterwards).
        return Decision::waiting(Step::RollBack, "the replica to roll back leads");
    }
    Decision {
        step: Step::RollBack,
        instruction: Some(Instruction::Remove(to)),
        finish: None,
        note: why,
    }
}

/// A voter other than `not` that has caught up, alive, preferring the lowest id.
fn transfer_target(view: &ShardView, not: u64, ctx: &Context<'_>) -> Option<u64> {
    view.voters
        .iter()
        .copied()
        .filter(|v| *v != not && *v != view.leader)
        .filter(|v| (ctx.alive)(*v) && view.can_lead(*v, CATCH_UP_SLACK))
        .min()
}

fn move_replica(
    op: &Operator,
    view: &ShardView,
    from: u64,
    to: u64,
    ctx: &Context<'_>,
) -> Decision {
    // A rollback recorded before the promotion applied goes forward instead: past the point
    // of no return, removing the new replica would leave the shard a voter short.
    if op.step == Step::RollBack && before_no_return(op, view) {
        return roll_back(op, view, op.note.clone());
    }
    let to_voter = view.is_voter(to);
    if to_voter && !view.is_member(from) {
        return Decision::over(Step::RemoveOld, Outcome::Done, "");
    }
    if view.is_joint() {
        return Decision::at(Step::LeaveJoint, Instruction::LeaveJoint);
    }
    if to_voter {
        // The replacement votes: the old replica goes (after leadership, if it leads).
        if view.leader == from {
            return match transfer_target(view, from, ctx) {
                Some(t) => Decision::at(Step::RemoveOld, Instruction::TransferLeader(t)),
                None => Decision::waiting(Step::RemoveOld, "no caught-up voter to lead"),
            };
        }
        return Decision::at(Step::RemoveOld, Instruction::Remove(from));
    }
    if !view.is_voter(from) {
        return Decision::over(
            op.step,
            Outcome::Failed,
            format!("node {from} no longer holds a voter of the shard"),
        );
    }
    if !view.is_member(to) {
        return Decision::at(Step::AddLearner, Instruction::AddLearner(to));
    }
    if !view.caught_up(to, CATCH_UP_SLACK) {
        let behind = view.lag(to).map_or("no progress yet".to_string(), |l| {
            format!("{l} entries behind")
        });
        return Decision::waiting(Step::CatchUp, format!("learner on node {to}: {behind}"));
    }
    if !heard_from(view, to, ctx) {
        return Decision::waiting(
            Step::CatchUp,
            format!("learner on node {to}: not heard from lately"),
        );
    }
    if view.leader == from {
        return match transfer_target(view, from, ctx) {
            Some(t) => Decision::at(Step::TransferLeader, Instruction::TransferLeader(t)),
            None => Decision::waiting(Step::TransferLeader, "no caught-up voter to lead"),
        };
    }
    Decision::at(
        Step::EnterJoint,
        Instruction::EnterJoint {
            promote: to,
            demote: from,
        },
    )
}

fn add_replica(op: &Operator, view: &ShardView, to: u64, ctx: &Context<'_>) -> Decision {
    if op.step == Step::RollBack && before_no_return(op, view) {
        return roll_back(op, view, op.note.clone());
    }
    if view.is_voter(to) {
        return Decision::over(Step::Promote, Outcome::Done, "");
    }
    if view.is_joint() {
        return Decision::at(Step::LeaveJoint, Instruction::LeaveJoint);
    }
    if !view.is_member(to) {
        return Decision::at(Step::AddLearner, Instruction::AddLearner(to));
    }
    if !view.caught_up(to, CATCH_UP_SLACK) {
        return Decision::waiting(Step::CatchUp, format!("learner on node {to} catching up"));
    }
    if !heard_from(view, to, ctx) {
        return Decision::waiting(
            Step::CatchUp,
            format!("learner on node {to}: not heard from lately"),
        );
    }
    Decision::at(Step::Promote, Instruction::Promote(to))
}

/// The node is alive and the leader heard from its replica lately: a learner that caught up
/// and then died is not promoted.
fn heard_from(view: &ShardView, id: u64, ctx: &Context<'_>) -> bool {
    (ctx.alive)(id) && view.followers.get(&id).is_some_and(|f| f.active)
}

/// What the shard's leader may be sent now. A rollback goes out only once the log holds it:
/// sent earlier, the next decision would see the learner gone and add it back, and the
/// rollback would turn into a retry for ever.
pub fn leader_instruction(op: &Operator, d: &Decision) -> Option<Instruction> {
    if d.finish.is_some() || (d.step == Step::RollBack && op.step != Step::RollBack) {
        return None;
    }
    d.instruction
}

fn remove_replica(view: &ShardView, from: u64, ctx: &Context<'_>) -> Decision {
    if !view.is_member(from) {
        return Decision::over(Step::RemoveOld, Outcome::Done, "");
    }
    if view.is_joint() {
        return Decision::at(Step::LeaveJoint, Instruction::LeaveJoint);
    }
    if view.leader == from {
        return match transfer_target(view, from, ctx) {
            Some(t) => Decision::at(Step::TransferLeader, Instruction::TransferLeader(t)),
            None => Decision::waiting(Step::TransferLeader, "no caught-up voter to lead"),
        };
    }
    Decision::at(Step::RemoveOld, Instruction::Remove(from))
}

fn transfer_leader(view: &ShardView, from: u64, to: u64) -> Decision {
    if view.leader == to {
        return Decision::over(Step::TransferLeader, Outcome::Done, "");
    }
    if view.is_joint() {
        return Decision::over(
            Step::TransferLeader,
            Outcome::Failed,
            "the shard is changing its membership",
        );
    }
    if !view.is_voter(to) {
        return Decision::over(
            Step::TransferLeader,
            Outcome::Failed,
            format!("node {to} holds no voter of the shard"),
        );
    }
    if view.leader != from {
        return Decision::over(
            Step::TransferLeader,
            Outcome::Failed,
            format!("node {from} no longer leads the shard"),
        );
    }
    Decision::at(Step::TransferLeader, Instruction::TransferLeader(to))
}
