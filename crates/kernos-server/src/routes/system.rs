//! The daemon itself: GET /healthz, GET /readyz, GET /metrics and GET /v1/openapi.json; and
//! the machine under kernos-init (Kernos OS): POST /v1/system/reboot, POST /v1/system/poweroff,
//! GET /v1/system/status.

use axum::Json;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::St;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::wire::{Health, PowerAccepted, SystemStatus};

/// GET /v1/openapi.json: the document, built on the first request and kept.
pub(super) async fn openapi_doc(axum::extract::State(st): axum::extract::State<St>) -> Response {
    let body = st
        .openapi
        .get_or_init(|| serde_json::to_vec(&crate::openapi::openapi()).unwrap_or_default());
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("max-age=60"),
            ),
        ],
        body.clone(),
    )
        .into_response()
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

/// POST /v1/system/reboot.
pub(super) async fn reboot(
    axum::extract::State(st): axum::extract::State<St>,
    p: Principal,
) -> ApiResult<Response> {
    power(st, p, "reboot").await
}

/// POST /v1/system/poweroff.
pub(super) async fn poweroff(
    axum::extract::State(st): axum::extract::State<St>,
    p: Principal,
) -> ApiResult<Response> {
    power(st, p, "poweroff").await
}

/// Journals who asked (durably), leaves the request for kernos-init in its run directory,
/// then stops this daemon as SIGTERM would: no new work, running steps finished or
/// cancelled, the journal flushed. Init sees the daemon end, finds the request, and stops
/// the machine (sync, unmount, reboot(2)). On any host not run by kernos-init: 409, nothing
/// happens.
async fn power(st: St, p: Principal, what: &'static str) -> ApiResult<Response> {
    let Some(dir) = crate::os::init_dir() else {
        return Err(ApiError::conflict(format!(
            "not running under kernos-init: POST /v1/system/{what} stops a Kernos OS machine, never a host that runs the daemon as a service; use the host's own tools (systemctl {what})"
        )));
    };
    if st.is_shutting_down() {
        return Err(ApiError::unavailable("the daemon is already stopping", 5));
    }
    st.append(
        kernos_core::NewEvent::new(&format!("audit.system.{what}"), p.actor.clone())
            .org(&p.org)
            .payload(serde_json::json!({
                "actor": p.actor,
                "actor_org": p.org,
                "actor_role": p.role,
                "source": p.source,
            })),
    )
    .await?;
    std::fs::write(dir.join("power"), what).map_err(|e| {
        ApiError::internal(format!(
            "cannot leave the {what} request for kernos-init in {}: {e}",
            dir.display()
        ))
    })?;
    // After the answer has left: the same graceful stop as SIGTERM.
    tokio::spawn(async {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        // SAFETY: signals our own process; the daemon handles SIGTERM as a clean stop.
        unsafe { libc::kill(libc::getpid(), libc::SIGTERM) };
    });
    tracing::warn!("{what} requested by {} through the API", p.actor.0);
    Ok((
        axum::http::StatusCode::ACCEPTED,
        Json(PowerAccepted {
            action: what.into(),
            detail: format!(
                "stopping: no new work, running steps finished or cancelled, the journal flushed; then kernos-init syncs, unmounts and does the {what}"
            ),
        }),
    )
        .into_response())
}

/// GET /v1/system/status.
pub(super) async fn status(_p: Principal) -> ApiResult<Json<SystemStatus>> {
    let dir = crate::os::init_dir();
    let read = |name: &str| -> Option<serde_json::Value> {
        let d = dir.as_ref()?;
        serde_json::from_str(&std::fs::read_to_string(d.join(name)).ok()?).ok()
    };
    Ok(Json(SystemStatus {
        under_init: dir.is_some(),
        boot: read("boot.json"),
        init: read("status.json"),
        pid1_rss_kb: dir.as_ref().and_then(|_| crate::os::pid1_rss_kb()),
        zombies: crate::os::zombies(),
    }))
}
