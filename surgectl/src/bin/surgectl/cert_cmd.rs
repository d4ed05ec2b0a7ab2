//! `surgectl cert init|issue`: the cluster CA and the certificates of its processes, as
//! files in one directory ([`surgectl::certs`] makes them).

use std::path::Path;

use serde::Serialize;
use surge_grpc::tls::{PeerIdentity, Role};
use surgectl::certs::{self, Issued};

use crate::output::{print_json, print_table, Format};

#[derive(Serialize)]
struct IssuedJson {
    identity: String,
    cert: String,
    key: String,
}

fn print_issued(format: Format, dir: &Path, issued: &[Issued]) {
    match format {
        Format::Json => print_json(
            &issued
                .iter()
                .map(|i| IssuedJson {
                    identity: i.identity.uri(),
                    cert: i.cert.display().to_string(),
                    key: i.key.display().to_string(),
                })
                .collect::<Vec<_>>(),
        ),
        Format::Table => {
            let rows: Vec<Vec<String>> = issued
                .iter()
                .map(|i| {
                    vec![
                        i.identity.to_string(),
                        i.cert.display().to_string(),
                        i.key.display().to_string(),
                    ]
                })
                .collect();
            print_table(&["IDENTITY", "CERTIFICATE", "KEY (owner-only)"], &rows);
            println!();
            println!(
                "CA: {}; keep {} off the servers (it signs new certificates)",
                dir.join(certs::CA_CERT).display(),
                dir.join(certs::CA_KEY).display()
            );
        }
    }
}

/// `cert init`: a new CA and the first certificates.
pub(crate) fn init(
    format: Format,
    dir: &Path,
    cluster: &str,
    (coordinators, nodes): (u64, u64),
    hosts: &[String],
) -> anyhow::Result<()> {
    let issued = certs::init(dir, cluster, coordinators, nodes, hosts)?;
    print_issued(format, dir, &issued);
    Ok(())
}

/// `cert issue`: one more certificate, for exactly one of a node, a coordinator or an
/// operator.
pub(crate) fn issue(
    format: Format,
    dir: &Path,
    (node, coordinator, operator): (Option<String>, Option<u64>, Option<String>),
    hosts: &[String],
) -> anyhow::Result<()> {
    let identity = match (node, coordinator, operator) {
        (Some(name), None, None) => PeerIdentity::new(Role::Node, name),
        (None, Some(id), None) => PeerIdentity::coordinator(id),
        (None, None, Some(name)) => PeerIdentity::new(Role::Operator, name),
        _ => anyhow::bail!("give exactly one of --node, --coordinator, --operator"),
    };
    let issued = certs::issue(dir, &identity, hosts)?;
    print_issued(format, dir, &[issued]);
    Ok(())
}
