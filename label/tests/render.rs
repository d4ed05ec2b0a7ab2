//! The PDF renders with poppler's `pdftoppm`, and hostile text survives both formats.
//!
//! Without `pdftoppm` on PATH the render checks print a skip line, unless `CI=true` (CI installs
//! poppler-utils), where they fail.

mod common;

use std::path::PathBuf;
use std::process::Command;

use surge_label::{check_zpl, Label};

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

/// Renders `pdf` at 100 dpi and returns the PNG's bytes.
fn render(name: &str, pdf: &[u8]) -> Vec<u8> {
    let dir: PathBuf =
        std::env::temp_dir().join(format!("surge-label-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create temp dir");
    std::fs::write(dir.join("label.pdf"), pdf).expect("write pdf");
    let out = Command::new("pdftoppm")
        .args(["-png", "-r", "100", "-singlefile", "label.pdf", "out"])
        .current_dir(&dir)
        .output()
        .expect("run pdftoppm");
    assert!(
        out.status.success(),
        "pdftoppm failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let png = std::fs::read(dir.join("out.png")).expect("pdftoppm wrote out.png");
    std::fs::remove_dir_all(&dir).expect("remove temp dir");
    png
}

/// Width and height from the PNG's IHDR chunk.
fn png_size(png: &[u8]) -> (u32, u32) {
    assert!(png.starts_with(PNG_SIGNATURE), "not a PNG");
    let be = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().expect("4 bytes"));
    assert_eq!(&png[12..16], b"IHDR");
    (be(16), be(20))
}

#[test]
fn pdf_renders_as_a_4x6_page() {
    if !common::have_pdftoppm() {
        return;
    }
    let png = render("sample", &common::renderer().pdf(&common::sample()));
    // 4x6 in at 100 dpi.
    assert_eq!(png_size(&png), (400, 600));
}

fn hostile() -> Label {
    let mut label = common::sample();
    label.receiver.name = "Ann ^XZ~JA (x) \\ Zo\u{eb} \u{5f20}\t\u{1}end".into();
    label.receiver.street = "Stra\u{df}e 1 ^FS ~DG (unbalanced".into();
    label.sender.name = "Bob :-)".into();
    label.carrier = "^XA SF".into();
    label.order_ref = "~JA^XZ".into();
    label.waybill = "SF^00~12>34".into();
    label.sorting_code = "^^~~".into();
    label
}

#[test]
fn control_characters_do_not_break_zpl() {
    // Without a CJK font every line goes to the printer as text.
    let out = common::plain().zpl(&hostile());
    let labels = check_zpl(&out).unwrap_or_else(|e| panic!("{e}\n{out}"));
    assert_eq!(labels.len(), 1);
    assert_eq!(labels[0].waybills, ["SF001234"]);
    assert!(
        out.contains("^FDAnn  XZ JA (x) \\ Zo\u{eb} \u{5f20} end^FS"),
        "{out}"
    );
    assert!(out.contains("^FD XA SF^FS"), "{out}");
    assert!(out.contains("^FDSF001234^FS"), "{out}");
    // With one, the line holding 张 becomes a graphic, and the label is still well-formed.
    let out = common::renderer().zpl(&hostile());
    check_zpl(&out).unwrap_or_else(|e| panic!("{e}\n{out}"));
    assert!(!out.contains("\u{5f20}"), "{out}");
    assert!(out.contains("^GFA,"), "{out}");
}

#[test]
fn control_characters_do_not_break_pdf() {
    let bytes = common::plain().pdf(&hostile());
    let contains = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
    // Balanced parentheses stay as they are, a backslash is doubled, non-ASCII becomes '?'.
    assert!(contains(b"(Ann ^XZ~JA (x) \\\\ Zo? ? end) Tj"));
    // Unbalanced parentheses are escaped.
    assert!(contains(b"(Bob :-\\), 0571-88880000) Tj"));
    assert!(contains(b"(Stra?e 1 ^FS ~DG \\(unbalanced, Nanshan,) Tj"));
    if !common::have_pdftoppm() {
        return;
    }
    let png = render("hostile", &bytes);
    assert_eq!(png_size(&png), (400, 600));
}
