//! The peer transport over real loopback sockets: batches of ordinary messages carrying their
//! sender's membership epoch, tombstone notices, and a snapshot far larger than one chunk,
//! reassembled byte for byte on the other side and paced to the sender's snapshot rate, with
//! its outcome reported to the sender. A snapshot for another cluster is refused and reported.
//! With staging, a received snapshot's rows become engine files before the loop sees it, and a
//! snapshot that arrives naming files is refused. Snapshot streams that stall are dropped,
//! freeing their receiving places.

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use prost::Message as _;
use surge_proto::v1::{SnapshotData, SnapshotRow};
use surge_raftstore::families::process_families;
use surge_raftstore::raft::eraftpb::{Message, MessageType, Snapshot};
use surge_raftstore::snapshot_staging::EngineStaging;
use surge_raftstore::transport::{
    GrpcTransport, Inbound, RaftTransportService, SNAPSHOT_CHUNK_BYTES,
};
use surge_raftstore::{keys, Cf, Engine, Family, MemEngine, MessageSink, Tuning};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_stream::wrappers::TcpListenerStream;

type Received = mpsc::UnboundedReceiver<Inbound>;

async fn receiver(store: u64, cluster: &str) -> (String, Received) {
    receiver_staging(store, cluster, None).await
}

async fn receiver_staging(
    store: u64,
    cluster: &str,
    staging: Option<Arc<MemEngine>>,
) -> (String, Received) {
    receiver_with(store, cluster, staging, |s| s).await
}

async fn receiver_with(
    store: u64,
    cluster: &str,
    staging: Option<Arc<MemEngine>>,
    configure: impl FnOnce(RaftTransportService) -> RaftTransportService,
) -> (String, Received) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("addr").to_string();
    let (tx, rx) = mpsc::unbounded_channel();
    let mut service = RaftTransportService::new(
        store,
        Arc::new(RwLock::new(cluster.to_string())),
        Arc::new(move |inbound| tx.send(inbound).is_ok()),
    );
    if let Some(engine) = staging {
        service = service.with_staging(EngineStaging::new(engine));
    }
    let service = configure(service);
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service.into_server())
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    (address, rx)
}

type Outcomes = Arc<Mutex<Vec<(u64, u64, bool)>>>;

fn sender(cluster: &str, address: String) -> (GrpcTransport, Outcomes) {
    sender_paced(cluster, address, 1 << 30)
}

fn sender_paced(cluster: &str, address: String, bytes_per_sec: u64) -> (GrpcTransport, Outcomes) {
    let outcomes: Outcomes = Arc::default();
    let done = outcomes.clone();
    let transport = GrpcTransport::new(
        1,
        surge_grpc::tls::Transport::Plaintext,
        Arc::new(RwLock::new(cluster.to_string())),
        Arc::new(move |_group, peer| Some((peer, address.clone()))),
        Arc::new(|_, _| {}),
        Arc::new(move |group, peer, ok| done.lock().expect("lock").push((group, peer, ok))),
        tokio::runtime::Handle::current(),
        bytes_per_sec,
    );
    (transport, outcomes)
}

/// The test application's one data family.
const ORDERS: Cf = Cf::new(5, "orders");

/// An engine opened as a process of the test application opens its own.
fn engine() -> MemEngine {
    MemEngine::new(&process_families(&[Family {
        cf: ORDERS,
        per_group: true,
        tuning: Tuning::Bulk,
    }]))
}

/// A snapshot of group 7 whose one order row holds `bytes` bytes.
fn snapshot_message(to: u64, bytes: usize) -> Message {
    let data = SnapshotData {
        rows: vec![SnapshotRow {
            cf: ORDERS.code(),
            key: keys::data_key(7, "订单-1".as_bytes()),
            value: (0..bytes).map(|i| (i % 251) as u8).collect(),
        }],
        applied_index: 42,
        ..Default::default()
    };
    snapshot_with(to, data)
}

fn snapshot_with(to: u64, data: SnapshotData) -> Message {
    let mut snap = Snapshot::default();
    snap.set_data(data.encode_to_vec().into());
    snap.mut_metadata().index = 42;
    snap.mut_metadata().term = 3;
    let mut msg = Message::default();
    msg.set_msg_type(MessageType::MsgSnapshot);
    msg.from = 1;
    msg.to = to;
    msg.term = 3;
    msg.set_snapshot(snap);
    msg
}

async fn outcome(outcomes: &Outcomes) -> (u64, u64, bool) {
    for _ in 0..200 {
        if let Some(o) = outcomes.lock().expect("lock").first().copied() {
            return o;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("no snapshot outcome reported");
}

/// The next inbound message (not a notice), with its group and epoch.
async fn next_message(rx: &mut Received) -> (u64, u64, Message) {
    loop {
        let inbound = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("delivery in time")
            .expect("channel open");
        if let Inbound::Message {
            group,
            epoch,
            message,
        } = inbound
        {
            return (group, epoch, message);
        }
    }
}

#[tokio::test]
async fn a_large_snapshot_arrives_whole_over_its_own_stream() {
    let (address, mut rx) = receiver(2, "c1").await;
    let (transport, outcomes) = sender("c1", address);
    assert!(transport.reports_snapshots());

    let mut heartbeat = Message::default();
    heartbeat.set_msg_type(MessageType::MsgHeartbeat);
    heartbeat.from = 1;
    heartbeat.to = 2;
    assert!(transport.send(7, 4, heartbeat));
    let size = 3 * SNAPSHOT_CHUNK_BYTES + 12_345;
    let sent = snapshot_message(2, size);
    assert!(transport.send(7, 5, sent.clone()));

    let mut got_snapshot = None;
    let mut got_heartbeat = false;
    while got_snapshot.is_none() || !got_heartbeat {
        let (group, epoch, msg) = next_message(&mut rx).await;
        assert_eq!(group, 7);
        match msg.get_msg_type() {
            MessageType::MsgSnapshot => {
                assert_eq!(epoch, 5, "the snapshot carries its sender's epoch");
                got_snapshot = Some(msg);
            }
            MessageType::MsgHeartbeat => {
                assert_eq!(epoch, 4, "a message carries its sender's epoch");
                got_heartbeat = true;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let got = got_snapshot.expect("snapshot");
    assert!(got.get_snapshot().get_data().len() > size);
    assert_eq!(got, sent, "the snapshot must arrive byte for byte");
    assert_eq!(outcome(&outcomes).await, (7, 2, true));
}

#[tokio::test]
async fn a_tombstone_notice_reaches_the_removed_replica() {
    let (address, mut rx) = receiver(2, "c1").await;
    let (transport, _) = sender("c1", address);
    transport.send_tombstone(9, 12, 2, true);
    let inbound = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("delivery in time")
        .expect("channel open");
    match inbound {
        Inbound::Tombstone {
            group,
            epoch,
            from,
            older_incarnation,
        } => {
            assert_eq!((group, epoch, from, older_incarnation), (9, 12, 1, true));
        }
        other => panic!("expected a tombstone notice, got {other:?}"),
    }
}

#[tokio::test]
async fn snapshot_data_is_paced_to_the_senders_rate() {
    let (address, mut rx) = receiver(2, "c1").await;
    // 4 MiB/s with a burst of two chunks: 6 MiB of snapshot data needs at least 1 s.
    let (transport, outcomes) = sender_paced("c1", address, 4 << 20);
    let started = Instant::now();
    let sent = snapshot_message(2, 6 * SNAPSHOT_CHUNK_BYTES);
    assert!(transport.send(7, 1, sent.clone()));
    let (_, _, msg) = next_message(&mut rx).await;
    assert_eq!(msg, sent);
    assert_eq!(outcome(&outcomes).await, (7, 2, true));
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900),
        "6 MiB at 4 MiB/s went through in {took:?}"
    );
}

#[tokio::test]
async fn a_snapshot_for_another_cluster_is_refused_and_reported() {
    let (address, mut rx) = receiver(2, "c1").await;
    let (transport, outcomes) = sender("c2", address);
    assert!(transport.send(7, 1, snapshot_message(2, 10)));
    assert_eq!(outcome(&outcomes).await, (7, 2, false));
    assert!(rx.try_recv().is_err(), "nothing may be delivered");
}

#[tokio::test]
async fn with_staging_the_rows_arrive_as_engine_files() {
    let engine = Arc::new(engine());
    let (address, mut rx) = receiver_staging(2, "c1", Some(engine.clone())).await;
    let (transport, outcomes) = sender("c1", address);
    assert!(transport.send(7, 1, snapshot_message(2, 3 * SNAPSHOT_CHUNK_BYTES)));
    let (group, _, msg) = next_message(&mut rx).await;
    assert_eq!(group, 7);
    let data = SnapshotData::decode(msg.get_snapshot().get_data()).expect("decodes");
    assert!(
        data.rows.is_empty(),
        "the rows stay out of the loop's message"
    );
    assert_eq!(data.applied_index, 42);
    assert_eq!(data.staged_files.len(), engine.group_families().len());
    assert_eq!(engine.staged_count(), engine.group_families().len());
    assert_eq!(outcome(&outcomes).await, (7, 2, true));
}

#[tokio::test]
async fn a_snapshot_naming_staged_files_is_refused() {
    let engine = Arc::new(engine());
    let (address, mut rx) = receiver_staging(2, "c1", Some(engine.clone())).await;
    let (transport, outcomes) = sender("c1", address);
    let forged = SnapshotData {
        staged_files: vec!["00000000000000000001-orders.sst".into()],
        ..Default::default()
    };
    assert!(transport.send(7, 1, snapshot_with(2, forged)));
    assert_eq!(outcome(&outcomes).await, (7, 2, false));
    assert!(rx.try_recv().is_err(), "nothing may be delivered");
    assert_eq!(engine.staged_count(), 0);
}

#[tokio::test]
async fn a_stalled_snapshot_stream_is_dropped_and_frees_its_place() {
    let (address, mut rx) = receiver_with(2, "c1", None, |s| {
        s.with_snapshot_deadlines(Duration::from_millis(300), Duration::from_secs(2))
    })
    .await;
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{address}"))
        .expect("endpoint")
        .connect()
        .await
        .expect("connect");
    let message = snapshot_message(2, 16);
    let head = protobuf::Message::write_to_bytes(&message).expect("encode");
    // Several stalled senders at once, more than the receiving permits: each sends its first
    // chunk and then nothing, keeping its stream open.
    let mut stalled = Vec::new();
    for _ in 0..6 {
        let (tx, chunks) = mpsc::channel(1);
        tx.send(surge_proto::v1::SnapshotChunk {
            cluster_id: "c1".into(),
            from_store: 1,
            to_store: 2,
            group_id: 7,
            message: head.clone(),
            data: vec![1; 8],
            last: false,
            epoch: 0,
        })
        .await
        .expect("first chunk");
        let mut client =
            surge_grpc::v1::raft_transport_client::RaftTransportClient::new(channel.clone());
        stalled.push((
            tx,
            tokio::spawn(async move {
                client
                    .snapshot(tokio_stream::wrappers::ReceiverStream::new(chunks))
                    .await
            }),
        ));
    }
    for (_tx, call) in stalled {
        let err = tokio::time::timeout(Duration::from_secs(10), call)
            .await
            .expect("a stalled stream dropped within 10 s")
            .expect("task")
            .expect_err("a stalled stream");
        assert!(
            matches!(
                err.code(),
                tonic::Code::Aborted | tonic::Code::ResourceExhausted
            ),
            "{err:?}"
        );
    }
    assert!(
        rx.try_recv().is_err(),
        "nothing of a stalled snapshot is delivered"
    );
    // The permits are free again: a whole snapshot goes through.
    let (transport, outcomes) = sender("c1", address);
    assert!(transport.send(7, 1, snapshot_message(2, 3 * SNAPSHOT_CHUNK_BYTES)));
    assert_eq!(outcome(&outcomes).await, (7, 2, true));
    let (group, _, got) = next_message(&mut rx).await;
    assert_eq!((group, got.get_msg_type()), (7, MessageType::MsgSnapshot));
}
