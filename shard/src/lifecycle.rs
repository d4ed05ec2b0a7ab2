//! The order lifecycle as a pure function (DESIGN.md §4), for the shard state machine to apply:
//! `RECEIVED → APPROVED → ALLOCATED → WAYBILL_ASSIGNED → LABEL_PRINTED → PACKED → SHIPPED`,
//! `CANCELLED` terminal; holds block forward moves without being states; cancel before printing
//! cancels, after printing (before shipping) intercepts, after shipping is too late.
//!
//! Re-applying a step that already happened is a no-op that answers the current state, so a
//! retried command (after a timeout or a leader change) never fails and never moves twice.

use surge_proto::v1::OrderStatus;

/// What an actor asks of an order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Approve,
    Allocate,
    AssignWaybill,
    MarkPrinted,
    ConfirmPacked,
    ConfirmShipped,
    Cancel,
}

/// The answer to a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The order moved.
    Moved { from: OrderStatus, to: OrderStatus },
    /// The step had already happened (a retry): nothing changes.
    AlreadyDone(OrderStatus),
    /// A cancel after printing: the order keeps its status, is intercepted and its label voided.
    Intercepted(OrderStatus),
}

/// Why a step was refused (answered as FAILED_PRECONDITION, naming both).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("{step:?} is not allowed from {from:?}")]
    Illegal { from: OrderStatus, step: Step },
    #[error("{step:?} is blocked by a hold")]
    Held { step: Step },
    #[error("the order was intercepted; {step:?} is not allowed")]
    Intercepted { step: Step },
    /// Cancel after shipping: the parcel has left.
    #[error("the order has shipped: too late to cancel")]
    TooLate,
}

/// Position along the forward path; CANCELLED and UNSPECIFIED are off it.
fn rank(s: OrderStatus) -> Option<u8> {
    use OrderStatus as S;
    Some(match s {
        S::Received => 0,
        S::Approved => 1,
        S::Allocated => 2,
        S::WaybillAssigned => 3,
        S::LabelPrinted => 4,
        S::Packed => 5,
        S::Shipped => 6,
        S::Cancelled | S::Unspecified => return None,
    })
}

/// The status a forward step leads to.
fn target(step: Step) -> Option<OrderStatus> {
    use OrderStatus as S;
    Some(match step {
        Step::Approve => S::Approved,
        Step::Allocate => S::Allocated,
        Step::AssignWaybill => S::WaybillAssigned,
        Step::MarkPrinted => S::LabelPrinted,
        Step::ConfirmPacked => S::Packed,
        Step::ConfirmShipped => S::Shipped,
        Step::Cancel => return None,
    })
}

/// Decides `step` on an order in `status`, `held` (any hold set) and `intercepted`.
pub fn decide(
    status: OrderStatus,
    held: bool,
    intercepted: bool,
    step: Step,
) -> Result<Outcome, Refusal> {
    use OrderStatus as S;
    if step == Step::Cancel {
        return match status {
            S::Cancelled => Ok(Outcome::AlreadyDone(status)),
            S::Shipped => Err(Refusal::TooLate),
            S::LabelPrinted | S::Packed if intercepted => Ok(Outcome::AlreadyDone(status)),
            S::LabelPrinted | S::Packed => Ok(Outcome::Intercepted(status)),
            S::Unspecified => Err(Refusal::Illegal { from: status, step }),
            _ => Ok(Outcome::Moved {
                from: status,
                to: S::Cancelled,
            }),
        };
    }
    let Some(to) = target(step) else {
        return Err(Refusal::Illegal { from: status, step });
    };
    let (Some(now), Some(next)) = (rank(status), rank(to)) else {
        return Err(Refusal::Illegal { from: status, step });
    };
    if now >= next {
        return Ok(Outcome::AlreadyDone(status));
    }
    if intercepted {
        return Err(Refusal::Intercepted { step });
    }
    if next != now + 1 {
        return Err(Refusal::Illegal { from: status, step });
    }
    if held {
        return Err(Refusal::Held { step });
    }
    Ok(Outcome::Moved { from: status, to })
}

#[cfg(test)]
mod tests {
    use super::*;
    use OrderStatus as S;

    const ALL: [S; 8] = [
        S::Received,
        S::Approved,
        S::Allocated,
        S::WaybillAssigned,
        S::LabelPrinted,
        S::Packed,
        S::Shipped,
        S::Cancelled,
    ];
    const STEPS: [Step; 7] = [
        Step::Approve,
        Step::Allocate,
        Step::AssignWaybill,
        Step::MarkPrinted,
        Step::ConfirmPacked,
        Step::ConfirmShipped,
        Step::Cancel,
    ];

    /// The legal forward moves, and nothing else moves.
    #[test]
    fn every_status_and_step_has_exactly_the_documented_answer() {
        let forward = [
            (S::Received, Step::Approve, S::Approved),
            (S::Approved, Step::Allocate, S::Allocated),
            (S::Allocated, Step::AssignWaybill, S::WaybillAssigned),
            (S::WaybillAssigned, Step::MarkPrinted, S::LabelPrinted),
            (S::LabelPrinted, Step::ConfirmPacked, S::Packed),
            (S::Packed, Step::ConfirmShipped, S::Shipped),
        ];
        for from in ALL {
            for step in STEPS {
                let got = decide(from, false, false, step);
                let want = if step == Step::Cancel {
                    match from {
                        S::Cancelled => Ok(Outcome::AlreadyDone(from)),
                        S::Shipped => Err(Refusal::TooLate),
                        S::LabelPrinted | S::Packed => Ok(Outcome::Intercepted(from)),
                        _ => Ok(Outcome::Moved {
                            from,
                            to: S::Cancelled,
                        }),
                    }
                } else if let Some((_, _, to)) =
                    forward.iter().find(|(f, s, _)| *f == from && *s == step)
                {
                    Ok(Outcome::Moved { from, to: *to })
                } else if from == S::Cancelled {
                    Err(Refusal::Illegal { from, step })
                } else if rank(from) >= target(step).and_then(rank) {
                    Ok(Outcome::AlreadyDone(from))
                } else {
                    Err(Refusal::Illegal { from, step })
                };
                assert_eq!(got, want, "{from:?} + {step:?}");
            }
        }
    }

    #[test]
    fn holds_block_forward_moves_but_not_cancel_or_retries() {
        assert_eq!(
            decide(S::Received, true, false, Step::Approve),
            Err(Refusal::Held {
                step: Step::Approve
            })
        );
        assert_eq!(
            decide(S::Approved, true, false, Step::Approve),
            Ok(Outcome::AlreadyDone(S::Approved))
        );
        assert_eq!(
            decide(S::Received, true, false, Step::Cancel),
            Ok(Outcome::Moved {
                from: S::Received,
                to: S::Cancelled
            })
        );
    }

    #[test]
    fn an_intercepted_parcel_moves_no_further_and_a_second_cancel_is_a_retry() {
        assert_eq!(
            decide(S::LabelPrinted, false, true, Step::ConfirmPacked),
            Err(Refusal::Intercepted {
                step: Step::ConfirmPacked
            })
        );
        assert_eq!(
            decide(S::Packed, false, true, Step::Cancel),
            Ok(Outcome::AlreadyDone(S::Packed))
        );
        assert_eq!(
            decide(S::Shipped, false, false, Step::Cancel),
            Err(Refusal::TooLate)
        );
    }
}
