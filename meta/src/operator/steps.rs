//! [`decide`]: which step an operator is really at, from the shard as its leader last reported
//! it, and what the leader should do next; with the rollback before the point of no return and
//! the per-kind moves (move, add, remove a replica; transfer leadership).

use super::*;

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
