//! The review ("审单") decision: approve an order or hold it for a human, with every reason.

use surge_proto::v1::{Address, Order, PaymentState};

use crate::TenantRules;

/// Why an order is held.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HoldReason {
    /// The payable amount is above `max_amount_cents`.
    AmountOverLimit,
    /// The buyer left a remark and `hold_on_remark` is set.
    BuyerRemark,
    /// A required receiver field is blank and `require_full_address` is set.
    IncompleteAddress,
    /// The order is unpaid and `hold_unpaid` is set.
    Unpaid,
    /// The receiver's phone or name is in `blocked_receivers`.
    BlockedReceiver,
    /// A Chinese receiver address whose province, city or district is not one of the mainland's
    /// divisions (GB/T 2260): its sorting code would be wrong, so a human looks first.
    UnresolvedAddress,
}

impl HoldReason {
    /// A short stable code for APIs and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            Self::AmountOverLimit => "amount",
            Self::BuyerRemark => "remark",
            Self::IncompleteAddress => "address",
            Self::Unpaid => "unpaid",
            Self::BlockedReceiver => "blocked",
            Self::UnresolvedAddress => "address",
        }
    }
}

/// One failed check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hold {
    pub reason: HoldReason,
    /// Human-readable explanation, e.g. `payable 250000 > limit 200000 cents`.
    pub detail: String,
}

/// The outcome of [`TenantRules::review`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReviewDecision {
    Approve,
    /// Every failing check, in the order amount, remark, address, unpaid, blocked; never empty.
    Hold(Vec<Hold>),
}

impl ReviewDecision {
    /// The codes of the hold reasons (empty when approved).
    pub fn codes(&self) -> Vec<&'static str> {
        match self {
            Self::Approve => Vec::new(),
            Self::Hold(holds) => holds.iter().map(|h| h.reason.code()).collect(),
        }
    }
}

/// The longest stretch of a buyer remark quoted in a hold detail, in characters.
const REMARK_EXCERPT_CHARS: usize = 60;

impl TenantRules {
    /// Reviews `order`: approve it or list every reason to hold it.
    pub fn review(&self, order: &Order) -> ReviewDecision {
        let rules = &self.review;
        let mut holds = Vec::new();
        let mut hold = |reason, detail: String| holds.push(Hold { reason, detail });

        if let Some(limit) = rules.max_amount_cents {
            let payable = order.totals.as_ref().map_or(0, |t| t.payable_cents);
            if payable > limit {
                hold(
                    HoldReason::AmountOverLimit,
                    format!("payable {payable} > limit {limit} cents"),
                );
            }
        }
        if rules.hold_on_remark && !order.buyer_remark.trim().is_empty() {
            hold(
                HoldReason::BuyerRemark,
                format!("buyer remark: {:?}", excerpt(&order.buyer_remark)),
            );
        }
        let missing = missing_address_fields(order);
        if rules.require_full_address && !missing.is_empty() {
            hold(
                HoldReason::IncompleteAddress,
                format!("receiver {} empty", missing.join(", ")),
            );
        } else if let Some(e) = unresolved_chinese_address(order) {
            hold(HoldReason::UnresolvedAddress, format!("receiver {e}"));
        }
        if rules.hold_unpaid && order.payment_state() == PaymentState::Unpaid {
            hold(HoldReason::Unpaid, "order is unpaid".to_owned());
        }
        if let Some(detail) = blocked(&rules.blocked_receivers, order) {
            hold(HoldReason::BlockedReceiver, detail);
        }

        if holds.is_empty() {
            ReviewDecision::Approve
        } else {
            ReviewDecision::Hold(holds)
        }
    }
}

/// The required receiver fields that are blank (all of them when there is no receiver).
fn missing_address_fields(order: &Order) -> Vec<&'static str> {
    let none = Address::default();
    let r = order.receiver.as_ref().unwrap_or(&none);
    [
        ("name", &r.name),
        ("phone", &r.phone),
        ("province", &r.province),
        ("city", &r.city),
        ("street", &r.street),
    ]
    .into_iter()
    .filter(|(_, value)| value.trim().is_empty())
    .map(|(field, _)| field)
    .collect()
}

/// Why a Chinese receiver address (one written with Han characters, in China or with no
/// country) does not resolve to the mainland's divisions, if it does not. Addresses in Latin
/// letters (pinyin, cross-border) are not checked: their labels use the Latin sorting code.
fn unresolved_chinese_address(order: &Order) -> Option<surge_divisions::AddressError> {
    let r = order.receiver.as_ref()?;
    let han = |s: &str| s.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c));
    let chinese = [&r.province, &r.city, &r.district, &r.street]
        .iter()
        .any(|s| han(s));
    if !chinese || !surge_divisions::in_china(&r.country) {
        return None;
    }
    surge_divisions::Divisions::get()
        .resolve(&r.province, &r.city, &r.district, &r.street)
        .err()
}

/// Why the receiver is blocked, if it is.
fn blocked(list: &[String], order: &Order) -> Option<String> {
    let receiver = order.receiver.as_ref()?;
    let listed = |value: &str| !value.is_empty() && list.iter().any(|b| b == value);
    if listed(&receiver.phone) {
        Some(format!("receiver phone {:?} is blocked", receiver.phone))
    } else if listed(&receiver.name) {
        Some(format!("receiver name {:?} is blocked", receiver.name))
    } else {
        None
    }
}

/// The start of a remark, marked with `…` when cut.
fn excerpt(remark: &str) -> String {
    let remark = remark.trim();
    match remark.char_indices().nth(REMARK_EXCERPT_CHARS) {
        Some((cut, _)) => format!("{}…", &remark[..cut]),
        None => remark.to_owned(),
    }
}
