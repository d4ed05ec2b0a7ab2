//! A resolved address, the codes printed from it, and why an address did not resolve.

use crate::Division;

/// The part of an address that could not be resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Province,
    City,
    District,
    Street,
}

impl std::fmt::Display for Part {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Part::Province => "province",
            Part::City => "city",
            Part::District => "district",
            Part::Street => "street",
        })
    }
}

/// Why an address did not resolve: the part, and the text where it was looked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("address: no {part} of the mainland's divisions (GB/T 2260) at {rest:?}")]
pub struct AddressError {
    pub part: Part,
    pub rest: String,
}

/// An address resolved against the division table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub province: Division,
    /// The prefecture-level city; the municipality itself for 北京, 天津, 上海, 重庆; `None` for
    /// a county directly under its province (仙桃市) and where the table has no cities (香港).
    pub city: Option<Division>,
    /// The county-level district; `None` for a city without districts (东莞市).
    pub district: Option<Division>,
    /// The rest: street, number, building, room.
    pub street: String,
}

impl Resolved {
    /// The most precise division's code: district, else city, else province.
    pub fn code(&self) -> u32 {
        self.district.or(self.city).unwrap_or(self.province).code
    }

    /// The three-segment sorting code (三段码) derived from the divisions: the sorting centre
    /// (the four digits of province and city), the branch (the district's two digits), and the
    /// route (a bucket 00..=99 of the street, so one street always sorts alike):
    /// `3301-06-17` for 杭州市 西湖区 and a street. Carriers that supply their own code
    /// override it.
    pub fn sorting_code(&self) -> String {
        let code = self.code();
        let street: String = self.street.chars().filter(|c| !c.is_whitespace()).collect();
        // FNV-1a has no random seed: every process and release agrees on the bucket.
        let mut hasher = fnv::FnvHasher::default();
        std::hash::Hasher::write(&mut hasher, street.as_bytes());
        let route = std::hash::Hasher::finish(&hasher) % 100;
        format!("{:04}-{:02}-{route:02}", code / 100, code % 100)
    }

    /// The destination text (大头笔) derived from the divisions: city and district by their
    /// short names, 杭州 西湖 (上海 浦东 in a municipality, 湖北 仙桃 for a county under its
    /// province, 东莞 for a city without districts).
    pub fn destination(&self) -> String {
        let big = match self.city {
            Some(city) => city.short_name(),
            None => self.province.short_name(),
        };
        match self.district {
            Some(d) => format!("{big} {}", d.short_name()),
            None => big.to_owned(),
        }
    }
}
