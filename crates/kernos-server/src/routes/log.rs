//! The journal as a transparency log: checkpoints, proofs, keys (`/v1/log/*`, read as for
//! audit), on-demand checkpoints (the host operator), and this daemon as a witness for other
//! logs (`POST /v1/log/witness`).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use kernos_tlog::b64;
use kernos_tlog_journal::read;

use crate::St;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, PROBLEM_JSON};
use crate::extract::{Body, Q};
use crate::wire::{
    ConsistencyParams, InclusionParams, LogCheckpoint, LogConsistency, LogInclusion, LogKey,
    LogKeyRotate, LogKeys, WitnessCosigned, WitnessRequest,
};

fn log_err(e: kernos_tlog_journal::LogError) -> ApiError {
    use kernos_tlog_journal::LogError as L;
    match e {
        L::Journal(j) => j.into(),
        L::Invalid(m) => ApiError::not_found(m),
        L::Tlog(t @ kernos_tlog::TlogError::OutOfRange { .. }) => {
            ApiError::not_found(t.to_string())
        }
        L::Tlog(t) => ApiError::internal(t.to_string()),
        // Settings are checked at start; one reaching a request is the daemon's problem.
        c @ L::Config { .. } => ApiError::internal(c.to_string()),
    }
}

async fn stored(st: &St) -> ApiResult<Vec<read::StoredCheckpoint>> {
    let r = st
        .read(|j| {
            read::stored_checkpoints(j).map_err(|e| match e {
                kernos_tlog_journal::LogError::Journal(j) => j,
                other => kernos_journal::JournalError::Corrupt {
                    seq: 0,
                    reason: other.to_string(),
                },
            })
        })
        .await?;
    Ok(r)
}

fn view(c: read::StoredCheckpoint) -> LogCheckpoint {
    LogCheckpoint {
        seq: c.seq,
        size: c.size,
        note: c.note,
    }
}

/// GET /v1/log/checkpoint.
pub(super) async fn newest(
    axum::extract::State(st): axum::extract::State<St>,
) -> ApiResult<Json<LogCheckpoint>> {
    stored(&st)
        .await?
        .pop()
        .map(|c| Json(view(c)))
        .ok_or_else(|| ApiError::not_found("no checkpoint yet: POST /v1/log/checkpoint makes one"))
}

/// GET /v1/log/checkpoints.
pub(super) async fn list(
    axum::extract::State(st): axum::extract::State<St>,
) -> ApiResult<Json<Vec<LogCheckpoint>>> {
    Ok(Json(stored(&st).await?.into_iter().map(view).collect()))
}

/// POST /v1/log/checkpoint.
pub(super) async fn create(
    axum::extract::State(st): axum::extract::State<St>,
) -> ApiResult<Json<LogCheckpoint>> {
    let st2 = st.clone();
    let signed = tokio::task::spawn_blocking(move || st2.tlog.checkpoint_now(&st2.store))
        .await
        .map_err(|e| ApiError::internal(format!("the checkpoint task failed: {e}")))?
        .map_err(log_err)?;
    let seq = stored(&st)
        .await?
        .into_iter()
        .rev()
        .find(|c| c.note == signed.note)
        .map_or(0, |c| c.seq);
    Ok(Json(LogCheckpoint {
        seq,
        size: signed.size,
        note: signed.note,
    }))
}

/// GET /v1/log/proof/inclusion.
pub(super) async fn inclusion(
    axum::extract::State(st): axum::extract::State<St>,
    p: Principal,
    Q(q): Q<InclusionParams>,
) -> ApiResult<Json<LogInclusion>> {
    let seq = q.seq;
    let (org, leaf) = st
        .read(move |j| {
            let org = read::org_of(j, seq).ok().flatten();
            let leaf = read::leaf_hash_of(j, seq).ok();
            Ok((org, leaf))
        })
        .await?;
    // The tree spans every organisation: only the host operator proves another's events, and
    // to everyone else they answer as if they did not exist.
    let (Some(org), Some(leaf)) = (org, leaf) else {
        return Err(ApiError::not_found(format!("there is no event {seq}")));
    };
    if org != p.org && !p.is_host_operator() {
        return Err(ApiError::not_found(format!("there is no event {seq}")));
    }
    let all = stored(&st).await?;
    let cp = read::pick_checkpoint(&all, q.size).map_err(log_err)?;
    let trusted = st.tlog.live.with(|l| l.keys().public()).map_err(log_err)?;
    let proof = st
        .tlog
        .live
        .with(|l| read::prove(l.tree(), &trusted, &cp.note, seq, leaf))
        .map_err(log_err)?
        .map_err(log_err)?;
    Ok(Json(LogInclusion {
        seq: proof.seq,
        index: proof.index,
        leaf_hash: proof.leaf_hash,
        size: proof.size,
        root: proof.root,
        checkpoint: proof.checkpoint,
        hashes: proof.hashes,
    }))
}

/// GET /v1/log/proof/consistency.
pub(super) async fn consistency(
    axum::extract::State(st): axum::extract::State<St>,
    Q(q): Q<ConsistencyParams>,
) -> ApiResult<Json<LogConsistency>> {
    if q.from > q.to {
        return Err(ApiError::bad_request(format!(
            "from ({}) must not be larger than to ({})",
            q.from, q.to
        )));
    }
    let r = st
        .tlog
        .live
        .with(|l| -> kernos_tlog::Result<LogConsistency> {
            let t = l.tree();
            Ok(LogConsistency {
                from: q.from,
                to: q.to,
                from_root: b64(&t.root_at(q.from)?),
                to_root: b64(&t.root_at(q.to)?),
                hashes: t
                    .consistency_proof(q.from, q.to)?
                    .iter()
                    .map(|h| b64(h))
                    .collect(),
            })
        })
        .map_err(log_err)?
        .map_err(|e| log_err(e.into()))?;
    Ok(Json(r))
}

/// GET /v1/log/keys.
pub(super) async fn keys(
    axum::extract::State(st): axum::extract::State<St>,
) -> ApiResult<Json<LogKeys>> {
    Ok(Json(keys_view(&st)?))
}

/// POST /v1/log/keys/rotate: a new generation signs from now on; the old one's signatures
/// dated within the overlap still verify. Journaled (`log.keys_rotated`, by the caller).
/// The body is optional (`{}` or `{"overlap_s": N}`).
pub(super) async fn rotate(
    axum::extract::State(st): axum::extract::State<St>,
    p: Principal,
    raw: axum::body::Bytes,
) -> ApiResult<Json<LogKeys>> {
    let req: LogKeyRotate = if raw.iter().all(u8::is_ascii_whitespace) {
        LogKeyRotate::default()
    } else {
        serde_json::from_slice(&raw).map_err(|e| {
            ApiError::unprocessable(format!(
                "the body is not a rotation request ({e}); send {{}} or {{\"overlap_s\": 86400}}"
            ))
        })?
    };
    let overlap = req.overlap_s.unwrap_or(kernos_tlog::DEFAULT_OVERLAP_S);
    let st2 = st.clone();
    tokio::task::spawn_blocking(move || st2.tlog.rotate_keys(&st2.store, p.actor, overlap))
        .await
        .map_err(|e| ApiError::internal(format!("the rotation task failed: {e}")))?
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(Json(keys_view(&st)?))
}

/// The log's keys (every generation) and this daemon's witness keys.
fn keys_view(st: &St) -> ApiResult<LogKeys> {
    let (origin, vkeys, all) = st
        .tlog
        .live
        .with(|l| (l.origin().to_string(), l.keys().vkeys(), l.keys().public()))
        .map_err(log_err)?;
    let witness_vkeys = st
        .tlog
        .witness
        .as_ref()
        .map(|w| {
            kernos_tlog::witness_keys(&w.keys)
                .iter()
                .map(|k| k.vkey())
                .collect()
        })
        .unwrap_or_default();
    Ok(LogKeys {
        origin,
        vkeys,
        keys: all
            .0
            .iter()
            .map(|k| LogKey {
                vkey: k.vkey(),
                retired_at: k.retired_at,
                not_after: k.not_after,
            })
            .collect(),
        witness_vkeys,
    })
}

/// POST /v1/log/witness.
pub(super) async fn witness(
    axum::extract::State(st): axum::extract::State<St>,
    Body(req): Body<WitnessRequest>,
) -> Result<Json<WitnessCosigned>, Response> {
    let st2 = st.clone();
    let answer = tokio::task::spawn_blocking(move || {
        st2.tlog
            .witness(&st2.store, &req.checkpoint, req.old_size, &req.consistency)
    })
    .await
    .map_err(|e| ApiError::internal(format!("the witness task failed: {e}")).into_response())?;
    match answer {
        Ok(cosignatures) => Ok(Json(WitnessCosigned { cosignatures })),
        Err(r) => {
            let status =
                StatusCode::from_u16(r.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut doc = serde_json::to_value(ApiError::from_status(status, r.detail).problem())
                .unwrap_or_default();
            if let Some(k) = r.known_size {
                doc["known_size"] = k.into();
                doc["rollback"] = r.rollback.into();
            }
            Err((
                status,
                [(axum::http::header::CONTENT_TYPE, PROBLEM_JSON)],
                doc.to_string(),
            )
                .into_response())
        }
    }
}
