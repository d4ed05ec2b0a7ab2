//! The shape of a rules file: serde mirrors of the model with unknown keys denied and the
//! values later checks report on kept [`Spanned`].

use serde::Deserialize;
use toml::Spanned;

use crate::Preference;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a rules document")]
pub(crate) struct RawRules {
    #[serde(default)]
    pub(crate) sender: RawSender,
    #[serde(default)]
    pub(crate) review: RawReview,
    #[serde(default)]
    pub(crate) carriers: Vec<Spanned<RawCarrier>>,
    #[serde(default)]
    pub(crate) allocation: RawAllocation,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawSender {
    pub(crate) name: String,
    pub(crate) phone: String,
    pub(crate) province: String,
    pub(crate) city: String,
    pub(crate) district: String,
    pub(crate) street: String,
    pub(crate) postal_code: String,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawReview {
    pub(crate) max_amount_cents: Option<Spanned<i64>>,
    pub(crate) hold_on_remark: bool,
    pub(crate) hold_unpaid: bool,
    pub(crate) require_full_address: bool,
    pub(crate) blocked_receivers: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawCarrier {
    pub(crate) name: Spanned<String>,
    pub(crate) cost_cents: Spanned<i64>,
    pub(crate) days: Spanned<i64>,
    #[serde(default)]
    pub(crate) label: Option<Spanned<String>>,
    #[serde(default)]
    pub(crate) routes: Vec<Spanned<RawRoute>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawRoute {
    pub(crate) division: Spanned<String>,
    #[serde(default)]
    pub(crate) sorting_code: Option<Spanned<String>>,
    #[serde(default)]
    pub(crate) destination: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawAllocation {
    pub(crate) default_carrier: Option<Spanned<String>>,
    pub(crate) prefer: Option<RawPreference>,
    pub(crate) rules: Vec<Spanned<RawRule>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawRule {
    pub(crate) name: Spanned<String>,
    #[serde(default)]
    pub(crate) regions: Vec<Spanned<String>>,
    pub(crate) min_weight_grams: Option<Spanned<i64>>,
    pub(crate) max_weight_grams: Option<Spanned<i64>>,
    pub(crate) cod: Option<bool>,
    pub(crate) carriers: Spanned<Vec<Spanned<String>>>,
    pub(crate) prefer: Option<RawPreference>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
pub(crate) enum RawPreference {
    Cost,
    Speed,
}

impl From<RawPreference> for Preference {
    fn from(raw: RawPreference) -> Self {
        match raw {
            RawPreference::Cost => Self::Cost,
            RawPreference::Speed => Self::Speed,
        }
    }
}
