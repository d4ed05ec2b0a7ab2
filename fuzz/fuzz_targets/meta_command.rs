//! A coordinator log entry applied to the metadata state machine, after an init so that most
//! commands reach their checks.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use surge_meta::meta::Command;
use surge_meta::meta_state::MetaState;
use surge_storage::{Engine, Family, MemEngine, StateMachine, WriteBatch};

fuzz_target!(|data: &[u8]| {
    let engine = Arc::new(MemEngine::new(&[Family::META]));
    let Ok(mut sm) = MetaState::load(engine.clone()) else {
        return;
    };
    let init = Command::InitCluster {
        cluster_id: "fuzz".into(),
        shards: 4,
        replicas: 3,
        token: "t".into(),
        at_ms: 1,
        admin_token_hash: "00".repeat(32),
    };
    let mut batch = WriteBatch::default();
    let Ok(init) = serde_json::to_vec(&init) else {
        return;
    };
    let _ = sm.apply(1, &init, &mut batch);
    let _ = sm.apply(2, data, &mut batch);
    let _ = engine.write(&batch, false);
    // What was written must load again.
    let _ = MetaState::load(engine);
});
