//! The membership simulation's books: what it has seen, against which invariants 1-3 are
//! judged. Each is pure, so `the_checkers_catch_violations` feeds it fabricated violations.
//! (Invariant 4, one leader per shard and term, is surge-sim's `LeaderBook`.)

use std::collections::{BTreeMap, BTreeSet};

use surge_raftstore::raft::eraftpb::ConfState;

/// A configuration as sets, so two replicas' `ConfState`s compare by content, not by order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Membership {
    pub(crate) voters: BTreeSet<u64>,
    pub(crate) outgoing: BTreeSet<u64>,
    pub(crate) learners: BTreeSet<u64>,
    pub(crate) learners_next: BTreeSet<u64>,
    pub(crate) auto_leave: bool,
}

impl Membership {
    pub(crate) fn of(cs: &ConfState) -> Membership {
        Membership {
            voters: cs.voters.iter().copied().collect(),
            outgoing: cs.voters_outgoing.iter().copied().collect(),
            learners: cs.learners.iter().copied().collect(),
            learners_next: cs.learners_next.iter().copied().collect(),
            auto_leave: cs.auto_leave,
        }
    }

    pub(crate) fn voters(ids: &[u64]) -> Membership {
        Membership {
            voters: ids.iter().copied().collect(),
            ..Membership::default()
        }
    }

    /// A replica without state (waiting for its first snapshot) has no configuration.
    pub(crate) fn is_empty(&self) -> bool {
        self.voters.is_empty() && self.learners.is_empty()
    }

    pub(crate) fn is_joint(&self) -> bool {
        !self.outgoing.is_empty()
    }

    /// As `epoch::is_member`.
    pub(crate) fn contains(&self, id: u64) -> bool {
        self.voters.contains(&id)
            || self.outgoing.contains(&id)
            || self.learners.contains(&id)
            || self.learners_next.contains(&id)
    }
}

/// Invariant 3: (shard, epoch) → the configuration the first replica seen at it held.
#[derive(Default)]
pub(crate) struct EpochBook {
    seen: BTreeMap<(u32, u64), (u64, Membership)>,
}

impl EpochBook {
    pub(crate) fn record(
        &mut self,
        shard: u32,
        epoch: u64,
        node: u64,
        m: Membership,
    ) -> Result<(), String> {
        match self.seen.get(&(shard, epoch)) {
            Some((first, known)) if *known != m => Err(format!(
                "shard {shard} epoch {epoch}: node {first} holds {known:?}, node {node} {m:?}"
            )),
            Some(_) => Ok(()),
            None => {
                self.seen.insert((shard, epoch), (node, m));
                Ok(())
            }
        }
    }

    /// The epoch since which `node` has been a member of `shard` without a break, looking
    /// back from epoch `at` (None if `at` was never seen or `node` is no member there).
    pub(crate) fn joined(&self, shard: u32, node: u64, at: u64) -> Option<u64> {
        let mut since = None;
        for e in (0..=at).rev() {
            match self.seen.get(&(shard, e)) {
                Some((_, m)) if m.contains(node) => since = Some(e),
                _ => break,
            }
        }
        since
    }
}

/// Invariant 2: (node, shard) → the newest epoch the node destroyed its replica at.
#[derive(Default)]
pub(crate) struct TombstoneBook {
    removed: BTreeMap<(u64, u32), u64>,
}

impl TombstoneBook {
    pub(crate) fn destroyed(&mut self, node: u64, shard: u32, epoch: u64) {
        let e = self.removed.entry((node, shard)).or_insert(0);
        *e = (*e).max(epoch);
    }

    /// `node` runs a replica of `shard` that was created at epoch `created`.
    pub(crate) fn check_running(&self, node: u64, shard: u32, created: u64) -> Result<(), String> {
        match self.removed.get(&(node, shard)) {
            Some(t) if created <= *t => Err(format!(
                "node {node} runs shard {shard} (created at epoch {created}) after destroying \
                 it at epoch {t}"
            )),
            _ => Ok(()),
        }
    }
}

/// Invariant 1: every acknowledged order (external id → shard, order id) is stored on every
/// member of its shard; `stored(node, shard, external id)` looks one up.
pub(crate) fn check_orders(
    acked: &BTreeMap<String, (u32, String)>,
    members: &BTreeMap<u32, BTreeSet<u64>>,
    stored: &dyn Fn(u64, u32, &str) -> Option<String>,
) -> Result<(), String> {
    for (ext, (shard, order_id)) in acked {
        for node in members.get(shard).into_iter().flatten() {
            let found = stored(*node, *shard, ext);
            if found.as_ref() != Some(order_id) {
                return Err(format!(
                    "acknowledged {ext} = {order_id} missing on node {node} of shard {shard} \
                     (found {found:?})"
                ));
            }
        }
    }
    Ok(())
}
