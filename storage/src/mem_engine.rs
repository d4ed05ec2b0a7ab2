//! The in-memory [`Engine`], for the deterministic test tier. Every write is "durable": a
//! simulated crash drops the process state built on top of it and keeps the engine.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::Mutex;

use crate::engine::{
    Cf, ConsistentRead, Engine, EngineError, Family, FamilyRow, KeyValue, ReadView, WriteBatch,
    WriteOp,
};

type Table = BTreeMap<Vec<u8>, Vec<u8>>;

/// An ordered map per column family behind one lock, so a batch is atomic.
pub struct MemEngine {
    families: Vec<Family>,
    tables: Mutex<BTreeMap<Cf, Table>>,
    /// Staged replacements by name, one batch per family; like files, they survive a crash.
    staged: Mutex<(u64, HashMap<String, WriteBatch>)>,
}

impl MemEngine {
    /// An empty engine with `families`, as a process declares them.
    pub fn new(families: &[Family]) -> MemEngine {
        MemEngine {
            families: families.to_vec(),
            tables: Mutex::default(),
            staged: Mutex::default(),
        }
    }

    fn with_tables<R>(&self, f: impl FnOnce(&mut BTreeMap<Cf, Table>) -> R) -> R {
        // A poisoned lock means a test thread panicked mid-write; the data is still consistent
        // because a batch is applied under one lock acquisition.
        let mut tables = self
            .tables
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut tables)
    }

    fn with_staged<R>(&self, f: impl FnOnce(&mut (u64, HashMap<String, WriteBatch>)) -> R) -> R {
        let mut staged = self
            .staged
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut staged)
    }

    /// Refuses a family this engine was not opened with, as RocksDB does.
    fn declared(&self, cf: Cf) -> Result<(), EngineError> {
        if self.families.iter().any(|f| f.cf == cf) {
            Ok(())
        } else {
            Err(EngineError::Backend(format!(
                "column family {} missing",
                cf.name()
            )))
        }
    }

    /// Staged replacements not yet ingested or discarded.
    pub fn staged_count(&self) -> usize {
        self.with_staged(|(_, files)| files.len())
    }
}

/// A copy of every table, taken under the lock: the in-memory point-in-time view.
struct Frozen(BTreeMap<Cf, Table>);

impl ReadView for Frozen {
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>, EngineError> {
        Ok(self.0.get(&cf).and_then(|t| t.get(key).cloned()))
    }

    fn scan(
        &self,
        cf: Cf,
        start: &[u8],
        end: &[u8],
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), EngineError> {
        if start >= end {
            return Ok(());
        }
        if let Some(table) = self.0.get(&cf) {
            for (k, v) in table.range(range(start, end)) {
                if !visit(k, v) {
                    break;
                }
            }
        }
        Ok(())
    }
}

fn range(start: &[u8], end: &[u8]) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    (
        Bound::Included(start.to_vec()),
        Bound::Excluded(end.to_vec()),
    )
}

impl Engine for MemEngine {
    fn families(&self) -> &[Family] {
        &self.families
    }

    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>, EngineError> {
        self.declared(cf)?;
        Ok(self.with_tables(|t| t.get(&cf).and_then(|table| table.get(key).cloned())))
    }

    fn scan(
        &self,
        cf: Cf,
        start: &[u8],
        end: &[u8],
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), EngineError> {
        self.declared(cf)?;
        if start >= end {
            return Ok(());
        }
        // Copy out first so `visit` may call back into the engine.
        let rows: Vec<(Vec<u8>, Vec<u8>)> = self.with_tables(|t| {
            t.get(&cf)
                .map(|table| {
                    table
                        .range(range(start, end))
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect()
                })
                .unwrap_or_default()
        });
        for (k, v) in rows {
            if !visit(&k, &v) {
                break;
            }
        }
        Ok(())
    }

    fn last_in_range(
        &self,
        cf: Cf,
        start: &[u8],
        end: &[u8],
    ) -> Result<Option<KeyValue>, EngineError> {
        if start >= end {
            return Ok(None);
        }
        Ok(self.with_tables(|t| {
            t.get(&cf).and_then(|table| {
                table
                    .range(range(start, end))
                    .next_back()
                    .map(|(k, v)| (k.clone(), v.clone()))
            })
        }))
    }

    fn read_consistent(&self, read: &mut ConsistentRead<'_>) -> Result<(), EngineError> {
        let frozen = Frozen(self.with_tables(|t| t.clone()));
        read(&frozen)
    }

    fn approximate_size(&self, cf: Cf, start: &[u8], end: &[u8]) -> u64 {
        if start >= end {
            return 0;
        }
        self.with_tables(|t| {
            t.get(&cf).map_or(0, |table| {
                table
                    .range(range(start, end))
                    .map(|(k, v)| (k.len() + v.len()) as u64)
                    .sum()
            })
        })
    }

    fn write(&self, batch: &WriteBatch, _sync: bool) -> Result<(), EngineError> {
        // Refuse what RocksDB refuses, before changing anything: the batch is all or nothing.
        let reversed = batch
            .ops()
            .iter()
            .any(|op| matches!(op, WriteOp::DeleteRange { start, end, .. } if start > end));
        if reversed {
            return Err(EngineError::Backend(
                "delete_range: end key comes before start key".into(),
            ));
        }
        for op in batch.ops() {
            let (WriteOp::Put { cf, .. }
            | WriteOp::Delete { cf, .. }
            | WriteOp::DeleteRange { cf, .. }) = op;
            self.declared(*cf)?;
        }
        self.with_tables(|t| {
            for op in batch.ops() {
                match op {
                    WriteOp::Put { cf, key, value } => {
                        t.entry(*cf).or_default().insert(key.clone(), value.clone());
                    }
                    WriteOp::Delete { cf, key } => {
                        if let Some(table) = t.get_mut(cf) {
                            table.remove(key);
                        }
                    }
                    WriteOp::DeleteRange { cf, start, end } => {
                        if let Some(table) = t.get_mut(cf) {
                            if start < end {
                                let doomed: Vec<Vec<u8>> = table
                                    .range(range(start, end))
                                    .map(|(k, _)| k.clone())
                                    .collect();
                                for k in doomed {
                                    table.remove(&k);
                                }
                            }
                        }
                    }
                }
            }
        });
        Ok(())
    }

    fn stage_replacement(
        &self,
        families: &[Cf],
        start: &[u8],
        end: &[u8],
        rows: Vec<FamilyRow>,
    ) -> Result<Vec<String>, EngineError> {
        let mut batches: BTreeMap<Cf, WriteBatch> = BTreeMap::new();
        for cf in families {
            batches
                .entry(*cf)
                .or_default()
                .delete_range(*cf, start.to_vec(), end.to_vec());
        }
        for (cf, key, value) in rows {
            let in_range = key.as_slice() >= start && key.as_slice() < end;
            let batch = batches.get_mut(&cf).filter(|_| in_range).ok_or_else(|| {
                EngineError::Backend(format!("staged row outside the replaced range in {cf:?}"))
            })?;
            batch.put(cf, key, value);
        }
        Ok(self.with_staged(|(next, files)| {
            batches
                .into_values()
                .map(|batch| {
                    *next += 1;
                    let name = format!("staged-{next}");
                    files.insert(name.clone(), batch);
                    name
                })
                .collect()
        }))
    }

    fn ingest_staged(&self, names: &[String]) -> Result<(), EngineError> {
        for name in names {
            if let Some(batch) = self.with_staged(|(_, files)| files.remove(name)) {
                self.write(&batch, true)?;
            }
        }
        Ok(())
    }

    fn discard_staged(&self, names: &[String]) {
        self.with_staged(|(_, files)| {
            for name in names {
                files.remove(name);
            }
        });
    }
}
