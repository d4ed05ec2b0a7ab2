//! What applying a shard command answers: per submitted order, per action, and the views of a
//! stored record that the API returns.

use surge_proto::v1::{Acceptance, OrderRecord, OrderView, OutboxJob};

/// What applying one submitted order produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ItemOutcome {
    /// Stored now, or (with `duplicate`) earlier with the same payload.
    Accepted(Acceptance),
    /// The external id is taken by another payload.
    Conflict { existing_order_id: String },
}

/// What one applied command answers.
#[derive(Clone, Debug, PartialEq)]
pub enum Applied {
    Submitted(Vec<ItemOutcome>),
    Actions(Vec<ActionOutcome>),
    /// Whether the block was new (false: this lease sequence number was already added).
    BlockAdded(bool),
    /// Whether events were trimmed (false: already trimmed that far).
    Trimmed(bool),
}

/// A watch position older than the events retention kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Trimmed {
    /// The oldest position a watch can resume from.
    pub below: (u64, u32),
}

/// The output of one applied command.
pub type ShardOutput = Result<Applied, String>;

/// Why an action was refused; the API maps it to a gRPC code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefuseCode {
    NotFound,
    FailedPrecondition,
    InvalidArgument,
}

/// The answer to one action.
#[derive(Clone, Debug, PartialEq)]
pub enum ActionOutcome {
    Done(Box<Done>),
    /// A cancel of a shipped order: definitive, nothing changed.
    TooLate(Box<OrderRecord>),
    Refused {
        code: RefuseCode,
        message: String,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct Done {
    pub record: OrderRecord,
    /// False when the action had already happened: nothing changed.
    pub changed: bool,
    /// The job this action created, leased or finished.
    pub job: Option<OutboxJob>,
}

/// The acceptance a stored record answers with.
pub fn acceptance_of(rec: &OrderRecord) -> Acceptance {
    Acceptance {
        order_id: rec.order_id.clone(),
        shard: rec.shard,
        status: rec.status,
        accepted_at_ms: rec.accepted_at_ms,
        duplicate: false,
    }
}

pub fn view_of(rec: OrderRecord) -> OrderView {
    OrderView {
        order_id: rec.order_id,
        shard: rec.shard,
        status: rec.status,
        accepted_at_ms: rec.accepted_at_ms,
        order: rec.order,
        history: rec.history,
        holds: rec.holds,
        intercepted: rec.intercepted,
        carrier: rec.carrier,
        carrier_rule: rec.carrier_rule,
        waybill: rec.waybill,
        waybill_voided: rec.waybill_voided,
        reprints: rec.reprints,
        carrier_routing: rec.carrier_routing,
    }
}
