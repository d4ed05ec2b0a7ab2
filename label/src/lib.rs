//! Shipping labels for surge's parcels: ZPL II for thermal printers and PDF for preview.
//!
//! A packing station turns an allocated order into a [`Label`] and sends [`Renderer::zpl`] to a
//! Zebra-type printer (4x6 in, 203 dpi: 812 x 1218 dots) on TCP 9100; the operator UI shows
//! [`Renderer::pdf`] (one 288 x 432 pt page). Both are pure functions of the label and the
//! renderer's [`Fonts`], so a reprint is byte-identical except for its "REPRINT n" bar.
//! [`sorting_code`] derives the big sorting code from the receiver's address, and [`check_zpl`]
//! is the well-formedness check a test printer applies to whatever it receives.
//!
//! # Layout
//!
//! Both formats draw one element list computed in printer dots (`layout`), top to bottom:
//!
//! 1. carrier name (big) on the left; parcel "n/m" and weight ("2.35 kg") on the right;
//! 2. the sorting code (biggest), or the three-segment code (三段码) with the destination text
//!    (大头笔) under it;
//! 3. the waybill as a Code 128 barcode (subset B, centred, quiet zones of 10 modules) with the
//!    number in text under it;
//! 4. "TO": receiver name, phone and up to three lines of address;
//! 5. "FROM": sender name and phone, up to two lines of address;
//! 6. "ORDER": the order reference;
//! 7. for a reprint, a black bar with "REPRINT n" in white.
//!
//! Every line of text is measured (with the CJK font's advances, and never narrower than
//! Helvetica for ASCII), wrapped where Unicode line breaking allows and cut with "..." so that it
//! stays inside its box (`text`); nothing is drawn outside a 24-dot margin.
//!
//! # Text
//!
//! Control characters become spaces everywhere. Chinese addresses read from province to street.
//! With a CJK font ([`Fonts`], Noto Sans CJK SC by default), the PDF embeds a subset of it
//! holding exactly the glyphs the label uses, and ZPL draws every line outside printable ASCII
//! as a `^GF` graphic rasterised by surge, or, with [`ZplText::PrinterFont`], names a font
//! stored on the printer (`^CW`). In ZPL the label declares UTF-8 (`^CI28`) and `^` / `~` in
//! field data become spaces. Without a CJK font the PDF falls back to the built-in Helvetica
//! (WinAnsi: other characters become `?`). The barcode keeps only printable ASCII other than `^`,
//! `~`, `>` (at most 40 characters), and the same string is printed under it.

mod check;
mod font;
pub mod gf;
mod layout;
mod layout_ewaybill;
mod pdf;
mod pdf_font;
mod privacy;
mod renderer;
mod sorting;
mod stock;
mod text;
mod zpl;

pub use check::{check_zpl, ZplError, ZplLabel};
pub use font::{test_fonts, Font, FontError, Fonts, SYSTEM_FONTS};
pub use privacy::{is_privacy_platform, mask_name, mask_phone, PRIVACY_PLATFORMS};
pub use renderer::{Renderer, ZplText, ZplTextError};
pub use sorting::sorting_code;
pub use stock::{Stock, STOCKS};

/// Everything printed on one parcel's label.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Label {
    /// Carrier name, printed big (e.g. "SF Express").
    pub carrier: String,
    /// Waybill number, encoded as the barcode (e.g. "SF0000012345").
    pub waybill: String,
    /// Sorting code for the carrier's sorting centre: the three-segment code (三段码) of a
    /// Chinese address, else [`sorting_code`] of the receiver.
    pub sorting_code: String,
    /// Destination text (大头笔) printed big beside the sorting code, e.g. "杭州 西湖"; empty
    /// for addresses without one (the sorting code then takes the whole row).
    pub destination: String,
    /// Sender: name, phone and address.
    pub sender: surge_proto::v1::Address,
    /// Receiver: name, phone and full address.
    pub receiver: surge_proto::v1::Address,
    /// Order reference (e.g. "3-120-0 / taobao:run-17").
    pub order_ref: String,
    /// 1-based index of this parcel within the shipment.
    pub parcel_index: u32,
    /// Number of parcels in the shipment.
    pub parcel_count: u32,
    /// Parcel weight in grams, printed in kg with two decimals.
    pub weight_grams: i64,
    /// 0 for the original print; n for the n-th reprint, which shows "REPRINT n".
    pub reprint: u32,
    /// The stock it is printed on (the carrier's, from the rules file).
    pub stock: Stock,
}
