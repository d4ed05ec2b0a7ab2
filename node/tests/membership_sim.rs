//! Tier 2: shard membership changes on an in-process multi-raft cluster, interleaved with
//! faults (DESIGN.md §11).
//!
//! Five nodes, each with its own in-memory engine; three shards, each founded on nodes 1-3 at
//! the founding epoch. The real `Peer` and `ShardSm` run every replica, driven step by step
//! from a seeded RNG. Every message carries its sender's membership epoch at send time and is
//! judged on arrival by the real `epoch::check`, as the raft loop does: a refused stale sender
//! gets a tombstone notice and destroys itself if its epoch is older than the notice's; a
//! message from before its sender's id (re)joined is an older incarnation's, and that replica
//! is told so.
//!
//! A small coordinator plays the operators. Every few ticks it reads the shard leaders'
//! reports and now and then starts moving one replica of a shard to a node that holds none,
//! step by step as `coordinator::operator` does: add a learner → wait until it has caught up
//! (matched near commit, no snapshot pending) → hand leadership away if the leaving replica
//! leads → one explicit joint change promoting the learner and demoting the leaving voter →
//! leave the joint configuration (the leader also does that by itself, as the raft loop does
//! when `needs_leave_joint`) → remove the old replica. Each step names the epoch it was
//! computed at and reaches the leader a little later, where the executor's and the loop's
//! epoch checks refuse it if the shard moved on. Nodes heartbeat and reconcile like
//! `node::replicas`: a node named in a shard's configuration creates an empty replica at that
//! epoch (a snapshot fills it); one that is no longer named destroys its replica
//! (`stage_destroy`) and keeps a tombstone, which an older epoch never brings back.
//!
//! Faults: node crashes (a restart rebuilds every live replica from the engine), partitions,
//! message drop, duplication and reordering, lost heartbeats, and log compaction small enough
//! that snapshots happen. Clients submit orders throughout. A second test replays the seeds
//! that once credited a destroyed replica's messages to its node's next replica (fixed by join
//! epochs, see `surge_raftstore::epoch`) and adds rare very late messages (2-20 s: a stalled
//! stream or raft loop delivering its queue).
//!
//! Checked for every seed: (1) after healing and settling, every acknowledged order is stored
//! on every member's replica; (2) a destroyed replica stays destroyed: its node never runs the
//! shard again unless re-added at a newer epoch and keeps no row of it, late messages for it
//! change nothing, and late messages from it are never credited to its node's next replica;
//! (3) one epoch names one configuration on every replica (at every applied conf change,
//! snapshot install and restart), and raft-rs's configuration always equals the stored one;
//! (4) at most one leader per shard and term; (5) after settling, every member holds
//! byte-identical data rows and the same applied index, non-members hold nothing, and the
//! membership reached is the one the coordinator intended. The run also counts what happened
//! (moves, snapshots, refusals, notices, faults) and asserts lower bounds on it.
//!
//! A failure names the seed; `MEMBERSHIP_SIM_SEED=<n>` replays it alone, and
//! `MEMBERSHIP_SIM_TRACE=1` prints its membership events.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::AddAssign;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;

use prost::Message as _;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use surge_node::instructions::conf_change_of;
use surge_node::replicas::FOUNDING_EPOCH;
use surge_proto::v1::shard_command::Command as ShardCmd;
use surge_proto::v1::{ConfChangeStep, Order, ShardCommand, SubmitBatch, SubmitItem};
use surge_raftstore::epoch::{self, Verdict};
use surge_raftstore::group_storage::stage_destroy;
use surge_raftstore::raft::eraftpb::{ConfChangeV2, ConfState, Message, MessageType};
use surge_raftstore::raft::{ProgressState, SnapshotStatus, StateRole};
use surge_raftstore::{
    keys, logger, Applied as AppliedEntry, ApplyResult, Cf, Engine, GroupStorage, MemEngine, Peer,
    RaftConfig, WriteBatch,
};
use surge_shard::{Applied, ItemOutcome, ShardOutput, ShardSm};

const NODES: [u64; 5] = [1, 2, 3, 4, 5];
const FOUNDERS: [u64; 3] = [1, 2, 3];
const SHARDS: u32 = 3;
const TENANT: u64 = 7;
const STEPS: u64 = 1_500;
const SETTLE_STEPS: u64 = 900;
const SEEDS: u64 = 12;
const LOG_GC_THRESHOLD: u64 = 16;
/// The coordinator reads reports and decides every this many ticks.
const COORD_EVERY: u64 = 4;
/// Each node heartbeats (and reconciles its replicas) every this many ticks.
const HEARTBEAT_EVERY: u64 = 8;
/// Chance per coordinator round that an idle shard starts a move, while faults run.
const MOVE_CHANCE: f64 = 0.1;
/// `coordinator::operator::CATCH_UP_SLACK`.
const CATCH_UP_SLACK: u64 = 64;
/// The raft loop's `TRANSFER_MAX_LAG`.
const TRANSFER_MAX_LAG: u64 = 128;
/// The raft loop's `TOMBSTONE_EVERY` (1 s), in ticks of 100 ms.
const TOMBSTONE_EVERY: u64 = 10;

type SimPeer = Peer<MemEngine, ShardSm<MemEngine>>;

// ---------------------------------------------------------------------------------------------
// Configurations and the invariant books.
// ---------------------------------------------------------------------------------------------

/// A configuration as sets, so two replicas' `ConfState`s compare by content, not by order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Membership {
    voters: BTreeSet<u64>,
    outgoing: BTreeSet<u64>,
    learners: BTreeSet<u64>,
    learners_next: BTreeSet<u64>,
    auto_leave: bool,
}

impl Membership {
    fn of(cs: &ConfState) -> Membership {
        Membership {
            voters: cs.voters.iter().copied().collect(),
            outgoing: cs.voters_outgoing.iter().copied().collect(),
            learners: cs.learners.iter().copied().collect(),
            learners_next: cs.learners_next.iter().copied().collect(),
            auto_leave: cs.auto_leave,
        }
    }

    fn voters(ids: &[u64]) -> Membership {
        Membership {
            voters: ids.iter().copied().collect(),
            ..Membership::default()
        }
    }

    /// A replica without state (waiting for its first snapshot) has no configuration.
    fn is_empty(&self) -> bool {
        self.voters.is_empty() && self.learners.is_empty()
    }

    fn is_joint(&self) -> bool {
        !self.outgoing.is_empty()
    }

    /// As `epoch::is_member`.
    fn contains(&self, id: u64) -> bool {
        self.voters.contains(&id)
            || self.outgoing.contains(&id)
            || self.learners.contains(&id)
            || self.learners_next.contains(&id)
    }
}

/// Invariant 3: (shard, epoch) → the configuration the first replica seen at it held.
#[derive(Default)]
struct EpochBook {
    seen: BTreeMap<(u32, u64), (u64, Membership)>,
}

impl EpochBook {
    fn record(&mut self, shard: u32, epoch: u64, node: u64, m: Membership) -> Result<(), String> {
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
    fn joined(&self, shard: u32, node: u64, at: u64) -> Option<u64> {
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

/// Invariant 4: (shard, term) → its leader.
#[derive(Default)]
struct LeaderBook {
    leaders: BTreeMap<(u32, u64), u64>,
}

impl LeaderBook {
    fn record(&mut self, shard: u32, term: u64, node: u64) -> Result<(), String> {
        match self.leaders.insert((shard, term), node) {
            Some(other) if other != node => Err(format!(
                "shard {shard} term {term}: nodes {other} and {node} both lead"
            )),
            _ => Ok(()),
        }
    }
}

/// Invariant 2: (node, shard) → the newest epoch the node destroyed its replica at.
#[derive(Default)]
struct TombstoneBook {
    removed: BTreeMap<(u64, u32), u64>,
}

impl TombstoneBook {
    fn destroyed(&mut self, node: u64, shard: u32, epoch: u64) {
        let e = self.removed.entry((node, shard)).or_insert(0);
        *e = (*e).max(epoch);
    }

    /// `node` runs a replica of `shard` that was created at epoch `created`.
    fn check_running(&self, node: u64, shard: u32, created: u64) -> Result<(), String> {
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
fn check_orders(
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

// ---------------------------------------------------------------------------------------------
// The coordinator: reports, moves and the operator step function.
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
struct Progress {
    matched: u64,
    snapshot: bool,
    /// Heard from within the leader's last check-quorum round.
    active: bool,
}

/// What a shard's leader reports in its heartbeat.
#[derive(Clone, Debug)]
struct Report {
    leader: u64,
    epoch: u64,
    membership: Membership,
    commit: u64,
    followers: BTreeMap<u64, Progress>,
}

impl Report {
    fn of(peer: &SimPeer) -> Report {
        let followers = peer
            .node
            .raft
            .prs()
            .iter()
            .filter(|(id, _)| **id != peer.id())
            .map(|(id, p)| {
                let snapshot = p.state == ProgressState::Snapshot;
                (
                    *id,
                    Progress {
                        matched: p.matched,
                        snapshot,
                        active: p.recent_active,
                    },
                )
            })
            .collect();
        Report {
            leader: peer.id(),
            epoch: peer.epoch(),
            membership: Membership::of(peer.conf_state()),
            commit: peer.commit_index(),
            followers,
        }
    }

    /// `coordinator::shard_view::ShardView::caught_up`.
    fn caught_up(&self, id: u64) -> bool {
        id == self.leader
            || self.followers.get(&id).is_some_and(|f| {
                !f.snapshot && f.matched > 0 && f.matched + CATCH_UP_SLACK >= self.commit
            })
    }

    /// `ShardView::can_lead`: caught up and heard from lately.
    fn can_lead(&self, id: u64) -> bool {
        self.caught_up(id) && self.followers.get(&id).is_some_and(|f| f.active)
    }
}

/// Replace the replica of a shard on `from` by one on `to`.
#[derive(Clone, Copy, Debug)]
struct Move {
    from: u64,
    to: u64,
}

/// What the shard's leader is asked to do (`coordinator::operator::Instruction`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Instruction {
    AddLearner(u64),
    EnterJoint { promote: u64, demote: u64 },
    LeaveJoint,
    Remove(u64),
    TransferLeader(u64),
}

#[derive(Debug, PartialEq, Eq)]
enum Decision {
    Do(Instruction),
    Wait,
    Done,
    Failed(String),
}

/// The operator step as a `ConfChangeStep`, which the node's executor turns into Raft.
fn step_of(what: Instruction) -> ConfChangeStep {
    match what {
        Instruction::AddLearner(id) => ConfChangeStep {
            add_learners: vec![id],
            ..ConfChangeStep::default()
        },
        Instruction::EnterJoint { promote, demote } => ConfChangeStep {
            promote: vec![promote],
            demote: vec![demote],
            joint: true,
            ..ConfChangeStep::default()
        },
        Instruction::LeaveJoint => ConfChangeStep {
            leave_joint: true,
            ..ConfChangeStep::default()
        },
        Instruction::Remove(id) => ConfChangeStep {
            remove: vec![id],
            ..ConfChangeStep::default()
        },
        Instruction::TransferLeader(_) => ConfChangeStep::default(),
    }
}

/// A caught-up live voter other than `not` and the leader, the lowest id first.
fn transfer_target(r: &Report, not: u64, alive: &BTreeSet<u64>) -> Decision {
    r.membership
        .voters
        .iter()
        .copied()
        .filter(|v| *v != not && *v != r.leader && alive.contains(v) && r.can_lead(*v))
        .min()
        .map_or(Decision::Wait, |t| {
            Decision::Do(Instruction::TransferLeader(t))
        })
}

/// `coordinator::operator::move_replica`, from the leader's report.
fn decide(r: &Report, mv: &Move, alive: &BTreeSet<u64>) -> Decision {
    let (from, to) = (mv.from, mv.to);
    let m = &r.membership;
    let to_voter = m.voters.contains(&to);
    if to_voter && !m.contains(from) {
        return Decision::Done;
    }
    if m.is_joint() {
        return Decision::Do(Instruction::LeaveJoint);
    }
    if to_voter {
        if r.leader == from {
            return transfer_target(r, from, alive);
        }
        return Decision::Do(Instruction::Remove(from));
    }
    if !m.voters.contains(&from) {
        return Decision::Failed(format!("node {from} no longer holds a voter"));
    }
    if !m.contains(to) {
        return Decision::Do(Instruction::AddLearner(to));
    }
    if !r.caught_up(to) {
        return Decision::Wait;
    }
    if r.leader == from {
        return transfer_target(r, from, alive);
    }
    Decision::Do(Instruction::EnterJoint {
        promote: to,
        demote: from,
    })
}

/// An instruction on its way to the leader it was computed for.
#[derive(Clone, Copy, Debug)]
struct Directive {
    at: u64,
    node: u64,
    shard: u32,
    epoch: u64,
    what: Instruction,
    /// The executor let it through; the raft loop judges it next.
    executed: bool,
}

struct Coordinator {
    /// Per shard: the newest epoch a leader reported, and its configuration (the routing
    /// table nodes reconcile against).
    routes: BTreeMap<u32, (u64, Membership)>,
    moves: BTreeMap<u32, Move>,
    /// Per shard: the voters the finished moves left.
    intended: BTreeMap<u32, BTreeSet<u64>>,
    outbox: Vec<Directive>,
}

impl Coordinator {
    fn new() -> Coordinator {
        let founders = Membership::voters(&FOUNDERS);
        Coordinator {
            routes: (0..SHARDS)
                .map(|s| (s, (FOUNDING_EPOCH, founders.clone())))
                .collect(),
            moves: BTreeMap::new(),
            intended: (0..SHARDS).map(|s| (s, founders.voters.clone())).collect(),
            outbox: Vec::new(),
        }
    }

    fn take_report(&mut self, shard: u32, r: &Report) {
        let route = self.routes.entry(shard).or_default();
        if r.epoch > route.0 {
            *route = (r.epoch, r.membership.clone());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The cluster.
// ---------------------------------------------------------------------------------------------

/// A node's record of its replica of one shard (the real node keeps it in its `meta`
/// family): the epoch it was created at, or for a tombstone the epoch it was removed at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Record {
    epoch: u64,
    tombstone: bool,
}

struct SimNode {
    engine: Arc<MemEngine>,
    /// Durable like the engine: they survive crashes.
    records: BTreeMap<u32, Record>,
    /// None while the node is down.
    peers: Option<BTreeMap<u32, SimPeer>>,
    /// Per shard: the election timeout last set from the seeded RNG.
    timeouts: BTreeMap<u32, usize>,
}

#[derive(Clone, Debug)]
enum Packet {
    Raft {
        shard: u32,
        /// The sender's epoch, as the real envelope carries it.
        epoch: u64,
        /// Harness bookkeeping, not on the wire: the epoch the sending replica was created
        /// at, which tells its incarnations apart.
        incarnation: u64,
        msg: Message,
    },
    /// Node `from` tells node `to` it is no member of `shard` as of `epoch` — or, with
    /// `older_incarnation`, that `to`'s id joined at `epoch`, after its replica was created.
    Tombstone {
        shard: u32,
        epoch: u64,
        from: u64,
        to: u64,
        older_incarnation: bool,
    },
}

impl Packet {
    fn ends(&self) -> (u64, u64) {
        match self {
            Packet::Raft { msg, .. } => (msg.from, msg.to),
            Packet::Tombstone { from, to, .. } => (*from, *to),
        }
    }
}

struct InFlight {
    deliver_at: u64,
    packet: Packet,
}

/// A submit waiting for its entry to apply on the replica that proposed it.
struct Waiting {
    ext: String,
    index: u64,
    term: u64,
}

#[derive(Default, Debug, Clone, Copy)]
struct Stats {
    acked: u64,
    moves_started: u64,
    moves_done: u64,
    changes_proposed: u64,
    auto_leaves: u64,
    transfers: u64,
    stale_directives: u64,
    epoch_rejections: u64,
    busy_rejections: u64,
    replicas_created: u64,
    recreated: u64,
    coordinator_destroys: u64,
    snapshots_sent: u64,
    snapshots_installed: u64,
    stale_refusals: u64,
    older_incarnation_refusals: u64,
    refused_before_creation: u64,
    no_group: u64,
    late_for_removed: u64,
    notices_sent: u64,
    notice_destroys: u64,
    notices_ignored: u64,
    crashes: u64,
    partitions: u64,
    dropped: u64,
    duplicated: u64,
    delayed: u64,
}

impl AddAssign for Stats {
    fn add_assign(&mut self, o: Stats) {
        self.acked += o.acked;
        self.moves_started += o.moves_started;
        self.moves_done += o.moves_done;
        self.changes_proposed += o.changes_proposed;
        self.auto_leaves += o.auto_leaves;
        self.transfers += o.transfers;
        self.stale_directives += o.stale_directives;
        self.epoch_rejections += o.epoch_rejections;
        self.busy_rejections += o.busy_rejections;
        self.replicas_created += o.replicas_created;
        self.recreated += o.recreated;
        self.coordinator_destroys += o.coordinator_destroys;
        self.snapshots_sent += o.snapshots_sent;
        self.snapshots_installed += o.snapshots_installed;
        self.stale_refusals += o.stale_refusals;
        self.older_incarnation_refusals += o.older_incarnation_refusals;
        self.refused_before_creation += o.refused_before_creation;
        self.no_group += o.no_group;
        self.late_for_removed += o.late_for_removed;
        self.notices_sent += o.notices_sent;
        self.notice_destroys += o.notice_destroys;
        self.notices_ignored += o.notices_ignored;
        self.crashes += o.crashes;
        self.partitions += o.partitions;
        self.dropped += o.dropped;
        self.duplicated += o.duplicated;
        self.delayed += o.delayed;
    }
}

struct Sim {
    rng: StdRng,
    now: u64,
    nodes: BTreeMap<u64, SimNode>,
    net: Vec<InFlight>,
    /// Pairs of nodes that cannot reach each other (both directions are listed).
    cut: BTreeSet<(u64, u64)>,
    coord: Coordinator,
    waiting: BTreeMap<(u64, u32), Vec<Waiting>>,
    /// External id → (shard, order id) of every acknowledged order.
    acked: BTreeMap<String, (u32, String)>,
    next_key: u64,
    /// (informant, shard, removed replica) → when it was last told.
    notices: BTreeMap<(u64, u32, u64), u64>,
    /// (node, shard) → the highest epoch its live replica has been seen at.
    epoch_floor: BTreeMap<(u64, u32), u64>,
    epochs: EpochBook,
    leaders: LeaderBook,
    tombstones: TombstoneBook,
    violation: Option<String>,
    config: RaftConfig,
    faults: bool,
    /// Some messages arrive very late (see [`Sim::delay`]).
    late: bool,
    clients: bool,
    /// The coordinator starts new moves (it stops before the end, so the cluster settles).
    moving: bool,
    /// `MEMBERSHIP_SIM_TRACE` set: print membership events.
    tracing: bool,
    /// `MEMBERSHIP_SIM_NO_SENDER_CHECK` set: skip [`Sim::check_sender_alive`], to see what a
    /// violation of it leads to.
    sender_check: bool,
    stats: Stats,
}

fn ext_of(key: u64) -> String {
    format!("ext-{key}")
}

fn shard_of_key(key: u64) -> u32 {
    surge_proto::routing::shard_for(&TENANT.to_string(), &ext_of(key), SHARDS)
}

fn submit_command(key: u64, now: u64) -> Vec<u8> {
    let order = Order {
        platform: "taobao".into(),
        shop: "s".into(),
        external_order_id: ext_of(key),
        buyer_remark: format!("order {key}"),
        ..Order::default()
    };
    ShardCommand {
        command: Some(ShardCmd::Submit(SubmitBatch {
            tenant_id: TENANT,
            received_at_ms: now,
            items: vec![SubmitItem {
                payload_hash: vec![0],
                order: Some(order),
            }],
        })),
    }
    .encode_to_vec()
}

/// `node::replicas::open_peer` on the in-memory engine: a founding replica without state is
/// bootstrapped, a later one starts empty at its creation epoch.
fn open_peer(
    engine: &Arc<MemEngine>,
    node: u64,
    shard: u32,
    record: Record,
    config: &RaftConfig,
) -> SimPeer {
    let group = u64::from(shard);
    let mut storage = GroupStorage::open(engine.clone(), group).expect("open storage");
    if !storage.is_initialized() {
        let mut batch = WriteBatch::default();
        if record.epoch == FOUNDING_EPOCH {
            storage.stage_bootstrap(&FOUNDERS, FOUNDING_EPOCH, &mut batch);
        } else {
            storage.stage_creation_epoch(record.epoch, &mut batch);
        }
        if !batch.is_empty() {
            engine.write(&batch, true).expect("create");
        }
    }
    let sm = ShardSm::new(shard, engine.clone());
    Peer::open(node, storage, sm, config, &logger::raft_logger(group)).expect("open peer")
}

/// How many rows of `shard` the engine holds, in every column family.
fn group_rows(engine: &MemEngine, shard: u32) -> usize {
    let prefix = keys::group_prefix(u64::from(shard));
    let end = keys::group_end(u64::from(shard));
    let mut n = 0;
    for cf in Cf::ALL {
        engine
            .scan(cf, &prefix, &end, &mut |_, _| {
                n += 1;
                true
            })
            .expect("scan");
    }
    n
}

// Nodes and replicas: start, crash, create, destroy.
impl Sim {
    fn new(seed: u64, late: bool) -> Sim {
        let config = RaftConfig {
            log_gc_threshold: LOG_GC_THRESHOLD,
            ..RaftConfig::default()
        };
        let mut sim = Sim {
            rng: StdRng::seed_from_u64(seed),
            now: 0,
            nodes: BTreeMap::new(),
            net: Vec::new(),
            cut: BTreeSet::new(),
            coord: Coordinator::new(),
            waiting: BTreeMap::new(),
            acked: BTreeMap::new(),
            next_key: 0,
            notices: BTreeMap::new(),
            epoch_floor: BTreeMap::new(),
            epochs: EpochBook::default(),
            leaders: LeaderBook::default(),
            tombstones: TombstoneBook::default(),
            violation: None,
            config,
            faults: true,
            late,
            clients: true,
            moving: true,
            tracing: std::env::var_os("MEMBERSHIP_SIM_TRACE").is_some(),
            sender_check: std::env::var_os("MEMBERSHIP_SIM_NO_SENDER_CHECK").is_none(),
            stats: Stats::default(),
        };
        let founded = Record {
            epoch: FOUNDING_EPOCH,
            tombstone: false,
        };
        for id in NODES {
            let records = if FOUNDERS.contains(&id) {
                (0..SHARDS).map(|s| (s, founded)).collect()
            } else {
                BTreeMap::new()
            };
            let node = SimNode {
                engine: Arc::new(MemEngine::new()),
                records,
                peers: None,
                timeouts: BTreeMap::new(),
            };
            sim.nodes.insert(id, node);
            sim.start(id);
        }
        sim
    }

    fn trace(&self, what: impl FnOnce() -> String) {
        if self.tracing {
            eprintln!("[{:>5}] {}", self.now, what());
        }
    }

    /// Keeps the first violation seen; the run stops at the end of the step.
    fn flag(&mut self, result: Result<(), String>) {
        if let Err(e) = result {
            self.violation.get_or_insert(e);
        }
    }

    fn peer(&mut self, id: u64, shard: u32) -> Option<&mut SimPeer> {
        self.nodes.get_mut(&id)?.peers.as_mut()?.get_mut(&shard)
    }

    fn is_up(&self, id: u64) -> bool {
        self.nodes[&id].peers.is_some()
    }

    /// Opens every live replica of the node from its engine.
    fn start(&mut self, id: u64) {
        let config = self.config.clone();
        let node = self.nodes.get_mut(&id).expect("node");
        let live: Vec<(u32, Record)> = node
            .records
            .iter()
            .filter(|(_, r)| !r.tombstone)
            .map(|(s, r)| (*s, *r))
            .collect();
        let peers = live
            .iter()
            .map(|(s, r)| (*s, open_peer(&node.engine, id, *s, *r, &config)))
            .collect();
        node.peers = Some(peers);
        node.timeouts.clear();
        self.trace(|| format!("node {id} starts"));
        for (s, _) in live {
            self.reseed(id, s, true);
            self.note_state(id, s);
        }
    }

    fn crash(&mut self, id: u64) {
        if let Some(node) = self.nodes.get_mut(&id) {
            node.peers = None;
        }
        // Whatever that node was serving never completes (the client saw a broken connection).
        self.waiting.retain(|(node, _), _| *node != id);
        self.stats.crashes += 1;
        self.trace(|| format!("node {id} crashes"));
    }

    /// `Replicas::create`: an empty replica (or a founding one) at `epoch`.
    fn create_replica(&mut self, id: u64, shard: u32, epoch: u64) {
        let config = self.config.clone();
        let node = self.nodes.get_mut(&id).expect("node");
        let Some(peers) = node.peers.as_mut() else {
            return;
        };
        let had_tombstone = node.records.get(&shard).is_some_and(|r| r.tombstone);
        let record = Record {
            epoch,
            tombstone: false,
        };
        node.records.insert(shard, record);
        peers.insert(shard, open_peer(&node.engine, id, shard, record, &config));
        self.stats.replicas_created += 1;
        self.trace(|| format!("node {id} creates shard {shard} at epoch {epoch}"));
        if had_tombstone {
            self.stats.recreated += 1;
        }
        self.reseed(id, shard, true);
        self.note_state(id, shard);
    }

    /// `Replicas::destroy`: every row of the group goes, and a tombstone at `epoch` stays.
    fn destroy_replica(&mut self, id: u64, shard: u32, epoch: u64) {
        let node = self.nodes.get_mut(&id).expect("node");
        let Some(peer) = node.peers.as_mut().and_then(|p| p.remove(&shard)) else {
            return;
        };
        drop(peer);
        let mut batch = WriteBatch::default();
        stage_destroy(u64::from(shard), &mut batch);
        node.engine.write(&batch, true).expect("destroy");
        node.records.insert(
            shard,
            Record {
                epoch,
                tombstone: true,
            },
        );
        node.timeouts.remove(&shard);
        self.tombstones.destroyed(id, shard, epoch);
        self.trace(|| format!("node {id} destroys shard {shard}, tombstone at {epoch}"));
        self.epoch_floor.remove(&(id, shard));
        self.waiting.remove(&(id, shard));
    }

    /// raft-rs randomizes election timeouts with its own RNG (at every reset, which also zeroes
    /// `election_elapsed`): replace them from the seeded one whenever one may have happened, so
    /// a seed replays exactly. Also the place every leader is recorded.
    fn reseed(&mut self, id: u64, shard: u32, force: bool) {
        let Some(node) = self.nodes.get_mut(&id) else {
            return;
        };
        let Some(peer) = node.peers.as_mut().and_then(|p| p.get_mut(&shard)) else {
            return;
        };
        let current = peer.node.raft.randomized_election_timeout();
        let last = node.timeouts.get(&shard).copied().unwrap_or(usize::MAX);
        if force || current != last || peer.node.raft.election_elapsed == 0 {
            let t = self.rng.gen_range(10..20);
            peer.node.raft.set_randomized_election_timeout(t);
            node.timeouts.insert(shard, t);
        }
        if peer.role() == StateRole::Leader {
            let term = peer.term();
            let result = self.leaders.record(shard, term, id);
            self.flag(result);
        }
    }
}

// Readies, messages and notices.
impl Sim {
    fn drain(&mut self, id: u64, shard: u32) {
        for _ in 0..64 {
            let Some(peer) = self.peer(id, shard) else {
                return;
            };
            if !peer.node.has_ready() {
                self.reseed(id, shard, false);
                return;
            }
            let installing = peer.node.raft.raft_log.unstable.snapshot.is_some();
            let out = peer.handle_ready().expect("handle_ready");
            // The raft loop proposes leaving a joint configuration after every round.
            let leave = peer.needs_leave_joint();
            if leave {
                let _ = peer
                    .node
                    .propose_conf_change(Vec::new(), ConfChangeV2::default());
            }
            let epoch = peer.epoch();
            self.stats.auto_leaves += u64::from(leave);
            self.stats.snapshots_installed += u64::from(installing);
            let confs: Vec<Membership> = out
                .applied
                .iter()
                .filter_map(|a| match &a.result {
                    ApplyResult::ConfChange(cs) => Some(Membership::of(cs)),
                    _ => None,
                })
                .collect();
            // The configuration and epoch move only at a conf change or a snapshot.
            if installing || !confs.is_empty() {
                self.note_confs(id, shard, epoch, confs);
                self.note_state(id, shard);
            }
            self.send_all(id, shard, epoch, out.messages);
            self.complete(id, shard, &out.applied);
        }
        panic!("node {id} shard {shard}: endless Readies");
    }

    /// Records the configuration each conf change of one Ready produced: every one bumped the
    /// epoch by one, so they end at `epoch`.
    fn note_confs(&mut self, id: u64, shard: u32, epoch: u64, confs: Vec<Membership>) {
        let n = confs.len() as u64;
        for (k, m) in (0u64..).zip(confs) {
            let at = epoch + 1 + k - n;
            self.trace(|| format!("node {id} shard {shard} applies epoch {at}: {m:?}"));
            let result = self.epochs.record(shard, at, id, m);
            self.flag(result);
        }
    }

    /// Checks a replica's stored configuration against raft-rs's and the epoch book, and that
    /// its epoch never goes back (nor below its creation epoch).
    fn note_state(&mut self, id: u64, shard: u32) {
        let node = &self.nodes[&id];
        let Some(peer) = node.peers.as_ref().and_then(|p| p.get(&shard)) else {
            return;
        };
        let created = node.records.get(&shard).map_or(0, |r| r.epoch);
        let stored = Membership::of(peer.conf_state());
        let live = Membership::of(&peer.node.raft.prs().conf().to_conf_state());
        let epoch = peer.epoch();
        let floor = self
            .epoch_floor
            .get(&(id, shard))
            .copied()
            .unwrap_or(created);
        let result = if epoch < floor {
            Err(format!(
                "node {id} shard {shard}: epoch went back from {floor} to {epoch}"
            ))
        } else if stored != live {
            Err(format!(
                "node {id} shard {shard} epoch {epoch}: raft-rs runs {live:?}, storage holds \
                 {stored:?}"
            ))
        } else if stored.is_empty() {
            Ok(())
        } else {
            self.epochs.record(shard, epoch, id, stored)
        };
        self.epoch_floor.insert((id, shard), epoch.max(floor));
        self.flag(result);
    }

    /// Sends a Ready's messages with the sender's epoch, as `RaftLoop::send_messages` does.
    fn send_all(&mut self, id: u64, shard: u32, epoch: u64, messages: Vec<Message>) {
        let incarnation = self.nodes[&id].records.get(&shard).map_or(0, |r| r.epoch);
        let mut unreachable = Vec::new();
        let mut snapshots = Vec::new();
        for msg in messages {
            let to = msg.to;
            let is_snapshot = msg.get_msg_type() == MessageType::MsgSnapshot;
            let sent = self.send(Packet::Raft {
                shard,
                epoch,
                incarnation,
                msg,
            });
            if !sent {
                unreachable.push(to);
            }
            if is_snapshot {
                self.stats.snapshots_sent += 1;
                snapshots.push((to, sent));
            }
        }
        let Some(peer) = self.peer(id, shard) else {
            return;
        };
        for to in unreachable {
            peer.node.report_unreachable(to);
        }
        for (to, sent) in snapshots {
            let status = if sent {
                SnapshotStatus::Finish
            } else {
                SnapshotStatus::Failure
            };
            peer.node.report_snapshot(to, status);
        }
    }

    /// Answers the submits whose entries applied.
    fn complete(&mut self, id: u64, shard: u32, applied: &[AppliedEntry<ShardOutput>]) {
        let Some(waits) = self.waiting.get_mut(&(id, shard)) else {
            return;
        };
        let mut done = Vec::new();
        for a in applied {
            waits.retain(|w| {
                if w.index != a.index {
                    return true;
                }
                if let (true, ApplyResult::Command(result)) = (w.term == a.term, &a.result) {
                    done.push((w.ext.clone(), result.clone()));
                }
                false
            });
        }
        for (ext, result) in done {
            let outcome = match result {
                Ok(Applied::Submitted(items)) => items.into_iter().next(),
                other => {
                    self.flag(Err(format!("a submit of {ext} answered {other:?}")));
                    continue;
                }
            };
            match outcome {
                Some(ItemOutcome::Accepted(a)) => {
                    self.stats.acked += 1;
                    self.acked.insert(ext, (shard, a.order_id));
                }
                other => self.flag(Err(format!("a fresh {ext} was answered {other:?}"))),
            }
        }
    }

    /// Queues a packet; false if the transport knows at once it cannot deliver it.
    fn send(&mut self, packet: Packet) -> bool {
        let (from, to) = packet.ends();
        if self.cut.contains(&(from, to)) || !self.is_up(to) {
            return false;
        }
        if self.faults && self.rng.gen_bool(0.05) {
            self.stats.dropped += 1;
            return true;
        }
        let copies = if self.faults && self.rng.gen_bool(0.03) {
            self.stats.duplicated += 1;
            2
        } else {
            1
        };
        for _ in 0..copies {
            let delay = self.delay();
            self.net.push(InFlight {
                deliver_at: self.now + delay,
                packet: packet.clone(),
            });
        }
        true
    }

    /// A few ticks, so messages reorder; rarely very long (a stalled stream flushing late).
    fn delay(&mut self) -> u64 {
        if !self.faults {
            return 0;
        }
        if self.late && self.rng.gen_bool(0.004) {
            self.stats.delayed += 1;
            return self.rng.gen_range(20..200);
        }
        self.rng.gen_range(0..4)
    }

    fn deliver(&mut self) {
        let (due, later): (Vec<InFlight>, Vec<InFlight>) =
            self.net.drain(..).partition(|m| m.deliver_at <= self.now);
        self.net = later;
        for m in due {
            let (from, to) = m.packet.ends();
            if self.cut.contains(&(from, to)) {
                continue;
            }
            match m.packet {
                Packet::Raft {
                    shard,
                    epoch,
                    incarnation,
                    msg,
                } => self.deliver_raft(shard, epoch, incarnation, msg),
                Packet::Tombstone {
                    shard,
                    epoch,
                    to,
                    older_incarnation,
                    ..
                } => self.deliver_notice(shard, epoch, to, older_incarnation),
            }
        }
    }

    /// `RaftLoop::on_message`: a message for a group the node does not run is dropped; the
    /// others are judged by their epoch first.
    fn deliver_raft(&mut self, shard: u32, epoch: u64, incarnation: u64, msg: Message) {
        let (from, to) = (msg.from, msg.to);
        let Some(peer) = self.peer(to, shard) else {
            self.stats.no_group += 1;
            let removed = self.nodes[&to]
                .records
                .get(&shard)
                .is_some_and(|r| r.tombstone);
            if removed {
                self.stats.late_for_removed += 1;
                let result = self.check_stays_removed(to, shard);
                self.flag(result);
            }
            return;
        };
        let local = peer.epoch();
        let since = peer.member_since(from);
        match epoch::check(local, peer.conf_state(), from, since, epoch) {
            Verdict::Accept => {
                let conf = Membership::of(peer.conf_state());
                let current = msg.term >= peer.term();
                let result = if current && self.sender_check {
                    self.check_sender_alive(shard, local, &conf, incarnation, &msg)
                } else {
                    Ok(())
                };
                self.flag(result);
                if let Some(peer) = self.peer(to, shard) {
                    let _ = peer.node.step(msg);
                }
                self.drain(to, shard);
            }
            Verdict::Drop => self.stats.refused_before_creation += 1,
            Verdict::StaleSender => {
                self.trace(|| {
                    format!("node {to} shard {shard} at {local}: stale {from} at {epoch}")
                });
                self.stats.stale_refusals += 1;
                self.notify(to, shard, local, from, false);
            }
            Verdict::OlderIncarnation { since } => {
                self.trace(|| {
                    format!(
                        "node {to} shard {shard}: {from} at {epoch} predates its join at {since}"
                    )
                });
                self.stats.older_incarnation_refusals += 1;
                self.notify(to, shard, since, from, true);
            }
        }
    }

    /// Tells a removed replica so, at most once per `TOMBSTONE_EVERY`.
    fn notify(&mut self, informant: u64, shard: u32, epoch: u64, removed: u64, older: bool) {
        let key = (informant, shard, removed);
        if self
            .notices
            .get(&key)
            .is_some_and(|t| self.now - t < TOMBSTONE_EVERY)
        {
            return;
        }
        self.notices.insert(key, self.now);
        self.stats.notices_sent += 1;
        let _ = self.send(Packet::Tombstone {
            shard,
            epoch,
            from: informant,
            to: removed,
            older_incarnation: older,
        });
    }

    /// `Replicas::on_tombstone`: destroy the replica if it is older than the notice (for an
    /// older incarnation: created before its id joined, tombstone just below that epoch).
    fn deliver_notice(&mut self, shard: u32, epoch: u64, to: u64, older: bool) {
        let node = &self.nodes[&to];
        let Some(peer) = node.peers.as_ref().and_then(|p| p.get(&shard)) else {
            return;
        };
        let created = node.records.get(&shard).map_or(0, |r| r.epoch);
        let (stale, tombstone_at) = if older {
            (created < epoch, epoch.saturating_sub(1))
        } else {
            (peer.epoch().max(created) < epoch, epoch)
        };
        if !stale {
            self.stats.notices_ignored += 1;
            return;
        }
        self.destroy_replica(to, shard, tombstone_at);
        self.stats.notice_destroys += 1;
    }
}

// The coordinator's side: reports, moves, directives, heartbeats.
impl Sim {
    /// The report of the leader with the highest term, if any replica leads.
    fn report(&self, shard: u32) -> Option<Report> {
        let mut best: Option<&SimPeer> = None;
        for node in self.nodes.values() {
            let Some(peer) = node.peers.as_ref().and_then(|p| p.get(&shard)) else {
                continue;
            };
            if peer.is_leader() && best.is_none_or(|b| peer.term() > b.term()) {
                best = Some(peer);
            }
        }
        best.map(Report::of)
    }

    fn alive(&self) -> BTreeSet<u64> {
        NODES.into_iter().filter(|id| self.is_up(*id)).collect()
    }

    fn coordinate(&mut self) {
        if !self.now.is_multiple_of(COORD_EVERY) {
            return;
        }
        for shard in 0..SHARDS {
            let Some(report) = self.report(shard) else {
                continue;
            };
            self.coord.take_report(shard, &report);
            if self.coord.moves.contains_key(&shard) {
                self.drive_move(shard, &report);
            } else if self.moving && self.rng.gen_bool(MOVE_CHANCE) {
                self.start_move(shard);
            }
        }
    }

    fn drive_move(&mut self, shard: u32, report: &Report) {
        let Some(mv) = self.coord.moves.get(&shard).copied() else {
            return;
        };
        match decide(report, &mv, &self.alive()) {
            Decision::Done => {
                self.coord.moves.remove(&shard);
                let voters = report.membership.voters.clone();
                self.coord.intended.insert(shard, voters);
                self.stats.moves_done += 1;
                self.trace(|| format!("shard {shard}: {mv:?} done"));
            }
            Decision::Failed(why) => {
                self.coord.moves.remove(&shard);
                self.flag(Err(format!("shard {shard}: {mv:?} failed: {why}")));
            }
            Decision::Wait => {}
            Decision::Do(what) => {
                let at = self.now + self.rng.gen_range(1..4);
                self.coord.outbox.push(Directive {
                    at,
                    node: report.leader,
                    shard,
                    epoch: report.epoch,
                    what,
                    executed: false,
                });
            }
        }
    }

    /// Moves a random voter of the shard to a random node that holds no replica of it.
    fn start_move(&mut self, shard: u32) {
        let (_, route) = &self.coord.routes[&shard];
        if route.is_joint() || !route.learners.is_empty() || route.voters.len() != 3 {
            return;
        }
        let voters: Vec<u64> = route.voters.iter().copied().collect();
        let spare: Vec<u64> = NODES
            .into_iter()
            .filter(|id| !route.contains(*id))
            .collect();
        let from = voters[self.rng.gen_range(0..voters.len())];
        let to = spare[self.rng.gen_range(0..spare.len())];
        self.coord.moves.insert(shard, Move { from, to });
        self.trace(|| format!("shard {shard}: move {from} -> {to} starts"));
        self.stats.moves_started += 1;
    }

    fn run_directives(&mut self) {
        let (due, later): (Vec<Directive>, Vec<Directive>) = std::mem::take(&mut self.coord.outbox)
            .into_iter()
            .partition(|d| d.at <= self.now);
        self.coord.outbox = later;
        for d in due {
            if d.executed {
                self.loop_request(d);
            } else {
                self.execute(d);
            }
        }
    }

    /// `Executor::run`: only the leader the step was computed for, at that epoch, acts on it;
    /// it hands the change to its raft loop, which sees it a tick later.
    fn execute(&mut self, d: Directive) {
        let Some(peer) = self.peer(d.node, d.shard) else {
            return;
        };
        if !peer.is_leader() || peer.epoch() != d.epoch {
            self.stats.stale_directives += 1;
            return;
        }
        self.coord.outbox.push(Directive {
            at: self.now + 1,
            executed: true,
            ..d
        });
    }

    fn loop_request(&mut self, d: Directive) {
        self.trace(|| {
            format!(
                "node {} shard {}: {:?} at epoch {}",
                d.node, d.shard, d.what, d.epoch
            )
        });
        match d.what {
            Instruction::TransferLeader(to) => self.transfer_leader(d.node, d.shard, to),
            what => self.propose_change(d.node, d.shard, what, d.epoch),
        }
        self.drain(d.node, d.shard);
    }

    /// `RaftLoop::on_conf_change`: the leader checks the epoch the change was meant for, and
    /// that no other change is in progress, before proposing.
    fn propose_change(&mut self, id: u64, shard: u32, what: Instruction, want: u64) {
        let cc = conf_change_of(&step_of(what)).expect("a valid step");
        let Some(peer) = self.peer(id, shard) else {
            return;
        };
        if !peer.is_leader() {
            return;
        }
        if peer.epoch() != want {
            self.stats.epoch_rejections += 1;
            return;
        }
        let joint = !peer.conf_state().voters_outgoing.is_empty();
        if peer.node.raft.has_pending_conf() || joint && !cc.changes.is_empty() {
            self.stats.busy_rejections += 1;
            return;
        }
        if peer.node.propose_conf_change(Vec::new(), cc).is_ok() {
            self.stats.changes_proposed += 1;
        }
    }

    /// `RaftLoop::on_transfer_leader`.
    fn transfer_leader(&mut self, id: u64, shard: u32, to: u64) {
        let Some(peer) = self.peer(id, shard) else {
            return;
        };
        if !peer.is_leader() || peer.id() == to {
            return;
        }
        if !peer.conf_state().voters.contains(&to) || peer.node.raft.has_pending_conf() {
            return;
        }
        let last = peer.node.raft.raft_log.last_index();
        let matched = peer.node.raft.prs().get(to).map_or(0, |p| p.matched);
        if last.saturating_sub(matched) > TRANSFER_MAX_LAG {
            return;
        }
        peer.node.transfer_leader(to);
        self.stats.transfers += 1;
    }

    /// Every node heartbeats now and then (some heartbeats get lost) and reconciles.
    fn heartbeats(&mut self) {
        for id in NODES {
            if !(self.now + id).is_multiple_of(HEARTBEAT_EVERY) || !self.is_up(id) {
                continue;
            }
            if self.faults && self.rng.gen_bool(0.3) {
                continue;
            }
            self.reconcile(id);
        }
    }

    /// `Replicas::reconcile` against the coordinator's routes: create a replica where the
    /// node is named (unless a tombstone at that epoch or newer says no), destroy one the
    /// shard left at a newer epoch.
    fn reconcile(&mut self, id: u64) {
        let routes = self.coord.routes.clone();
        for (shard, (epoch, membership)) in routes {
            let record = self.nodes[&id].records.get(&shard).copied();
            if membership.contains(id) {
                if record.is_none_or(|r| r.tombstone && r.epoch < epoch) {
                    self.create_replica(id, shard, epoch);
                }
            } else if record.is_some_and(|r| !r.tombstone && epoch > r.epoch) {
                self.destroy_replica(id, shard, epoch);
                self.stats.coordinator_destroys += 1;
            }
        }
    }
}

// Faults, clients, the step and the checks.
impl Sim {
    fn chaos(&mut self) {
        if !self.faults {
            return;
        }
        let down: Vec<u64> = NODES.into_iter().filter(|id| !self.is_up(*id)).collect();
        if down.is_empty() && self.rng.gen_bool(0.004) {
            let victim = NODES[self.rng.gen_range(0..NODES.len())];
            self.crash(victim);
        } else if !down.is_empty() && self.rng.gen_bool(0.03) {
            self.start(down[0]);
        }
        if self.cut.is_empty() && self.rng.gen_bool(0.003) {
            let isolated = NODES[self.rng.gen_range(0..NODES.len())];
            for other in NODES.into_iter().filter(|o| *o != isolated) {
                self.cut.insert((isolated, other));
                self.cut.insert((other, isolated));
            }
            self.stats.partitions += 1;
        } else if !self.cut.is_empty() && self.rng.gen_bool(0.02) {
            self.cut.clear();
        }
    }

    /// A leader, as a client would find one (a deposed leader may still think it leads).
    fn any_leader(&mut self, shard: u32) -> Option<u64> {
        let candidates: Vec<u64> = NODES
            .into_iter()
            .filter(|id| {
                self.nodes[id]
                    .peers
                    .as_ref()
                    .and_then(|p| p.get(&shard))
                    .is_some_and(|p| p.is_leader())
            })
            .collect();
        if candidates.is_empty() {
            return None;
        }
        Some(candidates[self.rng.gen_range(0..candidates.len())])
    }

    /// Submits a few orders, each with a fresh external id.
    fn client(&mut self) {
        for _ in 0..self.rng.gen_range(0..2) {
            let key = self.next_key;
            self.next_key += 1;
            let shard = shard_of_key(key);
            let Some(leader) = self.any_leader(shard) else {
                continue;
            };
            let cmd = submit_command(key, self.now);
            let peer = self.peer(leader, shard).expect("leader");
            if peer.node.propose(Vec::new(), cmd).is_ok() {
                let index = peer.node.raft.raft_log.last_index();
                let term = peer.term();
                self.waiting
                    .entry((leader, shard))
                    .or_default()
                    .push(Waiting {
                        ext: ext_of(key),
                        index,
                        term,
                    });
            }
            self.drain(leader, shard);
        }
    }

    fn compact(&mut self) {
        for id in NODES {
            for shard in 0..SHARDS {
                if let Some(peer) = self.peer(id, shard) {
                    let first = peer.node.store().first_log_index();
                    if peer.applied_index().saturating_sub(first) >= LOG_GC_THRESHOLD {
                        let point = peer.compaction_point(LOG_GC_THRESHOLD);
                        peer.compact_log(point).expect("compact");
                    }
                }
            }
        }
    }

    fn step(&mut self) {
        self.now += 1;
        self.chaos();
        for id in NODES {
            for shard in 0..SHARDS {
                if let Some(peer) = self.peer(id, shard) {
                    peer.node.tick();
                }
                self.drain(id, shard);
            }
        }
        self.deliver();
        self.coordinate();
        self.run_directives();
        self.heartbeats();
        if self.clients {
            self.client();
        }
        if self.now.is_multiple_of(10) {
            self.compact();
        }
        self.check_running();
        if self.now.is_multiple_of(25) {
            self.check_removed_rows();
        }
    }

    /// Invariant 2, for every running replica: not one its node destroyed, unless re-added at
    /// a newer epoch.
    fn check_running(&mut self) {
        let mut result = Ok(());
        for (id, node) in &self.nodes {
            for shard in node.peers.iter().flat_map(|p| p.keys()) {
                let created = node.records.get(shard).map_or(0, |r| r.epoch);
                let tombstone = node.records.get(shard).is_none_or(|r| r.tombstone);
                result = result.and_then(|()| {
                    if tombstone {
                        return Err(format!("node {id} runs shard {shard} without a record"));
                    }
                    self.tombstones.check_running(*id, *shard, created)
                });
            }
        }
        self.flag(result);
    }

    /// Invariant 2, seen from the receiver: a late message of the current term from a
    /// destroyed replica is never stepped as if its node's current member of the shard had
    /// sent it. Raft ids are node ids, so once a node is re-added, its predecessor's messages
    /// look like the new replica's, and raft-rs would credit the new replica with the old
    /// one's log. (Older terms raft-rs ignores.)
    fn check_sender_alive(
        &self,
        shard: u32,
        local: u64,
        conf: &Membership,
        incarnation: u64,
        msg: &Message,
    ) -> Result<(), String> {
        let from = msg.from;
        let record = self.nodes[&from].records.get(&shard);
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
    fn check_stays_removed(&self, id: u64, shard: u32) -> Result<(), String> {
        let node = &self.nodes[&id];
        let runs = node.peers.as_ref().is_some_and(|p| p.contains_key(&shard));
        let rows = group_rows(&node.engine, shard);
        if runs || rows > 0 {
            return Err(format!(
                "node {id} destroyed shard {shard}, yet runs it ({runs}) or keeps {rows} rows"
            ));
        }
        Ok(())
    }

    fn check_removed_rows(&mut self) {
        let removed: Vec<(u64, u32)> = self
            .nodes
            .iter()
            .flat_map(|(id, n)| {
                n.records
                    .iter()
                    .filter(|(_, r)| r.tombstone)
                    .map(|(s, _)| (*id, *s))
            })
            .collect();
        for (id, shard) in removed {
            let result = self.check_stays_removed(id, shard);
            self.flag(result);
        }
    }

    fn heal(&mut self) {
        self.faults = false;
        self.moving = false;
        self.cut.clear();
        for id in NODES {
            if !self.is_up(id) {
                self.start(id);
            }
        }
    }

    /// Every data row of `shard` on `id`.
    fn dump(&self, id: u64, shard: u32) -> Vec<(Cf, Vec<u8>, Vec<u8>)> {
        let engine = &self.nodes[&id].engine;
        let prefix = keys::group_prefix(u64::from(shard));
        let end = keys::group_end(u64::from(shard));
        let mut rows = Vec::new();
        for cf in Cf::DATA {
            engine
                .scan(cf, &prefix, &end, &mut |k, v| {
                    rows.push((cf, k.to_vec(), v.to_vec()));
                    true
                })
                .expect("scan");
        }
        rows
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
            let node = &self.nodes[&id];
            let peer = node.peers.as_ref().and_then(|p| p.get(&shard));
            match peer {
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
                    let rows = group_rows(&node.engine, shard);
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
                let peer = &self.nodes[id].peers.as_ref().expect("up")[&shard];
                (*id, peer.applied_index())
            })
            .collect();
        if applied.values().collect::<BTreeSet<_>>().len() != 1 {
            return Err(format!("shard {shard}: members applied {applied:?}"));
        }
        let first = self.dump(members[0], shard);
        for id in &members[1..] {
            if self.dump(*id, shard) != first {
                return Err(format!(
                    "shard {shard}: node {id} holds other data than node {}",
                    members[0]
                ));
            }
        }
        Ok(())
    }

    fn check_settled(&self) -> Result<(), String> {
        for shard in 0..SHARDS {
            self.check_membership(shard)?;
            self.check_replicas_agree(shard)?;
        }
        let stored = |id: u64, shard: u32, ext: &str| -> Option<String> {
            let peer = self.nodes[&id].peers.as_ref()?.get(&shard)?;
            let rec = peer.sm.get_by_external(TENANT, "taobao", ext).ok()??;
            Some(rec.order_id)
        };
        check_orders(&self.acked, &self.coord.intended, &stored)
    }

    fn take_violation(&mut self) -> Result<(), String> {
        match self.violation.take() {
            Some(v) => Err(format!("tick {}: {v}", self.now)),
            None => Ok(()),
        }
    }
}

fn run(seed: u64, late: bool) -> Result<Stats, String> {
    let mut sim = Sim::new(seed, late);
    for _ in 0..STEPS {
        sim.step();
        sim.take_violation()?;
    }
    sim.heal();
    for i in 0..SETTLE_STEPS {
        sim.clients = i < SETTLE_STEPS / 3;
        sim.step();
        sim.take_violation()?;
    }
    sim.check_settled()?;
    Ok(sim.stats)
}

/// `run`, with a panic (raft-rs asserts, a storage error) turned into a failure of the seed.
fn run_caught(seed: u64, late: bool) -> Result<Stats, String> {
    match panic::catch_unwind(AssertUnwindSafe(|| run(seed, late))) {
        Ok(result) => result,
        Err(payload) => {
            let text = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Err(format!("panicked: {text}"))
        }
    }
}

/// Runs every seed, or `MEMBERSHIP_SIM_SEED` alone, and sums their stats; a failure names its
/// seed.
fn run_seeds(late: bool) -> (u64, Stats) {
    let seeds: Vec<u64> = match std::env::var("MEMBERSHIP_SIM_SEED") {
        Ok(s) => vec![s.parse().expect("MEMBERSHIP_SIM_SEED must be a number")],
        Err(_) => (0..SEEDS).collect(),
    };
    let mut total = Stats::default();
    for seed in &seeds {
        match run_caught(*seed, late) {
            Ok(s) => total += s,
            Err(e) => panic!("MEMBERSHIP_SIM_SEED={seed}: {e}"),
        }
    }
    println!(
        "membership sim totals over {} seeds: {total:#?}",
        seeds.len()
    );
    (seeds.len() as u64, total)
}

#[test]
fn replicas_move_between_nodes_without_losing_orders_or_epochs() {
    let (many, total) = run_seeds(false);
    if many < SEEDS {
        return; // A replayed seed is judged by the invariants alone.
    }
    assert!(
        total.moves_done >= 10 * many && total.acked >= 400 * many,
        "too little happened: {total:?}"
    );
    assert!(
        total.snapshots_installed >= total.moves_done / 2 && total.recreated >= 5 * many,
        "learners were not caught up by snapshots: {total:?}"
    );
    assert!(
        total.stale_refusals >= 20 * many
            && total.notices_sent >= 5 * many
            && total.notice_destroys >= many
            && total.late_for_removed >= 20 * many,
        "removed replicas were not refused and told: {total:?}"
    );
    assert!(
        total.crashes >= many && total.partitions >= 1 && total.transfers >= 5 * many,
        "faults did not happen: {total:?}"
    );
    assert!(
        total.stale_directives + total.epoch_rejections >= 10 * many,
        "no step was refused for its epoch: {total:?}"
    );
}

/// Seeds (and whether messages may arrive very late) on which a destroyed replica's message is
/// credited to its node's next replica of the shard: 24 with ordinary reordering, 6 with late
/// messages (where, unchecked, raft-rs panics).
const BUG_SEEDS: [(u64, bool); 2] = [(24, false), (6, true)];

/// Invariant 2 on the seeds above, then every seed with rare very late messages: a stream or a
/// raft loop that stalled for a few seconds delivers its queue, so a destroyed replica's last
/// messages can arrive after its node was added to the shard again.
#[test]
fn a_destroyed_replicas_messages_never_reach_its_successor() {
    if std::env::var_os("MEMBERSHIP_SIM_SEED").is_none() {
        for (seed, late) in BUG_SEEDS {
            if let Err(e) = run_caught(seed, late) {
                panic!("MEMBERSHIP_SIM_SEED={seed} (late messages: {late}): {e}");
            }
        }
    }
    let (many, total) = run_seeds(true);
    assert!(
        many < SEEDS || total.moves_done >= 10 * many && total.delayed >= many,
        "too little happened: {total:?}"
    );
}

#[test]
fn the_checkers_catch_violations() {
    let joint = Membership {
        voters: [2, 3, 4].into(),
        outgoing: [1, 2, 3].into(),
        learners_next: [1].into(),
        ..Membership::default()
    };
    let mut epochs = EpochBook::default();
    assert_eq!(epochs.record(0, 4, 1, joint.clone()), Ok(()));
    assert_eq!(epochs.record(0, 4, 2, joint.clone()), Ok(()));
    assert_eq!(
        epochs.record(1, 4, 2, Membership::voters(&[1, 2, 3])),
        Ok(())
    );
    assert!(epochs
        .record(0, 4, 3, Membership::voters(&[2, 3, 4]))
        .is_err());
    // Node 1 is a member from the founding epoch 2 through 4 (outgoing), gone at 5, back at 6:
    // a message of its replica from before 6 is not from the member at 6.
    let learner_1 = Membership {
        learners: [1].into(),
        ..Membership::voters(&[2, 3, 4])
    };
    assert_eq!(
        epochs.record(0, 2, 1, Membership::voters(&[1, 2, 3])),
        Ok(())
    );
    assert_eq!(
        epochs.record(0, 3, 1, Membership::voters(&[1, 2, 3])),
        Ok(())
    );
    assert_eq!(
        epochs.record(0, 5, 2, Membership::voters(&[2, 3, 4])),
        Ok(())
    );
    assert_eq!(epochs.record(0, 6, 2, learner_1), Ok(()));
    assert_eq!(epochs.joined(0, 1, 4), Some(2));
    assert_eq!(epochs.joined(0, 1, 5), None);
    assert_eq!(epochs.joined(0, 1, 6), Some(6));
    assert_eq!(epochs.joined(0, 1, 7), None);
    // Order inside a ConfState does not matter; content does.
    let a = ConfState {
        voters: vec![1, 2, 3],
        ..ConfState::default()
    };
    let b = ConfState {
        voters: vec![3, 1, 2],
        ..ConfState::default()
    };
    assert_eq!(Membership::of(&a), Membership::of(&b));

    let mut leaders = LeaderBook::default();
    assert_eq!(leaders.record(0, 5, 1), Ok(()));
    assert_eq!(leaders.record(0, 5, 1), Ok(()));
    assert_eq!(leaders.record(1, 5, 2), Ok(()));
    assert!(leaders.record(0, 5, 2).is_err());

    let mut tombstones = TombstoneBook::default();
    tombstones.destroyed(4, 0, 7);
    assert_eq!(tombstones.check_running(4, 1, 3), Ok(()));
    assert_eq!(tombstones.check_running(4, 0, 8), Ok(()));
    assert!(tombstones.check_running(4, 0, 7).is_err());
    assert!(tombstones.check_running(4, 0, 5).is_err());

    let acked = BTreeMap::from([("ext-1".to_string(), (0, "o1".to_string()))]);
    let members = BTreeMap::from([(0, BTreeSet::from([1, 2, 4]))]);
    let everywhere = |_: u64, _: u32, _: &str| Some("o1".to_string());
    assert_eq!(check_orders(&acked, &members, &everywhere), Ok(()));
    let lost_on_4 = |id: u64, _: u32, _: &str| (id != 4).then(|| "o1".to_string());
    assert!(check_orders(&acked, &members, &lost_on_4).is_err());
}

#[test]
fn the_step_function_moves_a_replica_in_order() {
    let alive: BTreeSet<u64> = NODES.into_iter().collect();
    let mv = Move { from: 1, to: 4 };
    let progress = |matched| Progress {
        matched,
        snapshot: false,
        active: true,
    };
    let mut r = Report {
        leader: 1,
        epoch: FOUNDING_EPOCH,
        membership: Membership::voters(&[1, 2, 3]),
        commit: 100,
        followers: BTreeMap::from([(2, progress(100)), (3, progress(100))]),
    };
    assert_eq!(
        decide(&r, &mv, &alive),
        Decision::Do(Instruction::AddLearner(4))
    );
    r.membership.learners.insert(4);
    r.followers.insert(4, progress(0));
    assert_eq!(decide(&r, &mv, &alive), Decision::Wait);
    r.followers.insert(4, progress(90));
    assert_eq!(
        decide(&r, &mv, &alive),
        Decision::Do(Instruction::TransferLeader(2))
    );
    r.leader = 2;
    assert_eq!(
        decide(&r, &mv, &alive),
        Decision::Do(Instruction::EnterJoint {
            promote: 4,
            demote: 1
        })
    );
    r.membership = joint_of(&[2, 3, 4], &[1, 2, 3], &[1]);
    assert_eq!(
        decide(&r, &mv, &alive),
        Decision::Do(Instruction::LeaveJoint)
    );
    r.membership = Membership {
        learners: [1].into(),
        ..Membership::voters(&[2, 3, 4])
    };
    assert_eq!(
        decide(&r, &mv, &alive),
        Decision::Do(Instruction::Remove(1))
    );
    r.membership = Membership::voters(&[2, 3, 4]);
    assert_eq!(decide(&r, &mv, &alive), Decision::Done);
    let leave = conf_change_of(&step_of(Instruction::LeaveJoint)).expect("leave");
    assert!(leave.changes.is_empty());
}

fn joint_of(voters: &[u64], outgoing: &[u64], learners_next: &[u64]) -> Membership {
    Membership {
        voters: voters.iter().copied().collect(),
        outgoing: outgoing.iter().copied().collect(),
        learners_next: learners_next.iter().copied().collect(),
        ..Membership::default()
    }
}
