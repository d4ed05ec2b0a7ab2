//! Shopify: the REST Admin API's `Order` resource (one per line, as `orders.json` lists them).

use surge_proto::v1::{Address, Order, OrderLine, PaymentState, Totals};

use crate::json::Obj;
use crate::{cancelled, FieldError, Mapped, Platform};

/// `financial_status` values of an order whose money is in.
const PAID: [&str; 2] = ["paid", "partially_refunded"];

pub(crate) fn map(o: &Obj<'_>) -> Result<Mapped, FieldError> {
    let id = o.required("id")?;
    if !o.text("cancelled_at")?.is_empty() {
        return Ok(cancelled(Platform::Shopify, id));
    }
    let address = o
        .obj("shipping_address")?
        .ok_or_else(|| o.err("shipping_address", "required"))?;
    let lines = o
        .list("line_items")?
        .iter()
        .map(|item| {
            let quantity = item.required_int("quantity")?;
            let sku = item
                .first_text(&["sku", "variant_id"])?
                .ok_or_else(|| item.err("sku", "required"))?;
            Ok(OrderLine {
                sku,
                title: item.text("title")?,
                quantity,
                unit_price_cents: item.yuan("price")?,
                weight_grams: item.int("grams")?.unwrap_or(0),
            })
        })
        .collect::<Result<Vec<_>, FieldError>>()?;
    let status = o.text("financial_status")?;
    let paid_at = match o.text("processed_at")? {
        s if s.is_empty() => None,
        s => Some(
            chrono::DateTime::parse_from_rfc3339(&s)
                .map_err(|_| o.err("processed_at", format!("expected RFC 3339, got {s:?}")))?
                .timestamp_millis(),
        ),
    };
    let paid = PAID.contains(&status.as_str());
    let shipping = match o.obj("total_shipping_price_set")? {
        Some(set) => match set.obj("shop_money")? {
            Some(money) => money.yuan("amount")?,
            None => 0,
        },
        None => 0,
    };
    let name = [address.text("name")?, {
        let first = address.text("first_name")?;
        let last = address.text("last_name")?;
        format!("{first} {last}").trim().to_owned()
    }]
    .into_iter()
    .find(|s| !s.is_empty())
    .unwrap_or_default();
    let mut order = Order {
        platform: Platform::Shopify.name().to_owned(),
        shop: o.text("source_name")?,
        external_order_id: id,
        buyer_id: match o.obj("customer")? {
            Some(c) => c.text("id")?,
            None => String::new(),
        },
        buyer_nick: o.text("email")?,
        receiver: Some(Address {
            name,
            phone: address.text("phone")?,
            country: address.text("country_code")?,
            province: address.text("province")?,
            city: address.text("city")?,
            district: String::new(),
            street: [address.text("address1")?, address.text("address2")?]
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(", "),
            postal_code: address.text("zip")?,
        }),
        lines,
        totals: Some(Totals {
            goods_cents: o.yuan("subtotal_price")?,
            shipping_cents: shipping,
            discount_cents: o.yuan("total_discounts")?,
            payable_cents: o.yuan("total_price")?,
        }),
        paid_at_ms: if paid {
            paid_at.and_then(|ms| u64::try_from(ms).ok()).unwrap_or(0)
        } else {
            0
        },
        buyer_remark: o.text("note")?,
        seller_memo: o.text("tags")?,
        ..Order::default()
    };
    order.set_payment_state(if paid {
        PaymentState::Paid
    } else {
        PaymentState::Unpaid
    });
    Ok(Mapped::Order(Box::new(order)))
}
