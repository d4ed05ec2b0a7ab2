//! The state machine's commands, applied to an in-memory engine and reloaded.

use super::*;
use crate::operator::{OperatorKind, Outcome, Reason, Step};
use surge_storage::{Family, MemEngine};

fn apply(sm: &mut MetaState<MemEngine>, cmd: Command) -> Output {
    let mut batch = WriteBatch::default();
    let out = sm.apply(1, &serde_json::to_vec(&cmd).unwrap_or_default(), &mut batch);
    sm.engine
        .write(&batch, true)
        .unwrap_or_else(|e| panic!("{e}"));
    out
}

fn init(token: &str) -> Command {
    Command::InitCluster {
        cluster_id: "c1".into(),
        shards: 4,
        replicas: 3,
        token: token.into(),
        at_ms: 5,
    }
}

fn register(instance: &str) -> Command {
    Command::RegisterNode {
        instance_id: instance.into(),
        address: "127.0.0.1:1".into(),
        http_address: String::new(),
        peer_address: "127.0.0.1:2".into(),
        zone: "z".into(),
        at_ms: 6,
        certificate_name: format!("cert-{instance}"),
    }
}

#[test]
fn init_runs_once_and_a_retry_with_the_same_token_succeeds(
) -> Result<(), Box<dyn std::error::Error>> {
    let mut sm = MetaState::load(Arc::new(MemEngine::new(&[Family::META])))?;
    assert!(matches!(
        apply(&mut sm, init("t1")),
        Ok(Reply::Initialized(_))
    ));
    assert!(matches!(
        apply(&mut sm, init("t1")),
        Ok(Reply::Initialized(_))
    ));
    assert_eq!(
        apply(&mut sm, init("t2")),
        Err(MetaError::AlreadyInitialized {
            cluster_id: "c1".into()
        })
    );
    assert_eq!(sm.shards.len(), 4);
    Ok(())
}

#[test]
fn another_certificate_cannot_take_a_registration_over() -> Result<(), Box<dyn std::error::Error>> {
    let mut sm = MetaState::load(Arc::new(MemEngine::new(&[Family::META])))?;
    apply(&mut sm, init("t"))?;
    let first = apply(&mut sm, register("a"))?;
    // The same data dir (instance id) and addresses, with another node's certificate.
    let mut stolen = register("a");
    if let Command::RegisterNode {
        certificate_name, ..
    } = &mut stolen
    {
        *certificate_name = "node-4".into();
    }
    assert!(matches!(
        apply(&mut sm, stolen),
        Err(MetaError::CertificateMismatch { ref bound, .. }) if bound == "cert-a"
    ));
    // The rightful certificate still gets its id.
    assert_eq!(apply(&mut sm, register("a"))?, first);
    Ok(())
}

#[test]
fn registration_is_idempotent_per_instance_and_survives_reload(
) -> Result<(), Box<dyn std::error::Error>> {
    let engine = Arc::new(MemEngine::new(&[Family::META]));
    let mut sm = MetaState::load(engine.clone())?;
    assert_eq!(
        apply(&mut sm, register("a")),
        Err(MetaError::NotInitialized)
    );
    apply(&mut sm, init("t"))?;
    let first = apply(&mut sm, register("a"))?;
    assert_eq!(apply(&mut sm, register("a"))?, first);
    assert_eq!(
        apply(&mut sm, register("b"))?,
        Reply::Registered {
            node_id: 2,
            cluster_id: "c1".into()
        }
    );
    let reloaded = MetaState::load(engine)?;
    assert_eq!(reloaded.nodes, sm.nodes);
    assert_eq!(reloaded.shards, sm.shards);
    assert_eq!(reloaded.next_node_id, 3);
    Ok(())
}

#[test]
fn the_node_table_is_bounded_but_a_known_instance_still_registers(
) -> Result<(), Box<dyn std::error::Error>> {
    let mut sm = MetaState::load(Arc::new(MemEngine::new(&[Family::META])))?;
    apply(&mut sm, init("t"))?;
    for n in 0..MAX_NODES {
        apply(&mut sm, register(&format!("节点-{n}")))?;
    }
    assert_eq!(
        apply(&mut sm, register("one-too-many")),
        Err(MetaError::TooManyNodes { limit: MAX_NODES })
    );
    // A restart of a registered node is answered as before.
    assert!(matches!(
        apply(&mut sm, register("节点-7"))?,
        Reply::Registered { node_id: 8, .. }
    ));
    assert_eq!(sm.nodes.len(), MAX_NODES);
    Ok(())
}

#[test]
fn a_tenant_is_created_once_and_a_retry_with_its_key_succeeds(
) -> Result<(), Box<dyn std::error::Error>> {
    let engine = Arc::new(MemEngine::new(&[Family::META]));
    let mut sm = MetaState::load(engine.clone())?;
    let create = |key: &str| Command::CreateTenant {
        name: "acme".into(),
        key_hash: key.into(),
        at_ms: 7,
    };
    assert_eq!(
        apply(&mut sm, create("h1"))?,
        Reply::TenantCreated { tenant_id: 1 }
    );
    assert_eq!(
        apply(&mut sm, create("h1"))?,
        Reply::TenantCreated { tenant_id: 1 }
    );
    assert_eq!(
        apply(&mut sm, create("h2")),
        Err(MetaError::TenantExists {
            name: "acme".into(),
            id: 1
        })
    );
    let other = Command::CreateTenant {
        name: "globex".into(),
        key_hash: "h3".into(),
        at_ms: 8,
    };
    assert_eq!(
        apply(&mut sm, other)?,
        Reply::TenantCreated { tenant_id: 2 }
    );
    let reloaded = MetaState::load(engine)?;
    assert_eq!(reloaded.tenants, sm.tenants);
    assert_eq!(reloaded.next_tenant_id, 3);
    assert_eq!(reloaded.tenants[&1].key_hashes, vec!["h1".to_string()]);
    Ok(())
}

#[test]
fn unknown_nodes_and_bad_placements_change_nothing() -> Result<(), Box<dyn std::error::Error>> {
    let mut sm = MetaState::load(Arc::new(MemEngine::new(&[Family::META])))?;
    apply(&mut sm, init("t"))?;
    apply(&mut sm, register("a"))?;
    let before = sm.shards.clone();
    assert_eq!(
        apply(
            &mut sm,
            Command::SetNodeState {
                node_id: 9,
                state: NodeState::Down,
                at_ms: 1
            }
        ),
        Err(MetaError::UnknownNode(9))
    );
    let bad = Command::PlaceShards {
        assignments: vec![(0, vec![1]), (1, vec![1, 1])],
    };
    assert_eq!(
        apply(&mut sm, bad),
        Err(MetaError::BadPlacement { shard: 1, node: 1 })
    );
    assert_eq!(sm.shards, before);
    let good = Command::PlaceShards {
        assignments: vec![(0, vec![1])],
    };
    apply(&mut sm, good)?;
    assert_eq!(sm.shards[&0].epoch, 2);
    Ok(())
}

fn init_with_nodes(
    engine: Arc<MemEngine>,
    nodes: usize,
) -> Result<MetaState<MemEngine>, Box<dyn std::error::Error>> {
    let mut sm = MetaState::load(engine)?;
    apply(&mut sm, init("t"))?;
    for i in 0..nodes {
        apply(&mut sm, register(&format!("n{i}")))?;
    }
    Ok(sm)
}

#[test]
fn membership_updates_drains_removals_and_operators_survive_reload(
) -> Result<(), Box<dyn std::error::Error>> {
    let engine = Arc::new(MemEngine::new(&[Family::META]));
    let mut sm = init_with_nodes(engine.clone(), 4)?;
    apply(
        &mut sm,
        Command::PlaceShards {
            assignments: vec![(0, vec![1, 2, 3]), (1, vec![1, 2, 3])],
        },
    )?;
    // A learner on node 4 joins shard 0 at epoch 3.
    apply(
        &mut sm,
        Command::UpdateShardMembership {
            shard: 0,
            epoch: 3,
            voters: vec![1, 2, 3],
            learners: vec![4],
            outgoing: vec![],
        },
    )?;
    assert_eq!(sm.shards_of(4).len(), 1);
    // Node 4 holds a replica: it cannot be removed.
    assert_eq!(
        apply(
            &mut sm,
            Command::RemoveNode {
                node_id: 4,
                at_ms: 9
            }
        ),
        Err(MetaError::NodeHoldsReplicas {
            node: 4,
            replicas: 1
        })
    );
    // Draining node 1 leaves 3 up nodes for 3 replicas: allowed; node 2 then is not.
    apply(
        &mut sm,
        Command::DrainNode {
            node_id: 1,
            at_ms: 9,
        },
    )?;
    assert!(matches!(
        apply(
            &mut sm,
            Command::DrainNode {
                node_id: 2,
                at_ms: 9
            }
        ),
        Err(MetaError::DrainRefused { node: 2, .. })
    ));
    assert_eq!(sm.nodes[&2].state, NodeState::Up);
    // A heartbeat's "up" does not end a drain.
    apply(
        &mut sm,
        Command::SetNodeState {
            node_id: 1,
            state: NodeState::Up,
            at_ms: 10,
        },
    )?;
    assert_eq!(sm.nodes[&1].state, NodeState::Draining);

    let op = Operator::new(
        1,
        OperatorKind::MoveReplica { from: 1, to: 4 },
        Reason::Drain,
        2,
        4096,
        11,
    );
    let Reply::OperatorCreated { id } = apply(&mut sm, Command::CreateOperator(op.clone()))? else {
        panic!("no operator id");
    };
    assert!(matches!(
        apply(&mut sm, Command::CreateOperator(op.clone())),
        Err(MetaError::ShardBusy { shard: 1, .. })
    ));
    apply(
        &mut sm,
        Command::AdvanceOperator {
            id,
            step: Step::CatchUp,
            note: "learner catching up".into(),
            at_ms: 12,
        },
    )?;
    apply(&mut sm, Command::SetMaxDownTime { ms: 30_000 })?;
    assert!(matches!(
        apply(&mut sm, Command::SetMaxDownTime { ms: 0 }),
        Err(MetaError::BadSetting { .. })
    ));
    let reloaded = MetaState::load(engine.clone())?;
    assert_eq!(reloaded.shards, sm.shards);
    assert_eq!(reloaded.nodes, sm.nodes);
    assert_eq!(reloaded.operators, sm.operators);
    assert_eq!(reloaded.settings.max_down_time_ms, Some(30_000));
    assert_eq!(reloaded.operators.in_flight[&id].step, Step::CatchUp);

    apply(
        &mut sm,
        Command::FinishOperator {
            id,
            outcome: Outcome::Done,
            note: String::new(),
            at_ms: 13,
        },
    )?;
    let reloaded = MetaState::load(engine)?;
    assert!(reloaded.operators.in_flight.is_empty());
    assert_eq!(reloaded.operators.finished.len(), 1);
    assert_eq!(reloaded.operators.totals.bytes_moved, 4096);
    assert_eq!(reloaded.operators.totals.next_id, id + 1);
    Ok(())
}
