//! A carrier's own routing (三段码, 大头笔) kept on an order's waybill binding: set from binding
//! until shipping, only for the bound waybill, idempotent, recorded, and refused with the field
//! named when it could not be printed.

use surge_proto::v1::order_action::Kind;
use surge_proto::v1::{CarrierRouting, Empty, OrderStatus as S};
use surge_shard::{routing_for, RefuseCode};

mod common;
use common::*;

fn routing(waybill: &str, sorting_code: &str, destination: &str) -> Kind {
    Kind::Route(CarrierRouting {
        waybill: waybill.into(),
        sorting_code: sorting_code.into(),
        destination: destination.into(),
    })
}

#[test]
fn the_carriers_routing_is_kept_on_the_binding_until_the_parcel_ships() {
    let mut s = Shard::new();
    assert!(s.add_block(0, 1, 1, 10));
    let id = s.allocated("A");
    // Before binding there is no waybill to route.
    let (code, msg) = refused(&s.act(&id, routing("SF0000000001", "571-W01-08", "杭州转")));
    assert_eq!(code, RefuseCode::FailedPrecondition);
    assert!(msg.contains("no waybill yet"), "{msg}");

    let bound = s.done(&id, Kind::BindWaybill(Empty {}));
    let waybill = bound.record.waybill.clone();
    assert_eq!(waybill, "SF0000000001");
    // Another waybill's routing is refused, naming the waybill.
    let (code, msg) = refused(&s.act(&id, routing("SF0000000009", "571-W01-08", "杭州转")));
    assert_eq!(code, RefuseCode::FailedPrecondition);
    assert!(msg.starts_with("waybill:"), "{msg}");
    // Codes a label cannot carry are refused, naming the field; nothing is stored.
    for (kind, field) in [
        (routing(&waybill, "", " "), "sorting_code"),
        (routing(&waybill, "571\nW01", "杭州"), "sorting_code"),
        (routing(&waybill, &"9".repeat(33), "杭州"), "sorting_code"),
        (routing(&waybill, "571", &"杭".repeat(25)), "destination"),
        (routing(&waybill, "571", "杭州\u{7}"), "destination"),
    ] {
        let (code, msg) = refused(&s.act(&id, kind));
        assert_eq!(code, RefuseCode::InvalidArgument);
        assert!(msg.starts_with(&format!("{field}:")), "{msg}");
    }
    assert_eq!(s.get(&id).carrier_routing, None);

    let set = s.done(&id, routing(&waybill, "300-B8-00", "杭州转 西湖"));
    assert!(set.changed);
    let rec = s.get(&id);
    assert_eq!(rec.status(), S::WaybillAssigned, "routing moves no status");
    let last = rec.history.last().expect("history");
    assert_eq!(
        (last.action.as_str(), last.reason.as_str()),
        ("route", "carrier routing 300-B8-00 杭州转 西湖")
    );
    let derived = ("3301-06-01".to_string(), "杭州 西湖".to_string());
    assert_eq!(
        routing_for(&rec, derived.clone()),
        ("300-B8-00".to_string(), "杭州转 西湖".to_string())
    );
    // The same routing again is a no-op that records nothing.
    let again = s.done(&id, routing(&waybill, "300-B8-00", "杭州转 西湖"));
    assert!(!again.changed);
    assert_eq!(s.get(&id).history.len(), rec.history.len());

    // Printed and packed orders may still be routed (a reprint carries it); shipped may not.
    let job = bound.job.expect("job");
    s.done(&id, printed(&job.job_id));
    s.done(&id, Kind::Packed(Empty {}));
    s.done(&id, routing(&waybill, "300-B8-01", ""));
    assert_eq!(
        routing_for(&s.get(&id), derived.clone()),
        ("300-B8-01".to_string(), "杭州 西湖".to_string()),
        "an empty destination keeps the derived one"
    );
    s.done(&id, Kind::ShippedWeightGrams(1200));
    let (code, msg) = refused(&s.act(&id, routing(&waybill, "300-B8-02", "杭州")));
    assert_eq!(code, RefuseCode::FailedPrecondition);
    assert!(msg.contains("Shipped"), "{msg}");
    assert_eq!(
        s.get(&id)
            .carrier_routing
            .map(|r| r.sorting_code)
            .as_deref(),
        Some("300-B8-01")
    );
}

#[test]
fn a_cancelled_orders_voided_waybill_takes_no_routing() {
    let mut s = Shard::new();
    assert!(s.add_block(0, 1, 1, 10));
    let id = s.allocated("B");
    let waybill = s.done(&id, Kind::BindWaybill(Empty {})).record.waybill;
    s.done(&id, Kind::Cancel(Empty {}));
    let (code, msg) = refused(&s.act(&id, routing(&waybill, "571", "杭州")));
    assert_eq!(code, RefuseCode::FailedPrecondition);
    assert!(msg.contains("voided"), "{msg}");
}
