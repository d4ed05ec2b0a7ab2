//! A coordinator's and a node's config file, as each process reads it at start: parsed, then
//! validated. Bad input must come back as an error naming the key, never a panic.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("fuzz.toml");
    if let Ok(file) = surge_config::coordinator::ConfigFile::parse(path, text) {
        let _ = file.validate();
    }
    if let Ok(file) = surge_config::node::ConfigFile::parse(path, text) {
        let _ = file.validate();
    }
});
