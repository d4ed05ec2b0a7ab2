//! Where a shard keeps its rows (DESIGN.md §7). Every key starts with the shard's group prefix,
//! so a snapshot is a prefix scan and a removal is a `delete_range`.
//!
//! - `orders`: `shard | order id` → `OrderRecord`
//! - `order_index`:
//!   - `'x' | tenant | len(platform) | platform | external id` → order id
//!   - `'s' | tenant | status | accepted_at | order id` → ∅ (listing by status and time)
//!   - `'w' | stage | tenant | accepted_at | order id` → ∅ (orders the pipeline must move on)
//!   - `'b' | tenant | carrier` → `WaybillBook`
//!   - `'t' | tenant` → the position events were trimmed below (`index | pos`)
//! - `outbox`:
//!   - `'j' | tenant | index | pos` → `OutboxJob` (print jobs not yet printed)
//!   - `'e' | tenant | index | pos` → `OrderEvent` (every transition, for `WatchOrders`)

use surge_proto::v1::OrderStatus;
use surge_storage::keys;

const EXT: u8 = b'x';
const STATUS: u8 = b's';
const WORK: u8 = b'w';
const BOOK: u8 = b'b';
const JOB: u8 = b'j';
const EVENT: u8 = b'e';
const TRIMMED: u8 = b't';

fn key(shard: u32, parts: &[&[u8]]) -> Vec<u8> {
    let mut suffix = Vec::with_capacity(parts.iter().map(|p| p.len()).sum());
    for p in parts {
        suffix.extend_from_slice(p);
    }
    keys::data_key(u64::from(shard), &suffix)
}

pub fn order(shard: u32, order_id: &str) -> Vec<u8> {
    key(shard, &[order_id.as_bytes()])
}

pub fn ext(shard: u32, tenant: u64, platform: &str, external_id: &str) -> Vec<u8> {
    // Length-prefixed, so no platform/id split can collide with another.
    let len = [platform.len().min(255) as u8];
    key(
        shard,
        &[
            &[EXT],
            &tenant.to_be_bytes(),
            &len,
            platform.as_bytes(),
            external_id.as_bytes(),
        ],
    )
}

pub fn status_prefix(shard: u32, tenant: u64, status: OrderStatus) -> Vec<u8> {
    key(
        shard,
        &[&[STATUS], &tenant.to_be_bytes(), &[status as i32 as u8]],
    )
}

pub fn status(shard: u32, tenant: u64, status: OrderStatus, at_ms: u64, order_id: &str) -> Vec<u8> {
    let mut k = status_prefix(shard, tenant, status);
    k.extend_from_slice(&at_ms.to_be_bytes());
    k.extend_from_slice(order_id.as_bytes());
    k
}

pub fn work_prefix(shard: u32, stage: u8) -> Vec<u8> {
    key(shard, &[&[WORK, stage]])
}

pub fn work_tenant(shard: u32, stage: u8, tenant: u64) -> Vec<u8> {
    key(shard, &[&[WORK, stage], &tenant.to_be_bytes()])
}

pub fn work(shard: u32, stage: u8, tenant: u64, at_ms: u64, order_id: &str) -> Vec<u8> {
    key(
        shard,
        &[
            &[WORK, stage],
            &tenant.to_be_bytes(),
            &at_ms.to_be_bytes(),
            order_id.as_bytes(),
        ],
    )
}

pub fn book(shard: u32, tenant: u64, carrier: &str) -> Vec<u8> {
    key(shard, &[&[BOOK], &tenant.to_be_bytes(), carrier.as_bytes()])
}

pub fn book_prefix(shard: u32) -> Vec<u8> {
    key(shard, &[&[BOOK]])
}

/// `(tenant, carrier)` of a book key.
pub fn parse_book(shard_prefix_len: usize, k: &[u8]) -> Option<(u64, String)> {
    let rest = k.get(shard_prefix_len + 1..)?;
    let tenant = u64::from_be_bytes(rest.get(..8)?.try_into().ok()?);
    Some((tenant, String::from_utf8_lossy(&rest[8..]).into_owned()))
}

fn positioned(shard: u32, tag: u8, tenant: u64, index: u64, pos: u32) -> Vec<u8> {
    key(
        shard,
        &[
            &[tag],
            &tenant.to_be_bytes(),
            &index.to_be_bytes(),
            &pos.to_be_bytes(),
        ],
    )
}

pub fn job(shard: u32, tenant: u64, index: u64, pos: u32) -> Vec<u8> {
    positioned(shard, JOB, tenant, index, pos)
}

pub fn job_prefix(shard: u32, tenant: u64) -> Vec<u8> {
    key(shard, &[&[JOB], &tenant.to_be_bytes()])
}

pub fn event(shard: u32, tenant: u64, index: u64, pos: u32) -> Vec<u8> {
    positioned(shard, EVENT, tenant, index, pos)
}

pub fn event_prefix(shard: u32, tenant: u64) -> Vec<u8> {
    key(shard, &[&[EVENT], &tenant.to_be_bytes()])
}

pub fn trimmed(shard: u32, tenant: u64) -> Vec<u8> {
    key(shard, &[&[TRIMMED], &tenant.to_be_bytes()])
}

/// `index | pos` as stored under [`trimmed`].
pub fn encode_position(at: (u64, u32)) -> Vec<u8> {
    let mut v = at.0.to_be_bytes().to_vec();
    v.extend_from_slice(&at.1.to_be_bytes());
    v
}

pub fn decode_position(v: &[u8]) -> Option<(u64, u32)> {
    let index = u64::from_be_bytes(v.get(..8)?.try_into().ok()?);
    let pos = u32::from_be_bytes(v.get(8..12)?.try_into().ok()?);
    Some((index, pos))
}
