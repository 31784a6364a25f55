//! GET /v1/events: checks the parameters and opens the stream (see [`crate::sse`]).

use axum::http::HeaderMap;
use axum::response::Response;

use crate::St;
use crate::auth::{Principal, Role};
use crate::error::{ApiError, ApiResult};
use crate::extract::Q;
use crate::sse::{self, Filter};
use crate::wire::EventParams;

/// GET /v1/events.
pub(super) async fn events(
    axum::extract::State(st): axum::extract::State<St>,
    principal: Principal,
    via: Option<axum::extract::Extension<crate::authn::ViaSession>>,
    headers: HeaderMap,
    Q(q): Q<EventParams>,
) -> ApiResult<Response> {
    if let Some(o) = &q.org {
        if *o != principal.org {
            return Err(ApiError::forbidden(format!(
                "you can read events of org {} only",
                principal.org
            )));
        }
    }
    if let Some(a) = &q.action {
        a.parse::<kernos_core::ActionId>()
            .map_err(|e| ApiError::bad_request(format!("action={a:?} is not an action id: {e}")))?;
    }
    let last_id = last_event_id(&headers)?;
    let start = last_id.or(q.after);
    let head = st.hub_head();
    if let Some(s) = start.filter(|s| *s > head) {
        // Nobody received an event that does not exist yet: such a resume point would skip
        // every event until the journal grew past it (forever, for 2^64-1).
        return Err(ApiError::bad_request(format!(
            "resume point {s} is beyond the newest event ({head}); resume from an id you received, or leave it out"
        )));
    }
    let filter = Filter {
        org: principal.org.clone(),
        prefix: q.prefix.clone().filter(|p| !p.is_empty()),
        action: q.action.clone(),
        audit: principal.role >= Role::Admin,
        key_id: principal.key_id.clone(),
        session: via.map(|v| v.0.id),
    };
    sse::stream(st, filter, start)
}

/// The Last-Event-ID header, if sent; 400 when it is not a sequence number.
fn last_event_id(headers: &HeaderMap) -> ApiResult<Option<u64>> {
    let Some(v) = headers.get("last-event-id") else {
        return Ok(None);
    };
    v.to_str()
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .map(Some)
        .ok_or_else(|| {
            ApiError::bad_request(
                "Last-Event-ID must be the sequence number of the last event received",
            )
        })
}
