//! RocksDB's background work as Prometheus gauges, read from the database's properties when
//! `/metrics` is scraped (no thread of its own): compactions and flushes running, the bytes
//! compaction still owes, level-0 files and the write rate RocksDB is holding writes to. These
//! tell an SRE (and `surge-bench rebalance`) whether a latency spike is the disk's housekeeping.

use std::sync::{Arc, Weak};

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{IntGauge, Opts};

use crate::rocks_engine::RocksEngine;

/// The collector; it holds the engine weakly, so a closed database reports nothing.
struct RocksCollector {
    engine: Weak<RocksEngine>,
    gauges: Vec<(IntGauge, Property)>,
}

/// Where a gauge's value comes from.
#[derive(Clone, Copy)]
enum Property {
    /// A database-wide property.
    Db(&'static str),
    /// A per-family property, summed over the families.
    Families(&'static str),
}

const GAUGES: [(&str, &str, Property); 5] = [
    (
        "surge_rocksdb_running_compactions",
        "RocksDB compactions running now",
        Property::Db("rocksdb.num-running-compactions"),
    ),
    (
        "surge_rocksdb_running_flushes",
        "RocksDB memtable flushes running now",
        Property::Db("rocksdb.num-running-flushes"),
    ),
    (
        "surge_rocksdb_pending_compaction_bytes",
        "Bytes RocksDB estimates compaction still has to rewrite, over all column families",
        Property::Families("rocksdb.estimate-pending-compaction-bytes"),
    ),
    (
        "surge_rocksdb_level0_files",
        "Level-0 SST files over all column families (writes slow down as they pile up)",
        Property::Families("rocksdb.num-files-at-level0"),
    ),
    (
        "surge_rocksdb_delayed_write_rate_bytes",
        "The write rate RocksDB is throttling writes to, 0 when it is not",
        Property::Db("rocksdb.actual-delayed-write-rate"),
    ),
];

impl Collector for RocksCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.gauges.iter().flat_map(|(g, _)| g.desc()).collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let Some(engine) = self.engine.upgrade() else {
            return Vec::new();
        };
        self.gauges
            .iter()
            .flat_map(|(gauge, property)| {
                let value = match *property {
                    Property::Db(name) => engine.db_property(name),
                    Property::Families(name) => engine.family_property_sum(name),
                };
                gauge.set(i64::try_from(value).unwrap_or(i64::MAX));
                gauge.collect()
            })
            .collect()
    }
}

/// Registers `engine`'s gauges in the process-wide registry. A second engine in one process
/// (tests) finds the names taken and is not reported.
pub fn register(engine: &Arc<RocksEngine>) {
    let gauges = GAUGES
        .iter()
        .map(|(name, help, property)| {
            let gauge = IntGauge::with_opts(Opts::new(*name, *help))
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            (gauge, *property)
        })
        .collect();
    let collector = RocksCollector {
        engine: Arc::downgrade(engine),
        gauges,
    };
    let _ = prometheus::default_registry().register(Box::new(collector));
}
