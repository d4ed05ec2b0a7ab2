//! The shard state machine (DESIGN.md §3, §4, §5): intake of orders, deduplicated on (tenant,
//! platform, external order id), and every later step of an order's life (review, holds,
//! allocation, waybill binding, printing, packing, shipping, cancel), each applied from the
//! shard's log with the order row, its index rows, its history and its event written in the same
//! batch as the applied index. Key layout: [`crate::keys`].
//!
//! Rows changed by earlier entries of a round that is not yet written are read back from an
//! overlay, so two entries of one round see each other's effects.

use crate::families::{ORDERS, ORDER_INDEX, OUTBOX};
use std::collections::HashMap;
use std::sync::Arc;

use prost::Message as _;
use surge_proto::v1::shard_command::Command as ShardCmd;
use surge_proto::v1::{OrderEvent, OrderRecord, OrderStatus, ShardCommand, Transition};
use surge_storage::{Cf, Engine, EngineError, StateMachine, WriteBatch};

use crate::ids::order_id;
use crate::keys as k;
use crate::outcome::{acceptance_of, Applied, ItemOutcome, ShardOutput};
use crate::stage::stage_of;

/// One shard replica's state machine.
pub struct ShardSm<E: Engine> {
    pub(crate) shard: u32,
    pub(crate) engine: Arc<E>,
    /// Rows written by the current, not yet written, apply batch (None: deleted).
    staged: HashMap<(Cf, Vec<u8>), Option<Vec<u8>>>,
}

pub(crate) fn corrupt(cf: Cf, key: &[u8], e: prost::DecodeError) -> EngineError {
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
        self.read_msg(ORDERS, key)
    }

    pub(crate) fn load_order(&self, order_id: &str) -> Result<Option<OrderRecord>, EngineError> {
        self.load(&k::order(self.shard, order_id))
    }

    pub(crate) fn by_ext_key(&self, key: &[u8]) -> Result<Option<OrderRecord>, EngineError> {
        let Some(id) = self.read(ORDER_INDEX, key)? else {
            return Ok(None);
        };
        let id = String::from_utf8_lossy(&id).into_owned();
        self.load_order(&id)
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
                    ORDER_INDEX,
                    k::status(shard, tenant, old.status(), at, id),
                );
            }
            if let Some(stage) = stage_of(old).filter(|s| Some(*s) != stage_of(rec)) {
                let key = k::work(shard, stage as u8, tenant, at, id);
                self.delete(batch, ORDER_INDEX, key);
            }
        }
        if old.is_none_or(|o| o.status != rec.status) {
            self.put(
                batch,
                ORDER_INDEX,
                k::status(shard, tenant, rec.status(), at, id),
                Vec::new(),
            );
        }
        if let Some(stage) = stage_of(rec).filter(|s| old.and_then(stage_of) != Some(*s)) {
            self.put(
                batch,
                ORDER_INDEX,
                k::work(shard, stage as u8, tenant, at, id),
                Vec::new(),
            );
        }
        self.put(batch, ORDERS, k::order(shard, id), rec.encode_to_vec());
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
            OUTBOX,
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
            self.put(batch, ORDER_INDEX, key, rec.order_id.clone().into_bytes());
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

    fn apply_trim(&mut self, trim: surge_proto::v1::TrimEvents, batch: &mut WriteBatch) -> bool {
        let below = (trim.below_index, trim.below_pos);
        let horizon = self
            .trimmed_below(trim.tenant_id)
            .unwrap_or_else(|e| storage_failed(e));
        if below <= horizon {
            return false;
        }
        batch.delete_range(
            OUTBOX,
            k::event_prefix(self.shard, trim.tenant_id),
            k::event(self.shard, trim.tenant_id, below.0, below.1),
        );
        let key = k::trimmed(self.shard, trim.tenant_id);
        self.put(batch, ORDER_INDEX, key, k::encode_position(below));
        true
    }
}

/// A read failing in the middle of applying an entry leaves this replica unable to apply it as
/// the others do (part of the entry's writes are staged). The replica stops: on restart it
/// applies the entry again from its last applied index, or is rebuilt from a snapshot.
pub(crate) fn storage_failed(e: EngineError) -> ! {
    panic!("storage failed while applying a shard entry; stopping this replica: {e}")
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
