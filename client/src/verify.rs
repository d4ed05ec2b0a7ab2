//! Checks that the replicas of each shard hold identical data (`surgectl shard verify`): asks
//! every replica's node for the digest of its copy (rows and the applied index they cover,
//! from one engine snapshot) and compares the digests of replicas at the same applied index.
//! Replicas still applying (different indexes) are asked again, a bounded number of times.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use surge_grpc::v1::admin_service_client::AdminServiceClient;
use surge_grpc::v1::replica_service_client::ReplicaServiceClient;
use surge_grpc::v1::{
    ListNodesRequest, ListShardsRequest, ReplicaDigestRequest, ReplicaDigestResponse,
};
use tonic::Status;

use crate::channels::ChannelCache;
use crate::MetaClient;

/// What verifying one shard found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every replica answered the same digest at the same applied index.
    Identical {
        applied_index: u64,
        digest: String,
        replicas: usize,
    },
    /// Two replicas at the same applied index hold different data.
    Differ {
        applied_index: u64,
        digests: BTreeMap<u64, String>,
    },
    /// The replicas never stood at one applied index together (writes kept coming), or one
    /// did not answer.
    Unsettled { reason: String },
}

impl Verdict {
    pub fn is_identical(&self) -> bool {
        matches!(self, Verdict::Identical { .. })
    }
}

/// One shard's verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardVerdict {
    pub shard: u32,
    pub verdict: Verdict,
}

/// How hard to try.
#[derive(Clone, Copy, Debug)]
pub struct VerifyPolicy {
    pub attempts: u32,
    pub pause: Duration,
}

impl Default for VerifyPolicy {
    fn default() -> Self {
        VerifyPolicy {
            attempts: 40,
            pause: Duration::from_millis(250),
        }
    }
}

async fn digest_of(
    channels: &ChannelCache,
    address: &str,
    shard: u32,
) -> Result<ReplicaDigestResponse, Status> {
    let ch = channels.get(address, |e| e.timeout(Duration::from_secs(30)))?;
    ReplicaServiceClient::new(ch)
        .replica_digest(ReplicaDigestRequest { shard })
        .await
        .map(|r| r.into_inner())
}

/// Where each shard's replicas are, as the coordinators see it now.
struct Membership {
    /// Shard id → the nodes holding a replica of it.
    shards: BTreeMap<u32, Vec<u64>>,
    /// Node id → the address its ReplicaService answers on.
    nodes: HashMap<u64, String>,
}

impl Membership {
    async fn read(meta: &MetaClient) -> Result<Membership, Status> {
        let shards = meta
            .call(|ch| async move {
                AdminServiceClient::new(ch)
                    .list_shards(ListShardsRequest {})
                    .await
            })
            .await?
            .shards
            .into_iter()
            .map(|s| (s.id, s.replicas.iter().map(|r| r.node_id).collect()))
            .collect();
        let nodes = meta
            .call(|ch| async move {
                AdminServiceClient::new(ch)
                    .list_nodes(ListNodesRequest {})
                    .await
            })
            .await?
            .nodes
            .into_iter()
            // ReplicaService is on each node's peer port (nodes from before the split: `address`).
            .map(|n| match n.peer_address.is_empty() {
                true => (n.id, n.address),
                false => (n.id, n.peer_address),
            })
            .collect();
        Ok(Membership { shards, nodes })
    }
}

/// Verifies `only` (every shard when empty). The membership is read again before each retry:
/// while the scheduler moves replicas, a shard's members change under a long verify, and a
/// node that gave its replica up since is no reason to call the shard unsettled.
pub async fn verify(
    meta: &MetaClient,
    only: &[u32],
    policy: VerifyPolicy,
) -> Result<Vec<ShardVerdict>, Status> {
    let mut membership = Membership::read(meta).await?;
    let ids: Vec<u32> = membership
        .shards
        .keys()
        .copied()
        .filter(|id| only.is_empty() || only.contains(id))
        .collect();
    // ReplicaService is on peer ports: the caller's certificate must be the cluster's.
    let channels = ChannelCache::new("nodes", meta.transport().clone());
    let mut out = Vec::new();
    for shard in ids {
        let mut verdict = Verdict::Unsettled {
            reason: "no attempt made".into(),
        };
        for attempt in 0..policy.attempts.max(1) {
            if attempt > 0 {
                tokio::time::sleep(policy.pause).await;
                membership = Membership::read(meta).await?;
            }
            let Some(members) = membership.shards.get(&shard) else {
                verdict = Verdict::Unsettled {
                    reason: format!("shard {shard} is no longer listed"),
                };
                continue;
            };
            let asks = members.iter().map(|n| {
                let address = membership.nodes.get(n).cloned().unwrap_or_default();
                let channels = &channels;
                async move { (*n, digest_of(channels, &address, shard).await) }
            });
            let answers = futures::future::join_all(asks).await;
            verdict = judge(&answers);
            if !matches!(verdict, Verdict::Unsettled { .. }) {
                break;
            }
        }
        out.push(ShardVerdict { shard, verdict });
    }
    Ok(out)
}

/// The verdict on one round of answers.
pub fn judge(answers: &[(u64, Result<ReplicaDigestResponse, Status>)]) -> Verdict {
    let mut digests = BTreeMap::new();
    let mut indexes = BTreeMap::new();
    for (node, answer) in answers {
        match answer {
            Ok(d) => {
                digests.insert(*node, d.digest.clone());
                indexes.insert(*node, d.applied_index);
            }
            Err(s) => {
                // A refused connection or TLS handshake says why only in its source.
                let cause =
                    crate::retry::no_answer_cause(s).map_or(String::new(), |c| format!(" ({c})"));
                return Verdict::Unsettled {
                    reason: format!("node {node}: {}{cause}", s.message()),
                };
            }
        }
    }
    let mut at: Vec<u64> = indexes.values().copied().collect();
    at.sort_unstable();
    at.dedup();
    let Some(&applied_index) = at.first() else {
        return Verdict::Unsettled {
            reason: "the shard has no replicas".into(),
        };
    };
    if at.len() > 1 {
        return Verdict::Unsettled {
            reason: format!("replicas at different applied indexes: {indexes:?}"),
        };
    }
    let mut distinct: Vec<&String> = digests.values().collect();
    distinct.sort();
    distinct.dedup();
    match distinct.as_slice() {
        [one] => Verdict::Identical {
            applied_index,
            digest: (*one).clone(),
            replicas: digests.len(),
        },
        _ => Verdict::Differ {
            applied_index,
            digests,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(index: u64, digest: &str) -> Result<ReplicaDigestResponse, Status> {
        Ok(ReplicaDigestResponse {
            applied_index: index,
            digest: digest.into(),
            ..ReplicaDigestResponse::default()
        })
    }

    #[test]
    fn verdicts() {
        assert!(judge(&[(1, at(5, "a")), (2, at(5, "a")), (3, at(5, "a"))]).is_identical());
        assert!(matches!(
            judge(&[(1, at(5, "a")), (2, at(5, "b"))]),
            Verdict::Differ {
                applied_index: 5,
                ..
            }
        ));
        assert!(matches!(
            judge(&[(1, at(5, "a")), (2, at(6, "b"))]),
            Verdict::Unsettled { .. }
        ));
        assert!(matches!(
            judge(&[(1, at(5, "a")), (2, Err(Status::unavailable("down")))]),
            Verdict::Unsettled { .. }
        ));
        assert!(matches!(judge(&[]), Verdict::Unsettled { .. }));
    }
}
