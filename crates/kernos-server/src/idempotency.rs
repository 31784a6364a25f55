//! Idempotency-Key on POST /v1/actions: a retry with the same key and body is answered with the
//! first action instead of making a second. Keys are scoped to who used them, kept in a
//! bounded cache, and refilled from the journal at start so retries survive a restart.

use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use kernos_core::ActionId;
use kernos_core::event::kind;
use sha2::Digest;

use crate::State;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::wire::SubmitRequest;

/// The header a client sends.
const HEADER: &str = "idempotency-key";

/// An Idempotency-Key as sent, and as the cache knows it (scoped to its caller).
pub(crate) struct IdemKey {
    /// As sent, journaled with the submission.
    pub(crate) raw: String,
    scoped: String,
}

/// The request's Idempotency-Key, if it has one; 400 when it is not 1-255 visible ASCII.
pub(crate) fn from_headers(headers: &HeaderMap, who: &Principal) -> ApiResult<Option<IdemKey>> {
    let Some(v) = headers.get(HEADER) else {
        return Ok(None);
    };
    let k = v
        .to_str()
        .ok()
        .filter(|k| !k.is_empty() && k.len() <= 255)
        .ok_or_else(|| {
            ApiError::bad_request("Idempotency-Key must be 1-255 visible ASCII characters")
        })?;
    Ok(Some(IdemKey {
        raw: k.to_owned(),
        scoped: scoped(&who.org, &who.actor.0, k),
    }))
}

/// Idempotency keys are scoped to who used them: one org's key never answers another's.
fn scoped(org: &str, actor: &str, key: &str) -> String {
    format!("{org}\u{0}{actor}\u{0}{key}")
}

/// Claims `key` for a new `action` with this body hash, or finds the action an earlier
/// submission with the same key made (`Some`: answer that one again). Looked up and claimed
/// under one lock, so two concurrent requests with the same key make one action. 422 when
/// the key was used for a different body.
pub(crate) fn claim(
    st: &State,
    key: &IdemKey,
    body: [u8; 32],
    action: ActionId,
) -> ApiResult<Option<ActionId>> {
    let mut c = st
        .idem
        .lock()
        .map_err(|_| ApiError::internal("idempotency cache unavailable; retry"))?;
    if let Some(h) = c.get(&key.scoped, Instant::now()) {
        if h.body != body {
            return Err(ApiError::unprocessable(
                "this Idempotency-Key was used for a different request; use a new key for a new request",
            ));
        }
        return Ok(Some(h.action));
    }
    c.put(key.scoped.clone(), action, body, Instant::now());
    Ok(None)
}

/// Forgets a claim whose action was not accepted, so a retry with the key can go through.
pub(crate) fn release(st: &State, key: &IdemKey) {
    if let Ok(mut c) = st.idem.lock() {
        c.remove(&key.scoped);
    }
}

/// SHA-256 of a submission as serialized: what "the same body" means.
pub(crate) fn body_hash(req: &SubmitRequest) -> [u8; 32] {
    let bytes = serde_json::to_vec(req).unwrap_or_default();
    sha2::Sha256::digest(&bytes).into()
}

pub(crate) use kernos_core::hex::{decode32 as unhex, encode as hex};

/// Refills the idempotency cache from the journal's recent keyed submissions, so a client
/// that retries because the daemon restarted gets its action back instead of a second one.
/// Newest first, stopping at the cache's capacity or its time-to-live.
pub(crate) fn restore_idempotency(
    st: &State,
    j: &kernos_journal::Journal,
) -> Result<usize, kernos_journal::JournalError> {
    let cfg = st.config();
    if cfg.idempotency_keys == 0 {
        return Ok(0);
    }
    let ttl = Duration::from_secs(cfg.idempotency_ttl_s);
    let now_ms = crate::limits::now_ms();
    let mut found: Vec<(String, ActionId, [u8; 32], Duration)> = Vec::new();
    j.for_each(
        &kernos_journal::Query {
            kind: Some(kind::ACTION_SUBMITTED.into()),
            since_ms: Some(
                now_ms.saturating_sub(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX)),
            ),
            newest_first: true,
            ..kernos_journal::Query::default()
        },
        |e| {
            let p = &e.payload;
            let key = p["idempotency_key"].as_str();
            let body = p["body_sha256"].as_str().and_then(unhex);
            if let (Some(k), Some(body), Some(a)) = (key, body, e.action) {
                let age = Duration::from_millis(u64::try_from(now_ms - e.ts_ms).unwrap_or(0));
                found.push((scoped(&e.org, &e.actor.0, k), a, body, age));
            }
            found.len() < cfg.idempotency_keys
        },
    )?;
    let n = found.len();
    let now = Instant::now();
    if let Ok(mut c) = st.idem.lock() {
        for (k, a, body, age) in found.into_iter().rev() {
            c.put(k, a, body, now.checked_sub(age).unwrap_or(now));
        }
    }
    Ok(n)
}
