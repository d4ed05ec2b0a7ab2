//! The cluster's certificates (`surgectl cert init|issue`): a CA, and one certificate per
//! process whose identity — `surge://ROLE/NAME` — is a subject alternative name, next to the
//! DNS names and IP addresses the process is reached at. Keys are written owner-only.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use chrono::Datelike;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use surge_grpc::tls::{valid_name, PeerIdentity, Role};

/// The CA's files in a certificate directory.
pub const CA_CERT: &str = "ca.pem";
pub const CA_KEY: &str = "ca.key";

/// Names every certificate answers to besides the ones asked for: the loopback host.
const LOOPBACK: [&str; 2] = ["localhost", "127.0.0.1"];

#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
    #[error("certificate: {0}")]
    Rcgen(#[from] rcgen::Error),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CertError + '_ {
    move |source| CertError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A certificate and key written for one identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Issued {
    pub identity: PeerIdentity,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The file stem of `identity`'s certificate: `node-a`, `coordinator-1`, `operator-ops`.
pub fn file_stem(identity: &PeerIdentity) -> String {
    match identity.role {
        // Node names usually start with "node" already.
        Role::Node if identity.name.starts_with("node") => identity.name.clone(),
        role => format!("{}-{}", role.as_str(), identity.name),
    }
}

/// The operator identity `cert init` and `dev up` make for surgectl itself.
pub fn surgectl_operator() -> PeerIdentity {
    PeerIdentity::new(Role::Operator, "surgectl")
}

/// A process config's `[tls]` table naming the CA and `identity`'s certificate and key in
/// `dir`; it goes last in the file (a table ends the top-level keys).
pub fn tls_table(dir: &Path, identity: &PeerIdentity) -> String {
    let (cert, key) = paths(dir, identity);
    format!(
        "\n[tls]\nca = {:?}\ncert = {:?}\nkey = {:?}\n",
        dir.join(CA_CERT),
        cert,
        key
    )
}

/// Issues `identity`'s certificate from the CA in `dir` unless it is there already.
pub fn ensure(dir: &Path, identity: &PeerIdentity) -> Result<(), CertError> {
    let (cert, key) = paths(dir, identity);
    if !(cert.exists() && key.exists()) {
        issue(dir, identity, &[])?;
    }
    Ok(())
}

/// The certificate and key paths of `identity` in `dir`.
pub fn paths(dir: &Path, identity: &PeerIdentity) -> (PathBuf, PathBuf) {
    let stem = file_stem(identity);
    (
        dir.join(format!("{stem}.pem")),
        dir.join(format!("{stem}.key")),
    )
}

/// Writes `text` to `path`; `secret` files are readable by their owner only.
fn write(path: &Path, text: &str, secret: bool) -> Result<(), CertError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut options = std::fs::OpenOptions::new();
    options
        .write(true)
        .create(true)
        .truncate(true)
        .mode(if secret { 0o600 } else { 0o644 });
    let mut file = options.open(path).map_err(io(path))?;
    file.write_all(text.as_bytes()).map_err(io(path))
}

/// Validity from the start of last year to `years` ahead.
fn validity(params: &mut CertificateParams, years: i32) {
    let year = chrono::Utc::now().year();
    params.not_before = rcgen::date_time_ymd(year - 1, 1, 1);
    params.not_after = rcgen::date_time_ymd(year + years, 1, 1);
}

/// Makes a new cluster CA in `dir` (created if missing). Refuses to overwrite one: every
/// certificate the old CA signed would stop working.
pub fn init_ca(dir: &Path, cluster: &str) -> Result<PathBuf, CertError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let (cert_path, key_path) = (dir.join(CA_CERT), dir.join(CA_KEY));
    if cert_path.exists() || key_path.exists() {
        return Err(CertError::Invalid(format!(
            "{}: a cluster CA is already here; issue certificates from it with `surgectl cert issue`",
            dir.display()
        )));
    }
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(DnType::CommonName, format!("surge cluster CA {cluster}"));
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    validity(&mut params, 10);
    let cert = params.self_signed(&key)?;
    write(&key_path, &key.serialize_pem(), true)?;
    write(&cert_path, &cert.pem(), false)?;
    Ok(cert_path)
}

/// Issues a certificate for `identity` from the CA in `dir`, valid for the loopback host and
/// `hosts` (DNS names or IP addresses), for both server and client use.
pub fn issue(dir: &Path, identity: &PeerIdentity, hosts: &[String]) -> Result<Issued, CertError> {
    if !valid_name(&identity.name) {
        return Err(CertError::Invalid(format!(
            "name: {:?} must be 1 to 63 of a-z, 0-9, '-', '_', '.'",
            identity.name
        )));
    }
    let (ca_cert, ca_key) = (dir.join(CA_CERT), dir.join(CA_KEY));
    let ca_pem = std::fs::read_to_string(&ca_cert).map_err(io(&ca_cert))?;
    let ca_key_pem = std::fs::read_to_string(&ca_key).map_err(io(&ca_key))?;
    let issuer = Issuer::from_ca_cert_pem(&ca_pem, KeyPair::from_pem(&ca_key_pem)?)?;

    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(DnType::CommonName, format!("surge {identity}"));
    let uri = identity
        .uri()
        .try_into()
        .map_err(|e| CertError::Invalid(format!("identity {identity}: {e}")))?;
    params.subject_alt_names.push(SanType::URI(uri));
    let mut names: Vec<&str> = LOOPBACK.to_vec();
    names.extend(hosts.iter().map(String::as_str));
    names.dedup();
    for host in names {
        let san = match host.parse::<IpAddr>() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => SanType::DnsName(
                host.try_into()
                    .map_err(|e| CertError::Invalid(format!("host {host:?}: {e}")))?,
            ),
        };
        if !params.subject_alt_names.contains(&san) {
            params.subject_alt_names.push(san);
        }
    }
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    validity(&mut params, 5);
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &issuer)?;
    let (cert_path, key_path) = paths(dir, identity);
    write(&key_path, &key.serialize_pem(), true)?;
    write(&cert_path, &cert.pem(), false)?;
    Ok(Issued {
        identity: identity.clone(),
        cert: cert_path,
        key: key_path,
    })
}

/// A new CA and certificates for coordinators `1..=coordinators`, nodes `node-1..=node-N`
/// and one operator (`surgectl`'s own, for peer-port reads).
pub fn init(
    dir: &Path,
    cluster: &str,
    coordinators: u64,
    nodes: u64,
    hosts: &[String],
) -> Result<Vec<Issued>, CertError> {
    init_ca(dir, cluster)?;
    let mut identities: Vec<PeerIdentity> =
        (1..=coordinators).map(PeerIdentity::coordinator).collect();
    identities.extend((1..=nodes).map(|n| PeerIdentity::new(Role::Node, format!("node-{n}"))));
    identities.push(surgectl_operator());
    identities
        .iter()
        .map(|identity| issue(dir, identity, hosts))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use surge_grpc::tls::ClusterTls;

    #[test]
    fn issued_certificates_carry_their_identity_and_load() {
        let dir = tempfile::tempdir().expect("temp dir");
        let issued = init(dir.path(), "杭州-test", 1, 2, &["node1.example".into()]).expect("init");
        assert_eq!(issued.len(), 4);
        for one in &issued {
            let tls = ClusterTls::load(
                &dir.path().join(CA_CERT),
                Some((one.cert.as_path(), one.key.as_path())),
            )
            .expect("loads");
            assert_eq!(tls.own_identity(), Some(&one.identity));
            let mode = std::os::unix::fs::PermissionsExt::mode(
                &std::fs::metadata(&one.key).expect("key").permissions(),
            );
            assert_eq!(
                mode & 0o077,
                0,
                "{} is readable by others",
                one.key.display()
            );
        }
        assert_eq!(
            issued[1].cert.file_name().and_then(|n| n.to_str()),
            Some("node-1.pem")
        );
        // A second init would orphan every certificate: refused.
        let again = init(dir.path(), "x", 1, 1, &[]).expect_err("CA exists");
        assert!(again.to_string().contains("already here"), "{again}");
        let bad =
            issue(dir.path(), &PeerIdentity::new(Role::Node, "节点"), &[]).expect_err("bad name");
        assert!(bad.to_string().starts_with("name:"), "{bad}");
    }
}
