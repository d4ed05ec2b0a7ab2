//! Initial replica placement: a pure function from the up nodes to each shard's replicas,
//! balanced across nodes and spread across zones.

use std::collections::{BTreeMap, BTreeSet};

/// A node that can take replicas.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub id: u64,
    pub zone: String,
}

/// Chooses `replicas` distinct nodes for each shard in `unplaced`.
///
/// Greedy and deterministic: for each replica slot it takes the node whose zone this shard uses
/// least, then the node with the fewest replicas so far (counting `existing` ones), then the
/// lowest id. Returns nothing when fewer than `replicas` candidates exist.
pub fn place(
    unplaced: &[u32],
    replicas: usize,
    candidates: &[Candidate],
    existing: &BTreeMap<u64, usize>,
) -> Vec<(u32, Vec<u64>)> {
    let distinct: BTreeSet<u64> = candidates.iter().map(|c| c.id).collect();
    if replicas == 0 || distinct.len() < replicas {
        return Vec::new();
    }
    let mut load: BTreeMap<u64, usize> = distinct
        .iter()
        .map(|id| (*id, existing.get(id).copied().unwrap_or(0)))
        .collect();
    let mut out = Vec::with_capacity(unplaced.len());
    for &shard in unplaced {
        let mut chosen: Vec<u64> = Vec::with_capacity(replicas);
        let mut zones_used: BTreeMap<&str, usize> = BTreeMap::new();
        for _ in 0..replicas {
            let best = candidates
                .iter()
                .filter(|c| !chosen.contains(&c.id))
                .min_by_key(|c| {
                    (
                        zones_used.get(c.zone.as_str()).copied().unwrap_or(0),
                        load.get(&c.id).copied().unwrap_or(0),
                        c.id,
                    )
                });
            let Some(best) = best else { break };
            chosen.push(best.id);
            *zones_used.entry(best.zone.as_str()).or_default() += 1;
            *load.entry(best.id).or_default() += 1;
        }
        out.push((shard, chosen));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes(spec: &[(u64, &str)]) -> Vec<Candidate> {
        spec.iter()
            .map(|(id, zone)| Candidate {
                id: *id,
                zone: zone.to_string(),
            })
            .collect()
    }

    fn counts(placed: &[(u32, Vec<u64>)]) -> BTreeMap<u64, usize> {
        let mut c = BTreeMap::new();
        for (_, r) in placed {
            for n in r {
                *c.entry(*n).or_default() += 1;
            }
        }
        c
    }

    #[test]
    fn three_nodes_take_every_shard_once_each() {
        let shards: Vec<u32> = (0..64).collect();
        let placed = place(
            &shards,
            3,
            &nodes(&[(1, ""), (2, ""), (3, "")]),
            &BTreeMap::new(),
        );
        assert_eq!(placed.len(), 64);
        assert!(placed.iter().all(|(_, r)| r.len() == 3));
        assert_eq!(
            counts(&placed).values().copied().collect::<Vec<_>>(),
            vec![64, 64, 64]
        );
    }

    #[test]
    fn replicas_spread_over_zones_and_balance_over_nodes() {
        let shards: Vec<u32> = (0..60).collect();
        let cands = nodes(&[(1, "a"), (2, "a"), (3, "b"), (4, "b"), (5, "c"), (6, "c")]);
        let placed = place(&shards, 3, &cands, &BTreeMap::new());
        for (shard, r) in &placed {
            let zones: BTreeSet<&str> = r
                .iter()
                .map(|id| {
                    cands
                        .iter()
                        .find(|c| c.id == *id)
                        .map_or("", |c| c.zone.as_str())
                })
                .collect();
            assert_eq!(zones.len(), 3, "shard {shard} replicas {r:?} share a zone");
        }
        let c = counts(&placed);
        assert!(c.values().all(|n| *n == 30), "unbalanced: {c:?}");
    }

    #[test]
    fn too_few_nodes_place_nothing() {
        assert!(place(&[0, 1], 3, &nodes(&[(1, ""), (2, "")]), &BTreeMap::new()).is_empty());
    }

    #[test]
    fn existing_load_is_taken_into_account() {
        let existing = BTreeMap::from([(1, 10), (2, 10), (3, 0)]);
        let placed = place(&[0], 1, &nodes(&[(1, ""), (2, ""), (3, "")]), &existing);
        assert_eq!(placed, vec![(0, vec![3])]);
    }
}
