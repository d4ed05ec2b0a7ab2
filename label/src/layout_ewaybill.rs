//! The Chinese e-waybill (电子面单) layouts: 100 x 180 mm and 76 x 130 mm. The upper part is the
//! carrier's (派送联): sorting code (三段码) biggest, destination text (大头笔), the waybill
//! barcode, receiver (收) and sender (寄); below a tear line, the receiver's stub (客户联): the
//! barcode again, the receiver and the order reference.

use crate::font::Fonts;
use crate::layout::{barcode_data, At, Builder, Element};
use crate::stock::Stock;
use crate::text::{address_line, clean, weight_kg};
use crate::Label;

/// Where one stock's parts go, in dots from the top; each `(y, size)` is a text line.
struct Template {
    margin: u32,
    /// Left edge of the text beside the 收 / 寄 marks.
    indent: u32,
    carrier: (u32, u32),
    carrier_max: u32,
    parcels: (u32, u32, u32),
    weight: (u32, u32),
    code: (u32, u32),
    destination: (u32, u32),
    barcode: (u32, u32),
    waybill: (u32, u32),
    to: (u32, u32),
    to_phone: (u32, u32),
    /// First line, pitch, size, lines.
    to_address: (u32, u32, u32, usize),
    from: (u32, u32),
    from_address: (u32, u32, u32, usize),
    /// The rules between the parts, and the tear line (thicker).
    rules: [u32; 4],
    tear: u32,
    stub_barcode: (u32, u32),
    stub_waybill: (u32, u32),
    stub_rules: [u32; 2],
    stub_to: (u32, u32),
    stub_address: (u32, u32, u32, usize),
    stub_order: (u32, u32),
    /// The reprint bar: top, height, text size.
    reprint: (u32, u32, u32),
}

const MM_100X180: Template = Template {
    margin: 24,
    indent: 80,
    carrier: (24, 64),
    carrier_max: 500,
    parcels: (560, 24, 44),
    weight: (76, 30),
    code: (124, 96),
    destination: (232, 56),
    barcode: (316, 150),
    waybill: (472, 36),
    to: (534, 44),
    to_phone: (590, 36),
    to_address: (636, 40, 34, 3),
    from: (784, 28),
    from_address: (822, 34, 26, 2),
    rules: [114, 300, 522, 772],
    tear: 896,
    stub_barcode: (914, 90),
    stub_waybill: (1010, 30),
    stub_rules: [1052, 1178],
    stub_to: (1064, 30),
    stub_address: (1102, 34, 28, 2),
    stub_order: (1190, 30),
    reprint: (1300, 80, 60),
};

const MM_76X130: Template = Template {
    margin: 16,
    indent: 60,
    carrier: (16, 44),
    carrier_max: 390,
    parcels: (420, 16, 36),
    weight: (58, 24),
    code: (96, 64),
    destination: (170, 40),
    barcode: (232, 110),
    waybill: (346, 28),
    to: (394, 32),
    to_phone: (434, 28),
    to_address: (470, 32, 26, 3),
    from: (582, 24),
    from_address: (614, 28, 22, 2),
    rules: [88, 222, 386, 574],
    tear: 676,
    stub_barcode: (690, 80),
    stub_waybill: (774, 24),
    stub_rules: [808, 914],
    stub_to: (818, 26),
    stub_address: (852, 28, 22, 2),
    stub_order: (922, 26),
    reprint: (968, 48, 36),
};

/// Name and phone on one line, as far as they fit.
fn who(a: &surge_proto::v1::Address) -> String {
    [clean(&a.name), clean(&a.phone)]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("  ")
}

/// Every element of `label` on the e-waybill `stock`.
pub(crate) fn ewaybill(label: &Label, fonts: Option<&Fonts>, stock: Stock) -> Vec<Element> {
    let t = match stock {
        Stock::Mm76x130 => &MM_76X130,
        _ => &MM_100X180,
    };
    let (width, _) = stock.dots();
    let mut b = Builder::new(fonts, width, t.margin);
    let inner = b.inner();
    let left = At::Left(t.margin);
    let beside = At::Left(t.indent);
    let beside_max = width - t.margin - t.indent;

    // The carrier's part.
    b.text(
        left,
        t.carrier.0,
        t.carrier.1,
        true,
        t.carrier_max,
        &label.carrier,
    );
    let (px, py, ps) = t.parcels;
    let parcels = format!("{}/{}", label.parcel_index, label.parcel_count);
    let right_max = width - t.margin - px;
    b.text(At::Left(px), py, ps, true, right_max, &parcels);
    let weight = weight_kg(label.weight_grams);
    b.text(
        At::Left(px),
        t.weight.0,
        t.weight.1,
        true,
        right_max,
        &weight,
    );
    b.text(left, t.code.0, t.code.1, true, inner, &label.sorting_code);
    let destination = t.destination;
    b.text(
        left,
        destination.0,
        destination.1,
        true,
        inner,
        &label.destination,
    );
    let data = barcode_data(&label.waybill);
    b.barcode(t.barcode.0, t.barcode.1, &data);
    b.text(At::Centre, t.waybill.0, t.waybill.1, true, inner, &data);

    let to = &label.receiver;
    b.text(left, t.to.0, t.to.1, true, t.indent - t.margin, "收");
    b.text(beside, t.to.0, t.to.1, true, beside_max, &to.name);
    b.text(
        beside,
        t.to_phone.0,
        t.to_phone.1,
        true,
        beside_max,
        &to.phone,
    );
    let (y, pitch, size, lines) = t.to_address;
    b.lines(t.indent, y, pitch, size, false, lines, &address_line(to));

    let from = &label.sender;
    b.text(left, t.from.0, t.from.1, true, t.indent - t.margin, "寄");
    b.text(beside, t.from.0, t.from.1, false, beside_max, &who(from));
    let (y, pitch, size, lines) = t.from_address;
    b.lines(t.indent, y, pitch, size, false, lines, &address_line(from));
    for y in t.rules {
        b.rule(y, 3);
    }
    b.rule(t.tear, 6);

    // The receiver's stub.
    b.barcode(t.stub_barcode.0, t.stub_barcode.1, &data);
    b.text(
        At::Centre,
        t.stub_waybill.0,
        t.stub_waybill.1,
        true,
        inner,
        &data,
    );
    let stub_size = t.stub_to.1;
    b.text(
        left,
        t.stub_to.0,
        stub_size,
        true,
        t.indent - t.margin,
        "收",
    );
    b.text(beside, t.stub_to.0, stub_size, false, beside_max, &who(to));
    let (y, pitch, size, lines) = t.stub_address;
    b.lines(t.indent, y, pitch, size, false, lines, &address_line(to));
    b.text(
        left,
        t.stub_order.0,
        t.stub_order.1,
        true,
        inner,
        &label.order_ref,
    );
    for y in t.stub_rules {
        b.rule(y, 3);
    }

    let (y, h, size) = t.reprint;
    b.reprint_bar(y, h, size, label.reprint);
    b.out
}
