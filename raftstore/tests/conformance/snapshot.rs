//! Snapshots through the conformance suite: built on one engine, installed on another, with
//! the rows in the message or staged as engine files by the transport and ingested afterwards
//! (also after a stop between the two).

use std::collections::BTreeMap;
use std::sync::Arc;

use prost::Message as _;
use surge_proto::v1::{SnapshotData, SnapshotRow};
use surge_raftstore::families::RAFT_LOG;
use surge_raftstore::group_storage::BOOTSTRAP_INDEX;
use surge_raftstore::raft::eraftpb::Snapshot;
use surge_raftstore::raft::Storage as _;
use surge_raftstore::snapshot_staging::{EngineStaging, SnapshotStaging};
use surge_raftstore::{keys, Cf, Engine, GroupStorage, WriteBatch};

use super::{
    append, entries_in, group_rows, hard_state, is_compacted, open, persist, put_row, read,
    Harness, Rows, ORDERS, OUTBOX,
};

/// The group the snapshot tests ship between engines, and its neighbours on either side.
const SNAP: u64 = 7;
const BELOW: u64 = SNAP - 1;
const ABOVE: u64 = SNAP + 1;

/// A source group with a log, applied data in two data families and neighbours' rows.
fn snapshot_source<E: Engine>(engine: &Arc<E>) -> Snapshot {
    let mut source = open(engine, SNAP);
    persist(&mut source, |s, b| s.stage_bootstrap(&[1, 2, 3], 4, b));
    append(&mut source, &entries_in(BOOTSTRAP_INDEX + 1, 2, 1));
    append(&mut source, &entries_in(3, 6, 2));
    persist(&mut source, |s, b| {
        s.stage_hard_state(&hard_state(2, 1, 6), b);
        b.put(Cf::META, keys::data_key(SNAP, b"a"), b"1".to_vec());
        b.put(Cf::META, keys::data_key(SNAP, b"b"), b"2".to_vec());
        b.put(
            ORDERS,
            keys::data_key(SNAP, b"order-9"),
            b"shipped".to_vec(),
        );
        s.stage_applied(5, b);
    });
    put_row(
        engine.as_ref(),
        Cf::META,
        keys::data_key(BELOW, b"a"),
        b"neighbour",
    );
    put_row(
        engine.as_ref(),
        Cf::META,
        keys::data_key(ABOVE, b""),
        b"neighbour",
    );
    source.build_snapshot().expect("build snapshot")
}

/// A snapshot carries exactly the group's data rows at its applied index.
fn check_snapshot_contents(snap: &Snapshot) {
    let meta = snap.get_metadata();
    assert_eq!((meta.index, meta.term), (5, 2));
    assert_eq!(meta.get_conf_state().voters, vec![1, 2, 3]);
    let data = SnapshotData::decode(snap.data.as_ref()).expect("snapshot data decodes");
    assert_eq!(data.applied_index, 5);
    assert_eq!(
        data.conf_epoch, 4,
        "a snapshot carries its configuration's epoch"
    );
    assert_eq!(
        data.member_since
            .iter()
            .map(|m| (m.id, m.epoch))
            .collect::<Vec<_>>(),
        vec![(1, 4), (2, 4), (3, 4)],
        "and when each member joined"
    );
    let row = |cf: Cf, suffix: &[u8], value: &[u8]| SnapshotRow {
        cf: cf.code(),
        key: keys::data_key(SNAP, suffix),
        value: value.to_vec(),
    };
    let mut got = data.rows.clone();
    got.sort_by(|a, b| (a.cf, &a.key).cmp(&(b.cf, &b.key)));
    assert_eq!(
        got,
        vec![
            row(Cf::META, b"a", b"1"),
            row(Cf::META, b"b", b"2"),
            row(ORDERS, b"order-9", b"shipped")
        ]
    );
}

/// The receiving engine: a stale copy of the group plus neighbours whose rows must survive.
fn snapshot_target<E: Engine>(engine: &Arc<E>) -> BTreeMap<&'static str, Rows> {
    let mut stale = open(engine, SNAP);
    append(&mut stale, &entries_in(1, 8, 1));
    persist(&mut stale, |s, b| {
        s.stage_hard_state(&hard_state(1, 0, 3), b);
        b.put(Cf::META, keys::data_key(SNAP, b"stale"), b"x".to_vec());
        b.put(OUTBOX, keys::data_key(SNAP, b"job"), b"x".to_vec());
        s.stage_applied(3, b);
    });
    let mut below = open(engine, BELOW);
    append(&mut below, &entries_in(1, 3, 1));
    put_row(
        engine.as_ref(),
        Cf::META,
        keys::data_key(BELOW, b"z"),
        b"mine",
    );
    put_row(
        engine.as_ref(),
        Cf::META,
        keys::data_key(ABOVE, b"a"),
        b"mine",
    );
    neighbour_rows(engine.as_ref())
}

fn neighbour_rows<E: Engine>(engine: &E) -> BTreeMap<&'static str, Rows> {
    BTreeMap::from([
        ("below meta", group_rows(engine, Cf::META, BELOW)),
        ("below log", group_rows(engine, RAFT_LOG, BELOW)),
        ("above meta", group_rows(engine, Cf::META, ABOVE)),
    ])
}

/// After installing, the group holds the snapshot's rows and nothing else, with an empty log
/// that starts after the snapshot.
fn check_installed<E: Engine>(engine: &Arc<E>, storage: &GroupStorage<E>) {
    assert_eq!(storage.first_index().unwrap(), 6);
    assert_eq!(storage.last_index().unwrap(), 5);
    assert_eq!(storage.term(5).unwrap(), 2);
    assert!(is_compacted(storage.term(4)));
    assert!(is_compacted(read(storage, 3, 6, None)));
    assert_eq!(storage.applied_index(), 5);
    let state = storage.initial_state().unwrap();
    assert_eq!(state.conf_state.voters, vec![1, 2, 3]);
    assert_eq!(storage.conf_epoch(), 4);
    assert_eq!(storage.member_since(2), 4);
    assert!(
        state.hard_state.commit >= 5 && state.hard_state.term >= 2,
        "{:?}",
        state.hard_state
    );
    assert_eq!(
        group_rows(engine.as_ref(), RAFT_LOG, SNAP),
        vec![],
        "the old log is gone"
    );
    assert_eq!(
        group_rows(engine.as_ref(), Cf::META, SNAP),
        vec![
            (keys::data_key(SNAP, b"a"), b"1".to_vec()),
            (keys::data_key(SNAP, b"b"), b"2".to_vec())
        ]
    );
    assert_eq!(group_rows(engine.as_ref(), ORDERS, SNAP).len(), 1);
    assert_eq!(
        group_rows(engine.as_ref(), OUTBOX, SNAP),
        vec![],
        "stale rows are gone"
    );
}

/// A snapshot built on one engine installs on another, replacing that group's log and data and
/// leaving every other group alone.
pub(super) fn snapshot_replaces_group<H: Harness>(mut h: H, mut source: impl Harness) {
    let snap = snapshot_source(&source.engine());
    check_snapshot_contents(&snap);

    let engine = h.engine();
    let neighbours = snapshot_target(&engine);
    let mut storage = open(&engine, SNAP);
    persist(&mut storage, |s, b| {
        s.stage_snapshot(&snap, b).expect("stage snapshot")
    });

    check_installed(&engine, &storage);
    check_installed(&engine, &open(&engine, SNAP));
    assert_eq!(
        neighbour_rows(engine.as_ref()),
        neighbours,
        "other groups untouched"
    );
    assert_eq!(
        read(&open(&engine, BELOW), 1, 4, None).unwrap(),
        entries_in(1, 3, 1)
    );

    append(&mut storage, &entries_in(6, 7, 3));
    assert_eq!(
        read(&open(&engine, SNAP), 6, 8, None).unwrap(),
        entries_in(6, 7, 3)
    );
}

/// A snapshot that would write into another group's key range is refused.
pub(super) fn snapshot_outside_group_rejected<H: Harness>(mut h: H) {
    let engine = h.engine();
    let data = SnapshotData {
        rows: vec![SnapshotRow {
            cf: Cf::META.code(),
            key: keys::data_key(ABOVE, b"x"),
            value: vec![],
        }],
        applied_index: 1,
        conf_epoch: 1,
        member_since: Vec::new(),
        staged_files: Vec::new(),
    };
    let mut snap = Snapshot {
        data: data.encode_to_vec().into(),
        ..Default::default()
    };
    snap.mut_metadata().index = 1;
    snap.mut_metadata().term = 1;
    let mut storage = open(&engine, SNAP);
    let mut batch = WriteBatch::default();
    assert!(storage.stage_snapshot(&snap, &mut batch).is_err());
}

/// `snap` as the transport hands it to the loop: its rows staged on `engine`.
fn staged<E: Engine>(engine: &Arc<E>, snap: &Snapshot) -> (Snapshot, Vec<String>) {
    let data = SnapshotData::decode(snap.data.as_ref()).expect("snapshot data decodes");
    let staged = EngineStaging::new(engine.clone())
        .stage(SNAP, data)
        .expect("stage snapshot rows");
    assert!(staged.rows.is_empty(), "the rows are in files now");
    assert_eq!(
        staged.staged_files.len(),
        engine.group_families().len(),
        "one file per data family, each clearing the group's range"
    );
    let mut out = snap.clone();
    out.data = staged.encode_to_vec().into();
    (out, staged.staged_files)
}

/// A snapshot whose rows were staged installs like one that carries them: the Raft state
/// first (naming the files), then the files; every stale row goes and neighbours stay. Replaying
/// the ingestion afterwards changes nothing, not even a row written since.
pub(super) fn staged_snapshot_replaces_group<H: Harness>(mut h: H, mut source: impl Harness) {
    let snap = snapshot_source(&source.engine());
    let engine = h.engine();
    let neighbours = snapshot_target(&engine);
    let (snap, files) = staged(&engine, &snap);
    let mut storage = open(&engine, SNAP);
    persist(&mut storage, |s, b| {
        s.stage_snapshot(&snap, b).expect("stage snapshot")
    });
    assert_eq!(
        group_rows(engine.as_ref(), OUTBOX, SNAP).len(),
        1,
        "the data is untouched until the files are ingested"
    );
    persist(&mut storage, |s, b| s.ingest_staged(b).expect("ingest"));

    check_installed(&engine, &storage);
    check_installed(&engine, &open(&engine, SNAP));
    assert_eq!(
        neighbour_rows(engine.as_ref()),
        neighbours,
        "other groups untouched"
    );
    put_row(
        engine.as_ref(),
        ORDERS,
        keys::data_key(SNAP, b"order-10"),
        b"new",
    );
    engine.ingest_staged(&files).expect("replay is a no-op");
    assert_eq!(group_rows(engine.as_ref(), ORDERS, SNAP).len(), 2);
}

/// A process that stops after the Raft state naming the files is durable, and before they are
/// ingested, ingests them when it opens the group again.
pub(super) fn staged_snapshot_finished_after_a_stop<H: Harness>(mut h: H) {
    let engine = h.engine();
    let snap = snapshot_source(&engine);
    // The source group is this engine's SNAP: destroy it, then make the stale copy to replace.
    let mut batch = WriteBatch::default();
    surge_raftstore::group_storage::stage_destroy(engine.as_ref(), SNAP, &mut batch);
    engine.write(&batch, true).unwrap();
    snapshot_target(&engine);
    let (snap, _) = staged(&engine, &snap);
    let mut storage = open(&engine, SNAP);
    persist(&mut storage, |s, b| {
        s.stage_snapshot(&snap, b).expect("stage snapshot")
    });
    drop(storage);

    let engine = h.restart(engine);
    let storage = open(&engine, SNAP);
    check_installed(&engine, &storage);
    drop(storage);
    let engine = h.restart(engine);
    check_installed(&engine, &open(&engine, SNAP));
}

/// Staging refuses rows of another group or family and names set by a sender, and stages
/// nothing for them.
pub(super) fn staging_refuses_bad_rows<H: Harness>(mut h: H) {
    let engine = h.engine();
    let staging = EngineStaging::new(engine.clone());
    let row = |cf: Cf, group: u64| SnapshotRow {
        cf: cf.code(),
        key: keys::data_key(group, b"x"),
        value: b"v".to_vec(),
    };
    for (what, data) in [
        (
            "a row of another group",
            SnapshotData {
                rows: vec![row(Cf::META, SNAP), row(Cf::META, ABOVE)],
                ..Default::default()
            },
        ),
        (
            "a row in the Raft log family",
            SnapshotData {
                rows: vec![row(RAFT_LOG, SNAP)],
                ..Default::default()
            },
        ),
        (
            "file names chosen by the sender",
            SnapshotData {
                staged_files: vec!["../../etc/passwd".into()],
                ..Default::default()
            },
        ),
    ] {
        assert!(staging.stage(SNAP, data).is_err(), "{what} was staged");
    }
    // A name the engine did not make is refused (RocksDB) or unknown (memory): either way
    // nothing changes.
    let _ = engine.ingest_staged(&["../../etc/passwd".to_string()]);
    assert!(group_rows(engine.as_ref(), Cf::META, SNAP).is_empty());
    assert!(group_rows(engine.as_ref(), Cf::META, ABOVE).is_empty());
}
