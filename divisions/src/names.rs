//! Short names (浙江 for 浙江省) and where a division's name may be matched in an address.

/// Administrative suffixes, longest first.
const SUFFIXES: [&str; 16] = [
    "特别行政区",
    "自治区",
    "自治州",
    "自治县",
    "自治旗",
    "地区",
    "新区",
    "林区",
    "矿区",
    "特区",
    "省",
    "市",
    "区",
    "县",
    "盟",
    "旗",
];

/// Ethnic names that autonomous divisions carry before their suffix (广西壮族自治区,
/// 恩施土家族苗族自治州, 伊犁哈萨克自治州), with and without 族.
const ETHNIC: [&str; 27] = [
    "蒙古族",
    "回族",
    "藏族",
    "维吾尔族",
    "苗族",
    "彝族",
    "壮族",
    "布依族",
    "朝鲜族",
    "侗族",
    "白族",
    "土家族",
    "哈尼族",
    "哈萨克族",
    "傣族",
    "黎族",
    "傈僳族",
    "景颇族",
    "柯尔克孜族",
    "羌族",
    "蒙古",
    "维吾尔",
    "哈萨克",
    "柯尔克孜",
    "瑶族",
    "满族",
    "畲族",
];

/// `name` without its administrative suffix and ethnic names; the full name when that would
/// leave fewer than two characters (东区 stays 东区).
pub(crate) fn short(name: &'static str) -> &'static str {
    let mut s = name;
    if let Some(cut) = SUFFIXES.iter().find_map(|x| s.strip_suffix(x)) {
        s = cut;
    }
    // 内蒙古 keeps its 蒙古: a name is never cut below two characters.
    while let Some(cut) = ETHNIC
        .iter()
        .find_map(|x| s.strip_suffix(x))
        .filter(|cut| cut.chars().count() >= 2)
    {
        s = cut;
    }
    if s.chars().count() >= 2 {
        s
    } else {
        name
    }
}

/// Whether what follows a short name shows it names something else: a street named after
/// the division (天河 in 天河路), or another division of the same name (吉林 in 吉林市 is the
/// city, not 吉林省: had the suffix been the division's own, its full name would have matched).
fn something_else_after(rest: &str) -> bool {
    [
        "路", "街", "道", "巷", "弄", "桥", "村", "广场", "大厦", "号",
    ]
    .iter()
    .chain(SUFFIXES.iter())
    .any(|s| rest.starts_with(s))
}

/// How many bytes of `text` name `division`: its full name, or its short name when that is
/// not the start of a street name.
pub(crate) fn matched_len(text: &str, name: &'static str) -> Option<usize> {
    if text.starts_with(name) {
        return Some(name.len());
    }
    let short = short(name);
    (short != name && text.starts_with(short) && !something_else_after(&text[short.len()..]))
        .then_some(short.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_drop_suffixes_and_ethnic_names() {
        for (full, expected) in [
            ("浙江省", "浙江"),
            ("广西壮族自治区", "广西"),
            ("新疆维吾尔自治区", "新疆"),
            ("内蒙古自治区", "内蒙古"),
            ("香港特别行政区", "香港"),
            ("恩施土家族苗族自治州", "恩施"),
            ("伊犁哈萨克自治州", "伊犁"),
            ("巴音郭楞蒙古自治州", "巴音郭楞"),
            ("浦东新区", "浦东"),
            ("西湖区", "西湖"),
            ("东区", "东区"),
        ] {
            assert_eq!(short(full), expected, "{full}");
        }
    }

    #[test]
    fn a_road_named_after_a_district_is_not_the_district() {
        assert_eq!(matched_len("天河区天河路 1 号", "天河区"), Some(9));
        assert_eq!(matched_len("天河北路 1 号", "天河区"), Some(6));
        assert_eq!(matched_len("天河路 1 号", "天河区"), None);
        assert_eq!(matched_len("吉林市船营区", "吉林省"), None);
        assert_eq!(matched_len("吉林市船营区", "吉林市"), Some(9));
    }
}
