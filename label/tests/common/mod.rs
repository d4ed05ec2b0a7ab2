//! The fixed sample label shared by the integration tests.
#![allow(dead_code)]

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
        destination: String::new(),
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
        stock: surge_label::Stock::FourBySix,
    }
}

/// The renderer the tests draw with: the system's CJK font, text as `^GF` graphics.
pub(crate) fn renderer() -> surge_label::Renderer {
    surge_label::Renderer::new(
        Some(surge_label::test_fonts()),
        surge_label::ZplText::Graphic,
    )
}

/// A renderer without a CJK font (Helvetica in the PDF, UTF-8 text to `^A0` in ZPL).
pub(crate) fn plain() -> surge_label::Renderer {
    surge_label::Renderer::default()
}

/// A Tmall order from a Hangzhou warehouse to 张三 in Hangzhou, in Chinese throughout.
pub(crate) fn chinese() -> Label {
    let receiver = Address {
        name: "张三".into(),
        phone: "13800000288".into(),
        country: "CN".into(),
        province: "浙江省".into(),
        city: "杭州市".into(),
        district: "西湖区".into(),
        street: "文三路 288 号 华星时代广场 A 座 1203 室（前台代收）".into(),
        postal_code: "310012".into(),
    };
    Label {
        carrier: "顺丰速运".into(),
        waybill: "SF1234567890123".into(),
        sorting_code: "3301-06-42".into(),
        destination: "杭州 西湖".into(),
        sender: Address {
            name: "杭州仓 · 王五".into(),
            phone: "0571-88880000".into(),
            country: "CN".into(),
            province: "浙江省".into(),
            city: "杭州市".into(),
            district: "余杭区".into(),
            street: "仓前街道文一西路 1 号 3 号库".into(),
            postal_code: "311121".into(),
        },
        receiver,
        order_ref: "3-120-0 / tmall:3921837465512".into(),
        parcel_index: 1,
        parcel_count: 2,
        weight_grams: 1280,
        reprint: 0,
        stock: surge_label::Stock::FourBySix,
    }
}

/// Whether `pdftoppm` can run here; panics on CI when it cannot.
pub(crate) fn have_pdftoppm() -> bool {
    match std::process::Command::new("pdftoppm").arg("-v").output() {
        Ok(_) => true,
        Err(e) => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("pdftoppm is required on CI (install poppler-utils): {e}");
            }
            println!("skipped: pdftoppm not found ({e}); install poppler-utils to run this check");
            false
        }
    }
}
