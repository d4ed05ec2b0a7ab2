//! The pipeline's planner, pure: for an order waiting in a stage, the next actions its shard
//! leader proposes, from the tenant's rules and the shard's free waybill numbers. Review, then
//! approve, allocate a carrier (or hold for want of a rule) and bind a number (or wait for a
//! block). No clock and no I/O: what depends on time (a book the coordinators said is used up,
//! lately) comes in as an argument, and the node proposes what this returns.

use std::collections::{HashMap, HashSet};

use surge_proto::v1::order_action::Kind;
use surge_proto::v1::{Allocation, Empty, HoldEntry, OrderAction, OrderRecord, OrderStatus};
use surge_rules::{ReviewDecision, TenantRules};

use crate::stage::{Stage, CARRIER_HOLD, REVIEW_ACTOR};

/// A pipeline action. It applies only to an order in the status it was decided for (the one
/// the previous action of the same entry leaves it in), so a decision taken on a stale read,
/// after a proposal that timed out but committed, is void rather than applied twice.
fn action(tenant: u64, order_id: &str, actor: &str, reason: &str, kind: Kind) -> OrderAction {
    let expect = match &kind {
        Kind::Approve(_) => OrderStatus::Received,
        Kind::Hold(_) if actor == REVIEW_ACTOR => OrderStatus::Received,
        Kind::Hold(_) | Kind::Release(_) | Kind::Allocate(_) => OrderStatus::Approved,
        Kind::BindWaybill(_) => OrderStatus::Allocated,
        _ => OrderStatus::Unspecified,
    };
    OrderAction {
        tenant_id: tenant,
        order_id: order_id.to_string(),
        actor: actor.to_string(),
        reason: reason.to_string(),
        kind: Some(kind),
        expect_status: expect as i32,
    }
}

/// The next steps of `rec`, waiting in `stage`, appended to `items`. `free` counts the
/// numbers left per (tenant, carrier) and goes down as orders are planned to bind; `demand`
/// collects the books asked for numbers; `exhausted` says whether the coordinators answered
/// that a book's ranges are used up (and not long ago: the caller decides with its clock).
pub fn plan(
    rules: &TenantRules,
    stage: Stage,
    rec: &OrderRecord,
    free: &mut HashMap<(u64, String), u64>,
    demand: &mut HashSet<(u64, String)>,
    exhausted: &dyn Fn(&(u64, String)) -> bool,
    items: &mut Vec<OrderAction>,
) {
    let (tenant, id) = (rec.tenant_id, rec.order_id.as_str());
    let order = rec.order.clone().unwrap_or_default();
    let carrier = match stage {
        Stage::Review => match rules.review(&order) {
            ReviewDecision::Approve => {
                items.push(action(
                    tenant,
                    id,
                    REVIEW_ACTOR,
                    "review rules passed",
                    Kind::Approve(Empty {}),
                ));
                None
            }
            ReviewDecision::Hold(holds) => {
                for h in holds {
                    let entry = HoldEntry {
                        code: h.reason.code().to_string(),
                        detail: h.detail,
                        ..HoldEntry::default()
                    };
                    items.push(action(tenant, id, REVIEW_ACTOR, "", Kind::Hold(entry)));
                }
                return;
            }
        },
        Stage::Approve => {
            items.push(action(
                tenant,
                id,
                "pipeline",
                "every hold released",
                Kind::Approve(Empty {}),
            ));
            None
        }
        Stage::Allocate => None,
        Stage::AwaitCarrier => {
            // Held for want of a carrier rule: released once the rules give one.
            if rules.allocate(&order).is_none() {
                return;
            }
            items.push(action(
                tenant,
                id,
                "allocator",
                "the tenant's rules now name a carrier",
                Kind::Release(CARRIER_HOLD.into()),
            ));
            None
        }
        Stage::Bind | Stage::AwaitWaybill => Some(rec.carrier.clone()),
    };
    let carrier = match carrier {
        Some(c) => c,
        None => match rules.allocate(&order) {
            Some(a) => {
                let c = a.carrier.clone();
                items.push(action(
                    tenant,
                    id,
                    "allocator",
                    "",
                    Kind::Allocate(Allocation {
                        carrier: a.carrier,
                        rule: a.rule,
                    }),
                ));
                c
            }
            None => {
                let entry = HoldEntry {
                    code: CARRIER_HOLD.into(),
                    detail: "no carrier rule matches and the tenant has no default carrier".into(),
                    ..HoldEntry::default()
                };
                items.push(action(tenant, id, "allocator", "", Kind::Hold(entry)));
                return;
            }
        },
    };
    let key = (tenant, carrier);
    let left = free.entry(key.clone()).or_default();
    demand.insert(key.clone());
    if *left == 0 {
        // Binding now would hold the order for want of numbers. Do that only once the
        // coordinators said the carrier's ranges are used up; otherwise a block is on its
        // way, and the order binds in a later round.
        if stage == Stage::AwaitWaybill || !exhausted(&key) {
            return;
        }
    }
    *left = left.saturating_sub(1);
    items.push(action(
        tenant,
        id,
        "waybill-binder",
        "",
        Kind::BindWaybill(Empty {}),
    ));
}
