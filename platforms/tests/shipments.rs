//! The shipment confirmation each platform expects for a shipped order.

use surge_platforms::{shipment_request, Platform, Shipment};

#[test]
fn each_platform_gets_its_own_request_shape() {
    let s = |id: &str| Shipment {
        external_order_id: id.into(),
        carrier_code: "SF".into(),
        waybill: "SF1234567890123".into(),
    };
    let tb = shipment_request(Platform::Tmall, &s("3921837465512"));
    assert_eq!(tb["api"], "taobao.logistics.offline.send");
    assert_eq!(tb["params"]["tid"], 3_921_837_465_512u64);
    assert_eq!(tb["params"]["out_sid"], "SF1234567890123");
    assert_eq!(tb["params"]["company_code"], "SF");
    let jd = shipment_request(Platform::Jd, &s("290012345678"));
    assert_eq!(jd["params"]["logiNo"], "SF1234567890123");
    let pdd = shipment_request(
        Platform::Pinduoduo,
        &Shipment {
            carrier_code: "44".into(),
            ..s("251111-012345678901234")
        },
    );
    assert_eq!(pdd["params"]["order_sn"], "251111-012345678901234");
    assert_eq!(pdd["params"]["logistics_id"], 44);
    let dy = shipment_request(Platform::Douyin, &s("6921234567890123456"));
    assert_eq!(dy["params"]["logistics_code"], "SF1234567890123");
    let shop = shipment_request(Platform::Shopify, &s("5820000000001"));
    assert_eq!(
        shop["params"]["fulfillment"]["tracking_info"]["number"],
        "SF1234567890123"
    );
}
