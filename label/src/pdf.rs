//! PDF preview: one page (4x6 in is 288 x 432 pt) drawing the same layout as the ZPL, its text
//! in a subset of the CJK font embedded in the file, or in the standard Helvetica without one.

use std::sync::Arc;

use barcoders::sym::code128::Code128;
use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str};

use crate::font::Fonts;
use crate::gf::CJK_BASELINE;
use crate::layout::{layout, Element};
use crate::pdf_font::Subset;
use crate::Label;

const REGULAR: Name<'static> = Name(b"F1");
const BOLD: Name<'static> = Name(b"F2");

/// Text baseline below the top of a text cell in Helvetica, as a fraction of the font size.
const BASELINE: f32 = 0.8;

/// How text becomes the bytes a content stream shows: WinAnsi for Helvetica, or glyph codes of
/// the embedded subsets (regular, bold; the same one twice when the font has no bold).
enum Encoder<'f> {
    Helvetica,
    Embedded {
        regular: Subset<'f>,
        bold: Option<Subset<'f>>,
    },
}

impl Encoder<'_> {
    fn encode(&mut self, text: &str, bold: bool) -> Vec<u8> {
        match self {
            Encoder::Helvetica => win_ansi(text),
            Encoder::Embedded { bold: Some(b), .. } if bold => b.encode(text),
            Encoder::Embedded { regular, .. } => regular.encode(text),
        }
    }

    fn baseline(&self) -> f32 {
        match self {
            Encoder::Helvetica => BASELINE,
            Encoder::Embedded { .. } => CJK_BASELINE,
        }
    }
}

/// Dots (203 dpi) to points (72 per inch), rounded to 1/100 pt so the output stays short.
fn pt(dots: f32) -> f32 {
    (dots * 72.0 / 203.0 * 100.0).round() / 100.0
}

/// Page y (from the bottom) of a distance `dots` from the top of a page `height` dots high.
fn from_top(height: f32, dots: f32) -> f32 {
    pt(height - dots)
}

/// WinAnsi bytes for `text`: printable ASCII as is, anything else `?`. [`Str`] escapes `(`, `)`
/// and `\`.
fn win_ansi(text: &str) -> Vec<u8> {
    text.chars()
        .map(|c| match c {
            ' '..='~' => c as u8,
            _ => b'?',
        })
        .collect()
}

/// The bar pattern (one entry per module, 1 = bar) of `data` in Code 128 subset B, without
/// quiet zones; empty if there is nothing to encode.
fn code128(data: &str) -> Vec<u8> {
    if data.is_empty() {
        return Vec::new();
    }
    // 'Ɓ' selects subset B; layout only lets through characters subset B holds.
    Code128::new(format!("\u{0181}{data}")).map_or_else(|_| Vec::new(), |c| c.encode())
}

fn draw(content: &mut Content, encoder: &mut Encoder<'_>, height: f32, element: &Element) {
    let from_top = |dots: f32| from_top(height, dots);
    match element {
        Element::Text {
            x,
            y,
            size,
            bold,
            reverse,
            text,
        } => {
            let font = if *bold { BOLD } else { REGULAR };
            let size = *size as f32;
            if *reverse {
                content.set_fill_gray(1.0);
            }
            let baseline = encoder.baseline();
            content
                .begin_text()
                .set_font(font, pt(size))
                .next_line(pt(*x as f32), from_top(*y as f32 + baseline * size))
                .show(Str(&encoder.encode(text, *bold)))
                .end_text();
            if *reverse {
                content.set_fill_gray(0.0);
            }
        }
        Element::Fill { x, y, w, h } => {
            let (x, y, w, h) = (*x as f32, *y as f32, *w as f32, *h as f32);
            content
                .rect(pt(x), from_top(y + h), pt(w), pt(h))
                .fill_nonzero();
        }
        Element::Barcode {
            x,
            y,
            module,
            height,
            data,
        } => {
            let (y, h, m) = (*y as f32, *height as f32, *module as f32);
            let modules = code128(data);
            let mut i = 0;
            while i < modules.len() {
                let run = modules[i..]
                    .iter()
                    .take_while(|&&b| b == modules[i])
                    .count();
                if modules[i] == 1 {
                    let left = *x as f32 + i as f32 * m;
                    let width = run as f32 * m;
                    content.rect(pt(left), from_top(y + h), pt(width), pt(h));
                }
                i += run;
            }
            content.fill_nonzero();
        }
    }
}

/// The label as a one-page PDF: its text in a subset of `fonts` embedded in the file, or, without
/// fonts, in the standard Helvetica and Helvetica-Bold (WinAnsi, not embedded; anything else
/// shows as `?`). No dates or file ids are written, so the bytes depend only on `label` and the
/// fonts.
pub(crate) fn pdf(fonts: Option<&Fonts>, label: &Label) -> Vec<u8> {
    let catalog = Ref::new(1);
    let pages = Ref::new(2);
    let page = Ref::new(3);
    let contents = Ref::new(4);
    let regular = Ref::new(5);
    let bold = Ref::new(6);
    let mut next = 7;

    let mut encoder = match fonts {
        Some(f) => Encoder::Embedded {
            regular: Subset::new(&f.regular),
            bold: (!Arc::ptr_eq(&f.regular, &f.bold)).then(|| Subset::new(&f.bold)),
        },
        None => Encoder::Helvetica,
    };
    let mut content = Content::new();
    let (width, height) = label.stock.dots();
    for element in layout(label, fonts) {
        draw(&mut content, &mut encoder, height as f32, &element);
    }
    let content = content.finish();

    let mut pdf = Pdf::new();
    pdf.catalog(catalog).pages(pages);
    pdf.pages(pages).kids([page]).count(1);
    let mut p = pdf.page(page);
    p.parent(pages)
        .media_box(Rect::new(0.0, 0.0, pt(width as f32), pt(height as f32)))
        .contents(contents);
    let bold_ref = match &encoder {
        Encoder::Embedded { bold: None, .. } => regular,
        _ => bold,
    };
    p.resources()
        .fonts()
        .pair(REGULAR, regular)
        .pair(BOLD, bold_ref);
    p.finish();
    match &encoder {
        Encoder::Helvetica => {
            for (id, name) in [(regular, "Helvetica"), (bold, "Helvetica-Bold")] {
                pdf.type1_font(id)
                    .base_font(Name(name.as_bytes()))
                    .encoding_predefined(Name(b"WinAnsiEncoding"));
            }
        }
        Encoder::Embedded {
            regular: r,
            bold: b,
        } => {
            let written = r.write(&mut pdf, regular, &mut next).is_some()
                && b.as_ref()
                    .is_none_or(|b| b.write(&mut pdf, bold, &mut next).is_some());
            if !written {
                // The font was checked at load; should a subset still fail, the label is
                // rendered without it rather than not at all.
                return self::pdf(None, label);
            }
        }
    }
    pdf.stream(contents, content.as_slice());
    pdf.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_is_four_by_six_inches() {
        let (width, height) = crate::Stock::FourBySix.dots();
        assert_eq!(pt(width as f32), 288.0);
        assert_eq!(pt(height as f32), 432.0);
    }

    #[test]
    fn non_ascii_becomes_question_marks() {
        assert_eq!(win_ansi("Jos\u{e9} \u{5f20}(1)"), b"Jos? ?(1)");
    }

    #[test]
    fn code128_has_the_expected_module_count() {
        let bars = code128("SF0000012345");
        assert_eq!(bars.len(), 11 * (12 + 2) + 13);
        assert_eq!(bars[..11], [1, 1, 0, 1, 0, 0, 1, 0, 0, 0, 0], "start B");
        // Check value by hand: (104 + 51*1 + 38*2 + 16*(3+..+7) + 17*8 + 18*9 + 19*10 + 20*11
        // + 21*12) mod 103 = 1591 mod 103 = 46.
        assert_eq!(
            bars[143..154],
            [1, 0, 1, 1, 1, 0, 0, 0, 1, 1, 0],
            "check 46"
        );
        assert_eq!(bars[154..], [1, 1, 0, 0, 0, 1, 1, 1, 0, 1, 0, 1, 1], "stop");
        assert!(code128("").is_empty());
    }
}
