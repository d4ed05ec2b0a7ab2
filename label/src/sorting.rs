//! The sorting code printed big on the label: `PP-CCC-NN` from the receiver's province, city and
//! district.

use surge_proto::v1::Address;

/// Deterministic sorting code for `receiver`: the first two ASCII letters of the province and the
/// first three of the city, upper-case and padded with `X` (so an empty or non-Latin part gives
/// `XX` / `XXX`), then a two-digit bucket `00`..=`99` of the district: FNV-1a (32 bit) of its
/// trimmed, ASCII-lower-cased bytes modulo 100, or `00` when the district is blank.
///
/// `Zhejiang` / `Hangzhou` / `Xihu` gives `ZH-HAN-` and the district's bucket. The hash is written
/// out here (not std's randomly seeded hasher), so every process and every release agrees.
pub fn sorting_code(receiver: &Address) -> String {
    let district = receiver.district.trim().to_ascii_lowercase();
    let bucket = if district.is_empty() {
        0
    } else {
        fnv1a32(district.as_bytes()) % 100
    };
    format!(
        "{}-{}-{:02}",
        letters(&receiver.province, 2),
        letters(&receiver.city, 3),
        bucket
    )
}

/// The first `n` ASCII letters of `s`, upper-case, padded with `X` to `n`.
fn letters(s: &str, n: usize) -> String {
    s.chars()
        .filter(char::is_ascii_alphabetic)
        .map(|c| c.to_ascii_uppercase())
        .chain(std::iter::repeat('X'))
        .take(n)
        .collect()
}

/// 32-bit FNV-1a.
fn fnv1a32(bytes: &[u8]) -> u32 {
    const OFFSET_BASIS: u32 = 0x811c_9dc5;
    const PRIME: u32 = 0x0100_0193;
    bytes.iter().fold(OFFSET_BASIS, |hash, &b| {
        (hash ^ u32::from(b)).wrapping_mul(PRIME)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a32_matches_reference_vectors() {
        assert_eq!(fnv1a32(b""), 0x811c_9dc5);
        assert_eq!(fnv1a32(b"a"), 0xe40c_292c);
        assert_eq!(fnv1a32(b"foobar"), 0xbf9c_f968);
    }
}
