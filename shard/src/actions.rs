//! Lifecycle actions applied from a shard's log (DESIGN.md §4, §5): review outcomes, holds,
//! allocation, waybill binding with its print job (same batch), printing, packing, shipping,
//! cancel and intercept, reprints and job leases. Each action is decided by
//! [`crate::lifecycle::decide`] on the order as this entry finds it, so a retried action is a
//! no-op that answers the current state, and no clock is read: times come from the entry.

use surge_proto::v1::order_action::Kind;
use surge_proto::v1::{ActionBatch, HoldEntry, OrderAction, OrderRecord, OrderStatus, Transition};
use surge_storage::{Engine, EngineError, WriteBatch};

use crate::lifecycle::{decide, Outcome, Refusal, Step};
use crate::outcome::{ActionOutcome, Done, RefuseCode};
use crate::state::ShardSm;

/// Most transitions kept per order: holds and reprints that would crowd out the release and
/// forward steps are refused.
pub const MAX_HISTORY: usize = 64;
/// History entries kept free for a release and the forward steps (at most 8 of them).
const RESERVED_HISTORY: usize = 10;
/// Most reprints of one order.
pub const MAX_REPRINTS: u32 = 10;
/// Most unused blocks a shard keeps per (tenant, carrier).
pub const MAX_BLOCKS: usize = 8;

pub(crate) fn refused(code: RefuseCode, message: impl Into<String>) -> ActionOutcome {
    ActionOutcome::Refused {
        code,
        message: message.into(),
    }
}

pub(crate) fn refusal(r: Refusal) -> ActionOutcome {
    refused(RefuseCode::FailedPrecondition, r.to_string())
}

pub(crate) struct Ctx {
    pub(crate) index: u64,
    pub(crate) pos: u32,
    pub(crate) at_ms: u64,
}

impl<E: Engine> ShardSm<E> {
    pub(crate) fn apply_actions(
        &mut self,
        index: u64,
        batch_cmd: ActionBatch,
        batch: &mut WriteBatch,
    ) -> Result<Vec<ActionOutcome>, EngineError> {
        let mut out = Vec::with_capacity(batch_cmd.items.len());
        for (pos, action) in batch_cmd.items.into_iter().enumerate() {
            let ctx = Ctx {
                index,
                pos: pos as u32,
                at_ms: batch_cmd.at_ms,
            };
            out.push(self.apply_action(&ctx, action, batch)?);
        }
        Ok(out)
    }

    pub(crate) fn apply_action(
        &mut self,
        ctx: &Ctx,
        action: OrderAction,
        batch: &mut WriteBatch,
    ) -> Result<ActionOutcome, EngineError> {
        let Some(old) = self
            .load_order(&action.order_id)?
            .filter(|r| r.tenant_id == action.tenant_id)
        else {
            return Ok(refused(
                RefuseCode::NotFound,
                format!("order_id: no order {}", action.order_id),
            ));
        };
        let Some(kind) = action.kind.clone() else {
            return Ok(refused(RefuseCode::FailedPrecondition, "empty action"));
        };
        let expected = action.expect_status();
        if expected != OrderStatus::Unspecified && expected != old.status() {
            return Ok(refused(
                RefuseCode::FailedPrecondition,
                format!(
                    "order {} is {:?}, not {expected:?}: it moved on",
                    old.order_id,
                    old.status()
                ),
            ));
        }
        let mut rec = old.clone();
        let mut job = None;
        let result = match kind {
            Kind::Approve(_) => self.step(ctx, &action, &mut rec, Step::Approve, "approve", batch),
            Kind::Allocate(a) => {
                // The carrier is set before the transition so that its event carries it; an
                // allocation that does not happen leaves the record as it was.
                let before = (rec.carrier.clone(), rec.carrier_rule.clone());
                let mut with_reason = action.clone();
                with_reason.reason = format!("carrier {} by rule {}", a.carrier, a.rule);
                rec.carrier = a.carrier;
                rec.carrier_rule = a.rule;
                let r = self.step(
                    ctx,
                    &with_reason,
                    &mut rec,
                    Step::Allocate,
                    "allocate",
                    batch,
                );
                if !matches!(r, Ok(true)) {
                    (rec.carrier, rec.carrier_rule) = before;
                }
                r
            }
            Kind::Hold(h) => self.hold(ctx, &action, &mut rec, h, batch),
            Kind::Release(code) => self.release(ctx, &action, &mut rec, &code, batch),
            Kind::BindWaybill(_) => self.bind(ctx, &action, &mut rec, &mut job, batch),
            Kind::Printed(done) => self.printed(
                ctx,
                &action,
                &mut rec,
                &done.job_id,
                &done.station,
                &mut job,
                batch,
            ),
            Kind::Packed(_) => {
                self.step(ctx, &action, &mut rec, Step::ConfirmPacked, "pack", batch)
            }
            Kind::ShippedWeightGrams(w) => {
                let r = self.step(ctx, &action, &mut rec, Step::ConfirmShipped, "ship", batch);
                if matches!(r, Ok(true)) {
                    rec.shipped_weight_grams = w;
                    // A reprint still waiting is moot once the parcel has left.
                    self.drop_pending_job(&mut rec, batch);
                }
                r
            }
            Kind::Cancel(_) => self.cancel(ctx, &action, &mut rec, batch)?,
            Kind::Reprint(_) => self.reprint(ctx, &action, &mut rec, &mut job, batch),
            Kind::Lease(lease) => self.lease(ctx, &rec, lease, &mut job, batch),
            Kind::Route(routing) => self.route(ctx, &action, &mut rec, routing, batch),
        };
        let changed = match result {
            Ok(changed) => changed,
            Err(outcome) => return Ok(outcome),
        };
        if changed && rec != old {
            self.store(batch, Some(&old), &rec);
        }
        Ok(ActionOutcome::Done(Box::new(Done {
            record: rec,
            changed,
            job,
        })))
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn transition(
        &mut self,
        ctx: &Ctx,
        action: &OrderAction,
        rec: &mut OrderRecord,
        to: OrderStatus,
        name: &str,
        batch: &mut WriteBatch,
    ) {
        let t = Transition {
            from: rec.status,
            to: to as i32,
            action: name.into(),
            actor: action.actor.clone(),
            reason: action.reason.clone(),
            at_ms: ctx.at_ms,
        };
        rec.status = to as i32;
        self.record(batch, rec, ctx.index, ctx.pos, t);
    }

    /// A forward step: Ok(true) moved, Ok(false) already done, Err(refusal).
    pub(crate) fn step(
        &mut self,
        ctx: &Ctx,
        action: &OrderAction,
        rec: &mut OrderRecord,
        step: Step,
        name: &str,
        batch: &mut WriteBatch,
    ) -> Result<bool, ActionOutcome> {
        match decide(rec.status(), !rec.holds.is_empty(), rec.intercepted, step) {
            Ok(Outcome::Moved { to, .. }) => {
                self.transition(ctx, action, rec, to, name, batch);
                Ok(true)
            }
            Ok(_) => Ok(false),
            Err(r) => Err(refusal(r)),
        }
    }

    /// Room for an optional entry (a hold or a reprint): what stays free is enough for the
    /// release and every forward step that may follow, which are never refused for room.
    pub(crate) fn history_room(rec: &OrderRecord) -> Result<(), ActionOutcome> {
        if rec.history.len() + RESERVED_HISTORY >= MAX_HISTORY {
            return Err(refused(
                RefuseCode::FailedPrecondition,
                format!(
                    "order {} has {MAX_HISTORY} recorded transitions, the most kept",
                    rec.order_id
                ),
            ));
        }
        Ok(())
    }

    pub(crate) fn hold(
        &mut self,
        ctx: &Ctx,
        action: &OrderAction,
        rec: &mut OrderRecord,
        mut hold: HoldEntry,
        batch: &mut WriteBatch,
    ) -> Result<bool, ActionOutcome> {
        if rec.holds.iter().any(|h| h.code == hold.code) {
            return Ok(false);
        }
        match rec.status() {
            OrderStatus::Shipped | OrderStatus::Cancelled => {
                return Err(refused(
                    RefuseCode::FailedPrecondition,
                    format!("a {:?} order cannot be held", rec.status()),
                ))
            }
            _ => Self::history_room(rec)?,
        }
        hold.actor = action.actor.clone();
        hold.at_ms = ctx.at_ms;
        let mut fake = action.clone();
        fake.reason = if hold.detail.is_empty() {
            hold.code.clone()
        } else {
            format!("{}: {}", hold.code, hold.detail)
        };
        rec.holds.push(hold);
        let status = rec.status();
        self.transition(ctx, &fake, rec, status, "hold", batch);
        Ok(true)
    }

    pub(crate) fn release(
        &mut self,
        ctx: &Ctx,
        action: &OrderAction,
        rec: &mut OrderRecord,
        code: &str,
        batch: &mut WriteBatch,
    ) -> Result<bool, ActionOutcome> {
        let before = rec.holds.len();
        if code.is_empty() {
            rec.holds.clear();
        } else {
            rec.holds.retain(|h| h.code != code);
        }
        if rec.holds.len() == before {
            return Ok(false);
        }
        let mut fake = action.clone();
        if fake.reason.is_empty() {
            fake.reason = if code.is_empty() {
                "all holds".into()
            } else {
                code.into()
            };
        }
        let status = rec.status();
        self.transition(ctx, &fake, rec, status, "release", batch);
        Ok(true)
    }

    /// Cancel: stopped (cancelled, or intercepted after printing) as `Ok(changed)`, or
    /// `TooLate` once shipped.
    pub(crate) fn cancel(
        &mut self,
        ctx: &Ctx,
        action: &OrderAction,
        rec: &mut OrderRecord,
        batch: &mut WriteBatch,
    ) -> Result<Result<bool, ActionOutcome>, EngineError> {
        Ok(
            match decide(rec.status(), false, rec.intercepted, Step::Cancel) {
                Err(Refusal::TooLate) => Err(ActionOutcome::TooLate(Box::new(rec.clone()))),
                Err(r) => Err(refusal(r)),
                Ok(Outcome::AlreadyDone(_)) => Ok(false),
                Ok(Outcome::Moved { to, .. }) => {
                    self.void_waybill(rec, batch)?;
                    self.transition(ctx, action, rec, to, "cancel", batch);
                    Ok(true)
                }
                Ok(Outcome::Intercepted(status)) => {
                    self.void_waybill(rec, batch)?;
                    rec.intercepted = true;
                    self.transition(ctx, action, rec, status, "intercept", batch);
                    Ok(true)
                }
            },
        )
    }
}
