//! Which shard an order belongs to — part of the wire contract, so an ERP's own client can
//! compute it too:
//!
//! ```text
//! shard = FNV-1a-64( UTF-8(tenant_id) ‖ 0x00 ‖ UTF-8(routing_key) ) mod shard_count
//! ```
//!
//! FNV-1a 64 uses offset basis 0xcbf29ce484222325 and prime 0x100000001b3. `routing_key`
//! defaults to the external order id; an ERP that wants a buyer's orders on one shard sets it
//! to the buyer id. The vectors in `routing-vectors.txt` pin the function: the server and the
//! client library both run them.

use std::hash::Hasher;

/// The shard of `(tenant_id, routing_key)` among `shard_count` shards (which must be > 0).
pub fn shard_for(tenant_id: &str, routing_key: &str, shard_count: u32) -> u32 {
    let mut h = fnv::FnvHasher::default();
    h.write(tenant_id.as_bytes());
    h.write(&[0]);
    h.write(routing_key.as_bytes());
    (h.finish() % u64::from(shard_count.max(1))) as u32
}

/// The pinned vectors: `(tenant_id, routing_key, shard_count, shard)`.
pub fn vectors() -> Vec<(String, String, u32, u32)> {
    include_str!("../routing-vectors.txt")
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            match f.as_slice() {
                [t, k, n, s] => Some((
                    t.to_string(),
                    k.to_string(),
                    n.parse().ok()?,
                    s.parse().ok()?,
                )),
                _ => None,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fnv1a(bytes: &[u8]) -> u64 {
        let mut h = fnv::FnvHasher::default();
        h.write(bytes);
        h.finish()
    }

    #[test]
    fn the_hash_is_fnv1a_64() {
        // Published FNV-1a 64 test vectors.
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn the_pinned_vectors_hold() {
        let vectors = vectors();
        assert!(vectors.len() >= 10, "routing-vectors.txt lost its vectors");
        for (tenant, key, count, shard) in vectors {
            assert_eq!(
                shard_for(&tenant, &key, count),
                shard,
                "{tenant:?} {key:?} mod {count}"
            );
        }
    }

    #[test]
    fn the_separator_keeps_fields_apart() {
        assert_ne!(fnv1a(b"ab\0c"), fnv1a(b"a\0bc"));
    }
}
