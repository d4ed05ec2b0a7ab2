//! The one error a rules file is rejected with, naming its line and dotted key.

/// Why a rules file was rejected.
///
/// A wrong type inside a list names the entry (`review.blocked_receivers[1]`), but a checked
/// entry of a string list (an unknown carrier in a rule's `carriers`, a blank blocked receiver,
/// one entry past a limit) names the list's key at the entry's line. A missing required key is
/// reported at the line of its table, under the missing key's path. When a file has several
/// semantic problems the one on the earliest line is reported.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, key `{key}`: {message}")]
pub struct RulesError {
    /// 1-based line of the offending value (or key).
    pub line: usize,
    /// Dotted path such as `allocation.rules[1].carriers` or `review.max_amount_cents`; for a
    /// syntax error the nearest key, or empty.
    pub key: String,
    pub message: String,
}
