//! The semantic pass over a well-shaped rules file: names, references, ranges and limits.

use std::collections::HashMap;
use std::ops::Range;

use toml::Spanned;

use crate::error::RulesError;
use crate::limits::{
    MAX_BLOCKED_RECEIVERS, MAX_CARRIERS, MAX_CARRIER_NAME_BYTES, MAX_REGIONS_PER_RULE,
    MAX_ROUTES_PER_CARRIER, MAX_ROUTE_TEXT_CHARS, MAX_RULES, MAX_RULE_NAME_BYTES,
};
use crate::locate::line_of;
use crate::raw::{RawAllocation, RawCarrier, RawReview, RawRoute, RawRules};
use crate::{
    Allocation, AllocationRule, Carrier, CarrierRoute, Preference, Review, Sender, TenantRules,
    LABEL_STOCKS,
};

/// The semantic pass: converts the raw shapes while collecting every problem.
pub(crate) struct Check<'a> {
    pub(crate) text: &'a str,
    pub(crate) errors: Vec<RulesError>,
}

impl Check<'_> {
    fn fail(&mut self, span: Range<usize>, key: impl Into<String>, message: impl Into<String>) {
        self.errors.push(RulesError {
            line: line_of(self.text, span.start),
            key: key.into(),
            message: message.into(),
        });
    }

    /// Flags a count over `limit` at the first entry past it.
    fn limit<T>(&mut self, items: &[Spanned<T>], limit: usize, key: &str, what: &str) {
        if let Some(extra) = items.get(limit) {
            self.fail(
                extra.span(),
                key,
                format!("more than {limit} {what} ({} given)", items.len()),
            );
        }
    }

    /// Flags a negative value of `key`.
    fn non_negative(&mut self, value: &Spanned<i64>, key: &str) -> i64 {
        let v = *value.get_ref();
        if v < 0 {
            self.fail(value.span(), key, format!("must not be negative, got {v}"));
        }
        v
    }

    pub(crate) fn rules(&mut self, raw: RawRules) -> TenantRules {
        let s = raw.sender;
        let sender = Sender {
            name: s.name,
            phone: s.phone,
            province: s.province,
            city: s.city,
            district: s.district,
            street: s.street,
            postal_code: s.postal_code,
        };
        let review = self.review(raw.review);
        let carriers = self.carriers(raw.carriers);
        let allocation = self.allocation(raw.allocation, &carriers);
        TenantRules {
            sender,
            review,
            carriers,
            allocation,
        }
    }

    fn review(&mut self, raw: RawReview) -> Review {
        let max_amount_cents = raw
            .max_amount_cents
            .map(|max| self.non_negative(&max, "review.max_amount_cents"));
        let key = "review.blocked_receivers";
        self.limit(
            &raw.blocked_receivers,
            MAX_BLOCKED_RECEIVERS,
            key,
            "entries",
        );
        for entry in &raw.blocked_receivers {
            if entry.get_ref().trim().is_empty() {
                self.fail(entry.span(), key, "entries must not be blank");
            }
        }
        Review {
            max_amount_cents,
            hold_on_remark: raw.hold_on_remark,
            hold_unpaid: raw.hold_unpaid,
            require_full_address: raw.require_full_address,
            blocked_receivers: raw
                .blocked_receivers
                .into_iter()
                .map(Spanned::into_inner)
                .collect(),
        }
    }

    fn carriers(&mut self, raw: Vec<Spanned<RawCarrier>>) -> Vec<Carrier> {
        self.limit(&raw, MAX_CARRIERS, "carriers", "carriers");
        let mut seen: HashMap<String, usize> = HashMap::new();
        let mut carriers = Vec::with_capacity(raw.len());
        for (i, carrier) in raw.into_iter().enumerate() {
            let carrier = carrier.into_inner();
            let key = |field: &str| format!("carriers[{i}].{field}");
            let name = carrier.name.get_ref();
            let line = line_of(self.text, carrier.name.span().start);
            if !valid_carrier_name(name) {
                self.fail(
                    carrier.name.span(),
                    key("name"),
                    format!("carrier name {name:?} must match [A-Z0-9_-]{{1,16}}"),
                );
            } else if let Some(first) = seen.get(name) {
                self.fail(
                    carrier.name.span(),
                    key("name"),
                    format!("duplicate carrier `{name}` (first declared on line {first})"),
                );
            } else {
                seen.insert(name.clone(), line);
            }
            let cost_cents = self.non_negative(&carrier.cost_cents, &key("cost_cents"));
            let days = *carrier.days.get_ref();
            let days = u32::try_from(days).unwrap_or_else(|_| {
                self.fail(
                    carrier.days.span(),
                    key("days"),
                    format!("must be between 0 and {}, got {days}", u32::MAX),
                );
                0
            });
            let label = match carrier.label {
                None => LABEL_STOCKS[0].to_owned(),
                Some(label) if LABEL_STOCKS.contains(&label.get_ref().as_str()) => {
                    label.into_inner()
                }
                Some(label) => {
                    self.fail(
                        label.span(),
                        key("label"),
                        format!(
                            "label stock {:?} is not one of {}",
                            label.get_ref(),
                            LABEL_STOCKS.join(", ")
                        ),
                    );
                    String::new()
                }
            };
            let routes = self.routes(carrier.routes, i);
            carriers.push(Carrier {
                name: carrier.name.into_inner(),
                cost_cents,
                days,
                label,
                routes,
            });
        }
        carriers
    }

    /// `carriers[i].routes`: GB/T 2260 prefixes of divisions that exist, each once, with a
    /// sorting code or a destination text of at most [`MAX_ROUTE_TEXT_CHARS`].
    fn routes(&mut self, raw: Vec<Spanned<RawRoute>>, i: usize) -> Vec<CarrierRoute> {
        let key = format!("carriers[{i}].routes");
        self.limit(&raw, MAX_ROUTES_PER_CARRIER, &key, "routes");
        let mut seen: HashMap<String, ()> = HashMap::new();
        let mut out = Vec::with_capacity(raw.len());
        for (j, route) in raw.into_iter().enumerate() {
            let route = route.into_inner();
            let key = |field: &str| format!("carriers[{i}].routes[{j}].{field}");
            let division = route.division.get_ref().clone();
            let digits = division.bytes().all(|b| b.is_ascii_digit());
            if !digits || ![2, 4, 6].contains(&division.len()) {
                self.fail(
                    route.division.span(),
                    key("division"),
                    format!("{division:?} is not a GB/T 2260 code of 2, 4 or 6 digits"),
                );
            } else if !surge_divisions::Divisions::get().has_prefix(&division) {
                self.fail(
                    route.division.span(),
                    key("division"),
                    format!("no division's code starts with {division}"),
                );
            } else if seen.insert(division.clone(), ()).is_some() {
                self.fail(
                    route.division.span(),
                    key("division"),
                    format!("a second route for {division}"),
                );
            }
            let mut text = |field: &str, value: Option<Spanned<String>>| match value {
                None => String::new(),
                Some(v) if v.get_ref().chars().count() > MAX_ROUTE_TEXT_CHARS => {
                    self.fail(
                        v.span(),
                        key(field),
                        format!("at most {MAX_ROUTE_TEXT_CHARS} characters"),
                    );
                    String::new()
                }
                Some(v) => v.into_inner().trim().to_owned(),
            };
            let sorting_code = text("sorting_code", route.sorting_code);
            let destination = text("destination", route.destination);
            if sorting_code.is_empty() && destination.is_empty() {
                self.fail(
                    route.division.span(),
                    key("division"),
                    "a route needs a sorting_code, a destination or both",
                );
            }
            out.push(CarrierRoute {
                division,
                sorting_code,
                destination,
            });
        }
        out
    }

    fn allocation(&mut self, raw: RawAllocation, carriers: &[Carrier]) -> Allocation {
        let declared = |name: &str| carriers.iter().any(|c| c.name == name);
        if let Some(default) = &raw.default_carrier {
            if !declared(default.get_ref()) {
                self.fail(
                    default.span(),
                    "allocation.default_carrier",
                    format!("unknown carrier `{}`", default.get_ref()),
                );
            }
        }
        self.limit(&raw.rules, MAX_RULES, "allocation.rules", "rules");
        let mut seen: HashMap<String, usize> = HashMap::new();
        let mut rules = Vec::with_capacity(raw.rules.len());
        for (i, rule) in raw.rules.into_iter().enumerate() {
            let rule = rule.into_inner();
            let key = |field: &str| format!("allocation.rules[{i}].{field}");

            let name = rule.name.get_ref();
            let line = line_of(self.text, rule.name.span().start);
            if name.is_empty() || name.len() > MAX_RULE_NAME_BYTES {
                self.fail(
                    rule.name.span(),
                    key("name"),
                    format!(
                        "rule name must be 1 to {MAX_RULE_NAME_BYTES} bytes, got {}",
                        name.len()
                    ),
                );
            } else if let Some(first) = seen.get(name) {
                self.fail(
                    rule.name.span(),
                    key("name"),
                    format!("duplicate rule name `{name}` (first used on line {first})"),
                );
            } else {
                seen.insert(name.clone(), line);
            }

            self.limit(
                &rule.regions,
                MAX_REGIONS_PER_RULE,
                &key("regions"),
                "regions",
            );
            for region in &rule.regions {
                if region.get_ref().trim().is_empty() {
                    self.fail(region.span(), key("regions"), "regions must not be blank");
                }
            }

            let min = rule
                .min_weight_grams
                .as_ref()
                .map(|min| self.non_negative(min, &key("min_weight_grams")));
            let max = rule
                .max_weight_grams
                .as_ref()
                .map(|max| self.non_negative(max, &key("max_weight_grams")));
            if let (Some(min_value), Some(max_value), Some(min_span)) =
                (min, max, rule.min_weight_grams.as_ref().map(Spanned::span))
            {
                if min_value > max_value {
                    self.fail(
                        min_span,
                        key("min_weight_grams"),
                        format!(
                            "min_weight_grams {min_value} is greater than max_weight_grams {max_value}"
                        ),
                    );
                }
            }

            if rule.carriers.get_ref().is_empty() {
                self.fail(
                    rule.carriers.span(),
                    key("carriers"),
                    "a rule needs at least one carrier",
                );
            }
            for carrier in rule.carriers.get_ref() {
                if !declared(carrier.get_ref()) {
                    self.fail(
                        carrier.span(),
                        key("carriers"),
                        format!("unknown carrier `{}`", carrier.get_ref()),
                    );
                }
            }

            rules.push(AllocationRule {
                name: rule.name.into_inner(),
                regions: rule.regions.into_iter().map(Spanned::into_inner).collect(),
                min_weight_grams: min,
                max_weight_grams: max,
                cod: rule.cod,
                carriers: rule
                    .carriers
                    .into_inner()
                    .into_iter()
                    .map(Spanned::into_inner)
                    .collect(),
                prefer: rule.prefer.map(Preference::from),
            });
        }
        Allocation {
            default_carrier: raw.default_carrier.map(Spanned::into_inner),
            prefer: raw.prefer.map(Preference::from).unwrap_or_default(),
            rules,
        }
    }
}

/// `[A-Z0-9_-]{1,16}`.
fn valid_carrier_name(name: &str) -> bool {
    (1..=MAX_CARRIER_NAME_BYTES).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}
