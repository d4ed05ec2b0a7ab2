//! API keys and operator tokens on the wire: `authorization: Bearer <secret>` on every call. The
//! coordinators store, and nodes compare, only the secret's SHA-256 digest in lower-case hex.

use sha2::{Digest, Sha256};

/// The metadata key that carries the API key.
pub const AUTHORIZATION: &str = "authorization";

/// What an operator token starts with.
pub const OPERATOR_TOKEN_PREFIX: &str = "sop_";

/// The hex SHA-256 digest of an API key.
pub fn key_digest(key: &str) -> String {
    Sha256::digest(key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A fresh operator token: [`OPERATOR_TOKEN_PREFIX`] and 256 random bits (one maker for the
/// coordinator and clients).
pub fn new_operator_token() -> String {
    random_secret(OPERATOR_TOKEN_PREFIX)
}

/// A fresh secret (an API key, an operator token): `prefix` and 256 random bits from the
/// operating system, in hex. The prefix says what it is, and secret scanners can match it.
pub fn random_secret(prefix: &str) -> String {
    use rand::RngCore as _;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{prefix}{hex}")
}

/// The key inside an `authorization` value, if it is `Bearer <key>`.
pub fn bearer(value: &str) -> Option<&str> {
    let (scheme, key) = value.split_once(' ')?;
    let key = key.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !key.is_empty()).then_some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_is_sha256_hex_and_bearer_is_parsed() {
        assert_eq!(
            key_digest("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(bearer("Bearer sk-1"), Some("sk-1"));
        assert_eq!(bearer("bearer  sk-1 "), Some("sk-1"));
        assert_eq!(bearer("Basic sk-1"), None);
        assert_eq!(bearer("Bearer "), None);
        assert_eq!(bearer("sk-1"), None);
        let (a, b) = (random_secret("sk_"), random_secret("sk_"));
        assert_ne!(a, b);
        assert!(a.starts_with("sk_") && a.len() == 3 + 64);
    }
}
