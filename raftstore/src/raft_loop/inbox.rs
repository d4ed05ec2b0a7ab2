//! The loop's inbox: two bounded lanes, so Raft traffic and client requests never share a
//! queue. The peer lane carries what keeps the groups alive (messages from other replicas,
//! snapshot and reachability reports, replica creation and removal, stop); the client lane
//! carries what servers ask on behalf of callers (proposals, reads, inspections). A flood of
//! client requests fills only its own lane, whose senders are refused (`Busy`) while a
//! heartbeat still gets in, and each round takes the peer lane first.
//!
//! The loop blocks on a one-slot wake channel: a sender queues its message, then leaves a wake
//! token unless one is pending already, so a message is never queued without the loop waking
//! after it.

use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::time::Duration;

/// Which lane a message goes in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Lane {
    Peer,
    Client,
}

/// The sending side, held by every handle.
pub(crate) struct InboxSender<T> {
    peer: SyncSender<T>,
    client: SyncSender<T>,
    wake: SyncSender<()>,
}

impl<T> Clone for InboxSender<T> {
    fn clone(&self) -> Self {
        InboxSender {
            peer: self.peer.clone(),
            client: self.client.clone(),
            wake: self.wake.clone(),
        }
    }
}

impl<T> InboxSender<T> {
    fn lane(&self, lane: Lane) -> &SyncSender<T> {
        match lane {
            Lane::Peer => &self.peer,
            Lane::Client => &self.client,
        }
    }

    fn wake(&self) {
        // Full: a wake is pending and the loop will see this message. Disconnected: the
        // loop is gone, and the send before this one has failed already.
        let _ = self.wake.try_send(());
    }

    /// Queues `msg` in `lane` if it has room.
    pub(crate) fn try_send(&self, lane: Lane, msg: T) -> Result<(), TrySendError<T>> {
        self.lane(lane).try_send(msg)?;
        self.wake();
        Ok(())
    }

    /// Queues `msg` in `lane`, waiting for room; false if the loop is gone.
    pub(crate) fn send(&self, lane: Lane, msg: T) -> bool {
        let sent = self.lane(lane).send(msg).is_ok();
        self.wake();
        sent
    }
}

/// The receiving side, the loop's.
pub(crate) struct Inbox<T> {
    peer: Receiver<T>,
    client: Receiver<T>,
    wake: Receiver<()>,
}

/// An inbox with `capacity` messages per lane, and its sender.
pub(crate) fn inbox<T>(capacity: usize) -> (Inbox<T>, InboxSender<T>) {
    let (peer_tx, peer) = sync_channel(capacity);
    let (client_tx, client) = sync_channel(capacity);
    let (wake_tx, wake) = sync_channel(1);
    let sender = InboxSender {
        peer: peer_tx,
        client: client_tx,
        wake: wake_tx,
    };
    (Inbox { peer, client, wake }, sender)
}

impl<T> Inbox<T> {
    /// Waits up to `timeout` for a message to arrive; false once every sender is gone.
    pub(crate) fn wait(&self, timeout: Duration) -> bool {
        !matches!(
            self.wake.recv_timeout(timeout),
            Err(RecvTimeoutError::Disconnected)
        )
    }

    /// Moves up to `max` queued messages into `out`, the peer lane's first; true if that
    /// filled `max` (more may be waiting: the next round should not block).
    pub(crate) fn drain(&self, max: usize, out: &mut Vec<T>) -> bool {
        for lane in [&self.peer, &self.client] {
            while out.len() < max {
                match lane.try_recv() {
                    Ok(msg) => out.push(msg),
                    Err(_) => break,
                }
            }
        }
        out.len() >= max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_client_lane_never_keeps_out_a_peer_message() {
        let (inbox, tx) = inbox::<u32>(4);
        for n in 0..4 {
            tx.try_send(Lane::Client, 100 + n).expect("room");
        }
        assert!(matches!(
            tx.try_send(Lane::Client, 104),
            Err(TrySendError::Full(104))
        ));
        tx.try_send(Lane::Peer, 1)
            .expect("the peer lane has its own room");
        assert!(inbox.wait(Duration::ZERO));
        let mut out = Vec::new();
        assert!(!inbox.drain(16, &mut out));
        assert_eq!(out, vec![1, 100, 101, 102, 103], "peer messages first");
    }

    #[test]
    fn a_bounded_drain_says_more_is_waiting_and_keeps_the_rest() {
        let (inbox, tx) = inbox::<u32>(8);
        for n in 0..5 {
            tx.try_send(Lane::Client, n).expect("room");
        }
        tx.try_send(Lane::Peer, 50).expect("room");
        let mut out = Vec::new();
        assert!(inbox.drain(3, &mut out));
        assert_eq!(out, vec![50, 0, 1]);
        out.clear();
        assert!(!inbox.drain(4, &mut out));
        assert_eq!(out, vec![2, 3, 4]);
    }

    #[test]
    fn every_queued_message_wakes_the_loop_and_a_gone_sender_ends_it() {
        let (inbox, tx) = inbox::<u32>(8);
        tx.try_send(Lane::Peer, 1).expect("room");
        tx.try_send(Lane::Peer, 2).expect("room");
        // One token for both: the loop wakes once and drains both.
        assert!(inbox.wake.try_recv().is_ok());
        assert!(inbox.wake.try_recv().is_err());
        let mut out = Vec::new();
        inbox.drain(16, &mut out);
        assert_eq!(out, vec![1, 2]);
        // The token was taken before the drain: a message queued now leaves a fresh one.
        tx.try_send(Lane::Client, 3).expect("room");
        assert!(inbox.wake.try_recv().is_ok());
        drop(tx);
        let mut rest = Vec::new();
        inbox.drain(16, &mut rest);
        assert_eq!(rest, vec![3]);
        assert!(!inbox.wait(Duration::from_secs(5)));
    }
}
