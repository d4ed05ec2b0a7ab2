//! Mapping byte offsets in a rules file back to 1-based lines and dotted keys.

use std::ops::Range;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

/// The 1-based line holding byte `pos` of `text` (the last line when `pos` is past the end).
pub(crate) fn line_of(text: &str, pos: usize) -> usize {
    let pos = pos.min(text.len());
    text.as_bytes()[..pos]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Appends `key` to the dotted path `prefix`, quoting keys that are not bare.
pub(crate) fn join(prefix: &str, key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    let key = if bare {
        key.to_owned()
    } else {
        format!("{key:?}")
    };
    if prefix.is_empty() {
        key
    } else {
        format!("{prefix}.{key}")
    }
}

/// The dotted path (e.g. `allocation.rules[1].carriers`) of what an error `span` of a parsed
/// document points at: the value spanning exactly that, else the key whose name covers its
/// start, else the innermost value that does. Empty when nothing matches.
pub(crate) fn key_at(root: &DeTable<'_>, span: Range<usize>) -> String {
    let mut best = Best { span, found: None };
    best.table(root, "");
    best.found.map(|(path, _)| path).unwrap_or_default()
}

struct Best {
    span: Range<usize>,
    /// The best candidate so far, with its rank (lower is better; ties go to the deeper).
    found: Option<(String, (u8, usize))>,
}

impl Best {
    fn consider(&mut self, path: &str, span: Range<usize>, is_key: bool) {
        let rank = if !is_key && span == self.span {
            (0, 0)
        } else if !span.contains(&self.span.start) {
            return;
        } else if is_key {
            (1, 0)
        } else {
            (2, span.len())
        };
        if self.found.as_ref().is_none_or(|(_, best)| rank <= *best) {
            self.found = Some((path.to_owned(), rank));
        }
    }

    fn table(&mut self, table: &DeTable<'_>, prefix: &str) {
        for (key, value) in table.iter() {
            let path = join(prefix, key.get_ref());
            self.consider(&path, key.span(), true);
            self.value(value, &path);
        }
    }

    fn value(&mut self, value: &Spanned<DeValue<'_>>, path: &str) {
        self.consider(path, value.span(), false);
        match value.get_ref() {
            DeValue::Table(table) => self.table(table, path),
            DeValue::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.value(item, &format!("{path}[{i}]"));
                }
            }
            _ => {}
        }
    }
}

/// A best guess at the key near byte `pos` of a file that is not valid TOML, from the lines
/// up to it: the last table header, indexed for `[[arrays]]`, plus the key assigned on the
/// line of `pos` if any. Empty when nothing precedes.
pub(crate) fn key_near(text: &str, pos: usize) -> String {
    let pos = pos.min(text.len());
    let line_start = text[..pos].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[pos..].find('\n').map_or(text.len(), |i| pos + i);

    let mut section = String::new();
    let mut array_counts: Vec<(String, usize)> = Vec::new();
    for line in text[..line_end].lines() {
        if let Some(name) = array_header(line) {
            let index = match array_counts.iter_mut().find(|(n, _)| *n == name) {
                Some((_, count)) => {
                    *count += 1;
                    *count - 1
                }
                None => {
                    array_counts.push((name.clone(), 1));
                    0
                }
            };
            section = format!("{name}[{index}]");
        } else if let Some(name) = header(line) {
            section = name;
        }
    }

    let line = &text[line_start..line_end];
    if line.trim_start().starts_with('[') {
        return section;
    }
    match line.split_once('=') {
        Some((key, _)) if !key.trim().is_empty() && !key.trim_start().starts_with('#') => {
            key.split('.').fold(section, |path, part| {
                join(&path, part.trim().trim_matches(|c| c == '"' || c == '\''))
            })
        }
        _ => section,
    }
}

/// The name in a `[table]` header line.
fn header(line: &str) -> Option<String> {
    let line = line.trim();
    let inner = line.strip_prefix('[')?;
    if inner.starts_with('[') {
        return None;
    }
    // Lenient about a missing `]`: the header may be what failed to parse.
    let name = inner.split(']').next().unwrap_or_default();
    Some(normalize(name))
}

/// The name in an `[[array.of.tables]]` header line.
fn array_header(line: &str) -> Option<String> {
    let inner = line.trim().strip_prefix("[[")?;
    let name = inner.split(']').next().unwrap_or_default();
    Some(normalize(name))
}

fn normalize(name: &str) -> String {
    name.split('.').map(str::trim).collect::<Vec<_>>().join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_count_from_one() {
        let text = "a = 1\nb = 2\n";
        for (pos, line) in [(0, 1), (5, 1), (6, 2), (11, 2), (12, 3), (99, 3)] {
            assert_eq!(line_of(text, pos), line, "pos {pos}");
        }
    }

    #[test]
    fn key_near_follows_headers() {
        let text = "[review]\nhold_unpaid = \n[[carriers]]\nname = 1\n[[carriers]]\nname = \"x\n";
        let cases = [
            ("hold_unpaid", "review.hold_unpaid"),
            ("name = \"x", "carriers[1].name"),
            ("name = 1", "carriers[0].name"),
            ("[[carriers]]\nname = \"", "carriers[1]"),
            ("[review]", "review"),
        ];
        for (needle, want) in cases {
            let pos = text.rfind(needle).expect("needle") + 1;
            assert_eq!(key_near(text, pos), want, "{needle}");
        }
        assert_eq!(key_near("= 1", 0), "");
    }
}
