//! The state-machine contract every replicated group implements, in terms of this crate's
//! batches and with no Raft types: the Raft library translates its entries into these calls.

use crate::engine::{EngineError, WriteBatch};

/// One change inside a membership change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemberChange {
    AddVoter(u64),
    AddLearner(u64),
    Remove(u64),
}

/// A membership change as it was applied: its changes and what the proposer attached.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Membership {
    pub changes: Vec<MemberChange>,
    pub context: Vec<u8>,
}

/// A deterministic state machine fed committed entries in log order.
///
/// Sans-IO: no clock, no RNG, no network. Time arrives inside the command, stamped by the
/// proposing leader. Durable effects go into `batch`, which the peer writes together with the
/// applied index, so the data on disk and the applied index never disagree.
pub trait StateMachine: Send + 'static {
    /// What a proposer learns when its command has been applied.
    type Output: Send + 'static;

    /// Applies one committed command.
    fn apply(&mut self, index: u64, data: &[u8], batch: &mut WriteBatch) -> Self::Output;

    /// A membership change was applied at `index`.
    fn on_conf_change(&mut self, _index: u64, _change: &Membership, _batch: &mut WriteBatch) {}

    /// The batch of the entries applied since the last call has been written: state kept to
    /// see those not-yet-written rows (e.g. a dedup overlay) can be dropped.
    fn on_batch_written(&mut self) {}

    /// Rebuilds in-memory state from the engine after a snapshot replaced the group's rows.
    fn reload(&mut self) -> Result<(), EngineError>;
}
