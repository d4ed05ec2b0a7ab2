//! Where everything goes, in printer dots (203 dpi, 812 x 1218 for 4x6 in). Both renderers draw
//! the same element list; the PDF scales it by 72/203.

use crate::font::Fonts;
use crate::text::{address_line, clean, weight_kg, Metrics};
use crate::Label;

/// Label width in dots: 4 in at 203 dpi.
pub(crate) const WIDTH: u32 = 812;
/// Label height in dots: 6 in at 203 dpi.
pub(crate) const HEIGHT: u32 = 1218;
const MARGIN: u32 = 24;
const INNER: u32 = WIDTH - 2 * MARGIN;
/// Code 128 quiet zone on each side, in modules.
pub(crate) const QUIET_MODULES: u32 = 10;
/// Longest barcode data kept: with 1-dot modules and quiet zones it still fits [`INNER`].
const MAX_BARCODE_CHARS: usize = 64;
const BARCODE_HEIGHT: u32 = 160;

/// One thing drawn on the label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Element {
    /// Text whose cell's top-left corner is at (`x`, `y`), `size` dots high and em wide.
    /// `reverse` draws it white (on a [`Element::Fill`] underneath).
    Text {
        x: u32,
        y: u32,
        size: u32,
        bold: bool,
        reverse: bool,
        text: String,
    },
    /// A solid black rectangle.
    Fill { x: u32, y: u32, w: u32, h: u32 },
    /// A Code 128 (subset B) barcode of `data`, `module` dots per narrow bar.
    Barcode {
        x: u32,
        y: u32,
        module: u32,
        height: u32,
        data: String,
    },
}

/// The data the barcode encodes: the waybill without characters that Code 128 subset B cannot
/// hold or that ZPL treats specially in ^BC data (`^`, `~`, `>`), cut to [`MAX_BARCODE_CHARS`].
/// The same string is printed under the barcode, so a mangled waybill is visible.
pub(crate) fn barcode_data(waybill: &str) -> String {
    waybill
        .chars()
        .filter(|c| c.is_ascii_graphic() && !matches!(c, '^' | '~' | '>'))
        .take(MAX_BARCODE_CHARS)
        .collect()
}

/// Modules of a Code 128 symbol with one start, `chars` data characters in one subset, the check
/// character and the 13-module stop pattern (quiet zones excluded).
pub(crate) fn barcode_modules(chars: usize) -> u32 {
    let chars = u32::try_from(chars).unwrap_or(u32::MAX / 16);
    11 * (chars + 2) + 13
}

/// Where a line of text starts horizontally.
#[derive(Clone, Copy)]
enum At {
    Left(u32),
    Centre,
}

/// The element list being built, with the fonts text is measured with.
struct Builder<'a> {
    out: Vec<Element>,
    fonts: Option<&'a Fonts>,
}

impl Builder<'_> {
    fn metrics(&self, bold: bool) -> Metrics<'_> {
        Metrics::new(self.fonts, bold)
    }

    /// Adds `s` (cleaned and fitted into `max` dots) unless that leaves nothing to print.
    #[allow(clippy::too_many_arguments)]
    fn text(&mut self, at: At, y: u32, size: u32, bold: bool, max: u32, s: &str) {
        let m = self.metrics(bold);
        let s = m.fit(&clean(s), size, max);
        if s.is_empty() {
            return;
        }
        let x = match at {
            At::Left(x) => x,
            At::Centre => (WIDTH - m.measure(&s, size)) / 2,
        };
        self.out.push(Element::Text {
            x,
            y,
            size,
            bold,
            reverse: false,
            text: s,
        });
    }

    /// `s` wrapped into at most `lines` lines of `size`, `pitch` dots apart from `y`.
    #[allow(clippy::too_many_arguments)]
    fn lines(&mut self, y: u32, pitch: u32, size: u32, bold: bool, lines: usize, s: &str) {
        let wrapped = self.metrics(bold).wrap(s, size, INNER, lines);
        for (i, line) in (0..).zip(wrapped) {
            self.text(At::Left(MARGIN), y + pitch * i, size, bold, INNER, &line);
        }
    }
}

/// Every element of `label`, its text measured with `fonts` (the CJK font both renderers draw
/// non-ASCII text with) or, without fonts, with Helvetica and a full em for anything else:
/// text first, then barcode, rules and the reprint marker.
pub(crate) fn layout(label: &Label, fonts: Option<&Fonts>) -> Vec<Element> {
    let mut b = Builder {
        out: Vec::new(),
        fonts,
    };
    let left = At::Left(MARGIN);

    // Header: carrier, parcel n/m and weight.
    b.text(left, 30, 72, true, 540, &label.carrier);
    let parcels = format!("{}/{}", label.parcel_index, label.parcel_count);
    b.text(At::Left(588), 24, 56, true, 200, &parcels);
    let weight = weight_kg(label.weight_grams);
    b.text(At::Left(588), 88, 36, true, 200, &weight);

    // Sorting code, alone or with the destination text (大头笔) under it.
    if label.destination.trim().is_empty() {
        b.text(left, 158, 110, true, INNER, &label.sorting_code);
    } else {
        b.text(left, 146, 76, true, INNER, &label.sorting_code);
        b.text(left, 232, 44, true, INNER, &label.destination);
    }

    // The waybill under the barcode (drawn below).
    let data = barcode_data(&label.waybill);
    b.text(At::Centre, 484, 40, true, INNER, &data);

    // Receiver.
    let to = &label.receiver;
    b.text(left, 558, 26, true, INNER, "TO");
    b.text(left, 590, 50, true, INNER, &to.name);
    b.text(left, 648, 40, true, INNER, &to.phone);
    b.lines(700, 42, 36, false, 3, &address_line(to));

    // Sender.
    let from = &label.sender;
    b.text(left, 850, 24, true, INNER, "FROM");
    let who = [clean(&from.name), clean(&from.phone)];
    let who: Vec<&str> = who
        .iter()
        .map(String::as_str)
        .filter(|s| !s.is_empty())
        .collect();
    b.text(left, 880, 32, false, INNER, &who.join(", "));
    b.lines(920, 38, 30, false, 2, &address_line(from));

    // Order reference.
    b.text(left, 1018, 24, true, INNER, "ORDER");
    b.text(left, 1046, 34, true, INNER, &label.order_ref);

    // Barcode, centred, with the widest module that leaves room for the quiet zones.
    let mut out = b.out;
    let modules = barcode_modules(data.len());
    let module = (1..=3)
        .rev()
        .find(|m| (modules + 2 * QUIET_MODULES) * m <= INNER)
        .unwrap_or(1);
    out.push(Element::Barcode {
        x: (WIDTH - modules * module) / 2,
        y: 310,
        module,
        height: BARCODE_HEIGHT,
        data,
    });

    // Rules between the sections.
    for y in [134, 284, 540, 834, 1002] {
        out.push(Element::Fill {
            x: MARGIN,
            y,
            w: INNER,
            h: 4,
        });
    }

    // Reprint marker: white on a black bar across the label.
    if label.reprint > 0 {
        out.push(Element::Fill {
            x: MARGIN,
            y: 1100,
            w: INNER,
            h: 80,
        });
        let marker = format!("REPRINT {}", label.reprint);
        let size = 60;
        let m = Metrics::new(fonts, true);
        let marker = m.fit(&marker, size, INNER - 20);
        out.push(Element::Text {
            x: (WIDTH - m.measure(&marker, size)) / 2,
            y: 1110,
            size,
            bold: true,
            reverse: true,
            text: marker,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn barcode_data_drops_unencodable_characters() {
        assert_eq!(barcode_data("SF 00^12~3>4\u{e9}"), "SF001234");
        assert_eq!(barcode_data(&"9".repeat(100)).len(), MAX_BARCODE_CHARS);
    }

    #[test]
    fn longest_barcode_fits_with_one_dot_modules() {
        assert!(barcode_modules(MAX_BARCODE_CHARS) + 2 * QUIET_MODULES <= INNER);
    }

    #[test]
    fn every_element_stays_on_the_label() {
        let mut label = Label {
            carrier: "W".repeat(80),
            waybill: "W".repeat(200),
            sorting_code: "W".repeat(80),
            order_ref: "W".repeat(80),
            parcel_index: u32::MAX,
            parcel_count: u32::MAX,
            weight_grams: i64::MIN,
            reprint: u32::MAX,
            ..Label::default()
        };
        label.receiver.name = "W".repeat(80);
        label.receiver.street = "WWWW ".repeat(80);
        label.sender.street = "\u{e9}".repeat(300);
        let mut chinese = label.clone();
        chinese.carrier = "顺丰速运".repeat(20);
        chinese.sorting_code = "浙杭西".repeat(20);
        chinese.destination = "杭州 西湖".repeat(30);
        chinese.receiver.name = "欧阳".repeat(40);
        chinese.receiver.street = "浙江省杭州市西湖区文三路288号，".repeat(20);
        chinese.sender.name = "杭州仓".repeat(30);
        chinese.sender.street = "余杭区仓前街道".repeat(40);
        let fonts = crate::font::test_fonts();
        for (label, fonts) in [
            (&label, None),
            (&label, Some(&fonts)),
            (&chinese, Some(&fonts)),
        ] {
            for e in layout(label, fonts) {
                let (x, y, w, h) = match &e {
                    Element::Text {
                        x,
                        y,
                        size,
                        bold,
                        text,
                        ..
                    } => {
                        let height = match fonts {
                            Some(_) => crate::gf::cell_height(*size),
                            None => *size,
                        };
                        (
                            *x,
                            *y,
                            Metrics::new(fonts, *bold).measure(text, *size),
                            height,
                        )
                    }
                    Element::Fill { x, y, w, h } => (*x, *y, *w, *h),
                    Element::Barcode {
                        x,
                        y,
                        module,
                        height,
                        data,
                    } => (
                        *x - QUIET_MODULES * module,
                        *y,
                        (barcode_modules(data.len()) + 2 * QUIET_MODULES) * module,
                        *height,
                    ),
                };
                assert!(x >= MARGIN && x + w <= WIDTH - MARGIN, "{e:?}");
                assert!(y >= MARGIN && y + h <= HEIGHT - MARGIN, "{e:?}");
            }
        }
    }
}
