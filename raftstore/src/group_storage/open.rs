//! Opening a group's storage: its Raft state, log bounds and applied index, each checked
//! for corruption before raft-rs sees them.

use std::sync::Arc;

use prost::Message as _;
use protobuf::Message as _;
use raft::eraftpb::{ConfState, HardState};
use surge_proto::v1::RaftLocalState;

use super::{corrupt, decode_entry, GroupStorage, LocalState};
use crate::engine::{Engine, EngineError};
use crate::families::{APPLY_STATE, RAFT_LOG, RAFT_STATE};
use crate::keys;

impl<E: Engine> GroupStorage<E> {
    /// Loads the group's state from the engine (empty if the group was never written).
    pub fn open(engine: Arc<E>, group: u64) -> Result<GroupStorage<E>, EngineError> {
        let key = keys::state_key(group);
        let mut state = LocalState::default();
        if let Some(raw) = engine.get(RAFT_STATE, &key)? {
            let record =
                RaftLocalState::decode(raw.as_slice()).map_err(|e| corrupt(RAFT_STATE, &key, e))?;
            state.hard_state = HardState::parse_from_bytes(&record.hard_state)
                .map_err(|e| corrupt(RAFT_STATE, &key, e))?;
            state.conf_state = ConfState::parse_from_bytes(&record.conf_state)
                .map_err(|e| corrupt(RAFT_STATE, &key, e))?;
            state.truncated_index = record.truncated_index;
            state.truncated_term = record.truncated_term;
            state.conf_epoch = record.conf_epoch;
            state.member_since = record
                .member_since
                .iter()
                .map(|m| (m.id, m.epoch))
                .collect();
            state.staged_files = record.staged_files;
        }
        state.last_index = state.truncated_index;
        state.last_term = state.truncated_term;
        let start = keys::log_key(group, 0);
        let end = keys::group_end(group);
        if let Some((k, v)) = engine.last_in_range(RAFT_LOG, &start, &end)? {
            let entry = decode_entry(&k, &v)?;
            if keys::log_index(&k) != Some(entry.index) {
                return Err(corrupt(RAFT_LOG, &k, "key and entry index differ"));
            }
            state.last_index = entry.index;
            state.last_term = entry.term;
        }
        let applied = match engine.get(APPLY_STATE, &key)? {
            Some(raw) => {
                let bytes: [u8; 8] = raw
                    .as_slice()
                    .try_into()
                    .map_err(|_| corrupt(APPLY_STATE, &key, "applied index is not 8 bytes"))?;
                u64::from_be_bytes(bytes)
            }
            None => state.truncated_index,
        };
        // Indexes and terms past 2^62 no replica ever reaches: a record holding one is corrupt,
        // and refusing it here keeps every `index + 1` below from overflowing.
        let values = [
            ("truncated_index", state.truncated_index),
            ("truncated_term", state.truncated_term),
            ("last_index", state.last_index),
            ("last_term", state.last_term),
            ("commit", state.hard_state.commit),
            ("term", state.hard_state.term),
            ("applied_index", applied),
        ];
        if let Some((name, value)) = values
            .iter()
            .find(|(_, v)| *v > crate::forged::MAX_PLAUSIBLE)
        {
            let reason = format!("{name} {value} is past 2^62: the record is corrupt");
            return Err(corrupt(RAFT_STATE, &key, reason));
        }
        let mut storage = GroupStorage {
            engine,
            group,
            state,
            applied,
            worker: None,
        };
        storage.recover_staged()?;
        Ok(storage)
    }
}
