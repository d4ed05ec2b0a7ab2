//! Why a metadata command changed nothing: one variant per refusal, each message naming the
//! field or the next step, mapped to a gRPC code by the coordinator's one error table.

use serde::{Deserialize, Serialize};

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
    #[error("id: no operator {0} in flight")]
    UnknownOperator(u64),
    #[error("shard {shard}: operator {id} is already working on it")]
    ShardBusy { shard: u32, id: u64 },
    #[error("id: node {node} cannot be drained: {reason}; nothing was changed")]
    DrainRefused { node: u64, reason: String },
    #[error("id: node {node} still holds {replicas} replica(s); drain it first (`surgectl node drain {node} --wait`)")]
    NodeHoldsReplicas { node: u64, replicas: usize },
    #[error("{field}: {reason}")]
    BadSetting { field: String, reason: String },
    #[error("instance_id: the cluster already has {limit} nodes, the most it admits; remove nodes first")]
    TooManyNodes { limit: usize },
    #[error("certificate: node {node} is bound to certificate {bound:?}, not {presented:?}")]
    CertificateMismatch {
        node: u64,
        bound: String,
        presented: String,
    },
    #[error("id: no operator token {0}")]
    UnknownToken(u64),
    #[error("id: token {0} is the last admin token; make another admin token before revoking it")]
    LastAdminToken(u64),
    #[error("id: tenant {tenant} has no key {id}")]
    UnknownKey { tenant: String, id: u64 },
}
