//! Text shared by both renderers: cleaning, measuring, truncating and wrapping.
//!
//! Widths are in 1/1000 em. Printable ASCII is measured as the larger of the Adobe Helvetica /
//! Helvetica-Bold width and the label font's advance, so a line fits whether it is drawn with
//! the printer's ^A0 font (CG Triumvirate Bold Condensed, narrower than Helvetica), with
//! Helvetica in a PDF without a CJK font, or with the CJK font. Any other character is measured
//! with the CJK font's advance (of `?` when the font has no glyph for it, as that is what is
//! drawn), or as a full em when there is no CJK font. Lines break where Unicode's line breaking
//! algorithm (UAX #14) allows: after spaces, between ideographs, never before `，` or `。`.

use crate::font::Fonts;

/// What text is measured with: the label's fonts, if it has any, and the weight.
#[derive(Clone, Copy, Default)]
pub(crate) struct Metrics<'a> {
    pub(crate) fonts: Option<&'a Fonts>,
    pub(crate) bold: bool,
}

impl<'a> Metrics<'a> {
    pub(crate) fn new(fonts: Option<&'a Fonts>, bold: bool) -> Metrics<'a> {
        Metrics { fonts, bold }
    }

    /// Width of `c` in 1/1000 em.
    fn char_width(&self, c: char) -> u32 {
        let font = self.fonts.map(|f| f.face(self.bold));
        let own = font.map(|f| f.advance_milli(f.glyph_or_fallback(c)).ceil() as u32);
        match (c, own) {
            (' '..='~', own) => u32::from(WIDTHS[c as usize - 0x20]).max(own.unwrap_or(0)),
            (_, Some(own)) => own,
            (_, None) => OTHER_WIDTH,
        }
    }

    /// Width of `text` at font size `size`, in the same unit as `size` (rounded up).
    pub(crate) fn measure(&self, text: &str, size: u32) -> u32 {
        // In u64: a long text at a large size passes u32 (rules cap only the whole file).
        let em: u64 = text.chars().map(|c| u64::from(self.char_width(c))).sum();
        let width = (em * u64::from(size)).div_ceil(1000);
        u32::try_from(width).unwrap_or(u32::MAX)
    }

    /// `text` (already [`clean`]ed) cut so that it is at most `max_width` wide at `size`; a cut
    /// line ends in "..." (or is empty when not even that fits).
    pub(crate) fn fit(&self, text: &str, size: u32, max_width: u32) -> String {
        if self.measure(text, size) <= max_width {
            return text.to_owned();
        }
        let Some(budget) = max_width.checked_sub(self.measure(ELLIPSIS, size)) else {
            return String::new();
        };
        let mut used = 0;
        let mut out = String::new();
        for c in text.chars() {
            let w = self.measure(c.encode_utf8(&mut [0; 4]), size);
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

    /// Greedy wrap of `text` (already [`clean`]ed) into at most `max_lines` lines of at most
    /// `max_width`, broken where UAX #14 allows; a run wider than a line is broken anywhere, and
    /// the last line is [`Metrics::fit`] with "..." if text remains.
    pub(crate) fn wrap(
        &self,
        text: &str,
        size: u32,
        max_width: u32,
        max_lines: usize,
    ) -> Vec<String> {
        let mut lines = Vec::new();
        let mut rest = text;
        while !rest.is_empty() && lines.len() < max_lines {
            if lines.len() + 1 == max_lines || self.measure(rest, size) <= max_width {
                lines.push(self.fit(rest, size, max_width));
                break;
            }
            let (line, tail) = self.split_line(rest, size, max_width);
            lines.push(line.trim_end().to_owned());
            rest = tail.trim_start();
        }
        lines
    }

    /// Splits off the longest prefix that fits, preferring to end it at a break opportunity.
    fn split_line<'t>(&self, text: &'t str, size: u32, max_width: u32) -> (&'t str, &'t str) {
        let mut used = 0;
        let mut end = 0;
        for (i, c) in text.char_indices() {
            let w = self.measure(c.encode_utf8(&mut [0; 4]), size);
            if used + w > max_width {
                break;
            }
            used += w;
            end = i + c.len_utf8();
        }
        // The last opportunity within what fits (the text's own end is not one: it did not fit).
        let last_break = unicode_linebreak::linebreaks(text)
            .map(|(at, _)| at)
            .take_while(|&at| at <= end)
            .filter(|&at| at > 0 && at < text.len())
            .last();
        let cut = match last_break {
            Some(at) => at,
            // Not even one character fits: take one anyway so wrapping always makes progress.
            None if end == 0 => text.chars().next().map_or(0, char::len_utf8),
            None => end,
        };
        text.split_at(cut)
    }
}

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

/// "2.35 kg" for 2345 g: two decimals, rounded half away from zero.
pub(crate) fn weight_kg(grams: i64) -> String {
    let centi = (grams.unsigned_abs() + 5) / 10;
    let sign = if grams < 0 && centi > 0 { "-" } else { "" };
    format!("{sign}{}.{:02} kg", centi / 100, centi % 100)
}

/// True for the Han ideographs and CJK punctuation that mark a Chinese address.
fn is_cjk(c: char) -> bool {
    matches!(c, '\u{3000}'..='\u{303f}' | '\u{3400}'..='\u{4dbf}' | '\u{4e00}'..='\u{9fff}'
        | '\u{f900}'..='\u{faff}' | '\u{ff00}'..='\u{ffef}' | '\u{20000}'..='\u{3134f}')
}

/// One-line postal address. Chinese addresses go from the largest division to the street, as
/// they are written and as carriers sort them: "浙江省 杭州市 西湖区 文三路288号" (a municipality's
/// city, the same as its province, once); others street, district, city, "province postal code",
/// country.
pub(crate) fn address_line(a: &surge_proto::v1::Address) -> String {
    let chinese = [&a.province, &a.city, &a.district, &a.street]
        .iter()
        .any(|p| p.chars().any(is_cjk));
    if chinese {
        let mut parts: Vec<String> = Vec::new();
        for part in [&a.province, &a.city, &a.district, &a.street] {
            let part = clean(part);
            if !part.is_empty() && parts.last() != Some(&part) {
                parts.push(part);
            }
        }
        return parts.join(" ");
    }
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

    const PLAIN: Metrics<'static> = Metrics {
        fonts: None,
        bold: false,
    };

    #[test]
    fn measures_with_helvetica_metrics() {
        assert_eq!(PLAIN.measure("W", 1000), 944);
        assert_eq!(PLAIN.measure("ii", 100), 56);
        assert_eq!(PLAIN.measure("\u{e9}", 10), 10);
    }

    #[test]
    fn measures_chinese_with_the_font() {
        let fonts = crate::font::test_fonts();
        let m = Metrics::new(Some(&fonts), false);
        // Ideographs are one em wide in every CJK font.
        assert_eq!(m.measure("张三", 100), 200);
        // ASCII is never narrower than Helvetica, whatever the font.
        assert!(m.measure("W", 1000) >= 944);
        // A glyph the font lacks is measured as the `?` drawn for it.
        let question = fonts.regular.glyph('?').expect("the font has ?");
        let drawn = fonts.regular.advance_milli(question).ceil() as u32;
        assert_eq!(m.measure("\u{10fffd}", 1000), drawn);
    }

    #[test]
    fn cleans_control_characters_and_whitespace() {
        assert_eq!(clean("  a\tb\r\n\u{7}c  "), "a b c");
        assert_eq!(clean(""), "");
    }

    #[test]
    fn fit_cuts_with_ellipsis_within_width() {
        assert_eq!(PLAIN.fit("short", 30, 1000), "short");
        let long = "W".repeat(100);
        let cut = PLAIN.fit(&long, 30, 300);
        assert!(cut.ends_with("..."));
        assert!(PLAIN.measure(&cut, 30) <= 300, "{cut}");
        assert_eq!(PLAIN.fit("abc", 30, 5), "");
        assert_eq!(PLAIN.fit("abc", 30, 26), "...");
    }

    #[test]
    fn wrap_breaks_words_and_limits_lines() {
        let lines = PLAIN.wrap("one two three four five six", 10, 100, 2);
        assert_eq!(lines.len(), 2);
        assert!(
            lines.iter().all(|l| PLAIN.measure(l, 10) <= 100),
            "{lines:?}"
        );
        assert_eq!(PLAIN.wrap("a b", 10, 100, 3), vec!["a b"]);
        let long = PLAIN.wrap(&"x".repeat(200), 10, 100, 3);
        assert_eq!(long.len(), 3);
        assert!(long.iter().all(|l| PLAIN.measure(l, 10) <= 100), "{long:?}");
        assert!(PLAIN.wrap("", 10, 100, 3).is_empty());
    }

    #[test]
    fn mixed_chinese_latin_and_digits_break_where_allowed() {
        let fonts = crate::font::test_fonts();
        let m = Metrics::new(Some(&fonts), false);
        // Ten ideographs per line at size 10 in 100 units.
        let text = "浙江省杭州市西湖区文三路288号，近地铁2号线。收件人不在请放驿站";
        let lines = m.wrap(text, 10, 100, 4);
        assert!(lines.iter().all(|l| m.measure(l, 10) <= 100), "{lines:?}");
        // No line starts with closing punctuation, and "288" is never split.
        assert!(
            lines.iter().all(|l| !l.starts_with(['，', '。'])),
            "{lines:?}"
        );
        assert!(
            lines
                .iter()
                .all(|l| !l.starts_with("88") && !l.starts_with('8')),
            "{lines:?}"
        );
        assert_eq!(
            lines.concat(),
            text.replace(' ', ""),
            "nothing lost: {lines:?}"
        );
        // Latin words still break at spaces.
        let lines = m.wrap("Room 1203 Tower B 望京SOHO", 10, 80, 3);
        assert!(lines.iter().all(|l| m.measure(l, 10) <= 80), "{lines:?}");
        assert!(lines.iter().all(|l| !l.ends_with(' ')), "{lines:?}");
    }

    #[test]
    fn chinese_addresses_read_from_province_to_street() {
        let a = surge_proto::v1::Address {
            province: "浙江省".into(),
            city: "杭州市".into(),
            district: "西湖区".into(),
            street: "文三路 288 号".into(),
            postal_code: "310012".into(),
            ..Default::default()
        };
        assert_eq!(address_line(&a), "浙江省 杭州市 西湖区 文三路 288 号");
        let b = surge_proto::v1::Address {
            province: "上海市".into(),
            city: "上海市".into(),
            district: "浦东新区".into(),
            street: "世纪大道 100 号".into(),
            ..Default::default()
        };
        assert_eq!(address_line(&b), "上海市 浦东新区 世纪大道 100 号");
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
