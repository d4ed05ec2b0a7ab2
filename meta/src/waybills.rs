//! Waybill ranges and the blocks leased from them to shards (DESIGN.md §5), part of the
//! replicated metadata. A range is registered once per carrier number space (no overlaps,
//! whichever tenant); blocks are handed out in order and never twice: a shard asks with its own
//! block count (`seq`), so a new shard leader asking again gets the block the old one was given.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::MetaError;

/// Most numbers per leased block.
pub const BLOCK_SIZE: u64 = 1000;
/// Fewest numbers per leased block (unless the range has fewer left).
pub const MIN_BLOCK: u64 = 20;
/// Most numbers in one range.
pub const MAX_RANGE: u64 = 100_000_000;
/// Numbers are zero-padded to at least this many digits.
pub const MIN_WIDTH: u32 = 10;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaybillRange {
    pub id: u64,
    pub tenant_id: u64,
    pub carrier: String,
    pub prefix: String,
    pub from: u64,
    pub to: u64,
    pub width: u32,
    /// The first number not leased yet.
    pub next: u64,
    pub added_at_ms: u64,
}

/// A block of one range leased to one shard.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeasedBlock {
    pub range_id: u64,
    pub prefix: String,
    pub from: u64,
    pub to: u64,
    pub width: u32,
}

/// The last block leased per (shard, tenant, carrier), with the seq it answered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseRecord {
    pub shard: u32,
    pub tenant_id: u64,
    pub carrier: String,
    pub seq: u64,
    pub block: Option<LeasedBlock>,
}

#[derive(Clone, Debug, Default)]
pub struct WaybillLedger {
    pub ranges: BTreeMap<u64, WaybillRange>,
    pub leases: BTreeMap<(u32, u64, String), LeaseRecord>,
    pub next_range_id: u64,
}

fn digits(n: u64) -> u32 {
    n.checked_ilog10().unwrap_or(0) + 1
}

/// Checks what a range request says by itself (the tenant's carriers are checked by the caller).
pub fn check_range(carrier: &str, prefix: &str, from: u64, to: u64) -> Result<(), MetaError> {
    let bad = |field: &str, reason: String| MetaError::BadRange {
        field: field.into(),
        reason,
    };
    if prefix.len() > 16
        || !prefix
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    {
        return Err(bad("prefix", "0-16 of [A-Z0-9]".into()));
    }
    if carrier.is_empty() {
        return Err(bad("carrier", "required".into()));
    }
    if from > to {
        return Err(bad("to", format!("{to} is below from ({from})")));
    }
    if to >= 10u64.pow(18) {
        return Err(bad("to", "at most 18 digits".into()));
    }
    if to - from >= MAX_RANGE {
        return Err(bad("to", format!("at most {MAX_RANGE} numbers per range")));
    }
    Ok(())
}

impl WaybillLedger {
    /// Adds a range, or answers the identical one registered before (a retry).
    pub fn add_range(
        &mut self,
        tenant_id: u64,
        carrier: &str,
        prefix: &str,
        from: u64,
        to: u64,
        at_ms: u64,
    ) -> Result<WaybillRange, MetaError> {
        check_range(carrier, prefix, from, to)?;
        for r in self.ranges.values().filter(|r| r.carrier == carrier) {
            if r.tenant_id == tenant_id && r.prefix == prefix && r.from == from && r.to == to {
                return Ok(r.clone());
            }
            // Prefixes where one starts the other could print the same string.
            let related = r.prefix.starts_with(prefix) || prefix.starts_with(&r.prefix);
            if related && (r.prefix != prefix || (from <= r.to && r.from <= to)) {
                return Err(MetaError::RangeOverlap {
                    carrier: carrier.into(),
                    id: r.id,
                    prefix: r.prefix.clone(),
                    from: r.from,
                    to: r.to,
                });
            }
        }
        let range = WaybillRange {
            id: self.next_range_id.max(1),
            tenant_id,
            carrier: carrier.into(),
            prefix: prefix.into(),
            from,
            to,
            width: digits(to).max(MIN_WIDTH),
            next: from,
            added_at_ms: at_ms,
        };
        self.next_range_id = range.id + 1;
        self.ranges.insert(range.id, range.clone());
        Ok(range)
    }

    /// The block answering `seq` for (shard, tenant, carrier): the one given before for the same
    /// seq, else the next free numbers of the tenant's oldest range of that carrier (None when
    /// every range is used up). Blocks shrink as a range runs low, so that numbers idle in one
    /// shard's block are few while another shard waits: at most a `1 / (2 * shards)` share of
    /// what is left. Answers which range changed, for the caller to store.
    pub fn lease(
        &mut self,
        shards: u32,
        shard: u32,
        tenant_id: u64,
        carrier: &str,
        seq: u64,
    ) -> Result<(LeaseRecord, Option<u64>), MetaError> {
        let key = (shard, tenant_id, carrier.to_string());
        if let Some(last) = self.leases.get(&key) {
            if last.seq == seq && last.block.is_some() {
                return Ok((last.clone(), None));
            }
            if seq < last.seq {
                return Err(MetaError::StaleLease {
                    seq,
                    last: last.seq,
                });
            }
        }
        let range = self
            .ranges
            .values_mut()
            .find(|r| r.tenant_id == tenant_id && r.carrier == carrier && r.next <= r.to);
        let (block, changed) = match range {
            Some(r) => {
                let left = r.to - r.next + 1;
                let size = (left / (2 * u64::from(shards.max(1)))).clamp(MIN_BLOCK, BLOCK_SIZE);
                let to = r.to.min(r.next + size - 1);
                let block = LeasedBlock {
                    range_id: r.id,
                    prefix: r.prefix.clone(),
                    from: r.next,
                    to,
                    width: r.width,
                };
                r.next = to + 1;
                (Some(block), Some(r.id))
            }
            None => (None, None),
        };
        let record = LeaseRecord {
            shard,
            tenant_id,
            carrier: carrier.into(),
            seq,
            block,
        };
        if record.block.is_some() {
            self.leases.insert(key, record.clone());
        }
        Ok((record, changed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlapping_ranges_are_refused_and_a_retry_answers_the_same_range() {
        let mut l = WaybillLedger::default();
        let a = l.add_range(1, "SF", "SF", 1, 5000, 0).expect("first");
        assert_eq!(a.id, 1);
        assert_eq!(a.width, 10);
        assert_eq!(
            l.add_range(1, "SF", "SF", 1, 5000, 9),
            Ok(a.clone()),
            "retry"
        );
        let cases = [
            (1, "SF", "SF", 5000, 6000),  // shares 5000
            (2, "SF", "SF", 100, 200),    // another tenant, inside
            (1, "SF", "S", 9000, 9100),   // a prefix of SF
            (1, "SF", "SF1", 9000, 9100), // SF is a prefix of it
        ];
        for (tenant, carrier, prefix, from, to) in cases {
            let got = l.add_range(tenant, carrier, prefix, from, to, 0);
            assert!(
                matches!(got, Err(MetaError::RangeOverlap { id: 1, .. })),
                "{prefix} {from}-{to}: {got:?}"
            );
        }
        assert!(
            l.add_range(1, "SF", "SF", 5001, 9000, 0).is_ok(),
            "adjacent"
        );
        assert!(
            l.add_range(1, "ZTO", "SF", 1, 5000, 0).is_ok(),
            "another carrier"
        );
        for (prefix, from, to, field) in [
            ("sf", 1, 2, "prefix"),
            ("SF", 9, 2, "to"),
            ("SF", 0, MAX_RANGE, "to"),
        ] {
            match l.add_range(1, "YTO", prefix, from, to, 0) {
                Err(MetaError::BadRange { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{prefix} {from}-{to}: {other:?}"),
            }
        }
        assert_eq!(l.ranges.len(), 3, "refusals changed nothing");
    }

    #[test]
    fn blocks_are_leased_once_and_a_repeated_seq_gets_the_same_block() {
        let mut l = WaybillLedger::default();
        l.add_range(1, "SF", "SF", 1, 2500, 0).expect("range");
        let (first, changed) = l.lease(1, 3, 1, "SF", 0).expect("lease");
        let b = first.block.clone().expect("block");
        assert_eq!((b.from, b.to, changed), (1, 1000, Some(1)));
        let (again, changed) = l.lease(1, 3, 1, "SF", 0).expect("retry");
        assert_eq!((again, changed), (first, None), "same seq, same block");
        let (other, _) = l.lease(1, 4, 1, "SF", 0).expect("other shard");
        assert_eq!(other.block.map(|b| (b.from, b.to)), Some((1001, 1750)));
        let (third, _) = l.lease(1, 3, 1, "SF", 1).expect("next");
        assert_eq!(third.block.map(|b| (b.from, b.to)), Some((1751, 2125)));
        assert!(matches!(
            l.lease(1, 3, 1, "SF", 0),
            Err(MetaError::StaleLease { seq: 0, last: 1 })
        ));
        // The rest goes out in ever smaller blocks, each number once, then none is left.
        let mut next = 2126;
        for seq in 2.. {
            let (r, _) = l.lease(1, 3, 1, "SF", seq).expect("lease");
            let Some(b) = r.block else { break };
            assert_eq!(b.from, next, "contiguous, no number twice");
            next = b.to + 1;
        }
        assert_eq!(next, 2501, "every number leased");
        assert_eq!(
            l.lease(1, 3, 2, "SF", 0).expect("other tenant").0.block,
            None
        );
    }

    #[test]
    fn blocks_shrink_as_a_range_runs_low() {
        let mut l = WaybillLedger::default();
        l.add_range(1, "SF", "SF", 1, 10_000, 0).expect("range");
        let sizes: Vec<u64> = (0..4)
            .map(|shard| {
                let b = l
                    .lease(8, shard, 1, "SF", 0)
                    .expect("lease")
                    .0
                    .block
                    .expect("block");
                b.to - b.from + 1
            })
            .collect();
        // 10,000 / 16 = 625, then a share of what is left each time.
        assert_eq!(sizes, [625, 585, 549, 515]);
        l.add_range(1, "ZTO", "Z", 1, 30, 0).expect("small range");
        let b = l
            .lease(8, 0, 1, "ZTO", 0)
            .expect("lease")
            .0
            .block
            .expect("block");
        assert_eq!((b.from, b.to), (1, 20), "at least MIN_BLOCK");
        let b = l
            .lease(8, 1, 1, "ZTO", 0)
            .expect("lease")
            .0
            .block
            .expect("block");
        assert_eq!((b.from, b.to), (21, 30), "the rest");
    }
}
