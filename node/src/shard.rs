//! The shard state machine: intake of orders, deduplicated on (tenant, platform, external
//! order id), with the order row and its index rows written in the same batch as the applied
//! index (DESIGN.md §3, §7).
//!
//! Key layout (every key under the shard's group prefix):
//! - `orders`: `shard | order id` → [`OrderRecord`]
//! - `order_index`: `shard | 'x' | tenant | len(platform) | platform | external id` → order id
//! - `order_index`: `shard | 's' | tenant | status | accepted_at | order id` → ∅

use std::collections::HashMap;
use std::sync::Arc;

use prost::Message as _;
use surge_proto::v1::shard_command::Command as ShardCmd;
use surge_proto::v1::{Acceptance, OrderRecord, OrderStatus, OrderView, ShardCommand};
use surge_raftstore::keys;
use surge_raftstore::{Cf, Engine, EngineError, StateMachine, WriteBatch};

const EXT_TAG: u8 = b'x';
const STATUS_TAG: u8 = b's';

/// What applying one submitted order produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ItemOutcome {
    /// Stored now, or (with `duplicate`) earlier with the same payload.
    Accepted(Acceptance),
    /// The external id is taken by another payload.
    Conflict { existing_order_id: String },
}

/// The output of one applied command.
pub type ShardOutput = Result<Vec<ItemOutcome>, String>;

/// `<shard>-<index>-<pos>`: the order id carries its shard.
pub fn order_id(shard: u32, index: u64, pos: usize) -> String {
    format!("{shard}-{index}-{pos}")
}

/// The shard an order id names, if it is well formed.
pub fn shard_of(order_id: &str) -> Option<u32> {
    let mut parts = order_id.split('-');
    let shard = parts.next()?.parse().ok()?;
    parts.next()?.parse::<u64>().ok()?;
    parts.next()?.parse::<u32>().ok()?;
    parts.next().is_none().then_some(shard)
}

fn ext_key(shard: u32, tenant: u64, platform: &str, external_id: &str) -> Vec<u8> {
    let mut suffix = Vec::with_capacity(10 + platform.len() + external_id.len());
    suffix.push(EXT_TAG);
    suffix.extend_from_slice(&tenant.to_be_bytes());
    // Length-prefixed, so no platform/id split can collide with another.
    suffix.push(platform.len().min(255) as u8);
    suffix.extend_from_slice(platform.as_bytes());
    suffix.extend_from_slice(external_id.as_bytes());
    keys::data_key(u64::from(shard), &suffix)
}

fn status_prefix(shard: u32, tenant: u64, status: OrderStatus) -> Vec<u8> {
    let mut suffix = Vec::with_capacity(10);
    suffix.push(STATUS_TAG);
    suffix.extend_from_slice(&tenant.to_be_bytes());
    suffix.push(status as i32 as u8);
    keys::data_key(u64::from(shard), &suffix)
}

fn status_key(shard: u32, rec: &OrderRecord) -> Vec<u8> {
    let mut key = status_prefix(shard, rec.tenant_id, rec.status());
    key.extend_from_slice(&rec.accepted_at_ms.to_be_bytes());
    key.extend_from_slice(rec.order_id.as_bytes());
    key
}

fn order_key(shard: u32, order_id: &str) -> Vec<u8> {
    keys::data_key(u64::from(shard), order_id.as_bytes())
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

/// One shard replica's state machine.
pub struct ShardSm<E: Engine> {
    shard: u32,
    engine: Arc<E>,
    /// Records applied in the current, not yet written, apply batch, by external-id key.
    staged: HashMap<Vec<u8>, OrderRecord>,
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

    fn load(&self, key: &[u8]) -> Result<Option<OrderRecord>, EngineError> {
        let Some(bytes) = self.engine.get(Cf::Orders, key)? else {
            return Ok(None);
        };
        OrderRecord::decode(bytes.as_slice())
            .map(Some)
            .map_err(|e| EngineError::Corrupt {
                cf: Cf::Orders,
                key: key.to_vec(),
                reason: e.to_string(),
            })
    }

    fn by_ext_key(&self, key: &[u8]) -> Result<Option<OrderRecord>, EngineError> {
        if let Some(rec) = self.staged.get(key) {
            return Ok(Some(rec.clone()));
        }
        let Some(id) = self.engine.get(Cf::OrderIndex, key)? else {
            return Ok(None);
        };
        let id = String::from_utf8_lossy(&id).into_owned();
        self.load(&order_key(self.shard, &id))
    }

    /// The order `order_id` if it belongs to `tenant`.
    pub fn get(&self, tenant: u64, order_id: &str) -> Result<Option<OrderRecord>, EngineError> {
        Ok(self
            .load(&order_key(self.shard, order_id))?
            .filter(|r| r.tenant_id == tenant))
    }

    pub fn get_by_external(
        &self,
        tenant: u64,
        platform: &str,
        external_id: &str,
    ) -> Result<Option<OrderRecord>, EngineError> {
        self.by_ext_key(&ext_key(self.shard, tenant, platform, external_id))
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
        let prefix = status_prefix(self.shard, tenant, status);
        let mut start = prefix.clone();
        start.extend_from_slice(&from_ms.to_be_bytes());
        if let Some(c) = after {
            let mut from_cursor = prefix.clone();
            from_cursor.extend_from_slice(&c.at_ms.to_be_bytes());
            from_cursor.extend_from_slice(c.order_id.as_bytes());
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
            .scan(Cf::OrderIndex, &start, &end, &mut |k, _| {
                if let Some(id) = k.get(prefix.len() + 8..) {
                    ids.push(String::from_utf8_lossy(id).into_owned());
                }
                ids.len() < limit
            })?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(rec) = self.load(&order_key(self.shard, &id))? {
                out.push(rec);
            }
        }
        Ok(out)
    }

    fn apply_command(&mut self, index: u64, data: &[u8], batch: &mut WriteBatch) -> ShardOutput {
        let cmd = ShardCommand::decode(data).map_err(|e| format!("undecodable command: {e}"))?;
        match cmd.command {
            Some(ShardCmd::Submit(submit)) => {
                let mut outcomes = Vec::with_capacity(submit.items.len());
                for (pos, item) in submit.items.into_iter().enumerate() {
                    let Some(order) = item.order else {
                        return Err(format!("item {pos} carries no order"));
                    };
                    let key = ext_key(
                        self.shard,
                        submit.tenant_id,
                        &order.platform,
                        &order.external_order_id,
                    );
                    let existing = self.by_ext_key(&key).map_err(|e| e.to_string())?;
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
                    let rec = OrderRecord {
                        order_id: order_id(self.shard, index, pos),
                        tenant_id: submit.tenant_id,
                        shard: self.shard,
                        status: OrderStatus::Received as i32,
                        accepted_at_ms: submit.received_at_ms,
                        payload_hash: item.payload_hash,
                        order: Some(order),
                    };
                    batch.put(
                        Cf::Orders,
                        order_key(self.shard, &rec.order_id),
                        rec.encode_to_vec(),
                    );
                    batch.put(
                        Cf::OrderIndex,
                        key.clone(),
                        rec.order_id.clone().into_bytes(),
                    );
                    batch.put(Cf::OrderIndex, status_key(self.shard, &rec), Vec::new());
                    outcomes.push(ItemOutcome::Accepted(acceptance_of(&rec)));
                    self.staged.insert(key, rec);
                }
                Ok(outcomes)
            }
            None => Err("empty command".into()),
        }
    }
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
        out.expect("applied")
    }

    fn accepted(o: &ItemOutcome) -> &Acceptance {
        match o {
            ItemOutcome::Accepted(a) => a,
            other => panic!("not accepted: {other:?}"),
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
        let one = sm
            .apply(
                5,
                &submit(1, 1, vec![order("B", "x"), order("B", "x")]),
                &mut batch,
            )
            .expect("applied");
        let two = sm
            .apply(6, &submit(1, 2, vec![order("B", "y")]), &mut batch)
            .expect("applied");
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
