//! Transport security: the cluster CA and a process's certificate ([`ClusterTls`]), the
//! choice between TLS and explicit plaintext ([`Transport`]), and who a peer is
//! ([`PeerIdentity`]), read from the `surge://ROLE/NAME` URI its certificate carries.
//!
//! Peer ports require a client certificate from the cluster CA (mutual TLS); client ports
//! present the server certificate only. Plaintext is never a default: a process runs without
//! TLS only when its configuration says `insecure = true`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity, ServerTlsConfig};

/// The URI scheme of identities in certificates.
pub const IDENTITY_SCHEME: &str = "surge://";

/// Longest name an identity may carry.
pub const MAX_NAME_LEN: usize = 63;

/// What a certificate's holder is to the cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// A coordinator; its name is its coordinator id.
    Coordinator,
    /// A worker node; its name is bound to a node id when it registers.
    Node,
    /// A person or tool with read access to peer ports (`surgectl shard verify`).
    Operator,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Coordinator => "coordinator",
            Role::Node => "node",
            Role::Operator => "operator",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "coordinator" => Some(Role::Coordinator),
            "node" => Some(Role::Node),
            "operator" => Some(Role::Operator),
            _ => None,
        }
    }
}

/// A peer's identity: its role and name, as its certificate states them.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PeerIdentity {
    pub role: Role,
    pub name: String,
}

impl fmt::Display for PeerIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.role.as_str(), self.name)
    }
}

/// Whether `name` may be an identity's name: 1 to 63 of `a-z`, `0-9`, `-`, `_`, `.`.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b))
}

impl PeerIdentity {
    pub fn new(role: Role, name: impl Into<String>) -> PeerIdentity {
        PeerIdentity {
            role,
            name: name.into(),
        }
    }

    /// The identity of coordinator `id`.
    pub fn coordinator(id: u64) -> PeerIdentity {
        PeerIdentity::new(Role::Coordinator, id.to_string())
    }

    /// `surge://ROLE/NAME`, as written into certificates.
    pub fn uri(&self) -> String {
        format!("{IDENTITY_SCHEME}{}/{}", self.role.as_str(), self.name)
    }

    /// Reads `surge://ROLE/NAME`; None for any other URI.
    pub fn from_uri(uri: &str) -> Option<PeerIdentity> {
        let (role, name) = uri.strip_prefix(IDENTITY_SCHEME)?.split_once('/')?;
        let role = Role::parse(role)?;
        valid_name(name).then(|| PeerIdentity::new(role, name))
    }

    /// The identity in a DER certificate's subject alternative names, if it has exactly one.
    pub fn from_der(der: &[u8]) -> Option<PeerIdentity> {
        let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
        let san = cert.subject_alternative_name().ok()??;
        let mut found = san
            .value
            .general_names
            .iter()
            .filter_map(|name| match name {
                x509_parser::extensions::GeneralName::URI(uri) => PeerIdentity::from_uri(uri),
                _ => None,
            });
        let first = found.next()?;
        found.next().is_none().then_some(first)
    }

    /// The coordinator id, for a coordinator's identity.
    pub fn coordinator_id(&self) -> Option<u64> {
        match self.role {
            Role::Coordinator => self.name.parse().ok(),
            _ => None,
        }
    }
}

/// Who is calling, as the connection says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Caller {
    /// A plaintext connection: the process runs with `insecure = true`.
    Plaintext,
    /// A TLS connection whose client certificate names this identity.
    Peer(PeerIdentity),
    /// A TLS connection without a client certificate, or with one that names no identity.
    Anonymous,
}

impl Caller {
    /// Whose connection `request` arrived on.
    pub fn of<T>(request: &tonic::Request<T>) -> Caller {
        let tls = request
            .extensions()
            .get::<tonic::transport::server::TlsConnectInfo<tonic::transport::server::TcpConnectInfo>>()
            .is_some();
        if !tls {
            return Caller::Plaintext;
        }
        match request.peer_certs() {
            Some(certs) => certs
                .first()
                .and_then(|c| PeerIdentity::from_der(c.as_ref()))
                .map_or(Caller::Anonymous, Caller::Peer),
            None => Caller::Anonymous,
        }
    }

    /// The identity, when the connection has one.
    pub fn identity(&self) -> Option<&PeerIdentity> {
        match self {
            Caller::Peer(id) => Some(id),
            _ => None,
        }
    }

    /// For logs and refusals.
    pub fn describe(&self) -> String {
        match self {
            Caller::Plaintext => "a plaintext peer".to_string(),
            Caller::Peer(id) => id.to_string(),
            Caller::Anonymous => "a peer without a cluster certificate".to_string(),
        }
    }
}

/// An interceptor for a peer-port service: only callers whose certificate names one of
/// `roles` get through (PERMISSION_DENIED otherwise). Plaintext callers pass: the process
/// runs with `insecure = true`, where no one has a certificate.
pub fn require(
    roles: &'static [Role],
    service: &'static str,
) -> impl FnMut(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> + Clone {
    move |request: tonic::Request<()>| {
        let caller = Caller::of(&request);
        match &caller {
            Caller::Plaintext => Ok(request),
            Caller::Peer(id) if roles.contains(&id.role) => Ok(request),
            _ => {
                let allowed: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
                Err(crate::ApiError::permission_denied(format!(
                    "{service}: {} may not call it; only {} certificates may",
                    caller.describe(),
                    allowed.join(" or ")
                ))
                .into())
            }
        }
    }
}

/// A TLS file that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{key}: cannot read {path}: {source}")]
    Read {
        key: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{key}: {path}: {reason}")]
    Bad {
        key: &'static str,
        path: PathBuf,
        reason: String,
    },
}

/// The cluster CA, and this process's certificate and key when it has one.
#[derive(Clone)]
pub struct ClusterTls {
    ca_pem: Vec<u8>,
    identity: Option<(Vec<u8>, Vec<u8>)>,
    own: Option<PeerIdentity>,
}

fn read(key: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        key,
        path: path.to_path_buf(),
        source,
    })
}

/// The first certificate of a PEM file, as DER; an error names the key.
fn first_der(key: &'static str, path: &Path, pem: &[u8]) -> Result<Vec<u8>, TlsError> {
    let bad = |reason: String| TlsError::Bad {
        key,
        path: path.to_path_buf(),
        reason,
    };
    let (_, block) =
        x509_parser::pem::parse_x509_pem(pem).map_err(|e| bad(format!("not a PEM file: {e}")))?;
    if block.label != "CERTIFICATE" {
        return Err(bad(format!("holds a {}, not a CERTIFICATE", block.label)));
    }
    block
        .parse_x509()
        .map_err(|e| bad(format!("not an X.509 certificate: {e}")))?;
    Ok(block.contents)
}

impl ClusterTls {
    /// Reads the CA (`ca`), and the certificate and key (`cert`, `key`) when given. Every file
    /// is checked here, so a bad one stops the process at start with its key named.
    pub fn load(ca: &Path, cert_and_key: Option<(&Path, &Path)>) -> Result<ClusterTls, TlsError> {
        let ca_pem = read("ca", ca)?;
        first_der("ca", ca, &ca_pem)?;
        let (identity, own) = match cert_and_key {
            Some((cert, key)) => {
                let cert_pem = read("cert", cert)?;
                let der = first_der("cert", cert, &cert_pem)?;
                let own = PeerIdentity::from_der(&der).ok_or_else(|| TlsError::Bad {
                    key: "cert",
                    path: cert.to_path_buf(),
                    reason: format!(
                        "names no {IDENTITY_SCHEME}ROLE/NAME identity; make it with `surgectl cert`"
                    ),
                })?;
                let key_pem = read("key", key)?;
                if !String::from_utf8_lossy(&key_pem).contains("PRIVATE KEY-----") {
                    return Err(TlsError::Bad {
                        key: "key",
                        path: key.to_path_buf(),
                        reason: "holds no PEM private key".to_string(),
                    });
                }
                (Some((cert_pem, key_pem)), Some(own))
            }
            None => (None, None),
        };
        Ok(ClusterTls {
            ca_pem,
            identity,
            own,
        })
    }

    /// The identity this process's certificate names, when it has one.
    pub fn own_identity(&self) -> Option<&PeerIdentity> {
        self.own.as_ref()
    }

    /// Verifies servers against the cluster CA; presents this process's certificate.
    pub fn client(&self) -> ClientTlsConfig {
        let config = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&self.ca_pem));
        match &self.identity {
            Some((cert, key)) => config.identity(Identity::from_pem(cert, key)),
            None => config,
        }
    }

    /// Presents this process's certificate; with `mutual`, accepts only clients that present
    /// one from the cluster CA; without, also clients with no certificate (merchants, operators
    /// with tokens), while a certificate that is presented must still be the cluster CA's, so
    /// [`Caller::of`] can refuse a node's on the admin API and believe a coordinator's when it
    /// forwards. None without a certificate.
    pub fn server(&self, mutual: bool) -> Option<ServerTlsConfig> {
        let (cert, key) = self.identity.as_ref()?;
        let config = ServerTlsConfig::new()
            .identity(Identity::from_pem(cert, key))
            .client_ca_root(Certificate::from_pem(&self.ca_pem));
        Some(config.client_auth_optional(!mutual))
    }
}

/// How a process speaks gRPC: TLS with the cluster's certificates, or plaintext.
#[derive(Clone)]
pub enum Transport {
    Tls(Arc<ClusterTls>),
    /// Only with an explicit `insecure = true` (or a test of the plaintext path itself).
    Plaintext,
}

impl Transport {
    pub fn tls(tls: ClusterTls) -> Transport {
        Transport::Tls(Arc::new(tls))
    }

    pub fn is_tls(&self) -> bool {
        matches!(self, Transport::Tls(_))
    }

    /// An endpoint for `address` (`host:port`): `https` verified against the cluster CA, or
    /// `http`.
    pub fn endpoint(&self, address: &str) -> Result<Endpoint, tonic::transport::Error> {
        match self {
            Transport::Tls(tls) => {
                Endpoint::from_shared(format!("https://{address}"))?.tls_config(tls.client())
            }
            Transport::Plaintext => Endpoint::from_shared(format!("http://{address}")),
        }
    }

    /// Adds this transport's server TLS (`mutual` for peer ports) to `server`; a handshake
    /// longer than `handshake` drops the connection.
    pub fn serve(
        &self,
        server: tonic::transport::Server,
        mutual: bool,
        handshake: std::time::Duration,
    ) -> Result<tonic::transport::Server, String> {
        match self {
            Transport::Plaintext => Ok(server),
            Transport::Tls(tls) => {
                let config = tls
                    .server(mutual)
                    .ok_or("tls: a server needs `cert` and `key`, not only `ca`")?
                    .timeout(handshake);
                server.tls_config(config).map_err(|e| format!("tls: {e}"))
            }
        }
    }
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Transport::Tls(tls) => write!(
                f,
                "Tls({})",
                tls.own
                    .as_ref()
                    .map_or("no certificate".to_string(), |i| i.to_string())
            ),
            Transport::Plaintext => write!(f, "Plaintext"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_round_trip_through_their_uri() {
        for id in [
            PeerIdentity::coordinator(3),
            PeerIdentity::new(Role::Node, "node-4"),
            PeerIdentity::new(Role::Operator, "ops.hangzhou"),
        ] {
            assert_eq!(PeerIdentity::from_uri(&id.uri()), Some(id));
        }
        assert_eq!(PeerIdentity::coordinator(3).coordinator_id(), Some(3));
        assert_eq!(
            PeerIdentity::new(Role::Node, "3").coordinator_id(),
            None,
            "a node named 3 is no coordinator"
        );
    }

    #[test]
    fn foreign_or_malformed_uris_name_no_identity() {
        for uri in [
            "spiffe://surge/node/1",
            "surge://admin/root",
            "surge://node/",
            "surge://node/Node-1",
            "surge://node/a/b",
            "surge://node",
        ] {
            assert_eq!(PeerIdentity::from_uri(uri), None, "{uri}");
        }
        assert!(!valid_name(&"a".repeat(MAX_NAME_LEN + 1)));
    }

    #[test]
    fn missing_or_wrong_files_name_their_key() {
        let dir = std::env::temp_dir().join(format!("surge-tls-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let missing = dir.join("missing.pem");
        let err = ClusterTls::load(&missing, None)
            .err()
            .map(|e| e.to_string());
        assert!(
            err.as_deref()
                .is_some_and(|e| e.starts_with("ca: cannot read")),
            "{err:?}"
        );
        let junk = dir.join("junk.pem");
        let _ = std::fs::write(&junk, "订单 not a certificate");
        let err = ClusterTls::load(&junk, None).err().map(|e| e.to_string());
        assert!(
            err.as_deref().is_some_and(|e| e.starts_with("ca: ")),
            "{err:?}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
