//! The CJK font labels draw Chinese text with: loaded once from a font file (TrueType or CFF
//! outlines, a single face or a collection), measured with its own advance widths, rasterised
//! for ZPL `^GF` fields and subset into the PDF.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ab_glyph::{Font as _, FontVec, GlyphId};

/// Font files tried, in order, when the configuration names none: Noto Sans CJK (SIL Open Font
/// License; Debian's `fonts-noto-cjk`), then WenQuanYi Micro Hei and Zen Hei.
pub const SYSTEM_FONTS: &[(&str, &str)] = &[
    (
        "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
        "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc",
    ),
    (
        "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
        "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    ),
    (
        "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
        "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    ),
];

/// In a collection, the face whose family name ends with this is preferred (Noto's collections
/// hold Japanese, Korean, Simplified and Traditional Chinese faces; SC draws mainland forms).
const PREFERRED_FACE: &str = " SC";

/// Why a font could not be used.
#[derive(Debug, thiserror::Error)]
pub enum FontError {
    #[error("font file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("font file {path} is not an OpenType font or collection")]
    Invalid { path: PathBuf },
    #[error("font file {path} has no glyph for {missing:?}: it cannot draw Chinese")]
    NoCjk { path: PathBuf, missing: char },
    #[error("font file {path} cannot be subset for a PDF (CFF2 outlines are not supported)")]
    NotEmbeddable { path: PathBuf },
}

/// One face of a font file.
pub struct Font {
    face: FontVec,
    index: u32,
    /// The PostScript name, for the PDF's BaseFont.
    pub(crate) postscript_name: String,
    pub(crate) units_per_em: f32,
    /// True when the outlines are CFF (embedded as `FontFile3`), false for TrueType (`FontFile2`).
    pub(crate) cff: bool,
    /// `[x_min, y_min, x_max, y_max]` in font units.
    pub(crate) bbox: [f32; 4],
    pub(crate) ascender: f32,
    pub(crate) descender: f32,
    pub(crate) cap_height: f32,
    /// Where the font came from, for logs.
    pub path: PathBuf,
}

impl std::fmt::Debug for Font {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Font")
            .field("path", &self.path)
            .field("index", &self.index)
            .field("postscript_name", &self.postscript_name)
            .finish_non_exhaustive()
    }
}

/// The face of `data` to use: in a collection the first whose family ends in [`PREFERRED_FACE`]
/// (and that is not a monospaced variant), else the first.
fn choose_face(data: &[u8]) -> u32 {
    let count = ttf_parser::fonts_in_collection(data).unwrap_or(1);
    (0..count)
        .find(|&i| {
            ttf_parser::Face::parse(data, i).is_ok_and(|face| {
                face.names().into_iter().any(|n| {
                    n.name_id == ttf_parser::name_id::FAMILY
                        && n.to_string()
                            .is_some_and(|s| s.ends_with(PREFERRED_FACE) && !s.contains("Mono"))
                })
            })
        })
        .unwrap_or(0)
}

impl Font {
    /// Reads `path` and checks that it draws Chinese (it must have a glyph for 中).
    pub fn open(path: &Path) -> Result<Font, FontError> {
        let data = std::fs::read(path).map_err(|source| FontError::Read {
            path: path.to_owned(),
            source,
        })?;
        let invalid = || FontError::Invalid {
            path: path.to_owned(),
        };
        let index = choose_face(&data);
        let (postscript_name, units_per_em, cff, bbox, ascender, descender, cap_height) = {
            let face = ttf_parser::Face::parse(&data, index).map_err(|_| invalid())?;
            let name = face
                .names()
                .into_iter()
                .find(|n| n.name_id == ttf_parser::name_id::POST_SCRIPT_NAME)
                .and_then(|n| n.to_string())
                .unwrap_or_else(|| "SurgeCJK".to_owned());
            let b = face.global_bounding_box();
            (
                name,
                f32::from(face.units_per_em()),
                face.tables().cff.is_some(),
                [
                    f32::from(b.x_min),
                    f32::from(b.y_min),
                    f32::from(b.x_max),
                    f32::from(b.y_max),
                ],
                f32::from(face.ascender()),
                f32::from(face.descender()),
                f32::from(face.capital_height().unwrap_or(face.ascender())),
            )
        };
        let face = FontVec::try_from_vec_and_index(data, index).map_err(|_| invalid())?;
        let font = Font {
            face,
            index,
            postscript_name: postscript_name
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect(),
            units_per_em: units_per_em.max(1.0),
            cff,
            bbox,
            ascender,
            descender,
            cap_height,
            path: path.to_owned(),
        };
        if font.glyph('中').is_none() {
            return Err(FontError::NoCjk {
                path: path.to_owned(),
                missing: '中',
            });
        }
        if !crate::pdf_font::embeddable(&font) {
            return Err(FontError::NotEmbeddable {
                path: path.to_owned(),
            });
        }
        Ok(font)
    }

    /// The glyph for `c`, if the font has one.
    pub(crate) fn glyph(&self, c: char) -> Option<GlyphId> {
        let id = self.face.glyph_id(c);
        (id.0 != 0).then_some(id)
    }

    /// The glyph drawn for `c`: its own, else `?`'s (never the empty .notdef box).
    pub(crate) fn glyph_or_fallback(&self, c: char) -> GlyphId {
        self.glyph(c)
            .or_else(|| self.glyph('?'))
            .unwrap_or(GlyphId(0))
    }

    /// Advance width of `glyph` in 1/1000 em.
    pub(crate) fn advance_milli(&self, glyph: GlyphId) -> f32 {
        self.face.h_advance_unscaled(glyph) * 1000.0 / self.units_per_em
    }

    pub(crate) fn face(&self) -> &FontVec {
        &self.face
    }

    /// The whole font file, for subsetting.
    pub(crate) fn data(&self) -> &[u8] {
        self.face.as_slice()
    }

    pub(crate) fn index(&self) -> u32 {
        self.index
    }
}

/// The regular and bold faces labels are drawn with (the same face twice when the font has no
/// bold).
#[derive(Debug, Clone)]
pub struct Fonts {
    pub regular: Arc<Font>,
    pub bold: Arc<Font>,
}

impl Fonts {
    /// Opens `regular` and `bold` (`bold` defaults to `regular`).
    pub fn open(regular: &Path, bold: Option<&Path>) -> Result<Fonts, FontError> {
        let regular = Arc::new(Font::open(regular)?);
        let bold = match bold {
            Some(path) if path != regular.path => Arc::new(Font::open(path)?),
            _ => Arc::clone(&regular),
        };
        Ok(Fonts { regular, bold })
    }

    /// The first of [`SYSTEM_FONTS`] that is installed and draws Chinese.
    pub fn system() -> Option<Fonts> {
        SYSTEM_FONTS.iter().find_map(|(regular, bold)| {
            let regular = Path::new(regular);
            if !regular.exists() {
                return None;
            }
            let bold = Path::new(bold);
            Fonts::open(regular, bold.exists().then_some(bold)).ok()
        })
    }

    pub(crate) fn face(&self, bold: bool) -> &Font {
        if bold {
            &self.bold
        } else {
            &self.regular
        }
    }
}

/// The system's fonts, loaded once per process, for tests; a panic that says what to install
/// when there are none.
#[doc(hidden)]
pub fn test_fonts() -> Fonts {
    static FONTS: std::sync::OnceLock<Option<Fonts>> = std::sync::OnceLock::new();
    FONTS.get_or_init(Fonts::system).clone().expect(
        "no CJK font installed: install Debian's fonts-noto-cjk (or fonts-wqy-microhei) to run \
         the label tests",
    )
}
