//! What the `surgectl` operator CLI is built from, beyond [`surge_client`]: the printing
//! station agent ([`station`]), the local development cluster's description
//! ([`dev_cluster`]), which tests and benches also use to find, kill and restart processes,
//! the listening sockets `dev` binds for its processes and hands to them
//! ([`held_listeners`]), and the cluster's certificates ([`certs`]).

pub mod certs;
pub mod dev_cluster;
pub mod held_listeners;
pub mod station;
