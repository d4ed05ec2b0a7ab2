//! surgectl's access commands: operator tokens, the audit trail, tenant API keys and
//! admission limits (clap derive).

use clap::Subcommand;

#[derive(Subcommand, Debug)]
pub(crate) enum TokenCmd {
    /// Makes a token and prints it, once: surge stores only its hash.
    Create {
        /// For people: who or what holds it, e.g. ops-oncall or 杭州仓看板.
        #[arg(long)]
        name: String,
        /// admin (init, tenants, tokens, coordinators, audit), operator (nodes, drains, rules,
        /// waybill ranges, operators, settings) or viewer (status and lists).
        #[arg(long, value_parser = ["admin", "operator", "viewer"])]
        role: String,
    },
    /// The live tokens: id, name, role, made when and by whom.
    List {
        /// The revoked ones too.
        #[arg(long)]
        all: bool,
    },
    /// Revokes a token at once (not the last admin token).
    Revoke { id: u64 },
}

#[derive(Subcommand, Debug)]
pub(crate) enum AuditCmd {
    /// Admin changes, newest first: when, who, from where, what, and the outcome.
    List {
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Only records older than this sequence number, to page back.
        #[arg(long, default_value_t = 0)]
        before: u64,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum LimitsCmd {
    /// Changes the limits given (the others stay); 0 means no limit. Nodes enforce them from
    /// their next heartbeat; over a limit, calls answer RESOURCE_EXHAUSTED with a retry-after.
    Set {
        #[arg(long)]
        tenant: String,
        /// Orders admitted per second, cluster-wide.
        #[arg(long)]
        orders_per_sec: Option<u32>,
        /// Orders admitted at once above the rate (0: one second's worth).
        #[arg(long)]
        burst: Option<u32>,
        /// Order-watch and print-job streams open at once, on each node.
        #[arg(long)]
        streams: Option<u32>,
        /// ListOrders, ReadEvents and stream opens per second, on each node.
        #[arg(long)]
        reads_per_sec: Option<u32>,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum KeyCmd {
    /// Makes a key and prints it, once: `--scope orders` (submit, hold, cancel, pack, ship),
    /// `print` (print jobs, labels, pack, ship) or `read-only`; repeat for more. Every key reads.
    Add {
        #[arg(long)]
        tenant: String,
        #[arg(long = "scope", required = true, value_parser = ["orders", "print", "read-only"])]
        scopes: Vec<String>,
        /// For people: "ERP 杭州", "dock-1 printers".
        #[arg(long, default_value = "")]
        label: String,
    },
    /// The tenant's keys: id, scopes, label, hint (its first characters), made and revoked.
    List {
        #[arg(long)]
        tenant: String,
        /// The revoked ones too.
        #[arg(long)]
        all: bool,
    },
    /// Revokes a key: every node refuses it within about a heartbeat.
    Revoke {
        #[arg(long)]
        tenant: String,
        id: u64,
    },
}
