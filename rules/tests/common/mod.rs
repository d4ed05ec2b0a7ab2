//! Building orders for the review and allocation tables.

#![allow(dead_code)]

use surge_proto::v1::{Address, Order, OrderLine, PaymentState, Totals};

/// A paid order to Hangzhou with a full address, no remark, 99.00 payable, one 1 kg line.
pub(crate) fn base_order() -> Order {
    let mut order = Order {
        platform: "taobao".into(),
        shop: "flagship".into(),
        external_order_id: "T-1".into(),
        receiver: Some(Address {
            name: "Li Lei".into(),
            phone: "13900000001".into(),
            country: "CN".into(),
            province: "Zhejiang".into(),
            city: "Hangzhou".into(),
            district: "Xihu District".into(),
            street: "1 Wensan Road".into(),
            postal_code: "310000".into(),
        }),
        lines: vec![line(1, 1000)],
        totals: Some(Totals {
            goods_cents: 9900,
            shipping_cents: 0,
            discount_cents: 0,
            payable_cents: 9900,
        }),
        ..Order::default()
    };
    order.set_payment_state(PaymentState::Paid);
    order
}

pub(crate) fn line(quantity: i64, weight_grams: i64) -> OrderLine {
    OrderLine {
        sku: "SKU".into(),
        title: "thing".into(),
        quantity,
        unit_price_cents: 100,
        weight_grams,
    }
}

/// The base order's receiver, for editing.
pub(crate) fn receiver(order: &mut Order) -> &mut Address {
    order.receiver.get_or_insert_with(Address::default)
}
