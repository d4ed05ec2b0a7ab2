//! The renderer a process keeps: the fonts labels are drawn with and how ZPL carries text the
//! printer may lack.

use std::sync::Arc;

use crate::font::Fonts;
use crate::gf::GlyphCache;
use crate::Label;

/// How ZPL carries text outside printable ASCII.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ZplText {
    /// Drawn by surge with the CJK font as a `^GF` graphic: prints on any printer.
    #[default]
    Graphic,
    /// Sent as text in the font stored on the printer under this name (`^CW`), e.g.
    /// `E:SIMSUN.TTF`: smaller labels, but the font must have been downloaded to every printer.
    PrinterFont(String),
}

/// Why a `zpl_text` setting was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "zpl_text {0:?}: expected \"graphic\" or \"printer:D:NAME.TTF\" (drive R, E, B or A; a name \
     of 1 to 16 letters, digits, _ or -; extension TTF, TTE or FNT)"
)]
pub struct ZplTextError(pub String);

impl std::str::FromStr for ZplText {
    type Err = ZplTextError;

    fn from_str(s: &str) -> Result<ZplText, ZplTextError> {
        let refuse = || ZplTextError(s.to_owned());
        if s == "graphic" {
            return Ok(ZplText::Graphic);
        }
        let name = s.strip_prefix("printer:").ok_or_else(refuse)?;
        let (drive, file) = name.split_once(':').ok_or_else(refuse)?;
        let (stem, ext) = file.rsplit_once('.').ok_or_else(refuse)?;
        let drive_ok = matches!(drive, "R" | "E" | "B" | "A");
        let stem_ok = (1..=16).contains(&stem.len())
            && stem
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        let ext_ok = ["TTF", "TTE", "FNT"]
            .iter()
            .any(|e| ext.eq_ignore_ascii_case(e));
        if drive_ok && stem_ok && ext_ok {
            Ok(ZplText::PrinterFont(name.to_owned()))
        } else {
            Err(refuse())
        }
    }
}

/// Renders labels as ZPL and PDF. Both are pure functions of the label and the renderer's
/// fonts, so a reprint is byte-identical except for its "REPRINT n" bar.
#[derive(Debug, Clone, Default)]
pub struct Renderer {
    fonts: Option<Fonts>,
    zpl_text: ZplText,
    glyphs: Arc<GlyphCache>,
}

impl Renderer {
    /// A renderer drawing non-ASCII text with `fonts`; without fonts such text prints only on
    /// printers that have the glyphs, and shows as `?` in the PDF.
    pub fn new(fonts: Option<Fonts>, zpl_text: ZplText) -> Renderer {
        Renderer {
            fonts,
            zpl_text,
            glyphs: Arc::default(),
        }
    }

    pub(crate) fn glyphs(&self) -> &GlyphCache {
        &self.glyphs
    }

    pub fn fonts(&self) -> Option<&Fonts> {
        self.fonts.as_ref()
    }

    pub fn zpl_text(&self) -> &ZplText {
        &self.zpl_text
    }

    /// The label as ZPL II: see [`crate::zpl`'s layout](crate).
    pub fn zpl(&self, label: &Label) -> String {
        crate::zpl::zpl(self, label)
    }

    /// The label as a one-page PDF.
    pub fn pdf(&self, label: &Label) -> Vec<u8> {
        crate::pdf::pdf(self.fonts(), label)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zpl_text_settings_parse_or_name_the_field() {
        assert_eq!("graphic".parse(), Ok(ZplText::Graphic));
        assert_eq!(
            "printer:E:NOTOSC.TTF".parse(),
            Ok(ZplText::PrinterFont("E:NOTOSC.TTF".into()))
        );
        for bad in [
            "",
            "Graphic",
            "printer:",
            "printer:Q:X.TTF",
            "printer:E:.TTF",
            "printer:E:A^B.TTF",
            "printer:E:X.OTF",
        ] {
            let err = bad.parse::<ZplText>().expect_err(bad);
            assert!(err.to_string().starts_with("zpl_text"), "{err}");
        }
    }
}
