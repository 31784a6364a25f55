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
use crate::sessions;

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
    let checked = authenticate(&parts, &st).and_then(|(p, via)| {
        access.check(&p)?;
        if let Some(v) = &via {
            csrf_check(&parts, v)?;
        }
        Ok((p, via))
    });
    let who = match checked {
        Ok((p, via)) => {
            if let Some(v) = via {
                parts.extensions.insert(v);
            }
            p
        }
        Err(e) => {
            // Refused before the handler read the body: read it (up to the limit) and drop it,
            // so a keep-alive client's next request (its retry after a 429) finds the
            // connection usable instead of closed under it.
            let _ = axum::body::to_bytes(body, st.config().body_limit).await;
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

/// A request authenticated by a browser session (the dashboard's cookie): the session, and
/// its secret, from which its CSRF token is derived.
#[derive(Debug, Clone)]
pub(crate) struct ViaSession {
    /// Session id.
    pub(crate) id: String,
    /// The cookie's secret.
    pub(crate) secret: String,
}

/// A browser session may change something only with its CSRF token: another site can make
/// the browser send the cookie, but cannot read the token.
fn csrf_check(parts: &Parts, via: &ViaSession) -> Result<(), ApiError> {
    if matches!(parts.method.as_str(), "GET" | "HEAD" | "OPTIONS") {
        return Ok(());
    }
    let presented = parts
        .headers
        .get(sessions::CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if sessions::csrf_ok(&via.secret, presented) {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "a change made through a browser session needs the session's X-CSRF-Token header (GET /v1/session gives it)",
        ))
    }
}

/// The session secret in the request's cookie, if any.
fn session_cookie(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(name, _)| *name == sessions::COOKIE)
        .map(|(_, value)| value.trim())
}

/// The presented API key (`Authorization: Bearer`, or `X-Api-Key`), the browser session's
/// cookie, or the Unix peer.
fn authenticate(parts: &Parts, st: &St) -> Result<(Principal, Option<ViaSession>), ApiError> {
    let peer = parts
        .extensions
        .get::<ConnectInfo<Peer>>()
        .map(|c| c.0.clone());
    let source = peer
        .as_ref()
        .map(|p| p.to_string())
        .unwrap_or_else(|| "unknown".into());
    if let Some(k) = presented_key(parts) {
        return by_key(st, k, source).map(|p| (p, None));
    }
    if let Some(secret) = session_cookie(parts) {
        return by_session(st, secret, source);
    }
    if let Some(Peer::Unix { uid, .. }) = peer {
        if uid == st.uid {
            let p = Principal {
                actor: st.local_actor.clone(),
                org: kernos_core::LOCAL_ORG.into(),
                role: Role::Owner,
                key_id: None,
                source,
            };
            return Ok((p, None));
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

/// A session's principal: its key's, while the session is live and the key not revoked.
fn by_session(
    st: &St,
    secret: &str,
    source: String,
) -> Result<(Principal, Option<ViaSession>), ApiError> {
    let now = kernos_core::time::now_ms();
    let found = st
        .sessions
        .read()
        .map_err(|_| ApiError::internal("session table unavailable; restart the daemon"))?
        .authenticate(secret, now)
        .map(|s| (s.id.clone(), s.key_id.clone()));
    let Some((sid, key_id)) = found else {
        return Err(ApiError::unauthorized(
            "the session is unknown, signed out or expired; sign in again with an API key (POST /v1/session)",
        ));
    };
    let key = st
        .keys
        .read()
        .map_err(|_| ApiError::internal("key table unavailable; restart the daemon"))?
        .get(&key_id)
        .filter(|k| !k.revoked)
        .map(|k| (k.org.clone(), k.role));
    let Some((org, role)) = key else {
        return Err(ApiError::unauthorized(
            "the key this session was opened with was revoked; sign in again with a valid key",
        ));
    };
    let p = admit(st, key_id, org, role, format!("{source} session:{sid}"))?;
    let via = ViaSession {
        id: sid,
        secret: secret.to_owned(),
    };
    Ok((p, Some(via)))
}

/// A key's principal, once the key is known and its rate limit allows the request.
pub(crate) fn by_key(st: &St, key: &str, source: String) -> Result<Principal, ApiError> {
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
    admit(st, id, org, role, source)
}

/// The principal of key `id`, if its rate limit allows one more request now.
fn admit(
    st: &St,
    id: String,
    org: String,
    role: Role,
    source: String,
) -> Result<Principal, ApiError> {
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
                st.config().rate_per_sec,
                st.config().rate_burst
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
