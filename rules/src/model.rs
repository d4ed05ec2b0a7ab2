//! The rule types, as [`crate::parse`] produces them.

use surge_proto::v1::Address;

/// One tenant's review and allocation rules. The default approves every order and allocates
/// none.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct TenantRules {
    /// The merchant's return address, printed on labels.
    pub sender: Sender,
    /// When orders are held for manual review.
    pub review: Review,
    /// The carriers the tenant ships with, in file order.
    pub carriers: Vec<Carrier>,
    /// How an order's carrier is chosen.
    pub allocation: Allocation,
}

impl TenantRules {
    /// The declared carrier called `name`, if any.
    pub fn carrier(&self, name: &str) -> Option<&Carrier> {
        self.carriers.iter().find(|c| c.name == name)
    }
}

/// The `[sender]` section: the merchant's shipping address. Every field may be empty.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Sender {
    pub name: String,
    pub phone: String,
    pub province: String,
    pub city: String,
    pub district: String,
    pub street: String,
    pub postal_code: String,
}

impl Sender {
    /// The sender as a wire address in China (country `"CN"`).
    pub fn address(&self) -> Address {
        Address {
            name: self.name.clone(),
            phone: self.phone.clone(),
            country: "CN".to_owned(),
            province: self.province.clone(),
            city: self.city.clone(),
            district: self.district.clone(),
            street: self.street.clone(),
            postal_code: self.postal_code.clone(),
        }
    }
}

/// The `[review]` section. Every check is off by default.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Review {
    /// Hold orders whose payable amount exceeds this many cents.
    pub max_amount_cents: Option<i64>,
    /// Hold orders whose buyer left a (non-blank) remark.
    pub hold_on_remark: bool,
    /// Hold orders in payment state unpaid.
    pub hold_unpaid: bool,
    /// Hold orders whose receiver name, phone, province, city or street is blank.
    pub require_full_address: bool,
    /// Hold orders whose receiver phone or name equals one of these exactly.
    pub blocked_receivers: Vec<String>,
}

/// A `[[carriers]]` entry.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Carrier {
    /// `[A-Z0-9_-]{1,16}`, unique within the file.
    pub name: String,
    /// What one parcel costs the merchant, in cents.
    pub cost_cents: i64,
    /// Typical delivery time in days.
    pub days: u32,
    /// The label stock its printers hold: one of [`LABEL_STOCKS`] (default `4x6`).
    pub label: String,
    /// The carrier's own sorting codes (三段码) and destination texts (大头笔) by division,
    /// overriding those surge derives.
    pub routes: Vec<CarrierRoute>,
}

/// One `[[carriers.routes]]`: what the carrier prints for addresses in `division`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CarrierRoute {
    /// A GB/T 2260 code prefix: 2 digits (a province), 4 (a city) or 6 (a district).
    pub division: String,
    /// Empty: surge's own.
    pub sorting_code: String,
    /// Empty: surge's own.
    pub destination: String,
}

impl Carrier {
    /// The most specific route for an address in division `code` (six digits), if any.
    pub fn route_for(&self, code: u32) -> Option<&CarrierRoute> {
        let code = format!("{code:06}");
        self.routes
            .iter()
            .filter(|r| code.starts_with(&r.division))
            .max_by_key(|r| r.division.len())
    }
}

/// The label stocks a carrier's labels may be printed on: 4 x 6 in, and the Chinese e-waybill
/// (电子面单) sizes 100 x 180 mm and 76 x 130 mm.
pub const LABEL_STOCKS: [&str; 3] = ["4x6", "100x180", "76x130"];

/// The `[allocation]` section.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Allocation {
    /// The carrier used when no rule matches (rule name `"default"`).
    pub default_carrier: Option<String>,
    /// How a rule without its own `prefer` picks among its carriers.
    pub prefer: Preference,
    /// Tried in order; the first match wins.
    pub rules: Vec<AllocationRule>,
}

/// How a rule picks among its carriers; ties go to the carrier listed first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Preference {
    /// The lowest `cost_cents`.
    #[default]
    Cost,
    /// The fewest `days`.
    Speed,
}

/// An `[[allocation.rules]]` entry.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct AllocationRule {
    /// Unique within the file, 1 to 64 bytes; reported in [`crate::Allocated::rule`].
    pub name: String,
    /// Receiver provinces the rule applies to (exact match); empty means any.
    pub regions: Vec<String>,
    /// Inclusive lower bound on the parcel weight.
    pub min_weight_grams: Option<i64>,
    /// Inclusive upper bound on the parcel weight.
    pub max_weight_grams: Option<i64>,
    /// If set, the order's cash-on-delivery-ness must equal it.
    pub cod: Option<bool>,
    /// Candidate carriers, non-empty.
    pub carriers: Vec<String>,
    /// Overrides [`Allocation::prefer`] for this rule.
    pub prefer: Option<Preference>,
}
