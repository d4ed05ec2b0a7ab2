//! Messages that no correct peer sends and that raft-rs 0.7 does not survive. A heartbeat
//! carries `min(leader commit, the follower's match index)`, so its commit never passes the
//! follower's last index; one that does would make `RaftLog::commit_to` call `fatal!` and
//! stop the process; so would a (pre-)vote without a term (found by the `raft_batch` fuzz
//! target). Such a message (forged, or from a corrupt peer) is refused and counted
//! before it reaches raft-rs. Appends need no check: raft-rs commits `min(commit, last new
//! index)` and ignores appends below its commit index.

use raft::eraftpb::{Message, MessageType};

/// Why `message` must not reach a replica whose log ends at `last_index`, if it must not:
/// the reason is the `surge_raft_refused_messages_total` label.
pub fn impossible(message: &Message, last_index: u64) -> Option<&'static str> {
    if out_of_reach(message) {
        return Some("impossible_value");
    }
    let kind = message.get_msg_type();
    if kind == MessageType::MsgHeartbeat && message.commit > last_index {
        return Some("impossible_commit");
    }
    // A (pre-)vote always names the term it campaigns for; answering one without a term
    // makes raft-rs stop the process ("term should be set when sending").
    let campaign = matches!(
        kind,
        MessageType::MsgRequestVote
            | MessageType::MsgRequestPreVote
            | MessageType::MsgRequestVoteResponse
            | MessageType::MsgRequestPreVoteResponse
    );
    (campaign && message.term == 0).then_some("no_term")
}

/// Indexes and terms no group reaches in practice (2^62: a billion entries a second for a
/// century is under 2^62); one past it is forged or corrupt, and would overflow the
/// `index + 1` arithmetic of log and snapshot handling.
pub const MAX_PLAUSIBLE: u64 = 1 << 62;

/// Whether any index or term `message` carries, its entries' and its snapshot's included,
/// is past [`MAX_PLAUSIBLE`].
fn out_of_reach(message: &Message) -> bool {
    let snapshot = message.get_snapshot().get_metadata();
    [
        message.term,
        message.log_term,
        message.index,
        message.commit,
        message.reject_hint,
        snapshot.index,
        snapshot.term,
    ]
    .into_iter()
    .chain(message.get_entries().iter().flat_map(|e| [e.index, e.term]))
    .any(|v| v > MAX_PLAUSIBLE)
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
    fn a_vote_without_a_term_is_refused() {
        for kind in [MessageType::MsgRequestPreVote, MessageType::MsgRequestVote] {
            let mut m = message(kind, 0);
            m.term = 0;
            assert_eq!(impossible(&m, 40), Some("no_term"), "{kind:?}");
            m.term = 3;
            assert_eq!(impossible(&m, 40), None, "{kind:?}");
        }
    }

    #[test]
    fn other_messages_are_left_to_raft() {
        // raft-rs commits min(commit, last new index) on an append: safe at any value.
        assert_eq!(
            impossible(&message(MessageType::MsgAppend, 1_000_000), 40),
            None
        );
        assert_eq!(
            impossible(&message(MessageType::MsgRequestVote, 1_000_000), 0),
            None
        );
    }

    fn follower() -> raft::RawNode<raft::storage::MemStorage> {
        let logger = slog::Logger::root(slog::Discard, slog::o!());
        let storage = raft::storage::MemStorage::new_with_conf_state((vec![1, 2], vec![]));
        let config = raft::Config {
            id: 1,
            ..raft::Config::default()
        };
        raft::RawNode::new(&config, storage, &logger).expect("raw node")
    }

    /// The raft-rs behaviour this guards against: a follower stepping such a message panics
    /// (fatal!). If raft-rs ever stops panicking, these tests say the guard may go.
    #[test]
    fn raft_rs_panics_on_the_messages_the_guard_refuses() {
        let mut node = follower();
        let last = node.raft.raft_log.last_index();
        let mut pre_vote = message(MessageType::MsgRequestPreVote, 0);
        pre_vote.term = 0;
        for forged in [message(MessageType::MsgHeartbeat, last + 1_000), pre_vote] {
            assert!(impossible(&forged, last).is_some());
            let mut node = follower();
            let stepped =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| node.step(forged)));
            assert!(stepped.is_err(), "raft-rs took it");
        }
        let _ = node.step(message(MessageType::MsgHeartbeat, last));
    }

    #[test]
    fn indexes_and_terms_past_reach_are_refused() {
        let mut m = message(MessageType::MsgAppend, 0);
        m.index = u64::MAX;
        assert_eq!(impossible(&m, 40), Some("impossible_value"));
        let mut m = message(MessageType::MsgSnapshot, 0);
        m.mut_snapshot().mut_metadata().index = u64::MAX - 1;
        assert_eq!(impossible(&m, 40), Some("impossible_value"));
        let mut m = message(MessageType::MsgAppend, 0);
        m.mut_entries().push(raft::eraftpb::Entry {
            index: MAX_PLAUSIBLE + 1,
            ..Default::default()
        });
        assert_eq!(impossible(&m, 40), Some("impossible_value"));
        let mut m = message(MessageType::MsgAppend, 0);
        m.index = MAX_PLAUSIBLE;
        m.term = MAX_PLAUSIBLE;
        assert_eq!(impossible(&m, 40), None, "large but reachable");
    }
}
