//! The peer transport's sending side: one long-lived gRPC client stream per destination
//! process, carrying batches of Raft messages as opaque rust-protobuf bytes (raft-rs speaks
//! protobuf 2, tonic speaks prost) with the sender's membership epoch, and a separate chunked
//! stream per snapshot, paced to the process's snapshot rate. The receiving side is
//! [`crate::transport_service`].

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use protobuf::Message as _;
use raft::eraftpb::Message;
use surge_grpc::tls::Transport;
use surge_grpc::v1::raft_transport_client::RaftTransportClient;
use surge_grpc::v1::{RaftBatch, RaftEnvelope, SnapshotChunk};
use tokio::sync::mpsc;
use tracing::{debug, warn};

use crate::config::RaftConfig;
use crate::engine::Engine;
use crate::metrics::RaftMetrics;
use crate::peer::{Peer, PeerError};
use crate::raft_handle::{MessageSink, RaftHandle};
use crate::raft_loop::RaftLoop;
use crate::state_machine::StateMachine;

pub use crate::transport_service::{
    Inbound, InboundFn, RaftTransportService, SenderCheck, SNAPSHOT_CHUNK_IDLE,
    SNAPSHOT_RECEIVE_LIMIT,
};
use crate::wire::{read_cluster_id, InFlight};
pub use crate::wire::{
    snapshots_in_flight, SharedClusterId, MAX_RAFT_BATCH_BYTES, MAX_SNAPSHOT_BYTES,
    SNAPSHOT_CHUNK_BYTES,
};

/// Messages queued per destination before new ones are dropped (raft resends).
const QUEUE_PER_PEER: usize = 8192;
/// A batch is flushed at this many messages or bytes.
const BATCH_MESSAGES: usize = 256;
const BATCH_BYTES: usize = 1 << 20;
/// Snapshots being sent at once by one process; more wait their turn.
const SNAPSHOTS_IN_FLIGHT: usize = 2;
/// A snapshot transfer that takes longer than this fails (raft retries it).
const SNAPSHOT_TIMEOUT: Duration = Duration::from_secs(300);
/// The snapshot pacer counts in KiB, so a quota fits its 32-bit cells.
const PACE_UNIT: usize = 1024;

/// Maps `(group, peer)` to the destination process id and its gRPC address.
pub type Resolver = Arc<dyn Fn(u64, u64) -> Option<(u64, String)> + Send + Sync>;

/// Called for every message that could not be delivered: `(group, to_peer)`.
pub type UnreachableFn = Arc<dyn Fn(u64, u64) + Send + Sync>;

/// Called when a snapshot transfer ends: `(group, to_peer, delivered)`.
pub type SnapshotDoneFn = Arc<dyn Fn(u64, u64, bool) + Send + Sync>;

/// The sending side: implements [`MessageSink`] for the Raft loop.
#[derive(Clone)]
pub struct GrpcTransport {
    inner: Arc<Inner>,
}

struct Inner {
    self_store: u64,
    /// TLS with this process's certificate (peer ports are mutual TLS), or plaintext.
    tls: Transport,
    cluster_id: SharedClusterId,
    resolver: Resolver,
    unreachable: UnreachableFn,
    snapshot_done: SnapshotDoneFn,
    snapshots: Arc<tokio::sync::Semaphore>,
    /// Paces snapshot data, all transfers of the process together.
    pace: DefaultDirectRateLimiter,
    senders: Mutex<HashMap<u64, mpsc::Sender<RaftEnvelope>>>,
    runtime: tokio::runtime::Handle,
}

/// A pacer of `bytes_per_sec`, allowing one chunk's burst on top.
fn pacer(bytes_per_sec: u64) -> DefaultDirectRateLimiter {
    let per_sec = (bytes_per_sec / PACE_UNIT as u64).clamp(1, u64::from(u32::MAX)) as u32;
    let burst = (2 * SNAPSHOT_CHUNK_BYTES / PACE_UNIT) as u32;
    let quota = Quota::per_second(NonZeroU32::new(per_sec).unwrap_or(NonZeroU32::MIN))
        .allow_burst(NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN));
    RateLimiter::direct(quota)
}

impl GrpcTransport {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        self_store: u64,
        tls: Transport,
        cluster_id: SharedClusterId,
        resolver: Resolver,
        unreachable: UnreachableFn,
        snapshot_done: SnapshotDoneFn,
        runtime: tokio::runtime::Handle,
        snapshot_bytes_per_sec: u64,
    ) -> GrpcTransport {
        GrpcTransport {
            inner: Arc::new(Inner {
                self_store,
                tls,
                cluster_id,
                resolver,
                unreachable,
                snapshot_done,
                snapshots: Arc::new(tokio::sync::Semaphore::new(SNAPSHOTS_IN_FLIGHT)),
                pace: pacer(snapshot_bytes_per_sec),
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
    fn send(&self, group: u64, epoch: u64, msg: Message) -> bool {
        let Some((store, address)) = (self.inner.resolver)(group, msg.to) else {
            return false;
        };
        if msg.get_msg_type() == raft::eraftpb::MessageType::MsgSnapshot {
            let inner = self.inner.clone();
            self.inner.runtime.spawn(async move {
                let to = msg.to;
                let result = tokio::time::timeout(
                    SNAPSHOT_TIMEOUT,
                    send_snapshot(&inner, group, epoch, store, &address, msg),
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
            epoch,
            from_peer: msg.from,
            to_peer: msg.to,
            message: bytes,
            tombstone: false,
            older_incarnation: false,
        };
        self.sender(store).try_send(envelope).is_ok()
    }

    fn send_tombstone(&self, group: u64, epoch: u64, to: u64, older_incarnation: bool) {
        let Some((store, _)) = (self.inner.resolver)(group, to) else {
            return;
        };
        let envelope = RaftEnvelope {
            group_id: group,
            epoch,
            from_peer: self.inner.self_store,
            to_peer: to,
            message: Vec::new(),
            tombstone: true,
            older_incarnation,
        };
        let _ = self.sender(store).try_send(envelope);
    }

    fn reports_snapshots(&self) -> bool {
        true
    }
}

/// Starts a Raft loop over `peers` on its own thread, sending through a [`GrpcTransport`]
/// whose unreachable-peer and snapshot reports go back to that loop.
pub fn start_loop<E: Engine, S: StateMachine>(
    self_store: u64,
    tls: Transport,
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
        tls,
        cluster_id,
        resolver,
        Arc::new(move |group, peer| {
            if let Some(h) = unreachable.get() {
                h.report_unreachable(group, peer);
            }
        }),
        Arc::new(move |group, peer, delivered| {
            if let Some(h) = snapshot.get() {
                // Never lost to a full inbox: raft-rs keeps the follower paused until it hears.
                let h = h.clone();
                tokio::spawn(async move { h.report_snapshot_surely(group, peer, delivered).await });
            }
        }),
        tokio::runtime::Handle::current(),
        config.snapshot_bytes_per_sec,
    );
    let (raft_loop, handle) = RaftLoop::new(peers, Arc::new(transport), config);
    let _ = cell.set(handle.clone());
    (handle, crate::raft_loop::spawn(raft_loop))
}

/// Streams one snapshot to `store` in chunks, each waiting for the pacer.
async fn send_snapshot(
    inner: &Arc<Inner>,
    group: u64,
    epoch: u64,
    store: u64,
    address: &str,
    mut msg: Message,
) -> Result<(), String> {
    let _permit = inner.snapshots.acquire().await.map_err(|e| e.to_string())?;
    let _flow = InFlight::start("sending");
    let data = msg.mut_snapshot().take_data();
    let head = msg.write_to_bytes().map_err(|e| e.to_string())?;
    let channel = inner
        .tls
        .endpoint(address)
        .map_err(|e| e.to_string())?
        .connect_timeout(Duration::from_secs(1))
        .connect()
        .await
        .map_err(|e| e.to_string())?;
    let cluster_id = read_cluster_id(&inner.cluster_id);
    let from_store = inner.self_store;
    let total = data.len();
    debug!(group, store, bytes = total, "sending a snapshot");
    let paced = inner.clone();
    let chunks = chunk_stream(total, move |offset, end| {
        let paced = paced.clone();
        let chunk = SnapshotChunk {
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
            epoch,
        };
        async move {
            let units = (end - offset).div_ceil(PACE_UNIT).max(1) as u32;
            if let Some(n) = NonZeroU32::new(units) {
                // A chunk is never larger than the burst, so this cannot fail.
                let _ = paced.pace.until_n_ready(n).await;
            }
            RaftMetrics::get()
                .snapshot_bytes
                .with_label_values(&["sent"])
                .inc_by((end - offset) as u64);
            chunk
        }
    });
    RaftTransportClient::new(channel)
        .snapshot(chunks)
        .await
        .map(|_| ())
        .map_err(|s| format!("{:?}: {}", s.code(), s.message()))
}

/// The chunks of a `total`-byte snapshot as a stream: `make(offset, end)` builds each one when
/// the stream is polled for it, so pacing holds back the sender and nothing is buffered ahead.
fn chunk_stream<F, Fut>(
    total: usize,
    make: F,
) -> impl tokio_stream::Stream<Item = SnapshotChunk> + Send + 'static
where
    F: Fn(usize, usize) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = SnapshotChunk> + Send + 'static,
{
    use futures::StreamExt as _;
    let bounds: Vec<(usize, usize)> = if total == 0 {
        vec![(0, 0)]
    } else {
        (0..total)
            .step_by(SNAPSHOT_CHUNK_BYTES)
            .map(|o| (o, (o + SNAPSHOT_CHUNK_BYTES).min(total)))
            .collect()
    };
    futures::stream::iter(bounds).then(move |(o, e)| make(o, e))
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
        let endpoint = match inner.tls.endpoint(&addr) {
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
