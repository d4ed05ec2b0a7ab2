//! A group's stored state with an index or term no replica ever reaches (past 2^62) is refused
//! as corrupt when the group is opened, rather than overflowing an `index + 1` later.

use std::sync::Arc;

use surge_raftstore::families::process_families;
use surge_raftstore::raft::eraftpb::HardState;
use surge_raftstore::{Engine, EngineError, GroupStorage, MemEngine, WriteBatch};

#[test]
fn an_impossible_commit_on_disk_is_refused_as_corrupt() {
    let engine = Arc::new(MemEngine::new(&process_families(&[])));
    let mut storage = GroupStorage::open(engine.clone(), 7).expect("an empty group");
    let mut hard = HardState {
        term: 3,
        commit: u64::MAX,
        ..HardState::default()
    };
    let mut batch = WriteBatch::default();
    storage.stage_hard_state(&hard, &mut batch);
    engine.write(&batch, true).expect("write");
    match GroupStorage::open(engine.clone(), 7) {
        Err(EngineError::Corrupt { reason, .. }) => {
            assert!(
                reason.contains("commit") && reason.contains("2^62"),
                "{reason}"
            );
        }
        Err(other) => panic!("another error: {other}"),
        Ok(_) => panic!("a commit index of u64::MAX was taken"),
    }
    // A plausible one opens.
    hard.commit = 0;
    let mut batch = WriteBatch::default();
    storage.stage_hard_state(&hard, &mut batch);
    engine.write(&batch, true).expect("write");
    GroupStorage::open(engine, 7).expect("a sane state opens");
}
