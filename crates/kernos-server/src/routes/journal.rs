//! The journal as the dashboard reads it: GET /v1/state/journal (the caller's organisation's
//! events, newest first, a page at a time) and GET /v1/state/journal/verify (whether the hash
//! chain is intact).

use axum::Json;
use kernos_journal::Query as JQuery;

use crate::St;
use crate::auth::{Perm, Principal};
use crate::error::{ApiError, ApiResult};
use crate::extract::Q;
use crate::wire::{JournalPage, JournalParams, JournalVerify, VerifyParams, clamp_limit};

/// GET /v1/state/journal.
pub(super) async fn page(
    axum::extract::State(st): axum::extract::State<St>,
    p: Principal,
    Q(q): Q<JournalParams>,
) -> ApiResult<Json<JournalPage>> {
    let limit = clamp_limit(q.limit, 100, 1000);
    if q.before == Some(0) {
        return Err(ApiError::bad_request(
            "before=0 selects nothing: sequence numbers start at 1; leave it out for the newest events",
        ));
    }
    let query = JQuery {
        org: Some(p.org.clone()),
        until: q.before.map(|b| b - 1),
        kind_prefix: q.kind.filter(|k| !k.is_empty()),
        // One more than asked: whether it comes back says if there is an older page.
        limit: Some(limit + 1),
        newest_first: true,
        ..JQuery::default()
    };
    let mut events = st.read(move |j| j.query(&query)).await?;
    let next_before = if events.len() > limit {
        events.truncate(limit);
        events.last().map(|e| e.seq)
    } else {
        None
    };
    Ok(Json(JournalPage {
        org: p.org,
        events,
        next_before,
    }))
}

/// GET /v1/state/journal/verify.
pub(super) async fn verify(
    axum::extract::State(st): axum::extract::State<St>,
    p: Principal,
    Q(q): Q<VerifyParams>,
) -> ApiResult<Json<JournalVerify>> {
    if q.fresh {
        // A forced walk costs seconds of disk reads on a big journal: not for every viewer.
        p.require(Perm::Audit)?;
    }
    Ok(Json(st.verifier.status(q.fresh).await?))
}
