//! Who is calling `AdminService`: the operator token in `authorization: Bearer <token>`, looked
//! up by its SHA-256 at the leader (so a revoked token stops at once), and the role it needs.
//! Node certificates are refused outright: nodes have no business with the admin API.

use crate::access::{AuditEntry, TokenRole};
use surge_grpc::tls::{Caller, Role};
use surge_grpc::ApiError;
use surge_proto::auth::{bearer, key_digest, AUTHORIZATION};
use surge_proto::{FORWARDED_FOR_METADATA, FORWARDED_METADATA};
use tonic::{Request, Status};

use crate::coordinator::{now_ms, Coordinator};
use crate::meta_state::META_GROUP;

/// Shortest and longest operator token, and its characters.
pub const MIN_TOKEN: usize = 32;
pub const MAX_TOKEN: usize = 128;

/// The caller of an admin call, once its token checked out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    /// "token 3 (ops-oncall, operator)", or "bootstrap".
    pub name: String,
    pub from: String,
}

impl Actor {
    /// The audit entry for `action` (an AdminService method) on `detail`.
    pub fn audit(&self, action: &str, detail: impl Into<String>) -> AuditEntry {
        AuditEntry {
            actor: self.name.clone(),
            from: self.from.clone(),
            action: action.to_string(),
            detail: detail.into(),
            at_ms: now_ms(),
        }
    }
}

/// A fresh operator token: 256 random bits from the operating system, hex, with a prefix that
/// says what it is (and that secret scanners can match).
pub use surge_proto::auth::new_operator_token as new_token;

/// A token a caller made (the first admin token, sent with `cluster init`) has its shape.
pub fn check_token(field: &str, token: &str) -> Result<(), Status> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-');
    if !(MIN_TOKEN..=MAX_TOKEN).contains(&token.len()) || !token.chars().all(ok_char) {
        return Err(ApiError::invalid_argument(
            field,
            format!("{MIN_TOKEN} to {MAX_TOKEN} characters of A-Z a-z 0-9 _ -"),
        )
        .into());
    }
    Ok(())
}

/// Where the call came from: the forwarding coordinator's word for a forwarded call (only a
/// coordinator certificate's, or in plaintext), else the connection's remote address.
pub fn origin<T>(request: &Request<T>, caller: &Caller) -> String {
    let trusted = match caller {
        Caller::Peer(id) => id.role == Role::Coordinator,
        Caller::Plaintext => true,
        Caller::Anonymous => false,
    };
    let forwarded_for = request
        .metadata()
        .get(FORWARDED_FOR_METADATA)
        .and_then(|v| v.to_str().ok())
        .filter(|_| trusted && request.metadata().contains_key(FORWARDED_METADATA))
        .map(|v| v.chars().take(64).collect::<String>());
    match forwarded_for {
        // In plaintext anyone can send the header: say so.
        Some(from) if *caller == Caller::Plaintext => format!("{from} (unverified, plaintext)"),
        Some(from) => from,
        None => request
            .remote_addr()
            .map_or_else(|| "unknown".to_string(), |a| a.to_string()),
    }
}

/// Refuses a call on a node's certificate, wherever it arrives (a follower, too: forwarded,
/// the leader would see the follower's certificate); the caller otherwise.
pub fn refuse_nodes<T>(request: &Request<T>, method: &str) -> Result<Caller, Status> {
    let caller = Caller::of(request);
    match &caller {
        Caller::Peer(id) if id.role == Role::Node => Err(ApiError::permission_denied(format!(
            "{method}: {id} is a node certificate; AdminService is for operators"
        ))
        .into()),
        _ => Ok(caller),
    }
}

/// Checks the call's token grants `needed`, at the leader; the actor for the audit trail.
pub async fn authorize<T>(
    c: &Coordinator,
    request: &Request<T>,
    needed: TokenRole,
    method: &str,
) -> Result<Actor, Status> {
    let caller = refuse_nodes(request, method)?;
    let token = request
        .metadata()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer);
    // Before init there are no tokens and nothing to see but that: status and lists answer
    // anyone (whatever token they carry), so tools can wait for a leader before they
    // initialize. A cluster initialized before operator tokens existed has none: it lets an
    // operator certificate make the first one, or anyone when it runs in plaintext.
    let (initialized, tokenless) = c
        .handle
        .read(META_GROUP, |sm| {
            (sm.cluster.is_some(), sm.access.tokens.is_empty())
        })
        .await
        .map_err(|e| c.map_request(e))?;
    if !initialized && needed == TokenRole::Viewer {
        return Ok(Actor {
            name: "anyone (the cluster is not initialized)".to_string(),
            from: origin(request, &caller),
        });
    }
    let operator_certificate = match &caller {
        Caller::Peer(id) => id.role == Role::Operator,
        Caller::Plaintext => true,
        Caller::Anonymous => false,
    };
    if initialized && tokenless && method == "CreateToken" && operator_certificate {
        return Ok(Actor {
            name: format!("{} (the cluster had no operator token)", caller.describe()),
            from: origin(request, &caller),
        });
    }
    let Some(token) = token else {
        return Err(ApiError::unauthenticated(format!(
            "authorization: {method} needs an operator token (`Bearer <token>`); pass --token \
             or SURGE_TOKEN (`cluster init` printed the first admin token)"
        ))
        .into());
    };
    let hash = key_digest(token);
    let found = c
        .handle
        .read(META_GROUP, move |sm| sm.access.by_hash(&hash).cloned())
        .await
        .map_err(|e| c.map_request(e))?;
    let Some(found) = found else {
        return Err(
            ApiError::unauthenticated("authorization: unknown or revoked operator token").into(),
        );
    };
    if !found.role.allows(needed) {
        return Err(ApiError::permission_denied(format!(
            "{method} needs the {} role; token {} ({}) is {}",
            needed.as_str(),
            found.id,
            found.name,
            found.role.as_str()
        ))
        .into());
    }
    Ok(Actor {
        name: format!(
            "token {} ({}, {})",
            found.id,
            found.name,
            found.role.as_str()
        ),
        from: origin(request, &caller),
    })
}

/// The actor of the init that creates the cluster: there is no token before it.
pub fn bootstrap<T>(request: &Request<T>) -> Actor {
    Actor {
        name: "bootstrap".to_string(),
        from: origin(request, &Caller::of(request)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_tokens_have_256_bits_and_their_shape_is_checked() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b);
        assert_eq!(a.len(), 4 + 64);
        assert!(check_token("admin_token", &a).is_ok());
        for bad in [
            "short",
            &"x".repeat(MAX_TOKEN + 1),
            &format!("{a} "),
            &format!("令牌{a}"),
        ] {
            let e = check_token("admin_token", bad)
                .err()
                .map(|s| s.message().to_string());
            assert!(e.is_some_and(|m| m.starts_with("admin_token:")), "{bad:?}");
        }
    }

    #[test]
    fn a_forwarded_origin_is_believed_only_from_a_coordinator() {
        let mut request = Request::new(());
        request
            .metadata_mut()
            .insert(FORWARDED_METADATA, "1".parse().expect("ascii"));
        request.metadata_mut().insert(
            FORWARDED_FOR_METADATA,
            "10.1.2.3:40000".parse().expect("ascii"),
        );
        let coordinator = Caller::Peer(surge_grpc::tls::PeerIdentity::coordinator(2));
        assert_eq!(origin(&request, &coordinator), "10.1.2.3:40000");
        assert_eq!(origin(&request, &Caller::Anonymous), "unknown");
        let node = Caller::Peer(surge_grpc::tls::PeerIdentity::new(Role::Node, "node-4"));
        assert_eq!(origin(&request, &node), "unknown");
        assert_eq!(
            origin(&request, &Caller::Plaintext),
            "10.1.2.3:40000 (unverified, plaintext)"
        );
    }
}
