//! The processes' configuration files: [`coordinator`] and [`node`] each parse their TOML
//! (every key checked, unknown keys refused, errors naming the key) into a validated `Config`.
//! No RocksDB, no sockets: what reads them at start-up is the only caller besides the fuzzer.

pub mod coordinator;
pub mod node;
