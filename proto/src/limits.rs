//! Size limits of requests and replies, one place for every service.
//!
//! A reply never exceeds [`MAX_REPLY_BYTES`], under gRPC's default 4 MiB receive limit with room
//! for framing, so a client built with any gRPC library's defaults always makes progress: a
//! page, an event batch or a watch message that would be larger is cut short and the caller
//! continues from where it ends. A request may be as large as the documented item limits
//! allow ([`MAX_REQUEST_BYTES`]: a full batch of the largest orders).

use prost::Message;

use crate::validate::{MAX_BATCH, MAX_ORDER_BYTES};

/// The most bytes of items one reply carries.
pub const MAX_REPLY_BYTES: usize = 3 * 1024 * 1024;

/// The largest request a service decodes: [`MAX_BATCH`] orders of [`MAX_ORDER_BYTES`] each,
/// with their framing.
pub const MAX_REQUEST_BYTES: usize = MAX_BATCH * (MAX_ORDER_BYTES + 16) + 64 * 1024;

// A full batch of the largest orders is a valid request; a reply fits gRPC's default limit.
const _: () = assert!(MAX_REQUEST_BYTES > MAX_BATCH * MAX_ORDER_BYTES);
const _: () = assert!(MAX_REPLY_BYTES < 4 * 1024 * 1024);

/// Keeps the longest prefix of `items` whose encoded size (as repeated fields of a reply) is
/// within `budget`, and always the first item, so a reply makes progress. Returns the items
/// cut off, in order (empty when all fit).
pub fn fit<T: Message>(items: &mut Vec<T>, budget: usize) -> Vec<T> {
    let mut used = 0usize;
    let keep = items
        .iter()
        .position(|item| {
            let len = item.encoded_len();
            // The field's tag and length prefix: at most 1 + 10 bytes.
            used = used.saturating_add(len + 11);
            used > budget
        })
        .unwrap_or(items.len())
        .max(1)
        .min(items.len());
    items.split_off(keep)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v1::OrderEvent;

    fn event(n: usize) -> OrderEvent {
        OrderEvent {
            order_id: format!("订单-{n}-{}", "长".repeat(300)),
            ..OrderEvent::default()
        }
    }

    #[test]
    fn a_reply_is_cut_to_the_budget_and_keeps_order() {
        let mut items: Vec<OrderEvent> = (0..100).map(event).collect();
        let one = items[0].encoded_len() + 11;
        let rest = fit(&mut items, one * 10 + one / 2);
        assert_eq!(items.len(), 10);
        assert_eq!(items[9].order_id, event(9).order_id);
        assert_eq!(rest.len(), 90);
        assert_eq!(rest[0].order_id, event(10).order_id);
        let mut small: Vec<OrderEvent> = (0..3).map(event).collect();
        assert!(fit(&mut small, MAX_REPLY_BYTES).is_empty());
        assert_eq!(small.len(), 3);
    }

    #[test]
    fn one_item_always_goes_even_over_the_budget() {
        let mut items: Vec<OrderEvent> = (0..5).map(event).collect();
        assert_eq!(fit(&mut items, 10).len(), 4);
        assert_eq!(items.len(), 1);
        let mut none: Vec<OrderEvent> = Vec::new();
        assert!(fit(&mut none, 10).is_empty());
    }
}
