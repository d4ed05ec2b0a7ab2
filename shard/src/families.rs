//! The shard's column families: where a shard keeps its orders, their indexes and its print
//! jobs. Every row is keyed `group | ...`, so a snapshot carries them and a destroyed replica
//! loses them. The node opens its engine with these, the Raft library's and `meta`.

use surge_storage::{Cf, Family, Tuning};

/// `shard | order id` → order.
pub const ORDERS: Cf = Cf::new(5, "orders");
/// Secondary order indexes (external id, status, cursor, waybill).
pub const ORDER_INDEX: Cf = Cf::new(6, "order_index");
/// `shard | seq` → print job, and the shard's events.
pub const OUTBOX: Cf = Cf::new(7, "outbox");

/// The shard's families, as the node declares them.
pub const SHARD_FAMILIES: [Family; 3] = [
    Family {
        cf: ORDERS,
        per_group: true,
        tuning: Tuning::Bulk,
    },
    Family {
        cf: ORDER_INDEX,
        per_group: true,
        tuning: Tuning::Bulk,
    },
    Family {
        cf: OUTBOX,
        per_group: true,
        tuning: Tuning::Small,
    },
];
