//! Key layout. Every key starts with the group (shard) id in big-endian, so a group's rows are
//! one prefix: a snapshot is a prefix scan and a removal a `delete_range`.

/// The 8-byte prefix of every key of `group`.
pub fn group_prefix(group: u64) -> [u8; 8] {
    group.to_be_bytes()
}

/// The first key after every key of `group`'s prefix.
pub fn group_end(group: u64) -> Vec<u8> {
    match group.checked_add(1) {
        Some(next) => next.to_be_bytes().to_vec(),
        None => vec![0xff; 9],
    }
}

/// `group | index` in `raft_log`.
pub fn log_key(group: u64, index: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(16);
    key.extend_from_slice(&group.to_be_bytes());
    key.extend_from_slice(&index.to_be_bytes());
    key
}

/// The index part of a `raft_log` key, if the key has the right shape.
pub fn log_index(key: &[u8]) -> Option<u64> {
    let bytes: [u8; 8] = key.get(8..16)?.try_into().ok()?;
    Some(u64::from_be_bytes(bytes))
}

/// `group` in `raft_state` and `apply_state`.
pub fn state_key(group: u64) -> Vec<u8> {
    group.to_be_bytes().to_vec()
}

/// `group | suffix`: a state-machine key in a data family.
pub fn data_key(group: u64, suffix: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(8 + suffix.len());
    key.extend_from_slice(&group.to_be_bytes());
    key.extend_from_slice(suffix);
    key
}

/// The key just after every key starting with `prefix`, for range ends.
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0xff; prefix.len() + 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_keys_sort_by_group_then_index() {
        assert!(log_key(1, 300) < log_key(2, 1));
        assert!(log_key(1, 2) < log_key(1, 256));
        assert_eq!(log_index(&log_key(7, 42)), Some(42));
        assert_eq!(log_index(b"short"), None);
    }

    #[test]
    fn prefix_end_bounds_the_prefix() {
        assert_eq!(prefix_end(b"ab"), b"ac".to_vec());
        assert_eq!(prefix_end(&[1, 0xff]), vec![2]);
        assert!(data_key(3, b"zzz") < group_end(3));
        assert!(data_key(3, &[0xff; 20]) < group_end(3));
    }
}
