//! The shipping label of an order: what it shows comes from the order record (carrier, waybill,
//! receiver, weight) and the tenant's rules (sender); `surge_label` renders it.
//!
//! A Chinese receiver address gets the three-segment sorting code (三段码) and destination text
//! (大头笔) the carrier returned for the waybill when an integration set them
//! (`SetCarrierRouting`), else the carrier's route for the division in the rules file, else the
//! ones derived from the division (GB/T 2260); one in Latin letters keeps the Latin code. An
//! order from a Chinese platform prints a privacy waybill (隐私面单): the receiver's name and
//! phone masked, the full values kept in the order for the carrier and `GetOrder`.

use surge_label::Label;
use surge_proto::v1::{Address, OrderRecord};
use surge_rules::TenantRules;

/// The sorting code and destination text of `receiver`, as `carrier`'s routes in the rules
/// give them for its division, else derived from the division.
fn sorting(receiver: &Address, carrier: Option<&surge_rules::Carrier>) -> (String, String) {
    let resolved = surge_divisions::in_china(&receiver.country)
        .then(|| {
            surge_divisions::Divisions::get()
                .resolve(
                    &receiver.province,
                    &receiver.city,
                    &receiver.district,
                    &receiver.street,
                )
                .ok()
        })
        .flatten();
    let Some(r) = resolved else {
        return (surge_label::sorting_code(receiver), String::new());
    };
    let route = carrier.and_then(|c| c.route_for(r.code()));
    let pick = |own: &str, derived: String| {
        if own.is_empty() {
            derived
        } else {
            own.to_owned()
        }
    };
    match route {
        Some(route) => (
            pick(&route.sorting_code, r.sorting_code()),
            pick(&route.destination, r.destination()),
        ),
        None => (r.sorting_code(), r.destination()),
    }
}

/// The label of `rec`, for its `reprint`-th printing (0: the first).
pub fn label_of(rec: &OrderRecord, rules: &TenantRules, reprint: u32) -> Label {
    let order = rec.order.clone().unwrap_or_default();
    let mut receiver = order.receiver.clone().unwrap_or_default();
    let weight = if rec.shipped_weight_grams > 0 {
        rec.shipped_weight_grams
    } else {
        surge_rules::parcel_weight_grams(&order)
    };
    let carrier = rules.carriers.iter().find(|c| c.name == rec.carrier);
    let (sorting_code, destination) = surge_shard::routing_for(rec, sorting(&receiver, carrier));
    if surge_label::is_privacy_platform(&order.platform) {
        receiver.name = surge_label::mask_name(&receiver.name);
        receiver.phone = surge_label::mask_phone(&receiver.phone);
    }
    Label {
        carrier: rec.carrier.clone(),
        waybill: rec.waybill.clone(),
        sorting_code,
        destination,
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
        stock: carrier
            .and_then(|c| c.label.parse().ok())
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use surge_proto::v1::Order;

    fn record(platform: &str, receiver: Address) -> OrderRecord {
        OrderRecord {
            order: Some(Order {
                platform: platform.into(),
                receiver: Some(receiver),
                ..Order::default()
            }),
            carrier: "顺丰速运".into(),
            waybill: "SF1".into(),
            ..OrderRecord::default()
        }
    }

    fn zhang_san() -> Address {
        Address {
            name: "张三".into(),
            phone: "13800000288".into(),
            country: "CN".into(),
            province: "浙江省".into(),
            city: "杭州市".into(),
            district: "西湖区".into(),
            street: "文三路 288 号".into(),
            postal_code: "310012".into(),
        }
    }

    #[test]
    fn platform_orders_print_masked_receivers_and_the_division_codes() {
        let rec = record("tmall", zhang_san());
        let label = label_of(&rec, &TenantRules::default(), 0);
        assert_eq!(label.receiver.name, "张*");
        assert_eq!(label.receiver.phone, "138****0288");
        assert!(
            label.sorting_code.starts_with("3301-06-"),
            "{}",
            label.sorting_code
        );
        assert_eq!(label.destination, "杭州 西湖");
        // The record keeps the full values.
        let kept = rec.order.and_then(|o| o.receiver).expect("receiver");
        assert_eq!(
            (kept.name.as_str(), kept.phone.as_str()),
            ("张三", "13800000288")
        );
    }

    #[test]
    fn every_stock_a_rules_file_may_name_is_one_labels_print_on() {
        for name in surge_rules::LABEL_STOCKS {
            let stock: surge_label::Stock = name.parse().expect(name);
            assert_eq!(stock.name(), name);
        }
        let rules = surge_rules::parse(include_str!("../../rules/examples/rules.toml"))
            .expect("the example parses");
        let stock = |carrier: &str| {
            let rec = OrderRecord {
                carrier: carrier.into(),
                ..record("tmall", zhang_san())
            };
            label_of(&rec, &rules, 0).stock
        };
        assert_eq!(stock("SF"), surge_label::Stock::Mm100x180);
        assert_eq!(stock("ZTO"), surge_label::Stock::Mm76x130);
        assert_eq!(stock("NOPE"), surge_label::Stock::FourBySix);
    }

    #[test]
    fn a_carriers_own_route_overrides_the_derived_codes() {
        let rules = surge_rules::parse(include_str!("../../rules/examples/rules.toml"))
            .expect("the example parses");
        let sf = OrderRecord {
            carrier: "SF".into(),
            ..record("tmall", zhang_san())
        };
        let label = label_of(&sf, &rules, 0);
        assert_eq!(label.sorting_code, "571-W01-08");
        assert_eq!(label.destination, "杭州 西湖一部");
        // ZTO has no route there: surge's own codes.
        let zto = OrderRecord {
            carrier: "ZTO".into(),
            ..sf
        };
        assert!(label_of(&zto, &rules, 0)
            .sorting_code
            .starts_with("3301-06-"));
    }

    #[test]
    fn the_carriers_routing_for_the_bound_waybill_wins_over_every_other() {
        let rules = surge_rules::parse(include_str!("../../rules/examples/rules.toml"))
            .expect("the example parses");
        let routed = |waybill: &str, sorting_code: &str, destination: &str| OrderRecord {
            carrier: "SF".into(),
            carrier_routing: Some(surge_proto::v1::CarrierRouting {
                waybill: waybill.into(),
                sorting_code: sorting_code.into(),
                destination: destination.into(),
            }),
            ..record("tmall", zhang_san())
        };
        let label = label_of(&routed("SF1", "300-B8-00", "杭州转 西湖"), &rules, 0);
        assert_eq!(
            (label.sorting_code.as_str(), label.destination.as_str()),
            ("300-B8-00", "杭州转 西湖")
        );
        // Only the destination given: the rules file's sorting code stays.
        let label = label_of(&routed("SF1", "", "杭州转"), &rules, 0);
        assert_eq!(
            (label.sorting_code.as_str(), label.destination.as_str()),
            ("571-W01-08", "杭州转")
        );
        // Routing for another waybill (one bound before) is not this label's.
        let label = label_of(&routed("SF0", "300-B8-00", "杭州转 西湖"), &rules, 0);
        assert_eq!(label.sorting_code, "571-W01-08");
    }

    #[test]
    fn other_orders_print_in_full_and_latin_addresses_keep_the_latin_code() {
        let label = label_of(&record("erp", zhang_san()), &TenantRules::default(), 0);
        assert_eq!(label.receiver.name, "张三");
        let latin = Address {
            province: "Zhejiang".into(),
            city: "Hangzhou".into(),
            district: "Xihu".into(),
            ..zhang_san()
        };
        let label = label_of(
            &record("shopify", latin.clone()),
            &TenantRules::default(),
            0,
        );
        assert_eq!(label.sorting_code, surge_label::sorting_code(&latin));
        assert_eq!(label.destination, "");
    }
}
