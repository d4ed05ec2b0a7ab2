//! Splitting a one-line Chinese address into province, city, district and street.

use crate::names::matched_len;
use crate::resolve::{AddressError, Part, Resolved};
use crate::{Division, Divisions, MUNICIPALITIES};

/// Separators people put between the parts of an address.
fn skip_separators(s: &str) -> &str {
    s.trim_start_matches(|c: char| c.is_whitespace() || matches!(c, ',' | '，' | '、' | '/' | '-'))
}

/// The division of `candidates` whose name (full or short) starts `text`, longest first.
fn best<'d>(
    text: &str,
    candidates: impl Iterator<Item = &'d Division>,
) -> Option<(Division, usize)> {
    candidates
        .filter_map(|d| matched_len(text, d.name).map(|len| (*d, len)))
        .max_by_key(|(d, len)| (*len, std::cmp::Reverse(d.code)))
}

impl Divisions {
    /// Splits `line` (浙江省杭州市西湖区文三路288号, 浙江 杭州 西湖区 ..., 杭州市西湖区 ...
    /// without the province, 上海市上海市浦东新区 ... with the municipality twice) into its
    /// divisions and the street. Names may be full or short (浙江 / 浙江省). An address
    /// whose divisions cannot all be found is refused naming the part, never guessed.
    pub fn split(&self, line: &str) -> Result<Resolved, AddressError> {
        let refuse = |part, rest: &str| AddressError {
            part,
            rest: rest.chars().take(24).collect(),
        };
        let mut rest = skip_separators(line);
        let (province, city) = match best(rest, self.province_list().iter()) {
            Some((province, len)) => {
                rest = skip_separators(&rest[len..]);
                (province, None)
            }
            None => {
                // No province: a city (or a county under a province) names it.
                let (city, len) = best(rest, self.city_like().iter())
                    .ok_or_else(|| refuse(Part::Province, rest))?;
                rest = skip_separators(&rest[len..]);
                let province = self
                    .by_code(city.province_code() * 10_000)
                    .ok_or_else(|| refuse(Part::Province, line))?;
                (province, Some(city))
            }
        };
        let city = match city {
            Some(city) => Some(city),
            None if MUNICIPALITIES.contains(&province.province_code()) => {
                // 上海市上海市 / 上海市市辖区: the municipality's city level, said again.
                if let Some(len) = matched_len(rest, province.name) {
                    rest = skip_separators(&rest[len..]);
                }
                for filler in ["市辖区", "城区", "郊县"] {
                    if let Some(r) = rest.strip_prefix(filler) {
                        rest = skip_separators(r);
                    }
                }
                Some(province)
            }
            None => {
                let cities = self.cities_of(province);
                let direct = self.direct_counties_of(province);
                match best(rest, cities.iter().chain(direct.iter())) {
                    Some((city, len)) => {
                        rest = skip_separators(&rest[len..]);
                        Some(city)
                    }
                    None if cities.is_empty() && direct.is_empty() => None,
                    None => return Err(refuse(Part::City, rest)),
                }
            }
        };
        let (city, district) = match city {
            // A county directly under its province: it is the district, there is no city.
            Some(c) if !c.is_city() && !c.is_province() => (None, Some(c)),
            Some(c) if !self.districts_of(c).is_empty() => {
                let (district, len) = best(rest, self.districts_of(c).iter())
                    .ok_or_else(|| refuse(Part::District, rest))?;
                rest = skip_separators(&rest[len..]);
                (Some(c), Some(district))
            }
            other => (other, None),
        };
        let street = rest.trim();
        if street.is_empty() {
            return Err(refuse(Part::Street, line));
        }
        Ok(Resolved {
            province,
            city,
            district,
            street: street.to_owned(),
        })
    }

    /// Resolves an address whose parts arrive in separate fields (as platforms send them):
    /// the fields are read as one line, so a missing, short or repeated part is handled as
    /// [`Divisions::split`] handles it.
    pub fn resolve(
        &self,
        province: &str,
        city: &str,
        district: &str,
        street: &str,
    ) -> Result<Resolved, AddressError> {
        self.split(&format!("{province} {city} {district} {street}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(line: &str) -> Result<(String, String, String, String), AddressError> {
        let r = Divisions::get().split(line)?;
        Ok((
            r.province.name.to_owned(),
            r.city.map(|c| c.name.to_owned()).unwrap_or_default(),
            r.district.map(|d| d.name.to_owned()).unwrap_or_default(),
            r.street,
        ))
    }

    fn ok(line: &str) -> (String, String, String, String) {
        split(line).unwrap_or_else(|e| panic!("{line}: {e}"))
    }

    #[test]
    fn full_short_and_missing_province() {
        let expected = (
            "浙江省".into(),
            "杭州市".into(),
            "西湖区".into(),
            "文三路288号".into(),
        );
        assert_eq!(ok("浙江省杭州市西湖区文三路288号"), expected);
        assert_eq!(ok("浙江 杭州 西湖区 文三路288号"), expected);
        assert_eq!(ok("杭州市西湖区文三路288号"), expected);
    }

    #[test]
    fn municipalities_direct_counties_and_cities_without_districts() {
        assert_eq!(ok("上海市上海市浦东新区世纪大道100号").2, "浦东新区");
        assert_eq!(ok("北京市市辖区朝阳区建国路 88 号").2, "朝阳区");
        assert_eq!(ok("重庆 城口县 葛城街道 1 号").2, "城口县");
        let xiantao = ok("湖北省仙桃市干河街道 1 号");
        assert_eq!((xiantao.1.as_str(), xiantao.2.as_str()), ("", "仙桃市"));
        let dongguan = ok("广东省东莞市南城街道鸿福路 200 号");
        assert_eq!((dongguan.1.as_str(), dongguan.2.as_str()), ("东莞市", ""));
    }

    #[test]
    fn unresolvable_parts_are_named() {
        let part = |line: &str| split(line).expect_err(line).part;
        assert_eq!(part("Zhejiang Hangzhou Wensan Road"), Part::Province);
        assert_eq!(part("浙江省火星市西湖区文三路"), Part::City);
        assert_eq!(part("浙江省杭州市文三路288号"), Part::District);
        assert_eq!(part("浙江省杭州市西湖区"), Part::Street);
    }

    #[test]
    fn codes_for_the_label() {
        let r = Divisions::get()
            .split("浙江省杭州市西湖区文三路288号")
            .expect("resolves");
        assert_eq!(r.code(), 330106);
        assert!(
            r.sorting_code().starts_with("3301-06-"),
            "{}",
            r.sorting_code()
        );
        assert_eq!(r.destination(), "杭州 西湖");
        // The same street sorts alike however it is spaced.
        let spaced = Divisions::get()
            .split("浙江 杭州 西湖区 文三路 288 号")
            .expect("resolves");
        assert_eq!(spaced.sorting_code(), r.sorting_code());
        let pudong = Divisions::get()
            .split("上海浦东新区世纪大道100号")
            .expect("resolves");
        assert_eq!(pudong.destination(), "上海 浦东");
    }
}
