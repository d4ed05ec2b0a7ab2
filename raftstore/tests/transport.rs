//! The peer transport over real loopback sockets: batches of ordinary messages carrying their
//! sender's membership epoch, tombstone notices, and a snapshot far larger than one chunk,
//! reassembled byte for byte on the other side and paced to the sender's snapshot rate, with
//! its outcome reported to the sender. A snapshot for another cluster is refused and reported.

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use surge_raftstore::raft::eraftpb::{Message, MessageType, Snapshot};
use surge_raftstore::transport::{
    GrpcTransport, Inbound, RaftTransportService, SNAPSHOT_CHUNK_BYTES,
};
use surge_raftstore::MessageSink;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_stream::wrappers::TcpListenerStream;

type Received = mpsc::UnboundedReceiver<Inbound>;

async fn receiver(store: u64, cluster: &str) -> (String, Received) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("addr").to_string();
    let (tx, rx) = mpsc::unbounded_channel();
    let service = RaftTransportService::new(
        store,
        Arc::new(RwLock::new(cluster.to_string())),
        Arc::new(move |inbound| tx.send(inbound).is_ok()),
    );
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
        Arc::new(RwLock::new(cluster.to_string())),
        Arc::new(move |_group, peer| Some((peer, address.clone()))),
        Arc::new(|_, _| {}),
        Arc::new(move |group, peer, ok| done.lock().expect("lock").push((group, peer, ok))),
        tokio::runtime::Handle::current(),
        bytes_per_sec,
    );
    (transport, outcomes)
}

fn snapshot_message(to: u64, bytes: usize) -> Message {
    let mut snap = Snapshot::default();
    snap.set_data(
        (0..bytes)
            .map(|i| (i % 251) as u8)
            .collect::<Vec<u8>>()
            .into(),
    );
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
    assert_eq!(got.get_snapshot().get_data().len(), size);
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
    assert!(transport.send(7, 1, snapshot_message(2, 6 * SNAPSHOT_CHUNK_BYTES)));
    let (_, _, msg) = next_message(&mut rx).await;
    assert_eq!(
        msg.get_snapshot().get_data().len(),
        6 * SNAPSHOT_CHUNK_BYTES
    );
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
