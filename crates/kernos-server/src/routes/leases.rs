//! Capability leases: GET/POST /v1/leases, GET/DELETE /v1/leases/{id} and
//! POST /v1/leases/{id}/renew. Every change is journaled as an audit event; the lease table
//! follows the journal, so a grant or a revocation counts from the next step on.

use std::path::Component;

use axum::Json;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use kernos_core::{Capabilities, Lease, LeaseBudget, LeaseScope, NewEvent, Risk};
use serde_json::json;

use crate::St;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Body, Q};
use crate::leases::{LEASE_GRANTED, LEASE_RENEWED, LEASE_REVOKED};
use crate::limits::now_ms;
use crate::wire::{LeaseGrant, LeaseListParams, LeaseRenew, LeaseView};

/// The longest a lease may last: a standing "yes" is meant to be renewed, not forgotten.
const MAX_TTL_S: u64 = 90 * 86_400;
/// At most this many entries in each list of a lease (actions, effects, each kind of scope).
const MAX_ENTRIES: usize = 256;

fn view(lease: Lease) -> LeaseView {
    LeaseView {
        state: lease.state(now_ms()).to_owned(),
        lease,
    }
}

/// A lease of the caller's organisation; another organisation's answers as one that does not
/// exist.
fn own(st: &St, p: &Principal, id: &str) -> ApiResult<Lease> {
    st.leases
        .read()
        .map_err(|_| ApiError::internal("lease table unavailable; retry"))?
        .get(id)
        .filter(|l| l.org == p.org)
        .cloned()
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "no lease {id} in org {}; list leases with GET /v1/leases",
                p.org
            ))
        })
}

/// Fails with 403 unless the caller's role may approve steps of `risk`: nobody grants a
/// standing "yes" for more than they could say yes to themselves.
fn may_grant(p: &Principal, risk: Risk) -> ApiResult<()> {
    match p.role.max_approvable() {
        Some(m) if risk <= m => Ok(()),
        Some(m) => Err(ApiError::forbidden(format!(
            "role {} may grant leases up to {m} risk, not {risk}: ask an admin",
            p.role
        ))),
        None => Err(ApiError::forbidden(format!(
            "role {} approves nothing, so it grants no lease",
            p.role
        ))),
    }
}

/// `ttl_s` as an expiry time from now.
fn expiry(ttl_s: u64) -> ApiResult<i64> {
    if ttl_s == 0 || ttl_s > MAX_TTL_S {
        return Err(ApiError::unprocessable(format!(
            "ttl_s must be between 1 and {MAX_TTL_S} (90 days), got {ttl_s}"
        )));
    }
    Ok(now_ms().saturating_add(i64::try_from(ttl_s * 1000).unwrap_or(i64::MAX)))
}

/// Checks the grantee: `agent:`, `key:` or `schedule:` and an id; a key must be an active key
/// of the caller's organisation.
fn check_grantee(st: &St, p: &Principal, grantee: &str) -> ApiResult<()> {
    let bad = || {
        ApiError::unprocessable(format!(
            "grantee {grantee:?} is not `agent:<id>`, `key:<id>`, `schedule:<id>` or `monitor:<name>` (ids of 1-128 characters of a-z, A-Z, 0-9, '.', '_', '-')"
        ))
    };
    let (kind, id) = grantee.split_once(':').ok_or_else(bad)?;
    let id_ok = !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if !["agent", "key", "schedule", "monitor"].contains(&kind) || !id_ok {
        return Err(bad());
    }
    if kind == "key" {
        let keys = st
            .keys
            .read()
            .map_err(|_| ApiError::internal("key table unavailable; retry"))?;
        if !keys.get(id).is_some_and(|k| k.org == p.org && !k.revoked) {
            return Err(ApiError::unprocessable(format!(
                "no active key {id} in org {}: a lease attaches to a key of your organisation (GET /v1/keys)",
                p.org
            )));
        }
    }
    Ok(())
}

/// Checks what the lease covers and what it may touch.
fn check_contents(caps: &Capabilities, scope: &LeaseScope, budget: &LeaseBudget) -> ApiResult<()> {
    let bad = |m: String| Err(ApiError::unprocessable(m));
    if caps.is_empty() {
        return bad("capabilities name no actions and no effects, so the lease would cover nothing: give `actions` (e.g. \"fs.*\") and/or `effects` (e.g. \"read\")".into());
    }
    for p in &caps.actions {
        let (tool, action) = p.split_once('.').unwrap_or((p.as_str(), ""));
        let word = |s: &str| {
            !s.is_empty()
                && s.len() <= 64
                && s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        };
        let ok = p == "*" || (word(tool) && (action == "*" || word(action)));
        if !ok {
            return bad(format!(
                "action pattern {p:?} is not `tool.action`, `tool.*` or `*`"
            ));
        }
    }
    let lens = [
        caps.actions.len(),
        caps.effects.len(),
        scope.paths.len(),
        scope.services.len(),
        scope.packages.len(),
        scope.hosts.len(),
        scope.ports.len(),
    ];
    if lens.iter().any(|n| *n > MAX_ENTRIES) {
        return bad(format!(
            "a lease lists at most {MAX_ENTRIES} entries of each kind"
        ));
    }
    for path in &scope.paths {
        if !path.is_absolute() || path.components().any(|c| c == Component::ParentDir) {
            return bad(format!(
                "scope path {} must be absolute and without `..`",
                path.display()
            ));
        }
    }
    let names = scope
        .services
        .iter()
        .chain(&scope.packages)
        .chain(&scope.hosts);
    if let Some(n) = names.into_iter().find(|n| n.is_empty() || n.len() > 253) {
        return bad(format!("scope name {n:?} must have 1-253 characters"));
    }
    if scope.ports.contains(&0) {
        return bad("port 0 is not a port".into());
    }
    if budget.max_steps == Some(0) {
        return bad("budget.max_steps must be at least 1".into());
    }
    if budget.max_units.is_some_and(|u| !u.is_finite() || u <= 0.0) {
        return bad("budget.max_units must be a positive number".into());
    }
    Ok(())
}

/// Who changed a lease, as every lease audit event records it.
fn who(p: &Principal) -> serde_json::Value {
    json!({"actor": p.actor, "actor_org": p.org, "actor_role": p.role, "source": p.source})
}

/// Journals a lease event of the caller's organisation, with who made it.
async fn journal(
    st: &St,
    p: &Principal,
    kind: &str,
    mut payload: serde_json::Value,
) -> ApiResult<()> {
    if let (Some(o), serde_json::Value::Object(w)) = (payload.as_object_mut(), who(p)) {
        o.extend(w);
    }
    st.append(
        NewEvent::new(kind, p.actor.clone())
            .org(&p.org)
            .payload(payload),
    )
    .await?;
    Ok(())
}

/// GET /v1/leases.
pub(super) async fn list_leases(
    axum::extract::State(st): axum::extract::State<St>,
    p: Principal,
    Q(q): Q<LeaseListParams>,
) -> ApiResult<Json<Vec<LeaseView>>> {
    let leases = st
        .leases
        .read()
        .map_err(|_| ApiError::internal("lease table unavailable; retry"))?
        .list(&p.org, q.grantee.as_deref());
    Ok(Json(leases.into_iter().map(view).collect()))
}

/// POST /v1/leases.
pub(super) async fn grant_lease(
    axum::extract::State(st): axum::extract::State<St>,
    p: Principal,
    Body(req): Body<LeaseGrant>,
) -> ApiResult<Response> {
    may_grant(&p, req.max_risk)?;
    check_grantee(&st, &p, &req.grantee)?;
    check_contents(&req.capabilities, &req.scope, &req.budget)?;
    let now = now_ms();
    let lease = Lease {
        id: kernos_core::lease::new_lease_id(),
        org: p.org.clone(),
        grantee: req.grantee,
        capabilities: req.capabilities,
        scope: req.scope,
        max_risk: req.max_risk,
        granted_ms: now,
        expires_ms: expiry(req.ttl_s)?,
        budget: req.budget,
        used: Default::default(),
        granted_by: p.actor.0.clone(),
        revoked: false,
    };
    journal(
        &st,
        &p,
        LEASE_GRANTED,
        json!({"lease_id": lease.id, "lease": lease, "after": lease}),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(view(lease))).into_response())
}

/// GET /v1/leases/{id}.
pub(super) async fn show_lease(
    axum::extract::State(st): axum::extract::State<St>,
    p: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<LeaseView>> {
    Ok(Json(view(own(&st, &p, &id)?)))
}

/// POST /v1/leases/{id}/renew.
pub(super) async fn renew_lease(
    axum::extract::State(st): axum::extract::State<St>,
    p: Principal,
    Path(id): Path<String>,
    Body(req): Body<LeaseRenew>,
) -> ApiResult<Json<LeaseView>> {
    let mut lease = own(&st, &p, &id)?;
    may_grant(&p, lease.max_risk)?;
    if lease.revoked {
        return Err(ApiError::conflict(format!(
            "lease {id} is revoked; grant a new one"
        )));
    }
    let expires_ms = expiry(req.ttl_s)?;
    journal(
        &st,
        &p,
        LEASE_RENEWED,
        json!({
            "lease_id": id, "expires_ms": expires_ms,
            "before": {"expires_ms": lease.expires_ms}, "after": {"expires_ms": expires_ms},
        }),
    )
    .await?;
    lease.expires_ms = expires_ms;
    Ok(Json(view(lease)))
}

/// DELETE /v1/leases/{id}.
pub(super) async fn revoke_lease(
    axum::extract::State(st): axum::extract::State<St>,
    p: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<LeaseView>> {
    let mut lease = own(&st, &p, &id)?;
    if lease.revoked {
        return Err(ApiError::conflict(format!("lease {id} is already revoked")));
    }
    journal(
        &st,
        &p,
        LEASE_REVOKED,
        json!({"lease_id": id, "before": {"revoked": false}, "after": {"revoked": true}}),
    )
    .await?;
    lease.revoked = true;
    Ok(Json(view(lease)))
}
