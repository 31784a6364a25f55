//! GET /v1/state/usage: the caller's organisation's run units, by month, and its quota.

use axum::Json;

use crate::St;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::limits::{month_of, now_ms};
use crate::wire::UsageView;

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
    let quota = st.config.quotas.get(&p.org).copied();
    Ok(Json(UsageView {
        org: p.org.clone(),
        month: month_of(now),
        units,
        quota,
        remaining: quota.map(|q| (q - units).max(0.0)),
        months,
    }))
}
