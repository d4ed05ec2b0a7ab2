//! `check_zpl`: accepts what `zpl` produces and refuses malformed formats with the right error.

mod common;

use surge_label::{check_zpl, ZplError, ZplLabel};

fn zpl(label: &surge_label::Label) -> String {
    common::renderer().zpl(label)
}

#[test]
fn accepts_rendered_label_and_returns_the_waybill() {
    let labels = check_zpl(&zpl(&common::sample())).expect("valid ZPL");
    assert_eq!(labels.len(), 1);
    assert_eq!(labels[0].waybills, ["SF0000012345"]);
    assert!(labels[0].fields >= 10, "{:?}", labels[0]);
}

#[test]
fn accepts_several_formats_separated_by_whitespace() {
    let one = zpl(&common::sample());
    let two = zpl(&surge_label::Label {
        waybill: "SF0000099999".into(),
        reprint: 1,
        ..common::sample()
    });
    let labels = check_zpl(&format!("\r\n{one}\n\n{two}  ")).expect("valid ZPL");
    let waybills: Vec<&str> = labels.iter().map(|l| l.waybills[0].as_str()).collect();
    assert_eq!(waybills, ["SF0000012345", "SF0000099999"]);
}

#[test]
fn accepts_minimal_format() {
    assert_eq!(
        check_zpl("^XA^PW812^LL1218^FO10,10^BY2^BCN,100,N,N,N^FDSF1^FS^XZ"),
        Ok(vec![ZplLabel {
            waybills: vec!["SF1".into()],
            fields: 1,
        }])
    );
    // An e-waybill repeats its barcode on the stub.
    assert_eq!(
        check_zpl("^XA^BCN^FDSF1^FS^BCN^FDSF1^FS^XZ"),
        Ok(vec![ZplLabel {
            waybills: vec!["SF1".into()],
            fields: 2,
        }])
    );
}

#[test]
fn refuses_malformed_input() {
    use ZplError::*;
    let oob = |offset, command, value: &str, max| OutOfBounds {
        offset,
        command,
        value: value.into(),
        max,
    };
    let cases: Vec<(&str, &str, ZplError)> = vec![
        ("empty input", "", NoLabel),
        ("only whitespace", " \r\n\t", NoLabel),
        (
            "missing ^XZ",
            "^XA^FO10,10^BCN,100,N,N,N^FDSF1^FS",
            MissingEnd { start: 0 },
        ),
        (
            "missing ^XZ on the second label",
            "^XA^BCN^FDA^FS^XZ\n^XA^BCN^FDB^FS",
            MissingEnd { start: 18 },
        ),
        (
            "unclosed ^FD before ^XZ",
            "^XA^BCN^FDSF1^XZ",
            UnclosedField { offset: 7 },
        ),
        (
            "unclosed ^FD at the end",
            "^XA^BCN^FDSF1",
            UnclosedField { offset: 7 },
        ),
        (
            "no barcode",
            "^XA^FO10,10^A0N,30,30^FDhello^FS^XZ",
            NoBarcode { offset: 32 },
        ),
        (
            "two different barcodes",
            "^XA^BCN^FDA^FS^BCN^FDB^FS^XZ",
            DifferentBarcodes {
                offset: 14,
                first: "A".into(),
                found: "B".into(),
            },
        ),
        (
            "a barcode without data before the next",
            "^XA^BCN^BCN^FDB^FS^XZ",
            TwoBarcodes { offset: 7 },
        ),
        (
            "nested ^XA",
            "^XA^XA^BCN^FDA^FS^XZ",
            NestedStart {
                offset: 3,
                start: 0,
            },
        ),
        (
            "garbage command",
            "^XA^!!^BCN^FDA^FS^XZ",
            BadCommand {
                offset: 3,
                found: "^!!".into(),
            },
        ),
        (
            "truncated command",
            "^XA^BCN^FDA^FS^X",
            BadCommand {
                offset: 14,
                found: "^X".into(),
            },
        ),
        (
            "text before the label",
            "hello^XA^BCN^FDA^FS^XZ",
            OutsideLabel { offset: 0 },
        ),
        (
            "text after the label",
            "^XA^BCN^FDA^FS^XZ junk",
            OutsideLabel { offset: 18 },
        ),
        ("^XZ without ^XA", "^XZ", OutsideLabel { offset: 0 }),
        (
            "empty barcode data",
            "^XA^BCN^FD^FS^XZ",
            EmptyBarcode { offset: 3 },
        ),
        (
            "blank barcode data",
            "^XA^BCN^FD  ^FS^XZ",
            EmptyBarcode { offset: 3 },
        ),
        (
            "barcode field without ^FD",
            "^XA^BCN^FS^XZ",
            EmptyBarcode { offset: 3 },
        ),
        (
            "barcode without field",
            "^XA^BCN^XZ",
            EmptyBarcode { offset: 3 },
        ),
        (
            "control prefix in data",
            "^XA^BCN^FDA~JA^FS^XZ",
            ControlInField { offset: 11 },
        ),
        (
            "too wide",
            "^XA^PW900^BCN^FDA^FS^XZ",
            oob(3, "PW", "900", 812),
        ),
        (
            "too long",
            "^XA^LL1440^BCN^FDA^FS^XZ",
            oob(3, "LL", "1440", 1439),
        ),
        (
            "width not a number",
            "^XA^PWabc^BCN^FDA^FS^XZ",
            oob(3, "PW", "abc", 812),
        ),
        (
            "zero length",
            "^XA^LL0^BCN^FDA^FS^XZ",
            oob(3, "LL", "0", 1439),
        ),
    ];
    for (what, input, expected) in cases {
        assert_eq!(check_zpl(input), Err(expected), "{what}: {input:?}");
    }
}

#[test]
fn errors_name_the_offset() {
    let err = check_zpl("^XA^BCN^FDSF1^XZ").expect_err("unclosed field");
    assert_eq!(err.to_string(), "field data at byte 7 is not closed by ^FS");
    let err = check_zpl("^XA^PW900^BCN^FDA^FS^XZ").expect_err("too wide");
    assert_eq!(
        err.to_string(),
        "^PW at byte 3 is \"900\"; expected 1..=812 dots (the largest label stock at 203 dpi)"
    );
}

#[test]
fn label_without_a_usable_waybill_is_refused() {
    // Nothing of "^~>" survives into the barcode, so the printer would get an empty ^BC field.
    let label = surge_label::Label {
        waybill: "^~>".into(),
        ..common::sample()
    };
    assert!(matches!(
        check_zpl(&zpl(&label)),
        Err(ZplError::EmptyBarcode { .. })
    ));
}
