//! The membership simulation's checks, as an `impl Sim`: invariant 2 while it runs (a
//! destroyed replica stays destroyed, and its late messages are never credited to its node's
//! next replica), and invariants 5 and 1 after settling.

use std::collections::{BTreeMap, BTreeSet};

use surge_raftstore::raft::eraftpb::Message;

use crate::books::{check_orders, Membership};
use crate::sim::Sim;
use crate::{NODES, SHARDS, TENANT};

// While it runs: invariant 2.
impl Sim {
    /// Invariant 2, for every running replica: not one its node destroyed, unless re-added at
    /// a newer epoch.
    pub(crate) fn check_running(&mut self) {
        let mut result = Ok(());
        for (id, node) in &self.cluster.nodes {
            for shard in node.peers.iter().flat_map(|p| p.keys()) {
                let record = self.record(*id, *shard);
                let created = record.map_or(0, |r| r.epoch);
                let tombstone = record.is_none_or(|r| r.tombstone);
                result = result.and_then(|()| {
                    if tombstone {
                        return Err(format!("node {id} runs shard {shard} without a record"));
                    }
                    self.tombstones.check_running(*id, *shard, created)
                });
            }
        }
        self.cluster.flag(result);
    }

    /// Invariant 2, seen from the receiver: a late message of the current term from a
    /// destroyed replica is never stepped as if its node's current member of the shard had
    /// sent it. Raft ids are node ids, so once a node is re-added, its predecessor's messages
    /// look like the new replica's, and raft-rs would credit the new replica with the old
    /// one's log. (Older terms raft-rs ignores.)
    pub(crate) fn check_sender_alive(
        &self,
        shard: u32,
        local: u64,
        conf: &Membership,
        incarnation: u64,
        msg: &Message,
    ) -> Result<(), String> {
        let from = msg.from;
        let record = self.record(from, shard);
        let alive = record.is_some_and(|r| !r.tombstone && r.epoch == incarnation);
        if alive || !conf.contains(from) {
            return Ok(());
        }
        let Some(joined) = self.epochs.joined(shard, from, local) else {
            return Ok(());
        };
        if incarnation >= joined {
            return Ok(());
        }
        Err(format!(
            "node {} shard {shard} at epoch {local} stepped a {:?} (term {}, index {}) from \
             node {from}'s replica created at epoch {incarnation} and since destroyed, as if \
             from the member added at epoch {joined} (node {from} now holds {record:?})",
            msg.to,
            msg.get_msg_type(),
            msg.term,
            msg.index,
        ))
    }

    /// Invariant 2, on disk: a destroyed replica that was not re-added left no row.
    pub(crate) fn check_stays_removed(&self, id: u64, shard: u32) -> Result<(), String> {
        let runs = self.cluster.peer_ref(id, shard).is_some();
        let rows = self
            .cluster
            .rows(id, shard, &self.cluster.all_families())
            .len();
        if runs || rows > 0 {
            return Err(format!(
                "node {id} destroyed shard {shard}, yet runs it ({runs}) or keeps {rows} rows"
            ));
        }
        Ok(())
    }

    pub(crate) fn check_removed_rows(&mut self) {
        let removed: Vec<(u64, u32)> = self
            .records
            .iter()
            .flat_map(|(id, records)| {
                records
                    .iter()
                    .filter(|(_, r)| r.tombstone)
                    .map(|(s, _)| (*id, *s))
            })
            .collect();
        for (id, shard) in removed {
            let result = self.check_stays_removed(id, shard);
            self.cluster.flag(result);
        }
    }
}

// After settling: invariants 5 and 1.
impl Sim {
    /// The membership reached is the intended one, on every member; non-members hold nothing.
    fn check_membership(&self, shard: u32) -> Result<(), String> {
        if let Some(mv) = self.coord.moves.get(&shard) {
            return Err(format!("shard {shard}: {mv:?} did not finish"));
        }
        let intended = &self.coord.intended[&shard];
        let want = Membership {
            voters: intended.clone(),
            ..Membership::default()
        };
        for id in NODES {
            match self.cluster.peer_ref(id, shard) {
                Some(p) if intended.contains(&id) => {
                    let held = Membership::of(p.conf_state());
                    if held != want {
                        return Err(format!(
                            "shard {shard} node {id}: holds {held:?}, intended {intended:?}"
                        ));
                    }
                }
                None if intended.contains(&id) => {
                    return Err(format!("shard {shard}: member {id} runs no replica"));
                }
                Some(_) => return Err(format!("shard {shard}: non-member {id} still runs it")),
                None => {
                    let rows = self
                        .cluster
                        .rows(id, shard, &self.cluster.all_families())
                        .len();
                    if rows > 0 {
                        return Err(format!("shard {shard}: non-member {id} keeps {rows} rows"));
                    }
                }
            }
        }
        Ok(())
    }

    /// Every member applied the same index and holds the same data rows.
    fn check_replicas_agree(&self, shard: u32) -> Result<(), String> {
        let members: Vec<u64> = self.coord.intended[&shard].iter().copied().collect();
        let applied: BTreeMap<u64, u64> = members
            .iter()
            .map(|id| {
                let peer = self.cluster.peer_ref(*id, shard).expect("up");
                (*id, peer.applied_index())
            })
            .collect();
        if applied.values().collect::<BTreeSet<_>>().len() != 1 {
            return Err(format!("shard {shard}: members applied {applied:?}"));
        }
        let first = self.cluster.dump(members[0], shard);
        for id in &members[1..] {
            if self.cluster.dump(*id, shard) != first {
                return Err(format!(
                    "shard {shard}: node {id} holds other data than node {}",
                    members[0]
                ));
            }
        }
        Ok(())
    }

    pub(crate) fn check_settled(&self) -> Result<(), String> {
        for shard in 0..SHARDS {
            self.check_membership(shard)?;
            self.check_replicas_agree(shard)?;
        }
        let stored = |id: u64, shard: u32, ext: &str| -> Option<String> {
            let peer = self.cluster.peer_ref(id, shard)?;
            let rec = peer.sm.get_by_external(TENANT, "taobao", ext).ok()??;
            Some(rec.order_id)
        };
        check_orders(&self.acked, &self.coord.intended, &stored)
    }

    /// The first violation the step saw, if any: the run stops there.
    pub(crate) fn take_violation(&mut self) -> Result<(), String> {
        match self.cluster.take_violation() {
            Some(v) => Err(format!("tick {}: {v}", self.cluster.now)),
            None => Ok(()),
        }
    }
}
