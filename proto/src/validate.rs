//! Intake validation of orders: every required field, every size bounded, no negative amounts.
//! A refusal names the field (`lines[3].quantity`, and for a batch `orders[7].…`), so the ERP
//! developer knows what to fix; the server answers it as INVALID_ARGUMENT and stores nothing.
//!
//! Incomplete addresses or unpaid orders are not refused here: they are valid orders that the
//! review rules hold.

use prost::Message as _;

use crate::v1::{Order, PaymentState};

/// Largest encoded order accepted.
pub const MAX_ORDER_BYTES: usize = 64 * 1024;
/// Most lines in one order.
pub const MAX_LINES: usize = 200;
/// Most orders in one `SubmitOrders` batch.
pub const MAX_BATCH: usize = 500;
/// Longest ordinary string field.
pub const MAX_STRING: usize = 256;
/// Longest identifier (`external_order_id`, `routing_key`, `sku`).
pub const MAX_ID: usize = 128;
/// Longest platform name.
pub const MAX_PLATFORM: usize = 32;
/// Longest buyer remark.
pub const MAX_REMARK: usize = 1024;

/// A refused field and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub reason: String,
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

impl std::error::Error for FieldError {}

fn err(field: impl Into<String>, reason: impl Into<String>) -> FieldError {
    FieldError {
        field: field.into(),
        reason: reason.into(),
    }
}

fn text(field: &str, value: &str, max: usize, required: bool) -> Result<(), FieldError> {
    if required && value.trim().is_empty() {
        return Err(err(field, "required"));
    }
    if value.len() > max {
        return Err(err(
            field,
            format!("at most {max} bytes, got {}", value.len()),
        ));
    }
    Ok(())
}

fn non_negative(field: &str, value: i64) -> Result<(), FieldError> {
    if value < 0 {
        return Err(err(field, format!("must not be negative, got {value}")));
    }
    Ok(())
}

/// Checks one order.
pub fn order(o: &Order) -> Result<(), FieldError> {
    text("platform", &o.platform, MAX_PLATFORM, true)?;
    text("shop", &o.shop, MAX_STRING, true)?;
    text("external_order_id", &o.external_order_id, MAX_ID, true)?;
    text("routing_key", &o.routing_key, MAX_ID, false)?;
    text("buyer_id", &o.buyer_id, MAX_STRING, false)?;
    text("buyer_nick", &o.buyer_nick, MAX_STRING, false)?;
    text("buyer_remark", &o.buyer_remark, MAX_REMARK, false)?;
    text("seller_memo", &o.seller_memo, MAX_REMARK, false)?;
    let receiver = o
        .receiver
        .as_ref()
        .ok_or_else(|| err("receiver", "required"))?;
    for (name, value) in [
        ("name", &receiver.name),
        ("phone", &receiver.phone),
        ("country", &receiver.country),
        ("province", &receiver.province),
        ("city", &receiver.city),
        ("district", &receiver.district),
        ("street", &receiver.street),
        ("postal_code", &receiver.postal_code),
    ] {
        text(&format!("receiver.{name}"), value, MAX_STRING, false)?;
    }
    if o.lines.is_empty() {
        return Err(err("lines", "at least one line is required"));
    }
    if o.lines.len() > MAX_LINES {
        return Err(err(
            "lines",
            format!("at most {MAX_LINES} lines, got {}", o.lines.len()),
        ));
    }
    for (i, line) in o.lines.iter().enumerate() {
        text(&format!("lines[{i}].sku"), &line.sku, MAX_ID, true)?;
        text(&format!("lines[{i}].title"), &line.title, MAX_STRING, false)?;
        if line.quantity < 1 {
            return Err(err(
                format!("lines[{i}].quantity"),
                format!("must be at least 1, got {}", line.quantity),
            ));
        }
        non_negative(
            &format!("lines[{i}].unit_price_cents"),
            line.unit_price_cents,
        )?;
        non_negative(&format!("lines[{i}].weight_grams"), line.weight_grams)?;
    }
    let totals = o.totals.as_ref().ok_or_else(|| err("totals", "required"))?;
    non_negative("totals.goods_cents", totals.goods_cents)?;
    non_negative("totals.shipping_cents", totals.shipping_cents)?;
    non_negative("totals.discount_cents", totals.discount_cents)?;
    non_negative("totals.payable_cents", totals.payable_cents)?;
    match PaymentState::try_from(o.payment_state) {
        Ok(PaymentState::Unspecified) | Err(_) => {
            return Err(err("payment_state", "must be UNPAID, PAID or COD"));
        }
        Ok(PaymentState::Paid) if o.paid_at_ms == 0 => {
            return Err(err("paid_at_ms", "required when payment_state is PAID"));
        }
        Ok(_) => {}
    }
    let size = o.encoded_len();
    if size > MAX_ORDER_BYTES {
        return Err(err(
            "order",
            format!("at most {MAX_ORDER_BYTES} bytes encoded, got {size}"),
        ));
    }
    Ok(())
}

/// Checks a batch: its size, then each order; an order's error is prefixed with its index.
pub fn batch(orders: &[Order]) -> Result<(), FieldError> {
    if orders.is_empty() {
        return Err(err("orders", "at least one order is required"));
    }
    if orders.len() > MAX_BATCH {
        return Err(err(
            "orders",
            format!("at most {MAX_BATCH} orders per batch, got {}", orders.len()),
        ));
    }
    for (i, o) in orders.iter().enumerate() {
        order(o).map_err(|e| err(format!("orders[{i}].{}", e.field), e.reason))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v1::{Address, OrderLine, Totals};

    fn good() -> Order {
        Order {
            platform: "taobao".into(),
            shop: "flagship".into(),
            external_order_id: "TB-1".into(),
            receiver: Some(Address {
                name: "Li".into(),
                phone: "138".into(),
                ..Default::default()
            }),
            lines: vec![OrderLine {
                sku: "SKU-1".into(),
                title: "tea".into(),
                quantity: 2,
                unit_price_cents: 1999,
                weight_grams: 500,
            }],
            totals: Some(Totals {
                goods_cents: 3998,
                payable_cents: 3998,
                ..Default::default()
            }),
            payment_state: PaymentState::Paid as i32,
            paid_at_ms: 1_700_000_000_000,
            ..Default::default()
        }
    }

    #[test]
    fn a_complete_order_passes_and_an_incomplete_address_is_not_a_refusal() {
        assert_eq!(order(&good()), Ok(()));
        let mut o = good();
        o.receiver = Some(Address::default());
        assert_eq!(
            order(&o),
            Ok(()),
            "incomplete addresses are held by review, not refused"
        );
    }

    #[test]
    fn every_bad_field_is_named() {
        type Breaker = fn(&mut Order);
        let cases: Vec<(&str, Breaker)> = vec![
            ("platform", |o| o.platform.clear()),
            ("platform", |o| o.platform = "p".repeat(MAX_PLATFORM + 1)),
            ("shop", |o| o.shop = "  ".into()),
            ("external_order_id", |o| o.external_order_id.clear()),
            ("routing_key", |o| o.routing_key = "k".repeat(MAX_ID + 1)),
            ("buyer_remark", |o| {
                o.buyer_remark = "r".repeat(MAX_REMARK + 1)
            }),
            ("receiver", |o| o.receiver = None),
            ("receiver.street", |o| {
                if let Some(r) = o.receiver.as_mut() {
                    r.street = "s".repeat(MAX_STRING + 1);
                }
            }),
            ("lines", |o| o.lines.clear()),
            ("lines", |o| {
                o.lines = vec![o.lines[0].clone(); MAX_LINES + 1]
            }),
            ("lines[0].sku", |o| o.lines[0].sku.clear()),
            ("lines[0].quantity", |o| o.lines[0].quantity = 0),
            ("lines[0].quantity", |o| o.lines[0].quantity = -3),
            ("lines[0].unit_price_cents", |o| {
                o.lines[0].unit_price_cents = -1
            }),
            ("lines[0].weight_grams", |o| o.lines[0].weight_grams = -1),
            ("totals", |o| o.totals = None),
            ("totals.discount_cents", |o| {
                if let Some(t) = o.totals.as_mut() {
                    t.discount_cents = -5;
                }
            }),
            ("payment_state", |o| o.payment_state = 0),
            ("payment_state", |o| o.payment_state = 99),
            ("paid_at_ms", |o| o.paid_at_ms = 0),
            ("order", |o| {
                o.lines = vec![
                    OrderLine {
                        sku: "s".repeat(MAX_ID),
                        title: "t".repeat(MAX_STRING),
                        quantity: 1,
                        ..Default::default()
                    };
                    199
                ]
            }),
        ];
        for (field, breaker) in cases {
            let mut o = good();
            breaker(&mut o);
            match order(&o) {
                Ok(()) => panic!("accepted an order with a bad {field}"),
                Err(e) => assert_eq!(e.field, field, "{e}"),
            }
        }
    }

    #[test]
    fn a_batch_names_the_index_and_is_bounded() {
        let mut orders = vec![good(), good(), good()];
        orders[2].lines[0].quantity = 0;
        let e = batch(&orders)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert_eq!(e, "orders[2].lines[0].quantity: must be at least 1, got 0");
        assert_eq!(batch(&[]).map_err(|e| e.field), Err("orders".to_string()));
        let too_many = vec![good(); MAX_BATCH + 1];
        assert_eq!(
            batch(&too_many).map_err(|e| e.field),
            Err("orders".to_string())
        );
        assert_eq!(batch(&vec![good(); MAX_BATCH]), Ok(()));
    }
}
