//! GET /v1/state/usage: the caller's organisation's run units, by month, and its quota; GET
//! /v1/state/usage/daily: its use day by day, from the `daily` read model.

use axum::Json;

use crate::St;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::extract::Q;
use crate::limits::{month_of, now_ms};
use crate::wire::{UsageDaily, UsageDailyParams, UsageView};

/// Days GET /v1/state/usage/daily answers at most (a leap year).
const MAX_DAYS: i64 = 366;

/// GET /v1/state/usage.
pub(super) async fn usage(
    axum::extract::State(st): axum::extract::State<St>,
    p: Principal,
) -> ApiResult<Json<UsageView>> {
    let now = now_ms();
    let (units, months) = st
        .usage
        .lock()
        .map(|u| (u.units(&p.org, now), u.months(&p.org)))
        .map_err(|_| ApiError::internal("usage table unavailable; retry"))?;
    let quota = st.config().quotas.get(&p.org).copied();
    Ok(Json(UsageView {
        org: p.org.clone(),
        month: month_of(now),
        units,
        quota,
        remaining: quota.map(|q| (q - units).max(0.0)),
        months,
    }))
}

/// GET /v1/state/usage/daily.
pub(super) async fn daily(
    axum::extract::State(st): axum::extract::State<St>,
    p: Principal,
    Q(q): Q<UsageDailyParams>,
) -> ApiResult<Json<UsageDaily>> {
    let days = q.days.unwrap_or(30);
    if !(1..=MAX_DAYS).contains(&days) {
        return Err(ApiError::bad_request(format!(
            "days={days} is out of range: give 1 to {MAX_DAYS} (default 30)"
        )));
    }
    let days = st
        .daily
        .lock()
        .map(|d| d.window(&p.org, now_ms(), days as usize))
        .map_err(|_| ApiError::internal("daily usage table unavailable; retry"))?;
    Ok(Json(UsageDaily { org: p.org, days }))
}
