//! ZPL II output for 4x6 in labels on 203 dpi thermal printers.

use std::fmt::Write as _;

use crate::layout::{layout, Element, HEIGHT, WIDTH};
use crate::Label;

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
/// `^PW812` / `^LL1218`. The barcode is the printer's own Code 128 (`^BC`, subset B) with no
/// interpretation line; the waybill is printed as a separate text field under it.
pub fn zpl(label: &Label) -> String {
    let mut out = String::new();
    out.push_str("^XA\n^CI28\n");
    // Writing to a String cannot fail.
    let _ = writeln!(out, "^PW{WIDTH}\n^LL{HEIGHT}\n^LH0,0");
    for element in layout(label) {
        let _ = match element {
            Element::Text {
                x,
                y,
                size,
                reverse,
                text,
                ..
            } => writeln!(
                out,
                "^FO{x},{y}^A0N,{size},{size}{}^FD{}^FS",
                if reverse { "^FR" } else { "" },
                field(&text)
            ),
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
