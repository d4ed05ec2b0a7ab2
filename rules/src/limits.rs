//! The bounds a rules file must stay within (sizes and counts), checked while parsing.

/// The largest accepted rules file.
pub const MAX_FILE_BYTES: usize = 256 * 1024;
/// The most `[[carriers]]` a file may declare.
pub const MAX_CARRIERS: usize = 64;
/// The most `[[allocation.rules]]` a file may declare.
pub const MAX_RULES: usize = 256;
/// The most entries in `review.blocked_receivers`.
pub const MAX_BLOCKED_RECEIVERS: usize = 10_000;
/// The most `regions` of one allocation rule.
pub const MAX_REGIONS_PER_RULE: usize = 256;
/// The longest allocation rule name, in bytes.
pub const MAX_RULE_NAME_BYTES: usize = 64;
/// The most `[[carriers.routes]]` of one carrier.
pub const MAX_ROUTES_PER_CARRIER: usize = 4096;
/// The longest sorting code or destination text of a route, in characters.
pub const MAX_ROUTE_TEXT_CHARS: usize = 32;
/// The longest carrier name, in bytes.
pub(crate) const MAX_CARRIER_NAME_BYTES: usize = 16;
