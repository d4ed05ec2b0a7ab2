//! A platform order record of arbitrary bytes, read as every platform: it maps or is refused
//! naming a field, never panics; a mapped order passes surge's validation, and its receiver's
//! address splits or is refused naming a part.
#![no_main]

use libfuzzer_sys::fuzz_target;
use surge_platforms::{map_record, Mapped, PLATFORMS};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for platform in PLATFORMS {
        if let Ok(Mapped::Order(order)) = map_record(platform, text) {
            assert!(surge_proto::validate::order(&order).is_ok());
            let r = order.receiver.unwrap_or_default();
            let _ = surge_divisions::Divisions::get().resolve(&r.province, &r.city, &r.district, &r.street);
        }
    }
    let _ = surge_divisions::Divisions::get().split(text);
});
