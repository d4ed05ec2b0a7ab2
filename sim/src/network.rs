//! [`Network`]: the simulated network, a queue of packets in flight and the filters that
//! misbehave on them (drop, duplicate, delay and so reorder, partition).
//!
//! All randomness comes from the simulation's seeded RNG, passed in, so a seed replays the same
//! faults in the same order. Per send the draws are: drop; duplicate; then one delay per copy
//! (each first asking whether this copy is very late, if the profile has late deliveries).
//! Without a profile ([`Network::perfect`]) nothing is drawn and every packet is due at once.

use std::collections::BTreeSet;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::Rng;
use surge_raftstore::raft::eraftpb::Message;

use crate::faults::{Faults, PartitionShape};

/// What travels: anything with a sending and a receiving node.
pub trait Packet: Clone {
    /// (from, to), the node ids a partition judges.
    fn ends(&self) -> (u64, u64);
}

impl Packet for Message {
    fn ends(&self) -> (u64, u64) {
        (self.from, self.to)
    }
}

/// What became of a packet handed to [`Network::send`]. A simulation decides which of these
/// its sender learns: a real transport knows at once that it cannot connect (`Refused`), and
/// may or may not notice a packet lost on the way (`Lost`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sent {
    /// In flight (one or two copies).
    Queued,
    /// Lost on the way.
    Lost,
    /// Not taken: a partition cuts the link.
    Refused,
}

/// Counters that show a seed actually exercised the filters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NetStats {
    pub sent: u64,
    /// Lost on the way ([`Sent::Lost`]).
    pub dropped: u64,
    /// Refused by a partition ([`Sent::Refused`]).
    pub refused: u64,
    pub duplicated: u64,
    /// Copies held back by a [`LateDelivery`](crate::LateDelivery).
    pub delayed: u64,
    /// Partitions started.
    pub partitions: u64,
}

struct InFlight<P> {
    due: u64,
    packet: P,
}

pub struct Network<P> {
    /// None: no faults, and no draws.
    faults: Option<Faults>,
    queue: Vec<InFlight<P>>,
    /// One side of the active partition; no packet crosses between it and the rest.
    partition: Option<BTreeSet<u64>>,
    pub stats: NetStats,
}

impl<P: Packet> Network<P> {
    pub fn new(faults: Faults) -> Network<P> {
        Network {
            faults: Some(faults),
            queue: Vec::new(),
            partition: None,
            stats: NetStats::default(),
        }
    }

    /// The profile in force, if faults are on (the chaos step reads its process faults here).
    pub fn faults(&self) -> Option<&Faults> {
        self.faults.as_ref()
    }

    pub fn set_faults(&mut self, faults: Faults) {
        self.faults = Some(faults);
    }

    /// Heals the network and turns every filter off: from now on a packet is due the step it
    /// is sent, and sending draws nothing.
    pub fn perfect(&mut self) {
        self.heal();
        self.faults = None;
    }

    pub fn blocked(&self, from: u64, to: u64) -> bool {
        self.partition
            .as_ref()
            .is_some_and(|side| side.contains(&from) != side.contains(&to))
    }

    /// Queues `packet` at step `now` through the filters.
    pub fn send(&mut self, rng: &mut StdRng, now: u64, packet: P) -> Sent {
        self.stats.sent += 1;
        let (from, to) = packet.ends();
        if self.blocked(from, to) {
            self.stats.refused += 1;
            return Sent::Refused;
        }
        let Some(faults) = &self.faults else {
            self.queue.push(InFlight { due: now, packet });
            return Sent::Queued;
        };
        if rng.gen_bool(faults.drop) {
            self.stats.dropped += 1;
            return Sent::Lost;
        }
        if rng.gen_bool(faults.duplicate) {
            self.stats.duplicated += 1;
            let due = now + self.delay(rng);
            self.queue.push(InFlight {
                due,
                packet: packet.clone(),
            });
        }
        let due = now + self.delay(rng);
        self.queue.push(InFlight { due, packet });
        Sent::Queued
    }

    fn delay(&mut self, rng: &mut StdRng) -> u64 {
        let Some(faults) = &self.faults else {
            return 0;
        };
        if let Some(late) = &faults.late {
            if rng.gen_bool(late.chance) {
                self.stats.delayed += 1;
                return rng.gen_range(late.ticks.clone());
            }
        }
        rng.gen_range(faults.delay.clone())
    }

    /// Removes the packets due by `now`, in the order they were sent, without those a
    /// partition blocks (a partition also cuts packets already in flight).
    pub fn take_due(&mut self, now: u64) -> Vec<P> {
        let (due, later): (Vec<InFlight<P>>, Vec<InFlight<P>>) = std::mem::take(&mut self.queue)
            .into_iter()
            .partition(|m| m.due <= now);
        self.queue = later;
        due.into_iter()
            .map(|m| m.packet)
            .filter(|p| {
                let (from, to) = p.ends();
                !self.blocked(from, to)
            })
            .collect()
    }

    /// Starts a partition of the given shape among `ids`.
    pub fn partition(&mut self, rng: &mut StdRng, ids: &[u64], shape: PartitionShape) {
        let side: BTreeSet<u64> = match shape {
            PartitionShape::IsolateOne => [ids[rng.gen_range(0..ids.len())]].into(),
            PartitionShape::Minority => {
                let size = if rng.gen_bool(0.5) {
                    1
                } else {
                    rng.gen_range(1..=(ids.len() - 1) / 2)
                };
                ids.choose_multiple(rng, size).copied().collect()
            }
        };
        self.partition = Some(side);
        self.stats.partitions += 1;
    }

    pub fn is_partitioned(&self) -> bool {
        self.partition.is_some()
    }

    pub fn heal(&mut self) {
        self.partition = None;
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[derive(Clone, Debug, PartialEq)]
    struct P(u64, u64);

    impl Packet for P {
        fn ends(&self) -> (u64, u64) {
            (self.0, self.1)
        }
    }

    #[test]
    fn a_partition_refuses_and_cuts_what_is_in_flight() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut net = Network::new(Faults {
            drop: 0.0,
            duplicate: 0.0,
            delay: 1..=1,
            ..Faults::steady()
        });
        assert_eq!(net.send(&mut rng, 0, P(1, 2)), Sent::Queued);
        net.partition(&mut rng, &[1], PartitionShape::IsolateOne);
        assert!(net.blocked(1, 2) && net.blocked(2, 1) && !net.blocked(2, 3));
        assert_eq!(net.send(&mut rng, 0, P(2, 1)), Sent::Refused);
        assert_eq!(net.take_due(5), Vec::<P>::new());
        net.heal();
        assert_eq!(net.send(&mut rng, 5, P(2, 1)), Sent::Queued);
        assert_eq!(net.take_due(5), Vec::<P>::new(), "one step in flight");
        assert_eq!(net.take_due(6), vec![P(2, 1)]);
        assert_eq!(
            (net.stats.sent, net.stats.refused, net.stats.partitions),
            (3, 1, 1)
        );
    }

    #[test]
    fn a_perfect_network_draws_nothing() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut untouched = rng.clone();
        let mut net = Network::new(Faults::steady());
        net.perfect();
        for i in 0..10 {
            assert_eq!(net.send(&mut rng, 3, P(1, i)), Sent::Queued);
        }
        assert_eq!(net.take_due(3).len(), 10);
        assert_eq!(rng.gen::<u64>(), untouched.gen::<u64>());
    }

    #[test]
    fn filters_fire_at_their_rates() {
        let mut rng = StdRng::seed_from_u64(3);
        let late = crate::LateDelivery {
            chance: 0.01,
            ticks: 20..200,
        };
        let mut net = Network::new(Faults::steady().with_late(late));
        for i in 0..10_000 {
            net.send(&mut rng, 0, P(1, i));
        }
        let s = net.stats.clone();
        assert!((400..600).contains(&s.dropped), "{s:?}");
        assert!((200..400).contains(&s.duplicated), "{s:?}");
        assert!((50..150).contains(&s.delayed), "{s:?}");
        let soon = net.take_due(3).len() as u64;
        assert_eq!(soon + s.delayed, 10_000 - s.dropped + s.duplicated);
    }
}
