//! Shipment confirmations (发货回传): for a shipped order, the request each platform's API
//! expects, naming the carrier by that platform's code and the waybill.

use serde_json::{json, Value};

use crate::Platform;

/// A shipped order as the platform must hear of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shipment {
    pub external_order_id: String,
    /// The carrier's code on this platform (surge's carrier name unless mapped otherwise:
    /// Taobao and Douyin use codes such as `SF`, `ZTO`, `YTO`; JD and Pinduoduo numeric ids).
    pub carrier_code: String,
    pub waybill: String,
}

/// The API call confirming `shipment` on `platform`: `{"api": NAME, "params": {...}}`.
pub fn shipment_request(platform: Platform, shipment: &Shipment) -> Value {
    let Shipment {
        external_order_id: id,
        carrier_code: code,
        waybill,
    } = shipment;
    // Numeric ids go as numbers where the platform types them so.
    let number_or_text = |s: &str| s.parse::<u64>().map_or_else(|_| json!(s), |n| json!(n));
    let (api, params) = match platform {
        Platform::Taobao | Platform::Tmall => (
            "taobao.logistics.offline.send",
            json!({"tid": number_or_text(id), "out_sid": waybill, "company_code": code}),
        ),
        Platform::Jd => (
            "jingdong.pop.order.shipment",
            json!({"orderId": number_or_text(id), "logiCoprId": code, "logiNo": waybill}),
        ),
        Platform::Pinduoduo => (
            "pdd.logistics.online.send",
            json!({"order_sn": id, "logistics_id": number_or_text(code), "tracking_number": waybill}),
        ),
        Platform::Douyin => (
            "order.logisticsAdd",
            json!({"order_id": id, "company_code": code, "logistics_code": waybill}),
        ),
        Platform::Shopify => (
            "POST /admin/api/2024-10/fulfillments.json",
            json!({"fulfillment": {
                "order_id": number_or_text(id),
                "tracking_info": {"number": waybill, "company": code},
                "notify_customer": true,
            }}),
        ),
    };
    json!({"api": api, "params": params})
}
