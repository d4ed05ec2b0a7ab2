//! [`ShardCluster`]: the nodes of a shard simulation, each with its own in-memory engine and,
//! while it is up, one real [`Peer`] running the real [`ShardSm`] per shard replica it holds,
//! and the [`Network`] between them.
//!
//! It does what every shard simulation does the same way: open, crash and restart replicas
//! (all of a node's at once: only the engine survives a crash), re-seed raft-rs's election
//! timeouts from the seeded RNG, handle one Ready and send its messages, compact logs, and
//! read a group's rows back. What a simulation checks, and what its clients and operators do,
//! stays in the simulation.
//!
//! raft-rs re-randomizes an election timeout from its own RNG at every reset (which zeroes
//! `election_elapsed`): [`ShardCluster::reseed`] replaces it from the seeded one whenever that
//! may have happened, so a seed replays exactly. It is also where every leader is recorded.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Arc;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use surge_raftstore::group_storage::stage_destroy;
use surge_raftstore::raft::eraftpb::Message;
use surge_raftstore::{
    keys, logger, Cf, Engine, Family, GroupStorage, MemEngine, Peer, RaftConfig, ReadyOutput,
    WriteBatch,
};
use surge_shard::{ShardOutput, ShardSm};

use crate::faults::Faults;
use crate::leader_book::LeaderBook;
use crate::network::{Network, Packet, Sent};
use crate::outbox::Outbox;

pub type ShardPeer = Peer<MemEngine, ShardSm<MemEngine>>;

/// The range election timeouts are drawn from, in ticks.
const ELECTION_TICKS: Range<usize> = 10..20;

/// How a replica without state comes into being when it is opened.
#[derive(Clone, Copy, Debug)]
pub enum Birth<'a> {
    /// A founding replica: bootstrapped with these voters at this epoch.
    Founded { voters: &'a [u64], epoch: u64 },
    /// A replica added later: empty at its creation epoch until a snapshot fills it.
    Created { epoch: u64 },
}

/// One node: its durable engine, and its replicas while it is up.
pub struct ShardNode {
    pub engine: Arc<MemEngine>,
    /// None while the node is down.
    pub peers: Option<BTreeMap<u32, ShardPeer>>,
    /// Per shard: the election timeout last set from the seeded RNG.
    timeouts: BTreeMap<u32, usize>,
}

/// One handled Ready of one replica.
pub struct Round {
    pub out: ReadyOutput<ShardOutput>,
    /// The Ready installed a snapshot.
    pub installed_snapshot: bool,
}

pub struct ShardCluster<P> {
    pub rng: StdRng,
    /// The logical time, in ticks.
    pub now: u64,
    pub nodes: BTreeMap<u64, ShardNode>,
    pub net: Network<P>,
    pub config: RaftConfig,
    pub leaders: LeaderBook,
    /// The first violation seen; the simulation takes it at the end of the step.
    violation: Option<String>,
}

impl<P: Packet> ShardCluster<P> {
    /// Nodes `ids`, each with an empty engine and down: [`ShardCluster::start`] them.
    pub fn new(seed: u64, ids: &[u64], log_gc_threshold: u64, faults: Faults) -> Self {
        let node = || ShardNode {
            engine: Arc::new(MemEngine::new(&node_families())),
            peers: None,
            timeouts: BTreeMap::new(),
        };
        ShardCluster {
            rng: StdRng::seed_from_u64(seed),
            now: 0,
            nodes: ids.iter().map(|id| (*id, node())).collect(),
            net: Network::new(faults),
            config: RaftConfig {
                log_gc_threshold,
                ..RaftConfig::default()
            },
            leaders: LeaderBook::default(),
            violation: None,
        }
    }

    /// Keeps the first violation seen.
    pub fn flag(&mut self, result: Result<(), String>) {
        if let Err(e) = result {
            self.violation.get_or_insert(e);
        }
    }

    pub fn take_violation(&mut self) -> Option<String> {
        self.violation.take()
    }

    /// Every node, ascending.
    pub fn node_ids(&self) -> Vec<u64> {
        self.nodes.keys().copied().collect()
    }

    /// The nodes down now, ascending.
    pub fn down_ids(&self) -> Vec<u64> {
        self.node_ids()
            .into_iter()
            .filter(|id| !self.is_up(*id))
            .collect()
    }

    pub fn is_up(&self, id: u64) -> bool {
        self.nodes.get(&id).is_some_and(|n| n.peers.is_some())
    }

    pub fn peer(&mut self, id: u64, shard: u32) -> Option<&mut ShardPeer> {
        self.nodes.get_mut(&id)?.peers.as_mut()?.get_mut(&shard)
    }

    pub fn peer_ref(&self, id: u64, shard: u32) -> Option<&ShardPeer> {
        self.nodes.get(&id)?.peers.as_ref()?.get(&shard)
    }

    /// (Re)starts node `id` with these replicas, opened from its engine.
    pub fn start(&mut self, id: u64, replicas: &[(u32, Birth<'_>)]) {
        let node = self.nodes.get_mut(&id).expect("known node");
        let peers = replicas
            .iter()
            .map(|(s, birth)| (*s, open_peer(&node.engine, id, *s, *birth, &self.config)))
            .collect();
        node.peers = Some(peers);
        node.timeouts.clear();
        for (s, _) in replicas {
            self.reseed(id, *s, true);
        }
    }

    /// Drops every replica of the node; only its engine survives.
    pub fn crash(&mut self, id: u64) {
        if let Some(node) = self.nodes.get_mut(&id) {
            node.peers = None;
        }
    }

    /// Opens one more replica on a live node; false if the node is down.
    pub fn add_replica(&mut self, id: u64, shard: u32, birth: Birth<'_>) -> bool {
        let node = self.nodes.get_mut(&id).expect("known node");
        let Some(peers) = node.peers.as_mut() else {
            return false;
        };
        peers.insert(
            shard,
            open_peer(&node.engine, id, shard, birth, &self.config),
        );
        self.reseed(id, shard, true);
        true
    }

    /// Stops a replica and deletes every row of its group; false if it was not running.
    pub fn destroy_replica(&mut self, id: u64, shard: u32) -> bool {
        let node = self.nodes.get_mut(&id).expect("known node");
        let Some(peer) = node.peers.as_mut().and_then(|p| p.remove(&shard)) else {
            return false;
        };
        drop(peer);
        node.timeouts.remove(&shard);
        let mut batch = WriteBatch::default();
        stage_destroy(node.engine.as_ref(), u64::from(shard), &mut batch);
        node.engine.write(&batch, true).expect("destroy");
        true
    }

    /// Replaces the replica's election timeout from the seeded RNG if raft-rs may have drawn
    /// one (or `force`), and records it if it leads.
    pub fn reseed(&mut self, id: u64, shard: u32, force: bool) {
        let Some(node) = self.nodes.get_mut(&id) else {
            return;
        };
        let Some(peer) = node.peers.as_mut().and_then(|p| p.get_mut(&shard)) else {
            return;
        };
        let current = peer.node.raft.randomized_election_timeout();
        let last = node.timeouts.get(&shard).copied().unwrap_or(usize::MAX);
        // A reset that happens to draw the same value is caught by `election_elapsed`.
        if force || current != last || peer.node.raft.election_elapsed == 0 {
            let t = self.rng.gen_range(ELECTION_TICKS);
            peer.node.raft.set_randomized_election_timeout(t);
            node.timeouts.insert(shard, t);
        }
        if peer.is_leader() {
            let result = self.leaders.record(shard, peer.term(), id);
            self.flag(result);
        }
    }

    /// A node whose replica of `shard` leads, drawn as a client would find one (a deposed
    /// leader may still think it leads).
    pub fn any_leader(&mut self, shard: u32) -> Option<u64> {
        let candidates: Vec<u64> = self
            .nodes
            .keys()
            .copied()
            .filter(|id| self.peer_ref(*id, shard).is_some_and(|p| p.is_leader()))
            .collect();
        if candidates.is_empty() {
            return None;
        }
        Some(candidates[self.rng.gen_range(0..candidates.len())])
    }

    pub fn tick(&mut self, id: u64, shard: u32) {
        if let Some(peer) = self.peer(id, shard) {
            peer.node.tick();
        }
    }

    /// Handles the replica's next Ready (persisted and applied); None if the replica is not
    /// running or has no Ready, in which case its election timeout is re-seeded.
    pub fn handle_ready(&mut self, id: u64, shard: u32) -> Option<Round> {
        let peer = self.peer(id, shard)?;
        if !peer.node.has_ready() {
            self.reseed(id, shard, false);
            return None;
        }
        let installed_snapshot = peer.node.raft.raft_log.unstable.snapshot.is_some();
        let out = peer.handle_ready().expect("handle_ready");
        Some(Round {
            out,
            installed_snapshot,
        })
    }

    /// Sends a Ready's messages, each wrapped into a packet, and reports to the sender what
    /// could not go (a receiver that is down or cut off refuses at once; a lost packet goes
    /// unnoticed). Returns how many were snapshots.
    pub fn send_ready(
        &mut self,
        id: u64,
        shard: u32,
        messages: Vec<Message>,
        mut wrap: impl FnMut(Message) -> P,
    ) -> u64 {
        let outbox = Outbox::send(messages, |msg| self.send(wrap(msg)) != Sent::Refused);
        let snapshots = outbox.snapshots();
        if let Some(peer) = self.peer(id, shard) {
            outbox.report(&mut peer.node);
        }
        snapshots
    }

    /// Hands a packet to the network, unless its receiver is down.
    pub fn send(&mut self, packet: P) -> Sent {
        if !self.is_up(packet.ends().1) {
            return Sent::Refused;
        }
        self.net.send(&mut self.rng, self.now, packet)
    }

    /// The packets due now.
    pub fn take_due(&mut self) -> Vec<P> {
        self.net.take_due(self.now)
    }

    /// Compacts every running replica's log once the threshold of applied entries sits in it.
    pub fn compact(&mut self) {
        let threshold = self.config.log_gc_threshold;
        for node in self.nodes.values_mut() {
            for peer in node.peers.iter_mut().flat_map(|p| p.values_mut()) {
                let first = peer.node.store().first_log_index();
                if peer.applied_index().saturating_sub(first) >= threshold {
                    let point = peer.compaction_point(threshold);
                    peer.compact_log(point).expect("compact");
                }
            }
        }
    }

    /// Every row of group `shard` on node `id`, in the given column families.
    pub fn rows(&self, id: u64, shard: u32, cfs: &[Cf]) -> Vec<(Cf, Vec<u8>, Vec<u8>)> {
        let engine = &self.nodes[&id].engine;
        let prefix = keys::group_prefix(u64::from(shard));
        let end = keys::group_end(u64::from(shard));
        let mut rows = Vec::new();
        for &cf in cfs {
            engine
                .scan(cf, &prefix, &end, &mut |k, v| {
                    rows.push((cf, k.to_vec(), v.to_vec()));
                    true
                })
                .expect("scan");
        }
        rows
    }

    /// Every data row of `shard` on `id`: two replicas agree iff their dumps are equal.
    pub fn dump(&self, id: u64, shard: u32) -> Vec<(Cf, Vec<u8>, Vec<u8>)> {
        let families = self.nodes[&id].engine.group_families();
        self.rows(id, shard, &families)
    }

    /// Every family a node's engine has, the Raft library's included.
    pub fn all_families(&self) -> Vec<Cf> {
        node_families().iter().map(|f| f.cf).collect()
    }
}

/// What a node opens its engine with (as `surge_node::families` does).
fn node_families() -> Vec<Family> {
    surge_raftstore::families::process_families(&surge_shard::families::SHARD_FAMILIES)
}

/// Opens a replica from the engine, creating its initial state first if it has none.
fn open_peer(
    engine: &Arc<MemEngine>,
    node: u64,
    shard: u32,
    birth: Birth<'_>,
    config: &RaftConfig,
) -> ShardPeer {
    let group = u64::from(shard);
    let mut storage = GroupStorage::open(engine.clone(), group).expect("open storage");
    if !storage.is_initialized() {
        let mut batch = WriteBatch::default();
        match birth {
            Birth::Founded { voters, epoch } => storage.stage_bootstrap(voters, epoch, &mut batch),
            Birth::Created { epoch } => storage.stage_creation_epoch(epoch, &mut batch),
        }
        if !batch.is_empty() {
            engine.write(&batch, true).expect("create");
        }
    }
    let sm = ShardSm::new(shard, engine.clone());
    Peer::open(node, storage, sm, config, &logger::raft_logger(group)).expect("open peer")
}
