//! A CJK font subset embedded in the PDF: a Type 0 font with Identity-H encoding over a CID
//! font (CFF outlines as `FontFile3`/`CIDFontType0C`, TrueType as `FontFile2`), the glyph
//! widths from the font, and a ToUnicode map so the text can be searched and copied.

use std::collections::BTreeMap;

use pdf_writer::types::{CidFontType, FontFlags, SystemInfo, UnicodeCmap};
use pdf_writer::{Finish, Name, Pdf, Rect, Ref, Str};
use subsetter::GlyphRemapper;

use crate::font::Font;

const IDENTITY: SystemInfo<'static> = SystemInfo {
    registry: Str(b"Adobe"),
    ordering: Str(b"Identity"),
    supplement: 0,
};

/// The glyphs one page uses from one font, numbered as they are in the subset.
pub(crate) struct Subset<'f> {
    font: &'f Font,
    remapper: GlyphRemapper,
    /// Subset glyph id to the character it was first used for.
    unicode: BTreeMap<u16, char>,
}

impl<'f> Subset<'f> {
    pub(crate) fn new(font: &'f Font) -> Subset<'f> {
        let mut remapper = GlyphRemapper::new();
        remapper.remap(0); // .notdef stays glyph 0
        Subset {
            font,
            remapper,
            unicode: BTreeMap::new(),
        }
    }

    /// `text` as the two-byte codes (subset glyph ids) a content stream shows.
    pub(crate) fn encode(&mut self, text: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(text.len() * 2);
        for c in text.chars() {
            let glyph = self.font.glyph_or_fallback(c);
            let cid = self.remapper.remap(glyph.0);
            self.unicode.entry(cid).or_insert(c);
            out.extend(cid.to_be_bytes());
        }
        out
    }

    /// A subset tag (six capital letters, as PDF requires for subset fonts) that depends only
    /// on the glyphs kept.
    fn tag(&self) -> String {
        let mut hasher = fnv::FnvHasher::default();
        for gid in self.remapper.remapped_gids() {
            std::hash::Hasher::write_u16(&mut hasher, gid);
        }
        let hash = std::hash::Hasher::finish(&hasher);
        (0..6)
            .map(|i| char::from(b'A' + ((hash >> (i * 5)) % 26) as u8))
            .collect()
    }

    /// Writes the font objects, the Type 0 font at `type0` and the others from `next` on;
    /// returns the next free id. `None` when the font cannot be subset (it was checked at load).
    pub(crate) fn write(&self, pdf: &mut Pdf, type0: Ref, next: &mut i32) -> Option<()> {
        let mut alloc = || {
            let r = Ref::new(*next);
            *next += 1;
            r
        };
        let (cid, descriptor, file, cmap) = (alloc(), alloc(), alloc(), alloc());
        let font = self.font;
        let subset = subsetter::subset(font.data(), font.index(), &self.remapper).ok()?;
        let name = format!("{}+{}", self.tag(), font.postscript_name);
        let scale = 1000.0 / font.units_per_em;

        pdf.type0_font(type0)
            .base_font(Name(name.as_bytes()))
            .encoding_predefined(Name(b"Identity-H"))
            .descendant_font(cid)
            .to_unicode(cmap);

        let widths: Vec<f32> = self
            .remapper
            .remapped_gids()
            .map(|gid| font.advance_milli(ab_glyph::GlyphId(gid)).round())
            .collect();
        let mut cid_font = pdf.cid_font(cid);
        cid_font
            .subtype(if font.cff {
                CidFontType::Type0
            } else {
                CidFontType::Type2
            })
            .base_font(Name(name.as_bytes()))
            .system_info(IDENTITY)
            .font_descriptor(descriptor);
        cid_font.widths().consecutive(0, widths);
        if !font.cff {
            cid_font.cid_to_gid_map_predefined(Name(b"Identity"));
        }
        cid_font.finish();

        let [x0, y0, x1, y1] = font.bbox.map(|v| (v * scale).round());
        let mut d = pdf.font_descriptor(descriptor);
        d.name(Name(name.as_bytes()))
            .flags(FontFlags::SYMBOLIC)
            .bbox(Rect::new(x0, y0, x1, y1))
            .italic_angle(0.0)
            .ascent((font.ascender * scale).round())
            .descent((font.descender * scale).round())
            .cap_height((font.cap_height * scale).round())
            .stem_v(if font.postscript_name.contains("Bold") {
                120.0
            } else {
                80.0
            });
        if font.cff {
            d.font_file3(file);
        } else {
            d.font_file2(file);
        }
        d.finish();

        if font.cff {
            let raw = ttf_parser::RawFace::parse(&subset, 0).ok()?;
            let cff = raw.table(ttf_parser::Tag::from_bytes(b"CFF "))?;
            pdf.stream(file, cff)
                .pair(Name(b"Subtype"), Name(b"CIDFontType0C"));
        } else {
            let length = i32::try_from(subset.len()).ok()?;
            pdf.stream(file, &subset).pair(Name(b"Length1"), length);
        }

        let mut map = UnicodeCmap::new(Name(b"Surge-Identity-UCS"), IDENTITY);
        for (&cid, &c) in &self.unicode {
            map.pair(cid, c);
        }
        pdf.cmap(cmap, &map.finish());
        Some(())
    }
}

/// Whether `font` can be embedded: a subset of one ideograph must come out.
pub(crate) fn embeddable(font: &Font) -> bool {
    let mut subset = Subset::new(font);
    subset.encode("中");
    subsetter::subset(font.data(), font.index(), &subset.remapper).is_ok()
}
