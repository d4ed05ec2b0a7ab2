//! An order record as read back from disk, turned into the view every read answers.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message as _;
use surge_proto::v1::OrderRecord;

fuzz_target!(|data: &[u8]| {
    if let Ok(rec) = OrderRecord::decode(data) {
        let _ = surge_shard::view_of(rec);
    }
});
