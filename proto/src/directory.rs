//! The directory a coordinator hands nodes with every heartbeat answer, and its digest: a node
//! says which directory it holds, and an answer leaves the directory out when that is still
//! the coordinator's (`HeartbeatResponse.directory_unchanged`), so the routing table, node
//! addresses, key digests and every tenant's rules cross the wire only when they change.

use prost::encoding::{message, uint32};
use sha2::{Digest, Sha256};

use crate::v1::HeartbeatResponse;

/// SHA-256 of the directory part of `resp` (`shard_count`, `shards`, `nodes`, `tenants`, in
/// the order given); the rest of the answer (assignments, instructions) is left out. The
/// fields are encoded as the message would encode them (same tags), without copying them.
pub fn directory_digest(resp: &HeartbeatResponse) -> Vec<u8> {
    let mut bytes = Vec::new();
    if resp.shard_count != 0 {
        uint32::encode(2, &resp.shard_count, &mut bytes);
    }
    message::encode_repeated(3, &resp.shards, &mut bytes);
    message::encode_repeated(4, &resp.nodes, &mut bytes);
    message::encode_repeated(5, &resp.tenants, &mut bytes);
    Sha256::digest(bytes).to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v1::{ShardInstruction, ShardRoute, TenantKeys};

    #[test]
    fn the_digest_covers_the_directory_and_nothing_else() {
        let base = HeartbeatResponse {
            shard_count: 2,
            shards: vec![ShardRoute {
                id: 1,
                leader: 3,
                ..ShardRoute::default()
            }],
            tenants: vec![TenantKeys {
                id: 1,
                name: "杭州小店".into(),
                rules_version: 1,
                ..TenantKeys::default()
            }],
            ..HeartbeatResponse::default()
        };
        let digest = directory_digest(&base);
        assert_eq!(digest.len(), 32);
        // The same bytes as the message with only those fields, encoded by prost.
        let only = HeartbeatResponse {
            shard_count: base.shard_count,
            shards: base.shards.clone(),
            nodes: base.nodes.clone(),
            tenants: base.tenants.clone(),
            ..HeartbeatResponse::default()
        };
        assert_eq!(
            digest,
            Sha256::digest(prost::Message::encode_to_vec(&only)).to_vec()
        );
        let mut other = base.clone();
        other.instructions.push(ShardInstruction::default());
        other.directory_unchanged = true;
        assert_eq!(
            directory_digest(&other),
            digest,
            "not part of the directory"
        );
        let mut moved = base.clone();
        moved.shards[0].leader = 4;
        assert_ne!(
            directory_digest(&moved),
            digest,
            "a new leader is a new directory"
        );
        let mut rules = base;
        rules.tenants[0].rules_version = 2;
        assert_ne!(
            directory_digest(&rules),
            digest,
            "new rules are a new directory"
        );
    }
}
