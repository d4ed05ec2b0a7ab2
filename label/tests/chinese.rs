//! A Chinese label on each stock (4x6 in; the e-waybills 100 x 180 mm and 76 x 130 mm, as a
//! platform order's privacy waybill with the receiver masked): pinned as ZPL text, as the
//! picture its `^GF` graphics and boxes paint, and as the picture poppler renders of its PDF;
//! the PDF's text extracts back as the Chinese it was given.
//!
//! The pictures are compared with reference PNGs in `tests/golden/` by a pixel tolerance (a
//! different rasteriser version may move a few edge pixels). After an intended change,
//! regenerate them with `SURGE_BLESS=1 cargo test -p surge-label --test chinese` and look at them.
//! The PDF checks need poppler-utils (`pdftoppm`, `pdftotext`): they print a skip line without
//! them, unless `CI=true`, where they fail.

mod common;

use std::path::PathBuf;
use std::process::Command;

use surge_label::gf::{self, Bitmap};
use surge_label::{Label, Stock, STOCKS};

/// The Chinese sample on `stock`; on the e-waybills as a platform's privacy waybill.
fn sample(stock: Stock) -> Label {
    let mut label = Label {
        stock,
        ..common::chinese()
    };
    if stock != Stock::FourBySix {
        label.receiver.name = surge_label::mask_name(&label.receiver.name);
        label.receiver.phone = surge_label::mask_phone(&label.receiver.phone);
    }
    label
}

fn golden_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("golden")
        .join(name)
}

fn bless() -> bool {
    std::env::var_os("SURGE_BLESS").is_some_and(|v| v == "1")
}

/// A grey picture: one byte per pixel, 0 black.
struct Grey {
    width: u32,
    height: u32,
    pixels: Vec<u8>,
}

fn read_png(bytes: &[u8]) -> Grey {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().expect("png header");
    let mut buf = vec![0; reader.output_buffer_size().expect("png size")];
    let info = reader.next_frame(&mut buf).expect("png frame");
    let channels = info.color_type.samples();
    let pixels = buf[..info.buffer_size()]
        .chunks(channels)
        .map(|p| match channels {
            1 | 2 => p[0],
            _ => ((u16::from(p[0]) + u16::from(p[1]) + u16::from(p[2])) / 3) as u8,
        })
        .collect();
    Grey {
        width: info.width,
        height: info.height,
        pixels,
    }
}

fn write_png(grey: &Grey) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, grey.width, grey.height);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().expect("png header");
    writer.write_image_data(&grey.pixels).expect("png data");
    writer.finish().expect("png end");
    out
}

/// Compares `actual` with the reference PNG `name`: same size, and at most `tolerance` (a
/// fraction) of the pixels differing by more than a quarter of the grey scale.
fn golden_picture(name: &str, actual: &Grey, tolerance: f64) {
    let path = golden_path(name);
    if bless() {
        std::fs::write(&path, write_png(actual)).expect("write golden picture");
        println!("blessed {}", path.display());
        return;
    }
    let bytes = std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; create it with SURGE_BLESS=1", path.display()));
    let expected = read_png(&bytes);
    assert_eq!(
        (expected.width, expected.height),
        (actual.width, actual.height),
        "{name}: size"
    );
    let differing = expected
        .pixels
        .iter()
        .zip(&actual.pixels)
        .filter(|(a, b)| a.abs_diff(**b) > 64)
        .count();
    let share = differing as f64 / actual.pixels.len() as f64;
    assert!(
        share <= tolerance,
        "{name}: {differing} pixels ({:.3}%) differ; rerun with SURGE_BLESS=1 if intended",
        share * 100.0
    );
}

/// Paints what a printer would of `zpl`'s boxes (`^GB`) and graphics (`^GF`), each at its
/// `^FO`, on a `width` x `height` dot label; text in printer fonts and the barcode are left out.
fn paint_zpl(zpl: &str, width: u32, height: u32) -> (Grey, usize) {
    let mut canvas = Bitmap::new(width, height);
    let mut graphics = 0;
    for line in zpl.lines() {
        let Some(rest) = line.strip_prefix("^FO") else {
            continue;
        };
        let (at, rest) = rest.split_once('^').expect("a command after ^FO");
        let (x, y) = at.split_once(',').expect("x,y");
        let (x, y): (u32, u32) = (x.parse().expect("x"), y.parse().expect("y"));
        let rest = rest.strip_prefix("FR^").unwrap_or(rest);
        if let Some(gb) = rest.strip_prefix("GB") {
            let gb = gb.trim_end_matches("^FS");
            let v: Vec<u32> = gb
                .split(',')
                .map(|n| n.parse().expect("^GB number"))
                .collect();
            for dy in 0..v[1] {
                for dx in 0..v[0] {
                    canvas.set(x + dx, y + dy);
                }
            }
        } else if let Some(params) = rest.strip_prefix("GF") {
            let bitmap = gf::decode(params.trim_end_matches("^FS")).expect("^GF decodes");
            graphics += 1;
            for dy in 0..bitmap.height {
                for dx in 0..bitmap.width {
                    if bitmap.get(dx, dy) {
                        canvas.set(x + dx, y + dy);
                    }
                }
            }
        }
    }
    let pixels = (0..height)
        .flat_map(|y| (0..width).map(move |x| (x, y)))
        .map(|(x, y)| if canvas.get(x, y) { 0 } else { 255 })
        .collect();
    (
        Grey {
            width,
            height,
            pixels,
        },
        graphics,
    )
}

#[test]
fn chinese_zpl_matches_golden_text_and_picture() {
    for stock in STOCKS {
        let zpl = common::renderer().zpl(&sample(stock));
        surge_label::check_zpl(&zpl).unwrap_or_else(|e| panic!("{stock:?}: {e}"));
        // Every line with Chinese is a graphic: no Han character reaches the printer as text.
        assert!(!zpl.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)));
        let (width, height) = stock.dots();
        assert!(
            zpl.contains(&format!("^PW{width}\n^LL{height}\n")),
            "{stock:?}"
        );
        let name = format!("label-zh-{}.zpl", stock.name());
        let path = golden_path(&name);
        if bless() {
            std::fs::write(&path, &zpl).expect("write golden");
        } else {
            let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
                panic!("{}: {e}; create it with SURGE_BLESS=1", path.display())
            });
            assert!(
                expected == zpl,
                "{name} differs; rerun with SURGE_BLESS=1 if intended"
            );
        }
        let (picture, graphics) = paint_zpl(&zpl, width, height);
        // Carrier, destination, name, address lines, sender, sender address at least.
        assert!(graphics >= 6, "{stock:?}: {graphics} graphics");
        golden_picture(
            &format!("label-zh-{}-zpl.png", stock.name()),
            &picture,
            0.002,
        );
    }
}

#[test]
fn privacy_waybills_print_no_full_name_or_phone() {
    for stock in [Stock::Mm100x180, Stock::Mm76x130] {
        let label = sample(stock);
        assert_eq!(label.receiver.name, "张*");
        assert_eq!(label.receiver.phone, "138****0288");
        let zpl = common::plain().zpl(&label);
        assert!(zpl.contains("138****0288"), "{zpl}");
        assert!(
            !zpl.contains("13800000288") && !zpl.contains("张三"),
            "{zpl}"
        );
    }
}

#[test]
fn printer_font_mode_sends_chinese_as_text() {
    let renderer = surge_label::Renderer::new(
        Some(surge_label::test_fonts()),
        "printer:E:NOTOSC.TTF".parse().expect("valid"),
    );
    let zpl = renderer.zpl(&common::chinese());
    surge_label::check_zpl(&zpl).unwrap_or_else(|e| panic!("{e}"));
    assert!(zpl.contains("^CW1,E:NOTOSC.TTF\n"), "{zpl}");
    assert!(zpl.contains("^A1N,50,50^FD张三^FS"), "{zpl}");
    assert!(!zpl.contains("^GF"), "{zpl}");
}

/// Runs a poppler tool on `pdf` in a temp dir and returns the file it wrote.
fn poppler(tool: &str, args: &[&str], pdf: &[u8], output: &str) -> Vec<u8> {
    let dir = std::env::temp_dir().join(format!("surge-label-zh-{}-{tool}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create temp dir");
    std::fs::write(dir.join("label.pdf"), pdf).expect("write pdf");
    let out = Command::new(tool)
        .args(args)
        .current_dir(&dir)
        .output()
        .unwrap_or_else(|e| panic!("run {tool}: {e}"));
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{tool}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(dir.join(output)).expect("poppler output");
    std::fs::remove_dir_all(&dir).expect("remove temp dir");
    bytes
}

#[test]
fn chinese_pdf_draws_and_extracts_the_chinese() {
    for stock in STOCKS {
        let pdf = common::renderer().pdf(&sample(stock));
        // A subset, not the whole 20 MB font.
        assert!(pdf.len() < 200_000, "{stock:?}: {} bytes", pdf.len());
        if !common::have_pdftoppm() {
            return;
        }
        let text = poppler(
            "pdftotext",
            &["-layout", "label.pdf", "out.txt"],
            &pdf,
            "out.txt",
        );
        let text = String::from_utf8(text).expect("utf-8 text");
        let name = if stock == Stock::FourBySix {
            "张三"
        } else {
            "张*"
        };
        for expected in [
            "顺丰速运",
            name,
            "浙江省",
            "杭州市",
            "西湖区",
            "文三路",
            "杭州仓",
            "余杭区",
        ] {
            assert!(
                text.contains(expected),
                "{stock:?}: {expected} not in:\n{text}"
            );
        }
        let png = poppler(
            "pdftoppm",
            &[
                "-png",
                "-gray",
                "-r",
                "100",
                "-singlefile",
                "label.pdf",
                "out",
            ],
            &pdf,
            "out.png",
        );
        let picture = read_png(&png);
        if stock == Stock::FourBySix {
            assert_eq!((picture.width, picture.height), (400, 600));
        }
        golden_picture(
            &format!("label-zh-{}-pdf.png", stock.name()),
            &picture,
            0.005,
        );
    }
}
