//! Golden files for the sample label: `tests/golden/label.zpl`, `label-reprint.zpl` and
//! `label.pdf` must match the output byte for byte.
//!
//! After an intended change to the layout, regenerate them with
//! `SURGE_BLESS=1 cargo test -p surge-label --test golden`, inspect the diff (the ZPL is plain
//! text; render the PDF with `pdftoppm -png`) and commit the new files.

mod common;

use std::path::PathBuf;

fn path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("golden")
        .join(name)
}

fn bless() -> bool {
    std::env::var_os("SURGE_BLESS").is_some_and(|v| v == "1")
}

/// Compares `actual` with the golden file `name`, or rewrites it under `SURGE_BLESS=1`.
fn golden(name: &str, actual: &[u8]) {
    let path = path(name);
    if bless() {
        std::fs::write(&path, actual).expect("write golden file");
        println!("blessed {}", path.display());
        return;
    }
    let expected = std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; create it with SURGE_BLESS=1", path.display()));
    if expected != actual {
        // Text goldens get a readable diff from assert_eq; binary ones just a size.
        if let (Ok(e), Ok(a)) = (std::str::from_utf8(&expected), std::str::from_utf8(actual)) {
            assert_eq!(
                e,
                a,
                "{} differs; rerun with SURGE_BLESS=1 if intended",
                path.display()
            );
        }
        panic!(
            "{} differs ({} bytes expected, {} produced); rerun with SURGE_BLESS=1 if intended",
            path.display(),
            expected.len(),
            actual.len()
        );
    }
}

#[test]
fn zpl_matches_golden() {
    golden(
        "label.zpl",
        common::renderer().zpl(&common::sample()).as_bytes(),
    );
}

#[test]
fn reprint_zpl_matches_golden() {
    let label = surge_label::Label {
        reprint: 2,
        ..common::sample()
    };
    let zpl = common::renderer().zpl(&label);
    assert!(zpl.contains("^FR^FDREPRINT 2^FS"), "{zpl}");
    golden("label-reprint.zpl", zpl.as_bytes());
}

#[test]
fn pdf_matches_golden() {
    golden("label.pdf", &common::renderer().pdf(&common::sample()));
}

#[test]
fn output_is_deterministic() {
    let a = common::sample();
    let b = a.clone();
    assert_eq!(common::renderer().zpl(&a), common::renderer().zpl(&b));
    assert_eq!(common::renderer().pdf(&a), common::renderer().pdf(&b));
}

#[test]
fn original_has_no_reprint_marker_and_reprint_differs_only_by_it() {
    let original = common::renderer().zpl(&common::sample());
    assert!(!original.contains("REPRINT"));
    let reprint = common::renderer().zpl(&surge_label::Label {
        reprint: 1,
        ..common::sample()
    });
    let extra: Vec<&str> = reprint
        .lines()
        .filter(|l| !original.lines().any(|o| o == *l))
        .collect();
    assert_eq!(
        extra,
        [
            "^FO24,1100^GB764,80,80^FS",
            "^FO245,1110^A0N,60,60^FR^FDREPRINT 1^FS"
        ]
    );
}
