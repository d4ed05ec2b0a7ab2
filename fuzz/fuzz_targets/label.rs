//! A label of an arbitrary order (any receiver text, any lengths): PDF and ZPL render, and the
//! ZPL parses back.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use prost::Message as _;
use surge_label::{check_zpl, sorting_code, Fonts, Label, Renderer, ZplText, STOCKS};
use surge_proto::v1::Order;

/// With the system's CJK font when one is installed (so Chinese text goes through the subset
/// and the ^GF rasteriser), else without.
fn renderer() -> &'static Renderer {
    static RENDERER: OnceLock<Renderer> = OnceLock::new();
    RENDERER.get_or_init(|| Renderer::new(Fonts::system(), ZplText::Graphic))
}

fuzz_target!(|data: &[u8]| {
    let Ok(order) = Order::decode(data) else {
        return;
    };
    // A label is printed only once a waybill from a registered range is bound: letters and
    // digits, never empty. Every other field is free text.
    let waybill: String = order
        .external_order_id
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect();
    if waybill.is_empty() {
        return;
    }
    let receiver = order.receiver.clone().unwrap_or_default();
    let label = Label {
        carrier: order.shop.clone(),
        waybill,
        sorting_code: sorting_code(&receiver),
        sender: Default::default(),
        receiver,
        order_ref: format!("{} / {}", order.platform, order.external_order_id),
        parcel_index: 1,
        parcel_count: 1,
        weight_grams: order
            .lines
            .iter()
            .map(|l| l.weight_grams)
            .fold(0i64, i64::saturating_add),
        reprint: order.lines.len() as u32,
        // Any text as the destination, on every stock.
        destination: order.buyer_remark.clone(),
        stock: STOCKS[order.lines.len() % STOCKS.len()],
    };
    let _ = renderer().pdf(&label);
    let text = renderer().zpl(&label);
    assert!(
        check_zpl(&text).is_ok(),
        "rendered ZPL does not parse: {text:?}"
    );
});
