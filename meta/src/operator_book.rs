//! [`OperatorBook`]: the operators of the replicated metadata — those in flight, the most
//! recent finished ones and running totals — and how each operator command changes them.
//! Sans-IO like the rest of the state machine: the caller persists the rows it names.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

use crate::meta::MetaError;
use crate::operator::{Operator, Outcome, Step};

/// Finished operators kept for `surgectl operator list --all`.
pub const FINISHED_KEPT: usize = 200;

/// Totals since the cluster started.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorTotals {
    pub next_id: u64,
    pub done: u64,
    pub failed: u64,
    pub rolled_back: u64,
    /// Bytes of the replicas that finished moves and adds copied.
    pub bytes_moved: u64,
}

/// What an apply changed, for the caller to persist.
#[derive(Debug, PartialEq, Eq)]
pub enum Changed {
    Nothing,
    /// This in-flight operator's row.
    InFlight(u64),
    /// The operator left flight: delete its row, write it as finished (and forget the
    /// evicted finished one, if any).
    Finished {
        id: u64,
        evicted: Option<u64>,
    },
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OperatorBook {
    pub in_flight: BTreeMap<u64, Operator>,
    /// Oldest first.
    pub finished: VecDeque<Operator>,
    pub totals: OperatorTotals,
}

impl OperatorBook {
    /// The operator working on `shard`, if any.
    pub fn on_shard(&self, shard: u32) -> Option<&Operator> {
        self.in_flight.values().find(|o| o.shard == shard)
    }

    /// Starts `op` under the next id; a shard has one operator at a time.
    pub fn create(&mut self, mut op: Operator) -> Result<(u64, Changed), MetaError> {
        if let Some(busy) = self.on_shard(op.shard) {
            return Err(MetaError::ShardBusy {
                shard: op.shard,
                id: busy.id,
            });
        }
        self.totals.next_id = self.totals.next_id.max(1);
        let id = self.totals.next_id;
        self.totals.next_id += 1;
        op.id = id;
        op.step_since_ms = op.created_at_ms;
        op.outcome = None;
        self.in_flight.insert(id, op);
        Ok((id, Changed::InFlight(id)))
    }

    /// Records a step (the clock restarts when the step changes) and what it waits for.
    pub fn advance(
        &mut self,
        id: u64,
        step: Step,
        note: String,
        at_ms: u64,
    ) -> Result<Changed, MetaError> {
        let op = self
            .in_flight
            .get_mut(&id)
            .ok_or(MetaError::UnknownOperator(id))?;
        if op.step == step && op.note == note {
            return Ok(Changed::Nothing);
        }
        if op.step != step {
            op.step = step;
            op.step_since_ms = at_ms;
        }
        op.note = note;
        Ok(Changed::InFlight(id))
    }

    pub fn cancel(&mut self, id: u64) -> Result<(Operator, Changed), MetaError> {
        let op = self
            .in_flight
            .get_mut(&id)
            .ok_or(MetaError::UnknownOperator(id))?;
        let changed = if op.cancel_requested {
            Changed::Nothing
        } else {
            op.cancel_requested = true;
            Changed::InFlight(id)
        };
        Ok((op.clone(), changed))
    }

    pub fn finish(
        &mut self,
        id: u64,
        outcome: Outcome,
        note: String,
        at_ms: u64,
    ) -> Result<Changed, MetaError> {
        let mut op = self
            .in_flight
            .remove(&id)
            .ok_or(MetaError::UnknownOperator(id))?;
        op.outcome = Some(outcome);
        op.note = note;
        op.finished_at_ms = at_ms;
        match outcome {
            Outcome::Done => {
                self.totals.done += 1;
                if op.kind.adds_replica() {
                    self.totals.bytes_moved = self.totals.bytes_moved.saturating_add(op.bytes);
                }
            }
            Outcome::Failed => self.totals.failed += 1,
            Outcome::RolledBack => self.totals.rolled_back += 1,
        }
        self.finished.push_back(op);
        let evicted = if self.finished.len() > FINISHED_KEPT {
            self.finished.pop_front().map(|o| o.id)
        } else {
            None
        };
        Ok(Changed::Finished { id, evicted })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operator::{OperatorKind, Reason};

    fn op(shard: u32) -> Operator {
        Operator::new(
            shard,
            OperatorKind::MoveReplica { from: 1, to: 4 },
            Reason::Balance,
            2,
            100,
            10,
        )
    }

    #[test]
    fn one_operator_per_shard_and_totals_add_up() -> Result<(), MetaError> {
        let mut book = OperatorBook::default();
        let (a, _) = book.create(op(1))?;
        assert_eq!(
            book.create(op(1)),
            Err(MetaError::ShardBusy { shard: 1, id: a })
        );
        let (b, _) = book.create(op(2))?;
        assert_eq!((a, b), (1, 2));
        assert_eq!(
            book.advance(a, Step::CatchUp, "behind".into(), 20)?,
            Changed::InFlight(a)
        );
        assert_eq!(
            book.advance(a, Step::CatchUp, "behind".into(), 30)?,
            Changed::Nothing
        );
        assert_eq!(book.in_flight[&a].step_since_ms, 20);
        book.finish(a, Outcome::Done, String::new(), 40)?;
        book.finish(b, Outcome::RolledBack, "cancelled".into(), 50)?;
        assert_eq!(
            book.finish(b, Outcome::Done, String::new(), 60),
            Err(MetaError::UnknownOperator(b))
        );
        assert_eq!(
            (
                book.totals.done,
                book.totals.rolled_back,
                book.totals.bytes_moved
            ),
            (1, 1, 100)
        );
        assert!(book.in_flight.is_empty());
        assert_eq!(book.finished.len(), 2);
        Ok(())
    }

    #[test]
    fn the_finished_list_is_bounded() -> Result<(), MetaError> {
        let mut book = OperatorBook::default();
        let mut evictions = 0;
        for i in 0..(FINISHED_KEPT as u32 + 5) {
            let (id, _) = book.create(op(i))?;
            if let Changed::Finished {
                evicted: Some(_), ..
            } = book.finish(id, Outcome::Failed, String::new(), 1)?
            {
                evictions += 1;
            }
        }
        assert_eq!(book.finished.len(), FINISHED_KEPT);
        assert_eq!(evictions, 5);
        Ok(())
    }
}
