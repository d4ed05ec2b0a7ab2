//! What the coordinator and the node processes share around their services, so that neither
//! writes it again and the Raft library stays about Raft:
//!
//! - [`ops`]: `/metrics`, `/healthz` and `/readyz` over HTTP; `grpc.health.v1` and server
//!   reflection; tracing setup; the shutdown signal and the bounded graceful stop.
//! - [`config_file`]: loading a TOML config with errors that name the key, address checks.
//! - [`identity`]: the identity a data dir keeps (kind, id, cluster), checked at start-up.
//! - [`listeners`]: the listening sockets, handed over by the parent (socket activation) or
//!   bound to the configured addresses, with errors that name the key.

pub mod config_file;
pub mod identity;
pub mod listeners;
pub mod ops;
