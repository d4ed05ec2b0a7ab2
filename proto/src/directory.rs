//! The directory a coordinator hands nodes with every heartbeat answer, and its digest: a node
//! says which directory it holds, and an answer leaves the directory out when that is still
//! the coordinator's (`HeartbeatResponse.directory_unchanged`), so the routing table, node
//! addresses, key digests and every tenant's rules cross the wire only when they change.

use prost::Message as _;
use sha2::{Digest, Sha256};

use crate::v1::HeartbeatResponse;

/// SHA-256 of the directory part of `resp` (`shard_count`, `shards`, `nodes`, `tenants`, in
/// the order given); the rest of the answer (assignments, instructions) is left out.
pub fn directory_digest(resp: &HeartbeatResponse) -> Vec<u8> {
    let directory = HeartbeatResponse {
        shard_count: resp.shard_count,
        shards: resp.shards.clone(),
        nodes: resp.nodes.clone(),
        tenants: resp.tenants.clone(),
        ..HeartbeatResponse::default()
    };
    Sha256::digest(directory.encode_to_vec()).to_vec()
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
