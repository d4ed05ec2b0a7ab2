//! The RocksDB [`Engine`]: one database per process, one column family per [`Cf`], one WAL.

use std::path::Path;

use rocksdb::{
    ColumnFamilyDescriptor, Direction, IteratorMode, Options, ReadOptions, SnapshotWithThreadMode,
    DB,
};

use crate::engine::{
    Cf, ConsistentRead, Engine, EngineError, KeyValue, ReadView, WriteBatch, WriteOp,
};

/// A RocksDB database opened with every surge column family.
pub struct RocksEngine {
    db: DB,
}

fn backend(e: rocksdb::Error) -> EngineError {
    EngineError::Backend(e.into_string())
}

/// Per-family tuning, after TiKV's defaults: no compression in the top levels (data there is
/// young and soon rewritten), LZ4 below. The Raft log is written once and deleted after
/// compaction, so it is never compressed; it and the order families get larger memtables so
/// that fewer flushes (and less write amplification) happen under intake load.
fn cf_options(cf: Cf) -> Options {
    use rocksdb::DBCompressionType::{Lz4, None as Plain};
    let mut o = Options::default();
    match cf {
        Cf::RaftLog => {
            o.set_compression_type(Plain);
            o.set_write_buffer_size(64 << 20);
        }
        Cf::Orders | Cf::OrderIndex => {
            o.set_compression_per_level(&[Plain, Plain, Lz4, Lz4, Lz4, Lz4, Lz4]);
            o.set_write_buffer_size(64 << 20);
        }
        _ => {
            o.set_compression_per_level(&[Plain, Plain, Lz4, Lz4, Lz4, Lz4, Lz4]);
        }
    }
    o
}

impl RocksEngine {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<RocksEngine, EngineError> {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        // Bounded: the process may run next to others on a small machine.
        opts.set_max_background_jobs(2);
        opts.set_keep_log_file_num(4);
        let cfs = Cf::ALL
            .iter()
            .map(|cf| ColumnFamilyDescriptor::new(cf.name(), cf_options(*cf)));
        let db = DB::open_cf_descriptors(&opts, path, cfs).map_err(backend)?;
        Ok(RocksEngine { db })
    }

    fn handle(&self, cf: Cf) -> Result<&rocksdb::ColumnFamily, EngineError> {
        self.db
            .cf_handle(cf.name())
            .ok_or_else(|| EngineError::Backend(format!("column family {} missing", cf.name())))
    }

    fn bounded(start: &[u8], end: &[u8]) -> ReadOptions {
        let mut ro = ReadOptions::default();
        ro.set_iterate_lower_bound(start.to_vec());
        ro.set_iterate_upper_bound(end.to_vec());
        ro
    }
}

/// A RocksDB snapshot: reads through it see the database as of its creation.
struct Pinned<'a> {
    engine: &'a RocksEngine,
    snapshot: SnapshotWithThreadMode<'a, DB>,
}

impl ReadView for Pinned<'_> {
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>, EngineError> {
        self.snapshot
            .get_cf(self.engine.handle(cf)?, key)
            .map_err(backend)
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
        let iter = self.snapshot.iterator_cf_opt(
            self.engine.handle(cf)?,
            RocksEngine::bounded(start, end),
            IteratorMode::From(start, Direction::Forward),
        );
        for item in iter {
            let (k, v) = item.map_err(backend)?;
            if !visit(&k, &v) {
                break;
            }
        }
        Ok(())
    }
}

impl Engine for RocksEngine {
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>, EngineError> {
        self.db.get_cf(self.handle(cf)?, key).map_err(backend)
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
        let iter = self.db.iterator_cf_opt(
            self.handle(cf)?,
            Self::bounded(start, end),
            IteratorMode::From(start, Direction::Forward),
        );
        for item in iter {
            let (k, v) = item.map_err(backend)?;
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
        let mut iter = self.db.iterator_cf_opt(
            self.handle(cf)?,
            Self::bounded(start, end),
            IteratorMode::End,
        );
        match iter.next() {
            Some(item) => {
                let (k, v) = item.map_err(backend)?;
                Ok(Some((k.to_vec(), v.to_vec())))
            }
            None => Ok(None),
        }
    }

    fn read_consistent(&self, read: &mut ConsistentRead<'_>) -> Result<(), EngineError> {
        let pinned = Pinned {
            engine: self,
            snapshot: self.db.snapshot(),
        };
        read(&pinned)
    }

    fn approximate_size(&self, cf: Cf, start: &[u8], end: &[u8]) -> u64 {
        let Ok(handle) = self.handle(cf) else {
            return 0;
        };
        if start >= end {
            return 0;
        }
        self.db
            .get_approximate_sizes_cf(handle, &[rocksdb::Range::new(start, end)])
            .first()
            .copied()
            .unwrap_or(0)
    }

    fn write(&self, batch: &WriteBatch, sync: bool) -> Result<(), EngineError> {
        let mut wb = rocksdb::WriteBatch::default();
        for op in batch.ops() {
            match op {
                WriteOp::Put { cf, key, value } => wb.put_cf(self.handle(*cf)?, key, value),
                WriteOp::Delete { cf, key } => wb.delete_cf(self.handle(*cf)?, key),
                WriteOp::DeleteRange { cf, start, end } => {
                    wb.delete_range_cf(self.handle(*cf)?, start, end)
                }
            }
        }
        let mut wo = rocksdb::WriteOptions::default();
        wo.set_sync(sync);
        self.db.write_opt(wb, &wo).map_err(backend)
    }
}
