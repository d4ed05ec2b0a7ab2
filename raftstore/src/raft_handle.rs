//! [`RaftHandle`]: the async front door to a [`crate::RaftLoop`], what the servers hold; the
//! messages it queues ([`LoopMsg`]) and how requests fail ([`RequestError`]).
//!
//! Every queue into the loop is bounded; a request that cannot be queued fails at once with
//! [`RequestError::Busy`]. Every waiter has a deadline.

use std::collections::HashMap;
use std::sync::mpsc::TrySendError;
use std::time::Duration;

use protobuf::Message as _;
use raft::eraftpb::{ConfChangeV2, ConfState, Message};
use surge_grpc::ApiError;
use tokio::sync::oneshot;

use crate::engine::{Engine, WriteBatch};
use crate::group_status::{GroupStats, GroupStatus, StatusBoard};
use crate::peer::Peer;
use crate::raft_loop::inbox::{InboxSender, Lane};
use crate::state_machine::StateMachine;

/// Why a request did not get an answer from the state machine.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("not the leader (leader: {leader:?})")]
    NotLeader { leader: Option<u64> },
    #[error("the outcome is unknown: no answer within the request timeout")]
    Timeout,
    #[error("raft dropped the proposal (leadership transfer or a membership change in flight)")]
    Dropped,
    #[error("no raft group {0} on this process")]
    NoGroup(u64),
    #[error("too many requests in flight")]
    Busy,
    #[error("the raft loop has stopped")]
    Stopped,
    /// Refused because of something concurrent that will pass (an epoch that moved on,
    /// another membership change in flight): the same request may succeed when retried.
    #[error("{0}")]
    Conflict(String),
    /// Refused for good: the same request will be refused again (a leader asked to remove
    /// itself, a group that already runs here).
    #[error("{0}")]
    Refused(String),
    /// The loop or its storage failed serving it.
    #[error("{0}")]
    Failed(String),
}

impl RequestError {
    /// True when the same request may succeed later or elsewhere.
    pub fn retryable(&self) -> bool {
        !matches!(self, RequestError::Refused(_) | RequestError::Failed(_))
    }

    /// The refusal a service answers with, the one mapping of every server: `what` names the
    /// group for a person ("shard 3", "the coordinator group"); `address_of` resolves
    /// [`RequestError::NotLeader`]'s leader id to the address a caller should go to.
    pub fn into_api(self, what: &str, address_of: impl FnOnce(u64) -> Option<String>) -> ApiError {
        match self {
            RequestError::NotLeader { leader } => match leader.and_then(address_of) {
                Some(address) => ApiError::not_leader(
                    format!("this process does not lead {what}; the leader is at {address}"),
                    Some(&address),
                ),
                None => ApiError::unavailable(format!(
                    "{what} has no known leader right now; retry shortly"
                )),
            },
            RequestError::Timeout => ApiError::unavailable(format!(
                "{what} gave no outcome within the deadline; the outcome is unknown and a retry is safe"
            )),
            RequestError::Dropped => ApiError::unavailable(format!(
                "{what} dropped the proposal (leadership moved); retry"
            )),
            RequestError::NoGroup(_) => {
                ApiError::unavailable(format!("{what} has no replica on this process; retry"))
            }
            RequestError::Busy => ApiError::overloaded(
                format!("{what} has too many requests in flight; retry"),
                Some(BUSY_RETRY_AFTER),
            ),
            RequestError::Stopped => {
                ApiError::unavailable("this process is stopping; retry elsewhere")
            }
            RequestError::Conflict(m) => ApiError::aborted(format!("{what}: {m}")),
            RequestError::Refused(m) => ApiError::failed_precondition(format!("{what}: {m}")),
            RequestError::Failed(m) => ApiError::internal(format!("{what}: {m}")),
        }
    }
}

/// The pause a caller refused [`RequestError::Busy`] is told to wait: about the time the loop
/// takes to drain a full queue.
pub const BUSY_RETRY_AFTER: Duration = Duration::from_millis(100);

/// Where the loop sends outbound Raft messages.
pub trait MessageSink: Send + Sync + 'static {
    /// Queues `msg` of `group`, sent at membership epoch `epoch`, for delivery; false if it
    /// could not be queued.
    fn send(&self, group: u64, epoch: u64, msg: Message) -> bool;

    /// Tells replica `to` of `group` that it is no member as of `epoch`, or (with
    /// `older_incarnation`) that its id (re)joined at `epoch` after it was created; best
    /// effort.
    fn send_tombstone(&self, _group: u64, _epoch: u64, _to: u64, _older_incarnation: bool) {}

    /// True if the sink reports each snapshot's outcome itself (through
    /// [`RaftHandle::report_snapshot`]) once the transfer ends; otherwise a queued snapshot
    /// counts as delivered.
    fn reports_snapshots(&self) -> bool {
        false
    }
}

pub(crate) type ReadFn<S> = Box<dyn FnOnce(Result<&S, RequestError>) + Send>;
pub(crate) type InspectFn<E, S> = Box<dyn FnOnce(Option<&mut Peer<E, S>>) + Send>;

/// A request to the loop.
pub enum LoopMsg<E: Engine, S: StateMachine> {
    Raft {
        group: u64,
        /// The sender's membership epoch.
        epoch: u64,
        message: Message,
    },
    Propose {
        group: u64,
        data: Vec<u8>,
        reply: oneshot::Sender<Result<S::Output, RequestError>>,
    },
    ConfChange {
        group: u64,
        cc: ConfChangeV2,
        /// Refused unless the group is at this membership epoch.
        epoch: Option<u64>,
        reply: oneshot::Sender<Result<ConfState, RequestError>>,
    },
    Read {
        group: u64,
        read: ReadFn<S>,
    },
    Inspect {
        group: u64,
        inspect: InspectFn<E, S>,
    },
    TransferLeader {
        group: u64,
        to: u64,
    },
    Unreachable {
        group: u64,
        to: u64,
    },
    SnapshotStatus {
        group: u64,
        to: u64,
        delivered: bool,
    },
    /// Every group's configuration and replication.
    Stats {
        reply: oneshot::Sender<Vec<GroupStats>>,
    },
    /// Starts driving a new replica (its storage already holds its initial state).
    Create {
        peer: Box<Peer<E, S>>,
        reply: oneshot::Sender<Result<(), RequestError>>,
    },
    /// Stops driving a replica and deletes every row of it, writing `extra` (e.g. a
    /// tombstone) in the same synced batch.
    Destroy {
        group: u64,
        extra: WriteBatch,
        reply: oneshot::Sender<Result<(), RequestError>>,
    },
    Stop,
}

impl<E: Engine, S: StateMachine> LoopMsg<E, S> {
    /// The inbox lane: what keeps groups alive goes apart from callers' requests, so a full
    /// client lane never delays a heartbeat.
    fn lane(&self) -> Lane {
        match self {
            LoopMsg::Raft { .. }
            | LoopMsg::Unreachable { .. }
            | LoopMsg::SnapshotStatus { .. }
            | LoopMsg::TransferLeader { .. }
            | LoopMsg::Create { .. }
            | LoopMsg::Destroy { .. }
            | LoopMsg::Stop => Lane::Peer,
            LoopMsg::Propose { .. }
            | LoopMsg::ConfChange { .. }
            | LoopMsg::Read { .. }
            | LoopMsg::Inspect { .. }
            | LoopMsg::Stats { .. } => Lane::Client,
        }
    }
}

/// The async side of the loop; cheap to clone.
pub struct RaftHandle<E: Engine, S: StateMachine> {
    pub(crate) tx: InboxSender<LoopMsg<E, S>>,
    pub(crate) timeout: Duration,
    pub(crate) board: StatusBoard,
}

impl<E: Engine, S: StateMachine> Clone for RaftHandle<E, S> {
    fn clone(&self) -> Self {
        RaftHandle {
            tx: self.tx.clone(),
            timeout: self.timeout,
            board: self.board.clone(),
        }
    }
}

impl<E: Engine, S: StateMachine> RaftHandle<E, S> {
    fn enqueue(&self, msg: LoopMsg<E, S>) -> Result<(), RequestError> {
        let lane = msg.lane();
        match self.tx.try_send(lane, msg) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => Err(RequestError::Busy),
            Err(TrySendError::Disconnected(_)) => Err(RequestError::Stopped),
        }
    }

    async fn wait<T>(
        &self,
        rx: oneshot::Receiver<Result<T, RequestError>>,
    ) -> Result<T, RequestError> {
        match tokio::time::timeout(self.timeout + Duration::from_secs(1), rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(RequestError::Stopped),
            Err(_) => Err(RequestError::Timeout),
        }
    }

    /// Proposes a command and waits until it is applied (or definitely not).
    pub async fn propose(&self, group: u64, data: Vec<u8>) -> Result<S::Output, RequestError> {
        let (reply, rx) = oneshot::channel();
        self.enqueue(LoopMsg::Propose { group, data, reply })?;
        self.wait(rx).await
    }

    /// Proposes a membership change and waits until it is applied.
    pub async fn conf_change(
        &self,
        group: u64,
        cc: ConfChangeV2,
    ) -> Result<ConfState, RequestError> {
        self.conf_change_at(group, cc, None).await
    }

    /// [`RaftHandle::conf_change`], refused (`Conflict`) unless the group is at membership
    /// epoch `epoch` when the loop gets to it.
    pub async fn conf_change_at(
        &self,
        group: u64,
        cc: ConfChangeV2,
        epoch: Option<u64>,
    ) -> Result<ConfState, RequestError> {
        let (reply, rx) = oneshot::channel();
        self.enqueue(LoopMsg::ConfChange {
            group,
            cc,
            epoch,
            reply,
        })?;
        self.wait(rx).await
    }

    /// A linearizable read (ReadIndex): `f` runs once the state machine has applied everything
    /// committed before the read began.
    pub async fn read<R, F>(&self, group: u64, f: F) -> Result<R, RequestError>
    where
        R: Send + 'static,
        F: FnOnce(&S) -> R + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let read: ReadFn<S> = Box::new(move |sm| {
            let _ = tx.send(sm.map(f));
        });
        self.enqueue(LoopMsg::Read { group, read })?;
        self.wait(rx).await
    }

    /// Runs `f` on the loop thread against the local peer (no consensus: local, possibly stale).
    pub async fn inspect<R, F>(&self, group: u64, f: F) -> Result<R, RequestError>
    where
        R: Send + 'static,
        F: FnOnce(&mut Peer<E, S>) -> R + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let inspect: InspectFn<E, S> = Box::new(move |peer| {
            let _ = tx.send(peer.map(f).ok_or(RequestError::NoGroup(group)));
        });
        self.enqueue(LoopMsg::Inspect { group, inspect })?;
        self.wait(rx).await
    }

    /// Every group's configuration and, on leaders, replication.
    pub async fn stats(&self) -> Result<Vec<GroupStats>, RequestError> {
        let (reply, rx) = oneshot::channel();
        self.enqueue(LoopMsg::Stats { reply })?;
        match tokio::time::timeout(self.timeout, rx).await {
            Ok(Ok(stats)) => Ok(stats),
            Ok(Err(_)) => Err(RequestError::Stopped),
            Err(_) => Err(RequestError::Timeout),
        }
    }

    /// Hands an inbound message, sent at membership epoch `epoch`, to the loop; false if the
    /// inbox is full (raft will resend).
    pub fn step(&self, group: u64, epoch: u64, message: Message) -> bool {
        self.enqueue(LoopMsg::Raft {
            group,
            epoch,
            message,
        })
        .is_ok()
    }

    /// Asks the leader of `group` to hand leadership to `to`. Ignored unless `to` is a voter
    /// that is nearly caught up and no membership change is pending (TiKV's checks).
    pub fn transfer_leader(&self, group: u64, to: u64) -> Result<(), RequestError> {
        self.enqueue(LoopMsg::TransferLeader { group, to })
    }

    pub fn report_unreachable(&self, group: u64, to: u64) {
        let _ = self.enqueue(LoopMsg::Unreachable { group, to });
    }

    /// A snapshot transfer to `to` ended; raft resumes replication or retries.
    pub fn report_snapshot(&self, group: u64, to: u64, delivered: bool) {
        let _ = self.enqueue(LoopMsg::SnapshotStatus {
            group,
            to,
            delivered,
        });
    }

    /// [`RaftHandle::report_snapshot`], retried while the inbox is full (for up to a minute):
    /// a lost report leaves raft-rs waiting on that follower until the next leader.
    pub async fn report_snapshot_surely(&self, group: u64, to: u64, delivered: bool) {
        for _ in 0..6_000 {
            let msg = LoopMsg::SnapshotStatus {
                group,
                to,
                delivered,
            };
            match self.enqueue(msg) {
                Err(RequestError::Busy) => tokio::time::sleep(Duration::from_millis(10)).await,
                _ => return,
            }
        }
    }

    /// Starts driving `peer`.
    pub async fn create(&self, peer: Peer<E, S>) -> Result<(), RequestError> {
        let (reply, rx) = oneshot::channel();
        self.enqueue(LoopMsg::Create {
            peer: Box::new(peer),
            reply,
        })?;
        self.wait(rx).await
    }

    /// Stops driving `group` and deletes its rows, writing `extra` in the same batch.
    pub async fn destroy(&self, group: u64, extra: WriteBatch) -> Result<(), RequestError> {
        let (reply, rx) = oneshot::channel();
        self.enqueue(LoopMsg::Destroy {
            group,
            extra,
            reply,
        })?;
        self.wait(rx).await
    }

    /// The last published status of `group`, if the loop drives it.
    pub fn status(&self, group: u64) -> Option<GroupStatus> {
        self.board.read().ok()?.get(&group).copied()
    }

    /// The last published status of every group.
    pub fn statuses(&self) -> HashMap<u64, GroupStatus> {
        self.board.read().map(|b| b.clone()).unwrap_or_default()
    }

    /// Asks the loop to stop after the current round.
    pub fn stop(&self) {
        let _ = self.tx.send(Lane::Peer, LoopMsg::Stop);
    }
}

/// Decodes a rust-protobuf encoded raft message from the wire.
pub fn decode_message(bytes: &[u8]) -> Result<Message, protobuf::ProtobufError> {
    Message::parse_from_bytes(bytes)
}
