//! Tier 3: 10,000 platform orders (2,000 each from Tmall, JD, Pinduoduo, Douyin and Shopify
//! files, in the platforms' own shapes, with Chinese receivers) imported twice through
//! `surgectl order import` (the second time every one is a retry), flowing to printed Chinese
//! e-waybills; the shipped orders' confirmations from `order export-shipments` match them one
//! for one.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Stdio;
use std::time::Duration;

use common::{eventually, DevCluster};
use futures::StreamExt as _;
use serde_json::{json, Value};
use surge_grpc::v1::order_service_client::OrderServiceClient;
use surge_grpc::v1::{ConfirmPackedRequest, ConfirmShippedRequest, OrderStatus as S};

const TENANT: &str = "platforms";
const PER_PLATFORM: usize = 2000;

/// Rules with no review holds, Chinese sender, SF on 100 x 180 mm and ZTO on 76 x 130 mm.
const RULES: &str = r#"
[sender]
name = "surge 演示旗舰店 杭州仓"
phone = "0571-88880000"
province = "浙江省"
city = "杭州市"
district = "余杭区"
street = "仓前街道文一西路 1 号"

[[carriers]]
name = "SF"
cost_cents = 1800
days = 1
label = "100x180"

[[carriers]]
name = "ZTO"
cost_cents = 600
days = 3
label = "76x130"

[allocation]
default_carrier = "ZTO"

[[allocation.rules]]
name = "south-by-sf"
regions = ["广东", "福建"]
carriers = ["SF"]
"#;

/// (province, city, district, street) of receivers, all resolvable.
const PLACES: [(&str, &str, &str, &str); 6] = [
    ("浙江省", "杭州市", "西湖区", "文三路 288 号"),
    ("广东省", "深圳市", "南山区", "科技南路 16 号"),
    ("江苏省", "苏州市", "姑苏区", "干将西路 1208 号"),
    ("北京市", "北京市", "朝阳区", "建国路 88 号"),
    ("福建省", "厦门市", "思明区", "湖滨南路 90 号"),
    ("四川省", "成都市", "武侯区", "人民南路四段 1 号"),
];
const NAMES: [&str; 6] = ["张三", "李四", "王芳", "欧阳娜娜", "赵敏", "陈静"];

fn place(
    n: usize,
) -> (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
) {
    let (p, c, d, s) = PLACES[n % PLACES.len()];
    (p, c, d, s, NAMES[n % NAMES.len()])
}

/// Record `n` of `platform`, in that platform's shape.
fn record(platform: &str, n: usize) -> Value {
    let (province, city, district, street, name) = place(n);
    let phone = format!("139{:08}", n);
    match platform {
        "tmall" => json!({
            "tid": 4_000_000_000_000u64 + n as u64, "status": "WAIT_SELLER_SEND_GOODS",
            "type": "fixed", "seller_nick": "surge官方旗舰店", "payment": "99.00",
            "total_fee": "99.00", "pay_time": "2025-11-11 00:00:05", "receiver_name": name,
            "receiver_mobile": phone, "receiver_state": province, "receiver_city": city,
            "receiver_district": district, "receiver_address": street,
            "orders": {"order": [{"oid": n, "num_iid": 1, "outer_sku_id": "MUG-450", "title": "保温杯", "num": 1, "price": "99.00"}]}
        }),
        "jd" => json!({
            "orderId": format!("29{n:010}"), "orderState": "WAIT_SELLER_STOCK_OUT",
            "venderId": "10086", "payType": "4-在线支付",
            "paymentConfirmTime": "2025-11-11 00:00:08", "orderTotalPrice": "59.00",
            "orderPayment": "59.00",
            "consigneeInfo": {"fullname": name, "mobile": phone, "province": province, "city": city, "county": district, "fullAddress": street},
            "itemInfoList": [{"skuId": "1", "outerSkuId": "TOWEL", "skuName": "毛巾", "itemTotal": "2", "jdPrice": "29.50"}]
        }),
        "pdd" => json!({
            "order_sn": format!("251111-{n:015}"), "order_status": 1, "refund_status": 1,
            "mall_id": 9988776, "pay_time": "2025-11-11 00:00:01", "goods_amount": 19.9,
            "pay_amount": 19.9, "receiver_name": name, "receiver_phone": phone,
            "province": province, "city": city, "town": district, "address": street,
            "item_list": [{"goods_id": 1, "sku_id": 2, "outer_id": "SOCK", "goods_name": "棉袜", "goods_count": 1, "goods_price": 19.9}]
        }),
        "douyin" => json!({
            "order_id": format!("69{n:017}"), "order_status": 2, "pay_type": 1,
            "pay_time": 1_762_790_410, "shop_name": "surge抖音小店", "order_amount": 12900,
            "pay_amount": 12900, "post_receiver": name, "post_tel": phone,
            "post_addr": {"province": {"name": province}, "city": {"name": city}, "town": {"name": district}, "detail": street},
            "sku_order_list": [{"sku_id": "3", "code": "LIPSTICK", "product_name": "口红", "item_num": 1, "goods_price": 12900}]
        }),
        _ => json!({
            "id": 5_820_000_000_000u64 + n as u64, "financial_status": "paid",
            "processed_at": "2025-11-11T00:00:09+08:00", "subtotal_price": "45.00",
            "total_price": "45.00",
            // Shopify has no district field: Chinese buyers write it in address1.
            "shipping_address": {"name": name, "phone": phone, "address1": format!("{district}{street}"), "city": city, "province": province, "country_code": "CN"},
            "line_items": [{"sku": "TEE", "title": "T 恤", "quantity": 1, "price": "45.00", "grams": 200}]
        }),
    }
}

const PLATFORMS: [&str; 5] = ["tmall", "jd", "pdd", "douyin", "shopify"];

/// Runs `surgectl -o json order import` and answers its summary.
fn import(cluster: &DevCluster, key: &str, platform: &str, file: &std::path::Path) -> Value {
    let out = cluster
        .surgectl()
        .args(["-o", "json", "--nodes", &cluster.node_addresses().join(",")])
        .args(["order", "import", "--platform", platform])
        .arg(file)
        .env("SURGE_API_KEY", key)
        .stderr(Stdio::inherit())
        .output()
        .expect("surgectl order import");
    assert!(out.status.success(), "import {platform}: {}", out.status);
    serde_json::from_slice(&out.stdout).expect("import summary is JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn platform_files_import_twice_print_chinese_ewaybills_and_export_shipments() {
    let cluster = DevCluster::start(16);
    let meta = cluster.client();
    let key = common::tenant_with_rules(&meta, TENANT, RULES).await;
    common::add_range(&meta, TENANT, "SF", "SF", (1, 50_000)).await;
    common::add_range(&meta, TENANT, "ZTO", "ZT", (1, 50_000)).await;
    let client = cluster.order_client(cluster.node_addresses(), &key);
    common::wait_for_intake(&client).await;

    // Five files of 2,000 records each, imported twice.
    for platform in PLATFORMS {
        let file = cluster.dir.path().join(format!("{platform}.jsonl"));
        let text: String = (0..PER_PLATFORM)
            .map(|n| format!("{}\n", record(platform, n)))
            .collect();
        std::fs::write(&file, text).expect("write records");
        let first = import(&cluster, &key, platform, &file);
        assert_eq!(first["accepted"], PER_PLATFORM, "{platform}: {first}");
        assert_eq!(first["refused"], 0, "{platform}: {first}");
        let second = import(&cluster, &key, platform, &file);
        assert_eq!(second["accepted"], 0, "{platform}: {second}");
        assert_eq!(second["retries"], PER_PLATFORM, "{platform}: {second}");
    }

    // A station prints every label: Chinese text as ^GF graphics, on the carrier's stock.
    let labels = cluster.dir.path().join("labels");
    let total = PLATFORMS.len() * PER_PLATFORM;
    let mut station = cluster
        .surgectl()
        .args([
            "--nodes",
            &cluster.node_addresses().join(","),
            "station",
            "run",
        ])
        .args([
            "--tenant",
            TENANT,
            "--station",
            "dock-1",
            "--exit-after-idle",
            "15",
        ])
        .arg("--out-dir")
        .arg(&labels)
        .env("SURGE_API_KEY", &key)
        .stdout(Stdio::null())
        .spawn()
        .expect("station");
    let printed = || {
        std::fs::read_to_string(labels.join("printed.log"))
            .map(|t| t.lines().count())
            .unwrap_or(0)
    };
    let waited = eventually(Duration::from_secs(600), "every label printed", || async {
        printed() >= total
    })
    .await;
    eprintln!("{total} labels printed in {waited:?}");
    let _ = station.kill();
    let _ = station.wait();
    let log = std::fs::read_to_string(labels.join("printed.log")).expect("printed.log");
    let rows: Vec<Vec<&str>> = log.lines().map(|l| l.split('\t').collect()).collect();
    let orders: BTreeSet<&str> = rows.iter().map(|r| r[1]).collect();
    assert_eq!(orders.len(), total, "one label per order");
    let waybills: BTreeSet<&str> = rows.iter().map(|r| r[3]).collect();
    assert_eq!(waybills.len(), total, "no waybill twice");
    for row in rows.iter().step_by(997) {
        let zpl = std::fs::read_to_string(labels.join(format!("{}.zpl", row[0]))).expect("zpl");
        surge_label::check_zpl(&zpl).unwrap_or_else(|e| panic!("{}: {e}", row[0]));
        assert!(zpl.contains("^GFA,"), "{}: Chinese as graphics", row[0]);
        let stock = if row[2] == "SF" {
            "^PW799\n^LL1439"
        } else {
            "^PW607\n^LL1039"
        };
        assert!(zpl.contains(stock), "{}: {} on its stock", row[0], row[2]);
    }

    carrier_routing_replaces_the_derived_one(&cluster, &key, &client).await;

    // Pack and ship the Pinduoduo orders; export their confirmations.
    let pdd: BTreeMap<String, (String, String, String)> = {
        let mut out = BTreeMap::new();
        for o in common::list_status(&client, S::LabelPrinted).await {
            let order = o.order.clone().expect("order");
            if order.platform == "pdd" {
                out.insert(
                    o.order_id.clone(),
                    (
                        order.external_order_id,
                        o.carrier.clone(),
                        o.waybill.clone(),
                    ),
                );
            }
        }
        out
    };
    assert_eq!(pdd.len(), PER_PLATFORM);
    let client = &client;
    futures::stream::iter(pdd.keys().cloned())
        .map(|id| async move {
            client
                .on_order(
                    &id,
                    ConfirmPackedRequest {
                        order_id: id.clone(),
                    },
                    |ch, r| async move { OrderServiceClient::new(ch).confirm_packed(r).await },
                )
                .await
                .expect("packed");
            let req = ConfirmShippedRequest {
                order_id: id.clone(),
                weight_grams: 300,
            };
            client
                .on_order(&id, req, |ch, r| async move {
                    OrderServiceClient::new(ch).confirm_shipped(r).await
                })
                .await
                .expect("shipped");
        })
        .buffer_unordered(16)
        .collect::<Vec<()>>()
        .await;
    let export = cluster.dir.path().join("pdd-shipments.jsonl");
    let out = cluster
        .surgectl()
        .args(["--nodes", &cluster.node_addresses().join(",")])
        .args([
            "order",
            "export-shipments",
            "--platform",
            "pdd",
            "--carrier-code",
            "SF=44",
            "--out",
        ])
        .arg(&export)
        .env("SURGE_API_KEY", &key)
        .output()
        .expect("export");
    assert!(
        out.status.success(),
        "export: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&export).expect("export file");
    let exported: BTreeMap<String, (String, String)> = text
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("a JSON line");
            assert_eq!(v["api"], "pdd.logistics.online.send");
            let p = &v["params"];
            (
                p["order_sn"].as_str().expect("order_sn").to_owned(),
                (
                    p["logistics_id"].to_string().trim_matches('"').to_owned(),
                    p["tracking_number"].as_str().expect("tracking").to_owned(),
                ),
            )
        })
        .collect();
    let expected: BTreeMap<String, (String, String)> = pdd
        .values()
        .map(|(external, carrier, waybill)| {
            let code = if carrier == "SF" {
                "44".to_owned()
            } else {
                carrier.clone()
            };
            (external.clone(), (code, waybill.clone()))
        })
        .collect();
    assert_eq!(
        exported.len(),
        PER_PLATFORM,
        "one confirmation per shipped order"
    );
    assert_eq!(exported, expected);
}

/// `surgectl order route` records the carrier's 三段码 and 大头笔 for a printed Tmall order's
/// waybill; `order get` shows them and the label prints the carrier's code; a routing for another
/// waybill is refused naming `waybill` and changes nothing.
async fn carrier_routing_replaces_the_derived_one(
    cluster: &DevCluster,
    key: &str,
    client: &surge_client::OrderClient,
) {
    let printed = common::list_status(client, S::LabelPrinted).await;
    let order = printed
        .iter()
        .find(|o| o.order.as_ref().is_some_and(|r| r.platform == "tmall"))
        .expect("a printed Tmall order");
    let surgectl = |args: &[&str]| {
        cluster
            .surgectl()
            .args(["--nodes", &cluster.node_addresses().join(","), "-o", "json"])
            .args(args)
            .env("SURGE_API_KEY", key)
            .output()
            .expect("surgectl")
    };
    let id = order.order_id.as_str();
    let out = surgectl(&[
        "order",
        "route",
        id,
        "--waybill",
        &order.waybill,
        "--sorting-code",
        "998-Z77-66",
        "--destination",
        "杭州 转运中心",
    ]);
    assert!(
        out.status.success(),
        "route: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shown: Value =
        serde_json::from_slice(&surgectl(&["order", "get", id]).stdout).expect("order get -o json");
    assert_eq!(shown["carrier_routing"]["waybill"], order.waybill.as_str());
    assert_eq!(shown["carrier_routing"]["sorting_code"], "998-Z77-66");
    assert_eq!(shown["carrier_routing"]["destination"], "杭州 转运中心");
    assert_eq!(shown["status"], "LABEL_PRINTED", "routing moves no status");
    let zpl = cluster.dir.path().join("routed.zpl");
    let out = surgectl(&["label", "get", id, "--out", zpl.to_str().expect("path")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let zpl = std::fs::read_to_string(&zpl).expect("label");
    assert!(
        zpl.contains("^FD998-Z77-66^FS"),
        "the carrier's code printed:\n{zpl}"
    );

    let out = surgectl(&[
        "order",
        "route",
        id,
        "--waybill",
        "SF-NOT-THIS-ONE",
        "--sorting-code",
        "111-A11-11",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "another waybill's routing accepted");
    assert!(stderr.contains("waybill"), "names the field: {stderr}");
    let out = surgectl(&["order", "route", id, "--waybill", &order.waybill]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "an empty routing accepted");
    assert!(stderr.contains("sorting_code"), "names the field: {stderr}");
    let shown: Value =
        serde_json::from_slice(&surgectl(&["order", "get", id]).stdout).expect("order get -o json");
    assert_eq!(
        shown["carrier_routing"]["sorting_code"], "998-Z77-66",
        "unchanged"
    );
}
