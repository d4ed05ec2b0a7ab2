//! ZPL II output for thermal printers at 203 dpi.

use std::fmt::Write as _;

use crate::gf;
use crate::layout::{layout, Element};
use crate::renderer::{Renderer, ZplText};
use crate::Label;

/// The font id `^CW` binds a printer-stored font to.
const PRINTER_FONT_ID: char = '1';

/// Field data as the printer must see it: `^` (format prefix) and `~` (control prefix) would
/// start a command, so they become spaces; control characters were already removed by layout.
fn field(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '^' | '~' => ' ',
            c if c.is_control() => ' ',
            c => c,
        })
        .collect()
}

/// The label as one `^XA` ... `^XZ` format, one field per line, UTF-8 (`^CI28`), sized with
/// `^PW` / `^LL`. Text in printable ASCII uses the printer's `^A0`; other text is drawn by
/// surge as a `^GF` graphic with the CJK font (or, with [`ZplText::PrinterFont`], uses that
/// font stored on the printer through `^CW`; without a CJK font, it is sent to `^A0` as is).
/// The barcode is the printer's own Code 128 (`^BC`, subset B) with no interpretation line; the
/// waybill is printed as a separate text field under it.
pub(crate) fn zpl(renderer: &Renderer, label: &Label) -> String {
    let fonts = renderer.fonts();
    let mut out = String::new();
    out.push_str("^XA\n^CI28\n");
    // Writing to a String cannot fail.
    let (width, height) = label.stock.dots();
    let _ = writeln!(out, "^PW{width}\n^LL{height}\n^LH0,0");
    if let ZplText::PrinterFont(name) = renderer.zpl_text() {
        let _ = writeln!(out, "^CW{PRINTER_FONT_ID},{name}");
    }
    for element in layout(label, fonts) {
        let _ = match element {
            Element::Text {
                x,
                y,
                size,
                bold,
                reverse,
                text,
            } => {
                let reverse = if reverse { "^FR" } else { "" };
                match (text.is_ascii(), renderer.zpl_text(), fonts) {
                    (false, ZplText::Graphic, Some(fonts)) => {
                        let font = fonts.face(bold);
                        let width =
                            crate::text::Metrics::new(Some(fonts), bold).measure(&text, size);
                        let bitmap = gf::rasterise(renderer.glyphs(), font, &text, size, width);
                        writeln!(out, "^FO{x},{y}{reverse}^GF{}^FS", gf::encode(&bitmap))
                    }
                    (false, ZplText::PrinterFont(_), _) => writeln!(
                        out,
                        "^FO{x},{y}^A{PRINTER_FONT_ID}N,{size},{size}{reverse}^FD{}^FS",
                        field(&text)
                    ),
                    _ => writeln!(
                        out,
                        "^FO{x},{y}^A0N,{size},{size}{reverse}^FD{}^FS",
                        field(&text)
                    ),
                }
            }
            Element::Fill { x, y, w, h } => {
                writeln!(out, "^FO{x},{y}^GB{w},{h},{}^FS", w.min(h))
            }
            Element::Barcode {
                x,
                y,
                module,
                height,
                data,
            } => writeln!(
                out,
                "^FO{x},{y}^BY{module},3,{height}^BCN,{height},N,N,N^FD{}^FS",
                field(&data)
            ),
        };
    }
    out.push_str("^PQ1\n^XZ\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_data_cannot_start_commands() {
        assert_eq!(field("a^b~c\u{1}d"), "a b c d");
        assert_eq!(field("Jos\u{e9} (x) \\"), "Jos\u{e9} (x) \\");
    }
}
