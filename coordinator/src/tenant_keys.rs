//! What a tenant is named and keyed by: the name's shape (checked before a tenant is created),
//! fresh keys (made here, never by the caller), and the SHA-256 hex that is all surge stores of
//! a key.

use surge_grpc::ApiError;
use tonic::Status;

/// Longest tenant name.
pub const MAX_TENANT_NAME: usize = 64;

pub(crate) fn check_tenant_name(name: &str) -> Result<(), Status> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if name.is_empty() || name.len() > MAX_TENANT_NAME || !name.chars().all(ok_char) {
        return Err(ApiError::invalid_argument(
            "name",
            format!("1 to {MAX_TENANT_NAME} characters of A-Z a-z 0-9 . _ -, got {name:?}"),
        )
        .into());
    }
    Ok(())
}

/// A fresh API key: 256 random bits from the OS, hex, after `sk_`.
pub fn new_api_key() -> String {
    surge_proto::auth::random_secret("sk_")
}

/// The first characters of a key, kept so people can tell keys apart: `sk_3f9a1c7…` (28 of its
/// 256 bits).
pub fn key_hint(key: &str) -> String {
    let head: String = key.chars().take(10).collect();
    format!("{head}…")
}

/// The SHA-256 of an API key, lowercase hex: all surge stores of a key.
pub fn key_hash(key: &str) -> String {
    surge_proto::auth::key_digest(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_hash_is_sha256_hex() {
        assert_eq!(
            key_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let key = new_api_key();
        assert_ne!(key, new_api_key());
        assert_eq!(key.len(), 3 + 64);
        assert!(key.starts_with("sk_") && key[3..].chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(key_hint(&key), format!("{}…", &key[..10]));
    }

    #[test]
    fn tenant_names_and_keys_are_checked() {
        assert!(check_tenant_name("acme-shop_1.cn").is_ok());
        for bad in ["", "has space", "名字", &"x".repeat(MAX_TENANT_NAME + 1)] {
            let e = check_tenant_name(bad)
                .err()
                .map(|s| s.message().to_string())
                .unwrap_or_default();
            assert!(e.starts_with("name:"), "{bad:?}: {e}");
        }
    }
}
