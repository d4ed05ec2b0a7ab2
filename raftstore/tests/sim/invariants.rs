//! The Raft safety properties the simulation checks (DESIGN.md §10 item 7, and item 1 at the
//! level of the log). Each is a pure function over recorded history, so a test can feed it a
//! fabricated violation and prove it is not vacuous.

use std::collections::{BTreeMap, BTreeSet};

use surge_raftstore::raft::eraftpb::Entry;

use crate::kv_sm::Command;

/// A command some peer reported as applied, and which peer reported it first.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct AppliedCommand {
    pub(crate) term: u64,
    pub(crate) data: Vec<u8>,
    pub(crate) first_reported_by: u64,
}

/// Everything observed during a run that the invariants are judged on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct History {
    /// Every (term, leader id) ever observed, after every single operation on every peer.
    pub(crate) leaders: BTreeSet<(u64, u64)>,
    /// Every command any peer reported as applied, by index.
    pub(crate) applied: BTreeMap<u64, AppliedCommand>,
}

impl History {
    /// Records an applied command; two different commands applied at one index violate
    /// state-machine safety, which is reported at once rather than at the end of the run.
    pub(crate) fn record_applied(
        &mut self,
        node: u64,
        index: u64,
        term: u64,
        data: Vec<u8>,
    ) -> Result<(), String> {
        let reported = AppliedCommand {
            term,
            data,
            first_reported_by: node,
        };
        match self.applied.get(&index) {
            None => {
                self.applied.insert(index, reported);
                Ok(())
            }
            Some(seen) if (seen.term, &seen.data) == (term, &reported.data) => Ok(()),
            Some(seen) => Err(format!(
                "state machine safety: node {node} applied {:?} at index {index} (term {term}), \
                 node {} applied {:?} (term {})",
                String::from_utf8_lossy(&reported.data),
                seen.first_reported_by,
                String::from_utf8_lossy(&seen.data),
                seen.term,
            )),
        }
    }
}

/// Election safety: at most one leader per term, over the whole run.
pub(crate) fn check_election_safety(leaders: &BTreeSet<(u64, u64)>) -> Result<(), String> {
    let mut by_term: BTreeMap<u64, BTreeSet<u64>> = BTreeMap::new();
    for &(term, id) in leaders {
        by_term.entry(term).or_default().insert(id);
    }
    match by_term.iter().find(|(_, ids)| ids.len() > 1) {
        Some((term, ids)) => Err(format!("election safety: term {term} had leaders {ids:?}")),
        None => Ok(()),
    }
}

/// A peer's durable log, as read back through `raft::Storage`.
#[derive(Clone, Debug)]
pub(crate) struct LogView {
    /// Index of `entries[0]` (one past the truncation point when the log is empty).
    pub(crate) first: u64,
    /// The durable commit index, never beyond the last entry.
    pub(crate) commit: u64,
    pub(crate) entries: Vec<Entry>,
}

impl LogView {
    fn last(&self) -> u64 {
        self.first + self.entries.len() as u64 - 1
    }

    fn get(&self, index: u64) -> &Entry {
        &self.entries[(index - self.first) as usize]
    }
}

/// Log matching: if two logs hold an entry with the same index and term, they are identical up
/// to and including it. Also: over their common committed prefix, two logs are identical.
pub(crate) fn check_log_matching(logs: &BTreeMap<u64, LogView>) -> Result<(), String> {
    for (&a, log_a) in logs {
        for (&b, log_b) in logs.range(a + 1..) {
            check_pair(a, log_a, b, log_b)?;
        }
    }
    Ok(())
}

fn check_pair(a: u64, log_a: &LogView, b: u64, log_b: &LogView) -> Result<(), String> {
    let low = log_a.first.max(log_b.first);
    let high = log_a.last().min(log_b.last());
    if low > high {
        return Ok(());
    }
    let agreed_up_to = (low..=high)
        .rev()
        .find(|&i| log_a.get(i).term == log_b.get(i).term);
    let committed_up_to = log_a.commit.min(log_b.commit);
    let must_match = agreed_up_to.unwrap_or(0).max(committed_up_to).min(high);
    for i in low..=must_match {
        let (ea, eb) = (log_a.get(i), log_b.get(i));
        if (ea.term, ea.get_entry_type(), &ea.data) != (eb.term, eb.get_entry_type(), &eb.data) {
            return Err(format!(
                "log matching: nodes {a} and {b} differ at index {i} (terms {} and {}) although \
                 they agree on index {must_match} (committed up to {committed_up_to})",
                ea.term, eb.term
            ));
        }
    }
    Ok(())
}

/// No committed entry lost: everything any peer ever applied is, at the end, in every live
/// peer's state machine at the same index, and nothing else is.
pub(crate) fn check_no_committed_entry_lost(
    applied: &BTreeMap<u64, AppliedCommand>,
    states: &BTreeMap<u64, Vec<Command>>,
) -> Result<(), String> {
    for (node, state) in states {
        let held: BTreeMap<u64, &[u8]> = state.iter().map(|(i, d)| (*i, d.as_slice())).collect();
        if let Some((index, command)) = applied
            .iter()
            .find(|(i, c)| held.get(i) != Some(&c.data.as_slice()))
        {
            return Err(format!(
                "committed entry lost: node {node} lacks {:?} at index {index}",
                String::from_utf8_lossy(&command.data)
            ));
        }
        if let Some((index, data)) = held.iter().find(|(i, _)| !applied.contains_key(i)) {
            return Err(format!(
                "node {node} holds {:?} at index {index}, which no peer reported applying",
                String::from_utf8_lossy(data)
            ));
        }
    }
    Ok(())
}

/// Every peer applied the same sequence of commands.
pub(crate) fn check_state_machines_identical(
    states: &BTreeMap<u64, Vec<Command>>,
) -> Result<(), String> {
    let mut iter = states.iter();
    let Some((first_node, first)) = iter.next() else {
        return Ok(());
    };
    for (node, state) in iter {
        if state != first {
            let at = first
                .iter()
                .zip(state)
                .position(|(x, y)| x != y)
                .unwrap_or(first.len().min(state.len()));
            return Err(format!(
                "state machines differ: node {first_node} applied {} commands, node {node} {}; \
                 first difference at position {at}",
                first.len(),
                state.len()
            ));
        }
    }
    Ok(())
}
