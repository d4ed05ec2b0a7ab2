//! JD (京东): an order of `jingdong.pop.order.search` / `jingdong.pop.order.get`.

use surge_proto::v1::{Address, Order, OrderLine, PaymentState, Totals};

use crate::json::{china_time, Obj};
use crate::{cancelled, FieldError, Mapped, Platform};

pub(crate) fn map(o: &Obj<'_>) -> Result<Mapped, FieldError> {
    let id = o.required("orderId")?;
    let state = o.required("orderState")?;
    if state == "TRADE_CANCELED" {
        return Ok(cancelled(Platform::Jd, id));
    }
    let consignee = o
        .obj("consigneeInfo")?
        .ok_or_else(|| o.err("consigneeInfo", "required"))?;
    let lines = o
        .list("itemInfoList")?
        .iter()
        .map(|item| {
            let quantity = item.required_int("itemTotal")?;
            let sku = item
                .first_text(&["outerSkuId", "skuId"])?
                .ok_or_else(|| item.err("skuId", "required"))?;
            Ok(OrderLine {
                sku,
                title: item.text("skuName")?,
                quantity,
                unit_price_cents: item.yuan("jdPrice")?,
                weight_grams: 0,
            })
        })
        .collect::<Result<Vec<_>, FieldError>>()?;
    // payType "1-货到付款" is cash on delivery; "4-在线支付" online.
    let cod = o.text("payType")?.starts_with('1');
    let paid_at = china_time(o, "paymentConfirmTime")?;
    let payment_state = match (cod, paid_at) {
        (true, _) => PaymentState::Cod,
        (false, Some(_)) => PaymentState::Paid,
        (false, None) => PaymentState::Unpaid,
    };
    let phone = consignee
        .first_text(&["mobile", "telephone"])?
        .unwrap_or_default();
    let mut order = Order {
        platform: Platform::Jd.name().to_owned(),
        shop: o.text("venderId")?,
        external_order_id: id,
        buyer_id: o.text("pin")?,
        buyer_nick: o.text("pin")?,
        receiver: Some(Address {
            name: consignee.text("fullname")?,
            phone,
            country: "CN".into(),
            province: consignee.text("province")?,
            city: consignee.text("city")?,
            district: consignee.text("county")?,
            street: consignee.text("fullAddress")?,
            postal_code: String::new(),
        }),
        lines,
        totals: Some(Totals {
            goods_cents: o.yuan("orderTotalPrice")?,
            shipping_cents: o.yuan("freightPrice")?,
            discount_cents: o.yuan("sellerDiscount")?,
            payable_cents: o.yuan("orderPayment")?,
        }),
        paid_at_ms: paid_at.unwrap_or(0),
        buyer_remark: o.text("orderRemark")?,
        seller_memo: o.text("venderRemark")?,
        ..Order::default()
    };
    order.set_payment_state(payment_state);
    Ok(Mapped::Order(Box::new(order)))
}
