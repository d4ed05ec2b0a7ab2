//! `surgectl token`, `surgectl audit` and `surgectl tenant key`: who may call the admin API,
//! what they changed, and the tenants' API keys.

use surge_grpc::v1::{
    AddTenantKeyRequest, AuditRecord, CreateTokenRequest, ListAuditRequest, ListTenantKeysRequest,
    ListTokensRequest, OperatorTokenInfo, RevokeTenantKeyRequest, RevokeTokenRequest,
    TenantKeyInfo,
};

use crate::calls::admin;
use crate::cli::{KeyCmd, TokenCmd};
use crate::human::local_time;
use crate::output::{emit, print_json, print_table, Format};

pub(crate) async fn token(
    coordinators: &[String],
    format: Format,
    cmd: TokenCmd,
) -> anyhow::Result<()> {
    match cmd {
        TokenCmd::Create { name, role } => {
            let req = CreateTokenRequest { name, role };
            let resp = admin(coordinators, "token create", req, |mut c, r| async move {
                c.create_token(r).await
            })
            .await?;
            let info = resp.info.unwrap_or_default();
            match format {
                Format::Json => print_json(&serde_json::json!({
                    "token": resp.token, "info": token_json(&info),
                })),
                Format::Table => {
                    emit(&format!(
                        "token {} ({}, {}) created",
                        info.id, info.name, info.role
                    ));
                    emit(&format!("token: {}", resp.token));
                    emit("(shown once: surge keeps only its hash)");
                }
            }
        }
        TokenCmd::List { all } => {
            let req = ListTokensRequest {
                include_revoked: all,
            };
            let resp = admin(coordinators, "token list", req, |mut c, r| async move {
                c.list_tokens(r).await
            })
            .await?;
            print_tokens(format, &resp.tokens);
        }
        TokenCmd::Revoke { id } => {
            let req = RevokeTokenRequest { id };
            let info = admin(coordinators, "token revoke", req, |mut c, r| async move {
                c.revoke_token(r).await
            })
            .await?;
            match format {
                Format::Json => print_json(&token_json(&info)),
                Format::Table => emit(&format!(
                    "token {} ({}, {}) revoked at {}",
                    info.id,
                    info.name,
                    info.role,
                    local_time(info.revoked_at_ms)
                )),
            }
        }
    }
    Ok(())
}

fn token_json(t: &OperatorTokenInfo) -> serde_json::Value {
    serde_json::json!({
        "id": t.id, "name": t.name, "role": t.role, "created_at_ms": t.created_at_ms,
        "created_by": t.created_by, "revoked_at_ms": t.revoked_at_ms,
    })
}

fn print_tokens(format: Format, tokens: &[OperatorTokenInfo]) {
    match format {
        Format::Json => print_json(&tokens.iter().map(token_json).collect::<Vec<_>>()),
        Format::Table => {
            let rows: Vec<Vec<String>> = tokens
                .iter()
                .map(|t| {
                    vec![
                        t.id.to_string(),
                        t.name.clone(),
                        t.role.clone(),
                        local_time(t.created_at_ms),
                        t.created_by.clone(),
                        local_time(t.revoked_at_ms),
                    ]
                })
                .collect();
            print_table(&["ID", "NAME", "ROLE", "CREATED", "BY", "REVOKED"], &rows);
        }
    }
}

pub(crate) async fn audit_list(
    coordinators: &[String],
    format: Format,
    limit: u32,
    before: u64,
) -> anyhow::Result<()> {
    let req = ListAuditRequest {
        limit,
        before_seq: before,
    };
    let resp = admin(coordinators, "audit list", req, |mut c, r| async move {
        c.list_audit(r).await
    })
    .await?;
    print_audit(format, &resp.records);
    Ok(())
}

fn print_audit(format: Format, records: &[AuditRecord]) {
    match format {
        Format::Json => print_json(
            &records
                .iter()
                .map(|r| {
                    serde_json::json!({
                        "seq": r.seq, "at_ms": r.at_ms, "actor": r.actor, "from": r.from,
                        "action": r.action, "detail": r.detail, "outcome": r.outcome,
                    })
                })
                .collect::<Vec<_>>(),
        ),
        Format::Table => {
            let rows: Vec<Vec<String>> = records
                .iter()
                .map(|r| {
                    vec![
                        r.seq.to_string(),
                        local_time(r.at_ms),
                        r.actor.clone(),
                        r.from.clone(),
                        r.action.clone(),
                        r.detail.clone(),
                        r.outcome.clone(),
                    ]
                })
                .collect();
            print_table(
                &["SEQ", "AT", "WHO", "FROM", "ACTION", "DETAIL", "OUTCOME"],
                &rows,
            );
        }
    }
}

pub(crate) async fn tenant_key(
    coordinators: &[String],
    format: Format,
    cmd: KeyCmd,
) -> anyhow::Result<()> {
    match cmd {
        KeyCmd::Add {
            tenant,
            scopes,
            label,
        } => {
            let req = AddTenantKeyRequest {
                tenant,
                scopes,
                label,
            };
            let resp = admin(coordinators, "tenant key add", req, |mut c, r| async move {
                c.add_tenant_key(r).await
            })
            .await?;
            let key = resp.key.unwrap_or_default();
            match format {
                Format::Json => print_json(&serde_json::json!({
                    "tenant_id": resp.tenant_id, "api_key": resp.api_key, "key": key_json(&key),
                })),
                Format::Table => {
                    emit(&format!(
                        "key {} of tenant {} ({}) created",
                        key.id,
                        resp.tenant_id,
                        key.scopes.join(", ")
                    ));
                    emit(&format!("api key: {}", resp.api_key));
                    emit("(shown once: surge keeps only its hash)");
                }
            }
        }
        KeyCmd::List { tenant, all } => {
            let req = ListTenantKeysRequest {
                tenant,
                include_revoked: all,
            };
            let resp = admin(
                coordinators,
                "tenant key list",
                req,
                |mut c, r| async move { c.list_tenant_keys(r).await },
            )
            .await?;
            print_keys(format, &resp.keys);
        }
        KeyCmd::Revoke { tenant, id } => {
            let req = RevokeTenantKeyRequest { tenant, id };
            let key = admin(
                coordinators,
                "tenant key revoke",
                req,
                |mut c, r| async move { c.revoke_tenant_key(r).await },
            )
            .await?;
            match format {
                Format::Json => print_json(&key_json(&key)),
                Format::Table => emit(&format!(
                    "key {} ({}) revoked at {}; nodes refuse it from their next heartbeat",
                    key.id,
                    key.hint,
                    local_time(key.revoked_at_ms)
                )),
            }
        }
    }
    Ok(())
}

fn key_json(k: &TenantKeyInfo) -> serde_json::Value {
    serde_json::json!({
        "id": k.id, "scopes": k.scopes, "label": k.label, "hint": k.hint,
        "created_at_ms": k.created_at_ms, "revoked_at_ms": k.revoked_at_ms,
    })
}

fn print_keys(format: Format, keys: &[TenantKeyInfo]) {
    match format {
        Format::Json => print_json(&keys.iter().map(key_json).collect::<Vec<_>>()),
        Format::Table => {
            let rows: Vec<Vec<String>> = keys
                .iter()
                .map(|k| {
                    vec![
                        k.id.to_string(),
                        k.scopes.join(","),
                        k.hint.clone(),
                        k.label.clone(),
                        local_time(k.created_at_ms),
                        local_time(k.revoked_at_ms),
                    ]
                })
                .collect();
            print_table(
                &["ID", "SCOPES", "HINT", "LABEL", "CREATED", "REVOKED"],
                &rows,
            );
        }
    }
}
