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
        admin_token_hash: format!("{:0>64}", token),
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
fn a_tenant_is_created_once_and_a_retry_with_its_request_token_gets_a_fresh_key(
) -> Result<(), Box<dyn std::error::Error>> {
    use crate::tenant_keys::{KeyScope, TenantKey};
    let engine = Arc::new(MemEngine::new(&[Family::META]));
    let mut sm = MetaState::load(engine.clone())?;
    let create = |key: &str, token: &str| Command::CreateTenant {
        name: "acme".into(),
        key_hash: key.into(),
        at_ms: 7,
        request_token_hash: token.into(),
        key_hint: "sk_1234".into(),
    };
    assert_eq!(
        apply(&mut sm, create("h1", "t1"))?,
        Reply::TenantCreated {
            tenant_id: 1,
            key_id: 1
        }
    );
    // The retry (same request token) gets a fresh first key; the lost one is revoked.
    assert_eq!(
        apply(&mut sm, create("h2", "t1"))?,
        Reply::TenantCreated {
            tenant_id: 1,
            key_id: 2
        }
    );
    // Another create of the name is refused, whatever its key.
    for token in ["t2", ""] {
        assert_eq!(
            apply(&mut sm, create("h3", token)),
            Err(MetaError::TenantExists {
                name: "acme".into(),
                id: 1
            })
        );
    }
    let live: Vec<&str> = sm.tenants[&1]
        .live_keys()
        .map(|k| k.hash.as_str())
        .collect();
    assert_eq!(live, ["h2"]);
    assert_eq!(
        sm.tenants[&1].keys[1].scopes,
        [KeyScope::Orders, KeyScope::Print]
    );
    // More keys, with scopes; one revoked.
    let print_key = TenantKey {
        id: 0,
        hash: "h4".into(),
        scopes: vec![KeyScope::Print],
        label: "dock-1 打印机".into(),
        hint: "sk_9".into(),
        created_at_ms: 8,
        revoked_at_ms: None,
    };
    let add = Command::AddTenantKey {
        tenant_id: 1,
        key: print_key,
    };
    assert_eq!(
        apply(&mut sm, add)?,
        Reply::KeyAdded {
            tenant_id: 1,
            key_id: 3
        }
    );
    let revoke = |key_id| Command::RevokeTenantKey {
        tenant_id: 1,
        key_id,
        at_ms: 9,
    };
    assert!(matches!(apply(&mut sm, revoke(2))?, Reply::Key(k) if k.revoked_at_ms == Some(9)));
    assert!(matches!(
        apply(&mut sm, revoke(44)),
        Err(MetaError::UnknownKey { id: 44, .. })
    ));
    let reloaded = MetaState::load(engine)?;
    assert_eq!(reloaded.tenants, sm.tenants);
    assert_eq!(reloaded.next_tenant_id, 2);
    let live: Vec<&str> = reloaded.tenants[&1]
        .live_keys()
        .map(|k| k.hash.as_str())
        .collect();
    assert_eq!(live, ["h4"]);
    Ok(())
}

#[test]
fn a_tenant_row_from_before_scoped_keys_keeps_its_keys() -> Result<(), Box<dyn std::error::Error>> {
    let engine = Arc::new(MemEngine::new(&[Family::META]));
    let mut batch = WriteBatch::default();
    let legacy = serde_json::json!({
        "id": 1, "name": "老店", "created_at_ms": 3, "key_hashes": ["h-old"],
        "rules_toml": "", "rules_version": 0,
    });
    batch.put(
        Cf::META,
        id_key(TENANT_PREFIX, 1),
        serde_json::to_vec(&legacy)?,
    );
    engine.write(&batch, true)?;
    let sm = MetaState::load(engine)?;
    let tenant = &sm.tenants[&1];
    assert!(tenant.key_hashes.is_empty());
    let live: Vec<&str> = tenant.live_keys().map(|k| k.hash.as_str()).collect();
    assert_eq!(live, ["h-old"]);
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

#[test]
fn tokens_and_audit_records_are_applied_together_and_survive_reload(
) -> Result<(), Box<dyn std::error::Error>> {
    use crate::access::{AuditEntry, TokenRole};
    let engine = Arc::new(MemEngine::new(&[Family::META]));
    let mut sm = MetaState::load(engine.clone())?;
    apply(&mut sm, init("t1"))?;
    // Only the init that created the cluster made the admin token; its retry made none.
    apply(&mut sm, init("t1"))?;
    let admin_hash = format!("{:0>64}", "t1");
    assert_eq!(sm.access.tokens.len(), 1);
    assert_eq!(
        sm.access.by_hash(&admin_hash).map(|t| t.role),
        Some(TokenRole::Admin)
    );
    let audit = |action: &str| AuditEntry {
        actor: "token 1 (admin, admin)".into(),
        from: "10.0.0.9:51234".into(),
        action: action.into(),
        detail: "杭州运营".into(),
        at_ms: 9,
    };
    let created = apply(
        &mut sm,
        Command::Audited {
            audit: audit("CreateToken"),
            command: Box::new(Command::CreateToken {
                name: "杭州运营".into(),
                role: TokenRole::Viewer,
                hash: "f".repeat(64),
                created_by: "token 1 (admin, admin)".into(),
                at_ms: 9,
            }),
        },
    )?;
    assert_eq!(created, Reply::TokenCreated { id: 2 });
    // A refused change is recorded with its reason, and changes nothing else.
    let refused = apply(
        &mut sm,
        Command::Audited {
            audit: audit("DrainNode"),
            command: Box::new(Command::DrainNode {
                node_id: 44,
                at_ms: 10,
            }),
        },
    );
    assert_eq!(refused, Err(MetaError::UnknownNode(44)));
    // An audit record cannot wrap another.
    let nested = Command::Audited {
        audit: audit("x"),
        command: Box::new(Command::Audit(audit("y"))),
    };
    assert!(apply(&mut sm, nested).is_err());
    apply(&mut sm, Command::RevokeToken { id: 2, at_ms: 11 })?;

    let reloaded = MetaState::load(engine)?;
    let records = reloaded.access.recent(0, 10);
    assert_eq!(records.len(), 3);
    assert_eq!(records[2].entry.action, "CreateToken");
    assert_eq!(records[2].outcome, "ok");
    assert!(
        records[1].outcome.contains("unknown node 44"),
        "{records:?}"
    );
    assert!(reloaded.access.by_hash(&"f".repeat(64)).is_none());
    assert_eq!(reloaded.access.tokens[&2].revoked_at_ms, Some(11));
    assert!(reloaded.access.by_hash(&admin_hash).is_some());
    Ok(())
}
