//! Monitors: GET /v1/monitors. They watch the host, so only the host operator reads them.

use axum::Json;

use crate::St;
use crate::monitors::MonitorStatus;

/// GET /v1/monitors.
pub(super) async fn list(
    axum::extract::State(st): axum::extract::State<St>,
) -> Json<Vec<MonitorStatus>> {
    Json(st.monitors.list(&st))
}

/// POST /v1/monitors.
pub(super) async fn add(
    axum::extract::State(st): axum::extract::State<St>,
    p: crate::auth::Principal,
    body: axum::body::Bytes,
) -> crate::error::ApiResult<(axum::http::StatusCode, Json<MonitorStatus>)> {
    let spec: kernos_monitor::MonitorSpec = serde_json::from_slice(&body)
        .map_err(|e| crate::error::ApiError::unprocessable(format!("not a monitor: {e}")))?;
    let v = super::offload::blocking(&st, move |st| crate::monitors::add(st, &p, spec)).await?;
    Ok((axum::http::StatusCode::CREATED, Json(v)))
}

/// DELETE /v1/monitors/{name}.
pub(super) async fn remove(
    axum::extract::State(st): axum::extract::State<St>,
    p: crate::auth::Principal,
    axum::extract::Path(name): axum::extract::Path<String>,
) -> crate::error::ApiResult<Json<MonitorStatus>> {
    let gone = name.clone();
    super::offload::blocking(&st, move |st| crate::monitors::remove(st, &p, &name)).await?;
    Ok(Json(MonitorStatus {
        name: gone,
        state: "removed".into(),
        ..MonitorStatus::default()
    }))
}
