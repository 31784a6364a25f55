//! Agents: GET/POST /v1/agents, GET /v1/agents/{id}, GET /v1/agents/{id}/logs and the
//! operations pause, resume, kill and clone. The work is in [`crate::agents`]; these run it off
//! the async threads (it journals and may start a thread).

use axum::Json;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::offload::blocking;
use crate::St;
use crate::auth::Principal;
use crate::error::ApiResult;
use crate::extract::{Body, Q};
use crate::wire::{AgentDetail, AgentListParams, AgentSpawn, AgentView};

/// GET /v1/agents.
pub(super) async fn list(
    axum::extract::State(st): axum::extract::State<St>,
    p: Principal,
    Q(q): Q<AgentListParams>,
) -> ApiResult<Json<Vec<AgentView>>> {
    Ok(Json(crate::agents::Agents::list(&st, &p.org, q.state)))
}

/// POST /v1/agents.
pub(super) async fn spawn(
    axum::extract::State(st): axum::extract::State<St>,
    p: Principal,
    Body(req): Body<AgentSpawn>,
) -> ApiResult<Response> {
    let view = blocking(&st, move |st| crate::agents::spawn(st, &p, req, None)).await?;
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

/// GET /v1/agents/{id}.
pub(super) async fn show(
    axum::extract::State(st): axum::extract::State<St>,
    p: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<AgentDetail>> {
    blocking(&st, move |st| crate::agents::detail(st, &p, &id))
        .await
        .map(Json)
}

/// GET /v1/agents/{id}/logs.
pub(super) async fn logs(
    axum::extract::State(st): axum::extract::State<St>,
    p: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<kernos_core::Event>>> {
    blocking(&st, move |st| crate::agents::logs(st, &p, &id))
        .await
        .map(Json)
}

/// POST /v1/agents/{id}/pause.
pub(super) async fn pause(
    axum::extract::State(st): axum::extract::State<St>,
    p: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<AgentView>> {
    blocking(&st, move |st| crate::agents::pause(st, &p, &id))
        .await
        .map(Json)
}

/// POST /v1/agents/{id}/resume.
pub(super) async fn resume(
    axum::extract::State(st): axum::extract::State<St>,
    p: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<AgentView>> {
    blocking(&st, move |st| crate::agents::resume(st, &p, &id))
        .await
        .map(Json)
}

/// POST /v1/agents/{id}/kill.
pub(super) async fn kill(
    axum::extract::State(st): axum::extract::State<St>,
    p: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<AgentView>> {
    blocking(&st, move |st| crate::agents::kill(st, &p, &id))
        .await
        .map(Json)
}

/// POST /v1/agents/{id}/clone.
pub(super) async fn clone(
    axum::extract::State(st): axum::extract::State<St>,
    p: Principal,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let view = blocking(&st, move |st| crate::agents::clone(st, &p, &id)).await?;
    Ok((StatusCode::CREATED, Json(view)).into_response())
}
