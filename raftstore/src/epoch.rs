//! Membership epochs: every applied membership change of a group bumps its epoch, so one
//! epoch names one configuration, the same on every replica that reached it. Messages carry
//! their sender's epoch ([`surge_proto::v1::RaftEnvelope::epoch`]), and a replica refuses the
//! ones that cannot be meant for it (TiKV's `check_msg`):
//!
//! - a message from an epoch at or after ours is taken: we may simply be behind;
//! - an older one from a sender that is still a member (it is behind) is taken too — unless
//!   it is older than the epoch that member joined at: Raft ids are node ids, so a node
//!   removed from a group and later added back holds a new replica under the old id, and a
//!   message from before it joined is its older incarnation's. Refused, and that older replica
//!   told to destroy itself (its node then creates the fresh one). A message at epoch 0 comes
//!   from a replica with no state at all, never from an older incarnation;
//! - an older one from a sender that is no member at our epoch comes from a replica that was
//!   removed: refused, and the sender is told to destroy itself (a tombstone notice);
//! - a replica that holds no state yet (a learner waiting for its first snapshot) was created
//!   at an epoch and refuses anything older, without a notice: it knows no members to judge by.

use raft::eraftpb::ConfState;

/// What to do with an inbound message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Accept,
    /// Not for this replica; nothing to tell the sender.
    Drop,
    /// The sender was removed from the group: drop the message and send it a tombstone
    /// notice at our epoch.
    StaleSender,
    /// The sender's id is a member, but it joined at `since`, after this message was sent:
    /// the message is an older incarnation's; drop it and tell that replica.
    OlderIncarnation {
        since: u64,
    },
}

/// True if `id` is in any part of `cs`: voters, outgoing voters, learners, or learners to be.
pub fn is_member(cs: &ConfState, id: u64) -> bool {
    cs.voters.contains(&id)
        || cs.voters_outgoing.contains(&id)
        || cs.learners.contains(&id)
        || cs.learners_next.contains(&id)
}

/// Judges a message of epoch `msg_epoch` from replica `from`, received by a replica at
/// `local_epoch` with configuration `cs` (empty while it holds no state), in which `from`
/// joined at epoch `since` (0 if unknown).
pub fn check(local_epoch: u64, cs: &ConfState, from: u64, since: u64, msg_epoch: u64) -> Verdict {
    if msg_epoch >= local_epoch {
        return Verdict::Accept;
    }
    let initialized = !cs.voters.is_empty() || !cs.learners.is_empty();
    if !initialized {
        return Verdict::Drop;
    }
    if !is_member(cs, from) {
        return Verdict::StaleSender;
    }
    // Epoch 0 is a replica with no state at all (a coordinator joining empty): it has no
    // older progress to mislead anyone with.
    if msg_epoch != 0 && msg_epoch < since {
        return Verdict::OlderIncarnation { since };
    }
    Verdict::Accept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(voters: &[u64], learners: &[u64]) -> ConfState {
        ConfState {
            voters: voters.to_vec(),
            learners: learners.to_vec(),
            ..ConfState::default()
        }
    }

    #[test]
    fn verdicts() {
        let cs = conf(&[1, 2, 4], &[5]);
        let empty = ConfState::default();
        let joint = ConfState {
            voters: vec![1, 2, 4],
            voters_outgoing: vec![1, 2, 3],
            learners_next: vec![3],
            ..ConfState::default()
        };
        // (local epoch, conf, from, from joined at, message epoch, verdict)
        let table: [(u64, &ConfState, u64, u64, u64, Verdict); 14] = [
            (5, &cs, 3, 2, 5, Verdict::Accept),
            (5, &cs, 3, 2, 7, Verdict::Accept),
            (5, &cs, 1, 2, 3, Verdict::Accept),
            (5, &cs, 5, 4, 4, Verdict::Accept),
            (5, &cs, 3, 0, 4, Verdict::StaleSender),
            (5, &cs, 9, 0, 0, Verdict::StaleSender),
            (5, &joint, 3, 2, 4, Verdict::Accept),
            (7, &empty, 1, 0, 6, Verdict::Drop),
            (7, &empty, 1, 0, 7, Verdict::Accept),
            (0, &empty, 1, 0, 0, Verdict::Accept),
            // Node 5 was re-added at epoch 5: its messages from epoch 4 are an older replica's.
            (6, &cs, 5, 5, 4, Verdict::OlderIncarnation { since: 5 }),
            (6, &cs, 5, 5, 5, Verdict::Accept),
            (6, &cs, 5, 0, 4, Verdict::Accept),
            // A joining replica with no state at all.
            (6, &cs, 5, 5, 0, Verdict::Accept),
        ];
        for (local, cs, from, since, epoch, want) in table {
            assert_eq!(
                check(local, cs, from, since, epoch),
                want,
                "local {local}, from {from} (since {since}) at {epoch}, conf {cs:?}"
            );
        }
    }
}
