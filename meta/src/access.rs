//! Who may run the cluster: operator tokens (kept as SHA-256 digests only) with their roles,
//! and the audit trail of every admin change. Both are replicated rows; an audit record is
//! written by the same log entry as the change it describes ([`crate::meta::Command::Audited`]),
//! so the change and its record are applied, or lost, together.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};
use surge_storage::{Cf, WriteBatch};

use crate::meta::{MetaError, Output, Reply};
use crate::meta_rows::{
    id_key, put_json, single_key, AUDIT_PREFIX, NEXT_AUDIT_KEY, NEXT_TOKEN_KEY, TOKEN_PREFIX,
};

/// Live (unrevoked) tokens a cluster holds at most: each is a row every leader keeps in memory.
pub const MAX_TOKENS: usize = 1_000;
/// Audit records kept; the oldest is deleted in the batch that writes a newer one.
pub const AUDIT_KEEP: usize = 10_000;
/// Longest token name and audit text fields, in bytes.
pub const MAX_NAME: usize = 64;
pub const MAX_AUDIT_TEXT: usize = 512;

/// What a token may do. Each role may do everything the ones below it may.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum TokenRole {
    /// Status and lists.
    Viewer,
    /// Nodes, drains, rules, waybill ranges, operators, cluster settings.
    Operator,
    /// Init, tenants, tokens, coordinators, the audit trail.
    Admin,
}

impl TokenRole {
    pub const ALL: [TokenRole; 3] = [TokenRole::Admin, TokenRole::Operator, TokenRole::Viewer];

    pub fn as_str(self) -> &'static str {
        match self {
            TokenRole::Admin => "admin",
            TokenRole::Operator => "operator",
            TokenRole::Viewer => "viewer",
        }
    }

    pub fn parse(text: &str) -> Option<TokenRole> {
        TokenRole::ALL.into_iter().find(|r| r.as_str() == text)
    }

    /// Whether a token of this role may do what `needed` may.
    pub fn allows(self, needed: TokenRole) -> bool {
        self >= needed
    }
}

/// An operator token. The token itself is shown once, when it is made; this is all surge keeps.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorToken {
    pub id: u64,
    pub name: String,
    pub role: TokenRole,
    /// SHA-256 of the token, lowercase hex.
    pub hash: String,
    pub created_at_ms: u64,
    /// Who made it, as the audit trail names callers.
    pub created_by: String,
    #[serde(default)]
    pub revoked_at_ms: Option<u64>,
}

/// Who made an admin change, what it was and from where; the leader fills it in before it
/// proposes the change, and the apply adds the sequence number and the outcome.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// "token 3 (ops-oncall, operator)", or "bootstrap" for `cluster init`.
    pub actor: String,
    /// The caller's address, as the coordinator that took the call saw it.
    pub from: String,
    /// The AdminService method, e.g. "DrainNode".
    pub action: String,
    /// The arguments that matter, never a secret: "node 4", "tenant 2 rules".
    pub detail: String,
    pub at_ms: u64,
}

/// An applied audit entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub seq: u64,
    #[serde(flatten)]
    pub entry: AuditEntry,
    /// "ok", or why the change was refused.
    pub outcome: String,
}

/// Tokens and the audit trail, as the state machine holds them.
#[derive(Debug, Default)]
pub struct AccessBook {
    pub tokens: BTreeMap<u64, OperatorToken>,
    /// Live tokens by hash.
    by_hash: BTreeMap<String, u64>,
    next_token_id: u64,
    /// The most recent records, oldest first.
    pub audit: VecDeque<AuditRecord>,
    next_audit_seq: u64,
}

fn clip(text: &str, limit: usize) -> String {
    if text.len() <= limit {
        return text.to_string();
    }
    let mut end = limit;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

impl AccessBook {
    /// Rebuilds the book from its rows.
    pub fn from_rows(
        tokens: Vec<OperatorToken>,
        audit: Vec<AuditRecord>,
        next_token_id: Option<u64>,
        next_audit_seq: Option<u64>,
    ) -> AccessBook {
        let mut book = AccessBook {
            next_token_id: next_token_id.unwrap_or(1),
            next_audit_seq: next_audit_seq.unwrap_or(1),
            ..AccessBook::default()
        };
        for token in tokens {
            if token.revoked_at_ms.is_none() {
                book.by_hash.insert(token.hash.clone(), token.id);
            }
            book.tokens.insert(token.id, token);
        }
        book.audit = audit.into();
        book
    }

    /// The live token with this hash.
    pub fn by_hash(&self, hash: &str) -> Option<&OperatorToken> {
        self.by_hash.get(hash).and_then(|id| self.tokens.get(id))
    }

    pub fn create_token(
        &mut self,
        name: String,
        role: TokenRole,
        hash: String,
        created_by: String,
        at_ms: u64,
        batch: &mut WriteBatch,
    ) -> Output {
        if name.is_empty() || name.len() > MAX_NAME {
            return Err(MetaError::BadSetting {
                field: "name".into(),
                reason: format!("1 to {MAX_NAME} bytes"),
            });
        }
        if let Some(existing) = self.by_hash(&hash) {
            // A retry of the same create (the same token): the same answer.
            return Ok(Reply::TokenCreated { id: existing.id });
        }
        if self.by_hash.len() >= MAX_TOKENS {
            return Err(MetaError::BadSetting {
                field: "name".into(),
                reason: format!(
                    "the cluster already has {MAX_TOKENS} live tokens, the most it keeps; revoke some first"
                ),
            });
        }
        let token = OperatorToken {
            id: self.next_token_id,
            name,
            role,
            hash,
            created_at_ms: at_ms,
            created_by,
            revoked_at_ms: None,
        };
        self.next_token_id += 1;
        put_json(batch, id_key(TOKEN_PREFIX, token.id), &token);
        put_json(batch, single_key(NEXT_TOKEN_KEY), &self.next_token_id);
        self.by_hash.insert(token.hash.clone(), token.id);
        let id = token.id;
        self.tokens.insert(id, token);
        Ok(Reply::TokenCreated { id })
    }

    /// Revokes token `id`. The last live admin token cannot be revoked: nobody could make
    /// another.
    pub fn revoke_token(&mut self, id: u64, at_ms: u64, batch: &mut WriteBatch) -> Output {
        let live_admins = self
            .tokens
            .values()
            .filter(|t| t.role == TokenRole::Admin && t.revoked_at_ms.is_none())
            .count();
        let token = self
            .tokens
            .get_mut(&id)
            .ok_or(MetaError::UnknownToken(id))?;
        if token.revoked_at_ms.is_none() {
            if token.role == TokenRole::Admin && live_admins <= 1 {
                return Err(MetaError::LastAdminToken(id));
            }
            token.revoked_at_ms = Some(at_ms);
            self.by_hash.remove(&token.hash);
            put_json(batch, id_key(TOKEN_PREFIX, id), &*token);
        }
        Ok(Reply::Token(Box::new(token.clone())))
    }

    /// Appends an audit record for `entry` with the outcome of its change, in `batch`.
    pub fn record(&mut self, entry: AuditEntry, outcome: &Output, batch: &mut WriteBatch) {
        let entry = AuditEntry {
            actor: clip(&entry.actor, MAX_AUDIT_TEXT),
            from: clip(&entry.from, MAX_AUDIT_TEXT),
            action: clip(&entry.action, MAX_AUDIT_TEXT),
            detail: clip(&entry.detail, MAX_AUDIT_TEXT),
            at_ms: entry.at_ms,
        };
        let record = AuditRecord {
            seq: self.next_audit_seq,
            entry,
            outcome: match outcome {
                Ok(_) => "ok".to_string(),
                Err(e) => clip(&e.to_string(), MAX_AUDIT_TEXT),
            },
        };
        self.next_audit_seq += 1;
        put_json(batch, id_key(AUDIT_PREFIX, record.seq), &record);
        put_json(batch, single_key(NEXT_AUDIT_KEY), &self.next_audit_seq);
        self.audit.push_back(record);
        while self.audit.len() > AUDIT_KEEP {
            if let Some(old) = self.audit.pop_front() {
                batch.delete(Cf::META, id_key(AUDIT_PREFIX, old.seq));
            }
        }
    }

    /// Up to `limit` records older than `before` (0: the newest), newest first.
    pub fn recent(&self, before: u64, limit: usize) -> Vec<AuditRecord> {
        self.audit
            .iter()
            .rev()
            .filter(|r| before == 0 || r.seq < before)
            .take(limit)
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(action: &str) -> AuditEntry {
        AuditEntry {
            actor: "token 1 (admin, admin)".into(),
            from: "127.0.0.1:5000".into(),
            action: action.into(),
            detail: "节点 4".into(),
            at_ms: 7,
        }
    }

    #[test]
    fn roles_are_ordered() {
        assert!(TokenRole::Admin.allows(TokenRole::Operator));
        assert!(TokenRole::Operator.allows(TokenRole::Viewer));
        assert!(!TokenRole::Viewer.allows(TokenRole::Operator));
        assert!(!TokenRole::Operator.allows(TokenRole::Admin));
        for role in TokenRole::ALL {
            assert_eq!(TokenRole::parse(role.as_str()), Some(role));
        }
        assert_eq!(TokenRole::parse("root"), None);
    }

    #[test]
    fn tokens_are_made_found_and_revoked_and_the_last_admin_stays() {
        let mut book = AccessBook::from_rows(Vec::new(), Vec::new(), None, None);
        let mut batch = WriteBatch::default();
        let admin = book.create_token(
            "first".into(),
            TokenRole::Admin,
            "a".repeat(64),
            "bootstrap".into(),
            1,
            &mut batch,
        );
        assert_eq!(admin, Ok(Reply::TokenCreated { id: 1 }));
        // The same token again: the same answer, no second row.
        let again = book.create_token(
            "first".into(),
            TokenRole::Admin,
            "a".repeat(64),
            "bootstrap".into(),
            2,
            &mut batch,
        );
        assert_eq!(again, Ok(Reply::TokenCreated { id: 1 }));
        book.create_token(
            "看板".into(),
            TokenRole::Viewer,
            "b".repeat(64),
            "token 1".into(),
            3,
            &mut batch,
        )
        .expect("viewer");
        assert_eq!(
            book.by_hash(&"b".repeat(64)).map(|t| t.role),
            Some(TokenRole::Viewer)
        );
        assert_eq!(
            book.revoke_token(1, 4, &mut batch),
            Err(MetaError::LastAdminToken(1))
        );
        assert!(book.revoke_token(2, 5, &mut batch).is_ok());
        assert!(book.by_hash(&"b".repeat(64)).is_none());
        assert_eq!(
            book.revoke_token(9, 5, &mut batch),
            Err(MetaError::UnknownToken(9))
        );
        let long = book.create_token(
            String::new(),
            TokenRole::Viewer,
            "c".repeat(64),
            "x".into(),
            6,
            &mut batch,
        );
        assert!(matches!(long, Err(MetaError::BadSetting { field, .. }) if field == "name"));
    }

    #[test]
    fn the_audit_trail_is_bounded_and_read_newest_first() {
        let mut book = AccessBook::from_rows(Vec::new(), Vec::new(), None, None);
        let mut batch = WriteBatch::default();
        for i in 0..(AUDIT_KEEP + 5) {
            let outcome = if i % 2 == 0 {
                Ok(Reply::Done)
            } else {
                Err(MetaError::UnknownNode(4))
            };
            book.record(entry("DrainNode"), &outcome, &mut batch);
        }
        assert_eq!(book.audit.len(), AUDIT_KEEP);
        let newest = book.recent(0, 3);
        assert_eq!(
            newest.iter().map(|r| r.seq).collect::<Vec<_>>(),
            [10_005, 10_004, 10_003]
        );
        assert_eq!(newest[0].outcome, "ok");
        assert!(newest[1].outcome.contains("unknown node 4"));
        assert_eq!(book.recent(10_004, 1)[0].seq, 10_003);
        let clipped = clip(&"运单".repeat(200), MAX_AUDIT_TEXT);
        assert!(clipped.len() <= MAX_AUDIT_TEXT && clipped.starts_with("运单"));
    }
}
