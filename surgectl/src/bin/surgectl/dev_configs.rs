//! The config files `surgectl dev` writes for its processes, and their cluster.json entries.
//! Every address in them is the real one, so a process restarted from its entry's `command`
//! binds the same ports by number.
//!
//! Every node of a dev cluster is its own zone (zone-a, zone-b, ...): on one machine each
//! process is its own failure domain, so replicas spread over any set of nodes.

use std::path::Path;

use anyhow::Context;
use surge_grpc::tls::{PeerIdentity, Role};
use surgectl::dev_cluster::ProcessEntry;

use crate::dev_ports::Endpoints;

/// Node `n`'s zone: zone-a, zone-b, ... zone-z, then zone-27, ...
pub(crate) fn zone_of(n: u64) -> String {
    match u8::try_from(n) {
        Ok(k @ 1..=26) => format!("zone-{}", (b'a' + k - 1) as char),
        _ => format!("zone-{n}"),
    }
}

/// A process's transport: a `[tls]` table naming the CA and `identity`'s certificate in
/// `certs` (it goes last in the file), or without certificates `insecure = true` (a top-level
/// key, so it goes before any table).
fn with_transport(
    mut top: String,
    tables: &str,
    certs: Option<&Path>,
    identity: &PeerIdentity,
) -> String {
    match certs {
        None => {
            top.push_str(
                "# no certificates (dev up --insecure): plaintext on every port\ninsecure = true\n",
            );
            top.push_str(tables);
        }
        Some(dir) => {
            top.push_str(tables);
            top.push_str(&surgectl::certs::tls_table(dir, identity));
        }
    }
    top
}

/// A coordinator's id and addresses, as another coordinator's config names it.
pub(crate) struct PeerLine {
    pub(crate) id: u64,
    pub(crate) grpc: String,
    pub(crate) http: String,
    pub(crate) peer: String,
}

/// Coordinator `id`'s config; `peers` are every coordinator's addresses.
pub(crate) fn coordinator_config(
    dir: &Path,
    id: u64,
    own: &Endpoints,
    peers: &[PeerLine],
    max_snapshots_per_node: Option<u32>,
    certs: Option<&Path>,
) -> String {
    let top = format!(
        "# written by surgectl dev up\nid = {id}\ndata_dir = {:?}\ngrpc_listen = \"{}\"\npeer_listen = \"{}\"\nhttp_listen = \"{}\"\n",
        dir.join(format!("coordinator-{id}")),
        own.grpc,
        own.peer,
        own.http,
    );
    let mut text = String::new();
    for p in peers {
        text.push_str(&format!(
            "\n[[initial_peers]]\nid = {}\naddress = \"{}\"\npeer_address = \"{}\"\nhttp_address = \"{}\"\n",
            p.id, p.grpc, p.peer, p.http,
        ));
    }
    if let Some(n) = max_snapshots_per_node {
        text.push_str(&format!("\n[scheduler]\nmax_snapshots_per_node = {n}\n"));
    }
    with_transport(top, &text, certs, &PeerIdentity::coordinator(id))
}

/// Node `n`'s config; `coordinators` are their peer ports.
pub(crate) fn node_config(
    dir: &Path,
    n: u64,
    own: &Endpoints,
    zone: &str,
    coordinators: &[String],
    snapshot_rate: Option<u64>,
    certs: Option<&Path>,
) -> String {
    let list: Vec<String> = coordinators.iter().map(|c| format!("{c:?}")).collect();
    let mut text = format!(
        "# written by surgectl dev\ndata_dir = {:?}\ngrpc_listen = \"{}\"\npeer_listen = \"{}\"\nhttp_listen = \"{}\"\nzone = \"{zone}\"\ncoordinators = [{}]\n",
        dir.join(format!("node-{n}")),
        own.grpc,
        own.peer,
        own.http,
        list.join(", "),
    );
    if let Some(rate) = snapshot_rate {
        text.push_str(&format!("snapshot_max_bytes_per_sec = {rate}\n"));
    }
    with_transport(
        text,
        "",
        certs,
        &PeerIdentity::new(Role::Node, format!("node-{n}")),
    )
}

/// Writes `config` to `DIR/{kind}-{id}.toml` and answers the process's entry (pid 0: not
/// started yet).
pub(crate) fn entry(
    dir: &Path,
    kind: &str,
    id: u64,
    binary: &Path,
    config: String,
    own: &Endpoints,
) -> anyhow::Result<ProcessEntry> {
    let name = format!("{kind}-{id}");
    let config_path = dir.join(format!("{name}.toml"));
    std::fs::write(&config_path, config)
        .with_context(|| format!("writing {}", config_path.display()))?;
    Ok(ProcessEntry {
        name: name.clone(),
        id,
        grpc_address: own.grpc.clone(),
        http_address: own.http.clone(),
        peer_address: own.peer.clone(),
        pid: 0,
        data_dir: dir.join(&name),
        config: config_path.clone(),
        log: dir.join("logs").join(format!("{name}.log")),
        command: vec![
            binary.display().to_string(),
            "--config".into(),
            config_path.display().to_string(),
        ],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoints() -> Endpoints {
        Endpoints {
            grpc: "127.0.0.1:7001".into(),
            http: "127.0.0.1:7101".into(),
            peer: "127.0.0.1:7401".into(),
            listeners: None,
        }
    }

    #[test]
    fn configs_name_their_certificates_or_say_insecure_at_the_top_level() {
        let dir = Path::new("/tmp/杭州-dev");
        let peers = [PeerLine {
            id: 1,
            grpc: "127.0.0.1:7001".into(),
            http: "127.0.0.1:7101".into(),
            peer: "127.0.0.1:7401".into(),
        }];
        let certs = dir.join("certs");
        for (text, cert) in [
            (
                coordinator_config(dir, 1, &endpoints(), &peers, Some(2), Some(&certs)),
                "coordinator-1.pem",
            ),
            (
                node_config(dir, 2, &endpoints(), "zone-b", &[], None, Some(&certs)),
                "node-2.pem",
            ),
        ] {
            let parsed: toml::Table = text.parse().expect("valid TOML");
            let tls = parsed["tls"].as_table().expect("[tls]");
            assert!(
                tls["cert"].as_str().is_some_and(|c| c.ends_with(cert)),
                "{text}"
            );
            assert!(tls["ca"]
                .as_str()
                .is_some_and(|c| c.ends_with("certs/ca.pem")));
            assert!(!parsed.contains_key("insecure"), "{text}");
        }
        for text in [
            coordinator_config(dir, 1, &endpoints(), &peers, Some(2), None),
            node_config(dir, 2, &endpoints(), "zone-b", &[], Some(1 << 20), None),
        ] {
            let parsed: toml::Table = text.parse().expect("valid TOML");
            // At the top level, not inside [scheduler] or the last [[initial_peers]].
            assert_eq!(
                parsed.get("insecure").and_then(|v| v.as_bool()),
                Some(true),
                "{text}"
            );
            assert!(!parsed.contains_key("tls"));
        }
    }
}
