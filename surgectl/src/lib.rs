//! What the `surgectl` operator CLI is built from, beyond [`surge_client`]: the printing
//! station agent ([`station`]) and the local development cluster's description
//! ([`dev_cluster`]), which tests and benches also use to find, kill and restart processes.

pub mod dev_cluster;
pub mod station;
