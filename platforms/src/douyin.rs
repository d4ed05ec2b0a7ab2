//! Douyin (抖音小店): `shop_order_detail` of `order.orderDetail`. Amounts are in fen, times in
//! Unix seconds; the receiver's name, phone and street arrive encrypted for most shops and are
//! kept as they are.

use surge_proto::v1::{Address, Order, OrderLine, PaymentState, Totals};

use crate::json::Obj;
use crate::{cancelled, FieldError, Mapped, Platform};

/// `order_status`: 1 awaiting payment, 4 cancelled.
const AWAITING_PAYMENT: i64 = 1;
const CANCELLED: i64 = 4;
/// `pay_type` 0: cash on delivery.
const COD: i64 = 0;

/// A fen amount: a whole number (Douyin sends them as numbers).
fn fen(o: &Obj<'_>, field: &str) -> Result<i64, FieldError> {
    let v = o.int(field)?.unwrap_or(0);
    if v < 0 {
        return Err(o.err(field, format!("must not be negative, got {v}")));
    }
    Ok(v)
}

/// The `name` of a nested division object ({"province": {"name": "浙江省", "id": "33"}}).
fn named(o: &Obj<'_>, field: &str) -> Result<String, FieldError> {
    match o.obj(field)? {
        Some(part) => part.text("name"),
        None => Ok(String::new()),
    }
}

pub(crate) fn map(o: &Obj<'_>) -> Result<Mapped, FieldError> {
    let id = o.required("order_id")?;
    let status = o.required_int("order_status")?;
    if status == CANCELLED {
        return Ok(cancelled(Platform::Douyin, id));
    }
    let addr = o
        .obj("post_addr")?
        .ok_or_else(|| o.err("post_addr", "required"))?;
    let lines = o
        .list("sku_order_list")?
        .iter()
        .map(|item| {
            let quantity = item.required_int("item_num")?;
            let sku = item
                .first_text(&["code", "sku_id"])?
                .ok_or_else(|| item.err("sku_id", "required"))?;
            Ok(OrderLine {
                sku,
                title: item.text("product_name")?,
                quantity,
                unit_price_cents: fen(item, "goods_price")?,
                weight_grams: 0,
            })
        })
        .collect::<Result<Vec<_>, FieldError>>()?;
    let paid_at = o
        .int("pay_time")?
        .filter(|&s| s > 0)
        .map(|s| u64::try_from(s).unwrap_or(0).saturating_mul(1000));
    let payment_state = if o.int("pay_type")? == Some(COD) {
        PaymentState::Cod
    } else if status == AWAITING_PAYMENT || paid_at.is_none() {
        PaymentState::Unpaid
    } else {
        PaymentState::Paid
    };
    let mut order = Order {
        platform: Platform::Douyin.name().to_owned(),
        shop: o.text("shop_name")?,
        external_order_id: id,
        buyer_id: o.text("doudian_open_id")?,
        receiver: Some(Address {
            name: o.text("post_receiver")?,
            phone: o.text("post_tel")?,
            country: "CN".into(),
            province: named(&addr, "province")?,
            city: named(&addr, "city")?,
            district: named(&addr, "town")?,
            street: [named(&addr, "street")?, addr.text("detail")?]
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(" "),
            postal_code: String::new(),
        }),
        lines,
        totals: Some(Totals {
            goods_cents: fen(o, "order_amount")?,
            shipping_cents: fen(o, "post_amount")?,
            discount_cents: fen(o, "promotion_amount")?,
            payable_cents: fen(o, "pay_amount")?,
        }),
        paid_at_ms: paid_at.unwrap_or(0),
        buyer_remark: o.text("buyer_words")?,
        seller_memo: o.text("seller_words")?,
        ..Order::default()
    };
    order.set_payment_state(payment_state);
    Ok(Mapped::Order(Box::new(order)))
}
