//! The replicated metadata records and the commands that change them.

use serde::{Deserialize, Serialize};

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
    pub address: String,
    pub http_address: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord, Hash)]
pub enum NodeState {
    Up,
    Down,
    Draining,
    Removed,
}

impl NodeState {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeState::Up => "up",
            NodeState::Down => "down",
            NodeState::Draining => "draining",
            NodeState::Removed => "removed",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    pub id: u64,
    pub instance_id: String,
    pub address: String,
    pub http_address: String,
    pub zone: String,
    pub state: NodeState,
    pub registered_at_ms: u64,
    pub state_changed_at_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardInfo {
    pub id: u32,
    /// Bumped on every change of the replica set.
    pub epoch: u64,
    pub replicas: Vec<u64>,
}

/// A merchant using the cluster. API keys are kept as SHA-256 hex digests only.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantInfo {
    pub id: u64,
    pub name: String,
    pub created_at_ms: u64,
    pub key_hashes: Vec<String>,
    /// Review and carrier rules (TOML, validated before it was proposed); empty: none.
    #[serde(default)]
    pub rules_toml: String,
    #[serde(default)]
    pub rules_version: u64,
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
    },
    RegisterNode {
        instance_id: String,
        address: String,
        http_address: String,
        zone: String,
        at_ms: u64,
    },
    UpdateNodeAddress {
        node_id: u64,
        address: String,
        http_address: String,
    },
    SetNodeState {
        node_id: u64,
        state: NodeState,
        at_ms: u64,
    },
    PlaceShards {
        assignments: Vec<(u32, Vec<u64>)>,
    },
    /// `key_hash` is the SHA-256 of the API key, computed by the proposer: the key itself
    /// never enters the log.
    CreateTenant {
        name: String,
        key_hash: String,
        at_ms: u64,
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
}

/// Why a command changed nothing.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum MetaError {
    #[error("the cluster is already initialized (cluster id {cluster_id}); init runs once")]
    AlreadyInitialized { cluster_id: String },
    #[error("the cluster is not initialized yet; run `surgectl cluster init`")]
    NotInitialized,
    #[error("node_id: unknown node {0}; a node must register before it heartbeats")]
    UnknownNode(u64),
    #[error("shard {0} is not in the shard table")]
    UnknownShard(u32),
    #[error("replicas: shard {shard} placement names unknown or duplicate node {node}")]
    BadPlacement { shard: u32, node: u64 },
    #[error("name: tenant {name:?} already exists (id {id})")]
    TenantExists { name: String, id: u64 },
    #[error("tenant: no tenant {0}")]
    UnknownTenant(String),
    #[error("{field}: {reason}")]
    BadRange { field: String, reason: String },
    #[error("from: the range overlaps range {id} of carrier {carrier} ({prefix} {from}-{to}); nothing was added")]
    RangeOverlap {
        carrier: String,
        id: u64,
        prefix: String,
        from: u64,
        to: u64,
    },
    #[error("seq: block request {seq} is older than the last one answered ({last})")]
    StaleLease { seq: u64, last: u64 },
    #[error("the command could not be decoded: {0}")]
    Undecodable(String),
}

/// What an applied command answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    Initialized(ClusterInfo),
    Registered { node_id: u64, cluster_id: String },
    TenantCreated { tenant_id: u64 },
    RulesSet { version: u64 },
    RangeAdded(crate::waybills::WaybillRange),
    Leased(crate::waybills::LeaseRecord),
    Done,
}

pub type Output = Result<Reply, MetaError>;
