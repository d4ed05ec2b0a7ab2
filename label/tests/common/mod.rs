//! The fixed sample label shared by the integration tests.

use surge_label::Label;
use surge_proto::v1::Address;

/// A one-parcel SF Express label from a Hangzhou warehouse to Shenzhen (pinyin sample data).
pub(crate) fn sample() -> Label {
    let receiver = Address {
        name: "Li Lei".into(),
        phone: "13900000002".into(),
        country: "CN".into(),
        province: "Guangdong".into(),
        city: "Shenzhen".into(),
        district: "Nanshan".into(),
        street: "Room 1201, Building A, No. 9 Keji South Road, Gaoxin Industrial Park".into(),
        postal_code: "518057".into(),
    };
    Label {
        carrier: "SF Express".into(),
        waybill: "SF0000012345".into(),
        sorting_code: surge_label::sorting_code(&receiver),
        sender: Address {
            name: "Surge Fulfilment Hangzhou".into(),
            phone: "0571-88880000".into(),
            country: "CN".into(),
            province: "Zhejiang".into(),
            city: "Hangzhou".into(),
            district: "Yuhang".into(),
            street: "No. 1 Wenyi West Road, Warehouse 3".into(),
            postal_code: "311121".into(),
        },
        receiver,
        order_ref: "3-120-0 / taobao:run-17".into(),
        parcel_index: 1,
        parcel_count: 1,
        weight_grams: 2350,
        reprint: 0,
    }
}
