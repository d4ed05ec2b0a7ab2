//! [`Sim`]: the shard simulation's clients and their bookkeeping on a surge-sim
//! [`ShardCluster`]. The cluster opens, crashes and drives the replicas and carries their
//! messages; this adds what the clients do (submit, ReadIndex reads), what they wait for, and
//! the history the checkers judge.

use std::collections::BTreeMap;

use prost::Message as _;
use rand::Rng;
use surge_proto::v1::shard_command::Command as ShardCmd;
use surge_proto::v1::{Order, ShardCommand, SubmitBatch, SubmitItem};
use surge_raftstore::raft::eraftpb::Message;
use surge_raftstore::ApplyResult;
use surge_shard::{Applied, ItemOutcome};
use surge_sim::{Birth, Faults, Packet, Round, ShardCluster, ShardSim};

use crate::register::{Op, OpKind, OpResult};
use crate::{shard_of_key, NODES, SHARDS, TENANT};

/// Clients draw their external ids from this many, so retries and conflicts are common.
const KEYS: u64 = 24;
/// Small, so that lagging and restarted replicas regularly need a snapshot.
const LOG_GC_THRESHOLD: u64 = 16;
/// The epoch every shard is founded at, on all of `NODES`.
const FOUNDING_EPOCH: u64 = 2;
/// A peer with more Readies than this after one operation is stuck in a loop.
const MAX_READY_ROUNDS: usize = 64;

/// A Raft message of one shard's group.
#[derive(Clone, Debug)]
pub(crate) struct ShardPacket {
    shard: u32,
    msg: Message,
}

impl Packet for ShardPacket {
    fn ends(&self) -> (u64, u64) {
        (self.msg.from, self.msg.to)
    }
}

/// A client operation waiting for the replica it was sent to.
enum Waiting {
    Submit {
        op: usize,
        index: u64,
        term: u64,
    },
    Read {
        op: usize,
        ctx: Vec<u8>,
        index: Option<u64>,
    },
}

surge_sim::counters! {
    /// What one run did (summed over the seeds by the test).
    pub(crate) struct Stats { acked, conflicts, reads, crashes, snapshots, dropped, duplicated }
}

pub(crate) struct Sim {
    pub(crate) cluster: ShardCluster<ShardPacket>,
    pub(crate) ops: Vec<Op>,
    /// Per (node, shard): operations waiting for that replica.
    waiting: BTreeMap<(u64, u32), Vec<Waiting>>,
    /// Clients stop before the end, so the cluster can converge.
    pub(crate) clients: bool,
    next_ctx: u64,
    stats: Stats,
}

fn order(key: u64, payload: u8) -> Order {
    Order {
        platform: "taobao".into(),
        shop: "s".into(),
        external_order_id: format!("ext-{key}"),
        buyer_remark: format!("payload {payload}"),
        ..Order::default()
    }
}

impl Sim {
    pub(crate) fn new(seed: u64) -> Sim {
        let mut sim = Sim {
            cluster: ShardCluster::new(seed, &NODES, LOG_GC_THRESHOLD, Faults::steady()),
            ops: Vec::new(),
            waiting: BTreeMap::new(),
            clients: true,
            next_ctx: 0,
            stats: Stats::default(),
        };
        sim.start_all();
        sim
    }

    /// What the run did, with the network's counters.
    pub(crate) fn stats(&self) -> Stats {
        let net = &self.cluster.net.stats;
        Stats {
            dropped: net.dropped,
            duplicated: net.duplicated,
            ..self.stats
        }
    }

    fn serve_reads(&mut self, id: u64, shard: u32, applied: u64) {
        let Some(waits) = self.waiting.get_mut(&(id, shard)) else {
            return;
        };
        let mut ready = Vec::new();
        waits.retain(|w| match w {
            Waiting::Read {
                op, index: Some(i), ..
            } if *i <= applied => {
                ready.push(*op);
                false
            }
            _ => true,
        });
        for op in ready {
            let key = self.ops[op].key;
            let found = self
                .cluster
                .peer_ref(id, shard)
                .map(|p| {
                    p.sm.get_by_external(TENANT, "taobao", &format!("ext-{key}"))
                        .expect("read")
                        .map(|r| r.order_id)
                })
                .expect("peer");
            self.stats.reads += 1;
            self.ops[op].completed = Some((self.cluster.now, OpResult::Found(found)));
        }
    }

    fn deliver(&mut self) {
        for packet in self.cluster.take_due() {
            let (to, shard) = (packet.msg.to, packet.shard);
            let Some(peer) = self.cluster.peer(to, shard) else {
                continue;
            };
            let _ = peer.node.step(packet.msg);
            self.drain(to, shard);
        }
    }

    fn client(&mut self) {
        for _ in 0..self.cluster.rng.gen_range(0..3) {
            let key = self.cluster.rng.gen_range(0..KEYS);
            let shard = shard_of_key(key);
            let Some(leader) = self.cluster.any_leader(shard) else {
                continue;
            };
            let read = self.cluster.rng.gen_bool(0.4);
            if read {
                self.read(key, shard, leader);
            } else {
                self.submit(key, shard, leader);
            }
            self.drain(leader, shard);
        }
    }

    fn read(&mut self, key: u64, shard: u32, leader: u64) {
        let op = self.ops.len();
        self.next_ctx += 1;
        let ctx = self.next_ctx.to_be_bytes().to_vec();
        self.ops.push(Op {
            key,
            kind: OpKind::Read,
            invoked: self.cluster.now,
            completed: None,
        });
        let peer = self.cluster.peer(leader, shard).expect("leader");
        peer.node.read_index(ctx.clone());
        self.waiting
            .entry((leader, shard))
            .or_default()
            .push(Waiting::Read {
                op,
                ctx,
                index: None,
            });
    }

    fn submit(&mut self, key: u64, shard: u32, leader: u64) {
        let op = self.ops.len();
        let payload = u8::from(self.cluster.rng.gen_bool(0.1));
        let cmd = ShardCommand {
            command: Some(ShardCmd::Submit(SubmitBatch {
                tenant_id: TENANT,
                received_at_ms: self.cluster.now,
                items: vec![SubmitItem {
                    payload_hash: vec![payload],
                    order: Some(order(key, payload)),
                }],
            })),
        };
        self.ops.push(Op {
            key,
            kind: OpKind::Submit { payload },
            invoked: self.cluster.now,
            completed: None,
        });
        let peer = self.cluster.peer(leader, shard).expect("leader");
        if peer.node.propose(Vec::new(), cmd.encode_to_vec()).is_ok() {
            let index = peer.node.raft.raft_log.last_index();
            let term = peer.term();
            self.waiting
                .entry((leader, shard))
                .or_default()
                .push(Waiting::Submit { op, index, term });
        }
    }

    /// One tick: chaos, a tick on every replica, delivery, clients, now and then compaction.
    /// A violation the cluster saw (two leaders in a term) fails the run here.
    pub(crate) fn step(&mut self) -> Result<(), String> {
        self.cluster.now += 1;
        self.chaos();
        self.tick_all(SHARDS);
        self.deliver();
        if self.clients {
            self.client();
        }
        if self.cluster.now.is_multiple_of(10) {
            self.cluster.compact();
        }
        match self.cluster.take_violation() {
            Some(v) => Err(format!("tick {}: {v}", self.cluster.now)),
            None => Ok(()),
        }
    }
}

impl ShardSim for Sim {
    type Packet = ShardPacket;

    fn cluster(&mut self) -> &mut ShardCluster<ShardPacket> {
        &mut self.cluster
    }

    /// Every node holds a founding replica of every shard.
    fn start(&mut self, id: u64) {
        let founded = Birth::Founded {
            voters: &NODES,
            epoch: FOUNDING_EPOCH,
        };
        let replicas: Vec<(u32, Birth)> = (0..SHARDS).map(|s| (s, founded)).collect();
        self.cluster.start(id, &replicas);
    }

    fn crash(&mut self, id: u64) {
        self.cluster.crash(id);
        // Whatever that node was serving never completes (the client saw a broken connection).
        for s in 0..SHARDS {
            self.waiting.remove(&(id, s));
        }
        self.stats.crashes += 1;
    }

    /// Sends what a Ready produced and answers the clients it completes.
    fn drain(&mut self, id: u64, shard: u32) {
        for _ in 0..MAX_READY_ROUNDS {
            let Some(Round { out, .. }) = self.cluster.handle_ready(id, shard) else {
                return;
            };
            let applied_index = self
                .cluster
                .peer_ref(id, shard)
                .expect("ran")
                .applied_index();
            let wrap = |msg| ShardPacket { shard, msg };
            self.stats.snapshots += self.cluster.send_ready(id, shard, out.messages, wrap);
            let mut done = Vec::new();
            if let Some(waits) = self.waiting.get_mut(&(id, shard)) {
                for applied in &out.applied {
                    if let ApplyResult::Command(result) = &applied.result {
                        waits.retain(|w| match w {
                            Waiting::Submit { op, index, term } if *index == applied.index => {
                                if *term == applied.term {
                                    done.push((*op, result.clone()));
                                }
                                false
                            }
                            _ => true,
                        });
                    }
                }
                for rs in &out.read_states {
                    for w in waits.iter_mut() {
                        if let Waiting::Read { ctx, index, .. } = w {
                            if *ctx == rs.request_ctx {
                                *index = Some(rs.index);
                            }
                        }
                    }
                }
            }
            let now = self.cluster.now;
            for (op, result) in done {
                let Applied::Submitted(items) = result.expect("apply") else {
                    panic!("a submit answered something else");
                };
                let outcome = items.into_iter().next().expect("one item");
                let r = match outcome {
                    ItemOutcome::Accepted(a) => {
                        self.stats.acked += 1;
                        OpResult::Accepted(a.order_id)
                    }
                    ItemOutcome::Conflict { existing_order_id } => {
                        self.stats.conflicts += 1;
                        OpResult::Conflict(existing_order_id)
                    }
                };
                self.ops[op].completed = Some((now, r));
            }
            self.serve_reads(id, shard, applied_index);
        }
        panic!("node {id} shard {shard}: endless Readies");
    }
}
