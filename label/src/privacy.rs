//! Privacy waybills (隐私面单): the receiver's name and phone printed masked, as the platforms
//! require, while the order keeps the full values for the carrier's API and `GetOrder`.

/// Platforms whose orders print privacy waybills by default.
pub const PRIVACY_PLATFORMS: &[&str] = &[
    "taobao",
    "tmall",
    "jd",
    "pdd",
    "pinduoduo",
    "douyin",
    "kuaishou",
    "youzan",
    "xiaohongshu",
];

/// Whether orders from `platform` print privacy waybills.
pub fn is_privacy_platform(platform: &str) -> bool {
    PRIVACY_PLATFORMS
        .iter()
        .any(|p| p.eq_ignore_ascii_case(platform.trim()))
}

/// The name as printed: its first character, then one `*` per remaining character (张* for
/// 张三, 欧*** for 欧阳娜娜, L***** for Li Lei); a one-character name stays as it is.
pub fn mask_name(name: &str) -> String {
    let name = name.trim();
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return String::new();
    };
    std::iter::once(first)
        .chain(chars.filter(|c| !c.is_whitespace()).map(|_| '*'))
        .collect()
}

/// The phone as printed: the first three and last four digits, the rest `*` (138****0288 for
/// 13800000288); a number of seven digits or fewer keeps only its last four.
pub fn mask_phone(phone: &str) -> String {
    let digits: Vec<char> = phone.chars().filter(char::is_ascii_digit).collect();
    let n = digits.len();
    let (head, tail) = if n > 7 { (3, 4) } else { (0, n.min(4)) };
    digits
        .iter()
        .enumerate()
        .map(|(i, &d)| if i < head || i >= n - tail { d } else { '*' })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_phones_are_masked_as_platforms_print_them() {
        assert_eq!(mask_name("张三"), "张*");
        assert_eq!(mask_name("欧阳娜娜"), "欧***");
        assert_eq!(mask_name(" 李 "), "李");
        assert_eq!(mask_name(""), "");
        assert_eq!(mask_phone("13800000288"), "138****0288");
        assert_eq!(mask_phone("+86 138-0000-0288"), "861******0288");
        assert_eq!(mask_phone("0571-88880000"), "057*****0000");
        assert_eq!(mask_phone("12345"), "*2345");
        assert!(is_privacy_platform("Tmall"));
        assert!(!is_privacy_platform("shopify"));
    }
}
