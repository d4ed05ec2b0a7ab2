//! The peer transport: one long-lived gRPC client stream per destination process, carrying
//! batches of Raft messages as opaque rust-protobuf bytes (raft-rs speaks protobuf 2, tonic
//! speaks prost), a separate chunked stream per snapshot, and the server side that hands
//! inbound messages to the local loop.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;

use protobuf::Message as _;
use raft::eraftpb::Message;
use surge_proto::v1::raft_transport_client::RaftTransportClient;
use surge_proto::v1::raft_transport_server::RaftTransport;
use surge_proto::v1::{RaftBatch, RaftDone, RaftEnvelope, SnapshotChunk};
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tonic::{Request, Response, Status, Streaming};
use tracing::{debug, warn};

use crate::config::RaftConfig;
use crate::engine::Engine;
use crate::peer::{Peer, PeerError};
use crate::raft_loop::{decode_message, MessageSink, RaftHandle, RaftLoop};
use crate::state_machine::StateMachine;

/// Messages queued per destination before new ones are dropped (raft resends).
const QUEUE_PER_PEER: usize = 8192;
/// A batch is flushed at this many messages or bytes.
const BATCH_MESSAGES: usize = 256;
const BATCH_BYTES: usize = 1 << 20;
/// Largest batch a receiver accepts.
pub const MAX_RAFT_BATCH_BYTES: usize = 64 << 20;
/// Snapshot data travels in chunks of this size on its own stream.
pub const SNAPSHOT_CHUNK_BYTES: usize = 1 << 20;
/// Largest snapshot a receiver accepts.
pub const MAX_SNAPSHOT_BYTES: usize = 4 << 30;
/// Snapshots being sent at once by one process; more wait their turn.
const SNAPSHOTS_IN_FLIGHT: usize = 2;
/// A snapshot transfer that takes longer than this fails (raft retries it).
const SNAPSHOT_TIMEOUT: Duration = Duration::from_secs(300);

/// The cluster id this process belongs to; empty until known.
pub type SharedClusterId = Arc<RwLock<String>>;

/// Maps `(group, peer)` to the destination process id and its gRPC address.
pub type Resolver = Arc<dyn Fn(u64, u64) -> Option<(u64, String)> + Send + Sync>;

/// Called for every message that could not be delivered: `(group, to_peer)`.
pub type UnreachableFn = Arc<dyn Fn(u64, u64) + Send + Sync>;

/// Called for every inbound message: `(group, message)`; false if it was dropped.
pub type InboundFn = Arc<dyn Fn(u64, Message) -> bool + Send + Sync>;

/// Called when a snapshot transfer ends: `(group, to_peer, delivered)`.
pub type SnapshotDoneFn = Arc<dyn Fn(u64, u64, bool) + Send + Sync>;

fn read_cluster_id(id: &SharedClusterId) -> String {
    id.read().map(|s| s.clone()).unwrap_or_default()
}

/// The sending side: implements [`MessageSink`] for the Raft loop.
#[derive(Clone)]
pub struct GrpcTransport {
    inner: Arc<Inner>,
}

struct Inner {
    self_store: u64,
    cluster_id: SharedClusterId,
    resolver: Resolver,
    unreachable: UnreachableFn,
    snapshot_done: SnapshotDoneFn,
    snapshots: Arc<tokio::sync::Semaphore>,
    senders: Mutex<HashMap<u64, mpsc::Sender<RaftEnvelope>>>,
    runtime: tokio::runtime::Handle,
}

impl GrpcTransport {
    pub fn new(
        self_store: u64,
        cluster_id: SharedClusterId,
        resolver: Resolver,
        unreachable: UnreachableFn,
        snapshot_done: SnapshotDoneFn,
        runtime: tokio::runtime::Handle,
    ) -> GrpcTransport {
        GrpcTransport {
            inner: Arc::new(Inner {
                self_store,
                cluster_id,
                resolver,
                unreachable,
                snapshot_done,
                snapshots: Arc::new(tokio::sync::Semaphore::new(SNAPSHOTS_IN_FLIGHT)),
                senders: Mutex::new(HashMap::new()),
                runtime,
            }),
        }
    }

    fn sender(&self, store: u64) -> mpsc::Sender<RaftEnvelope> {
        let mut senders = self.inner.senders.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = senders.get(&store) {
            if !tx.is_closed() {
                return tx.clone();
            }
        }
        let (tx, rx) = mpsc::channel(QUEUE_PER_PEER);
        senders.insert(store, tx.clone());
        let inner = self.inner.clone();
        self.inner
            .runtime
            .spawn(async move { stream_to(inner, store, rx).await });
        tx
    }
}

impl MessageSink for GrpcTransport {
    fn send(&self, group: u64, msg: Message) -> bool {
        let Some((store, address)) = (self.inner.resolver)(group, msg.to) else {
            return false;
        };
        if msg.get_msg_type() == raft::eraftpb::MessageType::MsgSnapshot {
            let inner = self.inner.clone();
            self.inner.runtime.spawn(async move {
                let to = msg.to;
                let result = tokio::time::timeout(
                    SNAPSHOT_TIMEOUT,
                    send_snapshot(&inner, group, store, &address, msg),
                )
                .await
                .unwrap_or_else(|_| Err("timed out".to_string()));
                if let Err(e) = &result {
                    warn!(group, to, store, error = %e, "snapshot not delivered");
                }
                (inner.snapshot_done)(group, to, result.is_ok());
            });
            return true;
        }
        let Ok(bytes) = msg.write_to_bytes() else {
            return false;
        };
        let envelope = RaftEnvelope {
            group_id: group,
            epoch: 0,
            from_peer: msg.from,
            to_peer: msg.to,
            message: bytes,
        };
        self.sender(store).try_send(envelope).is_ok()
    }

    fn reports_snapshots(&self) -> bool {
        true
    }
}

/// Starts a Raft loop over `peers` on its own thread, sending through a [`GrpcTransport`]
/// whose unreachable-peer and snapshot reports go back to that loop.
pub fn start_loop<E: Engine, S: StateMachine>(
    self_store: u64,
    cluster_id: SharedClusterId,
    resolver: Resolver,
    peers: Vec<Peer<E, S>>,
    config: RaftConfig,
) -> (
    RaftHandle<E, S>,
    std::thread::JoinHandle<Result<(), PeerError>>,
) {
    let cell: Arc<OnceLock<RaftHandle<E, S>>> = Arc::new(OnceLock::new());
    let (unreachable, snapshot) = (cell.clone(), cell.clone());
    let transport = GrpcTransport::new(
        self_store,
        cluster_id,
        resolver,
        Arc::new(move |group, peer| {
            if let Some(h) = unreachable.get() {
                h.report_unreachable(group, peer);
            }
        }),
        Arc::new(move |group, peer, delivered| {
            if let Some(h) = snapshot.get() {
                h.report_snapshot(group, peer, delivered);
            }
        }),
        tokio::runtime::Handle::current(),
    );
    let (raft_loop, handle) = RaftLoop::new(peers, Arc::new(transport), config);
    let _ = cell.set(handle.clone());
    (handle, crate::raft_loop::spawn(raft_loop))
}

/// Streams one snapshot to `store` in chunks.
async fn send_snapshot(
    inner: &Inner,
    group: u64,
    store: u64,
    address: &str,
    mut msg: Message,
) -> Result<(), String> {
    let _permit = inner.snapshots.acquire().await.map_err(|e| e.to_string())?;
    let data = msg.mut_snapshot().take_data();
    let head = msg.write_to_bytes().map_err(|e| e.to_string())?;
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{address}"))
        .map_err(|e| e.to_string())?
        .connect_timeout(Duration::from_secs(1))
        .connect()
        .await
        .map_err(|e| e.to_string())?;
    let cluster_id = read_cluster_id(&inner.cluster_id);
    let from_store = inner.self_store;
    let total = data.len();
    let mut chunks = Vec::with_capacity(total / SNAPSHOT_CHUNK_BYTES + 1);
    let mut offset = 0;
    loop {
        let end = (offset + SNAPSHOT_CHUNK_BYTES).min(total);
        chunks.push(SnapshotChunk {
            cluster_id: cluster_id.clone(),
            from_store,
            to_store: store,
            group_id: group,
            message: if offset == 0 {
                head.clone()
            } else {
                Vec::new()
            },
            data: data[offset..end].to_vec(),
            last: end == total,
        });
        if end == total {
            break;
        }
        offset = end;
    }
    debug!(
        group,
        store,
        bytes = total,
        chunks = chunks.len(),
        "sending a snapshot"
    );
    RaftTransportClient::new(channel)
        .snapshot(tokio_stream::iter(chunks))
        .await
        .map(|_| ())
        .map_err(|s| format!("{:?}: {}", s.code(), s.message()))
}

/// Keeps one client stream open to `store`, reconnecting with a bounded backoff.
async fn stream_to(inner: Arc<Inner>, store: u64, mut rx: mpsc::Receiver<RaftEnvelope>) {
    let mut backoff = Duration::from_millis(50);
    loop {
        let Some(first) = rx.recv().await else { return };
        let Some((_, addr)) = (inner.resolver)(first.group_id, first.to_peer) else {
            (inner.unreachable)(first.group_id, first.to_peer);
            continue;
        };
        let endpoint = match tonic::transport::Endpoint::from_shared(format!("http://{addr}")) {
            // Keepalives notice a black-holed peer in seconds, not at the kernel's TCP timeout.
            Ok(e) => e
                .connect_timeout(Duration::from_secs(1))
                .tcp_nodelay(true)
                .http2_keep_alive_interval(Duration::from_secs(1))
                .keep_alive_timeout(Duration::from_secs(2))
                .keep_alive_while_idle(true),
            Err(e) => {
                warn!(store, %addr, error = %e, "bad peer address");
                (inner.unreachable)(first.group_id, first.to_peer);
                tokio::time::sleep(backoff).await;
                continue;
            }
        };
        let channel = match endpoint.connect().await {
            Ok(c) => c,
            Err(e) => {
                debug!(store, %addr, error = %e, "peer unreachable");
                (inner.unreachable)(first.group_id, first.to_peer);
                drain_unreachable(&inner, &mut rx);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        backoff = Duration::from_millis(50);
        let mut client =
            RaftTransportClient::new(channel).max_encoding_message_size(MAX_RAFT_BATCH_BYTES);
        let (batch_tx, batch_rx) = mpsc::channel::<RaftBatch>(16);
        let call = tokio::spawn(async move {
            client
                .raft(tokio_stream::wrappers::ReceiverStream::new(batch_rx))
                .await
        });
        let mut next = Some(first);
        loop {
            let head = match next.take() {
                Some(env) => env,
                None => match rx.recv().await {
                    Some(env) => env,
                    None => return,
                },
            };
            let mut size = head.message.len();
            let mut messages = vec![head];
            while messages.len() < BATCH_MESSAGES && size < BATCH_BYTES {
                match rx.try_recv() {
                    Ok(env) => {
                        size += env.message.len();
                        messages.push(env);
                    }
                    Err(_) => break,
                }
            }
            let batch = RaftBatch {
                cluster_id: read_cluster_id(&inner.cluster_id),
                from_store: inner.self_store,
                to_store: store,
                messages,
            };
            if call.is_finished() {
                for env in &batch.messages {
                    (inner.unreachable)(env.group_id, env.to_peer);
                }
                break;
            }
            if let Err(failed) = batch_tx.send(batch).await {
                for env in &failed.0.messages {
                    (inner.unreachable)(env.group_id, env.to_peer);
                }
                break;
            }
        }
        drop(batch_tx);
        if let Ok(Err(status)) = call.await {
            debug!(store, code = ?status.code(), message = status.message(), "raft stream closed");
        }
    }
}

fn drain_unreachable(inner: &Inner, rx: &mut mpsc::Receiver<RaftEnvelope>) {
    while let Ok(env) = rx.try_recv() {
        (inner.unreachable)(env.group_id, env.to_peer);
    }
}

/// The receiving side of the peer transport.
pub struct RaftTransportService {
    self_store: u64,
    cluster_id: SharedClusterId,
    inbound: InboundFn,
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
        }
    }

    /// The tonic server, with the decoding limit raised for batches.
    pub fn into_server(self) -> surge_proto::v1::raft_transport_server::RaftTransportServer<Self> {
        surge_proto::v1::raft_transport_server::RaftTransportServer::new(self)
            .max_decoding_message_size(MAX_RAFT_BATCH_BYTES)
    }

    fn check(&self, cluster_id: &str, from_store: u64, to_store: u64) -> Result<(), Status> {
        let ours = read_cluster_id(&self.cluster_id);
        if !ours.is_empty() && !cluster_id.is_empty() && ours != cluster_id {
            return Err(Status::failed_precondition(format!(
                "cluster_id: peer {from_store} belongs to cluster {cluster_id}, this process to cluster {ours}"
            )));
        }
        if to_store != self.self_store {
            return Err(Status::failed_precondition(format!(
                "to_store: message addressed to {to_store} reached {}",
                self.self_store
            )));
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
        let mut stream = request.into_inner();
        while let Some(batch) = stream.next().await {
            let batch = batch?;
            if let Err(status) = self.check(&batch.cluster_id, batch.from_store, batch.to_store) {
                warn!(
                    from = batch.from_store,
                    reason = status.message(),
                    "raft batch refused"
                );
                return Err(status);
            }
            for env in batch.messages {
                match decode_message(&env.message) {
                    Ok(msg) => {
                        (self.inbound)(env.group_id, msg);
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
        let mut stream = request.into_inner();
        let Some(first) = stream.next().await else {
            return Err(Status::invalid_argument("snapshot: empty stream"));
        };
        let first = first?;
        self.check(&first.cluster_id, first.from_store, first.to_store)?;
        let group = first.group_id;
        let mut msg = decode_message(&first.message)
            .map_err(|e| Status::invalid_argument(format!("message: undecodable: {e}")))?;
        if msg.get_msg_type() != raft::eraftpb::MessageType::MsgSnapshot {
            return Err(Status::invalid_argument("message: not a MsgSnapshot"));
        }
        let mut data = first.data;
        let mut last = first.last;
        while !last {
            let Some(chunk) = stream.next().await else {
                return Err(Status::aborted(
                    "snapshot: stream ended before the last chunk",
                ));
            };
            let chunk = chunk?;
            if chunk.group_id != group {
                return Err(Status::invalid_argument(
                    "group_id: changed within a snapshot",
                ));
            }
            if data.len() + chunk.data.len() > MAX_SNAPSHOT_BYTES {
                return Err(Status::resource_exhausted(format!(
                    "snapshot: larger than {MAX_SNAPSHOT_BYTES} bytes"
                )));
            }
            data.extend_from_slice(&chunk.data);
            last = chunk.last;
        }
        debug!(group, bytes = data.len(), "snapshot received");
        msg.mut_snapshot().set_data(data.into());
        if (self.inbound)(group, msg) {
            Ok(Response::new(RaftDone {}))
        } else {
            Err(Status::resource_exhausted(
                "the raft loop is busy; resend the snapshot",
            ))
        }
    }
}
