//! What the loop tells the rest of the process about its groups without a round trip: a
//! [`GroupStatus`] per group on the [`StatusBoard`], refreshed after every round that touched
//! the group, and — once per heartbeat, on request — the fuller [`GroupStats`] (configuration
//! and, on leaders, every follower's replication), for the coordinator's scheduler.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use raft::eraftpb::ConfState;
use raft::{ProgressState, StateRole};

use crate::engine::Engine;
use crate::metrics::RaftMetrics;
use crate::peer::Peer;
use crate::state_machine::StateMachine;

/// What the loop last published about one of its groups.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GroupStatus {
    pub role: Option<StateRole>,
    pub term: u64,
    /// Replica id of the leader this replica knows, 0 if none.
    pub leader: u64,
    pub commit: u64,
    pub applied: u64,
    pub last_index: u64,
    /// The membership epoch of the applied configuration.
    pub epoch: u64,
}

impl GroupStatus {
    pub fn is_leader(&self) -> bool {
        self.role == Some(StateRole::Leader)
    }
}

/// The published status of every group of the loop.
pub type StatusBoard = Arc<RwLock<HashMap<u64, GroupStatus>>>;

/// How a leader replicates to one follower (raft-rs's progress, copied out).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Replication {
    pub id: u64,
    pub matched: u64,
    pub next_index: u64,
    pub state: ReplicationState,
    pub pending_snapshot: u64,
    pub recent_active: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplicationState {
    Probe,
    Replicate,
    Snapshot,
}

impl ReplicationState {
    pub fn as_str(self) -> &'static str {
        match self {
            ReplicationState::Probe => "probe",
            ReplicationState::Replicate => "replicate",
            ReplicationState::Snapshot => "snapshot",
        }
    }
}

/// One group's configuration and replication, as of the moment it was asked for.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupStats {
    pub group: u64,
    pub status: GroupStatus,
    /// The applied configuration (its epoch is `status.epoch`).
    pub conf: ConfState,
    /// A membership change is proposed and not applied yet.
    pub pending_conf: bool,
    /// Leaders only: every other replica.
    pub replication: Vec<Replication>,
}

pub(crate) fn status_of<E: Engine, S: StateMachine>(peer: &Peer<E, S>) -> GroupStatus {
    GroupStatus {
        role: Some(peer.role()),
        term: peer.term(),
        leader: peer.leader_id(),
        commit: peer.commit_index(),
        applied: peer.applied_index(),
        last_index: peer.node.raft.raft_log.last_index(),
        epoch: peer.epoch(),
    }
}

pub(crate) fn stats_of<E: Engine, S: StateMachine>(peer: &Peer<E, S>) -> GroupStats {
    let replication = if peer.is_leader() {
        let mut all: Vec<Replication> = peer
            .node
            .raft
            .prs()
            .iter()
            .filter(|(id, _)| **id != peer.id())
            .map(|(id, pr)| Replication {
                id: *id,
                matched: pr.matched,
                next_index: pr.next_idx,
                state: match pr.state {
                    ProgressState::Probe => ReplicationState::Probe,
                    ProgressState::Replicate => ReplicationState::Replicate,
                    ProgressState::Snapshot => ReplicationState::Snapshot,
                },
                pending_snapshot: pr.pending_snapshot,
                recent_active: pr.recent_active,
            })
            .collect();
        all.sort_by_key(|r| r.id);
        all
    } else {
        Vec::new()
    };
    GroupStats {
        group: peer.group(),
        status: status_of(peer),
        conf: peer.conf_state().clone(),
        pending_conf: peer.node.raft.has_pending_conf(),
        replication,
    }
}

/// Publishes `peer`'s status on the board and in the metrics.
pub(crate) fn publish<E: Engine, S: StateMachine>(peer: &Peer<E, S>, board: &StatusBoard) {
    let status = status_of(peer);
    if let Ok(mut board) = board.write() {
        board.insert(peer.group(), status);
    }
    let m = RaftMetrics::get();
    let label = peer.group().to_string();
    let role = match peer.role() {
        StateRole::Follower => 0,
        StateRole::Candidate => 1,
        StateRole::Leader => 2,
        StateRole::PreCandidate => 3,
    };
    m.role.with_label_values(&[&label]).set(role);
    m.term.with_label_values(&[&label]).set(status.term as i64);
    m.commit_index
        .with_label_values(&[&label])
        .set(status.commit as i64);
    m.applied_index
        .with_label_values(&[&label])
        .set(status.applied as i64);
    let lag = if peer.is_leader() {
        peer.node
            .raft
            .prs()
            .iter()
            .map(|(_, p)| status.last_index.saturating_sub(p.matched))
            .max()
            .unwrap_or(0)
    } else {
        0
    };
    m.replication_lag
        .with_label_values(&[&label])
        .set(lag as i64);
}
