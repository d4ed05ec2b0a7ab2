//! surgectl's command line: every subcommand, argument and flag (clap derive), with the
//! defaults and environment variables they read.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

pub(crate) use crate::cli_access::{AuditCmd, KeyCmd, LimitsCmd, TokenCmd};
use crate::dev;
use crate::output::Format;

/// Operate a surge cluster.
#[derive(Parser, Debug)]
#[command(version)]
pub(crate) struct Cli {
    /// Coordinator gRPC addresses, comma-separated.
    #[arg(
        long,
        global = true,
        env = "SURGE_COORDINATORS",
        value_delimiter = ',',
        default_value = "127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003"
    )]
    pub(crate) coordinators: Vec<String>,
    /// Output format.
    #[arg(long, short, global = true, value_enum, default_value_t = Format::Table)]
    pub(crate) output: Format,
    /// Node gRPC addresses for order calls, comma-separated.
    #[arg(
        long,
        global = true,
        env = "SURGE_NODES",
        value_delimiter = ',',
        default_value = "127.0.0.1:7201,127.0.0.1:7202,127.0.0.1:7203"
    )]
    pub(crate) nodes: Vec<String>,
    /// A tenant's API key, for order calls.
    #[arg(long, global = true, env = "SURGE_API_KEY", hide_env_values = true)]
    pub(crate) api_key: Option<String>,
    /// The cluster CA (PEM) the servers' certificates are checked against.
    #[arg(long, global = true, env = "SURGE_CA")]
    pub(crate) ca: Option<PathBuf>,
    /// An operator certificate (PEM) from the cluster CA, for peer-port calls
    /// (`shard verify`); with --key.
    #[arg(long, global = true, env = "SURGE_CERT", requires = "key")]
    pub(crate) cert: Option<PathBuf>,
    /// The key of --cert.
    #[arg(long, global = true, env = "SURGE_KEY", requires = "cert")]
    pub(crate) key: Option<PathBuf>,
    /// Call in plaintext, for a cluster that runs with `insecure = true`.
    #[arg(long, global = true, env = "SURGE_INSECURE", conflicts_with = "ca")]
    pub(crate) insecure: bool,
    /// An operator token, for admin calls (`cluster init` prints the first admin token).
    #[arg(long, global = true, env = "SURGE_TOKEN", hide_env_values = true)]
    pub(crate) token: Option<String>,
    /// A file holding the operator token (as `dev up` and `cluster init --save-token` write
    /// it), so the token is in no shell history or process list; --token wins when both are set.
    #[arg(long, global = true, env = "SURGE_TOKEN_FILE")]
    pub(crate) token_file: Option<PathBuf>,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// Cluster-wide operations.
    #[command(subcommand)]
    Cluster(ClusterCmd),
    /// Worker nodes.
    #[command(subcommand)]
    Node(NodeCmd),
    /// Shards and their replicas.
    #[command(subcommand)]
    Shard(ShardCmd),
    /// The scheduler's operators: replica moves and leader transfers.
    #[command(subcommand)]
    Operator(OperatorCmd),
    /// The coordinator quorum.
    #[command(subcommand)]
    Coordinator(CoordinatorCmd),
    /// Merchants and their API keys.
    #[command(subcommand)]
    Tenant(TenantCmd),
    /// Waybill number ranges.
    #[command(subcommand)]
    Waybill(WaybillCmd),
    /// Printing stations.
    #[command(subcommand)]
    Station(StationCmd),
    /// Shipping labels (needs --api-key).
    #[command(subcommand)]
    Label(LabelCmd),
    /// Orders, as a tenant sees them (needs --api-key).
    #[command(subcommand)]
    Order(OrderCmd),
    /// A local development cluster on loopback.
    #[command(subcommand)]
    Dev(DevCmd),
    /// The cluster's certificates: a CA, and one per coordinator, node and operator.
    #[command(subcommand)]
    Cert(CertCmd),
    /// Operator tokens (admin): who may call the admin API, with which role.
    #[command(subcommand)]
    Token(TokenCmd),
    /// The audit trail of admin changes (admin).
    #[command(subcommand)]
    Audit(AuditCmd),
}

#[derive(Subcommand, Debug)]
pub(crate) enum CertCmd {
    /// Makes a cluster CA in DIR, and certificates for coordinators 1..=N, nodes
    /// node-1..=node-M and the operator `surgectl`.
    Init {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, default_value_t = 3)]
        coordinator_count: u64,
        #[arg(long, default_value_t = 3)]
        node_count: u64,
        /// A DNS name or IP address the processes are reached at, besides localhost and
        /// 127.0.0.1; repeat for more.
        #[arg(long = "host")]
        hosts: Vec<String>,
        /// The cluster's name, in the CA's common name.
        #[arg(long, default_value = "surge")]
        cluster: String,
    },
    /// Issues one more certificate from the CA in DIR: for a new node, coordinator or
    /// operator.
    #[command(group(clap::ArgGroup::new("who").required(true)))]
    Issue {
        #[arg(long)]
        dir: PathBuf,
        /// A node's name (its id is bound to it when it registers), e.g. node-4.
        #[arg(long, group = "who")]
        node: Option<String>,
        /// A coordinator's id.
        #[arg(long, group = "who")]
        coordinator: Option<u64>,
        /// An operator's name, for peer-port reads (`shard verify`).
        #[arg(long, group = "who")]
        operator: Option<String>,
        /// A DNS name or IP address it is reached at, besides localhost; repeat for more.
        #[arg(long = "host")]
        hosts: Vec<String>,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum ClusterCmd {
    /// Initializes the cluster once: cluster id and shard table.
    Init {
        #[arg(long, default_value_t = 64)]
        shards: u32,
        #[arg(long, default_value_t = 3)]
        replicas: u32,
        /// Write the first admin token to this file (mode 0600; it must not exist) instead of
        /// printing it; pass it later with --token-file.
        #[arg(long)]
        save_token: Option<PathBuf>,
    },
    /// Coordinators, nodes, shards and the scheduler's progress.
    Status {
        /// Wait (with a progress bar) until the scheduler reports the cluster balanced.
        #[arg(long)]
        wait_balanced: bool,
        /// How long --wait-balanced waits, e.g. 10m.
        #[arg(long, default_value = "30m", value_parser = humantime::parse_duration)]
        timeout: Duration,
    },
    /// Changes a setting at run time: `max-down-time 30s`.
    Set { name: String, value: String },
}

#[derive(Subcommand, Debug)]
pub(crate) enum NodeCmd {
    /// Every node with its state, heartbeat age, replicas, leaders, size and free disk.
    List,
    /// Moves the node's leaders off, then its replicas, then marks it removable.
    Drain {
        id: u64,
        /// Follow the drain with a progress bar until the node holds nothing.
        #[arg(long)]
        wait: bool,
        #[arg(long, default_value = "30m", value_parser = humantime::parse_duration)]
        timeout: Duration,
    },
    /// Retires a node that holds no replica (drain it first).
    Remove { id: u64 },
}

#[derive(Subcommand, Debug)]
pub(crate) enum ShardCmd {
    /// Every shard: epoch, leader, voters, learners, lag, size, write rate, operator.
    List,
    /// One shard's replicas with their roles, match index, lag and applied index.
    Show { id: u32 },
    /// Checks that every replica of each shard holds the same data (digests at one applied
    /// index); fails otherwise.
    Verify {
        /// Only these shards (all when none).
        ids: Vec<u32>,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum OperatorCmd {
    /// Operators in flight with their step and age.
    List {
        /// The most recent finished ones too.
        #[arg(long)]
        all: bool,
    },
    /// Starts one by hand: move-replica (--from, --to), transfer-leader (--to), add-replica
    /// (--to) or remove-replica (--from).
    Add {
        kind: String,
        #[arg(long)]
        shard: u32,
        #[arg(long, default_value_t = 0)]
        from: u64,
        #[arg(long, default_value_t = 0)]
        to: u64,
    },
    /// Rolls an operator back if it still can be; past that point it completes.
    Cancel { id: u64 },
}

#[derive(Subcommand, Debug)]
pub(crate) enum CoordinatorCmd {
    /// Adds a coordinator (started with `join = true`) through joint consensus.
    Add {
        #[arg(long)]
        id: u64,
        /// Its client port (AdminService), as `grpc_listen` or `advertise_address`.
        #[arg(long)]
        address: String,
        /// Its peer port (NodeService, Raft), as `peer_listen` or `advertise_peer`.
        #[arg(long)]
        peer_address: String,
        /// Its HTTP address.
        #[arg(long, default_value = "")]
        http_address: String,
    },
    /// Removes a coordinator through joint consensus; refused if it would break quorum.
    Remove {
        #[arg(long)]
        id: u64,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum TenantCmd {
    /// Creates a tenant and prints its first API key (scopes orders and print), once: surge
    /// stores only its hash.
    Create { name: String },
    /// Every tenant with its id and number of live API keys.
    List,
    /// A tenant's review and carrier rules.
    #[command(subcommand)]
    Rules(RulesCmd),
    /// A tenant's API keys: several per tenant, each with scopes, revoked one by one.
    #[command(subcommand)]
    Key(KeyCmd),
    /// A tenant's admission limits.
    #[command(subcommand)]
    Limits(LimitsCmd),
}

#[derive(Subcommand, Debug)]
pub(crate) enum RulesCmd {
    /// Replaces the rules with FILE (TOML); a file with an error changes nothing and the
    /// error names its line and key.
    Set {
        #[arg(long)]
        tenant: String,
        file: PathBuf,
    },
    /// Prints the rules in force.
    Get {
        #[arg(long)]
        tenant: String,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum WaybillCmd {
    /// Registers numbers a carrier issued to the tenant: PREFIX + zero-padded FROM..=TO.
    AddRange {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        carrier: String,
        #[arg(long, default_value = "")]
        prefix: String,
        #[arg(long)]
        from: u64,
        #[arg(long)]
        to: u64,
    },
    /// Free, leased, bound and voided numbers per range.
    Status {
        #[arg(long, default_value = "")]
        tenant: String,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum StationCmd {
    /// Runs a printing station: receives the tenant's print jobs, writes raw ZPL to a TCP
    /// 9100 printer or to files, acks after each write (needs --api-key).
    Run {
        /// The tenant; its API key must belong to it.
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        station: String,
        #[arg(long)]
        printer: Option<String>,
        #[arg(long)]
        out_dir: Option<PathBuf>,
        /// Jobs in flight per node.
        #[arg(long, default_value_t = 50)]
        window: u32,
        /// Exit after this many seconds without a job.
        #[arg(long)]
        exit_after_idle: Option<u64>,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum LabelCmd {
    /// Writes an order's label: ZPL, or PDF with --pdf.
    Get {
        order_id: String,
        #[arg(long)]
        pdf: bool,
        #[arg(long)]
        out: PathBuf,
    },
    /// Prints an order's label again; the reason is recorded and the reprint counted.
    Reprint {
        order_id: String,
        #[arg(long)]
        reason: String,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum OrderCmd {
    /// Submits COUNT sample orders (about 1 KiB each) in batches and shows how they spread
    /// over shards, leaders and replicas.
    Burst {
        #[arg(long, default_value_t = 1000)]
        count: u64,
        #[arg(long, default_value_t = 200)]
        batch: usize,
        /// Tag of the external order ids (`<run>-<n>`); reuse it to resubmit the same orders.
        #[arg(long)]
        run: Option<String>,
    },
    /// Imports a platform's orders: FILE holds one order record per line, as the platform's
    /// order API returns them (tmall/taobao: Trade; jd; pdd; douyin; shopify). Idempotent: a
    /// second import of the same file stores nothing twice. Records the platform cancelled
    /// cancel the order; malformed ones are refused naming their line and field.
    Import {
        #[arg(long, value_parser = ["taobao", "tmall", "jd", "pdd", "douyin", "shopify"])]
        platform: String,
        file: PathBuf,
        #[arg(long, default_value_t = 200)]
        batch: usize,
    },
    /// Writes the platform's shipment confirmation (回传) for every shipped order of that
    /// platform, one request body per line, from the order event stream.
    ExportShipments {
        #[arg(long, value_parser = ["taobao", "tmall", "jd", "pdd", "douyin", "shopify"])]
        platform: String,
        /// surge carrier name = the platform's carrier code, e.g. `--carrier-code SF=44`;
        /// repeat for more. Unmapped carriers go by their surge name.
        #[arg(long = "carrier-code")]
        carrier_codes: Vec<String>,
        /// Write here instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Stop once the event stream has been quiet this long.
        #[arg(long, default_value_t = 3)]
        idle_seconds: u64,
    },
    /// One order by id, with its holds and history.
    Get { order_id: String },
    /// Holds an order (blocks its forward moves until released).
    Hold {
        order_id: String,
        #[arg(long, default_value = "manual")]
        code: String,
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Releases one hold by code, or every hold.
    Release {
        order_id: String,
        #[arg(long, default_value = "")]
        code: String,
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Confirms an order packed.
    Pack { order_id: String },
    /// Confirms an order shipped, with the weighed parcel.
    Ship {
        order_id: String,
        #[arg(long)]
        weight_grams: i64,
    },
    /// Records the carrier's routing for the order's waybill, as the carrier's e-waybill service
    /// returned it with the number: the three-segment sorting code (三段码) and the destination
    /// text (大头笔). The label prints them instead of the ones derived from the address.
    Route {
        order_id: String,
        /// The waybill the carrier answered for; must be the one bound to the order.
        #[arg(long)]
        waybill: String,
        #[arg(long, default_value = "")]
        sorting_code: String,
        #[arg(long, default_value = "")]
        destination: String,
    },
    /// Cancels (before printing) or intercepts (after printing) an order.
    Cancel {
        order_id: String,
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Streams the tenant's order events as JSON lines from CURSOR.
    Watch {
        #[arg(long, default_value = "")]
        cursor: String,
        #[arg(long, default_value_t = u64::MAX)]
        max_events: u64,
        #[arg(long, default_value_t = 3600)]
        seconds: u64,
    },
    /// How many orders are in each status, and how many of them are held.
    Tally,
    /// Orders in a status, oldest first.
    List {
        #[arg(long, value_enum, default_value_t = StatusArg::Received)]
        status: StatusArg,
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub(crate) enum StatusArg {
    Received,
    Approved,
    Allocated,
    WaybillAssigned,
    LabelPrinted,
    Packed,
    Shipped,
    Cancelled,
}

impl From<StatusArg> for surge_proto::v1::OrderStatus {
    fn from(s: StatusArg) -> Self {
        use surge_proto::v1::OrderStatus as S;
        match s {
            StatusArg::Received => S::Received,
            StatusArg::Approved => S::Approved,
            StatusArg::Allocated => S::Allocated,
            StatusArg::WaybillAssigned => S::WaybillAssigned,
            StatusArg::LabelPrinted => S::LabelPrinted,
            StatusArg::Packed => S::Packed,
            StatusArg::Shipped => S::Shipped,
            StatusArg::Cancelled => S::Cancelled,
        }
    }
}

#[derive(Subcommand, Debug)]
pub(crate) enum DevCmd {
    /// Starts coordinators and nodes on loopback as child processes, initializes the cluster,
    /// writes DIR/cluster.json and stops them all on Ctrl-C.
    Up(dev::UpArgs),
    /// Starts one more node for the dev cluster in DIR (it joins and receives replicas).
    AddNode(dev::AddNodeArgs),
}
