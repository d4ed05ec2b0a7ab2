//! The pure crates stay pure: `surge-storage`, `surge-shard`, `surge-meta`, `surge-rules`,
//! `surge-label`, `surge-divisions` and `surge-platforms` must not depend, directly or through
//! any crate (ours included), on RocksDB, tonic or tokio. And the client
//! library stays a library: `surge-client`, which the node links, reaches no CLI crate; and
//! `surge-config` reaches no RocksDB, so the fuzzer can build it. Read
//! from `cargo metadata`, following normal dependencies only (build scripts and tests may use
//! anything).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::process::Command;
use std::sync::OnceLock;

const PURE: [&str; 7] = [
    "surge-storage",
    "surge-shard",
    "surge-meta",
    "surge-rules",
    "surge-label",
    "surge-divisions",
    "surge-platforms",
];
const FORBIDDEN: [&str; 4] = ["rocksdb", "librocksdb-sys", "tonic", "tokio"];
/// What only the operator CLI (the `surgectl` crate) may bring in.
const CLI_ONLY: [&str; 4] = ["surgectl", "clap", "indicatif", "nix"];

/// Package ids → names, and package ids → ids of their normal dependencies.
type Graph = (BTreeMap<String, String>, BTreeMap<String, Vec<String>>);

/// This machine's target triple (what is linked here), from `rustc -vV`.
fn host() -> String {
    let out = Command::new("rustc")
        .arg("-vV")
        .output()
        .expect("rustc -vV runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_string))
        .expect("rustc -vV names the host")
}

/// The workspace's resolved graph for this machine's target, read once.
fn graph() -> &'static Graph {
    static GRAPH: OnceLock<Graph> = OnceLock::new();
    GRAPH.get_or_init(read_graph)
}

fn read_graph() -> Graph {
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--locked", "--offline"])
        .args(["--filter-platform", &host()])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("metadata is JSON");
    let names = meta["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .map(|p| {
            let id = p["id"].as_str().expect("id").to_string();
            (id, p["name"].as_str().expect("name").to_string())
        })
        .collect();
    let mut deps = BTreeMap::new();
    for node in meta["resolve"]["nodes"].as_array().expect("resolve") {
        let id = node["id"].as_str().expect("id").to_string();
        let normal = node["deps"]
            .as_array()
            .expect("deps")
            .iter()
            .filter(|d| {
                d["dep_kinds"]
                    .as_array()
                    .is_some_and(|kinds| kinds.iter().any(|k| k["kind"].is_null()))
            })
            .map(|d| d["pkg"].as_str().expect("pkg").to_string())
            .collect();
        deps.insert(id, normal);
    }
    (names, deps)
}

/// The crates of `forbidden` that `root` reaches, each with the path that reaches it.
fn forbidden_from(root: &str, forbidden: &[&str]) -> Vec<String> {
    let (names, deps) = graph();
    let start = names
        .iter()
        .find(|(_, n)| n.as_str() == root)
        .map(|(id, _)| id.clone())
        .unwrap_or_else(|| panic!("{root} is not in the workspace"));
    let mut seen = BTreeSet::from([start.clone()]);
    let mut queue = VecDeque::from([(start, vec![root.to_string()])]);
    let mut found = Vec::new();
    while let Some((id, path)) = queue.pop_front() {
        for dep in deps.get(&id).into_iter().flatten() {
            if !seen.insert(dep.clone()) {
                continue;
            }
            let name = names.get(dep).cloned().unwrap_or_default();
            let mut path = path.clone();
            path.push(name.clone());
            if forbidden.contains(&name.as_str()) {
                found.push(path.join(" -> "));
            } else {
                queue.push_back((dep.clone(), path));
            }
        }
    }
    found
}

#[test]
fn the_pure_crates_link_no_rocksdb_tonic_or_tokio() {
    for root in PURE {
        let found = forbidden_from(root, &FORBIDDEN);
        assert!(found.is_empty(), "{root} must stay pure, but: {found:#?}");
    }
}

#[test]
fn the_check_sees_through_our_own_crates() {
    // The node reaches all of them through crates of ours: the walk must find each.
    let found = forbidden_from("surge-node", &FORBIDDEN);
    for name in ["rocksdb", "tonic", "tokio"] {
        assert!(
            found.iter().any(|p| p.ends_with(&format!(" -> {name}"))),
            "surge-node should reach {name}: {found:#?}"
        );
    }
}

#[test]
fn the_client_library_links_no_cli() {
    let found = forbidden_from("surge-client", &CLI_ONLY);
    assert!(
        found.is_empty(),
        "surge-client must stay a library, but: {found:#?}"
    );
    // And the check can fail: the CLI crate reaches clap.
    let cli = forbidden_from("surgectl", &CLI_ONLY);
    assert!(
        cli.iter().any(|p| p.ends_with(" -> clap")),
        "surgectl should reach clap: {cli:#?}"
    );
}

#[test]
fn the_config_crate_links_no_rocksdb_so_it_can_be_fuzzed() {
    let found = forbidden_from("surge-config", &["rocksdb", "librocksdb-sys"]);
    assert!(
        found.is_empty(),
        "surge-config must stay free of RocksDB (fuzz/ builds it), but: {found:#?}"
    );
}
