//! The shard state machine (DESIGN.md §3, §4, §5): intake of orders, deduplicated on (tenant,
//! platform, external order id), and every later step of an order's life (review, holds,
//! allocation, waybill binding, printing, packing, shipping, cancel), each applied from the
//! shard's log with the order row, its index rows, its history and its event written in the same
//! batch as the applied index. Key layout: [`crate::shard_keys`].
//!
//! Rows changed by earlier entries of a round that is not yet written are read back from an
//! overlay, so two entries of one round see each other's effects.

use std::collections::HashMap;
use std::sync::Arc;

use prost::Message as _;
use surge_proto::v1::shard_command::Command as ShardCmd;
use surge_proto::v1::{
    Acceptance, OrderEvent, OrderRecord, OrderStatus, OrderView, OutboxJob, ShardCommand,
    Transition, WaybillBook,
};
use surge_raftstore::keys;
use surge_raftstore::{Cf, Engine, EngineError, StateMachine, WriteBatch};

use crate::shard_actions::ActionOutcome;
use crate::shard_keys as k;

/// What applying one submitted order produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ItemOutcome {
    /// Stored now, or (with `duplicate`) earlier with the same payload.
    Accepted(Acceptance),
    /// The external id is taken by another payload.
    Conflict { existing_order_id: String },
}

/// What one applied command answers.
#[derive(Clone, Debug, PartialEq)]
pub enum Applied {
    Submitted(Vec<ItemOutcome>),
    Actions(Vec<ActionOutcome>),
    /// Whether the block was new (false: this lease sequence number was already added).
    BlockAdded(bool),
    /// Whether events were trimmed (false: already trimmed that far).
    Trimmed(bool),
}

/// A watch position older than the events retention kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Trimmed {
    /// The oldest position a watch can resume from.
    pub below: (u64, u32),
}

/// The output of one applied command.
pub type ShardOutput = Result<Applied, String>;

/// `<shard>-<index>-<pos>`: the order id (and print job id) carries its shard.
pub fn order_id(shard: u32, index: u64, pos: usize) -> String {
    format!("{shard}-{index}-{pos}")
}

/// The shard, index and position an order or job id names, if it is well formed.
pub fn parse_id(id: &str) -> Option<(u32, u64, u32)> {
    let mut parts = id.split('-');
    let shard = parts.next()?.parse().ok()?;
    let index = parts.next()?.parse::<u64>().ok()?;
    let pos = parts.next()?.parse::<u32>().ok()?;
    parts.next().is_none().then_some((shard, index, pos))
}

/// The shard an order id names, if it is well formed.
pub fn shard_of(order_id: &str) -> Option<u32> {
    parse_id(order_id).map(|(shard, _, _)| shard)
}

/// A position in a listing: acceptance time, then order id.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cursor {
    pub at_ms: u64,
    pub order_id: String,
}

impl Cursor {
    /// `"<at_ms>:<order id>"`, the page token format.
    pub fn encode(&self) -> String {
        format!("{}:{}", self.at_ms, self.order_id)
    }

    pub fn decode(token: &str) -> Option<Cursor> {
        let (at, id) = token.split_once(':')?;
        Some(Cursor {
            at_ms: at.parse().ok()?,
            order_id: id.to_string(),
        })
    }
}

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

/// One shard replica's state machine.
pub struct ShardSm<E: Engine> {
    pub(crate) shard: u32,
    pub(crate) engine: Arc<E>,
    /// Rows written by the current, not yet written, apply batch (None: deleted).
    staged: HashMap<(Cf, Vec<u8>), Option<Vec<u8>>>,
}

fn corrupt(cf: Cf, key: &[u8], e: prost::DecodeError) -> EngineError {
    EngineError::Corrupt {
        cf,
        key: key.to_vec(),
        reason: e.to_string(),
    }
}

impl<E: Engine> ShardSm<E> {
    pub fn new(shard: u32, engine: Arc<E>) -> ShardSm<E> {
        ShardSm {
            shard,
            engine,
            staged: HashMap::new(),
        }
    }

    pub fn shard(&self) -> u32 {
        self.shard
    }

    /// A row as the state machine sees it: staged in this round, else on disk.
    pub(crate) fn read(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>, EngineError> {
        if let Some(staged) = self.staged.get(&(cf, key.to_vec())) {
            return Ok(staged.clone());
        }
        self.engine.get(cf, key)
    }

    pub(crate) fn read_msg<M: prost::Message + Default>(
        &self,
        cf: Cf,
        key: &[u8],
    ) -> Result<Option<M>, EngineError> {
        match self.read(cf, key)? {
            Some(bytes) => M::decode(bytes.as_slice())
                .map(Some)
                .map_err(|e| corrupt(cf, key, e)),
            None => Ok(None),
        }
    }

    pub(crate) fn put(&mut self, batch: &mut WriteBatch, cf: Cf, key: Vec<u8>, value: Vec<u8>) {
        batch.put(cf, key.clone(), value.clone());
        self.staged.insert((cf, key), Some(value));
    }

    pub(crate) fn delete(&mut self, batch: &mut WriteBatch, cf: Cf, key: Vec<u8>) {
        batch.delete(cf, key.clone());
        self.staged.insert((cf, key), None);
    }

    fn load(&self, key: &[u8]) -> Result<Option<OrderRecord>, EngineError> {
        self.read_msg(Cf::Orders, key)
    }

    pub(crate) fn load_order(&self, order_id: &str) -> Result<Option<OrderRecord>, EngineError> {
        self.load(&k::order(self.shard, order_id))
    }

    fn by_ext_key(&self, key: &[u8]) -> Result<Option<OrderRecord>, EngineError> {
        let Some(id) = self.read(Cf::OrderIndex, key)? else {
            return Ok(None);
        };
        let id = String::from_utf8_lossy(&id).into_owned();
        self.load_order(&id)
    }

    /// The order `order_id` if it belongs to `tenant`.
    pub fn get(&self, tenant: u64, order_id: &str) -> Result<Option<OrderRecord>, EngineError> {
        Ok(self.load_order(order_id)?.filter(|r| r.tenant_id == tenant))
    }

    pub fn get_by_external(
        &self,
        tenant: u64,
        platform: &str,
        external_id: &str,
    ) -> Result<Option<OrderRecord>, EngineError> {
        self.by_ext_key(&k::ext(self.shard, tenant, platform, external_id))
    }

    /// Up to `limit` orders of `tenant` in `status`, accepted in `[from_ms, to_ms)` and after
    /// `after`, oldest first.
    pub fn list(
        &self,
        tenant: u64,
        status: OrderStatus,
        from_ms: u64,
        to_ms: u64,
        after: Option<&Cursor>,
        limit: usize,
    ) -> Result<Vec<OrderRecord>, EngineError> {
        let prefix = k::status_prefix(self.shard, tenant, status);
        let mut start = prefix.clone();
        start.extend_from_slice(&from_ms.to_be_bytes());
        if let Some(c) = after {
            let mut from_cursor = k::status(self.shard, tenant, status, c.at_ms, &c.order_id);
            from_cursor.push(0);
            start = start.max(from_cursor);
        }
        let end = if to_ms == 0 {
            keys::prefix_end(&prefix)
        } else {
            let mut end = prefix.clone();
            end.extend_from_slice(&to_ms.to_be_bytes());
            end
        };
        let mut ids = Vec::new();
        self.engine
            .scan(Cf::OrderIndex, &start, &end, &mut |key, _| {
                if let Some(id) = key.get(prefix.len() + 8..) {
                    ids.push(String::from_utf8_lossy(id).into_owned());
                }
                ids.len() < limit
            })?;
        self.load_all(ids)
    }

    fn load_all(&self, ids: Vec<String>) -> Result<Vec<OrderRecord>, EngineError> {
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(rec) = self.load_order(&id)? {
                out.push(rec);
            }
        }
        Ok(out)
    }

    /// Orders waiting in `stage`: each tenant's oldest, at most `per_tenant` of one tenant and
    /// `total` in all, starting at tenant `from` and wrapping around, so that one tenant's
    /// orders that cannot move (e.g. waiting for numbers) never hide another tenant's. Answers
    /// the tenant to start from next time (where `total` cut the scan short, else 0).
    pub fn pending(
        &self,
        stage: Stage,
        from: u64,
        per_tenant: usize,
        total: usize,
    ) -> Result<(Vec<OrderRecord>, u64), EngineError> {
        let prefix = k::work_prefix(self.shard, stage as u8);
        let body = prefix.len();
        let mut ids = Vec::new();
        let mut next = 0;
        // Two passes: [from, end), then [0, from).
        let passes = [
            (
                k::work_tenant(self.shard, stage as u8, from),
                keys::prefix_end(&prefix),
            ),
            (
                prefix.clone(),
                k::work_tenant(self.shard, stage as u8, from),
            ),
        ];
        'passes: for (mut start, end) in passes {
            loop {
                if start >= end {
                    continue 'passes;
                }
                let mut current: Option<u64> = None;
                let mut in_tenant = 0;
                let mut full_tenant = None;
                self.engine
                    .scan(Cf::OrderIndex, &start, &end, &mut |key, _| {
                        let Some(tenant) = key
                            .get(body..body + 8)
                            .and_then(|b| b.try_into().ok())
                            .map(u64::from_be_bytes)
                        else {
                            return true;
                        };
                        if current != Some(tenant) {
                            current = Some(tenant);
                            in_tenant = 0;
                        }
                        if in_tenant >= per_tenant {
                            full_tenant = Some(tenant);
                            return false;
                        }
                        if let Some(id) = key.get(body + 16..) {
                            ids.push(String::from_utf8_lossy(id).into_owned());
                            in_tenant += 1;
                        }
                        ids.len() < total
                    })?;
                if ids.len() >= total {
                    next = current.map_or(0, |t| t.wrapping_add(1));
                    break 'passes;
                }
                match full_tenant {
                    // Skip the rest of that tenant's orders.
                    Some(t) if t < u64::MAX => {
                        start = k::work_tenant(self.shard, stage as u8, t + 1)
                    }
                    _ => continue 'passes,
                }
            }
        }
        Ok((self.load_all(ids)?, next))
    }

    /// Every waybill book of the shard: `(tenant, carrier, book)`.
    pub fn books(&self) -> Result<Vec<(u64, String, WaybillBook)>, EngineError> {
        let prefix = k::book_prefix(self.shard);
        let mut out = Vec::new();
        let mut failed = None;
        self.engine.scan(
            Cf::OrderIndex,
            &prefix,
            &keys::prefix_end(&prefix),
            &mut |key, value| {
                match (k::parse_book(8, key), WaybillBook::decode(value)) {
                    (Some((tenant, carrier)), Ok(book)) => out.push((tenant, carrier, book)),
                    (_, Err(e)) => failed = Some(corrupt(Cf::OrderIndex, key, e)),
                    (None, Ok(_)) => {}
                }
                failed.is_none()
            },
        )?;
        failed.map_or(Ok(out), Err)
    }

    pub(crate) fn book(&self, tenant: u64, carrier: &str) -> Result<WaybillBook, EngineError> {
        Ok(self
            .read_msg(Cf::OrderIndex, &k::book(self.shard, tenant, carrier))?
            .unwrap_or_default())
    }

    /// Up to `limit` unprinted jobs of `tenant`, oldest first.
    pub fn jobs(&self, tenant: u64, limit: usize) -> Result<Vec<OutboxJob>, EngineError> {
        self.scan_msgs(&k::job_prefix(self.shard, tenant), None, limit)
    }

    /// Up to `limit` events of `tenant` after the log position `(index, pos)`; `(0, 0)` reads
    /// from the oldest event kept. A position older than what retention kept is refused with
    /// the oldest position that can be resumed from: events after it were deleted.
    pub fn events(
        &self,
        tenant: u64,
        after: (u64, u32),
        limit: usize,
    ) -> Result<Result<Vec<OrderEvent>, Trimmed>, EngineError> {
        let horizon = self.trimmed_below(tenant)?;
        if after != (0, 0) && after < horizon {
            return Ok(Err(Trimmed { below: horizon }));
        }
        let mut start = k::event(self.shard, tenant, after.0, after.1);
        start.push(0);
        Ok(Ok(self.scan_msgs(
            &k::event_prefix(self.shard, tenant),
            Some(start),
            limit,
        )?))
    }

    /// The position `tenant`'s events were trimmed below, `(0, 0)` if never.
    pub fn trimmed_below(&self, tenant: u64) -> Result<(u64, u32), EngineError> {
        Ok(self
            .read(Cf::OrderIndex, &k::trimmed(self.shard, tenant))?
            .and_then(|v| k::decode_position(&v))
            .unwrap_or_default())
    }

    /// Where to trim `tenant`'s events so that none older than `cutoff_ms` stays, looking at
    /// no more than `max_scan` events: the position of the first event to keep (or, when the
    /// scan stopped first, just past the last one looked at). None when nothing is that old.
    pub fn trim_point(
        &self,
        tenant: u64,
        cutoff_ms: u64,
        max_scan: usize,
    ) -> Result<Option<(u64, u32)>, EngineError> {
        let events: Vec<OrderEvent> =
            self.scan_msgs(&k::event_prefix(self.shard, tenant), None, max_scan)?;
        let Some(first) = events.first() else {
            return Ok(None);
        };
        if first.at_ms >= cutoff_ms {
            return Ok(None);
        }
        Ok(Some(match events.iter().find(|e| e.at_ms >= cutoff_ms) {
            Some(keep) => (keep.index, keep.pos),
            None => events
                .last()
                .map(|e| (e.index, e.pos + 1))
                .unwrap_or_default(),
        }))
    }

    fn apply_trim(&mut self, trim: surge_proto::v1::TrimEvents, batch: &mut WriteBatch) -> bool {
        let below = (trim.below_index, trim.below_pos);
        let horizon = self
            .trimmed_below(trim.tenant_id)
            .unwrap_or_else(|e| storage_failed(e));
        if below <= horizon {
            return false;
        }
        batch.delete_range(
            Cf::Outbox,
            k::event_prefix(self.shard, trim.tenant_id),
            k::event(self.shard, trim.tenant_id, below.0, below.1),
        );
        let key = k::trimmed(self.shard, trim.tenant_id);
        self.put(batch, Cf::OrderIndex, key, k::encode_position(below));
        true
    }

    fn scan_msgs<M: prost::Message + Default>(
        &self,
        prefix: &[u8],
        start: Option<Vec<u8>>,
        limit: usize,
    ) -> Result<Vec<M>, EngineError> {
        let mut out = Vec::new();
        let mut failed = None;
        let start = start.unwrap_or_else(|| prefix.to_vec());
        self.engine.scan(
            Cf::Outbox,
            &start,
            &keys::prefix_end(prefix),
            &mut |key, value| {
                match M::decode(value) {
                    Ok(m) => out.push(m),
                    Err(e) => failed = Some(corrupt(Cf::Outbox, key, e)),
                }
                failed.is_none() && out.len() < limit
            },
        )?;
        failed.map_or(Ok(out), Err)
    }

    /// Writes `rec` and moves its status and pipeline index rows from what `old` had.
    pub(crate) fn store(
        &mut self,
        batch: &mut WriteBatch,
        old: Option<&OrderRecord>,
        rec: &OrderRecord,
    ) {
        let shard = self.shard;
        let (tenant, at, id) = (rec.tenant_id, rec.accepted_at_ms, rec.order_id.as_str());
        if let Some(old) = old {
            if old.status != rec.status {
                self.delete(
                    batch,
                    Cf::OrderIndex,
                    k::status(shard, tenant, old.status(), at, id),
                );
            }
            if let Some(stage) = stage_of(old).filter(|s| Some(*s) != stage_of(rec)) {
                let key = k::work(shard, stage as u8, tenant, at, id);
                self.delete(batch, Cf::OrderIndex, key);
            }
        }
        if old.is_none_or(|o| o.status != rec.status) {
            self.put(
                batch,
                Cf::OrderIndex,
                k::status(shard, tenant, rec.status(), at, id),
                Vec::new(),
            );
        }
        if let Some(stage) = stage_of(rec).filter(|s| old.and_then(stage_of) != Some(*s)) {
            self.put(
                batch,
                Cf::OrderIndex,
                k::work(shard, stage as u8, tenant, at, id),
                Vec::new(),
            );
        }
        self.put(batch, Cf::Orders, k::order(shard, id), rec.encode_to_vec());
    }

    /// Appends `t` to the order's history and writes it as the event at `(index, pos)`.
    pub(crate) fn record(
        &mut self,
        batch: &mut WriteBatch,
        rec: &mut OrderRecord,
        index: u64,
        pos: u32,
        t: Transition,
    ) {
        let order = rec.order.as_ref();
        let event = OrderEvent {
            order_id: rec.order_id.clone(),
            shard: self.shard,
            index,
            pos,
            from: t.from,
            to: t.to,
            action: t.action.clone(),
            actor: t.actor.clone(),
            reason: t.reason.clone(),
            at_ms: t.at_ms,
            external_order_id: order
                .map(|o| o.external_order_id.clone())
                .unwrap_or_default(),
            platform: order.map(|o| o.platform.clone()).unwrap_or_default(),
            waybill: rec.waybill.clone(),
            carrier: rec.carrier.clone(),
        };
        // Events are only read outside apply: no need to stage them.
        batch.put(
            Cf::Outbox,
            k::event(self.shard, rec.tenant_id, index, pos),
            event.encode_to_vec(),
        );
        rec.history.push(t);
    }

    fn apply_submit(
        &mut self,
        index: u64,
        submit: surge_proto::v1::SubmitBatch,
        batch: &mut WriteBatch,
    ) -> ShardOutput {
        let mut outcomes = Vec::with_capacity(submit.items.len());
        for (pos, item) in submit.items.into_iter().enumerate() {
            let Some(order) = item.order else {
                return Err(format!("item {pos} carries no order"));
            };
            let key = k::ext(
                self.shard,
                submit.tenant_id,
                &order.platform,
                &order.external_order_id,
            );
            let existing = self.by_ext_key(&key).unwrap_or_else(|e| storage_failed(e));
            if let Some(rec) = existing {
                if rec.payload_hash == item.payload_hash {
                    let mut acceptance = acceptance_of(&rec);
                    acceptance.duplicate = true;
                    outcomes.push(ItemOutcome::Accepted(acceptance));
                } else {
                    outcomes.push(ItemOutcome::Conflict {
                        existing_order_id: rec.order_id,
                    });
                }
                continue;
            }
            let mut rec = OrderRecord {
                order_id: order_id(self.shard, index, pos),
                tenant_id: submit.tenant_id,
                shard: self.shard,
                status: OrderStatus::Received as i32,
                accepted_at_ms: submit.received_at_ms,
                payload_hash: item.payload_hash,
                order: Some(order),
                ..OrderRecord::default()
            };
            let intake = Transition {
                from: OrderStatus::Unspecified as i32,
                to: OrderStatus::Received as i32,
                action: "receive".into(),
                actor: "intake".into(),
                reason: String::new(),
                at_ms: submit.received_at_ms,
            };
            self.record(batch, &mut rec, index, pos as u32, intake);
            self.put(
                batch,
                Cf::OrderIndex,
                key,
                rec.order_id.clone().into_bytes(),
            );
            self.store(batch, None, &rec);
            outcomes.push(ItemOutcome::Accepted(acceptance_of(&rec)));
        }
        Ok(Applied::Submitted(outcomes))
    }

    fn apply_command(&mut self, index: u64, data: &[u8], batch: &mut WriteBatch) -> ShardOutput {
        let cmd = ShardCommand::decode(data).map_err(|e| format!("undecodable command: {e}"))?;
        match cmd.command {
            Some(ShardCmd::Submit(submit)) => self.apply_submit(index, submit, batch),
            Some(ShardCmd::Actions(actions)) => Ok(Applied::Actions(
                self.apply_actions(index, actions, batch)
                    .unwrap_or_else(|e| storage_failed(e)),
            )),
            Some(ShardCmd::TrimEvents(trim)) => Ok(Applied::Trimmed(self.apply_trim(trim, batch))),
            Some(ShardCmd::AddBlock(add)) => Ok(Applied::BlockAdded(
                self.apply_add_block(add, batch)
                    .unwrap_or_else(|e| storage_failed(e)),
            )),
            None => Err("empty command".into()),
        }
    }
}

/// A read failing in the middle of applying an entry leaves this replica unable to apply it as
/// the others do (part of the entry's writes are staged). The replica stops: on restart it
/// applies the entry again from its last applied index, or is rebuilt from a snapshot.
pub(crate) fn storage_failed(e: EngineError) -> ! {
    panic!("storage failed while applying a shard entry; stopping this replica: {e}")
}

/// The acceptance a stored record answers with.
pub fn acceptance_of(rec: &OrderRecord) -> Acceptance {
    Acceptance {
        order_id: rec.order_id.clone(),
        shard: rec.shard,
        status: rec.status,
        accepted_at_ms: rec.accepted_at_ms,
        duplicate: false,
    }
}

pub fn view_of(rec: OrderRecord) -> OrderView {
    OrderView {
        order_id: rec.order_id,
        shard: rec.shard,
        status: rec.status,
        accepted_at_ms: rec.accepted_at_ms,
        order: rec.order,
        history: rec.history,
        holds: rec.holds,
        intercepted: rec.intercepted,
        carrier: rec.carrier,
        carrier_rule: rec.carrier_rule,
        waybill: rec.waybill,
        waybill_voided: rec.waybill_voided,
        reprints: rec.reprints,
    }
}

impl<E: Engine> StateMachine for ShardSm<E> {
    type Output = ShardOutput;

    fn apply(&mut self, index: u64, data: &[u8], batch: &mut WriteBatch) -> ShardOutput {
        self.apply_command(index, data, batch)
    }

    fn on_batch_written(&mut self) {
        self.staged.clear();
    }

    fn reload(&mut self) -> Result<(), EngineError> {
        self.staged.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use surge_proto::v1::{Order, SubmitBatch, SubmitItem};
    use surge_raftstore::MemEngine;

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
        let mut sm = ShardSm::new(3, Arc::new(MemEngine::default()));
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
        let mut sm = ShardSm::new(0, Arc::new(MemEngine::default()));
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
            .filter(|op| matches!(op, surge_raftstore::WriteOp::Put { cf: Cf::Orders, .. }))
            .count();
        assert_eq!(stored_rows, 1);
    }

    #[test]
    fn listing_is_by_status_and_time_and_pages_by_cursor() {
        let mut sm = ShardSm::new(1, Arc::new(MemEngine::default()));
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
}
