//! The coordinator's configuration: a TOML file with documented defaults, overridden by flags,
//! then validated. Unknown keys are errors, and every error names the key.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use surge_grpc::tls::{Role, Transport};
use surge_raftstore::RaftConfig;
use surge_server::config_file::{self, invalid, TlsSection};
pub use surge_server::config_file::{check_address, ConfigError};
use surge_server::listeners::ListenAddresses;

use surge_meta::meta::CoordinatorInfo;

/// A coordinator the group starts with.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PeerFile {
    pub id: u64,
    /// Its client port (AdminService), as operators and surgectl reach it.
    pub address: String,
    /// Its peer port (NodeService, Raft), as nodes and the other coordinators reach it.
    pub peer_address: String,
    /// HTTP (metrics) address; informational.
    #[serde(default)]
    pub http_address: String,
}

/// Raft timers; identical on every process (DESIGN.md §8).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct RaftFile {
    pub tick_ms: u64,
    pub heartbeat_ticks: usize,
    pub election_ticks: usize,
    pub log_gc_threshold: u64,
    pub request_timeout_ms: u64,
}

impl Default for RaftFile {
    fn default() -> Self {
        let d = RaftConfig::default();
        RaftFile {
            tick_ms: d.tick.as_millis() as u64,
            heartbeat_ticks: d.heartbeat_ticks,
            election_ticks: d.election_ticks,
            log_gc_threshold: d.log_gc_threshold,
            request_timeout_ms: d.request_timeout.as_millis() as u64,
        }
    }
}

/// The scheduler's limits and repair delay.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct SchedulerFile {
    /// A node down longer than this has its replicas replaced elsewhere; changed at run time
    /// by `surgectl cluster set max-down-time`.
    pub max_down_time_secs: u64,
    /// Operators in flight at once, cluster-wide.
    pub max_operators: usize,
    /// Snapshots a node sends or receives at once for operators. 2 by default: on the
    /// 2-core reference machine, 3 at once raised intake p99 while replicas moved to 2.6-3.3x
    /// the steady p99 and 2 to 2.1x, while 1 made moving a GiB take 130 s instead of 54 s
    /// (`surge-bench rebalance --max-snapshots-per-node N`, README).
    pub max_snapshots_per_node: usize,
}

impl Default for SchedulerFile {
    fn default() -> Self {
        SchedulerFile {
            max_down_time_secs: 300,
            max_operators: 16,
            max_snapshots_per_node: 2,
        }
    }
}

/// Validated scheduler settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SchedulerConfig {
    pub max_down_time: Duration,
    pub max_operators: usize,
    pub max_snapshots_per_node: usize,
}

/// The file as written by the operator.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// This coordinator's Raft id (> 0), unique in the cluster.
    pub id: u64,
    /// RocksDB and identity live here.
    pub data_dir: PathBuf,
    /// Client gRPC listen address: AdminService, health, reflection.
    pub grpc_listen: String,
    /// Peer gRPC listen address: NodeService (the nodes' calls), the coordinators' Raft
    /// traffic and status calls, health. Never shared with clients.
    pub peer_listen: String,
    /// HTTP listen address for /metrics, /healthz and /readyz.
    pub http_listen: String,
    /// Address operators use to reach the client port; defaults to `grpc_listen`.
    #[serde(default)]
    pub advertise_address: Option<String>,
    /// Address nodes and coordinators use to reach the peer port; defaults to `peer_listen`.
    #[serde(default)]
    pub advertise_peer: Option<String>,
    /// Pins the cluster this data dir must belong to (refuses to start otherwise).
    #[serde(default)]
    pub cluster_id: Option<String>,
    /// Start with an empty configuration and wait to be added (`surgectl coordinator add`).
    #[serde(default)]
    pub join: bool,
    /// Silence after which a node is marked Down.
    #[serde(default = "default_node_down_after_secs")]
    pub node_down_after_secs: u64,
    /// The coordinators a new cluster starts with (including this one unless `join`).
    #[serde(default)]
    pub initial_peers: Vec<PeerFile>,
    #[serde(default)]
    pub raft: RaftFile,
    #[serde(default)]
    pub scheduler: SchedulerFile,
    /// The cluster CA and this coordinator's certificate (`surgectl cert`, identity
    /// `coordinator/ID`).
    #[serde(default)]
    pub tls: Option<TlsSection>,
    /// Plaintext on every port, without certificates; only ever by this explicit choice.
    #[serde(default)]
    pub insecure: bool,
}

fn default_node_down_after_secs() -> u64 {
    10
}

/// A validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    pub id: u64,
    pub data_dir: PathBuf,
    pub grpc_listen: String,
    pub peer_listen: String,
    pub http_listen: String,
    pub advertise_address: String,
    pub advertise_peer: String,
    pub advertise_http: String,
    pub cluster_id: Option<String>,
    pub join: bool,
    /// Set by `--initialize` only (never from the file): this start may found the group from
    /// `initial_peers` on an empty data dir. Without it an empty data dir is refused, so a
    /// coordinator that lost its disk never re-founds the group and votes twice in a term.
    pub initialize: bool,
    pub node_down_after: Duration,
    pub initial_peers: Vec<CoordinatorInfo>,
    pub raft: RaftConfig,
    pub scheduler: SchedulerConfig,
    /// None with `insecure = true`.
    pub tls: Option<TlsSection>,
}

impl Config {
    /// The three addresses this coordinator listens on.
    pub fn listen_addresses(&self) -> ListenAddresses {
        ListenAddresses::new(&self.grpc_listen, &self.peer_listen, &self.http_listen)
    }

    /// The coordinator's TLS (its certificate must name `coordinator/ID`), or plaintext; a
    /// bad file is an error naming its key.
    pub fn transport(&self) -> Result<Transport, ConfigError> {
        config_file::load_transport(
            self.tls.as_ref(),
            Role::Coordinator,
            Some(&self.id.to_string()),
        )
    }
}

impl ConfigFile {
    pub fn parse(path: &Path, text: &str) -> Result<ConfigFile, ConfigError> {
        config_file::parse(path, text)
    }

    pub fn load(path: &Path) -> Result<ConfigFile, ConfigError> {
        config_file::load(path)
    }

    /// Validates every field; the destructuring makes a new field impossible to forget.
    pub fn validate(self) -> Result<Config, ConfigError> {
        let ConfigFile {
            id,
            data_dir,
            grpc_listen,
            peer_listen,
            http_listen,
            advertise_address,
            advertise_peer,
            cluster_id,
            join,
            node_down_after_secs,
            initial_peers,
            raft,
            scheduler,
            tls,
            insecure,
        } = self;
        if id == 0 {
            return Err(invalid("id", "must be greater than 0"));
        }
        if data_dir.as_os_str().is_empty() {
            return Err(invalid("data_dir", "must not be empty"));
        }
        check_address("grpc_listen", &grpc_listen)?;
        check_address("peer_listen", &peer_listen)?;
        check_address("http_listen", &http_listen)?;
        if peer_listen == grpc_listen && !peer_listen.ends_with(":0") {
            return Err(invalid(
                "peer_listen",
                "must differ from grpc_listen: peer traffic never shares the client port",
            ));
        }
        let advertise_address = advertise_address.unwrap_or_else(|| grpc_listen.clone());
        check_address("advertise_address", &advertise_address)?;
        let advertise_peer = advertise_peer.unwrap_or_else(|| peer_listen.clone());
        check_address("advertise_peer", &advertise_peer)?;
        if let Some(cid) = &cluster_id {
            if cid.trim().is_empty() {
                return Err(invalid("cluster_id", "must not be empty when set"));
            }
        }
        if !(1..=3600).contains(&node_down_after_secs) {
            return Err(invalid(
                "node_down_after_secs",
                "must be between 1 and 3600",
            ));
        }
        let mut seen = BTreeSet::new();
        let mut peers = Vec::with_capacity(initial_peers.len());
        for (i, p) in initial_peers.into_iter().enumerate() {
            if p.id == 0 {
                return Err(invalid(
                    format!("initial_peers[{i}].id"),
                    "must be greater than 0",
                ));
            }
            if !seen.insert(p.id) {
                return Err(invalid(
                    format!("initial_peers[{i}].id"),
                    format!("id {} appears twice", p.id),
                ));
            }
            check_address(&format!("initial_peers[{i}].address"), &p.address)?;
            check_address(&format!("initial_peers[{i}].peer_address"), &p.peer_address)?;
            peers.push(CoordinatorInfo {
                id: p.id,
                address: p.address,
                http_address: p.http_address,
                peer_address: p.peer_address,
            });
        }
        if !join && !seen.contains(&id) {
            return Err(invalid(
                "initial_peers",
                format!("must list this coordinator (id {id}) unless join = true"),
            ));
        }
        if join && !peers.is_empty() && seen.contains(&id) {
            return Err(invalid(
                "join",
                "a joining coordinator must not be one of initial_peers",
            ));
        }
        let RaftFile {
            tick_ms,
            heartbeat_ticks,
            election_ticks,
            log_gc_threshold,
            request_timeout_ms,
        } = raft;
        if !(10..=10_000).contains(&tick_ms) {
            return Err(invalid("raft.tick_ms", "must be between 10 and 10000"));
        }
        if heartbeat_ticks == 0 || election_ticks <= heartbeat_ticks {
            return Err(invalid(
                "raft.election_ticks",
                "must be greater than raft.heartbeat_ticks (> 0)",
            ));
        }
        if log_gc_threshold == 0 {
            return Err(invalid("raft.log_gc_threshold", "must be greater than 0"));
        }
        if request_timeout_ms < 100 {
            return Err(invalid("raft.request_timeout_ms", "must be at least 100"));
        }
        let SchedulerFile {
            max_down_time_secs,
            max_operators,
            max_snapshots_per_node,
        } = scheduler;
        if !(1..=7 * 24 * 3600).contains(&max_down_time_secs) {
            return Err(invalid(
                "scheduler.max_down_time_secs",
                "must be between 1 and 604800 (7 days)",
            ));
        }
        if !(1..=1024).contains(&max_operators) {
            return Err(invalid(
                "scheduler.max_operators",
                "must be between 1 and 1024",
            ));
        }
        if !(1..=64).contains(&max_snapshots_per_node) {
            return Err(invalid(
                "scheduler.max_snapshots_per_node",
                "must be between 1 and 64",
            ));
        }
        let advertise_http = peers
            .iter()
            .find(|p| p.id == id && !p.http_address.is_empty())
            .map(|p| p.http_address.clone())
            .unwrap_or_else(|| http_listen.clone());
        // Last, so a wrong key above is named first.
        config_file::check_transport(tls.as_ref(), insecure)?;
        Ok(Config {
            id,
            data_dir,
            grpc_listen,
            peer_listen,
            http_listen,
            advertise_address,
            advertise_peer,
            advertise_http,
            cluster_id,
            join,
            initialize: false,
            node_down_after: Duration::from_secs(node_down_after_secs),
            initial_peers: peers,
            raft: RaftConfig {
                tick: Duration::from_millis(tick_ms),
                heartbeat_ticks,
                election_ticks,
                log_gc_threshold,
                request_timeout: Duration::from_millis(request_timeout_ms),
                ..RaftConfig::default()
            },
            scheduler: SchedulerConfig {
                max_down_time: Duration::from_secs(max_down_time_secs),
                max_operators,
                max_snapshots_per_node,
            },
            tls,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
        id = 1
        data_dir = "/tmp/c1"
        grpc_listen = "127.0.0.1:7001"
        peer_listen = "127.0.0.1:7011"
        http_listen = "127.0.0.1:7101"
        insecure = true

        [[initial_peers]]
        id = 1
        address = "127.0.0.1:7001"
        peer_address = "127.0.0.1:7011"

        [[initial_peers]]
        id = 2
        address = "127.0.0.1:7002"
        peer_address = "127.0.0.1:7012"
    "#;

    fn check(text: &str) -> Result<Config, ConfigError> {
        ConfigFile::parse(Path::new("c.toml"), text)?.validate()
    }

    #[test]
    fn a_good_file_gets_the_documented_defaults() -> Result<(), ConfigError> {
        let c = check(GOOD)?;
        assert_eq!(c.node_down_after, Duration::from_secs(10));
        assert_eq!(c.raft, RaftConfig::default());
        assert_eq!(c.scheduler.max_down_time, Duration::from_secs(300));
        assert_eq!(c.scheduler.max_operators, 16);
        assert_eq!(c.advertise_address, "127.0.0.1:7001");
        assert_eq!(c.advertise_peer, "127.0.0.1:7011");
        assert_eq!(c.initial_peers[1].peer(), "127.0.0.1:7012");
        Ok(())
    }

    #[test]
    fn every_error_names_its_key() {
        let cases = [
            (
                GOOD.replace("id = 1\n        data_dir", "id = 0\n        data_dir"),
                "id",
            ),
            (GOOD.replace("127.0.0.1:7101", "nowhere"), "http_listen"),
            (
                GOOD.replace("127.0.0.1:7002", "x"),
                "initial_peers[1].address",
            ),
            (GOOD.replace("id = 2", "id = 1"), "initial_peers[1].id"),
            (GOOD.replace("insecure = true", ""), "tls: missing"),
            (
                format!("{GOOD}\n[tls]\nca = \"ca.pem\"\ncert = \"c.pem\"\nkey = \"c.key\"\n"),
                "insecure: is true, yet [tls] is set",
            ),
            (
                GOOD.replace("peer_address = \"127.0.0.1:7012\"", ""),
                "peer_address",
            ),
            (
                GOOD.replace("\"127.0.0.1:7012\"", "\"x\""),
                "initial_peers[1].peer_address",
            ),
            (
                GOOD.replace(
                    "peer_listen = \"127.0.0.1:7011\"",
                    "peer_listen = \"127.0.0.1:7001\"",
                ),
                "peer_listen",
            ),
            (GOOD.replace("grpc_listen", "grpc_lisen"), "grpc_lisen"),
            (
                format!("{GOOD}\n[raft]\nelection_ticks = 1\n"),
                "raft.election_ticks",
            ),
            (format!("{GOOD}\n[raft]\ntick = 5\n"), "tick"),
            (
                format!("{GOOD}\n[scheduler]\nmax_down_time_secs = 0\n"),
                "scheduler.max_down_time_secs",
            ),
            (
                format!("{GOOD}\n[scheduler]\nmax_snapshots_per_node = 0\n"),
                "scheduler.max_snapshots_per_node",
            ),
            (
                GOOD.replace("id = 1\n        address", "id = 3\n        address"),
                "initial_peers",
            ),
            (
                GOOD.replace("id = 1\n        data_dir", "id = \"one\"\n        data_dir"),
                "id",
            ),
        ];
        for (text, key) in cases {
            match check(&text) {
                Ok(_) => panic!("accepted a config with a bad {key}"),
                Err(e) => assert!(
                    e.to_string().contains(key),
                    "error {e:?} does not name {key}"
                ),
            }
        }
    }

    #[test]
    fn the_example_files_in_deploy_parse() -> Result<(), ConfigError> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/config");
        let files = config_file::example_files(&dir, "coordinator")?;
        assert!(
            !files.is_empty(),
            "no coordinator example in {}",
            dir.display()
        );
        for path in files {
            ConfigFile::load(&path)?.validate()?;
        }
        Ok(())
    }
}
