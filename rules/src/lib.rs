//! Per-tenant review ("审单") and carrier-allocation rules for the order pipeline.
//!
//! An operator uploads a TOML file (`surgectl tenant rules set --tenant T FILE.toml`). The
//! coordinator checks it with [`parse`] and stores the text; every node parses the same text
//! again and evaluates orders with pure functions: [`TenantRules::review`] decides whether an
//! order is approved or held for a human, [`TenantRules::allocate`] picks its carrier. Nothing
//! here reads a clock or does IO, so every node reaches the same decision for the same order.
//! A tenant that uploaded nothing has [`TenantRules::default`]: approve everything, allocate
//! nothing.
//!
//! Layout: `model` holds the rule types; `parse` turns TOML into them in three passes (syntax,
//! then the serde shape in `raw`, then the semantic checks in `check`), with `locate` mapping
//! byte offsets back to lines and dotted keys for [`RulesError`]; `review` and `allocate`
//! evaluate orders.
//!
//! # Format
//!
//! Every section and key is optional, except that each carrier needs `name`, `cost_cents` and
//! `days`, and each rule needs a `name` and a non-empty `carriers` list. This is
//! `rules/examples/rules.toml`:
//!
//! ```toml
#![doc = include_str!("../examples/rules.toml")]
//! ```
//!
//! # Semantics
//!
//! Orders are [`surge_proto::v1::Order`]s; money is in cents, weights in grams. The amount is
//! `totals.payable_cents`, the region is `receiver.province`, the parcel weight is
//! [`parcel_weight_grams`].
//!
//! Review lists every failing check, in the order amount (`max_amount_cents`: held when the
//! payable amount is above it), remark (`hold_on_remark`), address (`require_full_address`:
//! receiver name, phone, province, city and street must be non-blank), unpaid (`hold_unpaid`)
//! and blocked (`blocked_receivers`: the receiver's phone or name equals an entry exactly).
//!
//! Allocation tries the rules in file order and the first match wins. A rule matches when its
//! `regions` is empty or holds the receiver's province (exact, case-sensitive), the parcel
//! weight lies within `min_weight_grams..=max_weight_grams` (each bound optional) and, if `cod`
//! is set, the order's cash-on-delivery-ness equals it. Among the rule's carriers the one with the
//! lowest `cost_cents` (`prefer = "cost"`, the default) or the fewest `days`
//! (`prefer = "speed"`) is picked, ties going to the one listed first; a rule's own `prefer`
//! overrides `[allocation].prefer`. When no rule matches, `default_carrier` is used with rule
//! name `"default"`; without a default the order is not allocated.
//!
//! # Validation
//!
//! [`parse`] fails with a [`RulesError`] naming the 1-based line and the dotted key (such as
//! `allocation.rules[1].carriers`) of the first problem in the file: TOML syntax, unknown keys,
//! wrong types, missing required keys, carrier names not matching `[A-Z0-9_-]{1,16}`, duplicate
//! carrier or rule names, rules or `default_carrier` naming an undeclared carrier, rule names
//! empty or over 64 bytes, negative amounts, costs, days or weights, `min_weight_grams` above
//! `max_weight_grams`, `prefer` other than `cost`/`speed`, empty carrier lists, blank entries in
//! `blocked_receivers` or `regions`, and sizes over the limits ([`MAX_FILE_BYTES`],
//! [`MAX_CARRIERS`], [`MAX_RULES`], [`MAX_BLOCKED_RECEIVERS`], [`MAX_REGIONS_PER_RULE`]).

mod allocate;
mod check;
mod error;
mod limits;
mod locate;
mod model;
mod parse;
mod raw;
mod review;

pub use allocate::{parcel_weight_grams, Allocated};
pub use error::RulesError;
pub use limits::{
    MAX_BLOCKED_RECEIVERS, MAX_CARRIERS, MAX_FILE_BYTES, MAX_REGIONS_PER_RULE,
    MAX_ROUTES_PER_CARRIER, MAX_ROUTE_TEXT_CHARS, MAX_RULES, MAX_RULE_NAME_BYTES,
};
pub use model::{
    Allocation, AllocationRule, Carrier, CarrierRoute, Preference, Review, Sender, TenantRules,
    LABEL_STOCKS,
};
pub use parse::parse;
pub use review::{Hold, HoldReason, ReviewDecision};
