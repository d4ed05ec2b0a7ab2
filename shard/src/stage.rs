//! Where an order stands in the automatic pipeline, derived from its record alone, and the hold
//! codes and actor the pipeline uses.

use surge_proto::v1::{OrderRecord, OrderStatus};

/// Where an order stands in the automatic pipeline: the step the shard leader takes next.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stage {
    /// RECEIVED, never reviewed: run the review rules.
    Review = 1,
    /// APPROVED: allocate a carrier.
    Allocate = 2,
    /// ALLOCATED: bind a waybill number.
    Bind = 3,
    /// ALLOCATED and held only for want of waybill numbers: bind once numbers arrive.
    AwaitWaybill = 4,
    /// RECEIVED, reviewed, every hold released: approve.
    Approve = 5,
    /// APPROVED and held only because no carrier rule matched: allocate once the tenant's
    /// rules give it a carrier.
    AwaitCarrier = 6,
}

impl Stage {
    pub const ALL: [Stage; 6] = [
        Stage::Review,
        Stage::Allocate,
        Stage::Bind,
        Stage::AwaitWaybill,
        Stage::Approve,
        Stage::AwaitCarrier,
    ];
}

/// The hold code of an order no carrier rule matched.
pub const CARRIER_HOLD: &str = "carrier";

/// The hold code of an order waiting for waybill numbers.
pub const WAYBILL_HOLD: &str = "waybill";
/// The actor of holds placed by the review rules.
pub const REVIEW_ACTOR: &str = "review-rules";

/// The pipeline stage of `rec`, if the pipeline must move it.
pub fn stage_of(rec: &OrderRecord) -> Option<Stage> {
    if rec.intercepted {
        return None;
    }
    let unheld = rec.holds.is_empty();
    match rec.status() {
        OrderStatus::Received if unheld => {
            let reviewed = rec
                .history
                .iter()
                .any(|t| t.action == "hold" && t.actor == REVIEW_ACTOR);
            Some(if reviewed {
                Stage::Approve
            } else {
                Stage::Review
            })
        }
        OrderStatus::Approved if unheld => Some(Stage::Allocate),
        OrderStatus::Approved if rec.holds.iter().all(|h| h.code == CARRIER_HOLD) => {
            Some(Stage::AwaitCarrier)
        }
        OrderStatus::Allocated if unheld => Some(Stage::Bind),
        OrderStatus::Allocated if rec.holds.iter().all(|h| h.code == WAYBILL_HOLD) => {
            Some(Stage::AwaitWaybill)
        }
        _ => None,
    }
}
