//! Realistic sample orders (about 1 KiB encoded) for the quick start, benchmarks and tests.

use surge_proto::v1::{Address, Order, OrderLine, PaymentState, Totals};

const PLATFORMS: [&str; 4] = ["taobao", "jd", "pdd", "douyin"];
/// Province, city, district and street of the four receiving regions.
const PLACES: [(&str, &str, &str, &str); 4] = [
    ("浙江省", "杭州市", "西湖区", "文三路"),
    ("广东省", "深圳市", "南山区", "科技南路"),
    ("江苏省", "苏州市", "姑苏区", "干将西路"),
    ("四川省", "成都市", "武侯区", "人民南路四段"),
];
const SURNAMES: [&str; 8] = ["张", "李", "王", "刘", "陈", "欧阳", "赵", "周"];
const GIVEN: [&str; 6] = ["伟", "芳", "娜", "敏", "静", "小明"];
const COLOURS: [&str; 4] = ["红色", "白色", "黑色", "蓝色"];

/// Order number `n` of a run tagged `run`: its external id is `<run>-<n>`, so the same
/// `(run, n)` always yields the same order (and a resubmission is a retry).
pub fn order(run: &str, n: u64) -> Order {
    let (province, city, district, street) = PLACES[(n % 4) as usize];
    let lines: Vec<OrderLine> = (0..7)
        .map(|i| OrderLine {
            sku: format!("SKU-{:06}-{i}", (n * 7 + i) % 100_000),
            title: format!(
                "双十一特惠 不锈钢保温杯 450ml {}（礼盒装，第 {i} 件）stainless thermal mug",
                COLOURS[((n + i) % 4) as usize]
            ),
            quantity: 1 + ((n + i) % 3) as i64,
            unit_price_cents: 1990 + ((n * 31 + i) % 5000) as i64,
            weight_grams: 350 + ((n + i) % 200) as i64,
        })
        .collect();
    let goods: i64 = lines.iter().map(|l| l.quantity * l.unit_price_cents).sum();
    Order {
        platform: PLATFORMS[(n % 4) as usize].into(),
        shop: "surge 演示旗舰店".into(),
        external_order_id: format!("{run}-{n}"),
        routing_key: String::new(),
        buyer_id: format!("buyer-{:08}", n % 1_000_003),
        buyer_nick: format!("买家{n}"),
        receiver: Some(Address {
            name: format!(
                "{}{}",
                SURNAMES[(n % 8) as usize],
                GIVEN[((n / 8) % 6) as usize]
            ),
            phone: format!("138{:08}", n % 100_000_000),
            country: "CN".into(),
            province: province.into(),
            city: city.into(),
            district: district.into(),
            street: format!(
                "{street} {} 号 {} 幢 {} 单元 {} 室",
                n % 999,
                n % 30,
                n % 6,
                n % 1200
            ),
            postal_code: "310000".into(),
        }),
        lines,
        totals: Some(Totals {
            goods_cents: goods,
            shipping_cents: 0,
            discount_cents: 0,
            payable_cents: goods,
        }),
        payment_state: PaymentState::Paid as i32,
        paid_at_ms: 1_762_790_400_000 + n,
        buyer_remark: if n.is_multiple_of(10) {
            "周末前发货，包装好一点，是送人的礼物。谢谢！Please ship before the weekend.".into()
        } else {
            String::new()
        },
        seller_memo: if n.is_multiple_of(7) {
            "老客户，优先发货".into()
        } else {
            String::new()
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message as _;

    #[test]
    fn sample_orders_are_valid_and_about_a_kibibyte() {
        for n in 0..50 {
            let o = order("run", n);
            assert_eq!(surge_proto::validate::order(&o), Ok(()), "order {n}");
            let size = o.encoded_len();
            assert!((900..=1300).contains(&size), "order {n}: {size} bytes");
        }
        assert_eq!(order("a", 1), order("a", 1));
        assert_ne!(
            order("a", 1).external_order_id,
            order("b", 1).external_order_id
        );
    }
}
