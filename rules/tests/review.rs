//! Review decisions over a table of orders, each differing from a clean base order.

mod common;

use common::{base_order, receiver};
use surge_proto::v1::{Order, PaymentState};
use surge_rules::{parse, HoldReason, ReviewDecision, TenantRules};

const EXAMPLE: &str = include_str!("../examples/rules.toml");

fn with(edit: impl FnOnce(&mut Order)) -> Order {
    let mut order = base_order();
    edit(&mut order);
    order
}

fn payable(cents: i64) -> impl FnOnce(&mut Order) {
    move |o: &mut Order| {
        if let Some(totals) = o.totals.as_mut() {
            totals.payable_cents = cents;
        }
    }
}

/// (case, order, expected hold codes; empty means approve).
fn cases() -> Vec<(&'static str, Order, Vec<&'static str>)> {
    vec![
        ("clean", base_order(), vec![]),
        ("amount at the limit", with(payable(200_000)), vec![]),
        (
            "amount over the limit",
            with(payable(200_001)),
            vec!["amount"],
        ),
        ("no totals counts as 0", with(|o| o.totals = None), vec![]),
        (
            "remark",
            with(|o| o.buyer_remark = "gift wrap".into()),
            vec!["remark"],
        ),
        (
            "blank remark",
            with(|o| o.buyer_remark = "  \n".into()),
            vec![],
        ),
        (
            "no name",
            with(|o| receiver(o).name.clear()),
            vec!["address"],
        ),
        (
            "no phone",
            with(|o| receiver(o).phone.clear()),
            vec!["address"],
        ),
        (
            "no province",
            with(|o| receiver(o).province.clear()),
            vec!["address"],
        ),
        (
            "no city",
            with(|o| receiver(o).city.clear()),
            vec!["address"],
        ),
        (
            "blank street",
            with(|o| receiver(o).street = " ".into()),
            vec!["address"],
        ),
        (
            "no district is fine",
            with(|o| receiver(o).district.clear()),
            vec![],
        ),
        (
            "no postal code is fine",
            with(|o| receiver(o).postal_code.clear()),
            vec![],
        ),
        ("no receiver", with(|o| o.receiver = None), vec!["address"]),
        (
            "unpaid",
            with(|o| o.set_payment_state(PaymentState::Unpaid)),
            vec!["unpaid"],
        ),
        (
            "cod is not unpaid",
            with(|o| o.set_payment_state(PaymentState::Cod)),
            vec![],
        ),
        (
            "unspecified is not unpaid",
            with(|o| o.set_payment_state(PaymentState::Unspecified)),
            vec![],
        ),
        (
            "blocked phone",
            with(|o| receiver(o).phone = "13800000013".into()),
            vec!["blocked"],
        ),
        (
            "blocked name",
            with(|o| receiver(o).name = "黑名单用户".into()),
            vec!["blocked"],
        ),
        (
            "blocking is exact",
            with(|o| receiver(o).name = "fraud name".into()),
            vec![],
        ),
        (
            "blocking is whole-value",
            with(|o| receiver(o).phone = "138000000130".into()),
            vec![],
        ),
        (
            "every check fails, listed in order",
            with(|o| {
                payable(999_999)(o);
                o.buyer_remark = "call first".into();
                o.set_payment_state(PaymentState::Unpaid);
                let r = receiver(o);
                r.phone = "13800000013".into();
                r.street.clear();
            }),
            vec!["amount", "remark", "address", "unpaid", "blocked"],
        ),
        (
            "two checks fail",
            with(|o| {
                o.set_payment_state(PaymentState::Unpaid);
                o.buyer_remark = "x".into();
            }),
            vec!["remark", "unpaid"],
        ),
    ]
}

#[test]
fn review_table() {
    let rules = parse(EXAMPLE).expect("the example parses");
    for (case, order, want) in cases() {
        let decision = rules.review(&order);
        assert_eq!(decision.codes(), want, "{case}: {decision:?}");
        assert_eq!(
            matches!(decision, ReviewDecision::Approve),
            want.is_empty(),
            "{case}: {decision:?}"
        );
    }
}

#[test]
fn default_rules_approve_everything() {
    let rules = TenantRules::default();
    for (case, order, _) in cases() {
        assert_eq!(rules.review(&order), ReviewDecision::Approve, "{case}");
    }
}

#[test]
fn switched_off_checks_do_not_hold() {
    let rules = parse("[review]\nblocked_receivers = [\"Fraud Name\"]\n").expect("parses");
    let order = with(|o| {
        payable(i64::MAX)(o);
        o.buyer_remark = "x".into();
        o.set_payment_state(PaymentState::Unpaid);
        receiver(o).city.clear();
    });
    assert_eq!(rules.review(&order), ReviewDecision::Approve);
    let blocked = with(|o| receiver(o).name = "Fraud Name".into());
    assert_eq!(rules.review(&blocked).codes(), ["blocked"]);
}

#[test]
fn hold_details_explain() {
    let rules = parse(EXAMPLE).expect("the example parses");
    let order = with(|o| {
        payable(250_000)(o);
        receiver(o).phone.clear();
        receiver(o).city.clear();
    });
    let ReviewDecision::Hold(holds) = rules.review(&order) else {
        panic!("expected a hold");
    };
    let details: Vec<_> = holds
        .iter()
        .map(|h| (h.reason, h.detail.as_str()))
        .collect();
    assert_eq!(
        details,
        [
            (
                HoldReason::AmountOverLimit,
                "payable 250000 > limit 200000 cents"
            ),
            (HoldReason::IncompleteAddress, "receiver phone, city empty"),
        ]
    );
}

#[test]
fn hold_codes() {
    let codes = [
        (HoldReason::AmountOverLimit, "amount"),
        (HoldReason::BuyerRemark, "remark"),
        (HoldReason::IncompleteAddress, "address"),
        (HoldReason::Unpaid, "unpaid"),
        (HoldReason::BlockedReceiver, "blocked"),
    ];
    for (reason, code) in codes {
        assert_eq!(reason.code(), code);
    }
}

/// A receiver in Chinese, in `province` / `city` / `district` / `street`.
fn chinese(province: &str, city: &str, district: &str, street: &str) -> Order {
    with(|o| {
        let r = o.receiver.as_mut().expect("receiver");
        r.name = "张三".into();
        r.province = province.into();
        r.city = city.into();
        r.district = district.into();
        r.street = street.into();
    })
}

#[test]
fn a_chinese_address_that_does_not_resolve_is_held_naming_the_part() {
    let rules = TenantRules::default();
    assert_eq!(
        rules
            .review(&chinese("浙江省", "杭州市", "西湖区", "文三路 288 号"))
            .codes(),
        Vec::<&str>::new()
    );
    // Short names and a district given in the street resolve as well.
    assert_eq!(
        rules
            .review(&chinese("浙江", "杭州", "", "西湖区文三路 288 号"))
            .codes(),
        Vec::<&str>::new()
    );
    for (order, part) in [
        (
            chinese("浙江省", "深圳市", "南山区", "科技南路 16 号"),
            "city",
        ),
        (chinese("浙江省", "杭州市", "", "文三路 288 号"), "district"),
        (chinese("火星省", "杭州市", "西湖区", "文三路"), "province"),
    ] {
        let ReviewDecision::Hold(holds) = rules.review(&order) else {
            panic!("approved {:?}", order.receiver);
        };
        assert_eq!(holds.len(), 1, "{holds:?}");
        assert_eq!(holds[0].reason, HoldReason::UnresolvedAddress);
        assert_eq!(holds[0].reason.code(), "address");
        assert!(holds[0].detail.contains(part), "{}", holds[0].detail);
    }
    // Latin addresses and addresses abroad are not checked against the mainland's divisions.
    assert_eq!(rules.review(&base_order()).codes(), Vec::<&str>::new());
    let mut abroad = chinese("新加坡", "", "", "乌节路 1 号");
    abroad.receiver.as_mut().expect("receiver").country = "SG".into();
    assert_eq!(rules.review(&abroad).codes(), Vec::<&str>::new());
}
