//! What the transport's two sides agree on: the size bounds of batches and snapshots, the
//! cluster id a stream is checked against, and the gauge of snapshot transfers under way.

use std::sync::{Arc, RwLock};

use crate::metrics::RaftMetrics;

/// Largest batch a receiver accepts.
pub const MAX_RAFT_BATCH_BYTES: usize = 64 << 20;
/// Snapshot data travels in chunks of this size on its own stream.
pub const SNAPSHOT_CHUNK_BYTES: usize = 1 << 20;
/// Largest snapshot a receiver accepts.
pub const MAX_SNAPSHOT_BYTES: usize = 4 << 30;
/// The cluster id this process belongs to; empty until known.
pub type SharedClusterId = Arc<RwLock<String>>;

pub(crate) fn read_cluster_id(id: &SharedClusterId) -> String {
    id.read().map(|s| s.clone()).unwrap_or_default()
}

/// Counts a transfer in a direction while it lives.
pub(crate) struct InFlight(&'static str);

impl InFlight {
    pub(crate) fn start(direction: &'static str) -> InFlight {
        RaftMetrics::get()
            .snapshots_in_flight
            .with_label_values(&[direction])
            .inc();
        InFlight(direction)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        RaftMetrics::get()
            .snapshots_in_flight
            .with_label_values(&[self.0])
            .dec();
    }
}

/// Snapshot transfers under way in this process: (sending, receiving).
pub fn snapshots_in_flight() -> (u32, u32) {
    let g = &RaftMetrics::get().snapshots_in_flight;
    let read = |d: &str| g.with_label_values(&[d]).get().max(0) as u32;
    (read("sending"), read("receiving"))
}
