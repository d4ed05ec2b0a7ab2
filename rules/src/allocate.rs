//! Carrier allocation: the first matching rule picks among its carriers, else the default.

use surge_proto::v1::{Order, PaymentState};

use crate::{AllocationRule, Carrier, Preference, TenantRules};

/// The outcome of [`TenantRules::allocate`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Allocated {
    /// The chosen carrier's name.
    pub carrier: String,
    /// The matching rule's name, or `"default"` for the default carrier.
    pub rule: String,
}

/// The rule name reported when the default carrier is used.
const DEFAULT_RULE: &str = "default";

/// The parcel weight: the sum over lines of quantity × unit weight, with negative quantities and
/// weights counted as 0, saturating at `i64::MAX`.
pub fn parcel_weight_grams(order: &Order) -> i64 {
    order.lines.iter().fold(0i64, |sum, line| {
        sum.saturating_add(
            line.quantity
                .max(0)
                .saturating_mul(line.weight_grams.max(0)),
        )
    })
}

impl TenantRules {
    /// Picks the carrier for `order`: the first matching rule's best carrier, else the default
    /// carrier, else `None`. A rule whose carriers are all undeclared (possible only for rules
    /// built by hand, never for parsed ones) is skipped.
    pub fn allocate(&self, order: &Order) -> Option<Allocated> {
        let weight = parcel_weight_grams(order);
        let province = order.receiver.as_ref().map_or("", |r| r.province.as_str());
        let cod = order.payment_state() == PaymentState::Cod;

        for rule in &self.allocation.rules {
            if !matches(rule, province, weight, cod) {
                continue;
            }
            let prefer = rule.prefer.unwrap_or(self.allocation.prefer);
            if let Some(carrier) = self.pick(rule, prefer) {
                return Some(Allocated {
                    carrier: carrier.name.clone(),
                    rule: rule.name.clone(),
                });
            }
        }
        self.allocation
            .default_carrier
            .as_ref()
            .map(|carrier| Allocated {
                carrier: carrier.clone(),
                rule: DEFAULT_RULE.to_owned(),
            })
    }

    /// The rule's best declared carrier; `min_by_key` keeps the first of equal keys.
    fn pick(&self, rule: &AllocationRule, prefer: Preference) -> Option<&Carrier> {
        let candidates = rule.carriers.iter().filter_map(|name| self.carrier(name));
        match prefer {
            Preference::Cost => candidates.min_by_key(|c| c.cost_cents),
            Preference::Speed => candidates.min_by_key(|c| c.days),
        }
    }
}

/// Whether `region` (as the rules file names it) is `province` (as the order gives it): the same
/// text, or the same province-level division by its full or short name (广东 and 广东省).
fn same_region(region: &str, province: &str) -> bool {
    if region == province {
        return true;
    }
    let divisions = surge_divisions::Divisions::get();
    match (
        divisions.province_named(region),
        divisions.province_named(province),
    ) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

fn matches(rule: &AllocationRule, province: &str, weight: i64, cod: bool) -> bool {
    (rule.regions.is_empty() || rule.regions.iter().any(|r| same_region(r, province)))
        && rule.min_weight_grams.is_none_or(|min| weight >= min)
        && rule.max_weight_grams.is_none_or(|max| weight <= max)
        && rule.cod.is_none_or(|want| want == cod)
}
