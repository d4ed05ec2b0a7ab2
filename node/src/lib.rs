//! The surge worker node. Here it joins the cluster: it keeps a stable identity in its data dir,
//! registers with the coordinators, heartbeats every second, learns which shard replicas are
//! placed on it, and serves health, reflection and metrics.
//!
//! Layout: [`config`] (TOML → validated `Config`), [`membership`] (registration and
//! heartbeats), [`server`] (start-up and serving).

pub mod config;
pub mod membership;
pub mod server;
