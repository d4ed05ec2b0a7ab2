//! What a tenant is named and keyed by: the name's and the API key's shape (checked before a
//! tenant is created), fresh keys, and the SHA-256 hex that is all surge stores of a key.

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

pub(crate) fn check_api_key(key: &str) -> Result<(), Status> {
    if !(16..=128).contains(&key.len()) || !key.chars().all(|c| c.is_ascii_graphic()) {
        return Err(ApiError::invalid_argument(
            "api_key",
            "16 to 128 printable ASCII characters without spaces",
        )
        .into());
    }
    Ok(())
}

/// A fresh API key: 244 random bits from two v4 UUIDs.
pub fn new_api_key() -> String {
    format!(
        "sk_{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
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
        assert_ne!(new_api_key(), new_api_key());
        assert!(check_api_key(&new_api_key()).is_ok());
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
        assert!(check_api_key("short").is_err());
        assert!(check_api_key("with a space in it........").is_err());
    }
}
