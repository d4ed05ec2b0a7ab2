//! surge's RocksDB engine: [`RocksEngine`] implements `surge_storage::Engine` on one database per
//! process (the column families the process declares, one WAL), and [`rocks_metrics`] reports RocksDB's
//! background work (compactions, flushes, level-0 files, write stalls) to Prometheus.

pub mod rocks_engine;
pub mod rocks_metrics;

pub use rocks_engine::RocksEngine;
