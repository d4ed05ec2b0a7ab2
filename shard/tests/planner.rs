//! The pipeline's planner as a table: an order waiting in a stage, the tenant's rules and the
//! shard's free numbers in; the actions the shard leader would propose out. Chinese data: a
//! Hangzhou receiver, remarks in Chinese.

use std::collections::{HashMap, HashSet};

use surge_proto::v1::order_action::Kind;
use surge_proto::v1::{
    Address, Order, OrderAction, OrderRecord, OrderStatus, PaymentState, Totals,
};
use surge_shard::planner::plan;
use surge_shard::Stage;

const RULES: &str = r#"
[review]
hold_on_remark = true
hold_unpaid = true

[[carriers]]
name = "SF"
cost_cents = 1800
days = 1

[[carriers]]
name = "ZTO"
cost_cents = 600
days = 3

[allocation]
default_carrier = "ZTO"

[[allocation.rules]]
name = "zhejiang-fast"
regions = ["浙江省"]
carriers = ["SF"]
"#;

/// The same carriers with no default and no rule matching Hangzhou.
const NO_MATCH: &str = r#"
[[carriers]]
name = "SF"
cost_cents = 1800
days = 1

[[allocation.rules]]
name = "beijing-only"
regions = ["北京市"]
carriers = ["SF"]
"#;

fn record(status: OrderStatus, remark: &str, carrier: &str) -> OrderRecord {
    let mut order = Order {
        platform: "taobao".into(),
        external_order_id: "TB-2026-1111".into(),
        buyer_remark: remark.into(),
        receiver: Some(Address {
            name: "王小明".into(),
            phone: "13900000001".into(),
            country: "CN".into(),
            province: "浙江省".into(),
            city: "杭州市".into(),
            district: "西湖区".into(),
            street: "文三路 1 号".into(),
            postal_code: "310000".into(),
        }),
        totals: Some(Totals {
            payable_cents: 9900,
            ..Totals::default()
        }),
        ..Order::default()
    };
    order.set_payment_state(PaymentState::Paid);
    OrderRecord {
        order_id: "3-10-0".into(),
        tenant_id: 7,
        shard: 3,
        status: status as i32,
        carrier: carrier.into(),
        order: Some(order),
        ..OrderRecord::default()
    }
}

/// What an action does, in a word (and its hold code or carrier).
fn describe(a: &OrderAction) -> String {
    match a.kind.as_ref() {
        Some(Kind::Approve(_)) => "approve".into(),
        Some(Kind::Hold(h)) => format!("hold {}", h.code),
        Some(Kind::Release(code)) => format!("release {code}"),
        Some(Kind::Allocate(a)) => format!("allocate {}", a.carrier),
        Some(Kind::BindWaybill(_)) => "bind".into(),
        other => format!("{other:?}"),
    }
}

struct Case {
    name: &'static str,
    rules: &'static str,
    stage: Stage,
    rec: OrderRecord,
    free: u64,
    exhausted: bool,
    want: Vec<&'static str>,
    /// Free numbers of (tenant 7, SF) after planning.
    free_after: u64,
}

#[test]
fn every_stage_plans_its_next_steps() {
    use OrderStatus::{Allocated, Approved, Received};
    let cases = vec![
        Case {
            name: "clean order: approve, allocate by rule, bind",
            rules: RULES,
            stage: Stage::Review,
            rec: record(Received, "", ""),
            free: 5,
            exhausted: false,
            want: vec!["approve", "allocate SF", "bind"],
            free_after: 4,
        },
        Case {
            name: "a remark holds the order at review, nothing else",
            rules: RULES,
            stage: Stage::Review,
            rec: record(Received, "请用顺丰，周末不在家", ""),
            free: 5,
            exhausted: false,
            want: vec!["hold remark"],
            free_after: 5,
        },
        Case {
            name: "released by a person: approve, then on",
            rules: RULES,
            stage: Stage::Approve,
            rec: record(Received, "请用顺丰", ""),
            free: 5,
            exhausted: false,
            want: vec!["approve", "allocate SF", "bind"],
            free_after: 4,
        },
        Case {
            name: "no free numbers, a block on its way: allocate and wait",
            rules: RULES,
            stage: Stage::Allocate,
            rec: record(Approved, "", ""),
            free: 0,
            exhausted: false,
            want: vec!["allocate SF"],
            free_after: 0,
        },
        Case {
            name: "no free numbers and the ranges are used up: bind, which holds for numbers",
            rules: RULES,
            stage: Stage::Allocate,
            rec: record(Approved, "", ""),
            free: 0,
            exhausted: true,
            want: vec!["allocate SF", "bind"],
            free_after: 0,
        },
        Case {
            name: "no rule and no default carrier: held for a carrier",
            rules: NO_MATCH,
            stage: Stage::Allocate,
            rec: record(Approved, "", ""),
            free: 5,
            exhausted: false,
            want: vec!["hold carrier"],
            free_after: 5,
        },
        Case {
            name: "held for a carrier while the rules still name none: nothing",
            rules: NO_MATCH,
            stage: Stage::AwaitCarrier,
            rec: record(Approved, "", ""),
            free: 5,
            exhausted: false,
            want: vec![],
            free_after: 5,
        },
        Case {
            name: "held for a carrier, the rules now name one: release, allocate, bind",
            rules: RULES,
            stage: Stage::AwaitCarrier,
            rec: record(Approved, "", ""),
            free: 5,
            exhausted: false,
            want: vec!["release carrier", "allocate SF", "bind"],
            free_after: 4,
        },
        Case {
            name: "allocated: bind with the order's carrier",
            rules: RULES,
            stage: Stage::Bind,
            rec: record(Allocated, "", "SF"),
            free: 1,
            exhausted: false,
            want: vec!["bind"],
            free_after: 0,
        },
        Case {
            name: "waiting for numbers, still none: nothing, even when used up",
            rules: RULES,
            stage: Stage::AwaitWaybill,
            rec: record(Allocated, "", "SF"),
            free: 0,
            exhausted: true,
            want: vec![],
            free_after: 0,
        },
    ];
    for c in cases {
        let rules = surge_rules::parse(c.rules).expect("rules parse");
        let mut free = HashMap::from([((7, "SF".to_string()), c.free)]);
        let mut demand = HashSet::new();
        let mut items = Vec::new();
        let exhausted = |_: &(u64, String)| c.exhausted;
        plan(
            &rules,
            c.stage,
            &c.rec,
            &mut free,
            &mut demand,
            &exhausted,
            &mut items,
        );
        let got: Vec<String> = items.iter().map(describe).collect();
        assert_eq!(got, c.want, "{}", c.name);
        assert_eq!(free[&(7, "SF".to_string())], c.free_after, "{}", c.name);
        for item in &items {
            assert_eq!(
                (item.tenant_id, item.order_id.as_str()),
                (7, "3-10-0"),
                "{}",
                c.name
            );
        }
    }
}

#[test]
fn an_action_expects_the_status_it_was_decided_for() {
    let rules = surge_rules::parse(RULES).expect("rules parse");
    let mut free = HashMap::from([((7, "SF".to_string()), 5)]);
    let mut items = Vec::new();
    plan(
        &rules,
        Stage::Review,
        &record(OrderStatus::Received, "", ""),
        &mut free,
        &mut HashSet::new(),
        &|_: &(u64, String)| false,
        &mut items,
    );
    let expected: Vec<OrderStatus> = items.iter().map(|a| a.expect_status()).collect();
    assert_eq!(
        expected,
        vec![
            OrderStatus::Received,
            OrderStatus::Approved,
            OrderStatus::Allocated
        ]
    );
}
