//! Operators: TiKV-style changes to one shard's replicas or leadership, kept in the
//! coordinator's log so a new coordinator leader carries on with them.
//!
//! A move is: add the new replica as a learner (the shard leader sends it a snapshot) → wait
//! until it has caught up → if the leaving replica leads, hand leadership to another voter →
//! one joint-consensus change that promotes the learner and demotes the leaving voter → leave
//! the joint configuration → remove the demoted replica (its node then deletes its rows and
//! keeps a tombstone). The replica to remove goes only once its replacement is a voter.
//!
//! [`decide`] (in `operator/steps.rs`) is pure: from the operator and the shard as its leader last reported it, it
//! says which step the operator is really at, what the leader should do next (repeated until
//! the reported membership shows it done: every step is idempotent, and each instruction names
//! the epoch it was computed at, so a leader at another epoch ignores it), and when the
//! operator is over. Before the new replica is a voter a timeout or a cancel rolls the
//! operator back (the learner is removed); after that it only goes forward.

use serde::{Deserialize, Serialize};

use crate::shard_view::ShardView;

mod steps;

pub use steps::{decide, leader_instruction, Context, CATCH_UP_SLACK};

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
