//! Requests the loop is waiting on: proposals until their entry applies, reads until their
//! read index is applied.

use std::time::Instant;

use raft::eraftpb::ConfState;
use tokio::sync::oneshot;

use crate::metrics::RaftMetrics;
use crate::raft_handle::{ReadFn, RequestError};

pub(crate) enum Waiter<O> {
    Command(oneshot::Sender<Result<O, RequestError>>),
    ConfChange(oneshot::Sender<Result<ConfState, RequestError>>),
}

/// A proposal raft-rs accepted.
pub(crate) struct Pending<O> {
    pub(crate) group: u64,
    /// Where raft-rs put the proposal: it succeeded only if the entry applied at this index
    /// has this term and carries our context.
    pub(crate) index: u64,
    pub(crate) term: u64,
    pub(crate) deadline: Instant,
    pub(crate) started: Instant,
    pub(crate) waiter: Waiter<O>,
}

impl<O> Pending<O> {
    pub(crate) fn fail(self, err: RequestError) {
        let outcome = match &err {
            RequestError::NotLeader { .. } => "not_leader",
            RequestError::Timeout => "timeout",
            _ => "dropped",
        };
        RaftMetrics::get()
            .proposals
            .with_label_values(&[&self.group.to_string(), outcome])
            .inc();
        match self.waiter {
            Waiter::Command(tx) => drop(tx.send(Err(err))),
            Waiter::ConfChange(tx) => drop(tx.send(Err(err))),
        }
    }
}

/// A linearizable read waiting for its read index, then for that index to be applied.
pub(crate) struct PendingRead<S> {
    pub(crate) group: u64,
    pub(crate) deadline: Instant,
    pub(crate) issued: bool,
    pub(crate) index: Option<u64>,
    pub(crate) read: ReadFn<S>,
}
