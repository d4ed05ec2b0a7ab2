//! The peer transport's receiving side: [`RaftTransportService`] checks each batch's cluster
//! and destination, decodes the messages and hands them — with their sender's membership
//! epoch — to the process, and reassembles chunked snapshots. Tombstone notices (a peer
//! telling a replica here that it was removed) go to the process as [`Inbound::Tombstone`].

use prost::Message as _;
use raft::eraftpb::Message;
use surge_grpc::tls::Caller;
use surge_grpc::v1::raft_transport_server::RaftTransport;
use surge_grpc::v1::{RaftBatch, RaftDone, SnapshotChunk};
use surge_grpc::ApiError;
use tokio_stream::StreamExt;
use tonic::{Request, Response, Status, Streaming};
use tracing::{debug, warn};

use crate::metrics::RaftMetrics;
use crate::raft_handle::decode_message;
use crate::snapshot_staging::SnapshotStaging;
use crate::wire::{
    read_cluster_id, InFlight, SharedClusterId, MAX_RAFT_BATCH_BYTES, MAX_SNAPSHOT_BYTES,
};

/// What arrived from a peer.
#[derive(Debug)]
pub enum Inbound {
    /// A Raft message, sent at membership epoch `epoch`.
    Message {
        group: u64,
        epoch: u64,
        message: Message,
    },
    /// Peer `from` says this process's replica of `group` is no member as of `epoch`, or
    /// (`older_incarnation`) that it was created before its id (re)joined at `epoch`.
    Tombstone {
        group: u64,
        epoch: u64,
        from: u64,
        older_incarnation: bool,
    },
}

/// Called for everything that arrives; false if it was dropped (the loop is full).
pub type InboundFn = std::sync::Arc<dyn Fn(Inbound) -> bool + Send + Sync>;

/// Whether the connection's caller may speak as store `from_store` (its certificate's
/// identity is bound to that store).
pub type SenderCheck = std::sync::Arc<dyn Fn(&Caller, u64) -> bool + Send + Sync>;

/// Snapshots received at once; more are refused (the sender's raft retries later), so
/// whole snapshots buffered in memory stay bounded.
const RECEIVING_AT_ONCE: usize = 4;

/// How long a snapshot stream may go without a chunk, and how long it may take in all (the
/// sender gives up after `transport::SNAPSHOT_TIMEOUT`, 300 s); past either it is dropped, so
/// a sender that stalls cannot hold one of the receiving permits (and its buffer) for ever.
pub const SNAPSHOT_CHUNK_IDLE: std::time::Duration = std::time::Duration::from_secs(30);
pub const SNAPSHOT_RECEIVE_LIMIT: std::time::Duration = std::time::Duration::from_secs(330);

/// The receiving side of the peer transport.
pub struct RaftTransportService {
    self_store: u64,
    cluster_id: SharedClusterId,
    inbound: InboundFn,
    receiving: std::sync::Arc<tokio::sync::Semaphore>,
    /// Writes received snapshots' rows aside before they reach the raft loop; None: the rows
    /// travel in the message and the loop writes them.
    staging: Option<std::sync::Arc<dyn SnapshotStaging>>,
    /// None: any sender (a test of the library itself).
    senders: Option<SenderCheck>,
    /// [`SNAPSHOT_CHUNK_IDLE`] and [`SNAPSHOT_RECEIVE_LIMIT`], unless a test sets them.
    snapshot_deadlines: (std::time::Duration, std::time::Duration),
}

impl RaftTransportService {
    pub fn new(
        self_store: u64,
        cluster_id: SharedClusterId,
        inbound: InboundFn,
    ) -> RaftTransportService {
        RaftTransportService {
            self_store,
            cluster_id,
            inbound,
            receiving: std::sync::Arc::new(tokio::sync::Semaphore::new(RECEIVING_AT_ONCE)),
            staging: None,
            senders: None,
            snapshot_deadlines: (SNAPSHOT_CHUNK_IDLE, SNAPSHOT_RECEIVE_LIMIT),
        }
    }

    /// Drops a snapshot stream that goes `idle` without a chunk, or runs longer than `whole`.
    pub fn with_snapshot_deadlines(
        mut self,
        idle: std::time::Duration,
        whole: std::time::Duration,
    ) -> RaftTransportService {
        self.snapshot_deadlines = (idle, whole);
        self
    }

    /// Refuses batches and snapshots whose `from_store` the connection's certificate does not
    /// speak for, and messages inside a batch whose sender is not that store.
    pub fn with_sender_check(mut self, check: SenderCheck) -> RaftTransportService {
        self.senders = Some(check);
        self
    }

    /// Refused, counted and logged (rarely: a forger retries fast) when `caller` may not send
    /// as `from_store`.
    fn check_sender(&self, caller: &Caller, from_store: u64) -> Result<(), Status> {
        match &self.senders {
            Some(check) if !check(caller, from_store) => {
                RaftMetrics::get()
                    .refused
                    .with_label_values(&["wrong_sender"])
                    .inc();
                Err(ApiError::permission_denied(format!(
                    "from_store: {} may not send as store {from_store}",
                    caller.describe()
                ))
                .into())
            }
            _ => Ok(()),
        }
    }

    /// Stages every received snapshot's rows through `staging`, off the raft loop.
    pub fn with_staging(
        mut self,
        staging: std::sync::Arc<dyn SnapshotStaging>,
    ) -> RaftTransportService {
        self.staging = Some(staging);
        self
    }

    /// The tonic server, with the decoding limit raised for batches.
    pub fn into_server(self) -> surge_grpc::v1::raft_transport_server::RaftTransportServer<Self> {
        surge_grpc::v1::raft_transport_server::RaftTransportServer::new(self)
            .max_decoding_message_size(MAX_RAFT_BATCH_BYTES)
    }

    fn check(&self, cluster_id: &str, from_store: u64, to_store: u64) -> Result<(), Status> {
        let ours = read_cluster_id(&self.cluster_id);
        if !ours.is_empty() && !cluster_id.is_empty() && ours != cluster_id {
            return Err(ApiError::failed_precondition(format!(
                "cluster_id: peer {from_store} belongs to cluster {cluster_id}, this process to cluster {ours}"
            )).into());
        }
        if to_store != self.self_store {
            return Err(ApiError::failed_precondition(format!(
                "to_store: message addressed to {to_store} reached {}",
                self.self_store
            ))
            .into());
        }
        Ok(())
    }
}

#[tonic::async_trait]
impl RaftTransport for RaftTransportService {
    async fn raft(
        &self,
        request: Request<Streaming<RaftBatch>>,
    ) -> Result<Response<RaftDone>, Status> {
        let caller = Caller::of(&request);
        let mut stream = request.into_inner();
        let mut allowed = None;
        while let Some(batch) = stream.next().await {
            let batch = batch?;
            // One stream speaks for one store; the check runs again if it changes.
            if allowed != Some(batch.from_store) {
                if let Err(status) = self.check_sender(&caller, batch.from_store) {
                    warn!(from = batch.from_store, caller = %caller.describe(), "raft batch refused: wrong sender");
                    return Err(status);
                }
                allowed = Some(batch.from_store);
            }
            if let Err(status) = self.check(&batch.cluster_id, batch.from_store, batch.to_store) {
                warn!(
                    from = batch.from_store,
                    reason = status.message(),
                    "raft batch refused"
                );
                return Err(status);
            }
            for env in batch.messages {
                if env.from_peer != batch.from_store {
                    RaftMetrics::get()
                        .refused
                        .with_label_values(&["wrong_sender"])
                        .inc();
                    continue;
                }
                if env.tombstone {
                    (self.inbound)(Inbound::Tombstone {
                        group: env.group_id,
                        epoch: env.epoch,
                        from: env.from_peer,
                        older_incarnation: env.older_incarnation,
                    });
                    continue;
                }
                match decode_message(&env.message) {
                    Ok(message) if message.from != batch.from_store => {
                        RaftMetrics::get()
                            .refused
                            .with_label_values(&["wrong_sender"])
                            .inc();
                    }
                    Ok(message) => {
                        (self.inbound)(Inbound::Message {
                            group: env.group_id,
                            epoch: env.epoch,
                            message,
                        });
                    }
                    Err(e) => {
                        warn!(from = batch.from_store, group = env.group_id, error = %e, "undecodable raft message dropped")
                    }
                }
            }
        }
        Ok(Response::new(RaftDone {}))
    }

    async fn snapshot(
        &self,
        request: Request<Streaming<SnapshotChunk>>,
    ) -> Result<Response<RaftDone>, Status> {
        let caller = Caller::of(&request);
        let mut stream = request.into_inner();
        let Some(first) = stream.next().await else {
            return Err(ApiError::invalid_argument("snapshot", "empty stream").into());
        };
        let first = first?;
        self.check_sender(&caller, first.from_store)?;
        self.check(&first.cluster_id, first.from_store, first.to_store)?;
        let Ok(_permit) = self.receiving.clone().try_acquire_owned() else {
            return Err(ApiError::overloaded(
                format!(
                    "snapshot: {RECEIVING_AT_ONCE} snapshots are being received here; resend later"
                ),
                None,
            )
            .into());
        };
        let _flow = InFlight::start("receiving");
        let group = first.group_id;
        let epoch = first.epoch;
        let mut msg = decode_message(&first.message)
            .map_err(|e| ApiError::invalid_argument("message", format!("undecodable: {e}")))?;
        if msg.from != first.from_store {
            RaftMetrics::get()
                .refused
                .with_label_values(&["wrong_sender"])
                .inc();
            return Err(ApiError::permission_denied(format!(
                "message: sent by {}, yet the stream is from store {}",
                msg.from, first.from_store
            ))
            .into());
        }
        if msg.get_msg_type() != raft::eraftpb::MessageType::MsgSnapshot {
            return Err(ApiError::invalid_argument("message", "not a MsgSnapshot").into());
        }
        let mut data = first.data;
        let mut last = first.last;
        let (idle, whole) = self.snapshot_deadlines;
        let give_up = tokio::time::Instant::now() + whole;
        while !last {
            let wait = tokio::time::Instant::now() + idle;
            let next = tokio::time::timeout_at(wait.min(give_up), stream.next()).await;
            let Ok(next) = next else {
                RaftMetrics::get()
                    .refused
                    .with_label_values(&["snapshot_stalled"])
                    .inc();
                return Err(ApiError::aborted(format!(
                    "snapshot: no chunk for {idle:?}, or longer than {whole:?} in all; dropped"
                ))
                .into());
            };
            let Some(chunk) = next else {
                return Err(
                    ApiError::aborted("snapshot: stream ended before the last chunk").into(),
                );
            };
            let chunk = chunk?;
            if chunk.group_id != group {
                return Err(
                    ApiError::invalid_argument("group_id", "changed within a snapshot").into(),
                );
            }
            if data.len() + chunk.data.len() > MAX_SNAPSHOT_BYTES {
                return Err(ApiError::overloaded(
                    format!("snapshot: larger than {MAX_SNAPSHOT_BYTES} bytes"),
                    None,
                )
                .into());
            }
            data.extend_from_slice(&chunk.data);
            last = chunk.last;
        }
        debug!(group, bytes = data.len(), "snapshot received");
        RaftMetrics::get()
            .snapshot_bytes
            .with_label_values(&["received"])
            .inc_by(data.len() as u64);
        let decoded = surge_grpc::v1::SnapshotData::decode(data.as_slice())
            .map_err(|e| ApiError::invalid_argument("snapshot", format!("undecodable: {e}")))?;
        if !decoded.staged_files.is_empty() {
            return Err(ApiError::invalid_argument(
                "staged_files",
                "only the receiving process sets them",
            )
            .into());
        }
        let staged = match &self.staging {
            Some(staging) => {
                let staging = staging.clone();
                let started = std::time::Instant::now();
                let staged = tokio::task::spawn_blocking(move || staging.stage(group, decoded))
                    .await
                    .map_err(|e| ApiError::internal(format!("snapshot staging: {e}")))?
                    .map_err(|e| {
                        warn!(group, error = %e, "snapshot not staged");
                        ApiError::unavailable(format!("snapshot: could not be staged: {e}"))
                    })?;
                debug!(
                    group,
                    files = staged.staged_files.len(),
                    ms = started.elapsed().as_millis() as u64,
                    "snapshot staged"
                );
                msg.mut_snapshot().set_data(staged.encode_to_vec().into());
                Some(staged)
            }
            None => {
                msg.mut_snapshot().set_data(data.into());
                None
            }
        };
        let inbound = Inbound::Message {
            group,
            epoch,
            message: msg,
        };
        if (self.inbound)(inbound) {
            Ok(Response::new(RaftDone {}))
        } else {
            if let (Some(staging), Some(staged)) = (&self.staging, &staged) {
                staging.discard(staged);
            }
            Err(ApiError::overloaded(
                "the raft loop is busy; resend the snapshot",
                Some(crate::raft_handle::BUSY_RETRY_AFTER),
            )
            .into())
        }
    }
}
