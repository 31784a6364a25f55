//! Monthly run-unit quotas per organisation (`server.quotas`): checked before work is queued,
//! and again before each step starts, against what the organisation has used plus what its
//! running actions have reserved.

use kernos_core::ActionId;

use crate::State;
use crate::error::{ApiError, ApiResult};
use crate::limits::{month_of, now_ms};

/// 402 when `org` has used up this month's quota; organisations without one pass.
pub(crate) fn check_quota(st: &State, org: &str) -> ApiResult<()> {
    let Some(q) = st.config().quotas.get(org).copied() else {
        return Ok(());
    };
    let now = now_ms();
    let used = st.usage.lock().map(|u| u.units(org, now)).unwrap_or(0.0);
    if used >= q {
        return Err(ApiError::quota(format!(
            "org {org} has used {used:.2} of its {q} run units for {}; ask the operator to raise server.quotas.{org}, or wait for next month",
            month_of(now)
        )));
    }
    Ok(())
}

/// A step that would take its organisation past its quota.
#[derive(Debug, thiserror::Error)]
#[error(
    "not started: org {org} has used {used:.4} of its {quota} run units for {month}, its other running actions have reserved {others:.4}, and this action needs about {need:.4} in all to run this step; ask the operator to raise server.quotas.{org}, or wait for next month (steps that already ran are kept and can be undone)"
)]
pub(crate) struct OverQuota {
    org: String,
    used: f64,
    quota: f64,
    month: String,
    others: f64,
    need: f64,
}

/// Before a step of `action` starts: admits it when `org`'s used units, the units its other
/// running actions reserved, and this action's `spent` units plus the step's estimate stay
/// within the quota, and reserves that much (released when the action ends, once its
/// `action.finished` is counted as used). Organisations without a quota pass.
pub(crate) fn admit_step(
    st: &State,
    org: &str,
    action: ActionId,
    spent: f64,
    step_units: f64,
) -> Result<(), OverQuota> {
    let Some(quota) = st.config().quotas.get(org).copied() else {
        return Ok(());
    };
    let now = now_ms();
    // Read and reserve under one lock, so two actions cannot both take the last units.
    let mut u = st.usage.lock().unwrap_or_else(|p| p.into_inner());
    let used = u.units(org, now);
    let others = u.reserved(org, Some(action));
    let need = spent + u.step_estimate(org, now, step_units);
    // A millionth of slack: units are rounded to millionths when charged.
    if used + others + need > quota + 1e-6 {
        return Err(OverQuota {
            org: org.to_owned(),
            used,
            quota,
            month: month_of(now),
            others,
            need,
        });
    }
    u.reserve(org, action, need);
    Ok(())
}

/// Drops what a finished action reserved.
pub(crate) fn release(st: &State, action: ActionId) {
    if let Ok(mut u) = st.usage.lock() {
        u.release(action);
    }
}
