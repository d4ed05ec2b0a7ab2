//! A dev cluster of real processes for tests: `surgectl dev up --base-port 0` in a temp dir
//! (the OS chooses every port, so test runs never collide; every address is read back from
//! cluster.json), with helpers to find the leader, kill -9 and restart processes, call the
//! coordinators, and wait for conditions ([`eventually`]).

#![allow(dead_code, unreachable_pub)]

mod secrets;
#[allow(unused_imports)]
pub use secrets::assert_nowhere_in_clear;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use surge_client::{MetaClient, RetryPolicy};
use surge_grpc::tls::{PeerIdentity, Role, Transport};
use surge_grpc::v1::coordinator_peer_service_client::CoordinatorPeerServiceClient;
use surge_grpc::v1::{ClusterStatusResponse, CoordinatorStatus, LocalStatusRequest};
use surgectl::dev_cluster::{self, ClusterFile, ProcessEntry};
use surgectl::held_listeners::HeldListeners;

pub fn bin_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_surgectl"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

pub struct DevCluster {
    pub dir: tempfile::TempDir,
    surgectl: Child,
    pub file: ClusterFile,
    /// Processes this test restarted itself (not children of surgectl).
    restarted: Vec<Child>,
}

impl DevCluster {
    /// Starts 3 coordinators and 3 nodes on ports the OS chooses and waits for cluster.json.
    pub fn start(shards: u32) -> DevCluster {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = std::fs::File::create(dir.path().join("surgectl.log")).expect("log");
        let surgectl = Command::new(env!("CARGO_BIN_EXE_surgectl"))
            .args(["dev", "up", "--dir"])
            .arg(dir.path())
            .args(["--base-port", "0", "--shards", &shards.to_string()])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start surgectl dev up");
        let mut cluster = DevCluster {
            dir,
            surgectl,
            file: ClusterFile::default(),
            restarted: Vec::new(),
        };
        // Longer than dev up's own waits (60 s + 60 s), so dev up reports first.
        let deadline = Instant::now() + Duration::from_secs(150);
        loop {
            if let Ok(file) = ClusterFile::load(cluster.dir.path()) {
                cluster.file = file;
                return cluster;
            }
            if let Ok(Some(status)) = cluster.surgectl.try_wait() {
                panic!(
                    "surgectl dev up exited with {status}: {}",
                    cluster.surgectl_log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "dev cluster not up in time: {}",
                cluster.surgectl_log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn surgectl_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("surgectl.log")).unwrap_or_default()
    }

    /// A client of the coordinators with the cluster's first admin token.
    pub fn client(&self) -> MetaClient {
        let token = self.file.admin_token().expect("the admin token file");
        self.client_with_token(&token.expect("dev up wrote an admin token"))
    }

    /// A client of the coordinators with `token` (empty: none).
    pub fn client_with_token(&self, token: &str) -> MetaClient {
        meta_client(self.file.coordinator_addresses())
            .with_transport(self.transport())
            .with_token(token)
            .expect("a token of printable ASCII")
    }

    /// How the operator calls the cluster: TLS with the `operator/surgectl` certificate.
    pub fn transport(&self) -> Transport {
        self.file
            .transport()
            .expect("the dev cluster's certificates")
    }

    /// TLS as a merchant's ERP has it: the cluster CA to check servers by, no certificate.
    pub fn client_transport(&self) -> Transport {
        self.file
            .client_transport()
            .expect("the dev cluster's certificates")
    }

    /// TLS with a certificate for `identity`, issued from the dev cluster's CA on first use.
    pub fn transport_as(&self, identity: &PeerIdentity) -> Transport {
        let certs = self.file.certs.as_deref().expect("a dev cluster with TLS");
        surgectl::certs::ensure(certs, identity).expect("issue a certificate");
        self.file
            .transport_as(identity)
            .expect("the issued certificate")
    }

    /// `surgectl` with the operator's certificate, the admin token file and the coordinators
    /// in its environment (`SURGE_CA`, `SURGE_CERT`, `SURGE_KEY`, `SURGE_TOKEN_FILE`,
    /// `SURGE_COORDINATORS`), as `dev up` tells operators to export them.
    pub fn surgectl(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_surgectl"));
        if let Some(certs) = &self.file.certs {
            let (cert, key) = surgectl::certs::paths(certs, &surgectl::certs::surgectl_operator());
            command
                .env("SURGE_CA", certs.join(surgectl::certs::CA_CERT))
                .env("SURGE_CERT", cert)
                .env("SURGE_KEY", key);
        }
        if let Some(path) = &self.file.admin_token_file {
            command.env("SURGE_TOKEN_FILE", path);
        }
        command.env(
            "SURGE_COORDINATORS",
            self.file.coordinator_addresses().join(","),
        );
        command
    }

    /// A config's `[tls]` table for `identity` (its certificate issued on first use); it goes
    /// last in the file.
    pub fn tls_table(&self, identity: &PeerIdentity) -> String {
        let certs = self.file.certs.as_deref().expect("a dev cluster with TLS");
        surgectl::certs::ensure(certs, identity).expect("issue a certificate");
        surgectl::certs::tls_table(certs, identity)
    }

    /// An order client of `nodes` with `key`, over TLS as merchants call.
    pub fn order_client(&self, nodes: Vec<String>, key: &str) -> surge_client::OrderClient {
        surge_client::OrderClient::new(nodes, key)
            .expect("client")
            .with_transport(self.client_transport())
    }

    /// A client of the coordinators' peer ports (NodeService), as a node calls them: with a
    /// node certificate of its own (`node-probe`), bound to no real node.
    pub fn peer_client(&self) -> MetaClient {
        meta_client(self.file.coordinator_peer_addresses())
            .with_transport(self.transport_as(&PeerIdentity::new(Role::Node, "node-probe")))
    }

    pub fn coordinator(&self, id: u64) -> &ProcessEntry {
        self.file
            .coordinators
            .iter()
            .find(|c| c.id == id)
            .expect("coordinator")
    }

    /// Every node's gRPC address.
    pub fn node_addresses(&self) -> Vec<String> {
        self.file
            .nodes
            .iter()
            .map(|n| n.grpc_address.clone())
            .collect()
    }

    pub fn kill9(&self, entry: &ProcessEntry) {
        dev_cluster::signal(entry.pid, Signal::SIGKILL).expect("kill -9");
    }

    /// Starts one more node with `surgectl dev add-node` and answers its entry.
    pub fn add_node(&mut self) -> ProcessEntry {
        let out = Command::new(env!("CARGO_BIN_EXE_surgectl"))
            .args(["dev", "add-node", "--dir"])
            .arg(self.dir.path())
            .output()
            .expect("surgectl dev add-node");
        assert!(
            out.status.success(),
            "dev add-node failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        self.file = ClusterFile::load(self.dir.path()).expect("cluster.json");
        self.file.nodes.last().cloned().expect("the new node")
    }

    /// The dev entry of the node at `address`.
    pub fn node_at(&self, address: &str) -> &ProcessEntry {
        self.file
            .nodes
            .iter()
            .find(|n| n.grpc_address == address)
            .expect("node entry")
    }

    /// Restarts a killed process with its original command and records its new pid.
    pub fn restart(&mut self, name: &str) {
        self.start_process(name, None);
    }

    /// Starts the process of entry `name` (killed, or added to `file` by the test), handing
    /// it `listeners` (bound to the addresses of its config) when given.
    pub fn start_process(&mut self, name: &str, listeners: Option<HeldListeners>) {
        let entry = self
            .file
            .coordinators
            .iter_mut()
            .chain(self.file.nodes.iter_mut())
            .find(|e| e.name == name)
            .expect("process");
        let child = dev_cluster::spawn_with(entry, listeners).expect("start");
        entry.pid = child.id();
        self.restarted.push(child);
    }

    /// Waits until every node applies version `version` (or a later one) of `tenant`'s rules.
    pub async fn wait_for_rules(&self, tenant: &str, version: u64) {
        let addresses: Vec<String> = self
            .file
            .nodes
            .iter()
            .map(|n| n.http_address.clone())
            .collect();
        let what = format!("every node to apply version {version} of {tenant}'s rules");
        eventually(Duration::from_secs(30), &what, || async {
            for address in &addresses {
                let (_, metrics) = http_get(address, "/metrics").await;
                if metric(
                    &metrics,
                    &format!("surge_node_tenant_rules_version{{tenant=\"{tenant}\"}}"),
                )
                .is_none_or(|v| v < version as f64)
                {
                    return false;
                }
            }
            true
        })
        .await;
    }
}

impl Drop for DevCluster {
    fn drop(&mut self) {
        let _ = dev_cluster::signal(self.surgectl.id(), Signal::SIGTERM);
        for child in &mut self.restarted {
            let _ = child.kill();
            let _ = child.wait();
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline && matches!(self.surgectl.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.surgectl.kill();
        let _ = self.surgectl.wait();
    }
}

/// True once process `pid` has exited (its fds, ports and locks are released), whether or not
/// its parent has reaped it yet.
pub fn exited(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name: Z is a zombie, X dead.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state == "Z" || state == "X"),
        Err(_) => true,
    }
}

pub async fn status(client: &MetaClient) -> Result<ClusterStatusResponse, tonic::Status> {
    client.cluster_status().await
}

/// A coordinator client over `addresses`, patient enough for elections.
fn meta_client(addresses: Vec<String>) -> MetaClient {
    MetaClient::new(addresses)
        .expect("client")
        .with_call_timeout(Duration::from_secs(2))
        .with_policy(RetryPolicy {
            deadline: Duration::from_secs(20),
            ..RetryPolicy::default()
        })
}

/// A coordinator's own view, asked directly at its peer port `address` (never forwarded),
/// over `transport` (an operator's or a coordinator's certificate).
pub async fn local_status(transport: &Transport, address: &str) -> Option<CoordinatorStatus> {
    let channel = transport
        .endpoint(address)
        .ok()?
        .connect_timeout(Duration::from_millis(300))
        .timeout(Duration::from_millis(800))
        .connect()
        .await
        .ok()?;
    CoordinatorPeerServiceClient::new(channel)
        .local_status(LocalStatusRequest {})
        .await
        .ok()
        .map(|r| r.into_inner())
}

/// Polls until `f` holds or `within` passes; returns the time it took.
pub async fn eventually<F, Fut>(within: Duration, what: &str, mut f: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    loop {
        if f().await {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "timed out after {within:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every order of the client's tenant in `status`, paged.
pub async fn list_status(
    client: &surge_client::OrderClient,
    status: surge_grpc::v1::OrderStatus,
) -> Vec<surge_grpc::v1::OrderView> {
    let mut token = String::new();
    let mut out = Vec::new();
    loop {
        let page = client
            .list(surge_grpc::v1::ListOrdersRequest {
                status: status as i32,
                page_size: 1000,
                page_token: token.clone(),
                ..Default::default()
            })
            .await
            .expect("list");
        out.extend(page.orders);
        if page.next_page_token.is_empty() {
            return out;
        }
        token = page.next_page_token;
    }
}

/// Every order of the client's tenant, in every status, once the pipeline has taken every
/// order out of RECEIVED (so no order moves between statuses while they are listed: without
/// rules an order stops at APPROVED, held for want of a carrier).
pub async fn list_settled(client: &surge_client::OrderClient) -> Vec<surge_grpc::v1::OrderView> {
    use surge_grpc::v1::OrderStatus as S;
    eventually(
        Duration::from_secs(60),
        "the pipeline to review every order",
        || async { list_status(client, S::Received).await.is_empty() },
    )
    .await;
    let mut all = Vec::new();
    for status in [
        S::Approved,
        S::Allocated,
        S::WaybillAssigned,
        S::LabelPrinted,
        S::Packed,
        S::Shipped,
        S::Cancelled,
    ] {
        all.extend(list_status(client, status).await);
    }
    all
}

/// A minimal HTTP/1.0 GET: status code and body.
pub async fn http_get(address: &str, path: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    let request = format!("GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n");
    tokio::io::AsyncWriteExt::write_all(&mut stream, request.as_bytes())
        .await
        .expect("request");
    let mut response = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut stream, &mut response)
        .await
        .expect("response");
    let code = response
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (code, body)
}

/// The value of sample `name` (with its labels, as Prometheus prints them) in a `/metrics` page.
pub fn metric(page: &str, name: &str) -> Option<f64> {
    page.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

/// One `AdminService` call through `meta`, which follows the leader and retries.
pub async fn admin<Req, T, F, Fut>(meta: &MetaClient, req: Req, f: F) -> Result<T, tonic::Status>
where
    Req: Clone,
    F: Fn(
        surge_grpc::v1::admin_service_client::AdminServiceClient<surge_client::CoordinatorChannel>,
        Req,
    ) -> Fut,
    Fut: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
{
    meta.call(|ch| {
        f(
            surge_grpc::v1::admin_service_client::AdminServiceClient::new(ch),
            req.clone(),
        )
    })
    .await
}

/// Waits until every shard has a leader and the nodes know the client's key.
pub async fn wait_for_intake(client: &surge_client::OrderClient) {
    eventually(Duration::from_secs(60), "every shard to have a leader", || async {
        matches!(client.refresh().await, Ok(m) if m.shard_count > 0 && m.shards.iter().all(|s| s.leader != 0))
    })
    .await;
}

/// Creates tenant `name` with `rules` and answers its API key.
pub async fn tenant_with_rules(meta: &MetaClient, name: &str, rules: &str) -> String {
    let key = meta.create_tenant(name).await.expect("tenant").api_key;
    let req = surge_grpc::v1::SetTenantRulesRequest {
        tenant: name.into(),
        rules_toml: rules.into(),
    };
    admin(
        meta,
        req,
        |mut c, r| async move { c.set_tenant_rules(r).await },
    )
    .await
    .expect("rules");
    key
}

/// Registers waybill numbers `range` of `carrier` (with `prefix`) for `tenant`.
pub async fn add_range(
    meta: &MetaClient,
    tenant: &str,
    carrier: &str,
    prefix: &str,
    range: (u64, u64),
) {
    let req = surge_grpc::v1::AddWaybillRangeRequest {
        tenant: tenant.into(),
        carrier: carrier.into(),
        prefix: prefix.into(),
        from: range.0,
        to: range.1,
    };
    admin(
        meta,
        req,
        |mut c, r| async move { c.add_waybill_range(r).await },
    )
    .await
    .expect("range");
}

/// The example rules, with the amount limit out of the way: remarks still hold orders.
pub fn example_rules() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../rules/examples/rules.toml"
    ))
    .expect("example rules")
    .replace("max_amount_cents = 200000", "max_amount_cents = 100000000")
}
