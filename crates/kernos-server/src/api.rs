//! The router and its handlers. Every handler that touches an organisation's data takes a
//! [`Principal`] (authentication happens in its extractor) and checks its role first.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRequestParts, MatchedPath, Path, Query};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use kernos_core::event::kind;
use kernos_core::{ActionId, Actor, ApprovalId, Event, NewEvent, Risk, TxId};
use kernos_journal::Query as JQuery;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::Digest;

use crate::auth::{KEY_CREATED, KEY_REVOKED, KeyInfo, Perm, Principal, Role};
use crate::error::{ApiError, ApiResult, PROBLEM_JSON};
use crate::limits::{UsageMonth, month_of, now_ms};
use crate::listen::Peer;
use crate::worker::{ACTION_FINISHED, Job, SubmitRequest};
use crate::{State, sse};

type St = Arc<State>;

/// Builds the router over a daemon's state.
pub fn app(state: Arc<State>) -> Router {
    let cfg = &state.config;
    let body_limit = cfg.body_limit;
    let v1 = Router::new()
        .route("/v1/openapi.json", get(openapi_doc))
        .route("/v1/actions", post(submit))
        .route("/v1/events", get(sse::events))
        .route("/v1/state/actions", get(list_actions))
        .route("/v1/actions/{id}/cancel", post(cancel))
        .route("/v1/state/actions/{id}", get(get_action))
        .route("/v1/state/approvals", get(list_approvals))
        .route("/v1/state/transactions", get(list_transactions))
        .route("/v1/state/usage", get(usage))
        .route("/v1/state/tools", get(tools))
        .route("/v1/approvals/{id}", post(decide))
        .route("/v1/undo/{tx}", post(undo))
        .route("/v1/keys", get(list_keys).post(create_key))
        .route("/v1/keys/{id}", delete(revoke_key))
        .route("/v1/audit", get(audit_json))
        .route("/v1/audit.csv", get(audit_csv))
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed);
    v1.layer(DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn_with_state(state.clone(), guard))
        .layer(
            tower_http::trace::TraceLayer::new_for_http()
                .make_span_with(
                    tower_http::trace::DefaultMakeSpan::new().level(tracing::Level::DEBUG),
                )
                .on_response(
                    tower_http::trace::DefaultOnResponse::new().level(tracing::Level::DEBUG),
                ),
        )
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint; the API is described at GET /v1/openapi.json")
}

async fn method_not_allowed() -> ApiError {
    ApiError::from_status(
        StatusCode::METHOD_NOT_ALLOWED,
        "this endpoint does not take that method; see GET /v1/openapi.json",
    )
}

/// Global limits and bookkeeping around every request: the concurrency limit (503 beyond it),
/// the per-request timeout (to the response head), latency metrics by route, and problem
/// documents for errors produced outside handlers (bad JSON, body too large…).
async fn guard(
    axum::extract::State(st): axum::extract::State<St>,
    req: axum::extract::Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().as_str().to_owned();
    let in_flight = st.in_flight.fetch_add(1, Ordering::AcqRel);
    let resp = if in_flight >= st.config.concurrency {
        ApiError::unavailable(
            format!(
                "the daemon is handling {} requests already; retry shortly",
                st.config.concurrency
            ),
            1,
        )
        .into_response()
    } else {
        match tokio::time::timeout(
            Duration::from_millis(st.config.request_timeout_ms),
            next.run(req),
        )
        .await
        {
            Ok(r) => r,
            Err(_) => ApiError::from_status(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "no answer within {} ms; retry, or narrow the request (e.g. a smaller limit)",
                    st.config.request_timeout_ms
                ),
            )
            .into_response(),
        }
    };
    st.in_flight.fetch_sub(1, Ordering::AcqRel);
    let resp = problemize(resp).await;
    st.metrics
        .observe(&method, &route, started.elapsed().as_secs_f64());
    resp
}

/// Turns an error response that is not a problem document yet (axum's rejections) into one.
async fn problemize(resp: Response) -> Response {
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let is_problem = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(PROBLEM_JSON.as_bytes()));
    if is_problem {
        return resp;
    }
    let body = axum::body::to_bytes(resp.into_body(), 64 * 1024)
        .await
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&body).trim().to_owned();
    let advice = match status {
        StatusCode::PAYLOAD_TOO_LARGE => {
            "the request body is too large; send less (see server.body_limit)".to_owned()
        }
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            "send the body as JSON with Content-Type: application/json".to_owned()
        }
        _ => format!("{text}; see GET /v1/openapi.json for the expected request"),
    };
    ApiError::from_status(status, advice).into_response()
}

/// A JSON body whose rejections become problem documents with advice.
pub(crate) struct Body<T>(pub T);

impl<T, S> axum::extract::FromRequest<S> for Body<T>
where
    Json<T>: axum::extract::FromRequest<S, Rejection = JsonRejection>,
    S: Send + Sync,
{
    type Rejection = ApiError;
    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(Body(v)),
            Err(e) => Err(ApiError::from_status(
                e.status(),
                format!(
                    "{}; send JSON as described in GET /v1/openapi.json",
                    e.body_text()
                ),
            )),
        }
    }
}

/// Query parameters whose rejections become problem documents.
pub(crate) struct Q<T>(pub T);

impl<T, S> FromRequestParts<S> for Q<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(v)) => Ok(Q(v)),
            Err(e) => Err(ApiError::bad_request(format!(
                "{}; see GET /v1/openapi.json for the parameters",
                e.body_text()
            ))),
        }
    }
}

impl FromRequestParts<St> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &St) -> Result<Self, ApiError> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<Peer>>()
            .map(|c| c.0.clone());
        let source = peer
            .as_ref()
            .map(|p| p.to_string())
            .unwrap_or_else(|| "unknown".into());
        let presented = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .or_else(|| {
                parts
                    .headers
                    .get("x-api-key")
                    .and_then(|v| v.to_str().ok())
                    .map(str::trim)
            });
        if let Some(k) = presented {
            let found = st
                .keys
                .read()
                .map_err(|_| ApiError::internal("key table unavailable; restart the daemon"))?
                .authenticate(k)
                .map(|k| (k.id.clone(), k.org.clone(), k.role));
            let Some((id, org, role)) = found else {
                return Err(ApiError::unauthorized(
                    "the API key is unknown or revoked; ask an admin for a new one (kernos keys create --org ORG --role ROLE)",
                ));
            };
            let limited = st
                .limiter
                .lock()
                .map_err(|_| ApiError::internal("rate limiter unavailable; retry"))?
                .check(&id, Instant::now());
            if let Err(wait) = limited {
                st.metrics.rate_limited.fetch_add(1, Ordering::Relaxed);
                return Err(ApiError::too_many(
                    "rate-limited",
                    format!(
                        "this key sent more than {} requests per second (burst {}); wait {wait} s and retry, or spread requests out",
                        st.config.rate_per_sec, st.config.rate_burst
                    ),
                    wait,
                ));
            }
            return Ok(Principal {
                actor: Actor(format!("key:{id}")),
                org,
                role,
                key_id: Some(id),
                source,
            });
        }
        if let Some(Peer::Unix { uid, .. }) = peer {
            if uid == st.uid {
                return Ok(Principal {
                    actor: st.local_actor.clone(),
                    org: kernos_core::LOCAL_ORG.into(),
                    role: Role::Owner,
                    key_id: None,
                    source,
                });
            }
            return Err(ApiError::unauthorized(format!(
                "uid {uid} is not the daemon's user; send Authorization: Bearer <key>"
            )));
        }
        Err(ApiError::unauthorized(
            "send Authorization: Bearer <key>; an admin creates keys with `kernos keys create --org ORG --role ROLE`",
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// Types on the wire (also the OpenAPI schemas).

/// 202 answer to a submission.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct Accepted {
    /// The action id: follow it with GET /v1/events?action=<id>.
    pub action: String,
    /// Always `queued`.
    pub status: String,
    /// Where its events stream.
    pub events: String,
    /// True when an earlier submission with the same Idempotency-Key is answered again.
    pub replayed: bool,
}

/// A step waiting for an answer.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ApprovalView {
    /// Id to answer with POST /v1/approvals/{id}.
    pub approval: String,
    /// Action.
    pub action: String,
    /// Transaction.
    pub tx: String,
    /// Step index.
    pub step: usize,
    /// `tool.action`.
    pub name: String,
    /// Resolved arguments.
    pub args: Value,
    /// Risk computed by policy.
    pub risk: Risk,
    /// Why it has that risk / why policy asks.
    pub reasons: Vec<String>,
    /// What it would change, when the preview could say.
    pub changes: Vec<String>,
    /// Who submitted the action.
    pub requested_by: String,
    /// When it started waiting, ms.
    pub requested_ms: i64,
    /// When it will be declined without an answer, ms.
    pub expires_ms: i64,
    /// The lowest role that may approve it.
    pub min_role: Role,
}

/// POST /v1/approvals/{id} body.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApprovalAnswer {
    /// Run the step (true) or not (false).
    pub approve: bool,
    /// Why (journaled).
    #[serde(default)]
    pub reason: Option<String>,
}

/// Answer to an approval decision.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct Decided {
    /// The approval.
    pub approval: String,
    /// What was decided.
    pub approved: bool,
}

/// POST /v1/undo/{tx} body (optional).
#[derive(Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UndoRequest {
    /// Working directory for inverse steps that need one.
    #[serde(default)]
    pub cwd: Option<String>,
}

/// An action in a listing.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct ActionSummary {
    /// Id.
    pub action: String,
    /// Organisation.
    pub org: String,
    /// Who submitted it.
    pub actor: String,
    /// When, ms.
    pub submitted_ms: i64,
    /// The request text, when there was one.
    pub request: Option<String>,
    /// `queued`, `running`, or how it ended (`committed`, `failed`, `declined`, `denied`,
    /// `cancelled`, `not_understood`, `invalid`, `previewed`, `undone`, `aborted`,
    /// `interrupted`, `error`).
    pub status: String,
    /// Its transaction, once it ran.
    pub tx: Option<String>,
    /// Run units charged.
    pub units: Option<f64>,
    /// What went wrong, if something did.
    pub error: Option<String>,
}

/// One action in full.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct ActionDetail {
    /// Summary.
    #[serde(flatten)]
    pub summary: ActionSummary,
    /// Every event of the action, in order.
    pub events: Vec<Event>,
}

/// GET /v1/state/usage.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct UsageView {
    /// Organisation.
    pub org: String,
    /// Current month (UTC), `YYYY-MM`.
    pub month: String,
    /// Run units used this month.
    pub units: f64,
    /// Monthly quota, if one is set.
    pub quota: Option<f64>,
    /// What is left of it.
    pub remaining: Option<f64>,
    /// Every month with use, newest first.
    pub months: Vec<UsageMonth>,
}

/// POST /v1/keys body.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyCreate {
    /// Organisation (default: the caller's; another only for the host operator).
    #[serde(default)]
    pub org: Option<String>,
    /// Role of the new key (at most the caller's).
    pub role: Role,
    /// Free text, e.g. what uses the key.
    #[serde(default)]
    pub label: Option<String>,
}

/// 201 answer: the key, shown this once.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct KeyCreated {
    /// The secret key. It is not stored (only its SHA-256) and cannot be shown again.
    pub key: String,
    /// Public id (for listing and revoking).
    pub id: String,
    /// Organisation.
    pub org: String,
    /// Role.
    pub role: Role,
    /// Label.
    pub label: String,
}

/// Listing parameters.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct ListParams {
    /// How many, newest first (default 50, at most 1000).
    pub limit: Option<usize>,
}

/// GET /v1/keys parameters.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct KeyListParams {
    /// Organisation (only the host operator may name another than its own).
    pub org: Option<String>,
}

/// GET /v1/audit parameters.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct AuditParams {
    /// Only this actor (e.g. `key:01j…`, `user:alice`).
    pub actor: Option<String>,
    /// Only this mutation: an event kind with or without `audit.` (`key.created`,
    /// `approval.decided`, `undo.requested`, `config.changed`, `action.submitted`).
    pub action: Option<String>,
    /// From this time (RFC 3339 or ms since the epoch).
    pub since: Option<String>,
    /// Before this time (RFC 3339 or ms since the epoch).
    pub until: Option<String>,
    /// At most this many, oldest first (default 1000, at most 10000).
    pub limit: Option<usize>,
}

/// One audit record.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct AuditRecord {
    /// Journal sequence number.
    pub seq: u64,
    /// When, ms.
    pub ts_ms: i64,
    /// Kind.
    pub kind: String,
    /// Who.
    pub actor: String,
    /// Organisation.
    pub org: String,
    /// Role of the actor.
    pub role: Option<String>,
    /// Where the request came from.
    pub source: Option<String>,
    /// What it acted on (key, approval, transaction, action).
    pub target: Option<String>,
    /// State before, where it applies.
    pub before: Option<Value>,
    /// State after, where it applies.
    pub after: Option<Value>,
}

/// Health answer.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct Health {
    /// `ok`, `ready` or `stopping`.
    pub status: String,
    /// Newest journal sequence number published.
    pub head: u64,
}

// ---------------------------------------------------------------------------------------------
// Handlers.

async fn openapi_doc() -> Response {
    let mut r = Json(crate::openapi::openapi()).into_response();
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("max-age=60"),
    );
    r
}

async fn healthz(axum::extract::State(st): axum::extract::State<St>) -> Json<Health> {
    Json(Health {
        status: "ok".into(),
        head: st.hub.head(),
    })
}

async fn readyz(axum::extract::State(st): axum::extract::State<St>) -> ApiResult<Json<Health>> {
    if st.is_shutting_down() {
        return Err(ApiError::unavailable("the daemon is shutting down", 5));
    }
    st.read(|j| j.head()).await?;
    Ok(Json(Health {
        status: "ready".into(),
        head: st.hub.head(),
    }))
}

async fn metrics(
    axum::extract::State(st): axum::extract::State<St>,
    p: Principal,
) -> ApiResult<Response> {
    if !p.is_host_operator() {
        return Err(ApiError::forbidden(
            "metrics cover every organisation, so only the host operator reads them: use the Unix socket, or an owner key of org `local`",
        ));
    }
    let pending = st.approvals.lock().map(|a| a.len()).unwrap_or(0);
    let running = st.running.lock().map(|r| r.len()).unwrap_or(0);
    let mut text = st
        .metrics
        .render(st.queued.load(Ordering::Acquire), running, pending);
    // The model tier's counters (tokens, cost, cache hit ratio) read the plan cache's
    // SQLite file: off the async threads.
    let planner = st.clone();
    if let Ok(llm) = tokio::task::spawn_blocking(move || {
        planner
            .engine
            .planner()
            .map(|p| p.prometheus())
            .unwrap_or_default()
    })
    .await
    {
        text.push_str(&llm);
    }
    let mut r = text.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    Ok(r)
}

/// Idempotency keys are scoped to who used them: one org's key never answers another's.
fn idem_key(org: &str, actor: &str, key: &str) -> String {
    format!("{org}\u{0}{actor}\u{0}{key}")
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Refills the idempotency cache from the journal's recent keyed submissions, so a client
/// that retries because the daemon restarted gets its action back instead of a second one.
/// Newest first, stopping at the cache's capacity or its time-to-live.
pub(crate) fn restore_idempotency(
    st: &State,
    j: &kernos_journal::Journal,
) -> Result<usize, kernos_journal::JournalError> {
    let cfg = &st.config;
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
                found.push((idem_key(&e.org, &e.actor.0, k), a, body, age));
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

fn unhex(s: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    if s.len() != 64 {
        return None;
    }
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

fn body_hash(req: &SubmitRequest) -> [u8; 32] {
    let bytes = serde_json::to_vec(req).unwrap_or_default();
    sha2::Sha256::digest(&bytes).into()
}

fn check_submission(req: &SubmitRequest) -> ApiResult<()> {
    match (&req.request, &req.plan) {
        (None, None) if req.undo.is_some() => {}
        (None, None) => {
            return Err(ApiError::unprocessable(
                "give `request` (plain language), `plan`, or `undo`",
            ));
        }
        (_, _) if req.undo.is_some() => {
            return Err(ApiError::unprocessable(
                "`undo` goes alone: give `undo`, `request` or `plan`, not several",
            ));
        }
        (Some(t), _) if t.trim().is_empty() => {
            return Err(ApiError::unprocessable(
                "`request` is empty: say what you want, e.g. \"show the 5 largest files in /var/log\"",
            ));
        }
        (Some(t), _) if t.len() > 4096 => {
            return Err(ApiError::unprocessable(
                "`request` is longer than 4096 bytes; shorten it or send a plan",
            ));
        }
        (_, Some(p)) if p.steps.is_empty() => {
            return Err(ApiError::unprocessable(
                "the plan has no steps; add at least one",
            ));
        }
        _ => {}
    }
    if let Some(c) = &req.cwd {
        if !c.starts_with('/') || c.contains('\0') {
            return Err(ApiError::unprocessable(format!(
                "`cwd` must be an absolute path, not {c:?}"
            )));
        }
    }
    Ok(())
}

fn check_quota(st: &State, org: &str) -> ApiResult<()> {
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

/// Queues a job after journaling `action.submitted`. The queue slot is reserved first, so a
/// full queue answers 429 without journaling anything.
async fn enqueue(st: &St, job: Job, payload: Value) -> ApiResult<()> {
    if st.is_shutting_down() {
        return Err(ApiError::unavailable(
            "the daemon is shutting down; retry against the restarted daemon",
            5,
        ));
    }
    let depth = st.queued.fetch_add(1, Ordering::AcqRel);
    if depth >= st.config.queue {
        st.queued.fetch_sub(1, Ordering::AcqRel);
        st.metrics.queue_full.fetch_add(1, Ordering::Relaxed);
        return Err(ApiError::too_many(
            "queue-full",
            format!(
                "{depth} actions are already waiting (server.queue = {}); retry in a moment",
                st.config.queue
            ),
            1,
        ));
    }
    let ev = NewEvent::new(kind::ACTION_SUBMITTED, job.principal.actor.clone())
        .org(&job.principal.org)
        .action(job.action)
        .payload(payload);
    if let Err(e) = st.append(ev).await {
        st.queued.fetch_sub(1, Ordering::AcqRel);
        return Err(e.into());
    }
    if let Err(e) = st.queue.try_send(job) {
        st.queued.fetch_sub(1, Ordering::AcqRel);
        let job = match e {
            std::sync::mpsc::TrySendError::Full(j)
            | std::sync::mpsc::TrySendError::Disconnected(j) => j,
        };
        let _ = st
            .append(
                NewEvent::new(ACTION_FINISHED, job.principal.actor.clone())
                    .org(&job.principal.org)
                    .action(job.action)
                    .payload(
                        json!({"status": "aborted", "error": "the queue refused it", "units": 0.0}),
                    ),
            )
            .await;
        return Err(ApiError::too_many(
            "queue-full",
            "the action queue is full; retry in a moment",
            1,
        ));
    }
    st.metrics.accepted.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

fn accepted(action: ActionId, replayed: bool) -> Response {
    let mut r = (
        StatusCode::ACCEPTED,
        Json(Accepted {
            action: action.to_string(),
            status: "queued".into(),
            events: format!("/v1/events?action={action}"),
            replayed,
        }),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("/v1/state/actions/{action}")) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

async fn submit(
    axum::extract::State(st): axum::extract::State<St>,
    p: Principal,
    headers: HeaderMap,
    Body(req): Body<SubmitRequest>,
) -> ApiResult<Response> {
    p.require(Perm::Submit)?;
    check_submission(&req)?;
    check_quota(&st, &p.org)?;
    let idem = match headers.get("idempotency-key") {
        Some(v) => {
            let k = v
                .to_str()
                .ok()
                .filter(|k| !k.is_empty() && k.len() <= 255)
                .ok_or_else(|| {
                    ApiError::bad_request("Idempotency-Key must be 1-255 visible ASCII characters")
                })?;
            Some(idem_key(&p.org, &p.actor.0, k))
        }
        None => None,
    };
    let hash = body_hash(&req);
    let action = ActionId::generate();
    if let Some(k) = &idem {
        // Looked up and claimed under one lock, so two concurrent requests with the same key
        // make one action.
        let mut c = st
            .idem
            .lock()
            .map_err(|_| ApiError::internal("idempotency cache unavailable; retry"))?;
        if let Some(h) = c.get(k, Instant::now()) {
            if h.body != hash {
                return Err(ApiError::unprocessable(
                    "this Idempotency-Key was used for a different request; use a new key for a new request",
                ));
            }
            return Ok(accepted(h.action, true));
        }
        c.put(k.clone(), action, hash, Instant::now());
    }
    let payload = json!({
        "request": req.request,
        "plan": req.plan,
        "cwd": req.cwd,
        "dry_run": req.dry_run,
        "auto_approve": req.auto_approve,
        "role": p.role,
        "source": p.source,
        "idempotency_key": idem.as_ref().map(|_| headers.get("idempotency-key").and_then(|v| v.to_str().ok()).unwrap_or("")),
        // With the key, so a restarted daemon still recognises a retry (see
        // `restore_idempotency`).
        "body_sha256": idem.as_ref().map(|_| hex(&hash)),
    });
    let queued = enqueue(
        &st,
        Job {
            action,
            principal: p,
            req,
            undo: None,
        },
        payload,
    )
    .await;
    if let Err(e) = queued {
        // Not accepted: a retry with the same key must be able to go through.
        if let (Some(k), Ok(mut c)) = (&idem, st.idem.lock()) {
            c.remove(k);
        }
        return Err(e);
    }
    Ok(accepted(action, false))
}

fn clamp_limit(l: Option<usize>, default: usize, max: usize) -> usize {
    l.unwrap_or(default).clamp(1, max)
}

fn summarise(submitted: &Event, finished: Option<&Event>, started: bool) -> ActionSummary {
    let fp = finished.map(|f| &f.payload);
    let status = match fp {
        Some(p) => p["status"].as_str().unwrap_or("unknown").to_owned(),
        None if started => "running".into(),
        None => "queued".into(),
    };
    ActionSummary {
        action: submitted.action.map(|a| a.to_string()).unwrap_or_default(),
        org: submitted.org.clone(),
        actor: submitted.actor.0.clone(),
        submitted_ms: submitted.ts_ms,
        request: submitted.payload["request"]
            .as_str()
            .map(str::to_owned)
            .or_else(|| {
                submitted.payload["plan"]["request"]
                    .as_str()
                    .map(str::to_owned)
            }),
        status,
        tx: fp.and_then(|p| p["tx"].as_str().map(str::to_owned)),
        units: fp.and_then(|p| p["units"].as_f64()),
        error: fp.and_then(|p| p["error"].as_str().map(str::to_owned)),
    }
}

async fn list_actions(
    axum::extract::State(st): axum::extract::State<St>,
    p: Principal,
    Q(q): Q<ListParams>,
) -> ApiResult<Json<Vec<ActionSummary>>> {
    p.require(Perm::Read)?;
    let limit = clamp_limit(q.limit, 50, 1000);
    let org = p.org.clone();
    let out = st
        .read(move |j| {
            let subs = j.query(&JQuery {
                kind: Some(kind::ACTION_SUBMITTED.into()),
                org: Some(org.clone()),
                newest_first: true,
                limit: Some(limit),
                ..JQuery::default()
            })?;
            let mut out = Vec::with_capacity(subs.len());
            for s in &subs {
                let Some(a) = s.action else { continue };
                let fin = j
                    .query(&JQuery {
                        action: Some(a.to_string()),
                        kind: Some(ACTION_FINISHED.into()),
                        limit: Some(1),
                        ..JQuery::default()
                    })?
                    .into_iter()
                    .next();
                let started = fin.is_some()
                    || j.count(&JQuery {
                        action: Some(a.to_string()),
                        after: Some(s.seq),
                        limit: Some(1),
                        ..JQuery::default()
                    })? > 0;
                out.push(summarise(s, fin.as_ref(), started));
            }
            Ok(out)
        })
        .await?;
    Ok(Json(out))
}

fn parse_action(id: &str) -> ApiResult<ActionId> {
    id.parse::<ActionId>().map_err(|e| {
        ApiError::not_found(format!(
            "no action {id:?} ({e}); list actions with GET /v1/state/actions"
        ))
    })
}

async fn get_action(
    axum::extract::State(st): axum::extract::State<St>,
    p: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<ActionDetail>> {
    p.require(Perm::Read)?;
    let a = parse_action(&id)?;
    let org = p.org.clone();
    let events = st
        .read(move |j| {
            let mut evs = j.query(&JQuery::action(a))?;
            evs.retain(|e| e.org == org);
            Ok(evs)
        })
        .await?;
    let Some(sub) = events.iter().find(|e| e.kind == kind::ACTION_SUBMITTED) else {
        return Err(ApiError::not_found(format!(
            "no action {id} in org {}; list actions with GET /v1/state/actions",
            p.org
        )));
    };
    let fin = events.iter().rev().find(|e| e.kind == ACTION_FINISHED);
    let summary = summarise(sub, fin, events.len() > 1);
    Ok(Json(ActionDetail { summary, events }))
}

/// POST /v1/actions/{id}/cancel answer.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct Cancelled {
    /// The action.
    pub action: String,
    /// `cancelling` (a running step stops cleanly) or `cancelled` (it had not started).
    pub status: String,
}

async fn cancel(
    axum::extract::State(st): axum::extract::State<St>,
    p: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<Cancelled>> {
    p.require(Perm::Submit)?;
    let a = parse_action(&id)?;
    let running = st
        .running
        .lock()
        .map_err(|_| ApiError::internal("action table unavailable; retry"))?
        .get(&a)
        .filter(|(org, _)| *org == p.org)
        .map(|(_, c)| c.clone());
    let status = if let Some(c) = running {
        c.cancel();
        "cancelling"
    } else {
        // Not running: queued (then it is stopped before it starts), finished, or not ours.
        let org = p.org.clone();
        let (exists, finished) = st
            .read(move |j| {
                let evs = j.query(&JQuery::action(a))?;
                Ok((
                    evs.iter()
                        .any(|e| e.org == org && e.kind == kind::ACTION_SUBMITTED),
                    evs.iter().any(|e| e.kind == ACTION_FINISHED),
                ))
            })
            .await?;
        if !exists {
            return Err(ApiError::not_found(format!(
                "no action {id} in org {}; list actions with GET /v1/state/actions",
                p.org
            )));
        }
        if finished {
            return Err(ApiError::conflict(format!(
                "action {id} has already finished"
            )));
        }
        if let Ok(mut c) = st.cancelled.lock() {
            c.insert(a);
        }
        "cancelled"
    };
    st.append(
        NewEvent::new("audit.action.cancelled", p.actor.clone())
            .org(&p.org)
            .action(a)
            .payload(json!({
                "actor": p.actor, "org": p.org, "role": p.role, "source": p.source,
                "before": {"state": if status == "cancelling" {"running"} else {"queued"}},
                "after": {"state": status},
            })),
    )
    .await?;
    Ok(Json(Cancelled {
        action: id,
        status: status.into(),
    }))
}

async fn list_approvals(
    axum::extract::State(st): axum::extract::State<St>,
    p: Principal,
) -> ApiResult<Json<Vec<ApprovalView>>> {
    p.require(Perm::Read)?;
    let mut v: Vec<ApprovalView> = st
        .approvals
        .lock()
        .map_err(|_| ApiError::internal("approval table unavailable; retry"))?
        .values()
        .filter(|a| a.org == p.org)
        .map(|a| a.view.clone())
        .collect();
    v.sort_by_key(|a| a.requested_ms);
    Ok(Json(v))
}

async fn decide(
    axum::extract::State(st): axum::extract::State<St>,
    p: Principal,
    Path(id): Path<String>,
    Body(ans): Body<ApprovalAnswer>,
) -> ApiResult<Json<Decided>> {
    p.require(Perm::Approve)?;
    let missing = || {
        ApiError::not_found(format!(
            "no pending approval {id}: it was answered, timed out, or does not exist; see GET /v1/state/approvals"
        ))
    };
    let aid: ApprovalId = id.parse().map_err(|_| missing())?;
    let pending = {
        let mut map = st
            .approvals
            .lock()
            .map_err(|_| ApiError::internal("approval table unavailable; retry"))?;
        let Some(pe) = map.get(&aid).filter(|pe| pe.org == p.org) else {
            return Err(missing());
        };
        if p.role.max_approvable().is_none_or(|m| pe.risk > m) {
            return Err(ApiError::forbidden(format!(
                "this step is {} risk; role {} may not approve it, it needs {} or higher",
                pe.risk, p.role, pe.view.min_role
            )));
        }
        map.remove(&aid).ok_or_else(missing)?
    };
    let reason = format!(
        "{} by {} ({}){}",
        if ans.approve { "approved" } else { "declined" },
        p.actor,
        p.role,
        ans.reason
            .as_deref()
            .map(|r| format!(": {r}"))
            .unwrap_or_default()
    );
    let _ = pending.answer.try_send(crate::worker::Answer {
        approved: ans.approve,
        reason: reason.clone(),
    });
    let action: Option<ActionId> = pending.view.action.parse().ok();
    let tx: Option<TxId> = pending.view.tx.parse().ok();
    let mut ev = NewEvent::new("audit.approval.decided", p.actor.clone())
        .org(&p.org)
        .payload(json!({
            "actor": p.actor, "org": p.org, "role": p.role, "source": p.source,
            "approval": id, "step": pending.view.step, "name": pending.view.name,
            "risk": pending.risk, "approved": ans.approve, "reason": reason,
            "before": {"state": "pending"},
            "after": {"state": if ans.approve {"approved"} else {"declined"}},
        }));
    if let Some(a) = action {
        ev = ev.action(a);
    }
    if let Some(t) = tx {
        ev = ev.tx(t);
    }
    st.append(ev).await?;
    Ok(Json(Decided {
        approval: id,
        approved: ans.approve,
    }))
}

async fn undo(
    axum::extract::State(st): axum::extract::State<St>,
    p: Principal,
    Path(tx): Path<String>,
    raw: axum::body::Bytes,
) -> ApiResult<Response> {
    p.require(Perm::Undo)?;
    // The body is optional: empty means defaults.
    let body: UndoRequest = if raw.iter().all(u8::is_ascii_whitespace) {
        UndoRequest::default()
    } else {
        serde_json::from_slice(&raw).map_err(|e| {
            ApiError::unprocessable(format!(
                "the body is not an undo request ({e}); send {{}} or {{\"cwd\": \"/abs/path\"}}"
            ))
        })?
    };
    if let Some(c) = &body.cwd {
        if !c.starts_with('/') {
            return Err(ApiError::unprocessable(format!(
                "`cwd` must be an absolute path, not {c:?}"
            )));
        }
    }
    let no_tx = || {
        ApiError::not_found(format!(
            "no transaction {tx} in org {}; list them with GET /v1/state/transactions",
            p.org
        ))
    };
    let id: TxId = tx.parse().map_err(|_| no_tx())?;
    let st2 = st.clone();
    let org = p.org.clone();
    let plan = tokio::task::spawn_blocking(move || {
        if !crate::worker::tx_in_org(&st2, id, &org) {
            return Ok(None);
        }
        st2.engine.undo_plan(id).map(Some)
    })
    .await
    .map_err(|e| ApiError::internal(format!("undo check failed: {e}; retry")))??;
    let Some(plan) = plan else {
        return Err(no_tx());
    };
    check_quota(&st, &p.org)?;
    let items: Vec<&str> = plan.items.iter().map(|i| i.description.as_str()).collect();
    let action = ActionId::generate();
    st.append(
        NewEvent::new("audit.undo.requested", p.actor.clone())
            .org(&p.org)
            .action(action)
            .tx(id)
            .payload(json!({
                "actor": p.actor, "org": p.org, "role": p.role, "source": p.source,
                "tx": id, "before": {"undone": false}, "after": {"undo_requested": true, "items": items},
            })),
    )
    .await?;
    let req = SubmitRequest {
        cwd: body.cwd.clone(),
        auto_approve: true,
        ..SubmitRequest::default()
    };
    let payload = json!({
        "undo": id, "cwd": body.cwd, "role": p.role, "source": p.source,
    });
    enqueue(
        &st,
        Job {
            action,
            principal: p,
            req,
            undo: Some(id),
        },
        payload,
    )
    .await?;
    Ok(accepted(action, false))
}

async fn list_transactions(
    axum::extract::State(st): axum::extract::State<St>,
    p: Principal,
    Q(q): Q<ListParams>,
) -> ApiResult<Json<Vec<kernos_engine::TxSummary>>> {
    p.require(Perm::Read)?;
    let limit = clamp_limit(q.limit, 50, 1000);
    let st2 = st.clone();
    let org = p.org.clone();
    let v = tokio::task::spawn_blocking(move || st2.engine.history(limit, Some(&org)))
        .await
        .map_err(|e| ApiError::internal(format!("history failed: {e}; retry")))??;
    Ok(Json(v))
}

async fn usage(
    axum::extract::State(st): axum::extract::State<St>,
    p: Principal,
) -> ApiResult<Json<UsageView>> {
    p.require(Perm::Read)?;
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

async fn tools(
    axum::extract::State(st): axum::extract::State<St>,
    p: Principal,
) -> ApiResult<Json<Vec<kernos_core::ToolSpec>>> {
    p.require(Perm::Read)?;
    Ok(Json(st.engine.registry().tools()))
}

fn keys_org(p: &Principal, org: Option<&str>) -> ApiResult<String> {
    match org {
        None => Ok(p.org.clone()),
        Some(o) if o == p.org => Ok(o.to_owned()),
        Some(o) if p.is_host_operator() => {
            crate::auth::validate_org(o).map_err(ApiError::unprocessable)?;
            Ok(o.to_owned())
        }
        Some(_) => Err(ApiError::forbidden(format!(
            "keys of another organisation are not yours to manage; you manage org {}",
            p.org
        ))),
    }
}

async fn list_keys(
    axum::extract::State(st): axum::extract::State<St>,
    p: Principal,
    Q(q): Q<KeyListParams>,
) -> ApiResult<Json<Vec<KeyInfo>>> {
    p.require(Perm::ManageKeys)?;
    let org = keys_org(&p, q.org.as_deref())?;
    let keys = st
        .keys
        .read()
        .map_err(|_| ApiError::internal("key table unavailable; retry"))?
        .list(Some(&org));
    Ok(Json(keys))
}

async fn create_key(
    axum::extract::State(st): axum::extract::State<St>,
    p: Principal,
    Body(req): Body<KeyCreate>,
) -> ApiResult<Response> {
    p.require(Perm::ManageKeys)?;
    let org = keys_org(&p, req.org.as_deref())?;
    if req.role > p.role {
        return Err(ApiError::forbidden(format!(
            "role {} may create keys up to {}, not {}",
            p.role, p.role, req.role
        )));
    }
    let label = req.label.unwrap_or_default();
    if label.len() > 200 {
        return Err(ApiError::unprocessable("label is longer than 200 bytes"));
    }
    let k =
        crate::auth::generate_key(&org, req.role, &label, &p).map_err(ApiError::unprocessable)?;
    st.append(
        NewEvent::new(KEY_CREATED, p.actor.clone())
            .org(&org)
            .payload(k.payload.clone()),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(KeyCreated {
            key: k.secret,
            id: k.id,
            org,
            role: req.role,
            label,
        }),
    )
        .into_response())
}

async fn revoke_key(
    axum::extract::State(st): axum::extract::State<St>,
    p: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<KeyInfo>> {
    p.require(Perm::ManageKeys)?;
    let found = st
        .keys
        .read()
        .map_err(|_| ApiError::internal("key table unavailable; retry"))?
        .get(&id)
        .cloned();
    let Some(k) = found.filter(|k| k.org == p.org || p.is_host_operator()) else {
        return Err(ApiError::not_found(format!(
            "no key {id} in org {}; list keys with GET /v1/keys",
            p.org
        )));
    };
    if k.role > p.role {
        return Err(ApiError::forbidden(format!(
            "key {id} has role {}; role {} may not revoke it",
            k.role, p.role
        )));
    }
    if k.revoked {
        return Err(ApiError::conflict(format!("key {id} is already revoked")));
    }
    st.append(
        NewEvent::new(KEY_REVOKED, p.actor.clone())
            .org(&k.org)
            .payload(json!({
                "key_id": id, "org": k.org, "role": k.role, "label": k.label,
                "actor": p.actor, "actor_org": p.org, "actor_role": p.role, "source": p.source,
                "before": {"revoked": false}, "after": {"revoked": true},
            })),
    )
    .await?;
    let mut k = k;
    k.revoked = true;
    Ok(Json(k))
}

/// Parses a time given as ms since the epoch or RFC 3339.
fn parse_time(s: &str, what: &str) -> ApiResult<i64> {
    if let Ok(ms) = s.parse::<i64>() {
        return Ok(ms);
    }
    humantime::parse_rfc3339_weak(s)
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_millis() as i64)
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "{what}={s:?} is not a time: give RFC 3339 (2026-01-31T12:00:00Z) or ms since the epoch"
            ))
        })
}

async fn audit_records(st: &St, p: &Principal, q: AuditParams) -> ApiResult<Vec<AuditRecord>> {
    p.require(Perm::Audit)?;
    let since = q
        .since
        .as_deref()
        .map(|s| parse_time(s, "since"))
        .transpose()?;
    let until = q
        .until
        .as_deref()
        .map(|s| parse_time(s, "until"))
        .transpose()?;
    let limit = clamp_limit(q.limit, 1000, 10_000);
    let kinds: Vec<JQuery> = match q.action.as_deref() {
        Some(a) => {
            let k = if a.starts_with("audit.")
                || [kind::ACTION_SUBMITTED, kind::TX_STARTED, kind::TX_UNDONE].contains(&a)
            {
                a.to_owned()
            } else if a == "submitted" {
                kind::ACTION_SUBMITTED.to_owned()
            } else {
                format!("audit.{a}")
            };
            vec![JQuery::kind(&k)]
        }
        None => vec![
            JQuery::kind_prefix("audit."),
            JQuery::kind(kind::ACTION_SUBMITTED),
            JQuery::kind(kind::TX_STARTED),
            JQuery::kind(kind::TX_UNDONE),
        ],
    };
    let org = p.org.clone();
    let actor = q.actor.clone();
    let mut evs = st
        .read(move |j| {
            let mut all = Vec::new();
            for mut k in kinds {
                k.org = Some(org.clone());
                k.actor = actor.clone();
                k.since_ms = since;
                k.until_ms = until;
                k.limit = Some(limit);
                for e in j.query(&k)? {
                    // Transactions are audit records only when the CLI ran them itself (no
                    // daemon): through the daemon, action.submitted and audit.* say it already.
                    if e.kind.starts_with("tx.") {
                        let via_daemon = match e.action {
                            Some(a) => {
                                j.count(&JQuery {
                                    action: Some(a.to_string()),
                                    kind: Some(kind::ACTION_SUBMITTED.into()),
                                    ..JQuery::default()
                                })? > 0
                                    || j.count(&JQuery {
                                        action: Some(a.to_string()),
                                        kind: Some("audit.undo.requested".into()),
                                        ..JQuery::default()
                                    })? > 0
                            }
                            None => false,
                        };
                        if via_daemon {
                            continue;
                        }
                    }
                    all.push(e);
                }
            }
            Ok(all)
        })
        .await?;
    evs.sort_by_key(|e| e.seq);
    evs.truncate(limit);
    Ok(evs
        .into_iter()
        .map(|e| {
            let p = &e.payload;
            let s = |k: &str| p.get(k).and_then(Value::as_str).map(str::to_owned);
            let target = s("key_id")
                .or_else(|| s("approval"))
                .or_else(|| p.get("tx").and_then(Value::as_str).map(str::to_owned))
                .or_else(|| e.tx.map(|t| t.to_string()))
                .or_else(|| e.action.map(|a| a.to_string()));
            AuditRecord {
                seq: e.seq,
                ts_ms: e.ts_ms,
                kind: e.kind.clone(),
                actor: e.actor.0.clone(),
                org: e.org.clone(),
                role: s("role").or_else(|| s("actor_role")),
                source: s("source").or_else(|| {
                    e.kind
                        .starts_with("tx.")
                        .then(|| "cli (embedded engine)".to_owned())
                }),
                target,
                before: p.get("before").cloned().filter(|v| !v.is_null()),
                after: p
                    .get("after")
                    .cloned()
                    .filter(|v| !v.is_null())
                    .or_else(|| {
                        (e.kind == kind::ACTION_SUBMITTED || e.kind.starts_with("tx."))
                            .then(|| p.clone())
                    }),
            }
        })
        .collect())
}

async fn audit_json(
    axum::extract::State(st): axum::extract::State<St>,
    p: Principal,
    Q(q): Q<AuditParams>,
) -> ApiResult<Json<Vec<AuditRecord>>> {
    Ok(Json(audit_records(&st, &p, q).await?))
}

fn csv_field(s: &str) -> String {
    // Cells that a spreadsheet would run as a formula are prefixed with a quote.
    let s = if s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

async fn audit_csv(
    axum::extract::State(st): axum::extract::State<St>,
    p: Principal,
    Q(q): Q<AuditParams>,
) -> ApiResult<Response> {
    let recs = audit_records(&st, &p, q).await?;
    let mut out = String::from("seq,time,kind,actor,org,role,source,target,before,after\n");
    for r in recs {
        let t = humantime::format_rfc3339_millis(
            std::time::UNIX_EPOCH + Duration::from_millis(r.ts_ms.max(0) as u64),
        )
        .to_string();
        let j = |v: &Option<Value>| v.as_ref().map(|v| v.to_string()).unwrap_or_default();
        let row = [
            r.seq.to_string(),
            t,
            r.kind,
            r.actor,
            r.org,
            r.role.unwrap_or_default(),
            r.source.unwrap_or_default(),
            r.target.unwrap_or_default(),
            j(&r.before),
            j(&r.after),
        ];
        out.push_str(
            &row.iter()
                .map(|c| csv_field(c))
                .collect::<Vec<_>>()
                .join(","),
        );
        out.push('\n');
    }
    let mut r = out.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_are_quoted_and_defused() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=cmd()"), "'=cmd()");
    }

    #[test]
    fn times_parse_both_ways() {
        assert_eq!(parse_time("1000", "since").unwrap(), 1000);
        assert_eq!(parse_time("1970-01-01T00:00:01Z", "since").unwrap(), 1000);
        assert!(parse_time("yesterday", "since").is_err());
    }
}
