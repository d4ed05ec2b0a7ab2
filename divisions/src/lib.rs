//! The administrative divisions of China (GB/T 2260) as a table the project ships
//! (`data/gbt2260.tsv`): six-digit codes whose first two digits are the province-level
//! division, the next two the prefecture-level city, the last two the county-level district.
//! 330106 is 浙江省 杭州市 西湖区.
//!
//! [`Divisions::split`] splits a one-line Chinese address into those three and the street;
//! [`Divisions::resolve`] checks and normalises an address whose parts arrive separately (as
//! platforms send them); [`Resolved::sorting_code`] and [`Resolved::destination`] derive the
//! three-segment sorting code (三段码) and destination text (大头笔) printed big on e-waybills
//! when the carrier supplied none.
//!
//! Two shapes are special. The four municipalities (北京, 天津, 上海, 重庆) have no city level:
//! their city is the municipality itself. Cities and counties directly under a province (东莞市,
//! 仙桃市, 济源市, 五指山市, 石河子市 ...) have no district, or no city, level.

mod names;
mod resolve;
mod split;

pub use resolve::{AddressError, Part, Resolved};

use std::collections::HashMap;
use std::sync::OnceLock;

/// One division: its code and full name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Division {
    pub code: u32,
    pub name: &'static str,
}

impl Division {
    /// The province-level division's two digits.
    pub fn province_code(&self) -> u32 {
        self.code / 10_000
    }

    /// Whether this is a province-level division (code ends in 0000).
    pub fn is_province(&self) -> bool {
        self.code.is_multiple_of(10_000)
    }

    /// Whether this is a prefecture-level city (code ends in 00, not 0000).
    pub fn is_city(&self) -> bool {
        self.code.is_multiple_of(100) && !self.is_province()
    }

    /// The name without its administrative suffix: 浙江 for 浙江省, 广西 for 广西壮族自治区.
    pub fn short_name(&self) -> &'static str {
        names::short(self.name)
    }
}

/// The four municipalities' province codes: their districts are under the province directly.
const MUNICIPALITIES: [u32; 4] = [11, 12, 31, 50];

/// The division table, parsed once, with each level indexed by its parent so that resolving
/// an address (for every order's review and every label) never scans the whole table.
pub struct Divisions {
    all: Vec<Division>,
    by_code: HashMap<u32, usize>,
    provinces: Vec<Division>,
    /// Prefecture-level cities by province code; a municipality's is the municipality itself.
    cities: HashMap<u32, Vec<Division>>,
    /// County-level divisions by the first four digits of their code (a city, or 90: those
    /// directly under the province).
    counties: HashMap<u32, Vec<Division>>,
    /// County-level divisions by province code (a municipality's districts).
    province_counties: HashMap<u32, Vec<Division>>,
    /// What a city-level name can be when the address names no province: every prefecture-level
    /// city and every county directly under a province.
    city_like: Vec<Division>,
    /// Province-level divisions by full and short name (广东省, 广东).
    province_names: HashMap<&'static str, Division>,
}

/// Whether an address in `country` is one the mainland's divisions apply to: China, or no
/// country given.
pub fn in_china(country: &str) -> bool {
    let country = country.trim();
    country.is_empty() || country.eq_ignore_ascii_case("CN")
}

static TABLE: &str = include_str!("../data/gbt2260.tsv");

impl Divisions {
    /// The table shipped with surge.
    pub fn get() -> &'static Divisions {
        static DIVISIONS: OnceLock<Divisions> = OnceLock::new();
        DIVISIONS.get_or_init(|| Divisions::parse(TABLE))
    }

    fn parse(table: &'static str) -> Divisions {
        let all: Vec<Division> = table
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .filter_map(|l| {
                let (code, name) = l.split_once('\t')?;
                Some(Division {
                    code: code.parse().ok()?,
                    name: name.trim(),
                })
            })
            .collect();
        let by_code = all.iter().enumerate().map(|(i, d)| (d.code, i)).collect();
        let provinces: Vec<Division> = all.iter().copied().filter(Division::is_province).collect();
        let mut cities: HashMap<u32, Vec<Division>> = HashMap::new();
        let mut counties: HashMap<u32, Vec<Division>> = HashMap::new();
        let mut province_counties: HashMap<u32, Vec<Division>> = HashMap::new();
        for p in provinces
            .iter()
            .filter(|p| MUNICIPALITIES.contains(&p.province_code()))
        {
            cities.entry(p.province_code()).or_default().push(*p);
        }
        for d in &all {
            if d.is_city() && !MUNICIPALITIES.contains(&d.province_code()) {
                cities.entry(d.province_code()).or_default().push(*d);
            } else if !d.is_province() && !d.is_city() {
                counties.entry(d.code / 100).or_default().push(*d);
                province_counties
                    .entry(d.province_code())
                    .or_default()
                    .push(*d);
            }
        }
        let city_like = all
            .iter()
            .copied()
            .filter(|d| d.is_city() || (!d.is_province() && (d.code / 100) % 100 == 90))
            .collect();
        let province_names = provinces
            .iter()
            .flat_map(|p| [(p.name, *p), (p.short_name(), *p)])
            .collect();
        Divisions {
            all,
            by_code,
            province_names,
            provinces,
            cities,
            counties,
            province_counties,
            city_like,
        }
    }

    pub fn len(&self) -> usize {
        self.all.len()
    }

    pub fn is_empty(&self) -> bool {
        self.all.is_empty()
    }

    pub fn by_code(&self, code: u32) -> Option<Division> {
        self.by_code.get(&code).map(|&i| self.all[i])
    }

    /// The province-level division named `name` in full (广东省) or short (广东).
    pub fn province_named(&self, name: &str) -> Option<Division> {
        self.province_names.get(name.trim()).copied()
    }

    /// Whether some division's code starts with `prefix` (2, 4 or 6 digits).
    pub fn has_prefix(&self, prefix: &str) -> bool {
        let Ok(n) = prefix.parse::<u32>() else {
            return false;
        };
        match prefix.len() {
            2 => self.cities.contains_key(&n) || self.by_code(n * 10_000).is_some(),
            4 => self.counties.contains_key(&n) || self.by_code(n * 100).is_some(),
            6 => self.by_code(n).is_some(),
            _ => false,
        }
    }

    /// Every province-level division.
    pub fn provinces(&self) -> impl Iterator<Item = Division> + '_ {
        self.provinces.iter().copied()
    }

    pub(crate) fn province_list(&self) -> &[Division] {
        &self.provinces
    }

    pub(crate) fn city_like(&self) -> &[Division] {
        &self.city_like
    }

    /// The prefecture-level cities of `province`; for a municipality, the municipality itself.
    fn cities_of(&self, province: Division) -> &[Division] {
        self.cities
            .get(&province.province_code())
            .map_or(&[], Vec::as_slice)
    }

    /// The county-level divisions of `city` (of the whole municipality when `city` is one);
    /// none for a city without districts (东莞市, 中山市, 儋州市, 嘉峪关市).
    fn districts_of(&self, city: Division) -> &[Division] {
        let found = if city.is_province() {
            self.province_counties.get(&city.province_code())
        } else {
            self.counties.get(&(city.code / 100))
        };
        found.map_or(&[], Vec::as_slice)
    }

    /// County-level divisions directly under `province` (the 90 "city" of 省直辖县级行政区划:
    /// 仙桃市, 济源市, 五指山市 ...), which have no city level.
    fn direct_counties_of(&self, province: Division) -> &[Division] {
        self.counties
            .get(&(province.province_code() * 100 + 90))
            .map_or(&[], Vec::as_slice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_holds_every_province_level_division() {
        let d = Divisions::get();
        assert!(d.len() > 3000, "{}", d.len());
        // 23 provinces (Taiwan included), 5 autonomous regions, 4 municipalities, 2 SARs.
        assert_eq!(d.provinces().count(), 34);
        assert_eq!(d.by_code(330106).map(|x| x.name), Some("西湖区"));
        assert_eq!(d.by_code(330100).map(|x| x.name), Some("杭州市"));
    }

    #[test]
    fn municipalities_have_their_districts_under_them() {
        let d = Divisions::get();
        let shanghai = d.by_code(310000).expect("上海市");
        assert_eq!(d.cities_of(shanghai), [shanghai]);
        let districts = d.districts_of(shanghai);
        assert!(
            districts.iter().any(|x| x.name == "浦东新区"),
            "{districts:?}"
        );
        let chongqing = d.by_code(500000).expect("重庆市");
        let districts = d.districts_of(chongqing);
        // 重庆's districts (5001xx) and counties (5002xx) alike.
        assert!(districts.iter().any(|x| x.name == "渝中区"));
        assert!(districts.iter().any(|x| x.name == "城口县"));
    }
}
