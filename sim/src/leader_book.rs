//! [`LeaderBook`]: election safety across many groups, checked as each leader is observed.

use std::collections::BTreeMap;

/// (group, term) → the node seen leading it. Two leaders of one group in one term violate
/// election safety, which is reported at the observation that shows it.
#[derive(Debug, Default)]
pub struct LeaderBook {
    leaders: BTreeMap<(u32, u64), u64>,
}

impl LeaderBook {
    pub fn record(&mut self, shard: u32, term: u64, node: u64) -> Result<(), String> {
        match self.leaders.insert((shard, term), node) {
            Some(other) if other != node => Err(format!(
                "shard {shard} term {term}: nodes {other} and {node} both lead"
            )),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_leaders_in_one_term_are_caught() {
        let mut leaders = LeaderBook::default();
        assert_eq!(leaders.record(0, 5, 1), Ok(()));
        assert_eq!(leaders.record(0, 5, 1), Ok(()));
        assert_eq!(leaders.record(1, 5, 2), Ok(()));
        assert_eq!(leaders.record(0, 6, 2), Ok(()));
        assert!(leaders.record(0, 5, 2).is_err());
    }
}
