//! API keys: GET/POST /v1/keys and DELETE /v1/keys/{id}. A key is journaled as an event;
//! the key table follows the journal, so a new key works as soon as it is written.

use axum::Json;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use kernos_core::NewEvent;
use serde_json::json;

use crate::St;
use crate::auth::{KEY_CREATED, KEY_REVOKED, KeyInfo, Principal};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Body, Q};
use crate::wire::{KeyCreate, KeyCreated, KeyListParams};

/// The organisation whose keys a request is about: the caller's own unless the host operator
/// names another.
fn keys_org(p: &Principal, org: Option<&str>) -> ApiResult<String> {
    match org {
        None => Ok(p.org.clone()),
        Some(o) if o == p.org => Ok(o.to_owned()),
        Some(o) if p.is_host_operator() => {
            crate::auth::validate_org(o).map_err(ApiError::unprocessable)?;
            Ok(o.to_owned())
        }
        Some(_) => Err(ApiError::forbidden(format!(
            "keys of another organisation are not yours to manage; you manage org {}",
            p.org
        ))),
    }
}

/// GET /v1/keys.
pub(super) async fn list_keys(
    axum::extract::State(st): axum::extract::State<St>,
    p: Principal,
    Q(q): Q<KeyListParams>,
) -> ApiResult<Json<Vec<KeyInfo>>> {
    let org = keys_org(&p, q.org.as_deref())?;
    let keys = st
        .keys
        .read()
        .map_err(|_| ApiError::internal("key table unavailable; retry"))?
        .list(Some(&org));
    Ok(Json(keys))
}

/// POST /v1/keys.
pub(super) async fn create_key(
    axum::extract::State(st): axum::extract::State<St>,
    p: Principal,
    Body(req): Body<KeyCreate>,
) -> ApiResult<Response> {
    let org = keys_org(&p, req.org.as_deref())?;
    if req.role > p.role {
        return Err(ApiError::forbidden(format!(
            "role {} may create keys up to {}, not {}",
            p.role, p.role, req.role
        )));
    }
    let label = req.label.unwrap_or_default();
    if label.len() > 200 {
        return Err(ApiError::unprocessable("label is longer than 200 bytes"));
    }
    let k =
        crate::auth::generate_key(&org, req.role, &label, &p).map_err(ApiError::unprocessable)?;
    st.append(
        NewEvent::new(KEY_CREATED, p.actor.clone())
            .org(&org)
            .payload(k.payload.clone()),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(KeyCreated {
            key: k.secret,
            id: k.id,
            org,
            role: req.role,
            label,
        }),
    )
        .into_response())
}

/// DELETE /v1/keys/{id}.
pub(super) async fn revoke_key(
    axum::extract::State(st): axum::extract::State<St>,
    p: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<KeyInfo>> {
    let found = st
        .keys
        .read()
        .map_err(|_| ApiError::internal("key table unavailable; retry"))?
        .get(&id)
        .cloned();
    let Some(k) = found.filter(|k| k.org == p.org || p.is_host_operator()) else {
        return Err(ApiError::not_found(format!(
            "no key {id} in org {}; list keys with GET /v1/keys",
            p.org
        )));
    };
    if k.role > p.role {
        return Err(ApiError::forbidden(format!(
            "key {id} has role {}; role {} may not revoke it",
            k.role, p.role
        )));
    }
    if k.revoked {
        return Err(ApiError::conflict(format!("key {id} is already revoked")));
    }
    st.append(
        NewEvent::new(KEY_REVOKED, p.actor.clone())
            .org(&k.org)
            .payload(json!({
                "key_id": id, "org": k.org, "role": k.role, "label": k.label,
                "actor": p.actor, "actor_org": p.org, "actor_role": p.role, "source": p.source,
                "before": {"revoked": false}, "after": {"revoked": true},
            })),
    )
    .await?;
    let mut k = k;
    k.revoked = true;
    Ok(Json(k))
}
