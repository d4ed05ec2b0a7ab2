//! The shard state machine applied entry by entry on the in-memory engine: intake dedup, the
//! pipeline stage of a record, ids, and listing by status.

use crate::families::{ORDERS, SHARD_FAMILIES};
use std::sync::Arc;

use prost::Message as _;
use surge_proto::v1::shard_command::Command as ShardCmd;
use surge_proto::v1::{
    Acceptance, Order, OrderRecord, OrderStatus, ShardCommand, SubmitBatch, SubmitItem,
};
use surge_storage::{Engine, MemEngine, StateMachine, WriteBatch};

use crate::*;

fn order(ext: &str, remark: &str) -> Order {
    Order {
        platform: "taobao".into(),
        external_order_id: ext.into(),
        buyer_remark: remark.into(),
        ..Order::default()
    }
}

fn submit(tenant: u64, at: u64, orders: Vec<Order>) -> Vec<u8> {
    let items = orders
        .into_iter()
        .map(|o| SubmitItem {
            payload_hash: o.buyer_remark.clone().into_bytes(),
            order: Some(o),
        })
        .collect();
    ShardCommand {
        command: Some(ShardCmd::Submit(SubmitBatch {
            tenant_id: tenant,
            received_at_ms: at,
            items,
        })),
    }
    .encode_to_vec()
}

fn apply(sm: &mut ShardSm<MemEngine>, index: u64, data: &[u8]) -> Vec<ItemOutcome> {
    let mut batch = WriteBatch::default();
    let out = sm.apply(index, data, &mut batch);
    sm.engine.write(&batch, true).expect("write");
    sm.on_batch_written();
    submitted(out)
}

fn submitted(out: ShardOutput) -> Vec<ItemOutcome> {
    match out.expect("applied") {
        Applied::Submitted(items) => items,
        other => panic!("not a submit answer: {other:?}"),
    }
}

fn accepted(o: &ItemOutcome) -> &Acceptance {
    match o {
        ItemOutcome::Accepted(a) => a,
        other => panic!("not accepted: {other:?}"),
    }
}

#[test]
fn the_pipeline_stage_follows_status_and_holds() {
    use surge_proto::v1::{HoldEntry, Transition};
    let hold = |code: &str| HoldEntry {
        code: code.into(),
        ..HoldEntry::default()
    };
    let reviewed = Transition {
        action: "hold".into(),
        actor: REVIEW_ACTOR.into(),
        ..Transition::default()
    };
    // (status, holds, reviewed before, intercepted, stage)
    type Case = (OrderStatus, Vec<HoldEntry>, bool, bool, Option<Stage>);
    let cases: Vec<Case> = vec![
        (
            OrderStatus::Received,
            vec![],
            false,
            false,
            Some(Stage::Review),
        ),
        (
            OrderStatus::Received,
            vec![],
            true,
            false,
            Some(Stage::Approve),
        ),
        (
            OrderStatus::Received,
            vec![hold("remark")],
            true,
            false,
            None,
        ),
        (
            OrderStatus::Approved,
            vec![],
            false,
            false,
            Some(Stage::Allocate),
        ),
        (
            OrderStatus::Approved,
            vec![hold(CARRIER_HOLD)],
            false,
            false,
            Some(Stage::AwaitCarrier),
        ),
        (
            OrderStatus::Approved,
            vec![hold(CARRIER_HOLD), hold("manual")],
            false,
            false,
            None,
        ),
        (
            OrderStatus::Allocated,
            vec![],
            false,
            false,
            Some(Stage::Bind),
        ),
        (
            OrderStatus::Allocated,
            vec![hold(WAYBILL_HOLD)],
            false,
            false,
            Some(Stage::AwaitWaybill),
        ),
        (
            OrderStatus::Allocated,
            vec![hold("manual")],
            false,
            false,
            None,
        ),
        (OrderStatus::WaybillAssigned, vec![], false, false, None),
        (OrderStatus::LabelPrinted, vec![], false, true, None),
        (OrderStatus::Cancelled, vec![], false, false, None),
    ];
    for (status, holds, was_reviewed, intercepted, want) in cases {
        let rec = OrderRecord {
            status: status as i32,
            holds: holds.clone(),
            intercepted,
            history: if was_reviewed {
                vec![reviewed.clone()]
            } else {
                vec![]
            },
            ..OrderRecord::default()
        };
        assert_eq!(
            stage_of(&rec),
            want,
            "{status:?} {holds:?} reviewed={was_reviewed}"
        );
    }
}

#[test]
fn order_ids_carry_the_shard() {
    assert_eq!(order_id(7, 120, 3), "7-120-3");
    assert_eq!(shard_of("7-120-3"), Some(7));
    for bad in ["", "7", "7-1", "x-1-2", "7-1-2-3", "7--2"] {
        assert_eq!(shard_of(bad), None, "{bad}");
    }
}

#[test]
fn a_retry_returns_the_original_acceptance_and_a_new_payload_conflicts() {
    let mut sm = ShardSm::new(3, Arc::new(MemEngine::new(&SHARD_FAMILIES)));
    let first = apply(&mut sm, 10, &submit(1, 1000, vec![order("A", "p1")]));
    let a = accepted(&first[0]).clone();
    assert_eq!(a.order_id, "3-10-0");
    assert!(!a.duplicate);

    let again = apply(&mut sm, 11, &submit(1, 2000, vec![order("A", "p1")]));
    let b = accepted(&again[0]);
    assert_eq!(b.order_id, a.order_id);
    assert_eq!(b.accepted_at_ms, 1000, "the original acceptance");
    assert!(b.duplicate);

    let other = apply(&mut sm, 12, &submit(1, 3000, vec![order("A", "p2")]));
    assert_eq!(
        other[0],
        ItemOutcome::Conflict {
            existing_order_id: a.order_id.clone()
        }
    );
    // Another tenant's identical external id is its own order.
    let t2 = apply(&mut sm, 13, &submit(2, 4000, vec![order("A", "p1")]));
    assert_eq!(accepted(&t2[0]).order_id, "3-13-0");
    assert!(
        sm.get(2, &a.order_id).expect("get").is_none(),
        "tenant scoping"
    );
}

#[test]
fn duplicates_inside_one_unwritten_batch_are_caught() {
    let mut sm = ShardSm::new(0, Arc::new(MemEngine::new(&SHARD_FAMILIES)));
    let mut batch = WriteBatch::default();
    let one = submitted(sm.apply(
        5,
        &submit(1, 1, vec![order("B", "x"), order("B", "x")]),
        &mut batch,
    ));
    let two = submitted(sm.apply(6, &submit(1, 2, vec![order("B", "y")]), &mut batch));
    assert_eq!(accepted(&one[0]).order_id, "0-5-0");
    assert!(accepted(&one[1]).duplicate);
    assert_eq!(
        two[0],
        ItemOutcome::Conflict {
            existing_order_id: "0-5-0".into()
        }
    );
    let stored_rows = batch
        .ops()
        .iter()
        .filter(|op| matches!(op, surge_storage::WriteOp::Put { cf: ORDERS, .. }))
        .count();
    assert_eq!(stored_rows, 1);
}

#[test]
fn listing_is_by_status_and_time_and_pages_by_cursor() {
    let mut sm = ShardSm::new(1, Arc::new(MemEngine::new(&SHARD_FAMILIES)));
    for i in 0..5u64 {
        apply(
            &mut sm,
            10 + i,
            &submit(9, 100 * (i + 1), vec![order(&format!("E{i}"), "")]),
        );
    }
    apply(&mut sm, 20, &submit(8, 150, vec![order("other", "")]));
    let all = sm
        .list(9, OrderStatus::Received, 0, 0, None, 100)
        .expect("list");
    assert_eq!(all.len(), 5);
    let window = sm
        .list(9, OrderStatus::Received, 200, 400, None, 100)
        .expect("list");
    let times: Vec<u64> = window.iter().map(|r| r.accepted_at_ms).collect();
    assert_eq!(times, vec![200, 300]);
    let first = sm
        .list(9, OrderStatus::Received, 0, 0, None, 2)
        .expect("list");
    let cursor = Cursor {
        at_ms: first[1].accepted_at_ms,
        order_id: first[1].order_id.clone(),
    };
    let next = sm
        .list(9, OrderStatus::Received, 0, 0, Some(&cursor), 2)
        .expect("list");
    let times: Vec<u64> = next.iter().map(|r| r.accepted_at_ms).collect();
    assert_eq!(times, vec![300, 400]);
    assert!(sm
        .list(9, OrderStatus::Approved, 0, 0, None, 10)
        .expect("list")
        .is_empty());
    assert_eq!(Cursor::decode(&cursor.encode()), Some(cursor));
}
