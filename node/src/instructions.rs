//! [`Executor`]: carries out the operator steps the coordinator sends in heartbeat answers
//! for shards this node leads — membership changes through the shard's own Raft log, and
//! leadership transfers. A step names the epoch it was computed at; a shard at another epoch
//! (the step already happened, or something else did) ignores it, and the loop checks the
//! epoch again when it proposes. At most one change per shard is in flight here.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use surge_proto::v1::shard_instruction::Kind;
use surge_proto::v1::{ConfChangeStep, ShardInstruction};
use surge_raftstore::raft::eraftpb::{
    ConfChangeSingle, ConfChangeTransition, ConfChangeType, ConfChangeV2,
};
use tokio::sync::Notify;
use tracing::{info, warn};

use crate::replicas::ShardHandle;

/// The Raft membership change a step asks for; an error names what is wrong with the step.
pub fn conf_change_of(step: &ConfChangeStep) -> Result<ConfChangeV2, String> {
    if step.leave_joint {
        let named = step.add_learners.len() + step.promote.len() + step.demote.len();
        if named + step.remove.len() > 0 {
            return Err("leave_joint: carries no other change".into());
        }
        return Ok(ConfChangeV2::default());
    }
    let lists = [
        (&step.add_learners, ConfChangeType::AddLearnerNode),
        (&step.promote, ConfChangeType::AddNode),
        (&step.demote, ConfChangeType::AddLearnerNode),
        (&step.remove, ConfChangeType::RemoveNode),
    ];
    let mut seen = HashSet::new();
    let mut changes = Vec::new();
    for (ids, ty) in lists {
        for id in ids {
            if *id == 0 || !seen.insert(*id) {
                return Err(format!("node {id}: zero, or named twice in one change"));
            }
            let mut single = ConfChangeSingle {
                node_id: *id,
                ..ConfChangeSingle::default()
            };
            single.set_change_type(ty);
            changes.push(single);
        }
    }
    if changes.is_empty() {
        return Err("the change names no node".into());
    }
    let mut cc = ConfChangeV2::default();
    cc.set_changes(changes.into());
    cc.set_transition(if step.joint {
        ConfChangeTransition::Explicit
    } else {
        ConfChangeTransition::Auto
    });
    Ok(cc)
}

pub struct Executor {
    handle: ShardHandle,
    in_flight: Arc<Mutex<HashSet<u32>>>,
    /// Asks for an early heartbeat, so the coordinator sees a new epoch at once.
    wanted: Arc<Notify>,
}

impl Executor {
    pub fn new(handle: ShardHandle, wanted: Arc<Notify>) -> Executor {
        Executor {
            handle,
            in_flight: Arc::default(),
            wanted,
        }
    }

    /// Starts every step this node can take now.
    pub fn run(&self, instructions: &[ShardInstruction]) {
        for i in instructions {
            let group = u64::from(i.shard);
            let Some(status) = self.handle.status(group) else {
                continue;
            };
            if !status.is_leader() || status.epoch != i.epoch {
                continue;
            }
            match &i.kind {
                Some(Kind::TransferLeader(t)) => {
                    info!(
                        shard = i.shard,
                        to = t.to,
                        operator = i.operator_id,
                        "moving leadership"
                    );
                    let _ = self.handle.transfer_leader(group, t.to);
                }
                Some(Kind::Change(step)) => self.change(i, step),
                None => {}
            }
        }
    }

    fn change(&self, i: &ShardInstruction, step: &ConfChangeStep) {
        let cc = match conf_change_of(step) {
            Ok(cc) => cc,
            Err(e) => {
                warn!(
                    shard = i.shard,
                    operator = i.operator_id,
                    error = e,
                    "unusable operator step"
                );
                return;
            }
        };
        let fresh = self
            .in_flight
            .lock()
            .map(|mut f| f.insert(i.shard))
            .unwrap_or(false);
        if !fresh {
            return;
        }
        let (handle, in_flight, wanted) = (
            self.handle.clone(),
            self.in_flight.clone(),
            self.wanted.clone(),
        );
        let (shard, epoch, operator) = (i.shard, i.epoch, i.operator_id);
        tokio::spawn(async move {
            let result = handle
                .conf_change_at(u64::from(shard), cc, Some(epoch))
                .await;
            match result {
                Ok(cs) => {
                    info!(shard, operator, from_epoch = epoch, voters = ?cs.voters, learners = ?cs.learners, "membership changed");
                    wanted.notify_one();
                }
                Err(e) => {
                    info!(shard, operator, epoch, error = %e, "membership change not made; the coordinator will ask again")
                }
            }
            if let Ok(mut f) = in_flight.lock() {
                f.remove(&shard);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(cc: &ConfChangeV2) -> Vec<(u64, ConfChangeType)> {
        cc.get_changes()
            .iter()
            .map(|c| (c.node_id, c.get_change_type()))
            .collect()
    }

    #[test]
    fn steps_become_raft_changes() -> Result<(), String> {
        let add = conf_change_of(&ConfChangeStep {
            add_learners: vec![4],
            ..ConfChangeStep::default()
        })?;
        assert_eq!(kinds(&add), vec![(4, ConfChangeType::AddLearnerNode)]);
        assert_eq!(add.get_transition(), ConfChangeTransition::Auto);
        let joint = conf_change_of(&ConfChangeStep {
            promote: vec![4],
            demote: vec![1],
            joint: true,
            ..ConfChangeStep::default()
        })?;
        assert_eq!(
            kinds(&joint),
            vec![
                (4, ConfChangeType::AddNode),
                (1, ConfChangeType::AddLearnerNode)
            ]
        );
        assert_eq!(joint.get_transition(), ConfChangeTransition::Explicit);
        let leave = conf_change_of(&ConfChangeStep {
            leave_joint: true,
            ..ConfChangeStep::default()
        })?;
        assert!(leave.get_changes().is_empty());
        let remove = conf_change_of(&ConfChangeStep {
            remove: vec![1],
            ..ConfChangeStep::default()
        })?;
        assert_eq!(kinds(&remove), vec![(1, ConfChangeType::RemoveNode)]);
        for bad in [
            ConfChangeStep::default(),
            ConfChangeStep {
                promote: vec![4],
                remove: vec![4],
                ..ConfChangeStep::default()
            },
            ConfChangeStep {
                leave_joint: true,
                remove: vec![2],
                ..ConfChangeStep::default()
            },
            ConfChangeStep {
                add_learners: vec![0],
                ..ConfChangeStep::default()
            },
        ] {
            assert!(conf_change_of(&bad).is_err(), "{bad:?} accepted");
        }
        Ok(())
    }
}
