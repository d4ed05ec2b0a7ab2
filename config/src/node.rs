//! The node's configuration: TOML with documented defaults, flags on top, then validation
//! that names the offending key.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use surge_grpc::tls::{Role, Transport};
use surge_label::{Fonts, Renderer, ZplText};
use surge_server::config_file::{self, invalid, TlsSection};
pub use surge_server::config_file::{check_address, ConfigError};
use surge_server::listeners::ListenAddresses;

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// RocksDB and the node's identity live here.
    pub data_dir: PathBuf,
    /// Client gRPC listen address: OrderService, PrintService (merchants' ERPs, print
    /// stations), health, reflection.
    pub grpc_listen: String,
    /// Peer gRPC listen address: Raft traffic, snapshots, calls forwarded from other nodes,
    /// health. Never shared with clients.
    pub peer_listen: String,
    /// HTTP listen address for /metrics, /healthz and /readyz.
    pub http_listen: String,
    /// Address clients use to reach the client port; defaults to `grpc_listen`.
    #[serde(default)]
    pub advertise_address: Option<String>,
    /// Address other nodes use to reach the peer port; defaults to `peer_listen`.
    #[serde(default)]
    pub advertise_peer: Option<String>,
    /// Failure-domain label; replicas of a shard go to distinct zones where possible.
    #[serde(default)]
    pub zone: String,
    /// The coordinators' peer ports (their NodeService).
    pub coordinators: Vec<String>,
    /// Heartbeat period.
    #[serde(default = "default_heartbeat_ms")]
    pub heartbeat_interval_ms: u64,
    /// Snapshot data this node sends per second, all transfers together, so replicas moving
    /// off it never starve intake of disk and network.
    #[serde(default = "default_snapshot_rate")]
    pub snapshot_max_bytes_per_sec: u64,
    /// The cluster CA and this node's certificate (`surgectl cert issue --node NAME`).
    #[serde(default)]
    pub tls: Option<TlsSection>,
    /// Plaintext on every port, without certificates; only ever by this explicit choice.
    #[serde(default)]
    pub insecure: bool,
    /// How labels draw Chinese text.
    #[serde(default)]
    pub labels: LabelsSection,
}

/// `[labels]`: the CJK font labels are drawn with, and how ZPL carries such text.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LabelsSection {
    /// A TrueType/OpenType font or collection with Chinese glyphs; by default the first
    /// installed of Noto Sans CJK, WenQuanYi Micro Hei and Zen Hei.
    #[serde(default)]
    pub font: Option<PathBuf>,
    /// Its bold face; by default `font` itself (or Noto Sans CJK Bold with the default font).
    #[serde(default)]
    pub bold_font: Option<PathBuf>,
    /// `"graphic"` (the default: surge draws such text as a ^GF bitmap, which every printer
    /// prints) or `"printer:E:NAME.TTF"` (a font already downloaded to every printer, ^CW).
    #[serde(default)]
    pub zpl_text: Option<String>,
}

fn default_snapshot_rate() -> u64 {
    surge_raftstore::RaftConfig::default().snapshot_bytes_per_sec
}

fn default_heartbeat_ms() -> u64 {
    1000
}

#[derive(Clone, Debug)]
pub struct Config {
    pub data_dir: PathBuf,
    pub grpc_listen: String,
    pub peer_listen: String,
    pub http_listen: String,
    pub advertise_address: String,
    pub advertise_peer: String,
    pub advertise_http: String,
    pub zone: String,
    pub coordinators: Vec<String>,
    pub heartbeat_interval: Duration,
    /// Raft timers (DESIGN.md §8), identical on every node.
    pub raft: surge_raftstore::RaftConfig,
    /// None with `insecure = true`.
    pub tls: Option<TlsSection>,
    pub labels: Labels,
}

/// The validated `[labels]` section.
#[derive(Clone, Debug, Default)]
pub struct Labels {
    pub font: Option<PathBuf>,
    pub bold_font: Option<PathBuf>,
    pub zpl_text: ZplText,
}

impl Labels {
    /// Loads the fonts and makes the renderer. No font configured and none installed is not an
    /// error (`Ok` with a renderer without fonts: the caller warns); a configured font that
    /// cannot be read or has no Chinese glyphs is, naming the key.
    pub fn renderer(&self) -> Result<Renderer, ConfigError> {
        let fonts = match &self.font {
            Some(path) => Some(
                Fonts::open(path, self.bold_font.as_deref())
                    .map_err(|e| invalid("labels.font", e.to_string()))?,
            ),
            None if self.bold_font.is_some() => {
                return Err(invalid("labels.bold_font", "needs labels.font as well"))
            }
            None => Fonts::system(),
        };
        Ok(Renderer::new(fonts, self.zpl_text.clone()))
    }
}

impl Config {
    /// The three addresses this node listens on.
    pub fn listen_addresses(&self) -> ListenAddresses {
        ListenAddresses::new(&self.grpc_listen, &self.peer_listen, &self.http_listen)
    }

    /// The node's TLS (any node identity: its id is bound to it when it registers), or
    /// plaintext; a bad file is an error naming its key.
    pub fn transport(&self) -> Result<Transport, ConfigError> {
        config_file::load_transport(self.tls.as_ref(), Role::Node, None)
    }
}

impl ConfigFile {
    pub fn parse(path: &Path, text: &str) -> Result<ConfigFile, ConfigError> {
        config_file::parse(path, text)
    }

    pub fn load(path: &Path) -> Result<ConfigFile, ConfigError> {
        config_file::load(path)
    }

    pub fn validate(self) -> Result<Config, ConfigError> {
        let ConfigFile {
            data_dir,
            grpc_listen,
            peer_listen,
            http_listen,
            advertise_address,
            advertise_peer,
            zone,
            coordinators,
            heartbeat_interval_ms,
            snapshot_max_bytes_per_sec,
            tls,
            insecure,
            labels,
        } = self;
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
        if zone.len() > 64 {
            return Err(invalid("zone", "at most 64 bytes"));
        }
        if coordinators.is_empty() {
            return Err(invalid(
                "coordinators",
                "at least one coordinator address is needed",
            ));
        }
        for (i, c) in coordinators.iter().enumerate() {
            check_address(&format!("coordinators[{i}]"), c)?;
        }
        if !(100..=10_000).contains(&heartbeat_interval_ms) {
            return Err(invalid(
                "heartbeat_interval_ms",
                "must be between 100 and 10000",
            ));
        }
        if snapshot_max_bytes_per_sec < (1 << 20) {
            return Err(invalid(
                "snapshot_max_bytes_per_sec",
                "must be at least 1048576 (1 MiB/s)",
            ));
        }
        let zpl_text = match labels.zpl_text.as_deref() {
            None => ZplText::Graphic,
            Some(s) => s.parse().map_err(|e: surge_label::ZplTextError| {
                invalid("labels.zpl_text", e.to_string())
            })?,
        };
        // Last, so a wrong key above is named first.
        config_file::check_transport(tls.as_ref(), insecure)?;
        Ok(Config {
            data_dir,
            advertise_http: http_listen.clone(),
            grpc_listen,
            peer_listen,
            http_listen,
            advertise_address,
            advertise_peer,
            zone,
            coordinators,
            heartbeat_interval: Duration::from_millis(heartbeat_interval_ms),
            raft: surge_raftstore::RaftConfig {
                snapshot_bytes_per_sec: snapshot_max_bytes_per_sec,
                ..surge_raftstore::RaftConfig::default()
            },
            tls,
            labels: Labels {
                font: labels.font,
                bold_font: labels.bold_font,
                zpl_text,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
        data_dir = "/tmp/n1"
        grpc_listen = "127.0.0.1:7201"
        peer_listen = "127.0.0.1:7501"
        http_listen = "127.0.0.1:7301"
        insecure = true
        zone = "zone-a"
        coordinators = ["127.0.0.1:7001"]
    "#;

    fn check(text: &str) -> Result<Config, ConfigError> {
        ConfigFile::parse(Path::new("n.toml"), text)?.validate()
    }

    #[test]
    fn defaults_apply() -> Result<(), ConfigError> {
        let c = check(GOOD)?;
        assert_eq!(c.heartbeat_interval, Duration::from_secs(1));
        assert_eq!(c.raft.snapshot_bytes_per_sec, 100 << 20);
        assert_eq!(c.advertise_address, "127.0.0.1:7201");
        assert_eq!(c.advertise_peer, "127.0.0.1:7501");
        Ok(())
    }

    #[test]
    fn errors_name_the_key() {
        let cases = [
            (GOOD.replace("[\"127.0.0.1:7001\"]", "[]"), "coordinators"),
            (
                GOOD.replace("[\"127.0.0.1:7001\"]", "[\"x\"]"),
                "coordinators[0]",
            ),
            (GOOD.replace("zone =", "zon ="), "zon"),
            (
                format!("{GOOD}\nheartbeat_interval_ms = 5\n"),
                "heartbeat_interval_ms",
            ),
            (GOOD.replace("127.0.0.1:7301", "7301"), "http_listen"),
            (
                GOOD.replace("127.0.0.1:7501", "127.0.0.1:7201"),
                "peer_listen",
            ),
            (GOOD.replace("peer_listen", "peer_lisen"), "peer_lisen"),
            (GOOD.replace("insecure = true", ""), "tls: missing"),
            (
                format!("{GOOD}\n[tls]\nca = \"ca.pem\"\ncert = \"c.pem\"\nkey = \"c.key\"\n"),
                "insecure: is true, yet [tls] is set",
            ),
            (
                format!("{GOOD}\nsnapshot_max_bytes_per_sec = 10\n"),
                "snapshot_max_bytes_per_sec",
            ),
            (
                format!("{GOOD}\n[labels]\nzpl_text = \"printer:SIMSUN\"\n"),
                "labels.zpl_text",
            ),
            (format!("{GOOD}\n[labels]\nfont_size = 3\n"), "font_size"),
        ];
        for (text, key) in cases {
            match check(&text) {
                Ok(_) => panic!("accepted a bad {key}"),
                Err(e) => assert!(e.to_string().contains(key), "{e} does not name {key}"),
            }
        }
    }

    #[test]
    fn a_label_font_that_cannot_draw_chinese_names_its_key() -> Result<(), ConfigError> {
        let text = format!("{GOOD}\n[labels]\nfont = \"/nonexistent/font.ttc\"\n");
        let err = check(&text)?.labels.renderer().expect_err("no such font");
        assert!(err.to_string().contains("labels.font"), "{err}");
        assert!(err.to_string().contains("/nonexistent/font.ttc"), "{err}");
        let text = format!("{GOOD}\n[labels]\nbold_font = \"/x.ttc\"\n");
        let err = check(&text)?.labels.renderer().expect_err("bold alone");
        assert!(err.to_string().contains("labels.bold_font"), "{err}");
        let text = format!("{GOOD}\n[labels]\nzpl_text = \"printer:E:NOTOSC.TTF\"\n");
        assert_eq!(
            check(&text)?.labels.zpl_text,
            ZplText::PrinterFont("E:NOTOSC.TTF".into())
        );
        Ok(())
    }

    #[test]
    fn the_example_files_in_deploy_parse() -> Result<(), ConfigError> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/config");
        let files = config_file::example_files(&dir, "node")?;
        assert!(!files.is_empty(), "no node example in {}", dir.display());
        for path in files {
            ConfigFile::load(&path)?.validate()?;
        }
        Ok(())
    }
}
