//! The address table: every line of `addresses.tsv` splits into the province, city and district
//! it names, in every form it is written (full names, short names, no province, the
//! municipality twice, separators), and addresses that cannot resolve name the part that fails.

use surge_divisions::{Divisions, Part};

#[test]
fn every_address_in_the_table_resolves_to_its_divisions() {
    let table = include_str!("addresses.tsv");
    let divisions = Divisions::get();
    let mut provinces = std::collections::BTreeSet::new();
    let mut checked = 0;
    for (n, line) in table.lines().enumerate() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let cols: Vec<&str> = line.split('\t').collect();
        let [address, province, city, district] = cols[..] else {
            panic!("line {}: expected 4 columns: {line}", n + 1);
        };
        let r = divisions
            .split(address)
            .unwrap_or_else(|e| panic!("line {}: {address}: {e}", n + 1));
        let name = |d: Option<surge_divisions::Division>| d.map_or("", |d| d.name);
        assert_eq!(
            (r.province.name, name(r.city), name(r.district)),
            (province, city, district),
            "line {}: {address}",
            n + 1
        );
        assert!(!r.street.is_empty(), "line {}: {address}", n + 1);
        // The derived codes are the division's own.
        assert!(
            r.sorting_code()
                .starts_with(&format!("{:04}", r.code() / 100)),
            "line {}: {}",
            n + 1,
            r.sorting_code()
        );
        provinces.insert(province);
        checked += 1;
    }
    assert!(checked >= 200, "only {checked} addresses");
    assert_eq!(provinces.len(), 34, "{provinces:?}");
}

#[test]
fn unresolvable_addresses_name_the_part_and_never_guess() {
    let divisions = Divisions::get();
    for (address, part) in [
        ("", Part::Province),
        ("Room 5, 1 Wensan Road, Hangzhou", Part::Province),
        ("文三路 288 号", Part::Province),
        ("浙江省 深圳市 南山区 科技南路 16 号", Part::City),
        ("江苏省 苏州 西湖区 干将西路", Part::District),
        ("广东省广州市", Part::District),
        ("上海市浦东新区", Part::Street),
    ] {
        let err = divisions.split(address).expect_err(address);
        assert_eq!(err.part, part, "{address}: {err}");
        assert!(err.to_string().contains(&part.to_string()), "{err}");
    }
}

#[test]
fn platform_fields_resolve_like_one_line() {
    let divisions = Divisions::get();
    // Tmall's receiver_state / receiver_city / receiver_district / receiver_address.
    let r = divisions
        .resolve("浙江省", "杭州市", "西湖区", "文三路 288 号")
        .expect("resolves");
    assert_eq!(r.code(), 330106);
    // Short names and a street that repeats the district (JD sends the full line again).
    let r = divisions
        .resolve("广东", "深圳", "", "南山区科技南路 16 号")
        .expect("resolves");
    assert_eq!(r.code(), 440305);
    assert_eq!(r.street, "科技南路 16 号");
    // A municipality's city field repeats it.
    let r = divisions
        .resolve("上海", "上海市", "浦东新区", "世纪大道 100 号")
        .expect("resolves");
    assert_eq!(r.destination(), "上海 浦东");
}
