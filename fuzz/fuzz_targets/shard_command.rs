//! A shard log entry applied to a shard state machine: any bytes in the log must be refused
//! or applied, never panic.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use surge_shard::families::SHARD_FAMILIES;
use surge_shard::ShardSm;
use surge_storage::{Engine, MemEngine, StateMachine, WriteBatch};

fuzz_target!(|data: &[u8]| {
    let engine = Arc::new(MemEngine::new(&SHARD_FAMILIES));
    let mut sm = ShardSm::new(0, engine.clone());
    for index in 1..=2 {
        let mut batch = WriteBatch::default();
        let _ = sm.apply(index, data, &mut batch);
        if engine.write(&batch, false).is_err() {
            return;
        }
        sm.on_batch_written();
    }
});
