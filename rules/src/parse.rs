//! TOML text → [`TenantRules`], with every problem reported as a [`RulesError`] naming its line
//! and dotted key.
//!
//! Parsing runs in three passes: the TOML syntax (into a spanned document), the shape (serde
//! into the `raw` mirrors of the model, unknown keys denied) and the semantics (`check`: names,
//! references, ranges, limits), which reports the earliest problem in the file.

use serde::Deserialize;
use toml::de::{DeTable, Deserializer};

use crate::check::Check;
use crate::locate::{join, key_at, key_near, line_of};
use crate::raw::RawRules;
use crate::TenantRules;

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
/// The longest carrier name, in bytes.
pub(crate) const MAX_CARRIER_NAME_BYTES: usize = 16;

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

/// Parses and validates a tenant's rules file.
pub fn parse(text: &str) -> Result<TenantRules, RulesError> {
    if text.len() > MAX_FILE_BYTES {
        return Err(RulesError {
            line: 1,
            key: String::new(),
            message: format!(
                "file is {} bytes, more than the limit of {MAX_FILE_BYTES} bytes (256 KiB)",
                text.len()
            ),
        });
    }
    let doc = DeTable::parse(text).map_err(|e| {
        let pos = e.span().map_or(0, |s| s.start);
        RulesError {
            line: line_of(text, pos),
            key: key_near(text, pos),
            message: e.message().trim().to_owned(),
        }
    })?;
    let raw = RawRules::deserialize(Deserializer::from(doc.clone())).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        let mut key = key_at(doc.get_ref(), span.clone());
        let message = e.message().trim().to_owned();
        if let Some(missing) = message
            .strip_prefix("missing field `")
            .and_then(|rest| rest.split_once('`'))
        {
            key = join(&key, missing.0);
        }
        RulesError {
            line: line_of(text, span.start),
            key,
            message,
        }
    })?;
    let mut check = Check {
        text,
        errors: Vec::new(),
    };
    let rules = check.rules(raw);
    // The earliest problem in the file; `min_by_key` keeps the first found among equals.
    match check.errors.into_iter().min_by_key(|e| e.line) {
        Some(error) => Err(error),
        None => Ok(rules),
    }
}
