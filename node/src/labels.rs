//! The shipping label of an order: what it shows comes from the order record (carrier, waybill,
//! receiver, weight) and the tenant's rules (sender); `surge_label` renders it.

use surge_label::Label;
use surge_proto::v1::OrderRecord;
use surge_rules::TenantRules;

/// The label of `rec`, for its `reprint`-th printing (0: the first).
pub fn label_of(rec: &OrderRecord, rules: &TenantRules, reprint: u32) -> Label {
    let order = rec.order.clone().unwrap_or_default();
    let receiver = order.receiver.clone().unwrap_or_default();
    let weight = if rec.shipped_weight_grams > 0 {
        rec.shipped_weight_grams
    } else {
        surge_rules::parcel_weight_grams(&order)
    };
    Label {
        carrier: rec.carrier.clone(),
        waybill: rec.waybill.clone(),
        sorting_code: surge_label::sorting_code(&receiver),
        sender: rules.sender.address(),
        receiver,
        order_ref: format!(
            "{} / {}:{}",
            rec.order_id, order.platform, order.external_order_id
        ),
        parcel_index: 1,
        parcel_count: 1,
        weight_grams: weight,
        reprint,
    }
}
