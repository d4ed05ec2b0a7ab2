//! [`KvSm`]: the smallest state machine that still exercises the durable apply path.
//!
//! Each command becomes one row `group | index → data` in `Cf::META`, written in the peer's
//! apply batch together with the applied index. Because every command ever applied stays on
//! disk, the rows are the full applied history: a restart or an installed snapshot rebuilds it
//! exactly, and two replicas agree iff their row sets are equal.

use std::sync::Arc;

use surge_raftstore::{keys, Cf, Engine, EngineError, MemEngine, StateMachine, WriteBatch};

/// One applied command: its log index and payload.
pub(crate) type Command = (u64, Vec<u8>);

/// Records applied commands in memory and as engine rows.
pub(crate) struct KvSm {
    engine: Arc<MemEngine>,
    group: u64,
    applied: Vec<Command>,
    /// How many snapshots this incarnation installed, to show the snapshot path ran.
    snapshot_installs: u64,
}

impl KvSm {
    /// Rebuilds the state machine from the engine, as a restarted process does.
    pub(crate) fn load(engine: Arc<MemEngine>, group: u64) -> KvSm {
        let mut sm = KvSm {
            engine,
            group,
            applied: Vec::new(),
            snapshot_installs: 0,
        };
        sm.applied = sm.read_rows().expect("read state machine rows");
        sm
    }

    pub(crate) fn applied(&self) -> &[Command] {
        &self.applied
    }

    pub(crate) fn snapshot_installs(&self) -> u64 {
        self.snapshot_installs
    }

    fn read_rows(&self) -> Result<Vec<Command>, EngineError> {
        let mut rows = Vec::new();
        let start = keys::group_prefix(self.group);
        let end = keys::group_end(self.group);
        self.engine
            .scan(Cf::META, &start, &end, &mut |key, value| {
                let index = key[8..]
                    .try_into()
                    .map(u64::from_be_bytes)
                    .expect("row key is group | index");
                rows.push((index, value.to_vec()));
                true
            })?;
        Ok(rows)
    }
}

impl StateMachine for KvSm {
    /// The payload, so the driver can record what was applied where.
    type Output = Vec<u8>;

    fn apply(&mut self, index: u64, data: &[u8], batch: &mut WriteBatch) -> Vec<u8> {
        // A peer that applies an index twice (e.g. after a restart that lost its applied index)
        // or out of order breaks exactly-once apply; fail the seed at the point it happens.
        if let Some((last, _)) = self.applied.last() {
            assert!(index > *last, "entry {index} applied after entry {last}");
        }
        batch.put(
            Cf::META,
            keys::data_key(self.group, &index.to_be_bytes()),
            data.to_vec(),
        );
        self.applied.push((index, data.to_vec()));
        data.to_vec()
    }

    fn reload(&mut self) -> Result<(), EngineError> {
        self.applied = self.read_rows()?;
        self.snapshot_installs += 1;
        Ok(())
    }
}
