//! Taobao and Tmall: the `Trade` of `taobao.trade.fullinfo.get` (both platforms share the
//! Taobao open platform's trade model).

use surge_proto::v1::{Address, Order, OrderLine, PaymentState, Totals};

use crate::json::{china_time, Obj};
use crate::{cancelled, FieldError, Mapped, Platform};

/// Trade statuses before payment and after a close.
const UNPAID: [&str; 2] = ["TRADE_NO_CREATE_PAY", "WAIT_BUYER_PAY"];
const CLOSED: [&str; 2] = ["TRADE_CLOSED", "TRADE_CLOSED_BY_TAOBAO"];

pub(crate) fn map(platform: Platform, t: &Obj<'_>) -> Result<Mapped, FieldError> {
    let tid = t.required("tid")?;
    let status = t.required("status")?;
    if CLOSED.contains(&status.as_str()) {
        return Ok(cancelled(platform, tid));
    }
    // The API nests lines as {"orders": {"order": [...]}}; exports flatten them to an array.
    let lines = match t.obj("orders") {
        Ok(Some(orders)) => orders.list("order")?,
        _ => t.list("orders")?,
    };
    let lines = lines
        .iter()
        .map(|o| {
            let quantity = o.required_int("num")?;
            let sku = o
                .first_text(&["outer_sku_id", "sku_id", "num_iid"])?
                .ok_or_else(|| o.err("outer_sku_id", "no outer_sku_id, sku_id or num_iid"))?;
            Ok(OrderLine {
                sku,
                title: o.text("title")?,
                quantity,
                unit_price_cents: o.yuan("price")?,
                weight_grams: 0,
            })
        })
        .collect::<Result<Vec<_>, FieldError>>()?;
    let paid_at = china_time(t, "pay_time")?;
    let payment_state = if t.text("type")? == "cod" {
        PaymentState::Cod
    } else if UNPAID.contains(&status.as_str()) || paid_at.is_none() {
        PaymentState::Unpaid
    } else {
        PaymentState::Paid
    };
    let goods = t.yuan("total_fee")?;
    let shipping = t.yuan("post_fee")?;
    let discount = t.yuan("discount_fee")?;
    let payable = t.yuan("payment")?;
    let phone = t
        .first_text(&["receiver_mobile", "receiver_phone"])?
        .unwrap_or_default();
    let mut order = Order {
        platform: platform.name().to_owned(),
        shop: t.text("seller_nick")?,
        external_order_id: tid,
        buyer_id: t.text("buyer_open_uid")?,
        buyer_nick: t.text("buyer_nick")?,
        receiver: Some(Address {
            name: t.text("receiver_name")?,
            phone,
            country: "CN".into(),
            province: t.text("receiver_state")?,
            city: t.text("receiver_city")?,
            district: t.text("receiver_district")?,
            street: [t.text("receiver_town")?, t.text("receiver_address")?]
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(" "),
            postal_code: t.text("receiver_zip")?,
        }),
        lines,
        totals: Some(Totals {
            goods_cents: goods,
            shipping_cents: shipping,
            discount_cents: discount,
            payable_cents: payable,
        }),
        paid_at_ms: paid_at.unwrap_or(0),
        buyer_remark: t.text("buyer_message")?,
        seller_memo: t.text("seller_memo")?,
        ..Order::default()
    };
    order.set_payment_state(payment_state);
    Ok(Mapped::Order(Box::new(order)))
}
