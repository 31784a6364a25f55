//! Schedules: GET/POST /v1/schedules, GET/DELETE /v1/schedules/{id}, and pause, resume and
//! run now. The work is in [`crate::schedules`]; these run it off the async threads (it
//! journals, and planning a request may take a moment).

use axum::Json;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::offload::blocking;
use crate::St;
use crate::auth::Principal;
use crate::error::ApiResult;
use crate::extract::Body;
use crate::wire::{ScheduleCreate, ScheduleRun, ScheduleView};

/// GET /v1/schedules.
pub(super) async fn list(
    axum::extract::State(st): axum::extract::State<St>,
    p: Principal,
) -> ApiResult<Json<Vec<ScheduleView>>> {
    Ok(Json(crate::schedules::list(&st, &p.org)))
}

/// POST /v1/schedules.
pub(super) async fn create(
    axum::extract::State(st): axum::extract::State<St>,
    p: Principal,
    Body(req): Body<ScheduleCreate>,
) -> ApiResult<Response> {
    let dry = req.dry_run;
    let v = blocking(&st, move |st| crate::schedules::create(st, &p, req)).await?;
    let status = if dry {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(v)).into_response())
}

/// GET /v1/schedules/{id}.
pub(super) async fn show(
    axum::extract::State(st): axum::extract::State<St>,
    p: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<ScheduleView>> {
    crate::schedules::show(&st, &p, &id).map(Json)
}

/// POST /v1/schedules/{id}/pause.
pub(super) async fn pause(
    axum::extract::State(st): axum::extract::State<St>,
    p: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<ScheduleView>> {
    blocking(&st, move |st| {
        crate::schedules::set_paused(st, &p, &id, true)
    })
    .await
    .map(Json)
}

/// POST /v1/schedules/{id}/resume.
pub(super) async fn resume(
    axum::extract::State(st): axum::extract::State<St>,
    p: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<ScheduleView>> {
    blocking(&st, move |st| {
        crate::schedules::set_paused(st, &p, &id, false)
    })
    .await
    .map(Json)
}

/// POST /v1/schedules/{id}/run.
pub(super) async fn run(
    axum::extract::State(st): axum::extract::State<St>,
    p: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<ScheduleRun>> {
    blocking(&st, move |st| crate::schedules::run_now(st, &p, &id))
        .await
        .map(Json)
}

/// DELETE /v1/schedules/{id}.
pub(super) async fn remove(
    axum::extract::State(st): axum::extract::State<St>,
    p: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<ScheduleView>> {
    blocking(&st, move |st| crate::schedules::remove(st, &p, &id))
        .await
        .map(Json)
}
