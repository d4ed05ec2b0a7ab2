//! A tenant's API keys: made by the cluster, kept as SHA-256 digests with their scopes, several
//! per tenant, revoked one by one. What a key may do is its scopes'; the nodes check them.

use serde::{Deserialize, Serialize};

use crate::meta::{MetaError, TenantInfo};

/// Live keys a tenant holds at most.
pub const MAX_KEYS_PER_TENANT: usize = 32;
/// Keys (live and revoked) a tenant's record keeps; the oldest revoked ones go first.
pub const MAX_KEY_RECORDS: usize = 128;
/// The label of the key `tenant create` makes.
pub const FIRST_KEY_LABEL: &str = "created with the tenant";

/// What a key may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum KeyScope {
    /// Submit, hold, release, cancel orders (and read them).
    Orders,
    /// Take print jobs, acknowledge and reprint them, fetch labels (and read orders).
    Print,
    /// Read orders, their events and the shard map; change nothing.
    ReadOnly,
}

impl KeyScope {
    pub const ALL: [KeyScope; 3] = [KeyScope::Orders, KeyScope::Print, KeyScope::ReadOnly];

    pub fn as_str(self) -> &'static str {
        match self {
            KeyScope::Orders => "orders",
            KeyScope::Print => "print",
            KeyScope::ReadOnly => "read-only",
        }
    }

    pub fn parse(text: &str) -> Option<KeyScope> {
        KeyScope::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// One API key of a tenant. The key itself is shown once, when it is made.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantKey {
    /// Unique within the tenant.
    pub id: u64,
    /// SHA-256 of the key, lowercase hex.
    pub hash: String,
    pub scopes: Vec<KeyScope>,
    /// For people: "ERP 杭州", "dock-1 printers".
    pub label: String,
    /// The key's first characters ("sk_3f9a1c…"), so people can tell keys apart.
    #[serde(default)]
    pub hint: String,
    pub created_at_ms: u64,
    #[serde(default)]
    pub revoked_at_ms: Option<u64>,
}

impl TenantKey {
    pub fn is_live(&self) -> bool {
        self.revoked_at_ms.is_none()
    }
}

impl TenantInfo {
    /// The tenant's live keys.
    pub fn live_keys(&self) -> impl Iterator<Item = &TenantKey> {
        self.keys.iter().filter(|k| k.is_live())
    }

    /// Turns digests from records written before keys had scopes into keys with every scope
    /// but read-only (what such a key could do).
    pub fn upgrade_legacy_keys(&mut self) {
        for hash in std::mem::take(&mut self.key_hashes) {
            self.next_key_id += 1;
            self.keys.push(TenantKey {
                id: self.next_key_id,
                hash,
                scopes: vec![KeyScope::Orders, KeyScope::Print],
                label: "from before keys had scopes".into(),
                hint: String::new(),
                created_at_ms: self.created_at_ms,
                revoked_at_ms: None,
            });
        }
    }

    /// Adds a key; the id it got.
    pub fn add_key(&mut self, mut key: TenantKey) -> Result<u64, MetaError> {
        if self.keys.iter().any(|k| k.hash == key.hash) {
            return Err(MetaError::BadSetting {
                field: "api_key".into(),
                reason: "the tenant already has this key".into(),
            });
        }
        if self.live_keys().count() >= MAX_KEYS_PER_TENANT {
            return Err(MetaError::BadSetting {
                field: "tenant".into(),
                reason: format!(
                    "tenant {} already has {MAX_KEYS_PER_TENANT} live keys, the most it may; revoke some first",
                    self.name
                ),
            });
        }
        self.next_key_id += 1;
        key.id = self.next_key_id;
        self.keys.push(key);
        // Bounded: the oldest revoked records go first.
        while self.keys.len() > MAX_KEY_RECORDS {
            match self.keys.iter().position(|k| !k.is_live()) {
                Some(i) => {
                    self.keys.remove(i);
                }
                None => break,
            }
        }
        Ok(self.next_key_id)
    }

    /// Revokes key `id`; the key as it now is.
    pub fn revoke_key(&mut self, id: u64, at_ms: u64) -> Result<TenantKey, MetaError> {
        let name = self.name.clone();
        let key = self
            .keys
            .iter_mut()
            .find(|k| k.id == id)
            .ok_or(MetaError::UnknownKey { tenant: name, id })?;
        if key.revoked_at_ms.is_none() {
            key.revoked_at_ms = Some(at_ms);
        }
        Ok(key.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant() -> TenantInfo {
        TenantInfo {
            id: 1,
            name: "杭州小店".into(),
            created_at_ms: 1,
            key_hashes: vec!["legacy".into()],
            rules_toml: String::new(),
            rules_version: 0,
            keys: Vec::new(),
            next_key_id: 0,
            create_token_hash: String::new(),
            limits: Default::default(),
        }
    }

    fn key(hash: &str, scopes: &[KeyScope]) -> TenantKey {
        TenantKey {
            id: 0,
            hash: hash.into(),
            scopes: scopes.to_vec(),
            label: "ERP 杭州".into(),
            hint: "sk_12345".into(),
            created_at_ms: 2,
            revoked_at_ms: None,
        }
    }

    #[test]
    fn keys_are_added_bounded_and_revoked() {
        let mut t = tenant();
        t.upgrade_legacy_keys();
        assert!(t.key_hashes.is_empty());
        assert_eq!(t.keys[0].scopes, [KeyScope::Orders, KeyScope::Print]);
        assert_eq!(t.add_key(key("p", &[KeyScope::Print])), Ok(2));
        assert!(
            t.add_key(key("p", &[KeyScope::Orders])).is_err(),
            "a key twice"
        );
        let revoked = t.revoke_key(2, 9).expect("revoke");
        assert_eq!(revoked.revoked_at_ms, Some(9));
        assert_eq!(t.live_keys().count(), 1);
        assert!(matches!(
            t.revoke_key(7, 9),
            Err(MetaError::UnknownKey { id: 7, .. })
        ));
        for i in 0..(MAX_KEYS_PER_TENANT - 1) {
            t.add_key(key(&format!("k{i}"), &[KeyScope::ReadOnly]))
                .expect("room");
        }
        let full = t.add_key(key("one-more", &[KeyScope::ReadOnly]));
        assert!(matches!(full, Err(MetaError::BadSetting { field, .. }) if field == "tenant"));
        assert!(t.keys.len() <= MAX_KEY_RECORDS);
        for scope in KeyScope::ALL {
            assert_eq!(KeyScope::parse(scope.as_str()), Some(scope));
        }
    }
}
