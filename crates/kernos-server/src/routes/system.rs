//! The daemon itself: GET /healthz, GET /readyz, GET /metrics and GET /v1/openapi.json.

use axum::Json;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::St;
use crate::error::{ApiError, ApiResult};
use crate::wire::Health;

/// GET /v1/openapi.json: the document built when the daemon started.
pub(super) async fn openapi_doc(axum::extract::State(st): axum::extract::State<St>) -> Response {
    let mut r = Json(st.openapi.clone()).into_response();
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("max-age=60"),
    );
    r
}

/// GET /healthz.
pub(super) async fn healthz(axum::extract::State(st): axum::extract::State<St>) -> Json<Health> {
    Json(Health {
        status: "ok".into(),
        head: st.hub.head(),
    })
}

/// GET /readyz.
pub(super) async fn readyz(
    axum::extract::State(st): axum::extract::State<St>,
) -> ApiResult<Json<Health>> {
    if st.is_shutting_down() {
        return Err(ApiError::unavailable("the daemon is shutting down", 5));
    }
    st.read(|j| j.head()).await?;
    Ok(Json(Health {
        status: "ready".into(),
        head: st.hub.head(),
    }))
}

/// GET /metrics (Prometheus text).
pub(super) async fn metrics(axum::extract::State(st): axum::extract::State<St>) -> Response {
    let pending = st.approvals.lock().map(|a| a.len()).unwrap_or(0);
    let running = st.running.lock().map(|r| r.len()).unwrap_or(0);
    let mut text = st
        .metrics
        .render(st.sched.queued(), running, pending, &st.sched.gauges());
    text.push_str(&st.agents.prometheus());
    if let Ok(leases) = st.leases.read() {
        text.push_str(&leases.prometheus(crate::limits::now_ms()));
    }
    // The model tier's counters (tokens, cost, cache hit ratio) read the plan cache's
    // SQLite file: off the async threads.
    let planner = st.clone();
    if let Ok(llm) = tokio::task::spawn_blocking(move || {
        planner
            .engine
            .planner()
            .map(|p| p.prometheus())
            .unwrap_or_default()
    })
    .await
    {
        text.push_str(&llm);
    }
    let mut r = text.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    r
}
