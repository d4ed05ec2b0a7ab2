//! The chaos step's decisions: which node crashes or restarts, when a partition starts and
//! when it heals. Each simulation calls the two halves in its own order, and each policy keeps
//! the exact draws its seeds were recorded with (for instance `choose` and `gen_range` draw
//! differently, so a minority crash picks with one and a single crash with the other).

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::Rng;

use crate::faults::{CrashPolicy, Faults};
use crate::network::{Network, Packet};

/// The nodes of a simulated cluster, as the chaos step acts on them.
pub trait Processes {
    fn rng(&mut self) -> &mut StdRng;
    /// Drops the node's processes; only its engine survives.
    fn crash(&mut self, id: u64);
    /// Rebuilds the node's processes from its engine.
    fn restart(&mut self, id: u64);
}

/// Crashes and restarts nodes as `faults.crashes` says; `ids` are every node, ascending, and
/// `down` those down now.
pub fn crash_or_restart<S: Processes + ?Sized>(
    sim: &mut S,
    faults: &Faults,
    ids: &[u64],
    down: &[u64],
) {
    match faults.crashes {
        CrashPolicy::OneAtATime => {
            if down.is_empty() && sim.rng().gen_bool(faults.crash) {
                let victim = ids[sim.rng().gen_range(0..ids.len())];
                sim.crash(victim);
            } else if !down.is_empty() && sim.rng().gen_bool(faults.restart) {
                sim.restart(down[0]);
            }
        }
        CrashPolicy::Minority => {
            let mut still_down = Vec::new();
            for &id in down {
                if sim.rng().gen_bool(faults.restart) {
                    sim.restart(id);
                } else {
                    still_down.push(id);
                }
            }
            let live: Vec<u64> = ids
                .iter()
                .copied()
                .filter(|id| !still_down.contains(id))
                .collect();
            if sim.rng().gen_bool(faults.crash)
                && faults.may_crash_one_more(ids.len(), ids.len() - live.len())
            {
                if let Some(&victim) = live.choose(sim.rng()) {
                    sim.crash(victim);
                }
            }
        }
    }
}

/// Heals the active partition, or starts one, with the network's probabilities; nothing
/// while the network has no faults.
pub fn partition_or_heal<P: Packet>(rng: &mut StdRng, net: &mut Network<P>, ids: &[u64]) {
    let Some(faults) = net.faults() else {
        return;
    };
    let (heal, partition, shape) = (faults.heal, faults.partition, faults.partition_shape);
    if net.is_partitioned() {
        if rng.gen_bool(heal) {
            net.heal();
        }
    } else if rng.gen_bool(partition) {
        net.partition(rng, ids, shape);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use rand::SeedableRng;

    use super::*;

    struct Toy {
        rng: StdRng,
        up: BTreeSet<u64>,
        nodes: u64,
        max_down: usize,
    }

    impl Processes for Toy {
        fn rng(&mut self) -> &mut StdRng {
            &mut self.rng
        }
        fn crash(&mut self, id: u64) {
            assert!(self.up.remove(&id), "crashed a down node");
            let down = self.nodes as usize - self.up.len();
            self.max_down = self.max_down.max(down);
        }
        fn restart(&mut self, id: u64) {
            assert!(self.up.insert(id), "restarted a live node");
        }
    }

    fn run(nodes: u64, faults: &Faults) -> usize {
        let mut toy = Toy {
            rng: StdRng::seed_from_u64(nodes),
            up: (1..=nodes).collect(),
            nodes,
            max_down: 0,
        };
        let ids: Vec<u64> = (1..=nodes).collect();
        for _ in 0..20_000 {
            let down: Vec<u64> = ids
                .iter()
                .copied()
                .filter(|id| !toy.up.contains(id))
                .collect();
            crash_or_restart(&mut toy, faults, &ids, &down);
        }
        toy.max_down
    }

    #[test]
    fn crashes_stay_within_the_policy() {
        let stormy = |crashes| Faults {
            crash: 0.2,
            restart: 0.05,
            crashes,
            ..Faults::steady()
        };
        assert_eq!(run(5, &stormy(CrashPolicy::OneAtATime)), 1);
        assert_eq!(run(5, &stormy(CrashPolicy::Minority)), 2);
        assert_eq!(run(3, &stormy(CrashPolicy::Minority)), 1);
    }
}
