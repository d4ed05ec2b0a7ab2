//! A tenant's rules file, as `surgectl tenant rules set` sends it.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = surge_rules::parse(text);
    }
});
