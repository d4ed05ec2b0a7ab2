//! The shard state machine's lifecycle, applied from log entries as a replica would: every
//! action's answer, the history it records, the waybill numbers it binds and voids, the print
//! jobs it writes and the events it emits. In-memory engine, no clock (times are in entries).

use std::collections::HashSet;

use surge_proto::v1::order_action::Kind;
use surge_proto::v1::shard_command::Command as Cmd;
use surge_proto::v1::{
    ActionBatch, Empty, HoldEntry, JobLease, Order, OrderAction, OrderRecord, OrderStatus as S,
    SubmitBatch, SubmitItem,
};
use surge_shard::{ActionOutcome, Applied, RefuseCode, Stage, WAYBILL_HOLD};

mod common;
use common::*;

#[test]
fn an_order_goes_from_intake_to_shipped_recording_every_step() {
    let mut s = Shard::new();
    let id = s.allocated("A");
    assert_eq!(
        s.sm.pending(Stage::Bind, 0, 10, 10)
            .expect("pending")
            .0
            .len(),
        1
    );

    // No numbers yet: the order is held, not failed.
    let held = s.done(&id, Kind::BindWaybill(Empty {}));
    assert_eq!(held.record.status(), S::Allocated);
    assert_eq!(held.record.holds[0].code, WAYBILL_HOLD);
    assert_eq!(
        s.sm.pending(Stage::AwaitWaybill, 0, 10, 10)
            .expect("p")
            .0
            .len(),
        1
    );
    assert!(s
        .sm
        .pending(Stage::Bind, 0, 10, 10)
        .expect("p")
        .0
        .is_empty());

    assert!(s.add_block(0, 1, 100, 101));
    let bound = s.done(&id, Kind::BindWaybill(Empty {}));
    assert_eq!(bound.record.status(), S::WaybillAssigned);
    assert_eq!(bound.record.waybill, "SF0000000100");
    assert!(
        bound.record.holds.is_empty(),
        "binding resolves the waybill hold"
    );
    let job = bound.job.expect("a print job in the same batch");
    assert_eq!(s.sm.jobs(TENANT, 10).expect("jobs"), vec![job.clone()]);

    let leased = s.done(
        &id,
        Kind::Lease(JobLease {
            job_id: job.job_id.clone(),
            station: "s1".into(),
            until_ms: 99_999,
        }),
    );
    assert_eq!(leased.job.expect("leased").leased_to, "s1");
    let p = s.done(&id, printed(&job.job_id));
    assert!(p.changed);
    assert_eq!(p.record.status(), S::LabelPrinted);
    assert!(
        s.sm.jobs(TENANT, 10).expect("jobs").is_empty(),
        "outbox emptied"
    );
    let again = s.done(&id, printed(&job.job_id));
    assert!(!again.changed, "a retried ack is a no-op");

    s.done(&id, Kind::Packed(Empty {}));
    let shipped = s.done(&id, Kind::ShippedWeightGrams(1234));
    assert_eq!(shipped.record.status(), S::Shipped);
    assert_eq!(shipped.record.shipped_weight_grams, 1234);
    assert!(matches!(
        s.act(&id, Kind::Cancel(Empty {})),
        ActionOutcome::TooLate(_)
    ));

    let rec = s.get(&id);
    let actions: Vec<&str> = rec.history.iter().map(|t| t.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "receive",
            "approve",
            "allocate",
            "hold",
            "bind_waybill",
            "print",
            "pack",
            "ship"
        ]
    );
    assert!(rec.history.windows(2).all(|w| w[0].at_ms <= w[1].at_ms));
    assert!(rec.history[1..]
        .iter()
        .all(|t| t.actor == "test" || t.action == "print"));
    assert_eq!(rec.history[2].reason, "carrier SF by rule r1");

    // Every transition is an event, in log order, with nothing in between for other tenants.
    let events =
        s.sm.events(TENANT, (0, 0), 100)
            .expect("events")
            .expect("kept");
    let tos: Vec<S> = events.iter().map(|e| e.to()).collect();
    assert_eq!(
        tos,
        [
            S::Received,
            S::Approved,
            S::Allocated,
            S::Allocated,
            S::WaybillAssigned,
            S::LabelPrinted,
            S::Packed,
            S::Shipped
        ]
    );
    let after_third =
        s.sm.events(TENANT, (events[2].index, events[2].pos), 100)
            .expect("e")
            .expect("kept");
    assert_eq!(
        after_third.len(),
        events.len() - 3,
        "resumes after a position"
    );
    assert!(s
        .sm
        .events(TENANT + 1, (0, 0), 10)
        .expect("e")
        .expect("kept")
        .is_empty());
}

#[test]
fn illegal_steps_are_refused_and_change_nothing() {
    let mut s = Shard::new();
    let id = s.submit("A");
    let before = s.get(&id);
    let cases: Vec<(Kind, &str)> = vec![
        (
            Kind::Packed(Empty {}),
            "ConfirmPacked is not allowed from Received",
        ),
        (
            Kind::ShippedWeightGrams(1),
            "ConfirmShipped is not allowed from Received",
        ),
        (alloc(), "Allocate is not allowed from Received"),
        (
            Kind::BindWaybill(Empty {}),
            "AssignWaybill is not allowed from Received",
        ),
        (Kind::Reprint(Empty {}), "only a printed"),
    ];
    for (kind, want) in cases {
        let out = s.act(&id, kind);
        let (code, message) = refused(&out);
        assert_eq!(code, RefuseCode::FailedPrecondition);
        assert!(
            message.contains(want),
            "{message:?} should contain {want:?}"
        );
    }
    assert_eq!(s.get(&id), before, "nothing changed");
    let (code, _) = refused(&s.act("2-999-0", Kind::Approve(Empty {})));
    assert_eq!(code, RefuseCode::NotFound);
    // Another tenant's order is not found either.
    let out = match s.apply(Cmd::Actions(ActionBatch {
        at_ms: 1,
        items: vec![OrderAction {
            tenant_id: TENANT + 1,
            order_id: id.clone(),
            kind: Some(Kind::Approve(Empty {})),
            ..OrderAction::default()
        }],
    })) {
        Applied::Actions(o) => o,
        other => panic!("{other:?}"),
    };
    assert_eq!(refused(&out[0]).0, RefuseCode::NotFound);
}

#[test]
fn holds_block_moves_until_released_and_retries_are_no_ops() {
    let mut s = Shard::new();
    let id = s.submit("A");
    let hold = |code: &str| {
        Kind::Hold(HoldEntry {
            code: code.into(),
            detail: "remark: call me".into(),
            ..HoldEntry::default()
        })
    };
    assert!(s.done(&id, hold("remark")).changed);
    assert!(!s.done(&id, hold("remark")).changed, "same hold twice");
    s.done(&id, hold("manual"));
    let (_, msg) = refused(&s.act(&id, Kind::Approve(Empty {})));
    assert!(msg.contains("blocked by a hold"), "{msg}");
    assert!(
        s.sm.pending(Stage::Review, 0, 10, 10)
            .expect("p")
            .0
            .is_empty(),
        "held: not pending"
    );
    s.done(&id, Kind::Release("remark".into()));
    assert_eq!(s.get(&id).holds.len(), 1);
    assert!(!s.done(&id, Kind::Release("remark".into())).changed);
    s.done(&id, Kind::Release(String::new()));
    assert!(s.get(&id).holds.is_empty());
    let ok = s.done(&id, Kind::Approve(Empty {}));
    assert!(ok.changed);
    let again = s.done(&id, Kind::Approve(Empty {}));
    assert!(
        !again.changed,
        "re-applied: no-op answering the current state"
    );
    assert_eq!(again.record.status(), S::Approved);
    // A cancel is never blocked by a hold.
    s.done(&id, hold("risk"));
    let c = s.done(&id, Kind::Cancel(Empty {}));
    assert_eq!(c.record.status(), S::Cancelled);
}

#[test]
fn review_holds_send_a_released_order_to_approval_not_to_review_again() {
    let mut s = Shard::new();
    let id = s.submit("A");
    assert_eq!(
        s.sm.pending(Stage::Review, 0, 10, 10).expect("p").0.len(),
        1
    );
    let out = s.act_all(vec![(
        id.clone(),
        Kind::Hold(HoldEntry {
            code: "amount".into(),
            ..HoldEntry::default()
        }),
    )]);
    assert!(matches!(out[0], ActionOutcome::Done(_)));
    // The test actor is not the review actor: use it explicitly.
    let at_ms = s.at;
    s.apply(Cmd::Actions(ActionBatch {
        at_ms,
        items: vec![OrderAction {
            tenant_id: TENANT,
            order_id: id.clone(),
            actor: surge_shard::REVIEW_ACTOR.into(),
            kind: Some(Kind::Hold(HoldEntry {
                code: "remark".into(),
                ..HoldEntry::default()
            })),
            ..OrderAction::default()
        }],
    }));
    s.done(&id, Kind::Release(String::new()));
    assert!(s
        .sm
        .pending(Stage::Review, 0, 10, 10)
        .expect("p")
        .0
        .is_empty());
    assert_eq!(
        s.sm.pending(Stage::Approve, 0, 10, 10).expect("p").0.len(),
        1
    );
}

#[test]
fn cancel_answers_stopped_before_printing_and_intercepts_after() {
    let mut s = Shard::new();
    assert!(s.add_block(0, 1, 1, 1000));
    // Before printing, with a bound waybill: cancelled, number voided, job dropped.
    let a = s.allocated("A");
    let bound = s.done(&a, Kind::BindWaybill(Empty {}));
    let job_a = bound.job.expect("job").job_id;
    let c = s.done(&a, Kind::Cancel(Empty {}));
    assert_eq!(c.record.status(), S::Cancelled);
    assert!(c.record.waybill_voided && !c.record.intercepted);
    assert!(s.sm.jobs(TENANT, 10).expect("jobs").is_empty());
    let (_, msg) = refused(&s.act(&a, printed(&job_a)));
    assert!(
        msg.contains("cancelled"),
        "a racing ack learns the label is void: {msg}"
    );
    assert!(
        !s.done(&a, Kind::Cancel(Empty {})).changed,
        "a retried cancel"
    );

    // After printing: intercepted, label voided, parcel must not leave.
    let b = s.allocated("B");
    let job_b = s
        .done(&b, Kind::BindWaybill(Empty {}))
        .job
        .expect("job")
        .job_id;
    s.done(&b, printed(&job_b));
    let i = s.done(&b, Kind::Cancel(Empty {}));
    assert_eq!(i.record.status(), S::LabelPrinted);
    assert!(i.record.intercepted && i.record.waybill_voided);
    let (_, msg) = refused(&s.act(&b, Kind::Packed(Empty {})));
    assert!(msg.contains("intercepted"), "{msg}");
    assert!(matches!(
        s.act(&b, Kind::Reprint(Empty {})),
        ActionOutcome::Refused { .. }
    ));

    let books = s.sm.books().expect("books");
    let usage = &books[0].2.usage[0];
    assert_eq!((usage.leased, usage.bound, usage.voided), (1000, 2, 2));
    // Before any waybill: simply cancelled.
    let c = s.submit("C");
    let out = s.done(&c, Kind::Cancel(Empty {}));
    assert_eq!(out.record.status(), S::Cancelled);
    assert!(!out.record.waybill_voided);
}

#[test]
fn waybill_numbers_are_bound_once_across_blocks_and_blocks_are_added_once() {
    let mut s = Shard::new();
    assert!(s.add_block(0, 1, 1, 3));
    assert!(!s.add_block(0, 1, 1, 3), "the same seq again: ignored");
    assert!(!s.add_block(5, 1, 50, 60), "a seq from the future: ignored");
    // Blocks no coordinator leases (numbers past 18 digits, an end before the start, more
    // numbers than a range holds) are refused, and the next good block still takes seq 1.
    assert!(
        !s.add_block(1, 1, 1, u64::MAX),
        "a block ending at u64::MAX"
    );
    assert!(!s.add_block(1, 1, 9, 3), "an end before the start");
    assert!(
        !s.add_block(1, 1, 0, 200_000_000),
        "more numbers than a range"
    );
    assert!(s.add_block(1, 2, 500, 501));
    let ids: Vec<String> = (0..6).map(|i| s.allocated(&format!("O{i}"))).collect();
    // All six bound in one entry: each sees the last.
    let out = s.act_all(
        ids.iter()
            .map(|id| (id.clone(), Kind::BindWaybill(Empty {})))
            .collect(),
    );
    let mut numbers = Vec::new();
    for o in &out {
        let ActionOutcome::Done(d) = o else {
            panic!("{o:?}")
        };
        numbers.push(d.record.waybill.clone());
    }
    assert_eq!(
        numbers,
        [
            "SF0000000001",
            "SF0000000002",
            "SF0000000003",
            "SF0000000500",
            "SF0000000501",
            ""
        ]
    );
    assert_eq!(
        s.get(&ids[5]).holds[0].code,
        WAYBILL_HOLD,
        "the sixth waits"
    );
    let unique: HashSet<&String> = numbers.iter().filter(|n| !n.is_empty()).collect();
    assert_eq!(unique.len(), 5);
    assert_eq!(s.sm.jobs(TENANT, 100).expect("jobs").len(), 5);
}

#[test]
fn leases_keep_a_job_with_one_station_until_they_lapse_and_reprints_are_counted() {
    let mut s = Shard::new();
    assert!(s.add_block(0, 1, 1, 10));
    let id = s.allocated("A");
    let job = s.done(&id, Kind::BindWaybill(Empty {})).job.expect("job");
    let lease = |station: &str, until: u64| {
        Kind::Lease(JobLease {
            job_id: job.job_id.clone(),
            station: station.into(),
            until_ms: until,
        })
    };
    let far = s.at + 1_000_000;
    s.done(&id, lease("s1", far));
    let (_, msg) = refused(&s.act(&id, lease("s2", far)));
    assert!(msg.contains("leased to station s1"), "{msg}");
    s.done(&id, lease("s1", far)); // the holder may renew
                                   // A lapsed lease (until is before the entry's time) goes to whoever asks.
    s.done(&id, lease("s1", 0));
    let moved = s.done(&id, lease("s2", far));
    assert_eq!(moved.job.expect("job").leased_to, "s2");
    s.done(&id, printed(&job.job_id));

    let r1 = s.done(&id, Kind::Reprint(Empty {}));
    let rjob = r1.job.expect("reprint job");
    assert_eq!((rjob.reprint, r1.record.reprints), (1, 1));
    let r2 = s.done(&id, Kind::Reprint(Empty {}));
    assert!(!r2.changed, "a pending reprint is not queued twice");
    assert_eq!(r2.job.expect("same job").job_id, rjob.job_id);
    let p = s.done(&id, printed(&rjob.job_id));
    assert_eq!(p.record.status(), S::LabelPrinted);
    assert_eq!(
        p.record.history.last().map(|t| t.action.as_str()),
        Some("reprinted")
    );
}

#[test]
fn every_tenant_gets_its_share_of_a_stage_whatever_waits_ahead_of_it() {
    let mut s = Shard::new();
    let submit = |s: &mut Shard, tenant: u64, ext: &str| {
        let cmd = Cmd::Submit(SubmitBatch {
            tenant_id: tenant,
            received_at_ms: s.at,
            items: vec![SubmitItem {
                order: Some(Order {
                    platform: "jd".into(),
                    external_order_id: ext.into(),
                    ..Order::default()
                }),
                payload_hash: vec![1],
            }],
        });
        s.apply(cmd);
    };
    for i in 0..5 {
        submit(&mut s, 3, &format!("a{i}")); // tenant 3: older and many
    }
    submit(&mut s, 9, "b0");
    let tenants = |recs: &[OrderRecord]| recs.iter().map(|r| r.tenant_id).collect::<Vec<_>>();
    let (recs, next) = s.sm.pending(Stage::Review, 0, 2, 10).expect("pending");
    assert_eq!(
        tenants(&recs),
        [3, 3, 9],
        "at most 2 of tenant 3, then tenant 9"
    );
    assert_eq!(next, 0, "nothing cut short");
    let (recs, next) = s.sm.pending(Stage::Review, 0, 5, 2).expect("pending");
    assert_eq!(tenants(&recs), [3, 3]);
    assert_eq!(next, 4, "resume after tenant 3");
    let (recs, _) = s.sm.pending(Stage::Review, next, 5, 2).expect("pending");
    assert_eq!(
        tenants(&recs),
        [9, 3],
        "tenant 9 first, then wrapping around"
    );
}

#[test]
fn stale_pipeline_decisions_are_void_and_holds_leave_room_for_their_release() {
    let mut s = Shard::new();
    let id = s.submit("A");
    s.done(&id, Kind::Approve(Empty {}));
    // A review hold decided on the RECEIVED order arrives after it was approved.
    let at_ms = s.at;
    let out = match s.apply(Cmd::Actions(ActionBatch {
        at_ms,
        items: vec![OrderAction {
            tenant_id: TENANT,
            order_id: id.clone(),
            expect_status: S::Received as i32,
            kind: Some(Kind::Hold(HoldEntry {
                code: "remark".into(),
                ..HoldEntry::default()
            })),
            ..OrderAction::default()
        }],
    })) {
        Applied::Actions(o) => o,
        other => panic!("{other:?}"),
    };
    assert!(refused(&out[0]).1.contains("moved on"));
    assert!(s.get(&id).holds.is_empty());

    // Holds and releases until the history is nearly full: holds stop, a release never does.
    let mut holds = 0;
    loop {
        let kind = Kind::Hold(HoldEntry {
            code: "manual".into(),
            ..HoldEntry::default()
        });
        match s.act(&id, kind) {
            ActionOutcome::Done(_) => holds += 1,
            ActionOutcome::Refused { message, .. } => {
                assert!(message.contains("recorded transitions"), "{message}");
                break;
            }
            other => panic!("{other:?}"),
        }
        s.done(&id, Kind::Release(String::new()));
        assert!(holds < 100, "holds are bounded");
    }
    assert!(
        holds > 20,
        "holds were possible until near the limit: {holds}"
    );
    assert!(s.get(&id).holds.is_empty(), "every hold was released");
    // And the forward steps still fit.
    s.done(&id, alloc());
    assert_eq!(s.get(&id).status(), S::Allocated);
}

#[test]
fn shipping_drops_a_reprint_still_waiting() {
    let mut s = Shard::new();
    assert!(s.add_block(0, 1, 1, 10));
    let id = s.allocated("A");
    let job = s.done(&id, Kind::BindWaybill(Empty {})).job.expect("job");
    s.done(&id, printed(&job.job_id));
    s.done(&id, Kind::Reprint(Empty {}));
    assert_eq!(s.sm.jobs(TENANT, 10).expect("jobs").len(), 1);
    s.done(&id, Kind::Packed(Empty {}));
    s.done(&id, Kind::ShippedWeightGrams(900));
    assert!(
        s.sm.jobs(TENANT, 10).expect("jobs").is_empty(),
        "no label for a parcel that left"
    );
    assert!(s.get(&id).pending_job.is_empty());
}

#[test]
fn old_events_are_trimmed_and_a_cursor_past_retention_is_refused() {
    let mut s = Shard::new();
    let ids: Vec<String> = (0..4).map(|i| s.submit(&format!("E{i}"))).collect();
    let all = s.sm.events(TENANT, (0, 0), 100).expect("e").expect("kept");
    assert_eq!(all.len(), 4);
    // Keep what happened at or after the third intake.
    let cutoff = all[2].at_ms;
    let point = s.sm.trim_point(TENANT, cutoff, 100).expect("scan");
    assert_eq!(point, Some((all[2].index, all[2].pos)));
    assert_eq!(
        s.sm.trim_point(TENANT, all[0].at_ms, 100).expect("scan"),
        None,
        "nothing that old"
    );
    let trim = |s: &mut Shard, (index, pos): (u64, u32)| {
        s.apply(Cmd::TrimEvents(surge_proto::v1::TrimEvents {
            tenant_id: TENANT,
            below_index: index,
            below_pos: pos,
        }))
    };
    let below = point.expect("a trim point");
    assert_eq!(trim(&mut s, below), Applied::Trimmed(true));
    assert_eq!(
        trim(&mut s, (1, 0)),
        Applied::Trimmed(false),
        "never backwards"
    );
    let kept = s.sm.events(TENANT, (0, 0), 100).expect("e").expect("kept");
    assert_eq!(
        kept,
        all[2..].to_vec(),
        "a fresh watch starts at the oldest kept"
    );
    let old =
        s.sm.events(TENANT, (all[0].index, all[0].pos), 100)
            .expect("e");
    assert_eq!(
        old,
        Err(surge_shard::Trimmed { below }),
        "an old cursor is refused"
    );
    let current =
        s.sm.events(TENANT, (all[2].index, all[2].pos), 100)
            .expect("e")
            .expect("kept");
    assert_eq!(current, all[3..].to_vec());
    // Orders themselves are untouched, and a scan limit trims in steps.
    assert!(ids
        .iter()
        .all(|id| s.sm.get(TENANT, id).expect("read").is_some()));
    let step = s.sm.trim_point(TENANT, u64::MAX, 1).expect("scan");
    assert_eq!(
        step,
        Some((all[2].index, all[2].pos + 1)),
        "past the one looked at"
    );
}
