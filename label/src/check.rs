//! A well-formedness check for ZPL received by a test printer.

use crate::gf::{self, GraphicError};
use crate::stock::{MAX_HEIGHT, MAX_WIDTH};

/// One label format (`^XA` ... `^XZ`) that passed [`check_zpl`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZplLabel {
    /// The waybill its `^BC` (Code 128) barcodes carry: [`check_zpl`] requires at least one
    /// barcode and all of them alike (an e-waybill repeats the waybill on its stub), so this
    /// holds exactly one entry.
    pub waybills: Vec<String>,
    /// How many fields carry data (`^FD` / `^FV` ... `^FS`, or a `^GF` graphic), barcode
    /// included.
    pub fields: usize,
}

/// Why [`check_zpl`] refused its input. Offsets are byte offsets into the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ZplError {
    /// Nothing but whitespace.
    #[error("no label format (^XA ... ^XZ) in the input")]
    NoLabel,
    /// Something other than whitespace or `^XA` outside a label format.
    #[error("unexpected content outside a label format at byte {offset}: expected ^XA")]
    OutsideLabel { offset: usize },
    /// A command prefix not followed by two letters or digits.
    #[error("malformed command at byte {offset}: {found:?}")]
    BadCommand { offset: usize, found: String },
    /// `^XA` inside a label format.
    #[error("^XA at byte {offset} inside the label format started at byte {start}")]
    NestedStart { offset: usize, start: usize },
    /// The input ended inside a label format.
    #[error("label format started at byte {start} has no ^XZ")]
    MissingEnd { start: usize },
    /// `^FD`/`^FV` whose data is not followed by `^FS`.
    #[error("field data at byte {offset} is not closed by ^FS")]
    UnclosedField { offset: usize },
    /// A `~` inside field data; printers act on control commands wherever they appear.
    #[error("control prefix ~ inside field data at byte {offset}")]
    ControlInField { offset: usize },
    /// A label format without a `^BC` barcode.
    #[error("label format ending at byte {offset} has no ^BC (Code 128) barcode")]
    NoBarcode { offset: usize },
    /// A `^BC` before the previous one got its data.
    #[error("^BC barcode at byte {offset} follows a barcode without field data")]
    TwoBarcodes { offset: usize },
    /// A second `^BC` in one label format with other data than the first.
    #[error("^BC barcode at byte {offset} carries {found:?}, the label's first carries {first:?}")]
    DifferentBarcodes {
        offset: usize,
        first: String,
        found: String,
    },
    /// A `^BC` whose field has no (or only blank) data.
    #[error("^BC barcode at byte {offset} has no field data")]
    EmptyBarcode { offset: usize },
    /// A `^GF` graphic field whose header or data does not decode.
    #[error("^GF graphic at byte {offset}: {reason}")]
    BadGraphic { offset: usize, reason: GraphicError },
    /// `^PW`/`^LL` that is not a positive number within the largest stock at 203 dpi.
    #[error(
        "^{command} at byte {offset} is {value:?}; expected 1..={max} dots (the largest label stock at 203 dpi)"
    )]
    OutOfBounds {
        offset: usize,
        command: &'static str,
        value: String,
        max: u32,
    },
}

/// The label format being read.
struct Open {
    start: usize,
    fields: usize,
    waybills: Vec<String>,
    /// Offset of a `^BC` whose field data has not been seen yet.
    pending_barcode: Option<usize>,
}

fn is_prefix(b: u8) -> bool {
    b == b'^' || b == b'~'
}

/// Checks `data` as a printer would receive it: one or more `^XA` ... `^XZ` formats with only
/// whitespace between them; every command is `^` or `~` and two letters or digits; field data
/// (`^FD`/`^FV`) is closed by `^FS` and holds no `~`; no `^XA` nests; each format has at least one
/// `^BC` barcode with non-blank data, and all its barcodes alike; every `^GF` graphic decodes to the size its header gives;
/// `^PW` is at most 812 and `^LL` at most 1439 dots (4x6 in wide, 100 x 180 mm long).
pub fn check_zpl(data: &str) -> Result<Vec<ZplLabel>, ZplError> {
    let bytes = data.as_bytes();
    let mut labels = Vec::new();
    let mut open: Option<Open> = None;
    let mut i = 0;
    loop {
        if open.is_none() {
            while i < bytes.len() && bytes[i].is_ascii_whitespace() {
                i += 1;
            }
        }
        if i >= bytes.len() {
            break;
        }
        let at = i;
        if !is_prefix(bytes[i]) {
            // Only reachable outside a format: inside, parameters run up to the next prefix.
            return Err(ZplError::OutsideLabel { offset: at });
        }
        let name = match bytes.get(i + 1..i + 3) {
            Some(n) if n.iter().all(u8::is_ascii_alphanumeric) => n.to_ascii_uppercase(),
            _ => {
                let found = data[at..].chars().take(3).collect();
                return Err(ZplError::BadCommand { offset: at, found });
            }
        };
        i += 3;
        let params_end = bytes[i..]
            .iter()
            .position(|&b| is_prefix(b))
            .map_or(bytes.len(), |p| i + p);
        let params = &data[i..params_end];
        i = params_end;

        let Some(label) = open.as_mut() else {
            if &name[..] != b"XA" {
                return Err(ZplError::OutsideLabel { offset: at });
            }
            open = Some(Open {
                start: at,
                fields: 0,
                waybills: Vec::new(),
                pending_barcode: None,
            });
            continue;
        };
        match &name[..] {
            b"XA" => {
                return Err(ZplError::NestedStart {
                    offset: at,
                    start: label.start,
                })
            }
            b"XZ" => {
                if let Some(extra) = params.find(|c: char| !c.is_ascii_whitespace()) {
                    return Err(ZplError::OutsideLabel {
                        offset: at + 3 + extra,
                    });
                }
                if let Some(offset) = label.pending_barcode {
                    return Err(ZplError::EmptyBarcode { offset });
                }
                if label.waybills.is_empty() {
                    return Err(ZplError::NoBarcode { offset: at });
                }
                labels.push(ZplLabel {
                    waybills: std::mem::take(&mut label.waybills),
                    fields: label.fields,
                });
                open = None;
            }
            b"BC" => {
                if label.pending_barcode.is_some() {
                    return Err(ZplError::TwoBarcodes { offset: at });
                }
                label.pending_barcode = Some(at);
            }
            b"FD" | b"FV" => {
                // `params` is the field data: everything up to the next prefix, which must be ^FS.
                if bytes.get(i) == Some(&b'~') {
                    return Err(ZplError::ControlInField { offset: i });
                }
                let closed = bytes
                    .get(i..i + 3)
                    .is_some_and(|c| c.eq_ignore_ascii_case(b"^FS"));
                if !closed {
                    return Err(ZplError::UnclosedField { offset: at });
                }
                label.fields += 1;
                if let Some(offset) = label.pending_barcode.take() {
                    if params.trim().is_empty() {
                        return Err(ZplError::EmptyBarcode { offset });
                    }
                    match label.waybills.first() {
                        Some(first) if first != params => {
                            return Err(ZplError::DifferentBarcodes {
                                offset,
                                first: first.clone(),
                                found: params.to_owned(),
                            })
                        }
                        Some(_) => {}
                        None => label.waybills.push(params.to_owned()),
                    }
                }
            }
            b"FS" => {
                if let Some(offset) = label.pending_barcode {
                    return Err(ZplError::EmptyBarcode { offset });
                }
            }
            b"GF" => {
                gf::decode(params).map_err(|reason| ZplError::BadGraphic { offset: at, reason })?;
                label.fields += 1;
            }
            b"PW" => bounded(at, "PW", params, MAX_WIDTH)?,
            b"LL" => bounded(at, "LL", params, MAX_HEIGHT)?,
            _ => {}
        }
    }
    if let Some(label) = open {
        return Err(ZplError::MissingEnd { start: label.start });
    }
    if labels.is_empty() {
        return Err(ZplError::NoLabel);
    }
    Ok(labels)
}

/// `^PW` / `^LL`: the first parameter is a dot count in `1..=max`.
fn bounded(offset: usize, command: &'static str, params: &str, max: u32) -> Result<(), ZplError> {
    let value = params.split(',').next().unwrap_or("").trim();
    match value.parse::<u32>() {
        Ok(v) if (1..=max).contains(&v) => Ok(()),
        _ => Err(ZplError::OutOfBounds {
            offset,
            command,
            value: value.to_owned(),
            max,
        }),
    }
}
