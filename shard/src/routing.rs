//! A carrier's own routing for a bound waybill (三段码 and 大头笔, as its e-waybill service
//! returns them with the number): kept on the order's binding so that the label prints the
//! carrier's codes instead of the ones derived from the receiver's division.

use surge_proto::v1::{CarrierRouting, OrderAction, OrderRecord, OrderStatus};
use surge_storage::{Engine, WriteBatch};

use crate::actions::{refused, Ctx};
use crate::outcome::{ActionOutcome, RefuseCode};
use crate::state::ShardSm;

/// Most bytes of a sorting code.
pub const MAX_SORTING_CODE: usize = 32;
/// Most characters of a destination text.
pub const MAX_DESTINATION_CHARS: usize = 24;

/// Whether `r`'s codes are printable on a label: the field at fault and why, if not.
pub fn check_routing(r: &CarrierRouting) -> Result<(), (&'static str, String)> {
    if r.sorting_code.is_empty() && r.destination.trim().is_empty() {
        return Err((
            "sorting_code",
            "give the sorting code, the destination, or both".into(),
        ));
    }
    let code_ok = r.sorting_code.len() <= MAX_SORTING_CODE
        && r.sorting_code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-/ ".contains(&b));
    if !code_ok {
        return Err((
            "sorting_code",
            format!("at most {MAX_SORTING_CODE} of [A-Za-z0-9-/ ]"),
        ));
    }
    let chars = r.destination.chars().count();
    if chars > MAX_DESTINATION_CHARS || r.destination.chars().any(char::is_control) {
        return Err((
            "destination",
            format!("at most {MAX_DESTINATION_CHARS} characters, none of them control characters"),
        ));
    }
    Ok(())
}

/// The label's sorting code and destination: the carrier's where it gave them for the bound
/// waybill, else `derived`.
pub fn routing_for(rec: &OrderRecord, derived: (String, String)) -> (String, String) {
    let Some(r) = rec
        .carrier_routing
        .as_ref()
        .filter(|r| !rec.waybill.is_empty() && r.waybill == rec.waybill)
    else {
        return derived;
    };
    let pick = |own: &str, derived: String| match own.is_empty() {
        true => derived,
        false => own.to_owned(),
    };
    (
        pick(&r.sorting_code, derived.0),
        pick(&r.destination, derived.1),
    )
}

impl<E: Engine> ShardSm<E> {
    /// Keeps the carrier's routing on the binding: Ok(false) when it is already there.
    pub(crate) fn route(
        &mut self,
        ctx: &Ctx,
        action: &OrderAction,
        rec: &mut OrderRecord,
        routing: CarrierRouting,
        batch: &mut WriteBatch,
    ) -> Result<bool, ActionOutcome> {
        if let Err((field, why)) = check_routing(&routing) {
            return Err(refused(
                RefuseCode::InvalidArgument,
                format!("{field}: {why}"),
            ));
        }
        let precondition = |m: String| Err(refused(RefuseCode::FailedPrecondition, m));
        if rec.waybill.is_empty() {
            return precondition(format!(
                "order {} has no waybill yet ({:?})",
                rec.order_id,
                rec.status()
            ));
        }
        if routing.waybill != rec.waybill {
            return precondition(format!(
                "waybill: order {} is bound to {}, not {:?}",
                rec.order_id, rec.waybill, routing.waybill
            ));
        }
        if rec.waybill_voided
            || matches!(rec.status(), OrderStatus::Shipped | OrderStatus::Cancelled)
        {
            return precondition(format!(
                "order {} is {:?}{}: its label is past changing",
                rec.order_id,
                rec.status(),
                if rec.waybill_voided {
                    ", waybill voided"
                } else {
                    ""
                }
            ));
        }
        if rec.carrier_routing.as_ref() == Some(&routing) {
            return Ok(false);
        }
        Self::history_room(rec)?;
        let mut with_reason = action.clone();
        with_reason.reason = format!(
            "carrier routing {} {}",
            routing.sorting_code, routing.destination
        )
        .trim_end()
        .to_owned();
        rec.carrier_routing = Some(routing);
        let status = rec.status();
        self.transition(ctx, &with_reason, rec, status, "route", batch);
        Ok(true)
    }
}
