//! The RocksDB [`Engine`]: one database per process, one column family per [`Cf`], one WAL.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use rocksdb::{
    ColumnFamilyDescriptor, Direction, IngestExternalFileOptions, IteratorMode, Options,
    ReadOptions, SnapshotWithThreadMode, SstFileWriter, DB,
};

use surge_storage::engine::{
    check_families, Cf, ConsistentRead, Engine, EngineError, Family, FamilyRow, KeyValue, ReadView,
    Tuning, WriteBatch, WriteOp,
};

/// Staged files older than this belong to snapshots that were never installed (raft-rs
/// refused them, or the process stopped before stepping them) and are removed.
const STAGED_MAX_AGE: Duration = Duration::from_secs(3600);

/// A RocksDB database opened with the column families its process declares.
pub struct RocksEngine {
    db: DB,
    families: Vec<Family>,
    /// Where snapshot rows are written as SST files before ingestion (`<db>/staged`).
    staging: PathBuf,
    next_staged: AtomicU64,
}

fn backend(e: rocksdb::Error) -> EngineError {
    EngineError::Backend(e.into_string())
}

fn io_error(path: &Path, e: std::io::Error) -> EngineError {
    EngineError::Backend(format!("{}: {e}", path.display()))
}

/// Per-family tuning, after TiKV's defaults: no compression in the top levels (data there is
/// young and soon rewritten), LZ4 below. A log is written once and deleted after compaction,
/// so it is never compressed; it and the bulk families get larger memtables so that fewer
/// flushes (and less write amplification) happen under intake load.
fn cf_options(tuning: Tuning) -> Options {
    use rocksdb::DBCompressionType::{Lz4, None as Plain};
    let mut o = Options::default();
    match tuning {
        Tuning::Log => {
            o.set_compression_type(Plain);
            o.set_write_buffer_size(64 << 20);
        }
        Tuning::Bulk => {
            o.set_compression_per_level(&[Plain, Plain, Lz4, Lz4, Lz4, Lz4, Lz4]);
            o.set_write_buffer_size(64 << 20);
        }
        Tuning::Small => {
            o.set_compression_per_level(&[Plain, Plain, Lz4, Lz4, Lz4, Lz4, Lz4]);
        }
    }
    o
}

impl RocksEngine {
    /// Opens (creating if needed) the database at `path` with `families`. A family the
    /// database has and the list does not (one a newer or older version declared) is opened
    /// too, untouched, since RocksDB refuses to open a database without all of its families.
    pub fn open(path: &Path, families: &[Family]) -> Result<RocksEngine, EngineError> {
        check_families(families)?;
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        // Bounded: the process may run next to others on a small machine.
        opts.set_max_background_jobs(2);
        opts.set_keep_log_file_num(4);
        let existing = DB::list_cf(&opts, path).unwrap_or_default();
        let undeclared = existing
            .into_iter()
            .filter(|name| name != "default" && !families.iter().any(|f| f.cf.name() == name));
        let cfs: Vec<ColumnFamilyDescriptor> = families
            .iter()
            .map(|f| ColumnFamilyDescriptor::new(f.cf.name(), cf_options(f.tuning)))
            .chain(undeclared.map(|name| ColumnFamilyDescriptor::new(name, Options::default())))
            .collect();
        let db = DB::open_cf_descriptors(&opts, path, cfs).map_err(backend)?;
        let staging = path.join("staged");
        std::fs::create_dir_all(&staging).map_err(|e| io_error(&staging, e))?;
        let seed = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Ok(RocksEngine {
            db,
            families: families.to_vec(),
            staging,
            next_staged: AtomicU64::new(seed),
        })
    }

    /// A database-wide integer property (0 when RocksDB does not know it).
    pub(crate) fn db_property(&self, name: &str) -> u64 {
        self.db.property_int_value(name).ok().flatten().unwrap_or(0)
    }

    /// An integer property summed over every column family.
    pub(crate) fn family_property_sum(&self, name: &str) -> u64 {
        self.families
            .iter()
            .filter_map(|f| self.db.cf_handle(f.cf.name()))
            .filter_map(|h| self.db.property_int_value_cf(&h, name).ok().flatten())
            .sum()
    }

    /// The path of staged file `name`, which must be one this engine made.
    fn staged_path(&self, name: &str) -> Result<(PathBuf, Family), EngineError> {
        let family = name
            .strip_suffix(".sst")
            .and_then(|stem| stem.rsplit_once('-'))
            .and_then(|(_, family)| {
                self.families
                    .iter()
                    .find(|f| f.per_group && f.cf.name() == family)
                    .copied()
            })
            .filter(|_| {
                name.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
                    && !name.starts_with('.')
            })
            .ok_or_else(|| EngineError::Backend(format!("staged file {name:?}: not ours")))?;
        Ok((self.staging.join(name), family))
    }

    /// Removes staged files left by snapshots that were never installed.
    fn collect_old_staged(&self) {
        let Ok(dir) = std::fs::read_dir(&self.staging) else {
            return;
        };
        for entry in dir.flatten() {
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > STAGED_MAX_AGE);
            if old {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }

    /// A declared family's handle (one the database has and the process did not declare is
    /// open but out of reach, as in the in-memory engine).
    fn handle(&self, cf: Cf) -> Result<&rocksdb::ColumnFamily, EngineError> {
        self.families
            .iter()
            .any(|f| f.cf == cf)
            .then(|| self.db.cf_handle(cf.name()))
            .flatten()
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
    fn families(&self) -> &[Family] {
        &self.families
    }

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

    fn stage_replacement(
        &self,
        families: &[Cf],
        start: &[u8],
        end: &[u8],
        rows: Vec<FamilyRow>,
    ) -> Result<Vec<String>, EngineError> {
        self.collect_old_staged();
        let mut by_family: Vec<(Cf, Vec<KeyValue>)> =
            families.iter().map(|cf| (*cf, Vec::new())).collect();
        for (cf, key, value) in rows {
            let in_range = key.as_slice() >= start && key.as_slice() < end;
            let slot = by_family
                .iter_mut()
                .find(|(family, _)| *family == cf)
                .filter(|_| in_range)
                .ok_or_else(|| {
                    EngineError::Backend(format!("staged row outside the replaced range in {cf:?}"))
                })?;
            slot.1.push((key, value));
        }
        let id = self.next_staged.fetch_add(1, Ordering::Relaxed);
        let mut names = Vec::with_capacity(by_family.len());
        for (cf, mut rows) in by_family {
            rows.sort_by(|a, b| a.0.cmp(&b.0));
            let name = format!("{id:020}-{}.sst", cf.name());
            let path = self.staging.join(&name);
            let tuning = self
                .families
                .iter()
                .find(|f| f.cf == cf)
                .map_or(Tuning::Small, |f| f.tuning);
            let opts = cf_options(tuning);
            let mut writer = SstFileWriter::create(&opts);
            writer.open(&path).map_err(backend)?;
            // The file's own tombstone clears what the family held in the range; rows in the same
            // file are not covered by it (same sequence number), older rows are.
            writer.delete_range(start, end).map_err(backend)?;
            for (key, value) in &rows {
                writer.put(key, value).map_err(backend)?;
            }
            writer.finish().map_err(backend)?;
            names.push(name);
        }
        // The files are synced by `finish`; their names must be durable before a Raft state
        // that refers to them is.
        std::fs::File::open(&self.staging)
            .and_then(|dir| dir.sync_all())
            .map_err(|e| io_error(&self.staging, e))?;
        Ok(names)
    }

    fn ingest_staged(&self, names: &[String]) -> Result<(), EngineError> {
        for name in names {
            let (path, family) = self.staged_path(name)?;
            if !path.exists() {
                continue;
            }
            // RocksDB moves (links, then unlinks) what it ingests; it gets a second link so
            // that the staged file stays until the ingestion is complete and durable.
            let link = path.with_extension("ingest");
            let _ = std::fs::remove_file(&link);
            std::fs::hard_link(&path, &link).map_err(|e| io_error(&link, e))?;
            let mut opts = IngestExternalFileOptions::default();
            opts.set_move_files(true);
            self.db
                .ingest_external_file_cf_opts(self.handle(family.cf)?, &opts, vec![&link])
                .map_err(backend)?;
            std::fs::remove_file(&path).map_err(|e| io_error(&path, e))?;
        }
        Ok(())
    }

    fn discard_staged(&self, names: &[String]) {
        for name in names {
            if let Ok((path, _)) = self.staged_path(name) {
                let _ = std::fs::remove_file(path);
            }
        }
    }
}
