//! A RaftBatch off the peer port: decoded as the transport decodes it, each message judged by
//! the loop's guard and, if it passes, stepped into a live follower (raft-rs must not panic).
#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message as _;
use surge_proto::v1::RaftBatch;
use surge_raftstore::raft::storage::MemStorage;
use surge_raftstore::raft::{Config, RawNode};
use surge_raftstore::raft_handle::decode_message;

fuzz_target!(|data: &[u8]| {
    let Ok(batch) = RaftBatch::decode(data) else {
        return;
    };
    let logger = slog::Logger::root(slog::Discard, slog::o!());
    let storage = MemStorage::new_with_conf_state((vec![1, 2, 3], vec![]));
    let config = Config {
        id: 1,
        ..Config::default()
    };
    let Ok(mut node) = RawNode::new(&config, storage, &logger) else {
        return;
    };
    for env in batch.messages.iter().take(64) {
        let Ok(mut message) = decode_message(&env.message) else {
            continue;
        };
        message.to = 1;
        let last = node.raft.raft_log.last_index();
        if surge_raftstore::forged::impossible(&message, last).is_some() {
            continue;
        }
        let _ = node.step(message);
    }
});
