//! Membership requests the loop carries out for its groups: a configuration change proposed
//! under an epoch check, and a leadership transfer to a caught-up member.

use raft::eraftpb::{ConfChangeType, ConfChangeV2};
use tracing::info;

use std::time::Instant;

use super::{RaftLoop, TRANSFER_MAX_LAG};
use crate::engine::Engine;
use crate::pending::Waiter;
use crate::raft_handle::RequestError;
use crate::state_machine::StateMachine;

impl<E: Engine, S: StateMachine> RaftLoop<E, S> {
    pub(super) fn on_conf_change(
        &mut self,
        group: u64,
        cc: ConfChangeV2,
        epoch: Option<u64>,
        deadline: Instant,
        reply: tokio::sync::oneshot::Sender<Result<raft::eraftpb::ConfState, RequestError>>,
    ) {
        let ctx = self.alloc_ctx();
        let Some(peer) = self.peers.get_mut(&group) else {
            let _ = reply.send(Err(RequestError::NoGroup(group)));
            return;
        };
        if !peer.is_leader() {
            let _ = reply.send(Err(Self::not_leader(peer)));
            return;
        }
        if let Some(want) = epoch.filter(|e| *e != peer.epoch()) {
            let _ = reply.send(Err(RequestError::Conflict(format!(
                "epoch: group {group} is at membership epoch {}, the change was meant for {want}",
                peer.epoch()
            ))));
            return;
        }
        let me = peer.id();
        let demotes_self = cc.get_changes().iter().any(|c| {
            c.node_id == me
                && matches!(
                    c.get_change_type(),
                    ConfChangeType::RemoveNode | ConfChangeType::AddLearnerNode
                )
        });
        if demotes_self {
            // raft-rs 0.7 panics committing entries after a leader removed itself (TiKV
            // refuses this too): leadership moves first.
            let _ = reply.send(Err(RequestError::Refused(
                "a leader does not remove or demote itself; transfer leadership first".into(),
            )));
            return;
        }
        if peer.node.raft.has_pending_conf()
            || !peer.conf_state().voters_outgoing.is_empty() && !cc.changes.is_empty()
        {
            let _ = reply.send(Err(RequestError::Conflict(
                "another membership change is in progress; retry when it completes".into(),
            )));
            return;
        }
        let result = peer
            .node
            .propose_conf_change(ctx.to_be_bytes().to_vec(), cc);
        let result = result.map_err(|e| match e {
            raft::Error::ProposalDropped => RequestError::Dropped,
            e => RequestError::Refused(e.to_string()),
        });
        self.track(group, ctx, deadline, Waiter::ConfChange(reply), result);
    }

    pub(super) fn on_transfer_leader(&mut self, group: u64, to: u64) {
        let Some(peer) = self.peers.get_mut(&group) else {
            return;
        };
        if !peer.is_leader() || peer.id() == to {
            return;
        }
        if !peer.conf_state().voters.contains(&to) || peer.node.raft.has_pending_conf() {
            info!(
                group,
                to, "leader transfer skipped: not a voter, or a membership change is pending"
            );
            return;
        }
        let last = peer.node.raft.raft_log.last_index();
        let matched = peer.node.raft.prs().get(to).map_or(0, |p| p.matched);
        if last.saturating_sub(matched) > TRANSFER_MAX_LAG {
            info!(
                group,
                to, last, matched, "leader transfer skipped: the target lags"
            );
            return;
        }
        info!(group, to, "transferring leadership");
        peer.node.transfer_leader(to);
    }
}
