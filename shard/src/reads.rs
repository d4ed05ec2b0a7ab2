//! What the shard state machine answers to reads (run off the raft loop, on the engine's
//! current state): orders by id, external id and status, the pipeline's work lists, waybill
//! books, unprinted jobs and the event log.

use crate::families::{ORDER_INDEX, OUTBOX};
use prost::Message as _;
use surge_proto::v1::{OrderEvent, OrderRecord, OrderStatus, OutboxJob, WaybillBook};
use surge_storage::{keys, Engine, EngineError};

use crate::ids::Cursor;
use crate::keys as k;
use crate::outcome::Trimmed;
use crate::stage::Stage;
use crate::state::{corrupt, ShardSm};

impl<E: Engine> ShardSm<E> {
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
        self.engine.scan(ORDER_INDEX, &start, &end, &mut |key, _| {
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
                self.engine.scan(ORDER_INDEX, &start, &end, &mut |key, _| {
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
            ORDER_INDEX,
            &prefix,
            &keys::prefix_end(&prefix),
            &mut |key, value| {
                match (k::parse_book(8, key), WaybillBook::decode(value)) {
                    (Some((tenant, carrier)), Ok(book)) => out.push((tenant, carrier, book)),
                    (_, Err(e)) => failed = Some(corrupt(ORDER_INDEX, key, e)),
                    (None, Ok(_)) => {}
                }
                failed.is_none()
            },
        )?;
        failed.map_or(Ok(out), Err)
    }

    pub(crate) fn book(&self, tenant: u64, carrier: &str) -> Result<WaybillBook, EngineError> {
        Ok(self
            .read_msg(ORDER_INDEX, &k::book(self.shard, tenant, carrier))?
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
            .read(ORDER_INDEX, &k::trimmed(self.shard, tenant))?
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
            OUTBOX,
            &start,
            &keys::prefix_end(prefix),
            &mut |key, value| {
                match M::decode(value) {
                    Ok(m) => out.push(m),
                    Err(e) => failed = Some(corrupt(OUTBOX, key, e)),
                }
                failed.is_none() && out.len() < limit
            },
        )?;
        failed.map_or(Ok(out), Err)
    }
}
