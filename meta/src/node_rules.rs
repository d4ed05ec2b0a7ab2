//! The rules of nodes' states and shards' membership in the metadata, as pure functions over
//! the state machine's maps (it persists what they change).
//!
//! Node states: Up ↔ Down follow heartbeats; `node drain` takes an Up or Down node to
//! Draining, refused up front when fewer than R other up nodes would remain; the scheduler
//! takes a drained node to Removable; `node remove` retires a node that holds no replica.

use std::collections::BTreeMap;

use crate::meta::{MetaError, NodeInfo, NodeState, ShardInfo};

/// Heartbeat-driven moves only: Up ↔ Down, and a drained node becoming Removable. Any other
/// request (e.g. "up" for a node being drained) leaves the state as it is.
pub fn set_state(
    nodes: &mut BTreeMap<u64, NodeInfo>,
    node_id: u64,
    state: NodeState,
    at_ms: u64,
) -> Result<bool, MetaError> {
    let node = nodes
        .get_mut(&node_id)
        .ok_or(MetaError::UnknownNode(node_id))?;
    let allowed = matches!(
        (node.state, state),
        (NodeState::Up, NodeState::Down)
            | (NodeState::Down, NodeState::Up)
            | (NodeState::Draining, NodeState::Removable)
    );
    if allowed {
        node.state = state;
        node.state_changed_at_ms = at_ms;
    }
    Ok(allowed)
}

/// Starts draining `node_id`; idempotent.
pub fn drain(
    nodes: &mut BTreeMap<u64, NodeInfo>,
    replicas: usize,
    node_id: u64,
    at_ms: u64,
) -> Result<bool, MetaError> {
    let state = nodes
        .get(&node_id)
        .ok_or(MetaError::UnknownNode(node_id))?
        .state;
    match state {
        NodeState::Draining | NodeState::Removable => return Ok(false),
        NodeState::Removed => {
            return Err(MetaError::DrainRefused {
                node: node_id,
                reason: "it was removed".into(),
            })
        }
        NodeState::Up | NodeState::Down => {}
    }
    let others = nodes
        .values()
        .filter(|n| n.id != node_id && n.state == NodeState::Up)
        .count();
    if others < replicas {
        return Err(MetaError::DrainRefused {
            node: node_id,
            reason: format!(
                "only {others} other up node(s) would remain, and every shard needs {replicas} replicas on distinct nodes"
            ),
        });
    }
    if let Some(node) = nodes.get_mut(&node_id) {
        node.state = NodeState::Draining;
        node.state_changed_at_ms = at_ms;
    }
    Ok(true)
}

/// Retires `node_id`, which holds `held` replicas; refused while it holds any. Idempotent.
pub fn remove(
    nodes: &mut BTreeMap<u64, NodeInfo>,
    held: usize,
    node_id: u64,
    at_ms: u64,
) -> Result<bool, MetaError> {
    let node = nodes
        .get_mut(&node_id)
        .ok_or(MetaError::UnknownNode(node_id))?;
    if node.state == NodeState::Removed {
        return Ok(false);
    }
    if held > 0 {
        return Err(MetaError::NodeHoldsReplicas {
            node: node_id,
            replicas: held,
        });
    }
    node.state = NodeState::Removed;
    node.state_changed_at_ms = at_ms;
    Ok(true)
}

/// Places shards that have no replicas yet; answers the shards it placed. Everything is
/// checked before anything changes, so a bad placement changes nothing.
pub fn place(
    shards: &mut BTreeMap<u32, ShardInfo>,
    nodes: &BTreeMap<u64, NodeInfo>,
    assignments: Vec<(u32, Vec<u64>)>,
) -> Result<Vec<u32>, MetaError> {
    for (shard, replicas) in &assignments {
        if !shards.contains_key(shard) {
            return Err(MetaError::UnknownShard(*shard));
        }
        for (i, node) in replicas.iter().enumerate() {
            if !nodes.contains_key(node) || replicas[..i].contains(node) {
                return Err(MetaError::BadPlacement {
                    shard: *shard,
                    node: *node,
                });
            }
        }
    }
    let mut placed = Vec::new();
    // Initial placement only: a shard placed meanwhile (by an earlier leader whose command
    // this one did not see yet) keeps its replicas.
    for (shard_id, replicas) in assignments {
        if let Some(shard) = shards.get_mut(&shard_id) {
            if shard.replicas.is_empty() {
                *shard = ShardInfo::placed(shard_id, shard.epoch + 1, replicas);
                placed.push(shard_id);
            }
        }
    }
    Ok(placed)
}

/// Records the membership of a newer epoch; reports arrive late or twice, so an epoch not
/// newer than the recorded one changes nothing. True if it changed.
pub fn update_membership(
    info: &mut ShardInfo,
    epoch: u64,
    voters: Vec<u64>,
    learners: Vec<u64>,
    outgoing: Vec<u64>,
) -> bool {
    if epoch <= info.epoch {
        return false;
    }
    let mut replicas: Vec<u64> = voters
        .iter()
        .chain(&learners)
        .chain(&outgoing)
        .copied()
        .collect();
    replicas.sort_unstable();
    replicas.dedup();
    *info = ShardInfo {
        id: info.id,
        epoch,
        replicas,
        voters,
        learners,
        outgoing,
    };
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: u64, state: NodeState) -> NodeInfo {
        NodeInfo {
            id,
            instance_id: format!("i{id}"),
            address: format!("127.0.0.1:{}", 7200 + id),
            http_address: String::new(),
            peer_address: String::new(),
            zone: String::new(),
            state,
            registered_at_ms: 0,
            state_changed_at_ms: 0,
            certificate_name: String::new(),
        }
    }

    fn nodes(states: &[NodeState]) -> BTreeMap<u64, NodeInfo> {
        states
            .iter()
            .enumerate()
            .map(|(i, s)| (i as u64 + 1, node(i as u64 + 1, *s)))
            .collect()
    }

    #[test]
    fn only_heartbeat_moves_and_draining_to_removable_change_state() -> Result<(), MetaError> {
        use NodeState::*;
        // (from, asked, changed)
        let table = [
            (Up, Down, true),
            (Down, Up, true),
            (Draining, Removable, true),
            (Draining, Up, false),
            (Draining, Down, false),
            (Removable, Up, false),
            (Removed, Up, false),
            (Up, Removable, false),
            (Up, Up, false),
        ];
        for (from, asked, changed) in table {
            let mut n = nodes(&[from]);
            assert_eq!(
                set_state(&mut n, 1, asked, 5)?,
                changed,
                "{from:?} → {asked:?}"
            );
            let now = n[&1].state;
            assert_eq!(now, if changed { asked } else { from });
        }
        Ok(())
    }

    #[test]
    fn a_drain_that_would_leave_too_few_nodes_is_refused_and_changes_nothing() {
        use NodeState::*;
        let mut n = nodes(&[Up, Up, Up]);
        let before = n.clone();
        let e = drain(&mut n, 3, 2, 9);
        assert!(
            matches!(&e, Err(MetaError::DrainRefused { node: 2, reason }) if reason.contains("only 2 other")),
            "{e:?}"
        );
        assert_eq!(n, before);
        let mut n = nodes(&[Up, Up, Up, Down]);
        assert!(
            drain(&mut n, 3, 4, 9).is_ok(),
            "a down node drains onto 3 up ones"
        );
        assert_eq!(n[&4].state, Draining);
        assert_eq!(drain(&mut n, 3, 4, 10), Ok(false), "idempotent");
        assert!(drain(&mut n, 3, 9, 10).is_err(), "unknown node");
        let mut n = nodes(&[Up, Up, Draining, Up]);
        assert!(
            drain(&mut n, 3, 4, 9).is_err(),
            "a draining node is not eligible"
        );
    }

    #[test]
    fn a_node_holding_replicas_cannot_be_removed() {
        let mut n = nodes(&[NodeState::Removable]);
        assert_eq!(
            remove(&mut n, 4, 1, 1),
            Err(MetaError::NodeHoldsReplicas {
                node: 1,
                replicas: 4
            })
        );
        assert_eq!(n[&1].state, NodeState::Removable);
        assert_eq!(remove(&mut n, 0, 1, 1), Ok(true));
        assert_eq!(remove(&mut n, 0, 1, 1), Ok(false));
        assert_eq!(n[&1].state, NodeState::Removed);
    }

    #[test]
    fn membership_only_moves_to_newer_epochs() {
        let mut info = ShardInfo::placed(3, 2, vec![1, 2, 3]);
        assert!(update_membership(
            &mut info,
            3,
            vec![1, 2, 3],
            vec![4],
            vec![]
        ));
        assert_eq!(info.replicas, vec![1, 2, 3, 4]);
        assert!(!update_membership(&mut info, 3, vec![9], vec![], vec![]));
        assert!(!update_membership(&mut info, 2, vec![9], vec![], vec![]));
        assert!(update_membership(
            &mut info,
            5,
            vec![1, 2, 4],
            vec![3],
            vec![1, 2, 3]
        ));
        assert_eq!(info.replicas, vec![1, 2, 3, 4]);
        assert!(info.is_voter(3), "an outgoing voter still votes");
        assert_eq!(info.epoch, 5);
    }
}
