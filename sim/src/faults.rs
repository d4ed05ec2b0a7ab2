//! [`Faults`]: how badly one seed's network and processes behave.
//!
//! A profile is either drawn per seed ([`Faults::random`], so the seeds cover everything from a
//! calm cluster to a stormy one) or fixed ([`Faults::steady`]). The chaos step
//! ([`crate::chaos`]) and the [`Network`](crate::Network) read their probabilities from it.
//!
//! Every field is consumed in one fixed order of RNG draws, and the recorded seeds of the
//! simulations depend on that order: a change here changes what every seed replays.

use std::ops::{Range, RangeInclusive};

use rand::rngs::StdRng;
use rand::Rng;

/// How a partition cuts the cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PartitionShape {
    /// One node, drawn uniformly, loses every link.
    IsolateOne,
    /// Half the time one node, otherwise a random minority, is cut off from the rest.
    Minority,
}

/// How many processes may be down at once, and how they come back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrashPolicy {
    /// One crash at a time: while every node runs, one may crash; while one is down, the first
    /// down node may restart (and nothing else happens that step).
    OneAtATime,
    /// Every down node restarts on its own chance; a live one may crash as long as fewer than a
    /// minority are down, so the cluster can still commit.
    Minority,
}

/// A rare, very late delivery: a stalled stream or raft loop flushing its queue seconds later.
#[derive(Clone, Debug, PartialEq)]
pub struct LateDelivery {
    /// Per-copy probability that a message is held back this long.
    pub chance: f64,
    /// How long, in ticks.
    pub ticks: Range<u64>,
}

/// One seed's fault profile.
#[derive(Clone, Debug, PartialEq)]
pub struct Faults {
    /// Probability that a message is lost.
    pub drop: f64,
    /// Probability that a message is delivered twice.
    pub duplicate: f64,
    /// A copy is due this many steps after it was sent; unequal delays reorder.
    pub delay: RangeInclusive<u64>,
    /// Rarely, a copy is due much later than `delay` says.
    pub late: Option<LateDelivery>,
    /// Per-step probability that a partition starts (when none is active).
    pub partition: f64,
    /// Per-step probability that the active partition heals.
    pub heal: f64,
    pub partition_shape: PartitionShape,
    /// Per-step probability that a live node crashes.
    pub crash: f64,
    /// Per-step probability that a crashed node restarts.
    pub restart: f64,
    pub crashes: CrashPolicy,
    /// Per-delivery probability that the receiver crashes before persisting what it received
    /// (for simulations that model it).
    pub crash_unpersisted: f64,
}

impl Faults {
    /// A profile drawn from the seed's RNG, from calm to stormy: minority partitions and
    /// crashes, every message at least one step in flight.
    pub fn random(rng: &mut StdRng) -> Faults {
        let drop = rng.gen_range(0.0..0.15);
        let duplicate = rng.gen_range(0.0..0.05);
        let max_delay: u64 = rng.gen_range(0..=3);
        Faults {
            drop,
            duplicate,
            delay: 1..=1 + max_delay,
            late: None,
            partition: rng.gen_range(0.0..0.01),
            heal: rng.gen_range(0.01..0.05),
            partition_shape: PartitionShape::Minority,
            crash: rng.gen_range(0.0..0.004),
            crash_unpersisted: rng.gen_range(0.0..0.0005),
            restart: rng.gen_range(0.01..0.05),
            crashes: CrashPolicy::Minority,
        }
    }

    /// Every probability zero (and every restart certain), each still drawn: what a profile
    /// from [`Faults::random`] turns into when the cluster must converge. Unlike a network
    /// without faults, it keeps the RNG stream of the seed as it was recorded.
    pub fn none() -> Faults {
        Faults {
            drop: 0.0,
            duplicate: 0.0,
            delay: 1..=1,
            late: None,
            partition: 0.0,
            heal: 1.0,
            partition_shape: PartitionShape::Minority,
            crash: 0.0,
            crash_unpersisted: 0.0,
            restart: 1.0,
            crashes: CrashPolicy::Minority,
        }
    }

    /// The fixed profile of the shard simulations: 5% lost, 3% duplicated, 0-3 steps in
    /// flight (0: due in the step that sent it), one node isolated or crashed at a time.
    pub fn steady() -> Faults {
        Faults {
            drop: 0.05,
            duplicate: 0.03,
            delay: 0..=3,
            late: None,
            partition: 0.003,
            heal: 0.02,
            partition_shape: PartitionShape::IsolateOne,
            crash: 0.004,
            restart: 0.03,
            crashes: CrashPolicy::OneAtATime,
            crash_unpersisted: 0.0,
        }
    }

    /// The same profile, with rare very late deliveries.
    pub fn with_late(self, late: LateDelivery) -> Faults {
        Faults {
            late: Some(late),
            ..self
        }
    }

    /// Whether the policy lets one more of `nodes` crash while `down` are down.
    pub fn may_crash_one_more(&self, nodes: usize, down: usize) -> bool {
        match self.crashes {
            CrashPolicy::OneAtATime => down == 0,
            CrashPolicy::Minority => down < nodes.saturating_sub(1) / 2,
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn a_random_profile_stays_in_its_ranges_and_replays() {
        for seed in 0..50 {
            let f = Faults::random(&mut StdRng::seed_from_u64(seed));
            assert!(
                f.drop < 0.15 && f.duplicate < 0.05 && f.crash < 0.004,
                "{f:?}"
            );
            assert!(*f.delay.start() == 1 && *f.delay.end() <= 4, "{f:?}");
            assert_eq!(f, Faults::random(&mut StdRng::seed_from_u64(seed)));
        }
    }

    #[test]
    fn the_crash_policies_bound_how_many_are_down() {
        let one = Faults::steady();
        assert!(one.may_crash_one_more(5, 0) && !one.may_crash_one_more(5, 1));
        let minority = Faults::none();
        assert!(minority.may_crash_one_more(3, 0) && !minority.may_crash_one_more(3, 1));
        assert!(minority.may_crash_one_more(5, 1) && !minority.may_crash_one_more(5, 2));
    }
}
