//! Messages that no correct peer sends and that raft-rs 0.7 does not survive. A heartbeat
//! carries `min(leader commit, the follower's match index)`, so its commit never passes the
//! follower's last index; one that does would make `RaftLog::commit_to` call `fatal!` and
//! stop the process. Such a message (forged, or from a corrupt peer) is refused and counted
//! before it reaches raft-rs. Appends need no check: raft-rs commits `min(commit, last new
//! index)` and ignores appends below its commit index.

use raft::eraftpb::{Message, MessageType};

/// Why `message` must not reach a replica whose log ends at `last_index`, if it must not:
/// the reason is the `surge_raft_refused_messages_total` label.
pub fn impossible(message: &Message, last_index: u64) -> Option<&'static str> {
    let heartbeat = message.get_msg_type() == MessageType::MsgHeartbeat;
    (heartbeat && message.commit > last_index).then_some("impossible_commit")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(kind: MessageType, commit: u64) -> Message {
        let mut m = Message::default();
        m.set_msg_type(kind);
        m.commit = commit;
        m.from = 2;
        m.to = 1;
        m.term = 9;
        m
    }

    #[test]
    fn a_heartbeat_committing_past_the_log_is_refused() {
        assert_eq!(
            impossible(&message(MessageType::MsgHeartbeat, 1_000_000), 40),
            Some("impossible_commit")
        );
        assert_eq!(
            impossible(&message(MessageType::MsgHeartbeat, 40), 40),
            None
        );
        assert_eq!(impossible(&message(MessageType::MsgHeartbeat, 0), 0), None);
    }

    #[test]
    fn other_messages_are_left_to_raft() {
        // raft-rs commits min(commit, last new index) on an append: safe at any value.
        assert_eq!(
            impossible(&message(MessageType::MsgAppend, u64::MAX), 40),
            None
        );
        assert_eq!(
            impossible(&message(MessageType::MsgRequestVote, u64::MAX), 0),
            None
        );
    }

    /// The raft-rs behaviour this guards against: a follower stepping such a heartbeat
    /// panics (fatal!). If raft-rs ever stops panicking, this test says the guard may go.
    #[test]
    fn raft_rs_panics_on_the_message_the_guard_refuses() {
        use raft::storage::MemStorage;
        use raft::{Config, RawNode};
        let logger = slog::Logger::root(slog::Discard, slog::o!());
        let storage = MemStorage::new_with_conf_state((vec![1, 2], vec![]));
        let config = Config {
            id: 1,
            ..Config::default()
        };
        let mut node = RawNode::new(&config, storage, &logger).expect("raw node");
        let last = node.raft.raft_log.last_index();
        let forged = message(MessageType::MsgHeartbeat, last + 1_000);
        assert_eq!(impossible(&forged, last), Some("impossible_commit"));
        let stepped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| node.step(forged)));
        assert!(stepped.is_err(), "raft-rs took a commit past its log");
    }
}
