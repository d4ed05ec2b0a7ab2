//! The storage trait: an ordered key-value engine with column families and atomic write batches.
//!
//! It knows nothing of Raft or of RocksDB. Everything Raft-specific (key layout, truncation,
//! snapshots) is written once on top of it in surge-raftstore's `GroupStorage`, so the RocksDB engine and
//! the in-memory engine behave identically and pass the same conformance suite.

/// A column family. The families are declared by the layers that own them, not here: the Raft
/// library declares its log and state families, the shard and metadata state machines their
/// data families, and each process opens its engine with the list it needs ([`Family`]). Only
/// [`Cf::META`], which every process's identity lives in, is declared by this crate. They
/// share one WAL, so one [`WriteBatch`] is atomic across them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cf {
    code: u32,
    name: &'static str,
}

impl Cf {
    /// Process identity, node-local records and the coordinator's metadata (`group | ...`).
    pub const META: Cf = Cf::new(3, "meta");

    /// A family with a stable wire `code` (snapshot rows carry it) and its engine `name`.
    /// Codes and names must be unique within one process's [`Family`] list.
    pub const fn new(code: u32, name: &'static str) -> Cf {
        Cf { code, name }
    }

    /// The RocksDB column family name.
    pub fn name(self) -> &'static str {
        self.name
    }

    /// A stable number for the wire (snapshot rows).
    pub fn code(self) -> u32 {
        self.code
    }
}

/// How an engine should treat a family: hints, not semantics (the in-memory engine ignores
/// them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tuning {
    /// Written once, read rarely and deleted after compaction (a Raft log): never compressed,
    /// large memtables.
    Log,
    /// Large and hot (orders and their indexes): large memtables, compressed below the top.
    Bulk,
    /// Everything else.
    Small,
}

/// A column family as a process declares it when it opens its engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Family {
    pub cf: Cf,
    /// Its rows are keyed `group | ...` and belong to one Raft group's state machine: a
    /// snapshot carries them, and destroying a replica deletes them.
    pub per_group: bool,
    pub tuning: Tuning,
}

impl Family {
    /// The families every process has, whatever else it declares: [`Cf::META`].
    pub const META: Family = Family {
        cf: Cf::META,
        per_group: true,
        tuning: Tuning::Small,
    };
}

/// Checks a process's family list: codes and names unique.
pub fn check_families(families: &[Family]) -> Result<(), EngineError> {
    for (i, a) in families.iter().enumerate() {
        for b in &families[i + 1..] {
            if a.cf.code == b.cf.code || a.cf.name == b.cf.name {
                return Err(EngineError::Backend(format!(
                    "column families {} and {} share a code or a name",
                    a.cf.name, b.cf.name
                )));
            }
        }
    }
    Ok(())
}

/// One write in a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriteOp {
    Put {
        cf: Cf,
        key: Vec<u8>,
        value: Vec<u8>,
    },
    Delete {
        cf: Cf,
        key: Vec<u8>,
    },
    /// Deletes keys in `[start, end)`.
    DeleteRange {
        cf: Cf,
        start: Vec<u8>,
        end: Vec<u8>,
    },
}

/// Writes applied atomically, in order.
#[derive(Clone, Debug, Default)]
pub struct WriteBatch {
    ops: Vec<WriteOp>,
    bytes: usize,
}

impl WriteBatch {
    pub fn put(&mut self, cf: Cf, key: Vec<u8>, value: Vec<u8>) {
        self.bytes += key.len() + value.len();
        self.ops.push(WriteOp::Put { cf, key, value });
    }

    pub fn delete(&mut self, cf: Cf, key: Vec<u8>) {
        self.bytes += key.len();
        self.ops.push(WriteOp::Delete { cf, key });
    }

    pub fn delete_range(&mut self, cf: Cf, start: Vec<u8>, end: Vec<u8>) {
        self.bytes += start.len() + end.len();
        self.ops.push(WriteOp::DeleteRange { cf, start, end });
    }

    pub fn ops(&self) -> &[WriteOp] {
        &self.ops
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Approximate payload size, for batch-size limits and metrics.
    pub fn size_bytes(&self) -> usize {
        self.bytes
    }
}

/// An engine failure. Raft cannot go on after one: the process stops the affected groups.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("storage engine: {0}")]
    Backend(String),
    #[error("corrupt record in {cf:?} at key {key:?}: {reason}")]
    Corrupt {
        cf: Cf,
        key: Vec<u8>,
        reason: String,
    },
}

/// A key and its value.
pub type KeyValue = (Vec<u8>, Vec<u8>);

/// A row in one family, as a snapshot carries it.
pub type FamilyRow = (Cf, Vec<u8>, Vec<u8>);

/// A point-in-time view of an engine: every read through it sees the state after the same
/// last write, whatever is written meanwhile.
pub trait ReadView {
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>, EngineError>;

    /// Visits keys in `[start, end)` in order until `visit` returns false.
    fn scan(
        &self,
        cf: Cf,
        start: &[u8],
        end: &[u8],
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), EngineError>;
}

/// What [`Engine::read_consistent`] runs.
pub type ConsistentRead<'a> = dyn FnMut(&dyn ReadView) -> Result<(), EngineError> + 'a;

/// An ordered key-value store with column families.
pub trait Engine: Send + Sync + 'static {
    /// The families this engine was opened with.
    fn families(&self) -> &[Family];

    /// The families whose rows belong to a group: what a snapshot carries and a destroyed
    /// replica loses.
    fn group_families(&self) -> Vec<Cf> {
        self.families()
            .iter()
            .filter(|f| f.per_group)
            .map(|f| f.cf)
            .collect()
    }

    /// The declared family with wire code `code`.
    fn family_of_code(&self, code: u32) -> Option<Cf> {
        self.families()
            .iter()
            .map(|f| f.cf)
            .find(|cf| cf.code() == code)
    }

    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>, EngineError>;

    /// Visits keys in `[start, end)` in order until `visit` returns false.
    fn scan(
        &self,
        cf: Cf,
        start: &[u8],
        end: &[u8],
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), EngineError>;

    /// The greatest key in `[start, end)`, with its value.
    fn last_in_range(
        &self,
        cf: Cf,
        start: &[u8],
        end: &[u8],
    ) -> Result<Option<KeyValue>, EngineError>;

    /// Applies `batch` atomically; with `sync`, returns only once it is durable.
    fn write(&self, batch: &WriteBatch, sync: bool) -> Result<(), EngineError>;

    /// Runs `read` against one point-in-time view, so rows read from several families (data
    /// and the applied index that covers it) agree with each other.
    fn read_consistent(&self, read: &mut ConsistentRead<'_>) -> Result<(), EngineError>;

    /// Approximate bytes stored in `[start, end)` of `cf`: what the engine can estimate
    /// cheaply (RocksDB: flushed files only), never a scan.
    fn approximate_size(&self, cf: Cf, start: &[u8], end: &[u8]) -> u64;

    /// Stages a replacement of `[start, end)` in each of `families` by `rows` (every row in
    /// that range and in one of those families), written aside — for RocksDB, as SST files —
    /// so that the writing happens off the raft loop. Returns the staged files' names, to be
    /// passed to [`Engine::ingest_staged`] or [`Engine::discard_staged`].
    fn stage_replacement(
        &self,
        families: &[Cf],
        start: &[u8],
        end: &[u8],
        rows: Vec<FamilyRow>,
    ) -> Result<Vec<String>, EngineError>;

    /// Carries out staged replacements, each atomically for its family, and removes their
    /// files. A name whose file is gone is skipped: it was ingested before the process stopped,
    /// so replaying a list after a crash is safe.
    fn ingest_staged(&self, names: &[String]) -> Result<(), EngineError>;

    /// Removes staged files that will not be ingested (a snapshot raft-rs or the loop refused).
    fn discard_staged(&self, names: &[String]);
}
