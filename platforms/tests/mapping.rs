//! Each platform's fixture (`fixtures/<platform>.jsonl`, written from the platform's published
//! field documentation) maps to the orders it describes: a paid order with a buyer remark and a
//! seller memo, an unpaid one, a multi-line one, a cancelled one (and cash on delivery where the
//! platform has it); malformed records are refused with their line and field.

use surge_platforms::{map_lines, map_record, Mapped, Platform, PLATFORMS};
use surge_proto::v1::{Order, PaymentState};

fn fixture(platform: Platform) -> Vec<Mapped> {
    let path = format!(
        "{}/tests/fixtures/{}.jsonl",
        env!("CARGO_MANIFEST_DIR"),
        platform.name()
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    map_lines(platform, &text)
        .map(|(line, r)| r.unwrap_or_else(|e| panic!("{path}:{line}: {e}")))
        .collect()
}

fn order(m: &Mapped) -> &Order {
    match m {
        Mapped::Order(o) => o,
        Mapped::Cancelled { .. } => panic!("expected an order, got {m:?}"),
    }
}

fn state(o: &Order) -> PaymentState {
    o.payment_state()
}

#[test]
fn tmall_and_taobao_trades() {
    for platform in [Platform::Tmall, Platform::Taobao] {
        let m = fixture(platform);
        let paid = order(&m[0]);
        assert_eq!(paid.platform, platform.name());
        assert_eq!(paid.external_order_id, "3921837465512");
        assert_eq!(state(paid), PaymentState::Paid);
        assert_eq!(paid.paid_at_ms, 1_762_790_405_000);
        assert_eq!(paid.buyer_remark, "请尽快发货，谢谢");
        assert_eq!(paid.seller_memo, "送小样");
        let totals = paid.totals.expect("totals");
        assert_eq!(
            (
                totals.goods_cents,
                totals.discount_cents,
                totals.payable_cents
            ),
            (21900, 2000, 19900)
        );
        let r = paid.receiver.clone().expect("receiver");
        assert_eq!((r.name.as_str(), r.phone.as_str()), ("张三", "13800000288"));
        assert_eq!(
            (r.province.as_str(), r.city.as_str(), r.district.as_str()),
            ("浙江省", "杭州市", "西湖区")
        );
        assert_eq!(r.street, "文新街道 文三路 288 号 华星时代广场 A 座 1203 室");
        assert_eq!(paid.lines[0].sku, "MUG-450-RED");
        assert_eq!(paid.lines[0].unit_price_cents, 21900);

        assert_eq!(state(order(&m[1])), PaymentState::Unpaid);
        let multi = order(&m[2]);
        assert_eq!(multi.lines.len(), 2);
        // The second line has no outer_sku_id: its platform SKU id stands in.
        assert_eq!(multi.lines[1].sku, "4412345678999");
        assert_eq!((multi.lines[0].quantity, multi.lines[1].quantity), (2, 3));
        assert_eq!(
            m[3],
            Mapped::Cancelled {
                platform: platform.name(),
                external_order_id: "3921837465800".into()
            }
        );
        // Cash on delivery, with the lines as a flat array (as exports write them).
        let cod = order(&m[4]);
        assert_eq!(state(cod), PaymentState::Cod);
        assert_eq!(cod.lines[0].sku, "CUP-300");
    }
}

#[test]
fn jd_orders() {
    let m = fixture(Platform::Jd);
    let paid = order(&m[0]);
    assert_eq!(paid.external_order_id, "290012345678");
    assert_eq!(state(paid), PaymentState::Paid);
    assert_eq!(paid.buyer_remark, "工作日送货");
    assert_eq!(paid.seller_memo, "VIP客户");
    assert_eq!(paid.totals.expect("totals").payable_cents, 26900);
    let r = paid.receiver.clone().expect("receiver");
    assert_eq!((r.name.as_str(), r.district.as_str()), ("赵六", "朝阳区"));
    assert_eq!(state(order(&m[1])), PaymentState::Unpaid);
    let cod = order(&m[2]);
    assert_eq!(state(cod), PaymentState::Cod);
    assert_eq!(cod.lines.len(), 2);
    assert_eq!(cod.lines[0].quantity, 2);
    assert!(
        matches!(&m[3], Mapped::Cancelled { external_order_id, .. } if external_order_id == "290012345681")
    );
}

#[test]
fn pinduoduo_orders() {
    let m = fixture(Platform::Pinduoduo);
    let paid = order(&m[0]);
    assert_eq!(paid.platform, "pdd");
    assert_eq!(state(paid), PaymentState::Paid);
    // Amounts sent as JSON numbers still become exact cents.
    let totals = paid.totals.expect("totals");
    assert_eq!((totals.goods_cents, totals.payable_cents), (3990, 2990));
    assert_eq!(paid.lines[0].unit_price_cents, 3990);
    assert_eq!(
        (paid.buyer_remark.as_str(), paid.seller_memo.as_str()),
        ("多给点赠品", "已备注赠品")
    );
    assert_eq!(state(order(&m[1])), PaymentState::Unpaid);
    assert_eq!(order(&m[2]).lines.len(), 2);
    assert!(matches!(&m[3], Mapped::Cancelled { .. }));
}

#[test]
fn douyin_orders() {
    let m = fixture(Platform::Douyin);
    let paid = order(&m[0]);
    assert_eq!(state(paid), PaymentState::Paid);
    assert_eq!(paid.paid_at_ms, 1_762_790_410_000);
    assert_eq!(paid.totals.expect("totals").payable_cents, 11900);
    assert_eq!(paid.buyer_remark, "直播间下单，送小礼物");
    // Encrypted receiver fields are kept as sent: opaque, never "fixed".
    let r = paid.receiver.clone().expect("receiver");
    assert_eq!(r.phone, "$8x7K$encrypted-phone$");
    assert_eq!(
        (r.province.as_str(), r.district.as_str()),
        ("浙江省", "余杭区")
    );
    assert_eq!(state(order(&m[1])), PaymentState::Unpaid);
    let cod = order(&m[2]);
    assert_eq!(state(cod), PaymentState::Cod);
    assert_eq!(cod.lines.len(), 2);
    assert!(matches!(&m[3], Mapped::Cancelled { .. }));
}

#[test]
fn shopify_orders() {
    let m = fixture(Platform::Shopify);
    let paid = order(&m[0]);
    assert_eq!(paid.external_order_id, "5820000000001");
    assert_eq!(state(paid), PaymentState::Paid);
    assert_eq!(paid.paid_at_ms, 1_762_790_409_000);
    assert_eq!(paid.buyer_remark, "请用顺丰");
    let totals = paid.totals.expect("totals");
    assert_eq!((totals.shipping_cents, totals.payable_cents), (1000, 5000));
    assert_eq!(paid.lines[0].weight_grams, 200);
    assert_eq!(
        paid.receiver.clone().expect("receiver").street,
        "干将西路 1208 号, 3 楼"
    );
    let unpaid = order(&m[1]);
    assert_eq!(state(unpaid), PaymentState::Unpaid);
    assert_eq!(unpaid.receiver.clone().expect("receiver").country, "DE");
    assert_eq!(order(&m[2]).lines.len(), 2);
    assert!(matches!(&m[3], Mapped::Cancelled { .. }));
}

#[test]
fn malformed_records_are_refused_with_line_and_field() {
    let cases: &[(Platform, &str, &str)] = &[
        (
            Platform::Tmall,
            r#"{"status": "WAIT_SELLER_SEND_GOODS"}"#,
            "tid",
        ),
        (
            Platform::Tmall,
            r#"{"tid": 1, "status": "WAIT_SELLER_SEND_GOODS", "payment": "1.999", "orders": []}"#,
            "payment",
        ),
        (
            Platform::Tmall,
            r#"{"tid": 1, "status": "WAIT_SELLER_SEND_GOODS", "orders": {"order": [{"outer_sku_id": "A", "num": "two"}]}}"#,
            "orders.order[0].num",
        ),
        (
            Platform::Jd,
            r#"{"orderId": "1", "orderState": "WAIT_SELLER_STOCK_OUT", "itemInfoList": []}"#,
            "consigneeInfo",
        ),
        (
            Platform::Pinduoduo,
            r#"{"order_sn": "x", "pay_time": "11/11 00:00", "item_list": []}"#,
            "pay_time",
        ),
        (
            Platform::Douyin,
            r#"{"order_id": "1", "order_status": "paid"}"#,
            "order_status",
        ),
        (
            Platform::Shopify,
            r#"{"id": 1, "processed_at": "yesterday", "shipping_address": {}, "line_items": [{"sku": "A", "quantity": 1}]}"#,
            "processed_at",
        ),
        // Surge's own checks: an order needs at least one line.
        (
            Platform::Douyin,
            r#"{"order_id": "1", "order_status": 2, "shop_name": "s", "post_addr": {}, "sku_order_list": []}"#,
            "lines",
        ),
        (Platform::Jd, "not json", ""),
        (Platform::Jd, "[1, 2]", ""),
    ];
    for &(platform, record, field) in cases {
        let err = map_record(platform, record).expect_err(record);
        assert_eq!(err.field, field, "{record}: {err}");
    }
    // In a file, the line number comes with it, and the good lines still map.
    let text = "\n{\"tid\": 1, \"status\": \"TRADE_CLOSED\"}\n{\"status\": \"WAIT_BUYER_PAY\"}\n";
    let results: Vec<_> = map_lines(Platform::Taobao, text).collect();
    assert_eq!(results.len(), 2);
    assert!(results[0].1.is_ok());
    let err = results[1].1.clone().expect_err("no tid");
    assert_eq!((err.line, err.error.field.as_str()), (3, "tid"));
    assert_eq!(err.to_string(), "line 3: tid: required");
}

#[test]
fn platform_names_parse() {
    for p in PLATFORMS {
        assert_eq!(p.name().parse(), Ok(p));
    }
    assert_eq!("Pinduoduo".parse(), Ok(Platform::Pinduoduo));
    assert!("ebay".parse::<Platform>().is_err());
}
