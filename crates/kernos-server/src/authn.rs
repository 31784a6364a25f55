//! Who is calling, and whether the route lets them: [`authorize`] is layered on every route
//! with the route table's [`Access`], authenticates the caller (API key, or the daemon's own
//! user on the Unix socket), checks the access, and hands the [`Principal`] to the handler.

use std::sync::atomic::Ordering;
use std::time::Instant;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use kernos_core::Actor;

use crate::St;
use crate::auth::{Access, Principal, Role};
use crate::error::ApiError;
use crate::listen::Peer;

/// Checks the route's access before its handler runs; the handler then extracts the
/// [`Principal`] this leaves in the request. Public routes authenticate nobody (and so spend
/// no rate-limit token).
pub(crate) async fn authorize(
    axum::extract::State((st, access)): axum::extract::State<(St, Access)>,
    req: axum::extract::Request,
    next: Next,
) -> Response {
    if access == Access::Public {
        return next.run(req).await;
    }
    let (mut parts, body) = req.into_parts();
    let who = match authenticate(&parts, &st).and_then(|p| access.check(&p).map(|()| p)) {
        Ok(p) => p,
        Err(e) => {
            // Refused before the handler read the body: read it (up to the limit) and drop it,
            // so a keep-alive client's next request (its retry after a 429) finds the
            // connection usable instead of closed under it.
            let _ = axum::body::to_bytes(body, st.config.body_limit).await;
            return e.into_response();
        }
    };
    parts.extensions.insert(who);
    next.run(axum::extract::Request::from_parts(parts, body))
        .await
}

/// The caller, as `authorize` found it.
impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        parts.extensions.remove::<Principal>().ok_or_else(|| {
            ApiError::internal(
                "this endpoint has no access check in the route table; report it as a bug",
            )
        })
    }
}

/// The presented API key (`Authorization: Bearer`, or `X-Api-Key`), or the Unix peer.
fn authenticate(parts: &Parts, st: &St) -> Result<Principal, ApiError> {
    let peer = parts
        .extensions
        .get::<ConnectInfo<Peer>>()
        .map(|c| c.0.clone());
    let source = peer
        .as_ref()
        .map(|p| p.to_string())
        .unwrap_or_else(|| "unknown".into());
    if let Some(k) = presented_key(parts) {
        return by_key(st, k, source);
    }
    if let Some(Peer::Unix { uid, .. }) = peer {
        if uid == st.uid {
            return Ok(Principal {
                actor: st.local_actor.clone(),
                org: kernos_core::LOCAL_ORG.into(),
                role: Role::Owner,
                key_id: None,
                source,
            });
        }
        return Err(ApiError::unauthorized(format!(
            "uid {uid} is not the daemon's user; send Authorization: Bearer <key>"
        )));
    }
    Err(ApiError::unauthorized(
        "send Authorization: Bearer <key>; an admin creates keys with `kernos keys create --org ORG --role ROLE`",
    ))
}

fn presented_key(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        // The scheme is case-insensitive (RFC 9110 §11.1): `Bearer`, `bearer`, `BEARER`.
        .and_then(|v| {
            let (scheme, rest) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then_some(rest)
        })
        .map(str::trim)
        .or_else(|| {
            parts
                .headers
                .get("x-api-key")
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
        })
}

/// A key's principal, once the key is known and its rate limit allows the request.
fn by_key(st: &St, key: &str, source: String) -> Result<Principal, ApiError> {
    let found = st
        .keys
        .read()
        .map_err(|_| ApiError::internal("key table unavailable; restart the daemon"))?
        .authenticate(key)
        .map(|k| (k.id.clone(), k.org.clone(), k.role));
    let Some((id, org, role)) = found else {
        return Err(ApiError::unauthorized(
            "the API key is unknown or revoked; ask an admin for a new one (kernos keys create --org ORG --role ROLE)",
        ));
    };
    let limited = st
        .limiter
        .lock()
        .map_err(|_| ApiError::internal("rate limiter unavailable; retry"))?
        .check(&id, Instant::now());
    if let Err(wait) = limited {
        st.metrics.rate_limited.fetch_add(1, Ordering::Relaxed);
        return Err(ApiError::too_many(
            "rate-limited",
            format!(
                "this key sent more than {} requests per second (burst {}); wait {wait} s and retry, or spread requests out",
                st.config.rate_per_sec, st.config.rate_burst
            ),
            wait,
        ));
    }
    Ok(Principal {
        actor: Actor(format!("key:{id}")),
        org,
        role,
        key_id: Some(id),
        source,
    })
}
