//! [`Cluster`]: N peers of one Raft group in one thread, each on its own [`MemEngine`], driven
//! step by step from a seeded RNG (DESIGN.md §11, tier 2).
//!
//! One step is one logical tick: chaos (partitions, crashes, restarts), a tick on every live
//! peer, delivery of the messages due, client proposals, log compaction. Every tick, step and
//! proposal is followed (at once or after a batch of them) by `handle_ready` until the peer
//! has nothing left, so no Ready is ever held while the peer is stepped. A crash drops the
//! `Peer`; a restart rebuilds it from the engine, which is all that survives.
//!
//! raft-rs draws election timeouts from `thread_rng`; the cluster overrides each new draw with
//! one from the seeded RNG, so a seed replays exactly. The network, the fault profile and the
//! chaos decisions are surge-sim's, shared with the shard simulations.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use prost::Message as _;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use surge_proto::v1::SnapshotData;
use surge_raftstore::raft::eraftpb::{Message, MessageType};
use surge_raftstore::raft::{GetEntriesContext, StateRole, Storage as _};
use surge_raftstore::snapshot_staging::{EngineStaging, SnapshotStaging};
use surge_raftstore::{ApplyResult, GroupStorage, MemEngine, Peer, RaftConfig, WriteBatch};
use surge_sim::{Faults, NetStats, Network, Outbox, Processes, Sent};

use crate::invariants::{self, History, LogView};
use crate::kv_sm::{Command, KvSm};

/// The one group every peer belongs to.
const GROUP: u64 = 1;
/// Compact a peer's log once this many applied entries sit in it (small, so lagging and
/// restarted peers regularly need a snapshot).
const LOG_GC_THRESHOLD: u64 = 24;
const GC_EVERY_STEPS: u64 = 10;
/// Check the invariants that hold at any moment this often, not only at the end.
const CHECK_EVERY_STEPS: u64 = 100;
/// Bounds the steps the healed cluster may take to converge.
const SETTLE_STEPS: u64 = 3_000;
/// A peer with more Readies than this after one operation is stuck in a loop.
const MAX_READY_ROUNDS: usize = 64;
/// At most this many client proposals per step.
const MAX_PROPOSALS_PER_STEP: usize = 3;

type SimPeer = Peer<MemEngine, KvSm>;

/// What one seed did, for the totals and for the determinism check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Report {
    pub(crate) committed: usize,
    pub(crate) crashes: u64,
    pub(crate) snapshot_installs: u64,
    pub(crate) net: NetStats,
    /// Every (term, leader) observed.
    pub(crate) leaders: BTreeSet<(u64, u64)>,
    /// A hash of every applied command, so two runs compare without printing thousands.
    pub(crate) applied_digest: u64,
}

/// One replica: its durable engine, and its process when it is up.
struct Node {
    engine: Arc<MemEngine>,
    peer: Option<SimPeer>,
    /// The election timeout last set from the seeded RNG, to notice raft-rs drawing a new one.
    timeout: usize,
}

pub(crate) struct Cluster {
    rng: StdRng,
    now: u64,
    nodes: BTreeMap<u64, Node>,
    net: Network<Message>,
    /// Per-step probability that a client proposes at the leader (drawn with the faults).
    propose: f64,
    history: History,
    config: RaftConfig,
    election_ticks: std::ops::Range<usize>,
    logger: slog::Logger,
    seed: u64,
    next_value: u64,
    crashes: u64,
    snapshot_installs: u64,
}

impl Cluster {
    /// Bootstraps `size` peers (ids 1..=size) with a fault profile drawn from `seed`.
    pub(crate) fn new(seed: u64, size: u64) -> Cluster {
        let mut rng = StdRng::seed_from_u64(seed);
        let faults = Faults::random(&mut rng);
        let propose = rng.gen_range(0.3..0.9);
        let config = RaftConfig::default();
        let raft = config.to_raft(1);
        let mut cluster = Cluster {
            rng,
            now: 0,
            nodes: BTreeMap::new(),
            net: Network::new(faults),
            propose,
            history: History::default(),
            election_ticks: raft.min_election_tick()..raft.max_election_tick(),
            config,
            logger: slog::Logger::root(slog::Discard, slog::o!()),
            seed,
            next_value: 0,
            crashes: 0,
            snapshot_installs: 0,
        };
        let voters: Vec<u64> = (1..=size).collect();
        for &id in &voters {
            let engine = Arc::new(MemEngine::new(
                &surge_raftstore::families::process_families(&[]),
            ));
            let mut storage = GroupStorage::open(engine.clone(), GROUP).expect("open storage");
            let mut batch = WriteBatch::default();
            storage.stage_bootstrap(&voters, 1, &mut batch);
            surge_raftstore::Engine::write(engine.as_ref(), &batch, true).expect("bootstrap");
            cluster.nodes.insert(
                id,
                Node {
                    engine,
                    peer: None,
                    timeout: 0,
                },
            );
            cluster.start(id);
        }
        cluster
    }

    /// Runs `steps` steps of chaos, then heals everything and lets the cluster converge, then
    /// checks every invariant.
    pub(crate) fn run(mut self, steps: u64) -> Result<Report, String> {
        for _ in 0..steps {
            self.step()?;
            if self.now.is_multiple_of(CHECK_EVERY_STEPS) {
                self.check_running_invariants()?;
            }
        }
        self.settle()?;
        self.check_final_invariants()?;
        Ok(self.report())
    }

    // ---- the step ------------------------------------------------------------------------

    fn step(&mut self) -> Result<(), String> {
        self.now += 1;
        self.chaos();
        self.tick_all()?;
        self.deliver()?;
        self.propose()?;
        if self.now.is_multiple_of(GC_EVERY_STEPS) {
            self.compact_logs();
        }
        Ok(())
    }

    /// Partitions start or heal, then crashed peers restart and live ones crash.
    fn chaos(&mut self) {
        let faults = self.faults().clone();
        let ids: Vec<u64> = self.nodes.keys().copied().collect();
        surge_sim::partition_or_heal(&mut self.rng, &mut self.net, &ids);
        let down = self.ids_where(|n| n.peer.is_none());
        surge_sim::crash_or_restart(self, &faults, &ids, &down);
    }

    /// The profile always in force: settling turns it to [`Faults::none`], never off.
    fn faults(&self) -> &Faults {
        self.net
            .faults()
            .expect("the raft network always has a profile")
    }

    /// Crashes stay within a minority, so the cluster can still commit.
    fn may_crash_one_more(&self) -> bool {
        let down = self.nodes.len() - self.live_ids().len();
        self.faults().may_crash_one_more(self.nodes.len(), down)
    }

    fn tick_all(&mut self) -> Result<(), String> {
        for id in self.live_ids() {
            self.on_peer(id, |peer| {
                peer.node.tick();
            });
            self.drain_ready(id)?;
        }
        Ok(())
    }

    /// Steps every due message into its receiver. Half the time the receiver handles its
    /// Ready at once, otherwise after the batch, so both orders run.
    fn deliver(&mut self) -> Result<(), String> {
        let mut due = self.net.take_due(self.now);
        due.shuffle(&mut self.rng);
        let mut batched = BTreeSet::new();
        for mut msg in due {
            let to = msg.to;
            if !self.is_live(to) {
                continue;
            }
            if msg.get_msg_type() == MessageType::MsgSnapshot && self.rng.gen_bool(0.5) {
                // As the production transport does: the rows become staged files first.
                self.stage_snapshot(to, &mut msg)?;
            }
            self.on_peer(to, |peer| {
                // Errors here are stale or foreign messages, which raft-rs rejects harmlessly.
                let _ = peer.node.step(msg);
            });
            let crash_unpersisted = self.faults().crash_unpersisted;
            if self.rng.gen_bool(crash_unpersisted) && self.may_crash_one_more() {
                // Dies between receiving and persisting: whatever it had not written is lost.
                self.crash(to);
            } else if self.rng.gen_bool(0.5) {
                self.drain_ready(to)?;
            } else {
                batched.insert(to);
            }
        }
        for id in batched {
            self.drain_ready(id)?;
        }
        Ok(())
    }

    /// Replaces a snapshot's rows by files staged on the receiver's engine.
    fn stage_snapshot(&mut self, to: u64, msg: &mut Message) -> Result<(), String> {
        let engine = self
            .nodes
            .get(&to)
            .ok_or("unknown receiver")?
            .engine
            .clone();
        let data = SnapshotData::decode(msg.get_snapshot().data.as_ref())
            .map_err(|e| format!("snapshot data undecodable: {e}"))?;
        let staged = EngineStaging::new(engine)
            .stage(GROUP, data)
            .map_err(|e| format!("snapshot not staged: {e}"))?;
        msg.mut_snapshot().set_data(staged.encode_to_vec().into());
        Ok(())
    }

    /// Clients propose fresh, unique values at whichever peers believe they lead.
    fn propose(&mut self) -> Result<(), String> {
        for _ in 0..MAX_PROPOSALS_PER_STEP {
            if !self.rng.gen_bool(self.propose) {
                break;
            }
            let leaders = self.ids_where(|n| n.peer.as_ref().is_some_and(|p| p.is_leader()));
            let Some(&id) = leaders.choose(&mut self.rng) else {
                return Ok(());
            };
            let value = format!("seed{}-value{}", self.seed, self.next_value).into_bytes();
            self.next_value += 1;
            self.on_peer(id, |peer| {
                // A leader that is stepping down drops the proposal; the client would retry.
                let _ = peer.node.propose(Vec::new(), value);
            });
            self.drain_ready(id)?;
        }
        Ok(())
    }

    /// Compacts like the production loop: below what every follower still replicating needs.
    fn compact_logs(&mut self) {
        for node in self.nodes.values_mut() {
            let Some(peer) = node.peer.as_mut() else {
                continue;
            };
            let first = peer.node.store().first_log_index();
            if peer.applied_index().saturating_sub(first) >= LOG_GC_THRESHOLD {
                let point = peer.compaction_point(LOG_GC_THRESHOLD * 4);
                peer.compact_log(point).expect("compact log");
            }
        }
    }

    // ---- peers -----------------------------------------------------------------------------

    /// (Re)starts a peer from nothing but its engine.
    fn start(&mut self, id: u64) {
        let node = self.nodes.get_mut(&id).expect("known node");
        let storage = GroupStorage::open(node.engine.clone(), GROUP).expect("open storage");
        let sm = KvSm::load(node.engine.clone(), GROUP);
        let peer = Peer::open(id, storage, sm, &self.config, &self.logger).expect("open peer");
        node.peer = Some(peer);
        // Raft::new drew an election timeout from thread_rng: replace it.
        node.timeout = usize::MAX;
        self.on_peer(id, |_| ());
    }

    fn crash(&mut self, id: u64) {
        let node = self.nodes.get_mut(&id).expect("known node");
        if let Some(peer) = node.peer.take() {
            self.snapshot_installs += peer.sm.snapshot_installs();
            self.crashes += 1;
        }
    }

    /// Runs one operation on a live peer, then re-seeds its election timeout if raft-rs drew a
    /// new one, and records whether it leads.
    fn on_peer(&mut self, id: u64, op: impl FnOnce(&mut SimPeer)) {
        let Some(node) = self.nodes.get_mut(&id) else {
            return;
        };
        let Some(peer) = node.peer.as_mut() else {
            return;
        };
        let before = (peer.term(), peer.role());
        op(peer);
        let redrawn = peer.node.raft.randomized_election_timeout() != node.timeout;
        if redrawn || (peer.term(), peer.role()) != before {
            node.timeout = self.rng.gen_range(self.election_ticks.clone());
            peer.node.raft.set_randomized_election_timeout(node.timeout);
        }
        if peer.role() == StateRole::Leader {
            self.history.leaders.insert((peer.term(), id));
        }
    }

    /// Handles Readies until the peer has none: persists, sends, applies, records.
    fn drain_ready(&mut self, id: u64) -> Result<(), String> {
        for _ in 0..MAX_READY_ROUNDS {
            let Some(peer) = self.nodes.get_mut(&id).and_then(|n| n.peer.as_mut()) else {
                return Ok(());
            };
            if !peer.node.has_ready() {
                return Ok(());
            }
            let out = peer
                .handle_ready()
                .map_err(|e| format!("node {id}: handle_ready failed: {e}"))?;
            for applied in out.applied {
                if let ApplyResult::Command(data) = applied.result {
                    self.history
                        .record_applied(id, applied.index, applied.term, data)?;
                }
            }
            // A message lost on the way is reported too: a real transport learns of it when
            // its stream breaks.
            let (net, rng, now) = (&mut self.net, &mut self.rng, self.now);
            Outbox::send(out.messages, |msg| net.send(rng, now, msg) == Sent::Queued)
                .report(&mut peer.node);
        }
        Err(format!(
            "node {id} still has a Ready after {MAX_READY_ROUNDS} rounds"
        ))
    }

    fn ids_where(&self, pred: impl Fn(&Node) -> bool) -> Vec<u64> {
        self.nodes
            .iter()
            .filter(|(_, n)| pred(n))
            .map(|(id, _)| *id)
            .collect()
    }

    fn live_ids(&self) -> Vec<u64> {
        self.ids_where(|n| n.peer.is_some())
    }

    fn is_live(&self, id: u64) -> bool {
        self.nodes.get(&id).is_some_and(|n| n.peer.is_some())
    }

    // ---- the end of a run ------------------------------------------------------------------

    /// Heals the network, restarts every crashed peer and runs until all of them agree.
    fn settle(&mut self) -> Result<(), String> {
        self.net.heal();
        self.net.set_faults(Faults::none());
        for id in self.ids_where(|n| n.peer.is_none()) {
            self.start(id);
        }
        for _ in 0..SETTLE_STEPS {
            self.now += 1;
            self.tick_all()?;
            self.deliver()?;
            if self.converged() {
                return Ok(());
            }
        }
        let status: Vec<String> = self
            .nodes
            .iter()
            .filter_map(|(id, n)| n.peer.as_ref().map(|p| (id, p)))
            .map(|(id, p)| {
                format!(
                    "{id}: {:?} term {} commit {} applied {}",
                    p.role(),
                    p.term(),
                    p.commit_index(),
                    p.applied_index()
                )
            })
            .collect();
        Err(format!(
            "the healed cluster did not converge in {SETTLE_STEPS} steps: {status:?}"
        ))
    }

    /// One leader that every peer follows, and every peer has applied the leader's whole log.
    fn converged(&self) -> bool {
        let peers: Vec<&SimPeer> = self
            .nodes
            .values()
            .filter_map(|n| n.peer.as_ref())
            .collect();
        let leaders: Vec<&&SimPeer> = peers.iter().filter(|p| p.is_leader()).collect();
        let [leader] = leaders.as_slice() else {
            return false;
        };
        let last = leader.node.raft.raft_log.last_index();
        peers.iter().all(|p| {
            p.term() == leader.term()
                && p.leader_id() == leader.id()
                && p.commit_index() == last
                && p.applied_index() == last
        })
    }

    fn check_running_invariants(&self) -> Result<(), String> {
        invariants::check_election_safety(&self.history.leaders)?;
        invariants::check_log_matching(&self.log_views())
    }

    fn check_final_invariants(&self) -> Result<(), String> {
        self.check_running_invariants()?;
        let states = self.state_machines();
        invariants::check_no_committed_entry_lost(&self.history.applied, &states)?;
        invariants::check_state_machines_identical(&states)
    }

    /// Every peer's durable log, read back through `raft::Storage` from a fresh open.
    fn log_views(&self) -> BTreeMap<u64, LogView> {
        self.nodes
            .iter()
            .map(|(&id, node)| {
                let storage = GroupStorage::open(node.engine.clone(), GROUP).expect("open storage");
                let first = storage.first_index().expect("first index");
                let last = storage.last_index().expect("last index");
                let entries = storage
                    .entries(first, last + 1, None, GetEntriesContext::empty(false))
                    .expect("read log");
                let commit = storage.hard_state().commit.min(last);
                (
                    id,
                    LogView {
                        first,
                        commit,
                        entries,
                    },
                )
            })
            .collect()
    }

    /// Each peer's applied commands, from the live state machine and, to prove the rows on
    /// disk say the same, from a reload.
    fn state_machines(&self) -> BTreeMap<u64, Vec<Command>> {
        let mut states = BTreeMap::new();
        for (&id, node) in &self.nodes {
            let live = node
                .peer
                .as_ref()
                .expect("every peer runs after settling")
                .sm
                .applied()
                .to_vec();
            let reloaded = KvSm::load(node.engine.clone(), GROUP).applied().to_vec();
            assert_eq!(
                live, reloaded,
                "node {id}: in-memory state machine differs from its rows"
            );
            states.insert(id, live);
        }
        states
    }

    fn report(&self) -> Report {
        let live_installs: u64 = self
            .nodes
            .values()
            .filter_map(|n| n.peer.as_ref())
            .map(|p| p.sm.snapshot_installs())
            .sum();
        Report {
            committed: self.history.applied.len(),
            crashes: self.crashes,
            snapshot_installs: self.snapshot_installs + live_installs,
            net: self.net.stats.clone(),
            leaders: self.history.leaders.clone(),
            applied_digest: {
                let mut hasher = DefaultHasher::new();
                self.history.applied.hash(&mut hasher);
                hasher.finish()
            },
        }
    }
}

impl Processes for Cluster {
    fn rng(&mut self) -> &mut StdRng {
        &mut self.rng
    }

    fn crash(&mut self, id: u64) {
        Cluster::crash(self, id);
    }

    fn restart(&mut self, id: u64) {
        self.start(id);
    }
}
