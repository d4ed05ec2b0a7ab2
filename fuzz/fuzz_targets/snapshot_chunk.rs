//! A snapshot stream's first chunk off the peer port, decoded as the transport decodes it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message as _;
use surge_proto::v1::{SnapshotChunk, SnapshotData};
use surge_raftstore::raft_handle::decode_message;

fuzz_target!(|data: &[u8]| {
    let Ok(chunk) = SnapshotChunk::decode(data) else {
        return;
    };
    let _ = decode_message(&chunk.message);
    let _ = SnapshotData::decode(chunk.data.as_slice());
});
