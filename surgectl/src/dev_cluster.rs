//! The local development cluster's description (`DIR/cluster.json`), written by
//! `surgectl dev up` and read by tests, benches and operators' scripts to find, kill and
//! restart its processes.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde::{Deserialize, Serialize};
use surge_grpc::tls::{ClusterTls, PeerIdentity, TlsError, Transport};

use crate::held_listeners::{HeldListeners, ACTIVATION_VARS};

/// One process of the dev cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessEntry {
    /// `coordinator-1`, `node-2`, ...
    pub name: String,
    /// Coordinator id, or the node's ordinal in the dev cluster.
    pub id: u64,
    /// The client port (AdminService, or OrderService and PrintService).
    pub grpc_address: String,
    pub http_address: String,
    /// The peer port (NodeService and Raft, or Raft and forwarded calls).
    #[serde(default)]
    pub peer_address: String,
    pub pid: u32,
    pub data_dir: PathBuf,
    pub config: PathBuf,
    pub log: PathBuf,
    /// Program and arguments that (re)start it.
    pub command: Vec<String>,
}

/// The whole dev cluster.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterFile {
    pub cluster_id: String,
    pub coordinators: Vec<ProcessEntry>,
    pub nodes: Vec<ProcessEntry>,
    /// The first port of the cluster's range (nodes `dev add-node` starts take theirs from
    /// it); 0 when the OS chose every port (and chooses those of added nodes).
    #[serde(default)]
    pub base_port: u16,
    /// The nodes' snapshot rate, when `dev up` set one (added nodes get it too).
    #[serde(default)]
    pub snapshot_bytes_per_sec: Option<u64>,
    /// The cluster's certificate directory (`surgectl cert init`); None when it runs with
    /// `insecure = true`.
    #[serde(default)]
    pub certs: Option<PathBuf>,
    /// The file holding the cluster's first admin token (mode 0600), once `dev up`
    /// initialized the cluster.
    #[serde(default)]
    pub admin_token_file: Option<PathBuf>,
}

impl ClusterFile {
    pub fn path(dir: &Path) -> PathBuf {
        dir.join("cluster.json")
    }

    pub fn load(dir: &Path) -> std::io::Result<ClusterFile> {
        let text = std::fs::read_to_string(Self::path(dir))?;
        serde_json::from_str(&text).map_err(std::io::Error::other)
    }

    /// Writes atomically (temp file + rename), so readers never see half a file.
    pub fn save(&self, dir: &Path) -> std::io::Result<()> {
        let tmp = dir.join("cluster.json.tmp");
        std::fs::write(
            &tmp,
            serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?,
        )?;
        std::fs::rename(tmp, Self::path(dir))
    }

    /// The cluster's first admin token, once it has one.
    pub fn admin_token(&self) -> std::io::Result<Option<String>> {
        match &self.admin_token_file {
            Some(path) if path.exists() => read_secret(path).map(Some),
            _ => Ok(None),
        }
    }

    /// A client of the coordinators as surgectl calls them: over [`ClusterFile::transport`],
    /// with the admin token once the cluster has one.
    pub fn meta_client(&self) -> anyhow::Result<surge_client::MetaClient> {
        use anyhow::Context as _;
        let transport = self.transport().context("the dev cluster's certificates")?;
        let client = surge_client::MetaClient::new(self.coordinator_addresses())
            .map_err(|s| anyhow::anyhow!(s.message().to_string()))?
            .with_transport(transport);
        match self
            .admin_token()
            .context("the dev cluster's admin token")?
        {
            Some(token) => client
                .with_token(&token)
                .map_err(|s| anyhow::anyhow!("admin token: {}", s.message())),
            None => Ok(client),
        }
    }

    /// The coordinators' client ports, as surgectl calls them.
    pub fn coordinator_addresses(&self) -> Vec<String> {
        self.coordinators
            .iter()
            .map(|c| c.grpc_address.clone())
            .collect()
    }

    /// How surgectl, tests and benches call this cluster: TLS with the operator certificate
    /// `surgectl cert init` made (`operator-surgectl`), or plaintext.
    pub fn transport(&self) -> Result<Transport, TlsError> {
        self.transport_as(&crate::certs::surgectl_operator())
    }

    /// TLS with `identity`'s certificate from the cluster's directory, or plaintext.
    pub fn transport_as(&self, identity: &PeerIdentity) -> Result<Transport, TlsError> {
        let Some(dir) = &self.certs else {
            return Ok(Transport::Plaintext);
        };
        let (cert, key) = crate::certs::paths(dir, identity);
        ClusterTls::load(&dir.join(crate::certs::CA_CERT), Some((&cert, &key))).map(Transport::tls)
    }

    /// TLS that verifies the servers but presents no certificate (as a merchant's ERP calls
    /// the client ports), or plaintext.
    pub fn client_transport(&self) -> Result<Transport, TlsError> {
        let Some(dir) = &self.certs else {
            return Ok(Transport::Plaintext);
        };
        ClusterTls::load(&dir.join(crate::certs::CA_CERT), None).map(Transport::tls)
    }

    /// The coordinators' peer ports, as nodes call them.
    pub fn coordinator_peer_addresses(&self) -> Vec<String> {
        self.coordinators
            .iter()
            .map(|c| c.peer_address.clone())
            .collect()
    }
}

/// The file in a dev cluster's directory that holds its first admin token (mode 0600).
pub const ADMIN_TOKEN_FILE: &str = "admin.token";

/// Writes `secret` to `path`, readable by its owner only, and refuses to replace a file.
pub fn write_secret(path: &Path, secret: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(secret.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()
}

/// The token in the file at `path` (as [`write_secret`] wrote it).
pub fn read_secret(path: &Path) -> std::io::Result<String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    Ok(text.trim().to_string())
}

/// Starts `entry`'s command with stdout and stderr appended to its log; the process binds the
/// addresses of its config.
pub fn spawn(entry: &ProcessEntry) -> std::io::Result<Child> {
    spawn_with(entry, None)
}

/// Starts `entry`'s command, handing it `listeners` (which must be bound to the addresses of
/// its config) when given. This process's copies of them are closed once the child has
/// started.
pub fn spawn_with(
    entry: &ProcessEntry,
    listeners: Option<HeldListeners>,
) -> std::io::Result<Child> {
    let (program, args) = entry
        .command
        .split_first()
        .ok_or_else(|| std::io::Error::other(format!("{}: empty command", entry.name)))?;
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&entry.log)?;
    let err = log.try_clone()?;
    let mut command = Command::new(program);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err);
    for var in ACTIVATION_VARS {
        command.env_remove(var);
    }
    if let Some(listeners) = listeners {
        listeners.hand_to(&mut command)?;
    }
    // `command` holds this process's copies of the listeners: they close as it drops, here.
    command.spawn()
}

/// Sends `signal` to `pid`.
pub fn signal(pid: u32, signal: nix::sys::signal::Signal) -> std::io::Result<()> {
    let pid = i32::try_from(pid).map_err(std::io::Error::other)?;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal).map_err(std::io::Error::other)
}
