//! Text shared by both renderers: cleaning, measuring, truncating and wrapping.
//!
//! Widths are measured with the Adobe Helvetica / Helvetica-Bold metrics (the larger of the two
//! for every printable ASCII character, in 1/1000 em). Any other character counts as a full em,
//! which is wider than every glyph either renderer can substitute for it. The PDF draws with
//! exactly these fonts, so a fitted line never leaves its box there; the printer's ^A0 font (CG
//! Triumvirate Bold Condensed) is narrower than Helvetica at the same size, so the bound holds
//! on paper too.

/// Width of `' '..='~'` in 1/1000 em: max(Helvetica, Helvetica-Bold).
const WIDTHS: [u16; 95] = [
    278, 333, 474, 556, 556, 889, 722, 278, 333, 333, 389, 584, 278, 333, 278,
    278, // ' '..'/'
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 333, 333, 584, 584, 584,
    611, // '0'..'?'
    1015, 722, 722, 722, 722, 667, 611, 778, 722, 278, 556, 722, 611, 833, 722,
    778, // '@'..'O'
    667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 333, 278, 333, 333,
    556, // 'P'..'_'
    333, 556, 611, 556, 611, 556, 333, 611, 611, 278, 278, 556, 278, 889, 611,
    611, // '`'..'o'
    611, 611, 389, 556, 333, 611, 556, 778, 556, 556, 500, 389, 280, 389, 333, // 'p'..'~'
];

/// Width assumed for anything outside printable ASCII.
const OTHER_WIDTH: u32 = 1000;

/// Appended to a line that had to be cut.
const ELLIPSIS: &str = "...";

fn char_width(c: char) -> u32 {
    match c {
        ' '..='~' => u32::from(WIDTHS[c as usize - 0x20]),
        _ => OTHER_WIDTH,
    }
}

/// Width of `text` at font size `size`, in the same unit as `size` (rounded up).
pub(crate) fn measure(text: &str, size: u32) -> u32 {
    // In u64: a long text at a large size passes u32 (rules cap only the whole file).
    let em: u64 = text.chars().map(|c| u64::from(char_width(c))).sum();
    let width = (em * u64::from(size)).div_ceil(1000);
    u32::try_from(width).unwrap_or(u32::MAX)
}

/// Control characters become spaces, runs of whitespace collapse to one space, ends are trimmed.
pub(crate) fn clean(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for word in text.split(|c: char| c.is_whitespace() || c.is_control()) {
        if word.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// `text` (already [`clean`]ed) cut so that it is at most `max_width` wide at `size`; a cut line
/// ends in "..." (or is empty when not even that fits).
pub(crate) fn fit(text: &str, size: u32, max_width: u32) -> String {
    if measure(text, size) <= max_width {
        return text.to_owned();
    }
    let Some(budget) = max_width.checked_sub(measure(ELLIPSIS, size)) else {
        return String::new();
    };
    let mut used = 0;
    let mut out = String::new();
    for c in text.chars() {
        let w = measure(c.encode_utf8(&mut [0; 4]), size);
        if used + w > budget {
            break;
        }
        used += w;
        out.push(c);
    }
    let mut out = out.trim_end().to_owned();
    out.push_str(ELLIPSIS);
    out
}

/// Greedy word wrap of `text` (already [`clean`]ed) into at most `max_lines` lines of at most
/// `max_width`; words wider than a line are broken, and the last line is [`fit`] with "..." if
/// text remains.
pub(crate) fn wrap(text: &str, size: u32, max_width: u32, max_lines: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut rest = text;
    while !rest.is_empty() && lines.len() < max_lines {
        if lines.len() + 1 == max_lines || measure(rest, size) <= max_width {
            lines.push(fit(rest, size, max_width));
            break;
        }
        let (line, tail) = split_line(rest, size, max_width);
        lines.push(line.trim_end().to_owned());
        rest = tail.trim_start();
    }
    lines
}

/// Splits off the longest prefix that fits, preferring to break after a space.
fn split_line(text: &str, size: u32, max_width: u32) -> (&str, &str) {
    let mut used = 0;
    let mut last_space = None;
    let mut end = 0;
    for (i, c) in text.char_indices() {
        let w = measure(c.encode_utf8(&mut [0; 4]), size);
        if used + w > max_width {
            break;
        }
        used += w;
        end = i + c.len_utf8();
        if c == ' ' {
            last_space = Some(i);
        }
    }
    let cut = match last_space {
        Some(i) if i > 0 && end < text.len() => i,
        // Not even one character fits: take one anyway so wrapping always makes progress.
        _ if end == 0 => text.chars().next().map_or(0, char::len_utf8),
        _ => end,
    };
    text.split_at(cut)
}

/// "2.35 kg" for 2345 g: two decimals, rounded half away from zero.
pub(crate) fn weight_kg(grams: i64) -> String {
    let centi = (grams.unsigned_abs() + 5) / 10;
    let sign = if grams < 0 && centi > 0 { "-" } else { "" };
    format!("{sign}{}.{:02} kg", centi / 100, centi % 100)
}

/// One-line postal address: street, district, city, "province postal code", country.
pub(crate) fn address_line(a: &surge_proto::v1::Address) -> String {
    let region = clean(&format!("{} {}", a.province, a.postal_code));
    let parts = [&a.street, &a.district, &a.city, &region, &a.country];
    let parts: Vec<String> = parts
        .iter()
        .map(|p| clean(p))
        .filter(|p| !p.is_empty())
        .collect();
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_with_helvetica_metrics() {
        assert_eq!(measure("W", 1000), 944);
        assert_eq!(measure("ii", 100), 56);
        assert_eq!(measure("\u{e9}", 10), 10);
    }

    #[test]
    fn cleans_control_characters_and_whitespace() {
        assert_eq!(clean("  a\tb\r\n\u{7}c  "), "a b c");
        assert_eq!(clean(""), "");
    }

    #[test]
    fn fit_cuts_with_ellipsis_within_width() {
        assert_eq!(fit("short", 30, 1000), "short");
        let long = "W".repeat(100);
        let cut = fit(&long, 30, 300);
        assert!(cut.ends_with("..."));
        assert!(measure(&cut, 30) <= 300, "{cut}");
        assert_eq!(fit("abc", 30, 5), "");
        assert_eq!(fit("abc", 30, 26), "...");
    }

    #[test]
    fn wrap_breaks_words_and_limits_lines() {
        let lines = wrap("one two three four five six", 10, 100, 2);
        assert_eq!(lines.len(), 2);
        assert!(lines.iter().all(|l| measure(l, 10) <= 100), "{lines:?}");
        assert_eq!(wrap("a b", 10, 100, 3), vec!["a b"]);
        let long = wrap(&"x".repeat(200), 10, 100, 3);
        assert_eq!(long.len(), 3);
        assert!(long.iter().all(|l| measure(l, 10) <= 100), "{long:?}");
        assert!(wrap("", 10, 100, 3).is_empty());
    }

    #[test]
    fn weights_are_kilograms_with_two_decimals() {
        assert_eq!(weight_kg(2345), "2.35 kg");
        assert_eq!(weight_kg(2350), "2.35 kg");
        assert_eq!(weight_kg(0), "0.00 kg");
        assert_eq!(weight_kg(4), "0.00 kg");
        assert_eq!(weight_kg(-1500), "-1.50 kg");
        assert_eq!(weight_kg(i64::MIN), "-9223372036854775.81 kg");
    }
}
