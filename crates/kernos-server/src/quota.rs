//! Monthly run-unit quotas per organisation (`server.quotas`): checked before work is queued.

use crate::State;
use crate::error::{ApiError, ApiResult};
use crate::limits::{month_of, now_ms};

/// 402 when `org` has used up this month's quota; organisations without one pass.
pub(crate) fn check_quota(st: &State, org: &str) -> ApiResult<()> {
    let Some(q) = st.config.quotas.get(org).copied() else {
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
