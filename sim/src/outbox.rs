//! [`Outbox`]: the messages of one Ready on their way out, and what raft-rs must be told about
//! them afterwards, as the production raft loop does: a peer that could not be reached
//! (`report_unreachable`, so its progress probes again) and how each snapshot went
//! (`report_snapshot`, or the leader waits for it forever).
//!
//! The reports are made after every message was sent, once the caller can borrow the peer
//! again. Both only ever move a follower's progress into probing, so their order among
//! themselves does not matter.

use surge_raftstore::raft::eraftpb::{Message, MessageType};
use surge_raftstore::raft::{RawNode, SnapshotStatus, Storage};

/// What sending one Ready's messages left to report.
#[derive(Debug, Default)]
pub struct Outbox {
    unreachable: Vec<u64>,
    /// (receiver, whether it went out) per snapshot message.
    snapshots: Vec<(u64, bool)>,
}

impl Outbox {
    /// Sends every message through `send`, which says whether the message went out.
    pub fn send(messages: Vec<Message>, mut send: impl FnMut(Message) -> bool) -> Outbox {
        let mut outbox = Outbox::default();
        for msg in messages {
            let to = msg.to;
            let is_snapshot = msg.get_msg_type() == MessageType::MsgSnapshot;
            let sent = send(msg);
            if !sent {
                outbox.unreachable.push(to);
            }
            if is_snapshot {
                outbox.snapshots.push((to, sent));
            }
        }
        outbox
    }

    /// How many of the messages were snapshots, sent or not.
    pub fn snapshots(&self) -> u64 {
        self.snapshots.len() as u64
    }

    /// Tells the sending peer what became of its messages.
    pub fn report<T: Storage>(self, node: &mut RawNode<T>) {
        for to in self.unreachable {
            node.report_unreachable(to);
        }
        for (to, sent) in self.snapshots {
            let status = if sent {
                SnapshotStatus::Finish
            } else {
                SnapshotStatus::Failure
            };
            node.report_snapshot(to, status);
        }
    }
}
