//! The simulated network: a queue of in-flight Raft messages and the filters that misbehave
//! on them (drop, delay, duplicate, reorder, partition). All randomness comes from the
//! cluster's seeded RNG, so a seed replays the same faults in the same order.

use std::collections::BTreeSet;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::Rng;
use surge_raftstore::raft::eraftpb::Message;

/// How badly one seed's network (and processes) behave; drawn per seed so the seeds cover
/// everything from a calm cluster to a stormy one.
#[derive(Clone, Debug)]
pub(crate) struct Faults {
    /// Probability that a message is lost.
    pub(crate) drop: f64,
    /// Probability that a message is delivered twice.
    pub(crate) duplicate: f64,
    /// A message spends 1 + [0, max_delay] steps in flight; unequal delays reorder.
    pub(crate) max_delay: u64,
    /// Per-step probability that a partition starts (when none is active).
    pub(crate) partition: f64,
    /// Per-step probability that the active partition heals.
    pub(crate) heal: f64,
    /// Per-step probability that a live node crashes.
    pub(crate) crash: f64,
    /// Per-delivery probability that the receiver crashes before persisting what it received.
    pub(crate) crash_unpersisted: f64,
    /// Per-step probability that a crashed node restarts.
    pub(crate) restart: f64,
    /// Per-step probability that a client proposes at the leader.
    pub(crate) propose: f64,
}

impl Faults {
    pub(crate) fn random(rng: &mut StdRng) -> Faults {
        Faults {
            drop: rng.gen_range(0.0..0.15),
            duplicate: rng.gen_range(0.0..0.05),
            max_delay: rng.gen_range(0..=3),
            partition: rng.gen_range(0.0..0.01),
            heal: rng.gen_range(0.01..0.05),
            crash: rng.gen_range(0.0..0.004),
            crash_unpersisted: rng.gen_range(0.0..0.0005),
            restart: rng.gen_range(0.01..0.05),
            propose: rng.gen_range(0.3..0.9),
        }
    }

    /// No faults at all: the network used to let the cluster converge at the end.
    pub(crate) fn none() -> Faults {
        Faults {
            drop: 0.0,
            duplicate: 0.0,
            max_delay: 0,
            partition: 0.0,
            heal: 1.0,
            crash: 0.0,
            crash_unpersisted: 0.0,
            restart: 1.0,
            propose: 0.0,
        }
    }
}

struct InFlight {
    deliver_at: u64,
    msg: Message,
}

/// Counters that show a seed actually exercised the filters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct NetStats {
    pub(crate) sent: u64,
    pub(crate) dropped: u64,
    pub(crate) duplicated: u64,
    pub(crate) partitions: u64,
}

pub(crate) struct Network {
    pub(crate) faults: Faults,
    queue: Vec<InFlight>,
    /// One side of the active partition; no message crosses between it and the rest.
    partition: Option<BTreeSet<u64>>,
    pub(crate) stats: NetStats,
}

impl Network {
    pub(crate) fn new(faults: Faults) -> Network {
        Network {
            faults,
            queue: Vec::new(),
            partition: None,
            stats: NetStats::default(),
        }
    }

    pub(crate) fn blocked(&self, from: u64, to: u64) -> bool {
        self.partition
            .as_ref()
            .is_some_and(|side| side.contains(&from) != side.contains(&to))
    }

    /// Queues `msg` through the filters; false when it was lost on the way out, which the
    /// sender learns (as a real transport does when a stream breaks).
    pub(crate) fn send(&mut self, rng: &mut StdRng, now: u64, msg: Message) -> bool {
        self.stats.sent += 1;
        if self.blocked(msg.from, msg.to) || rng.gen_bool(self.faults.drop) {
            self.stats.dropped += 1;
            return false;
        }
        if rng.gen_bool(self.faults.duplicate) {
            self.stats.duplicated += 1;
            let deliver_at = now + 1 + rng.gen_range(0..=self.faults.max_delay);
            self.queue.push(InFlight {
                deliver_at,
                msg: msg.clone(),
            });
        }
        let deliver_at = now + 1 + rng.gen_range(0..=self.faults.max_delay);
        self.queue.push(InFlight { deliver_at, msg });
        true
    }

    /// Removes the messages due by `now`, in a random order, dropping those a partition
    /// blocks (a partition also cuts messages already in flight).
    pub(crate) fn take_due(&mut self, rng: &mut StdRng, now: u64) -> Vec<Message> {
        let (due, later): (Vec<InFlight>, Vec<InFlight>) = std::mem::take(&mut self.queue)
            .into_iter()
            .partition(|m| m.deliver_at <= now);
        self.queue = later;
        let mut due: Vec<Message> = due
            .into_iter()
            .map(|m| m.msg)
            .filter(|m| !self.blocked(m.from, m.to))
            .collect();
        due.shuffle(rng);
        due
    }

    /// Starts a partition: either one node isolated or a random minority cut off.
    pub(crate) fn partition(&mut self, rng: &mut StdRng, ids: &[u64]) {
        let size = if rng.gen_bool(0.5) {
            1
        } else {
            rng.gen_range(1..=(ids.len() - 1) / 2)
        };
        let side: BTreeSet<u64> = ids.choose_multiple(rng, size).copied().collect();
        self.partition = Some(side);
        self.stats.partitions += 1;
    }

    pub(crate) fn is_partitioned(&self) -> bool {
        self.partition.is_some()
    }

    pub(crate) fn heal(&mut self) {
        self.partition = None;
    }

    /// Heals the network and turns every filter off.
    pub(crate) fn calm(&mut self) {
        self.heal();
        self.faults = Faults::none();
    }
}
