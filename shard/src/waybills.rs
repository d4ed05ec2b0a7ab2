//! Waybill numbers inside the shard: binding an allocated order to the next free number of its
//! tenant's book for the carrier (and creating its print job in the same batch), voiding a
//! bound number, and adding the blocks the coordinator leased to the book.

use crate::families::ORDER_INDEX;
use prost::Message as _;
use surge_proto::v1::{
    AddWaybillBlock, HoldEntry, OrderAction, OrderRecord, OrderStatus, OutboxJob, RangeUsage,
    WaybillBook, WaybillCursor,
};
use surge_storage::{Engine, EngineError, WriteBatch};

use crate::actions::{refusal, Ctx, MAX_BLOCKS};
use crate::ids::order_id;
use crate::keys as k;
use crate::lifecycle::{decide, Outcome, Step};
use crate::outcome::ActionOutcome;
use crate::stage::WAYBILL_HOLD;
use crate::state::{storage_failed, ShardSm};

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

/// Longest number a block may carry (the coordinators' ranges allow 18 digits), widest
/// zero-padding, longest prefix and most numbers in one block; a block past any of them is no
/// block the coordinators lease, and is refused before it can reach a shard's log.
pub const MAX_WAYBILL_NUMBER: u64 = 999_999_999_999_999_999;
pub const MAX_WAYBILL_WIDTH: u32 = 20;
pub const MAX_WAYBILL_PREFIX: usize = 16;
pub const MAX_BLOCK_NUMBERS: u64 = 100_000_000;

/// Whether `block` is one the coordinators could have leased (see the limits above).
pub fn sane_block(block: &surge_proto::v1::WaybillBlock) -> bool {
    block.from <= block.to
        && block.to <= MAX_WAYBILL_NUMBER
        && block.to - block.from < MAX_BLOCK_NUMBERS
        && block.width <= MAX_WAYBILL_WIDTH
        && block.prefix.len() <= MAX_WAYBILL_PREFIX
}

/// Numbers of `book` not yet bound.
pub fn free_numbers(book: &WaybillBook) -> u64 {
    book.blocks
        .iter()
        .filter_map(|c| {
            c.block
                .as_ref()
                .map(|b| b.to.saturating_add(1).saturating_sub(c.next))
        })
        .fold(0, u64::saturating_add)
}

impl<E: Engine> ShardSm<E> {
    /// Binds the next free number of the order's carrier, and writes its print job in the same
    /// batch. With no number free the order is held (`waybill`) rather than failed.
    pub(crate) fn bind(
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
        let usage = usage_mut(&mut book, block.range_id);
        usage.bound = usage.bound.saturating_add(1);
        self.put(batch, ORDER_INDEX, book_key, book.encode_to_vec());
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

    /// A bound number is voided, never reissued; its pending job goes with it.
    pub(crate) fn void_waybill(
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
            ORDER_INDEX,
            k::book(self.shard, rec.tenant_id, &rec.carrier),
            book.encode_to_vec(),
        );
        rec.waybill_voided = true;
        Ok(())
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
        if add.seq != book.next_seq || book.blocks.len() >= MAX_BLOCKS || !sane_block(&block) {
            return Ok(false);
        }
        book.next_seq += 1;
        let usage = usage_mut(&mut book, block.range_id);
        usage.leased = usage.leased.saturating_add(block.to - block.from + 1);
        book.blocks.push(WaybillCursor {
            next: block.from,
            block: Some(block),
        });
        self.put(
            batch,
            ORDER_INDEX,
            k::book(self.shard, add.tenant_id, &add.carrier),
            book.encode_to_vec(),
        );
        Ok(true)
    }
}
