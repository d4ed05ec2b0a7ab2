//! The shipped example parses into exactly the documented rules.

use surge_rules::{
    parse, Allocation, AllocationRule, Carrier, CarrierRoute, Preference, Review, Sender,
    TenantRules,
};

const EXAMPLE: &str = include_str!("../examples/rules.toml");

fn expected() -> TenantRules {
    TenantRules {
        sender: Sender {
            name: "surge 演示旗舰店 杭州仓".into(),
            phone: "0571-88880000".into(),
            province: "浙江省".into(),
            city: "杭州市".into(),
            district: "余杭区".into(),
            street: "仓前街道文一西路 1 号 3 号库".into(),
            postal_code: "311100".into(),
        },
        review: Review {
            max_amount_cents: Some(200_000),
            hold_on_remark: true,
            hold_unpaid: true,
            require_full_address: true,
            blocked_receivers: vec!["13800000013".into(), "黑名单用户".into()],
        },
        carriers: vec![
            Carrier {
                name: "SF".into(),
                cost_cents: 1800,
                days: 1,
                label: "100x180".into(),
                routes: vec![CarrierRoute {
                    division: "330106".into(),
                    sorting_code: "571-W01-08".into(),
                    destination: "杭州 西湖一部".into(),
                }],
            },
            Carrier {
                name: "ZTO".into(),
                cost_cents: 600,
                days: 3,
                label: "76x130".into(),
                routes: vec![],
            },
        ],
        allocation: Allocation {
            default_carrier: Some("ZTO".into()),
            prefer: Preference::Cost,
            rules: vec![
                AllocationRule {
                    name: "cod-by-sf".into(),
                    regions: vec![],
                    min_weight_grams: None,
                    max_weight_grams: None,
                    cod: Some(true),
                    carriers: vec!["SF".into()],
                    prefer: None,
                },
                AllocationRule {
                    name: "south-heavy".into(),
                    regions: vec!["广东".into(), "广西".into()],
                    min_weight_grams: Some(5000),
                    max_weight_grams: Some(30_000),
                    cod: None,
                    carriers: vec!["ZTO".into(), "SF".into()],
                    prefer: Some(Preference::Speed),
                },
            ],
        },
    }
}

#[test]
fn example_file_parses_into_expected_rules() {
    let rules = parse(EXAMPLE).expect("the example parses");
    assert_eq!(rules, expected());
}

#[test]
fn sender_address_is_in_china() {
    let rules = parse(EXAMPLE).expect("the example parses");
    let address = rules.sender.address();
    assert_eq!(address.country, "CN");
    assert_eq!(address.name, "surge 演示旗舰店 杭州仓");
    assert_eq!(address.province, "浙江省");
    assert_eq!(address.postal_code, "311100");
}

#[test]
fn carrier_lookup() {
    let rules = parse(EXAMPLE).expect("the example parses");
    assert_eq!(rules.carrier("SF").map(|c| c.cost_cents), Some(1800));
    assert_eq!(rules.carrier("ZTO").map(|c| c.days), Some(3));
    assert_eq!(rules.carrier("sf"), None);
}

#[test]
fn empty_file_is_default_rules() {
    for text in ["", "# nothing yet\n", "[sender]\n[review]\n[allocation]\n"] {
        assert_eq!(parse(text), Ok(TenantRules::default()), "{text:?}");
    }
}
