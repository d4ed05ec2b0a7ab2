//! Rendering for people (`table`) and for scripts (`json`).

use serde::Serialize;
use surge_proto::v1::{
    ClusterStatusResponse, CreateTenantResponse, InitClusterResponse, MembershipResponse,
    NodeState, NodeStatus, TenantInfo,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    Table,
    Json,
}

#[derive(Serialize)]
struct CoordinatorJson<'a> {
    id: u64,
    address: &'a str,
    role: &'a str,
    term: u64,
    commit_index: u64,
    applied_index: u64,
    voter: bool,
    insecure: bool,
}

#[derive(Serialize)]
struct NodeJson<'a> {
    id: u64,
    address: &'a str,
    zone: &'a str,
    state: &'a str,
    seconds_since_heartbeat: Option<f64>,
    replicas: u32,
    leaders: u32,
    learners: u32,
    size_bytes: u64,
    disk_capacity_bytes: u64,
    disk_available_bytes: u64,
    certificate: &'a str,
    insecure: bool,
}

#[derive(Serialize)]
struct ShardJson<'a> {
    id: u32,
    epoch: u64,
    replicas: &'a [u64],
    learners: &'a [u64],
    leader: u64,
}

#[derive(Serialize)]
struct StatusJson<'a> {
    initialized: bool,
    cluster_id: &'a str,
    shard_count: u32,
    replicas: u32,
    leader_id: u64,
    coordinators: Vec<CoordinatorJson<'a>>,
    nodes: Vec<NodeJson<'a>>,
    shards: Vec<ShardJson<'a>>,
    rebalance: serde_json::Value,
    max_down_time_ms: u64,
}

fn state_name(state: i32) -> &'static str {
    match NodeState::try_from(state) {
        Ok(NodeState::Up) => "up",
        Ok(NodeState::Down) => "down",
        Ok(NodeState::Draining) => "draining",
        Ok(NodeState::Removable) => "removable",
        Ok(NodeState::Removed) => "removed",
        _ => "unknown",
    }
}

fn node_json(n: &NodeStatus) -> NodeJson<'_> {
    NodeJson {
        id: n.id,
        address: &n.address,
        zone: &n.zone,
        state: state_name(n.state),
        seconds_since_heartbeat: (n.seconds_since_heartbeat >= 0.0)
            .then_some(n.seconds_since_heartbeat),
        replicas: n.replica_count,
        leaders: n.leader_count,
        learners: n.learner_count,
        size_bytes: n.size_bytes,
        disk_capacity_bytes: n.disk_capacity_bytes,
        disk_available_bytes: n.disk_available_bytes,
        certificate: &n.certificate_name,
        insecure: n.insecure,
    }
}

/// Writes a line to stdout; a closed pipe (`surgectl ... | head`) ends the program quietly.
pub(crate) fn emit(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = writeln!(out, "{line}") {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write output: {e}");
        std::process::exit(1);
    }
}

pub(crate) fn print_json<T: Serialize>(value: &T) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => emit(&text),
        Err(e) => eprintln!("error: cannot render JSON: {e}"),
    }
}

/// Prints rows as aligned columns under a header.
pub(crate) fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        emit(padded.join("  ").trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

pub(crate) fn print_init(format: Format, resp: &InitClusterResponse) {
    match format {
        Format::Json => print_json(&serde_json::json!({
            "cluster_id": resp.cluster_id, "shards": resp.shards, "replicas": resp.replicas,
            "admin_token": resp.admin_token,
        })),
        Format::Table => {
            emit(&format!(
                "cluster {} initialized: {} shards, {} replicas each",
                resp.cluster_id, resp.shards, resp.replicas
            ));
            if !resp.admin_token.is_empty() {
                emit(&format!(
                    "first admin token (shown once; surge keeps only its hash): {}",
                    resp.admin_token
                ));
                emit("pass it as --token or SURGE_TOKEN; make others with `surgectl token create`");
            }
        }
    }
}

fn node_rows(nodes: &[NodeStatus]) -> Vec<Vec<String>> {
    nodes
        .iter()
        .map(|n| {
            vec![
                n.id.to_string(),
                n.address.clone(),
                if n.zone.is_empty() {
                    "-".into()
                } else {
                    n.zone.clone()
                },
                state_name(n.state).to_string(),
                if n.seconds_since_heartbeat < 0.0 {
                    "-".into()
                } else {
                    format!("{:.1}s", n.seconds_since_heartbeat)
                },
                n.replica_count.to_string(),
                n.leader_count.to_string(),
                n.learner_count.to_string(),
                crate::human::bytes(n.size_bytes),
                if n.disk_capacity_bytes == 0 {
                    "-".into()
                } else {
                    format!(
                        "{} of {}",
                        crate::human::bytes(n.disk_available_bytes),
                        crate::human::bytes(n.disk_capacity_bytes)
                    )
                },
            ]
        })
        .collect()
}

const NODE_HEADER: [&str; 10] = [
    "NODE",
    "ADDRESS",
    "ZONE",
    "STATE",
    "HEARTBEAT",
    "REPLICAS",
    "LEADERS",
    "LEARNERS",
    "SIZE",
    "DISK FREE",
];

pub(crate) fn print_nodes(format: Format, nodes: &[NodeStatus]) {
    match format {
        Format::Json => print_json(&nodes.iter().map(node_json).collect::<Vec<_>>()),
        Format::Table => print_table(&NODE_HEADER, &node_rows(nodes)),
    }
}

pub(crate) fn print_status(format: Format, s: &ClusterStatusResponse) {
    match format {
        Format::Json => print_json(&StatusJson {
            initialized: s.initialized,
            cluster_id: &s.cluster_id,
            shard_count: s.shard_count,
            replicas: s.replicas,
            leader_id: s.leader_id,
            coordinators: s
                .coordinators
                .iter()
                .map(|c| CoordinatorJson {
                    id: c.id,
                    address: &c.address,
                    role: &c.role,
                    term: c.term,
                    commit_index: c.commit_index,
                    applied_index: c.applied_index,
                    voter: c.voter,
                    insecure: c.insecure,
                })
                .collect(),
            nodes: s.nodes.iter().map(node_json).collect(),
            shards: s
                .shards
                .iter()
                .map(|sh| ShardJson {
                    id: sh.id,
                    epoch: sh.epoch,
                    replicas: &sh.replicas,
                    learners: &sh.learners,
                    leader: sh.leader,
                })
                .collect(),
            rebalance: s
                .rebalance
                .as_ref()
                .map(crate::elastic_output::rebalance_json)
                .unwrap_or_default(),
            max_down_time_ms: s.config.as_ref().map_or(0, |c| c.max_down_time_ms),
        }),
        Format::Table => {
            if s.initialized {
                emit(&format!(
                    "cluster {}  shards {}  replicas {}",
                    s.cluster_id, s.shard_count, s.replicas
                ));
            } else {
                emit("cluster not initialized (run `surgectl cluster init`)");
            }
            let plaintext: Vec<String> = s
                .coordinators
                .iter()
                .filter(|c| c.insecure)
                .map(|c| format!("coordinator {}", c.id))
                .chain(
                    s.nodes
                        .iter()
                        .filter(|n| n.insecure)
                        .map(|n| format!("node {}", n.id)),
                )
                .collect();
            if !plaintext.is_empty() {
                emit(&format!(
                    "WARNING: insecure = true: {} run in PLAINTEXT, without certificates",
                    plaintext.join(", ")
                ));
            }
            emit("");
            let rows: Vec<Vec<String>> = s
                .coordinators
                .iter()
                .map(|c| {
                    vec![
                        c.id.to_string(),
                        c.address.clone(),
                        c.role.clone(),
                        c.term.to_string(),
                        c.commit_index.to_string(),
                        c.applied_index.to_string(),
                    ]
                })
                .collect();
            print_table(
                &[
                    "COORDINATOR",
                    "ADDRESS",
                    "ROLE",
                    "TERM",
                    "COMMIT",
                    "APPLIED",
                ],
                &rows,
            );
            emit("");
            print_table(&NODE_HEADER, &node_rows(&s.nodes));
            let placed = s.shards.iter().filter(|sh| !sh.replicas.is_empty()).count();
            emit("");
            emit(&format!("shards placed: {placed}/{}", s.shards.len()));
            if let Some(r) = &s.rebalance {
                for line in crate::elastic_output::rebalance_lines(r, s.config.as_ref()) {
                    emit(&line);
                }
            }
        }
    }
}

pub(crate) fn print_membership(format: Format, m: &MembershipResponse) {
    match format {
        Format::Json => {
            print_json(&serde_json::json!({ "voters": m.voters, "learners": m.learners }))
        }
        Format::Table => emit(&format!("voters {:?}  learners {:?}", m.voters, m.learners)),
    }
}

pub(crate) fn print_tenant_created(format: Format, t: &CreateTenantResponse) {
    match format {
        Format::Json => print_json(&serde_json::json!({
            "tenant_id": t.tenant_id, "name": t.name, "api_key": t.api_key,
            "key_id": t.key.as_ref().map_or(0, |k| k.id),
        })),
        Format::Table => {
            emit(&format!(
                "tenant {} created with id {}",
                t.name, t.tenant_id
            ));
            emit(&format!("api key: {}", t.api_key));
            emit("(shown once: surge keeps only its hash)");
        }
    }
}

pub(crate) fn print_tenants(format: Format, tenants: &[TenantInfo]) {
    let limits = |t: &TenantInfo| t.limits.unwrap_or_default();
    match format {
        Format::Json => print_json(
            &tenants
                .iter()
                .map(|t| {
                    let l = limits(t);
                    serde_json::json!({
                        "id": t.id, "name": t.name, "created_at_ms": t.created_at_ms,
                        "api_keys": t.api_keys,
                        "limits": {
                            "orders_per_sec": l.orders_per_sec, "orders_burst": l.orders_burst,
                            "streams": l.streams, "reads_per_sec": l.reads_per_sec,
                        },
                    })
                })
                .collect::<Vec<_>>(),
        ),
        Format::Table => {
            let shown = |v: u32| match v {
                0 => "-".to_string(),
                v => v.to_string(),
            };
            let rows: Vec<Vec<String>> = tenants
                .iter()
                .map(|t| {
                    let l = limits(t);
                    vec![
                        t.id.to_string(),
                        t.name.clone(),
                        t.api_keys.to_string(),
                        shown(l.orders_per_sec),
                        shown(l.orders_burst),
                        shown(l.streams),
                        shown(l.reads_per_sec),
                    ]
                })
                .collect();
            print_table(
                &[
                    "TENANT", "NAME", "API KEYS", "ORDERS/S", "BURST", "STREAMS", "READS/S",
                ],
                &rows,
            );
        }
    }
}
