//! Where everything goes, in printer dots (203 dpi: 812 x 1218 for 4x6 in). Both renderers draw
//! the same element list; the PDF scales it by 72/203. The 4x6 in layout is here; the
//! e-waybill stocks' are in `layout_ewaybill`.

use crate::font::Fonts;
use crate::stock::Stock;
use crate::text::{address_line, clean, weight_kg, Metrics};
use crate::Label;

/// 4x6 in width in dots.
const WIDTH: u32 = 812;
const MARGIN: u32 = 24;
const INNER: u32 = WIDTH - 2 * MARGIN;
/// Code 128 quiet zone on each side, in modules.
pub(crate) const QUIET_MODULES: u32 = 10;
/// Longest barcode data kept (a waybill is at most 36 characters: a 16-character prefix and 20
/// digits): with 1-dot modules and quiet zones it still fits the narrowest stock.
const MAX_BARCODE_CHARS: usize = 40;
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
pub(crate) enum At {
    Left(u32),
    Centre,
}

/// The element list being built on a label `width` dots wide with `margin` on each side, with
/// the fonts text is measured with.
pub(crate) struct Builder<'a> {
    pub(crate) out: Vec<Element>,
    pub(crate) fonts: Option<&'a Fonts>,
    pub(crate) width: u32,
    pub(crate) margin: u32,
}

impl<'a> Builder<'a> {
    pub(crate) fn new(fonts: Option<&'a Fonts>, width: u32, margin: u32) -> Builder<'a> {
        Builder {
            out: Vec::new(),
            fonts,
            width,
            margin,
        }
    }

    /// The width between the margins.
    pub(crate) fn inner(&self) -> u32 {
        self.width - 2 * self.margin
    }

    pub(crate) fn metrics(&self, bold: bool) -> Metrics<'a> {
        Metrics::new(self.fonts, bold)
    }

    /// Adds `s` (cleaned and fitted into `max` dots) unless that leaves nothing to print.
    pub(crate) fn text(&mut self, at: At, y: u32, size: u32, bold: bool, max: u32, s: &str) {
        let m = self.metrics(bold);
        let s = m.fit(&clean(s), size, max);
        if s.is_empty() {
            return;
        }
        let x = match at {
            At::Left(x) => x,
            At::Centre => (self.width - m.measure(&s, size)) / 2,
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

    /// `s` wrapped into at most `lines` lines of `size`, `pitch` dots apart from `y`, starting
    /// `x` dots in.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn lines(
        &mut self,
        x: u32,
        y: u32,
        pitch: u32,
        size: u32,
        bold: bool,
        lines: usize,
        s: &str,
    ) {
        let max = self.width - self.margin - x;
        let wrapped = self.metrics(bold).wrap(s, size, max, lines);
        for (i, line) in (0..).zip(wrapped) {
            self.text(At::Left(x), y + pitch * i, size, bold, max, &line);
        }
    }

    /// A rule across the label between the margins.
    pub(crate) fn rule(&mut self, y: u32, thickness: u32) {
        let w = self.inner();
        self.out.push(Element::Fill {
            x: self.margin,
            y,
            w,
            h: thickness,
        });
    }

    /// The waybill barcode, centred, `height` high, with the widest module (up to 3 dots)
    /// that leaves room for the quiet zones.
    pub(crate) fn barcode(&mut self, y: u32, height: u32, data: &str) {
        let modules = barcode_modules(data.len());
        let inner = self.inner();
        let module = (1..=3)
            .rev()
            .find(|m| (modules + 2 * QUIET_MODULES) * m <= inner)
            .unwrap_or(1);
        self.out.push(Element::Barcode {
            x: (self.width - modules * module) / 2,
            y,
            module,
            height,
            data: data.to_owned(),
        });
    }

    /// For a reprint, "REPRINT n" in white on a black bar `h` high from `y`.
    pub(crate) fn reprint_bar(&mut self, y: u32, h: u32, size: u32, reprint: u32) {
        if reprint == 0 {
            return;
        }
        self.out.push(Element::Fill {
            x: self.margin,
            y,
            w: self.inner(),
            h,
        });
        let m = self.metrics(true);
        let marker = m.fit(&format!("REPRINT {reprint}"), size, self.inner() - 20);
        self.out.push(Element::Text {
            x: (self.width - m.measure(&marker, size)) / 2,
            y: y + (h - size) / 2,
            size,
            bold: true,
            reverse: true,
            text: marker,
        });
    }
}

/// Every element of `label` on its stock, text measured with `fonts` (the CJK font both
/// renderers draw non-ASCII text with) or, without fonts, with Helvetica and a full em for
/// anything else.
pub(crate) fn layout(label: &Label, fonts: Option<&Fonts>) -> Vec<Element> {
    match label.stock {
        Stock::FourBySix => four_by_six(label, fonts),
        stock => crate::layout_ewaybill::ewaybill(label, fonts, stock),
    }
}

/// The 4x6 in layout: text first, then barcode, rules and the reprint marker.
fn four_by_six(label: &Label, fonts: Option<&Fonts>) -> Vec<Element> {
    let mut b = Builder::new(fonts, WIDTH, MARGIN);
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
    b.lines(MARGIN, 700, 42, 36, false, 3, &address_line(to));

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
    b.lines(MARGIN, 920, 38, 30, false, 2, &address_line(from));

    // Order reference.
    b.text(left, 1018, 24, true, INNER, "ORDER");
    b.text(left, 1046, 34, true, INNER, &label.order_ref);

    b.barcode(310, BARCODE_HEIGHT, &data);
    for y in [134, 284, 540, 834, 1002] {
        b.rule(y, 4);
    }
    b.reprint_bar(1100, 80, 60, label.reprint);
    b.out
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
        // On the narrowest stock, 76 mm with 16-dot margins.
        assert!(barcode_modules(MAX_BARCODE_CHARS) + 2 * QUIET_MODULES <= 607 - 2 * 16);
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
        label.receiver.phone = "9".repeat(80);
        label.receiver.street = "WWWW ".repeat(80);
        label.sender.name = "W".repeat(80);
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
        for stock in crate::stock::STOCKS {
            let (width, height) = stock.dots();
            let margin = if stock == Stock::Mm76x130 { 16 } else { 24 };
            for (label, fonts) in [
                (&label, None),
                (&label, Some(&fonts)),
                (&chinese, Some(&fonts)),
            ] {
                let label = Label {
                    stock,
                    ..label.clone()
                };
                let elements = layout(&label, fonts);
                assert!(
                    elements.len() > 15,
                    "{stock:?}: {} elements",
                    elements.len()
                );
                for e in elements {
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
                    assert!(x >= margin && x + w <= width - margin, "{stock:?} {e:?}");
                    assert!(y >= margin && y + h <= height - margin, "{stock:?} {e:?}");
                }
            }
        }
    }
}
