//! Loading a process's TOML configuration: errors that name the offending key, address checks,
//! and the example files in `deploy/config/` that tests parse.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Deserialize;
use surge_grpc::tls::{ClusterTls, Role, Transport};

/// A configuration problem, naming the file or the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{key}: {reason}")]
    Invalid { key: String, reason: String },
}

/// An invalid value of `key`.
pub fn invalid(key: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        reason: reason.into(),
    }
}

/// Checks that `value` of `key` is a `host:port` address.
pub fn check_address(key: &str, value: &str) -> Result<(), ConfigError> {
    if value.parse::<SocketAddr>().is_ok() {
        return Ok(());
    }
    match value.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => Ok(()),
        _ => Err(invalid(
            key,
            format!("{value:?} is not a host:port address"),
        )),
    }
}

/// Parses TOML text; unknown keys and wrong types are reported with their key and line.
pub fn parse<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T, ConfigError> {
    toml::from_str(text).map_err(|e| ConfigError::Parse {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// Reads and parses a TOML file.
pub fn load<T: DeserializeOwned>(path: &Path) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(path, &text)
}

/// A process's `[tls]` section: the cluster CA and its own certificate and key (PEM files
/// made by `surgectl cert`).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Checks that a config asks for exactly one transport: `[tls]`, or plaintext with an
/// explicit `insecure = true` — never both, never neither.
pub fn check_transport(tls: Option<&TlsSection>, insecure: bool) -> Result<(), ConfigError> {
    match (tls, insecure) {
        (Some(_), true) => Err(invalid("insecure", "is true, yet [tls] is set: choose one")),
        (None, false) => Err(invalid(
            "tls",
            "missing: set [tls] ca, cert and key (made by `surgectl cert init`), or insecure = true to run in plaintext",
        )),
        _ => Ok(()),
    }
}

/// Loads the transport of a checked config (plaintext when `tls` is None). The certificate
/// must name `role` (and, when given, `name`).
pub fn load_transport(
    tls: Option<&TlsSection>,
    role: Role,
    name: Option<&str>,
) -> Result<Transport, ConfigError> {
    let Some(tls) = tls else {
        return Ok(Transport::Plaintext);
    };
    let loaded = ClusterTls::load(&tls.ca, Some((tls.cert.as_path(), tls.key.as_path())))
        .map_err(|e| invalid("tls", e.to_string()))?;
    let own = loaded
        .own_identity()
        .ok_or_else(|| invalid("tls.cert", "names no identity"))?;
    if own.role != role || name.is_some_and(|n| n != own.name) {
        let wanted = match name {
            Some(n) => format!("{}/{n}", role.as_str()),
            None => format!("{}/NAME", role.as_str()),
        };
        return Err(invalid(
            "tls.cert",
            format!(
                "{} is the certificate of {own}, not of {wanted}",
                tls.cert.display()
            ),
        ));
    }
    Ok(Transport::tls(loaded))
}

/// The example files `dir/{prefix}*.toml`, sorted.
pub fn example_files(dir: &Path, prefix: &str) -> Result<Vec<PathBuf>, ConfigError> {
    let read_error = |source| ConfigError::Read {
        path: dir.to_path_buf(),
        source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read_error)? {
        let path = entry.map_err(read_error)?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if name.starts_with(prefix) && name.ends_with(".toml") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_need_a_host_and_a_port() {
        assert!(check_address("a", "127.0.0.1:7001").is_ok());
        assert!(check_address("a", "coordinator-1:7000").is_ok());
        assert!(check_address("a", "[::1]:7000").is_ok());
        for bad in ["7001", ":7001", "host:", "host:99999", ""] {
            let err = check_address("grpc_listen", bad)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(err.starts_with("grpc_listen:"), "{bad:?} gave {err:?}");
        }
    }
}
