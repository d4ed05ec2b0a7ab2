//! Carrier allocation over region, weight, COD-ness and preference.

mod common;

use common::{base_order, line, receiver};
use surge_proto::v1::{Order, PaymentState};
use surge_rules::{parcel_weight_grams, parse, Allocated, TenantRules};

const RULES: &str = r#"
[[carriers]]
name = "SF"
cost_cents = 1800
days = 1

[[carriers]]
name = "ZTO"
cost_cents = 600
days = 3

[[carriers]]
name = "YTO"
cost_cents = 600
days = 2

[[carriers]]
name = "JD"
cost_cents = 1800
days = 1

[allocation]
default_carrier = "ZTO"

[[allocation.rules]]
name = "beijing-prepaid"
regions = ["Beijing"]
cod = false
carriers = ["JD"]

[[allocation.rules]]
name = "cod-by-sf"
cod = true
carriers = ["SF"]

[[allocation.rules]]
name = "south-heavy"
regions = ["Guangdong", "Guangxi"]
min_weight_grams = 5000
max_weight_grams = 30000
carriers = ["ZTO", "SF"]
prefer = "speed"

[[allocation.rules]]
name = "south-light"
regions = ["Guangdong"]
max_weight_grams = 4999
carriers = ["SF", "YTO", "ZTO"]

[[allocation.rules]]
name = "west-fast"
regions = ["Sichuan"]
carriers = ["JD", "SF", "ZTO"]
prefer = "speed"
"#;

/// An order to `province` of the given line (quantity, grams) list and payment state.
fn order(province: &str, lines: &[(i64, i64)], state: PaymentState) -> Order {
    let mut order = base_order();
    receiver(&mut order).province = province.into();
    order.lines = lines.iter().map(|&(q, w)| line(q, w)).collect();
    order.set_payment_state(state);
    order
}

/// (province, lines, payment state, expected carrier, expected rule).
type Case = (
    &'static str,
    &'static [(i64, i64)],
    PaymentState,
    &'static str,
    &'static str,
);

#[test]
fn allocation_table() {
    use PaymentState::{Cod, Paid, Unpaid};
    let rules = parse(RULES).expect("rules parse");
    let cases: &[Case] = &[
        ("Zhejiang", &[(1, 1000)], Paid, "ZTO", "default"),
        ("Zhejiang", &[(1, 1000)], Cod, "SF", "cod-by-sf"),
        ("Beijing", &[(1, 1000)], Paid, "JD", "beijing-prepaid"),
        ("Beijing", &[(1, 1000)], Unpaid, "JD", "beijing-prepaid"),
        ("Beijing", &[(1, 1000)], Cod, "SF", "cod-by-sf"),
        ("Guangdong", &[(1, 10_000)], Cod, "SF", "cod-by-sf"),
        ("Guangdong", &[(1, 5000)], Paid, "SF", "south-heavy"),
        ("Guangdong", &[(1, 30_000)], Paid, "SF", "south-heavy"),
        ("Guangdong", &[(1, 30_001)], Paid, "ZTO", "default"),
        (
            "Guangxi",
            &[(2, 2000), (1, 1000)],
            Paid,
            "SF",
            "south-heavy",
        ),
        ("Guangxi", &[(1, 4999)], Paid, "ZTO", "default"),
        (
            "Guangxi",
            &[(3, 2000), (-5, 10_000)],
            Paid,
            "SF",
            "south-heavy",
        ),
        ("Guangdong", &[(1, 4999)], Paid, "YTO", "south-light"),
        ("Guangdong", &[], Paid, "YTO", "south-light"),
        ("guangdong", &[(1, 10_000)], Paid, "ZTO", "default"),
        ("Sichuan", &[(1, 100)], Paid, "JD", "west-fast"),
        ("", &[(1, 100)], Paid, "ZTO", "default"),
        // Chinese province names match the rules' Latin ones only as written; Chinese rule
        // regions match full and short names alike (the next test).
        ("广东省", &[(1, 5000)], Paid, "ZTO", "default"),
    ];
    for &(province, lines, state, carrier, rule) in cases {
        let got = rules.allocate(&order(province, lines, state));
        let want = Allocated {
            carrier: carrier.into(),
            rule: rule.into(),
        };
        assert_eq!(got, Some(want), "{province} {lines:?} {state:?}");
    }
}

#[test]
fn preference_table() {
    // (allocation.prefer, the rule's prefer, expected carrier among ["ZTO", "SF", "EMS"]).
    let cases = [
        (None, None, "ZTO"),
        (Some("cost"), None, "ZTO"),
        (Some("speed"), None, "SF"),
        (Some("speed"), Some("cost"), "ZTO"),
        (Some("cost"), Some("speed"), "SF"),
        (None, Some("speed"), "SF"),
    ];
    for (global, own, want) in cases {
        let global = global.map_or(String::new(), |p| format!("prefer = \"{p}\"\n"));
        let own = own.map_or(String::new(), |p| format!("prefer = \"{p}\"\n"));
        let text = format!(
            "[[carriers]]\nname = \"SF\"\ncost_cents = 1800\ndays = 1\n\
             [[carriers]]\nname = \"ZTO\"\ncost_cents = 600\ndays = 3\n\
             [[carriers]]\nname = \"EMS\"\ncost_cents = 600\ndays = 1\n\
             [allocation]\n{global}\
             [[allocation.rules]]\nname = \"any\"\ncarriers = [\"ZTO\", \"SF\", \"EMS\"]\n{own}"
        );
        let rules = parse(&text).expect("rules parse");
        let got = rules.allocate(&base_order()).map(|a| (a.carrier, a.rule));
        assert_eq!(got, Some((want.to_owned(), "any".to_owned())), "{text}");
    }
}

#[test]
fn no_match_without_default_is_none() {
    let text = "[[carriers]]\nname = \"SF\"\ncost_cents = 1\ndays = 1\n\
                [[allocation.rules]]\nname = \"cod\"\ncod = true\ncarriers = [\"SF\"]\n";
    let rules = parse(text).expect("rules parse");
    let paid = base_order();
    assert_eq!(rules.allocate(&paid), None);
    let mut cod = base_order();
    cod.set_payment_state(PaymentState::Cod);
    assert_eq!(
        rules.allocate(&cod),
        Some(Allocated {
            carrier: "SF".into(),
            rule: "cod".into()
        })
    );
}

#[test]
fn default_rules_allocate_nothing() {
    let rules = TenantRules::default();
    assert_eq!(rules.allocate(&base_order()), None);
    assert_eq!(
        rules.allocate(&order("Guangdong", &[(1, 10_000)], PaymentState::Cod)),
        None
    );
}

#[test]
fn parcel_weight_table() {
    let cases: &[(&[(i64, i64)], i64)] = &[
        (&[], 0),
        (&[(1, 1000)], 1000),
        (&[(2, 1500), (3, 100)], 3300),
        (&[(-1, 1000), (2, 10)], 20),
        (&[(2, -1000), (1, 7)], 7),
        (&[(i64::MAX, 2)], i64::MAX),
        (&[(i64::MAX, 1), (1, 1)], i64::MAX),
    ];
    for &(lines, want) in cases {
        let order = order("Zhejiang", lines, PaymentState::Paid);
        assert_eq!(parcel_weight_grams(&order), want, "{lines:?}");
    }
}

#[test]
fn chinese_regions_match_full_and_short_province_names() {
    let rules = parse(
        r#"
[[carriers]]
name = "SF"
cost_cents = 1800
days = 1

[[carriers]]
name = "ZTO"
cost_cents = 600
days = 3

[allocation]
default_carrier = "ZTO"

[[allocation.rules]]
name = "south-by-sf"
regions = ["广东", "广西壮族自治区"]
carriers = ["SF"]
"#,
    )
    .expect("rules parse");
    use PaymentState::Paid;
    for (province, carrier) in [
        ("广东省", "SF"),
        ("广东", "SF"),
        ("广西", "SF"),
        ("广西壮族自治区", "SF"),
        ("浙江省", "ZTO"),
        ("广", "ZTO"),
    ] {
        let got = rules.allocate(&order(province, &[(1, 1000)], Paid));
        assert_eq!(
            got.map(|a| a.carrier),
            Some(carrier.to_owned()),
            "{province}"
        );
    }
}
