//! The replicated metadata records and the commands that change them.

use serde::{Deserialize, Serialize};

pub use crate::error::MetaError;

/// Set once by `surgectl cluster init`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterInfo {
    pub cluster_id: String,
    pub shards: u32,
    pub replicas: u32,
    pub created_at_ms: u64,
    /// The init request that created it, so a retried init answers success.
    pub init_token: String,
}

/// A coordinator's addresses, carried in the context of the conf change that added it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoordinatorInfo {
    pub id: u64,
    /// The client port: AdminService.
    pub address: String,
    pub http_address: String,
    /// The peer port: NodeService, the other coordinators' Raft traffic. Empty in records
    /// written before the ports were split, which served both on `address`.
    #[serde(default)]
    pub peer_address: String,
}

/// A peer port, or for a record from before the ports were split, the one port it had.
fn peer_or_client<'a>(peer: &'a str, client: &'a str) -> &'a str {
    if peer.is_empty() {
        client
    } else {
        peer
    }
}

impl CoordinatorInfo {
    /// Where nodes and the other coordinators reach it.
    pub fn peer(&self) -> &str {
        peer_or_client(&self.peer_address, &self.address)
    }
}

/// A node's standing. Up and Down follow heartbeats; Draining, Removable and Removed follow
/// the operator's `node drain` and `node remove`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord, Hash)]
pub enum NodeState {
    Up,
    Down,
    /// Its leaders, then its replicas, are being moved off.
    Draining,
    /// Drained: it holds nothing and can be removed.
    Removable,
    Removed,
}

impl NodeState {
    pub const ALL: [NodeState; 5] = [
        NodeState::Up,
        NodeState::Down,
        NodeState::Draining,
        NodeState::Removable,
        NodeState::Removed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            NodeState::Up => "up",
            NodeState::Down => "down",
            NodeState::Draining => "draining",
            NodeState::Removable => "removable",
            NodeState::Removed => "removed",
        }
    }

    /// May receive new replicas and leaders.
    pub fn takes_replicas(self) -> bool {
        self == NodeState::Up
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    pub id: u64,
    pub instance_id: String,
    /// The client port: OrderService, PrintService.
    pub address: String,
    pub http_address: String,
    /// The peer port: Raft, forwarded calls, snapshots. Empty in records written before the
    /// ports were split, which served both on `address`.
    #[serde(default)]
    pub peer_address: String,
    pub zone: String,
    pub state: NodeState,
    pub registered_at_ms: u64,
    pub state_changed_at_ms: u64,
    /// The name of the node certificate it registered with; its Raft messages, heartbeats
    /// and forwarded calls are accepted only over a connection with that certificate. Empty
    /// when it registered in plaintext (`insecure = true`).
    #[serde(default)]
    pub certificate_name: String,
}

impl NodeInfo {
    /// Where the other nodes reach it.
    pub fn peer(&self) -> &str {
        peer_or_client(&self.peer_address, &self.address)
    }
}

/// A shard's membership as of its epoch. The shard's own Raft group is the truth: its
/// leader reports each new epoch and the coordinator records it (it only moves forward).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardInfo {
    pub id: u32,
    /// Bumped on every membership change the shard applies.
    pub epoch: u64,
    /// Every member: voters, learners and outgoing voters, sorted.
    pub replicas: Vec<u64>,
    /// Voters (the incoming configuration while joint).
    #[serde(default)]
    pub voters: Vec<u64>,
    #[serde(default)]
    pub learners: Vec<u64>,
    /// The outgoing voters while in a joint configuration; empty otherwise.
    #[serde(default)]
    pub outgoing: Vec<u64>,
}

impl ShardInfo {
    /// A placed shard whose members are all voters.
    pub fn placed(id: u32, epoch: u64, voters: Vec<u64>) -> ShardInfo {
        let mut replicas = voters.clone();
        replicas.sort_unstable();
        ShardInfo {
            id,
            epoch,
            replicas,
            voters,
            learners: Vec::new(),
            outgoing: Vec::new(),
        }
    }

    pub fn is_member(&self, node: u64) -> bool {
        self.replicas.contains(&node)
    }

    pub fn is_voter(&self, node: u64) -> bool {
        self.voters.contains(&node) || self.outgoing.contains(&node)
    }
}

/// A merchant using the cluster. API keys are kept as SHA-256 hex digests only.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantInfo {
    pub id: u64,
    pub name: String,
    pub created_at_ms: u64,
    /// Key digests of records written before keys had scopes; upgraded into `keys` on load.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub key_hashes: Vec<String>,
    /// Review and carrier rules (TOML, validated before it was proposed); empty: none.
    #[serde(default)]
    pub rules_toml: String,
    #[serde(default)]
    pub rules_version: u64,
    /// Its API keys, live and revoked ([`crate::tenant_keys`]).
    #[serde(default)]
    pub keys: Vec<crate::tenant_keys::TenantKey>,
    #[serde(default)]
    pub next_key_id: u64,
    /// SHA-256 of the request token of the `tenant create` that made it, so its retry is
    /// recognised.
    #[serde(default)]
    pub create_token_hash: String,
    #[serde(default)]
    pub limits: crate::tenant_limits::TenantLimits,
}

/// A change to the metadata. Times are stamped by the proposing leader.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    InitCluster {
        cluster_id: String,
        shards: u32,
        replicas: u32,
        token: String,
        at_ms: u64,
        /// SHA-256 of the first admin token (the token itself never enters the log).
        #[serde(default)]
        admin_token_hash: String,
    },
    RegisterNode {
        instance_id: String,
        address: String,
        http_address: String,
        #[serde(default)]
        peer_address: String,
        zone: String,
        at_ms: u64,
        /// The caller's certificate name (empty in plaintext).
        #[serde(default)]
        certificate_name: String,
    },
    UpdateNodeAddress {
        node_id: u64,
        address: String,
        http_address: String,
        #[serde(default)]
        peer_address: String,
    },
    SetNodeState {
        node_id: u64,
        state: NodeState,
        at_ms: u64,
    },
    PlaceShards {
        assignments: Vec<(u32, Vec<u64>)>,
    },
    /// `key_hash` is the SHA-256 of the tenant's first API key (made by the proposer, with
    /// every scope but read-only): the key itself never enters the log. A retry (the same
    /// `request_token_hash`) gets a fresh first key in place of the one whose answer was lost.
    CreateTenant {
        name: String,
        key_hash: String,
        at_ms: u64,
        #[serde(default)]
        request_token_hash: String,
        #[serde(default)]
        key_hint: String,
    },
    /// `surgectl tenant key add`: `key.hash` computed by the proposer; its id is assigned on
    /// apply.
    AddTenantKey {
        tenant_id: u64,
        key: crate::tenant_keys::TenantKey,
    },
    RevokeTenantKey {
        tenant_id: u64,
        key_id: u64,
        at_ms: u64,
    },
    /// `surgectl tenant limits set`: replaces the tenant's limits.
    SetTenantLimits {
        tenant_id: u64,
        limits: crate::tenant_limits::TenantLimits,
    },
    /// `rules_toml` was parsed by the proposer; the state machine only stores it.
    SetTenantRules {
        tenant_id: u64,
        rules_toml: String,
    },
    AddWaybillRange {
        tenant_id: u64,
        carrier: String,
        prefix: String,
        from: u64,
        to: u64,
        at_ms: u64,
    },
    LeaseWaybills {
        shard: u32,
        tenant_id: u64,
        carrier: String,
        seq: u64,
    },
    /// A shard's leader reported the membership of a newer epoch.
    UpdateShardMembership {
        shard: u32,
        epoch: u64,
        voters: Vec<u64>,
        learners: Vec<u64>,
        outgoing: Vec<u64>,
    },
    /// The scheduler starts an operator (its id is assigned on apply).
    CreateOperator(crate::operator::Operator),
    /// An operator reached a new step.
    AdvanceOperator {
        id: u64,
        step: crate::operator::Step,
        note: String,
        at_ms: u64,
    },
    FinishOperator {
        id: u64,
        outcome: crate::operator::Outcome,
        note: String,
        at_ms: u64,
    },
    CancelOperator {
        id: u64,
        at_ms: u64,
    },
    /// `surgectl node drain`: refused unless enough eligible nodes remain.
    DrainNode {
        node_id: u64,
        at_ms: u64,
    },
    /// `surgectl node remove`: refused while the node holds replicas.
    RemoveNode {
        node_id: u64,
        at_ms: u64,
    },
    /// `surgectl cluster set max-down-time`.
    SetMaxDownTime {
        ms: u64,
    },
    /// `surgectl token create`: `hash` is the token's SHA-256, computed by the proposer.
    CreateToken {
        name: String,
        role: crate::access::TokenRole,
        hash: String,
        created_by: String,
        at_ms: u64,
    },
    RevokeToken {
        id: u64,
        at_ms: u64,
    },
    /// An admin change and its audit record, applied together: the record says whether the
    /// change was made or why not.
    Audited {
        audit: crate::access::AuditEntry,
        command: Box<Command>,
    },
    /// An audit record alone, for a change that is not a command (a coordinator membership
    /// change is a Raft conf change); proposed once the change is made.
    Audit(crate::access::AuditEntry),
}

/// What an applied command answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    Initialized(ClusterInfo),
    Registered { node_id: u64, cluster_id: String },
    TenantCreated { tenant_id: u64, key_id: u64 },
    KeyAdded { tenant_id: u64, key_id: u64 },
    Key(Box<crate::tenant_keys::TenantKey>),
    RulesSet { version: u64 },
    RangeAdded(crate::waybills::WaybillRange),
    Leased(crate::waybills::LeaseRecord),
    OperatorCreated { id: u64 },
    Operator(Box<crate::operator::Operator>),
    Node(Box<NodeInfo>),
    TokenCreated { id: u64 },
    Token(Box<crate::access::OperatorToken>),
    Done,
}

pub type Output = Result<Reply, MetaError>;
