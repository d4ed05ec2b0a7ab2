//! The Raft library's own column families. The state machines' data families are declared by
//! the application ([`Family`] with `per_group`), and each process opens its engine with
//! these plus its own.

use crate::engine::{Cf, Family, Tuning};

/// `group | index` → `eraftpb::Entry`.
pub const RAFT_LOG: Cf = Cf::new(0, "raft_log");
/// `group` → `RaftLocalState` (HardState, ConfState, truncation point).
pub const RAFT_STATE: Cf = Cf::new(1, "raft_state");
/// `group` → applied index, written with the state it covers.
pub const APPLY_STATE: Cf = Cf::new(2, "apply_state");

/// What every process running Raft groups opens, besides its data families.
pub const RAFT_FAMILIES: [Family; 3] = [
    Family {
        cf: RAFT_LOG,
        per_group: false,
        tuning: Tuning::Log,
    },
    Family {
        cf: RAFT_STATE,
        per_group: false,
        tuning: Tuning::Small,
    },
    Family {
        cf: APPLY_STATE,
        per_group: false,
        tuning: Tuning::Small,
    },
];

/// A process's families: the Raft library's, [`Family::META`], then the application's `data`.
pub fn process_families(data: &[Family]) -> Vec<Family> {
    let mut all = RAFT_FAMILIES.to_vec();
    all.push(Family::META);
    all.extend_from_slice(data);
    all
}

/// The unit tests' application: one data family of group rows.
#[cfg(test)]
pub(crate) mod for_tests {
    use super::*;

    pub(crate) const DATA: Cf = Cf::new(5, "data");
    pub(crate) const OTHER: Cf = Cf::new(7, "other");

    pub(crate) fn engine() -> crate::MemEngine {
        let family = |cf| Family {
            cf,
            per_group: true,
            tuning: Tuning::Small,
        };
        crate::MemEngine::new(&process_families(&[family(DATA), family(OTHER)]))
    }
}
