//! [`Sim`]: the membership simulation on a surge-sim [`ShardCluster`]. The cluster opens,
//! crashes and drives the replicas and carries their packets; this file adds the node's
//! durable replica records, its replica lifecycle (create, destroy, restart from records), the
//! clients, and one step. Delivery, the coordinator's side and the checks are `impl Sim`
//! blocks in `delivery.rs`, `operator.rs` and `checks.rs`.

use std::collections::BTreeMap;

use prost::Message as _;
use rand::Rng;
use surge_node::replicas::FOUNDING_EPOCH;
use surge_proto::v1::shard_command::Command as ShardCmd;
use surge_proto::v1::{Order, ShardCommand, SubmitBatch, SubmitItem};
use surge_sim::{Birth, Faults, LateDelivery, ShardCluster, ShardSim};

use crate::books::{EpochBook, TombstoneBook};
use crate::coordinator::Coordinator;
use crate::delivery::Packet;
use crate::stats::Stats;
use crate::{FOUNDERS, LOG_GC_THRESHOLD, NODES, SHARDS, TENANT};

/// A node's record of its replica of one shard (the real node keeps it in its `meta`
/// family): the epoch it was created at, or for a tombstone the epoch it was removed at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Record {
    pub(crate) epoch: u64,
    pub(crate) tombstone: bool,
}

impl Record {
    /// `node::replicas::open_peer`: a founding replica without state is bootstrapped, a later
    /// one starts empty at its creation epoch.
    fn birth(self) -> Birth<'static> {
        if self.epoch == FOUNDING_EPOCH {
            Birth::Founded {
                voters: &FOUNDERS,
                epoch: FOUNDING_EPOCH,
            }
        } else {
            Birth::Created { epoch: self.epoch }
        }
    }
}

/// A submit waiting for its entry to apply on the replica that proposed it.
pub(crate) struct Waiting {
    pub(crate) ext: String,
    pub(crate) index: u64,
    pub(crate) term: u64,
}

pub(crate) struct Sim {
    pub(crate) cluster: ShardCluster<Packet>,
    /// Node → its replica records; durable like the engine: they survive crashes.
    pub(crate) records: BTreeMap<u64, BTreeMap<u32, Record>>,
    pub(crate) coord: Coordinator,
    pub(crate) waiting: BTreeMap<(u64, u32), Vec<Waiting>>,
    /// External id → (shard, order id) of every acknowledged order.
    pub(crate) acked: BTreeMap<String, (u32, String)>,
    next_key: u64,
    /// (informant, shard, removed replica) → when it was last told.
    pub(crate) notices: BTreeMap<(u64, u32, u64), u64>,
    /// (node, shard) → the highest epoch its live replica has been seen at.
    pub(crate) epoch_floor: BTreeMap<(u64, u32), u64>,
    pub(crate) epochs: EpochBook,
    pub(crate) tombstones: TombstoneBook,
    pub(crate) clients: bool,
    /// The coordinator starts new moves (it stops before the end, so the cluster settles).
    pub(crate) moving: bool,
    /// `MEMBERSHIP_SIM_TRACE` set: print membership events.
    tracing: bool,
    /// `MEMBERSHIP_SIM_NO_SENDER_CHECK` set: skip [`Sim::check_sender_alive`], to see what a
    /// violation of it leads to.
    pub(crate) sender_check: bool,
    pub(crate) stats: Stats,
}

pub(crate) fn ext_of(key: u64) -> String {
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

// Construction, accessors, and replicas created and destroyed (start and crash: `ShardSim`).
impl Sim {
    /// With `late`, some messages arrive very late (2-20 s: a stalled stream or raft loop
    /// delivering its queue).
    pub(crate) fn new(seed: u64, late: bool) -> Sim {
        let faults = if late {
            Faults::steady().with_late(LateDelivery {
                chance: 0.004,
                ticks: 20..200,
            })
        } else {
            Faults::steady()
        };
        let founded = Record {
            epoch: FOUNDING_EPOCH,
            tombstone: false,
        };
        let records = NODES
            .into_iter()
            .map(|id| {
                let founder = FOUNDERS.contains(&id);
                let records = (0..SHARDS).filter(|_| founder).map(|s| (s, founded));
                (id, records.collect())
            })
            .collect();
        let mut sim = Sim {
            cluster: ShardCluster::new(seed, &NODES, LOG_GC_THRESHOLD, faults),
            records,
            coord: Coordinator::new(),
            waiting: BTreeMap::new(),
            acked: BTreeMap::new(),
            next_key: 0,
            notices: BTreeMap::new(),
            epoch_floor: BTreeMap::new(),
            epochs: EpochBook::default(),
            tombstones: TombstoneBook::default(),
            clients: true,
            moving: true,
            tracing: std::env::var_os("MEMBERSHIP_SIM_TRACE").is_some(),
            sender_check: std::env::var_os("MEMBERSHIP_SIM_NO_SENDER_CHECK").is_none(),
            stats: Stats::default(),
        };
        sim.start_all();
        sim
    }

    pub(crate) fn trace(&self, what: impl FnOnce() -> String) {
        if self.tracing {
            eprintln!("[{:>5}] {}", self.cluster.now, what());
        }
    }

    /// Faults (and lost heartbeats) run until the network heals.
    pub(crate) fn faulty(&self) -> bool {
        self.cluster.net.faults().is_some()
    }

    pub(crate) fn record(&self, id: u64, shard: u32) -> Option<Record> {
        self.records.get(&id)?.get(&shard).copied()
    }

    /// What the run did, with the network's counters.
    pub(crate) fn stats(&self) -> Stats {
        let net = &self.cluster.net.stats;
        Stats {
            partitions: net.partitions,
            dropped: net.dropped,
            duplicated: net.duplicated,
            delayed: net.delayed,
            ..self.stats
        }
    }

    /// `Replicas::create`: an empty replica (or a founding one) at `epoch`.
    pub(crate) fn create_replica(&mut self, id: u64, shard: u32, epoch: u64) {
        if !self.cluster.is_up(id) {
            return;
        }
        let had_tombstone = self.record(id, shard).is_some_and(|r| r.tombstone);
        let record = Record {
            epoch,
            tombstone: false,
        };
        self.records.entry(id).or_default().insert(shard, record);
        self.cluster.add_replica(id, shard, record.birth());
        self.stats.replicas_created += 1;
        self.trace(|| format!("node {id} creates shard {shard} at epoch {epoch}"));
        if had_tombstone {
            self.stats.recreated += 1;
        }
        self.note_state(id, shard);
    }

    /// `Replicas::destroy`: every row of the group goes, and a tombstone at `epoch` stays.
    pub(crate) fn destroy_replica(&mut self, id: u64, shard: u32, epoch: u64) {
        if !self.cluster.destroy_replica(id, shard) {
            return;
        }
        let tombstone = Record {
            epoch,
            tombstone: true,
        };
        self.records.entry(id).or_default().insert(shard, tombstone);
        self.tombstones.destroyed(id, shard, epoch);
        self.trace(|| format!("node {id} destroys shard {shard}, tombstone at {epoch}"));
        self.epoch_floor.remove(&(id, shard));
        self.waiting.remove(&(id, shard));
    }
}

// Clients and the step.
impl Sim {
    /// Submits a few orders, each with a fresh external id.
    fn client(&mut self) {
        for _ in 0..self.cluster.rng.gen_range(0..2) {
            let key = self.next_key;
            self.next_key += 1;
            let shard = shard_of_key(key);
            let Some(leader) = self.cluster.any_leader(shard) else {
                continue;
            };
            let cmd = submit_command(key, self.cluster.now);
            let peer = self.cluster.peer(leader, shard).expect("leader");
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

    pub(crate) fn step(&mut self) {
        self.cluster.now += 1;
        self.chaos();
        self.tick_all(SHARDS);
        self.deliver();
        self.coordinate();
        self.run_directives();
        self.heartbeats();
        if self.clients {
            self.client();
        }
        if self.cluster.now.is_multiple_of(10) {
            self.cluster.compact();
        }
        self.check_running();
        if self.cluster.now.is_multiple_of(25) {
            self.check_removed_rows();
        }
    }
}

impl ShardSim for Sim {
    type Packet = Packet;

    fn cluster(&mut self) -> &mut ShardCluster<Packet> {
        &mut self.cluster
    }

    /// Opens every live replica of the node from its engine.
    fn start(&mut self, id: u64) {
        let live: Vec<(u32, Birth)> = self.records[&id]
            .iter()
            .filter(|(_, r)| !r.tombstone)
            .map(|(s, r)| (*s, r.birth()))
            .collect();
        self.trace(|| format!("node {id} starts"));
        self.cluster.start(id, &live);
        for (s, _) in live {
            self.note_state(id, s);
        }
    }

    fn crash(&mut self, id: u64) {
        self.cluster.crash(id);
        // Whatever that node was serving never completes (the client saw a broken connection).
        self.waiting.retain(|(node, _), _| *node != id);
        self.stats.crashes += 1;
        self.trace(|| format!("node {id} crashes"));
    }

    fn drain(&mut self, id: u64, shard: u32) {
        self.handle_readies(id, shard);
    }
}
