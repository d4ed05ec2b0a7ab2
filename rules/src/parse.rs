//! TOML text → [`TenantRules`], with every problem reported as a [`RulesError`] naming its line
//! and dotted key.
//!
//! Parsing runs in three passes: the TOML syntax (into a spanned document), the shape (serde
//! into the `raw` mirrors of the model, unknown keys denied) and the semantics (`check`: names,
//! references, ranges, limits), which reports the earliest problem in the file.

use serde::Deserialize;
use toml::de::{DeTable, Deserializer};

use crate::check::Check;
use crate::error::RulesError;
use crate::limits::MAX_FILE_BYTES;
use crate::locate::{join, key_at, key_near, line_of};
use crate::raw::RawRules;
use crate::TenantRules;

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
