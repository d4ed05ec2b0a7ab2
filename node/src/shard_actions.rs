//! Lifecycle actions applied from a shard's log (DESIGN.md §4, §5): review outcomes, holds,
//! allocation, waybill binding with its print job (same batch), printing, packing, shipping,
//! cancel and intercept, reprints and job leases. Each action is decided by
//! [`crate::lifecycle::decide`] on the order as this entry finds it, so a retried action is a
//! no-op that answers the current state, and no clock is read: times come from the entry.

use prost::Message as _;
use surge_proto::v1::order_action::Kind;
use surge_proto::v1::{
    ActionBatch, AddWaybillBlock, HoldEntry, OrderAction, OrderRecord, OrderStatus, OutboxJob,
    RangeUsage, Transition, WaybillBook, WaybillCursor,
};
use surge_raftstore::{Cf, Engine, EngineError, WriteBatch};

use crate::lifecycle::{decide, Outcome, Refusal, Step};
use crate::shard::{order_id, parse_id, storage_failed, ShardSm, WAYBILL_HOLD};
use crate::shard_keys as k;

/// Most transitions kept per order: holds and reprints that would crowd out the release and
/// forward steps are refused.
pub const MAX_HISTORY: usize = 64;
/// History entries kept free for a release and the forward steps (at most 8 of them).
const RESERVED_HISTORY: usize = 10;
/// Most reprints of one order.
pub const MAX_REPRINTS: u32 = 10;
/// Most unused blocks a shard keeps per (tenant, carrier).
pub const MAX_BLOCKS: usize = 8;

/// Why an action was refused; the API maps it to a gRPC code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefuseCode {
    NotFound,
    FailedPrecondition,
}

/// The answer to one action.
#[derive(Clone, Debug, PartialEq)]
pub enum ActionOutcome {
    Done(Box<Done>),
    /// A cancel of a shipped order: definitive, nothing changed.
    TooLate(Box<OrderRecord>),
    Refused {
        code: RefuseCode,
        message: String,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct Done {
    pub record: OrderRecord,
    /// False when the action had already happened: nothing changed.
    pub changed: bool,
    /// The job this action created, leased or finished.
    pub job: Option<OutboxJob>,
}

fn refused(code: RefuseCode, message: impl Into<String>) -> ActionOutcome {
    ActionOutcome::Refused {
        code,
        message: message.into(),
    }
}

fn refusal(r: Refusal) -> ActionOutcome {
    refused(RefuseCode::FailedPrecondition, r.to_string())
}

fn waybill_number(prefix: &str, n: u64, width: u32) -> String {
    format!("{prefix}{n:0width$}", width = width as usize)
}

fn usage_mut(book: &mut WaybillBook, range_id: u64) -> &mut RangeUsage {
    let at = match book.usage.iter().position(|u| u.range_id == range_id) {
        Some(at) => at,
        None => {
            book.usage.push(RangeUsage {
                range_id,
                ..RangeUsage::default()
            });
            book.usage.len() - 1
        }
    };
    &mut book.usage[at]
}

/// Numbers of `book` not yet bound.
pub fn free_numbers(book: &WaybillBook) -> u64 {
    book.blocks
        .iter()
        .filter_map(|c| c.block.as_ref().map(|b| (b.to + 1).saturating_sub(c.next)))
        .sum()
}

struct Ctx {
    index: u64,
    pos: u32,
    at_ms: u64,
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

    fn apply_action(
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
    fn transition(
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
    fn step(
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
    fn history_room(rec: &OrderRecord) -> Result<(), ActionOutcome> {
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

    fn hold(
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

    fn release(
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

    /// Binds the next free number of the order's carrier, and writes its print job in the same
    /// batch. With no number free the order is held (`waybill`) rather than failed.
    fn bind(
        &mut self,
        ctx: &Ctx,
        action: &OrderAction,
        rec: &mut OrderRecord,
        job: &mut Option<OutboxJob>,
        batch: &mut WriteBatch,
    ) -> Result<bool, ActionOutcome> {
        // A hold for want of numbers is what binding itself resolves.
        let other_holds = rec.holds.iter().any(|h| h.code != WAYBILL_HOLD);
        match decide(
            rec.status(),
            other_holds,
            rec.intercepted,
            Step::AssignWaybill,
        ) {
            Ok(Outcome::Moved { .. }) => {}
            Ok(_) => return Ok(false),
            Err(r) => return Err(refusal(r)),
        }
        let book_key = k::book(self.shard, rec.tenant_id, &rec.carrier);
        let mut book = self
            .book(rec.tenant_id, &rec.carrier)
            .unwrap_or_else(|e| storage_failed(e));
        let Some(at) = book
            .blocks
            .iter()
            .position(|c| c.block.as_ref().is_some_and(|b| c.next <= b.to))
        else {
            let hold = HoldEntry {
                code: WAYBILL_HOLD.into(),
                detail: format!("no waybill numbers for carrier {}", rec.carrier),
                ..HoldEntry::default()
            };
            return self.hold(ctx, action, rec, hold, batch);
        };
        let cursor = &mut book.blocks[at];
        let block = cursor.block.clone().unwrap_or_default();
        rec.waybill = waybill_number(&block.prefix, cursor.next, block.width);
        rec.waybill_range = block.range_id;
        cursor.next += 1;
        if cursor.next > block.to {
            book.blocks.remove(at);
        }
        usage_mut(&mut book, block.range_id).bound += 1;
        self.put(batch, Cf::OrderIndex, book_key, book.encode_to_vec());
        rec.holds.retain(|h| h.code != WAYBILL_HOLD);
        let new_job = OutboxJob {
            job_id: order_id(self.shard, ctx.index, ctx.pos as usize),
            tenant_id: rec.tenant_id,
            order_id: rec.order_id.clone(),
            ..OutboxJob::default()
        };
        rec.pending_job = new_job.job_id.clone();
        self.put_job(batch, &new_job);
        let mut fake = action.clone();
        fake.reason = rec.waybill.clone();
        self.transition(
            ctx,
            &fake,
            rec,
            OrderStatus::WaybillAssigned,
            "bind_waybill",
            batch,
        );
        *job = Some(new_job);
        Ok(true)
    }

    fn job_key(&self, job: &OutboxJob) -> Option<Vec<u8>> {
        let (_, index, pos) = parse_id(&job.job_id)?;
        Some(k::job(self.shard, job.tenant_id, index, pos))
    }

    fn put_job(&mut self, batch: &mut WriteBatch, job: &OutboxJob) {
        if let Some(key) = self.job_key(job) {
            self.put(batch, Cf::Outbox, key, job.encode_to_vec());
        }
    }

    fn load_job(&self, tenant: u64, job_id: &str) -> Result<Option<OutboxJob>, ActionOutcome> {
        let Some((_, index, pos)) = parse_id(job_id) else {
            return Err(refused(
                RefuseCode::NotFound,
                format!("job_id: malformed {job_id:?}"),
            ));
        };
        Ok(self
            .read_msg(Cf::Outbox, &k::job(self.shard, tenant, index, pos))
            .unwrap_or_else(|e| storage_failed(e)))
    }

    fn drop_pending_job(&mut self, rec: &mut OrderRecord, batch: &mut WriteBatch) {
        if rec.pending_job.is_empty() {
            return;
        }
        if let Some((_, index, pos)) = parse_id(&rec.pending_job) {
            self.delete(
                batch,
                Cf::Outbox,
                k::job(self.shard, rec.tenant_id, index, pos),
            );
        }
        rec.pending_job.clear();
    }

    #[allow(clippy::too_many_arguments)]
    fn printed(
        &mut self,
        ctx: &Ctx,
        action: &OrderAction,
        rec: &mut OrderRecord,
        job_id: &str,
        station: &str,
        job: &mut Option<OutboxJob>,
        batch: &mut WriteBatch,
    ) -> Result<bool, ActionOutcome> {
        if rec.pending_job != job_id {
            // Printed before (a retried ack), or voided by a cancel while it printed.
            if rec.status() == OrderStatus::Cancelled || rec.intercepted {
                return Err(refused(
                    RefuseCode::FailedPrecondition,
                    format!(
                        "order {} was cancelled: discard this label, its waybill is voided",
                        rec.order_id
                    ),
                ));
            }
            return Ok(false);
        }
        let done = self.load_job(rec.tenant_id, job_id)?;
        let reprint = done.as_ref().map_or(0, |j| j.reprint);
        // Decided before anything is written: a refusal leaves the job where it was.
        let moved = if reprint == 0 {
            match decide(rec.status(), false, rec.intercepted, Step::MarkPrinted) {
                Ok(Outcome::Moved { to, .. }) => Some(to),
                Ok(_) => None,
                Err(r) => return Err(refusal(r)),
            }
        } else {
            None
        };
        self.drop_pending_job(rec, batch);
        let mut fake = action.clone();
        fake.reason = format!("job {job_id} at station {station}");
        match moved {
            Some(to) => self.transition(ctx, &fake, rec, to, "print", batch),
            None => {
                let status = rec.status();
                let name = if reprint > 0 { "reprinted" } else { "print" };
                self.transition(ctx, &fake, rec, status, name, batch);
            }
        }
        *job = done;
        Ok(true)
    }

    /// Cancel: stopped (cancelled, or intercepted after printing) as `Ok(changed)`, or
    /// `TooLate` once shipped.
    fn cancel(
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

    /// A bound number is voided, never reissued; its pending job goes with it.
    fn void_waybill(
        &mut self,
        rec: &mut OrderRecord,
        batch: &mut WriteBatch,
    ) -> Result<(), EngineError> {
        self.drop_pending_job(rec, batch);
        if rec.waybill.is_empty() || rec.waybill_voided {
            return Ok(());
        }
        let mut book = self.book(rec.tenant_id, &rec.carrier)?;
        usage_mut(&mut book, rec.waybill_range).voided += 1;
        self.put(
            batch,
            Cf::OrderIndex,
            k::book(self.shard, rec.tenant_id, &rec.carrier),
            book.encode_to_vec(),
        );
        rec.waybill_voided = true;
        Ok(())
    }

    fn reprint(
        &mut self,
        ctx: &Ctx,
        action: &OrderAction,
        rec: &mut OrderRecord,
        job: &mut Option<OutboxJob>,
        batch: &mut WriteBatch,
    ) -> Result<bool, ActionOutcome> {
        let printable = matches!(
            rec.status(),
            OrderStatus::LabelPrinted | OrderStatus::Packed
        );
        if !printable || rec.intercepted {
            return Err(refused(
                RefuseCode::FailedPrecondition,
                format!("only a printed, not intercepted, unshipped order is reprinted; order {} is {:?}{}", rec.order_id, rec.status(), if rec.intercepted { " (intercepted)" } else { "" }),
            ));
        }
        if !rec.pending_job.is_empty() {
            // A reprint is already waiting: asking again does not print twice.
            *job = self.load_job(rec.tenant_id, &rec.pending_job)?;
            return Ok(false);
        }
        if rec.reprints >= MAX_REPRINTS {
            return Err(refused(
                RefuseCode::FailedPrecondition,
                format!(
                    "order {} was reprinted {MAX_REPRINTS} times, the most allowed",
                    rec.order_id
                ),
            ));
        }
        Self::history_room(rec)?;
        rec.reprints += 1;
        let new_job = OutboxJob {
            job_id: order_id(self.shard, ctx.index, ctx.pos as usize),
            tenant_id: rec.tenant_id,
            order_id: rec.order_id.clone(),
            reprint: rec.reprints,
            ..OutboxJob::default()
        };
        rec.pending_job = new_job.job_id.clone();
        self.put_job(batch, &new_job);
        let status = rec.status();
        self.transition(ctx, action, rec, status, "reprint", batch);
        *job = Some(new_job);
        Ok(true)
    }

    /// Leases the order's pending job to a station, unless another station holds a live lease.
    fn lease(
        &mut self,
        ctx: &Ctx,
        rec: &OrderRecord,
        lease: surge_proto::v1::JobLease,
        job: &mut Option<OutboxJob>,
        batch: &mut WriteBatch,
    ) -> Result<bool, ActionOutcome> {
        if rec.pending_job != lease.job_id {
            return Err(refused(
                RefuseCode::FailedPrecondition,
                format!("job {} is no longer pending", lease.job_id),
            ));
        }
        let Some(mut current) = self.load_job(rec.tenant_id, &lease.job_id)? else {
            return Err(refused(
                RefuseCode::FailedPrecondition,
                format!("job {} is no longer pending", lease.job_id),
            ));
        };
        let held_elsewhere = !current.leased_to.is_empty()
            && current.leased_to != lease.station
            && current.lease_until_ms > ctx.at_ms;
        if held_elsewhere {
            return Err(refused(
                RefuseCode::FailedPrecondition,
                format!(
                    "job {} is leased to station {} until {}",
                    lease.job_id, current.leased_to, current.lease_until_ms
                ),
            ));
        }
        current.leased_to = lease.station;
        current.lease_until_ms = lease.until_ms;
        current.deliveries += 1;
        self.put_job(batch, &current);
        *job = Some(current);
        Ok(false)
    }

    /// Adds a block the coordinator leased to this shard, once per lease sequence number.
    pub(crate) fn apply_add_block(
        &mut self,
        add: AddWaybillBlock,
        batch: &mut WriteBatch,
    ) -> Result<bool, EngineError> {
        let mut book = self.book(add.tenant_id, &add.carrier)?;
        let Some(block) = add.block else {
            return Ok(false);
        };
        if add.seq != book.next_seq || book.blocks.len() >= MAX_BLOCKS || block.from > block.to {
            return Ok(false);
        }
        book.next_seq += 1;
        usage_mut(&mut book, block.range_id).leased += block.to - block.from + 1;
        book.blocks.push(WaybillCursor {
            next: block.from,
            block: Some(block),
        });
        self.put(
            batch,
            Cf::OrderIndex,
            k::book(self.shard, add.tenant_id, &add.carrier),
            book.encode_to_vec(),
        );
        Ok(true)
    }
}
