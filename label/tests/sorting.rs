//! `sorting_code`: province / city letters and the FNV-1a district bucket.

use surge_label::sorting_code;
use surge_proto::v1::Address;

fn address(province: &str, city: &str, district: &str) -> Address {
    Address {
        province: province.into(),
        city: city.into(),
        district: district.into(),
        ..Address::default()
    }
}

#[test]
fn sorting_code_table() {
    // Buckets are FNV-1a 32 of the lower-cased district, mod 100 (computed independently):
    // "xihu" 0x564116e9, "nanshan" 0xff7f5792, "chaoyang" 0xc297f94b, "pudong xinqu" 0x35950be5.
    let cases = [
        (("Zhejiang", "Hangzhou", "Xihu"), "ZH-HAN-81"),
        (("Guangdong", "Shenzhen", "Nanshan"), "GU-SHE-70"),
        (("Beijing", "Beijing", "Chaoyang"), "BE-BEI-59"),
        (("Shanghai", "Shanghai", "Pudong Xinqu"), "SH-SHA-57"),
        (("  zhejiang", "hangzhou ", "  XIHU  "), "ZH-HAN-81"),
        (("", "", ""), "XX-XXX-00"),
        (("Zhejiang", "Hangzhou", "   "), "ZH-HAN-00"),
        (
            ("\u{6d59}\u{6c5f}", "\u{676d}\u{5dde}", "Xihu"),
            "XX-XXX-81",
        ),
        (("A", "Xi'an", "a"), "AX-XIA-20"),
        (("Hong Kong", "N.T.", ""), "HO-NTX-00"),
    ];
    for ((province, city, district), expected) in cases {
        let code = sorting_code(&address(province, city, district));
        assert_eq!(code, expected, "{province:?} / {city:?} / {district:?}");
    }
}

#[test]
fn sorting_code_ignores_other_fields() {
    let mut a = address("Zhejiang", "Hangzhou", "Xihu");
    let code = sorting_code(&a);
    a.name = "Li Lei".into();
    a.street = "No. 1".into();
    a.postal_code = "310000".into();
    assert_eq!(sorting_code(&a), code);
}
