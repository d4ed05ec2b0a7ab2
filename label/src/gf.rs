//! Text drawn by surge for ZPL: a line rasterised with the label's CJK font into a 1-bit
//! bitmap and sent as a `^GF` graphic field, for printers that cannot be assumed to have a
//! font with Chinese glyphs. The hex data uses ZPL's compression (repeat counts `G`..`Y` for
//! 1..19 and `g`..`z` for 20..400, `,` for a row ending in white, `!` in black, `:` for a row
//! that repeats the one above), which a 4x6 in label's text shrinks about tenfold.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ab_glyph::{point, Font as _, GlyphId, PxScale, ScaleFont as _};

use crate::font::Font;

/// Glyphs kept rasterised, across labels; past this the cache starts again.
const MAX_CACHED_GLYPHS: usize = 20_000;

/// One rasterised glyph: its black pixels relative to the pen position on the baseline.
#[derive(Debug)]
struct Glyph {
    pixels: Vec<(i32, i32)>,
}

/// Rasterised glyphs by (font, glyph, size), so a label's text costs copies, not outlines:
/// the same few thousand characters recur on every label.
#[derive(Debug, Default)]
pub(crate) struct GlyphCache {
    glyphs: Mutex<HashMap<(usize, u16, u32), Arc<Glyph>>>,
}

impl GlyphCache {
    fn get(&self, font: &Font, id: GlyphId, size: u32) -> Arc<Glyph> {
        let key = (std::ptr::from_ref(font) as usize, id.0, size);
        if let Some(g) = self.glyphs.lock().ok().and_then(|m| m.get(&key).cloned()) {
            return g;
        }
        let glyph = Arc::new(draw_glyph(font, id, size));
        if let Ok(mut map) = self.glyphs.lock() {
            if map.len() >= MAX_CACHED_GLYPHS {
                map.clear();
            }
            map.insert(key, Arc::clone(&glyph));
        }
        glyph
    }
}

/// The scale at which `font`'s em is `size` pixels.
fn scale_of(font: &Font, size: u32) -> PxScale {
    let face = font.face();
    let height_units = face.ascent_unscaled() - face.descent_unscaled();
    PxScale::from(size as f32 * height_units / font.units_per_em)
}

/// Rasterises glyph `id` with its pen at the origin; a pixel is black when the outline covers
/// at least half of it.
fn draw_glyph(font: &Font, id: GlyphId, size: u32) -> Glyph {
    let mut pixels = Vec::new();
    let glyph = id.with_scale_and_position(scale_of(font, size), point(0.0, 0.0));
    if let Some(outline) = font.face().outline_glyph(glyph) {
        let bounds = outline.px_bounds();
        outline.draw(|gx, gy, coverage| {
            if coverage >= 0.5 {
                let x = bounds.min.x as i32 + gx as i32;
                let y = bounds.min.y as i32 + gy as i32;
                pixels.push((x, y));
            }
        });
    }
    Glyph { pixels }
}

/// The baseline below the top of a text cell with the CJK font, as a fraction of the size:
/// ideographs fill the em box from 0.88 em above the baseline to 0.12 em below it.
pub(crate) const CJK_BASELINE: f32 = 0.88;

/// Height of a text cell drawn with the CJK font, for text of `size`: the em plus room for
/// Latin descenders.
pub(crate) fn cell_height(size: u32) -> u32 {
    size + size.div_ceil(8)
}

/// A 1-bit picture, rows of packed bytes, most significant bit leftmost, 1 = black.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bitmap {
    pub width: u32,
    pub height: u32,
    /// `height` rows of `bytes_per_row` bytes.
    pub bits: Vec<u8>,
}

impl Bitmap {
    pub fn new(width: u32, height: u32) -> Bitmap {
        let bytes = width.div_ceil(8) as usize * height as usize;
        Bitmap {
            width,
            height,
            bits: vec![0; bytes],
        }
    }

    pub fn bytes_per_row(&self) -> usize {
        self.width.div_ceil(8) as usize
    }

    pub fn set(&mut self, x: u32, y: u32) {
        if x < self.width && y < self.height {
            let i = y as usize * self.bytes_per_row() + x as usize / 8;
            self.bits[i] |= 0x80 >> (x % 8);
        }
    }

    pub fn get(&self, x: u32, y: u32) -> bool {
        x < self.width
            && y < self.height
            && self.bits[y as usize * self.bytes_per_row() + x as usize / 8] & (0x80 >> (x % 8))
                != 0
    }

    /// Black pixels.
    pub fn count(&self) -> u32 {
        self.bits.iter().map(|b| b.count_ones()).sum()
    }
}

/// `text` drawn with `font` at `size` dots per em in a bitmap `width` dots wide (the width the
/// layout measured, which bounds the font's own advances) and [`cell_height`] high, each glyph
/// at the whole dot nearest its pen position.
pub(crate) fn rasterise(
    cache: &GlyphCache,
    font: &Font,
    text: &str,
    size: u32,
    width: u32,
) -> Bitmap {
    let scaled = font.face().as_scaled(scale_of(font, size));
    let mut bitmap = Bitmap::new(width.max(1), cell_height(size));
    let baseline = (CJK_BASELINE * size as f32).round() as i32;
    let mut x = 0.0f32;
    for c in text.chars() {
        let id = font.glyph_or_fallback(c);
        let glyph = cache.get(font, id, size);
        let pen = x.round() as i32;
        x += scaled.h_advance(id);
        for &(gx, gy) in &glyph.pixels {
            if let (Ok(px), Ok(py)) = (u32::try_from(pen + gx), u32::try_from(baseline + gy)) {
                bitmap.set(px, py);
            }
        }
    }
    bitmap
}

/// The repeat-count letters for `n` (1..=419) repeats.
fn count_code(n: usize, out: &mut String) {
    debug_assert!((1..=419).contains(&n));
    let (tens, ones) = (n / 20, n % 20);
    if tens > 0 {
        out.push(char::from(b'g' + (tens as u8 - 1)));
    }
    if ones > 0 {
        out.push(char::from(b'G' + (ones as u8 - 1)));
    }
}

/// `bitmap` as `^GFA` parameters: `A,total,total,bytes_per_row,data`, the data compressed.
pub(crate) fn encode(bitmap: &Bitmap) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let row_bytes = bitmap.bytes_per_row();
    let total = bitmap.bits.len();
    let mut out = format!("A,{total},{total},{row_bytes},");
    let mut previous: Option<&[u8]> = None;
    for row in bitmap.bits.chunks(row_bytes.max(1)) {
        if previous == Some(row) {
            out.push(':');
            continue;
        }
        previous = Some(row);
        let hex: Vec<u8> = row
            .iter()
            .flat_map(|b| [HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]])
            .collect();
        // A row that ends in white (or black) says so with one character.
        let tail_of = |d: u8| hex.iter().rev().take_while(|&&h| h == d).count();
        let (body, end) = match (tail_of(b'0'), tail_of(b'F')) {
            (z, _) if z >= 2 => (&hex[..hex.len() - z], Some(',')),
            (_, f) if f >= 2 => (&hex[..hex.len() - f], Some('!')),
            _ => (&hex[..], None),
        };
        let mut i = 0;
        while i < body.len() {
            let run = body[i..].iter().take_while(|&&h| h == body[i]).count();
            let mut left = run;
            while left > 0 {
                let chunk = left.min(419);
                if chunk > 1 {
                    count_code(chunk, &mut out);
                }
                out.push(char::from(body[i]));
                left -= chunk;
            }
            i += run;
        }
        if let Some(end) = end {
            out.push(end);
        }
    }
    out
}

/// Why `^GF` parameters could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GraphicError {
    #[error("^GF format {0:?} is not A (ASCII hex)")]
    Format(String),
    #[error("^GF {field} {value:?} is not a number in 1..={max}")]
    Number {
        field: &'static str,
        value: String,
        max: usize,
    },
    #[error("^GF total {total} is not a whole number of {row_bytes}-byte rows")]
    Rows { total: usize, row_bytes: usize },
    #[error("^GF data holds {0:?}, which is not hex or compression")]
    Character(char),
    #[error("^GF data gives {got} bytes where the header says {total}")]
    Length { got: usize, total: usize },
}

/// Largest graphic accepted: a whole 100 x 180 mm label at 203 dpi, with room.
const MAX_GRAPHIC_BYTES: usize = 1 << 20;

/// Decodes `^GF` parameters (as [`encode`] writes them, or any printer-valid ASCII-hex form)
/// into a bitmap `bytes_per_row * 8` dots wide.
pub fn decode(params: &str) -> Result<Bitmap, GraphicError> {
    let mut parts = params.splitn(5, ',');
    let format = parts.next().unwrap_or("").trim();
    if format != "A" {
        return Err(GraphicError::Format(format.to_owned()));
    }
    let mut number = |field: &'static str| {
        let value = parts.next().unwrap_or("").trim();
        value
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_GRAPHIC_BYTES).contains(n))
            .ok_or_else(|| GraphicError::Number {
                field,
                value: value.to_owned(),
                max: MAX_GRAPHIC_BYTES,
            })
    };
    let total = number("total bytes")?;
    let _field = number("field bytes")?;
    let row_bytes = number("bytes per row")?;
    if total % row_bytes != 0 {
        return Err(GraphicError::Rows { total, row_bytes });
    }
    let data = parts.next().unwrap_or("");
    let mut bits: Vec<u8> = Vec::with_capacity(total);
    let mut row: Vec<u8> = Vec::with_capacity(row_bytes * 2);
    let mut count = 0usize;
    let end_row = |row: &mut Vec<u8>, bits: &mut Vec<u8>, fill: u8| {
        row.resize(row_bytes * 2, fill);
        bits.extend(row.chunks(2).map(|p| (p[0] << 4) | p[1]));
        row.clear();
    };
    for c in data.chars().filter(|c| !c.is_ascii_whitespace()) {
        if bits.len() > total {
            break;
        }
        match c {
            'G'..='Y' => count += usize::from(c as u8 - b'G' + 1),
            'g'..='z' => count += 20 * usize::from(c as u8 - b'g' + 1),
            ',' | '!' => {
                let fill = if c == ',' { 0 } else { 15 };
                end_row(&mut row, &mut bits, fill);
                count = 0;
            }
            ':' => {
                let start = bits.len().checked_sub(row_bytes).unwrap_or(bits.len());
                let previous = if start < bits.len() {
                    bits[start..].to_vec()
                } else {
                    vec![0; row_bytes]
                };
                bits.extend(previous);
                count = 0;
            }
            _ => {
                let nibble = c.to_digit(16).ok_or(GraphicError::Character(c))? as u8;
                for _ in 0..count.max(1) {
                    row.push(nibble);
                    if row.len() == row_bytes * 2 {
                        end_row(&mut row, &mut bits, 0);
                    }
                }
                count = 0;
            }
        }
    }
    if !row.is_empty() {
        end_row(&mut row, &mut bits, 0);
    }
    if bits.len() != total {
        return Err(GraphicError::Length {
            got: bits.len(),
            total,
        });
    }
    let width = u32::try_from(row_bytes * 8).unwrap_or(u32::MAX);
    let height = u32::try_from(total / row_bytes).unwrap_or(u32::MAX);
    Ok(Bitmap {
        width,
        height,
        bits,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Bitmap {
        let mut b = Bitmap::new(100, 6);
        for x in 0..100 {
            b.set(x, 1); // a black row
            b.set(x, 2); // the same again
        }
        for x in (0..100).step_by(3) {
            b.set(x, 4); // a pattern
        }
        b.set(99, 5); // white, then one black dot at the end
        b
    }

    #[test]
    fn encoding_round_trips_and_compresses() {
        let b = sample();
        let params = encode(&b);
        assert_eq!(decode(&params).expect("decodes"), {
            let mut wide = b.clone();
            wide.width = 104; // decode knows only whole bytes
            wide
        });
        assert!(params.contains(':'), "a repeated row: {params}");
        assert!(params.len() < 2 * b.bits.len(), "{params}");
    }

    #[test]
    fn long_runs_use_combined_counts() {
        let mut out = String::new();
        count_code(41, &mut out);
        assert_eq!(out, "hG");
        out.clear();
        count_code(400, &mut out);
        assert_eq!(out, "z");
        let mut b = Bitmap::new(8 * 500, 1);
        for x in 0..8 * 250 {
            b.set(x, 0);
        }
        assert_eq!(decode(&encode(&b)).expect("decodes").bits, b.bits);
    }

    #[test]
    fn bad_graphics_are_refused() {
        assert!(matches!(decode("B,1,1,1,00"), Err(GraphicError::Format(_))));
        assert!(matches!(
            decode("A,3,3,2,00"),
            Err(GraphicError::Rows { .. })
        ));
        assert!(matches!(
            decode("A,2,2,1,0#"),
            Err(GraphicError::Character('#'))
        ));
        assert!(matches!(
            decode("A,4,4,2,00"),
            Err(GraphicError::Length { .. })
        ));
        assert!(matches!(
            decode("A,x,4,2,00"),
            Err(GraphicError::Number { .. })
        ));
    }

    #[test]
    fn chinese_text_is_drawn_inside_its_cell() {
        let fonts = crate::font::test_fonts();
        let bitmap = rasterise(&GlyphCache::default(), &fonts.bold, "张三", 50, 100);
        assert_eq!((bitmap.width, bitmap.height), (100, cell_height(50)));
        // Two ideographs cover a good part of their em boxes, and both halves are inked.
        let left = (0..50).flat_map(|x| (0..56).map(move |y| (x, y)));
        let inked = left.filter(|&(x, y)| bitmap.get(x, y)).count();
        assert!(inked > 200, "{inked}");
        assert!((50..100).any(|x| (0..56).any(|y| bitmap.get(x, y))));
    }
}
