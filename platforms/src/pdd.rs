//! Pinduoduo (拼多多): `order_info` of `pdd.order.information.get`. Pinduoduo shows merchants
//! only paid orders; one with `pay_time` empty is treated as unpaid all the same.

use surge_proto::v1::{Address, Order, OrderLine, PaymentState, Totals};

use crate::json::{china_time, Obj};
use crate::{cancelled, FieldError, Mapped, Platform};

/// `refund_status` of an order refunded in full: it will not ship.
const REFUNDED: i64 = 4;

pub(crate) fn map(o: &Obj<'_>) -> Result<Mapped, FieldError> {
    let sn = o.required("order_sn")?;
    if o.int("refund_status")? == Some(REFUNDED) {
        return Ok(cancelled(Platform::Pinduoduo, sn));
    }
    let lines = o
        .list("item_list")?
        .iter()
        .map(|item| {
            let quantity = item.required_int("goods_count")?;
            let sku = item
                .first_text(&["outer_id", "sku_id"])?
                .ok_or_else(|| item.err("sku_id", "required"))?;
            Ok(OrderLine {
                sku,
                title: item.text("goods_name")?,
                quantity,
                unit_price_cents: item.yuan("goods_price")?,
                weight_grams: 0,
            })
        })
        .collect::<Result<Vec<_>, FieldError>>()?;
    let paid_at = china_time(o, "pay_time")?;
    let mut order = Order {
        platform: Platform::Pinduoduo.name().to_owned(),
        shop: o.text("mall_id")?,
        external_order_id: sn,
        receiver: Some(Address {
            name: o.text("receiver_name")?,
            phone: o.text("receiver_phone")?,
            country: "CN".into(),
            province: o.text("province")?,
            city: o.text("city")?,
            district: o.text("town")?,
            street: o.text("address")?,
            postal_code: String::new(),
        }),
        lines,
        totals: Some(Totals {
            goods_cents: o.yuan("goods_amount")?,
            shipping_cents: o.yuan("postage")?,
            discount_cents: o.yuan("discount_amount")?,
            payable_cents: o.yuan("pay_amount")?,
        }),
        paid_at_ms: paid_at.unwrap_or(0),
        buyer_remark: o.text("buyer_memo")?,
        seller_memo: o.text("remark")?,
        ..Order::default()
    };
    order.set_payment_state(if paid_at.is_some() {
        PaymentState::Paid
    } else {
        PaymentState::Unpaid
    });
    Ok(Mapped::Order(Box::new(order)))
}
