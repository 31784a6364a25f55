//! Browser sessions: POST /v1/session exchanges an API key for an HttpOnly, SameSite=Strict
//! cookie (the dashboard never keeps the key), GET /v1/session says who the caller is and
//! gives a session its CSRF token, DELETE /v1/session signs out.

use axum::Json;
use axum::extract::{ConnectInfo, Extension};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use kernos_core::NewEvent;
use serde_json::json;

use crate::St;
use crate::auth::Principal;
use crate::authn::{ViaSession, by_key};
use crate::error::{ApiError, ApiResult};
use crate::extract::Body;
use crate::listen::Peer;
use crate::sessions::{self, SESSION_CREATED, SESSION_ENDED};
use crate::wire::{SessionView, SignIn};

/// POST /v1/session.
pub(super) async fn sign_in(
    axum::extract::State(st): axum::extract::State<St>,
    peer: Option<Extension<ConnectInfo<Peer>>>,
    Body(req): Body<SignIn>,
) -> ApiResult<Response> {
    let peer = peer.map(|Extension(ConnectInfo(p))| p);
    let source = peer
        .as_ref()
        .map(Peer::to_string)
        .unwrap_or_else(|| "unknown".into());
    let tls = matches!(peer, Some(Peer::Tcp { tls: true, .. }));
    let p = by_key(&st, req.key.trim(), source)?;
    let key_id = p.key_id.clone().unwrap_or_default();
    let ttl = st.config().session_ttl_s;
    let expires_ms = kernos_core::time::now_ms() + (ttl as i64) * 1000;
    let s = sessions::generate(&key_id, expires_ms)?;
    let mut payload = s.payload.clone();
    if let serde_json::Value::Object(m) = &mut payload {
        m.insert("role".into(), json!(p.role));
        m.insert("source".into(), json!(p.source));
        m.insert(
            "after".into(),
            json!({"session_id": s.id, "expires_ms": expires_ms}),
        );
    }
    let ev = st
        .append(
            NewEvent::new(SESSION_CREATED, p.actor.clone())
                .org(&p.org)
                .payload(payload),
        )
        .await?;
    // Usable by the very next request, whenever the commit hook gets to it.
    if let Ok(mut t) = st.sessions.write() {
        t.apply(&ev);
    }
    let cookie = format!(
        "{}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age={ttl}{}",
        sessions::COOKIE,
        s.secret,
        if tls { "; Secure" } else { "" }
    );
    let view = SessionView {
        org: p.org,
        role: p.role,
        key_id: p.key_id,
        session: Some(s.id),
        expires_ms: Some(expires_ms),
        csrf: Some(s.csrf),
    };
    let mut resp = (StatusCode::CREATED, Json(view)).into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie)
            .map_err(|e| ApiError::internal(format!("cannot set the cookie: {e}")))?,
    );
    Ok(resp)
}

/// GET /v1/session.
pub(super) async fn who(
    axum::extract::State(st): axum::extract::State<St>,
    p: Principal,
    via: Option<Extension<ViaSession>>,
) -> ApiResult<Json<SessionView>> {
    let expires_ms = via.as_ref().and_then(|Extension(v)| {
        st.sessions
            .read()
            .ok()
            .and_then(|t| t.get(&v.id).map(|s| s.expires_ms))
    });
    Ok(Json(SessionView {
        org: p.org,
        role: p.role,
        key_id: p.key_id,
        session: via.as_ref().map(|Extension(v)| v.id.clone()),
        expires_ms,
        csrf: via.map(|Extension(v)| sessions::csrf_token(&v.secret)),
    }))
}

/// DELETE /v1/session.
pub(super) async fn sign_out(
    axum::extract::State(st): axum::extract::State<St>,
    p: Principal,
    via: Option<Extension<ViaSession>>,
) -> ApiResult<Response> {
    let Some(Extension(v)) = via else {
        return Err(ApiError::conflict(
            "this request came with an API key, not a browser session: there is nothing to sign out of (revoke the key with DELETE /v1/keys/{id})",
        ));
    };
    let ev = st
        .append(
            NewEvent::new(SESSION_ENDED, p.actor.clone())
                .org(&p.org)
                .payload(json!({
                    "session_id": v.id, "source": p.source,
                    "before": {"ended": false}, "after": {"ended": true},
                })),
        )
        .await?;
    if let Ok(mut t) = st.sessions.write() {
        t.apply(&ev);
    }
    st.revocations.send_modify(|n| *n = n.wrapping_add(1));
    let mut resp = StatusCode::NO_CONTENT.into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("kernos_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    Ok(resp)
}
