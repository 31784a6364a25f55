//! What wraps every request, matched or not: the concurrency limit, the request timeout,
//! latency metrics by route, problem documents for errors produced outside handlers, and the
//! answers for unknown paths and methods.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::extract::MatchedPath;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::St;
use crate::error::{ApiError, PROBLEM_JSON};

/// The answer for a path no route matches.
pub(crate) async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint; the API is described at GET /v1/openapi.json")
}

/// The answer for a known path called with a method it does not take.
pub(crate) async fn method_not_allowed() -> ApiError {
    ApiError::from_status(
        StatusCode::METHOD_NOT_ALLOWED,
        "this endpoint does not take that method; see GET /v1/openapi.json",
    )
}

/// Global limits and bookkeeping around every request: the concurrency limit (503 beyond it),
/// the per-request timeout (to the response head), latency metrics by route, and problem
/// documents for errors produced outside handlers (bad JSON, body too large…).
pub(crate) async fn guard(
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
    if let Some(refused) = head_too_large(&req) {
        st.metrics
            .observe(&method, &route, started.elapsed().as_secs_f64());
        return refused.into_response();
    }
    if let Some(too_big) = declared_too_large(&req, st.config().body_limit) {
        // Refused at once: waiting for a body this large (or one never sent) would only hold
        // a connection and a slot. The connection closes, since the body is not read.
        let mut resp = too_big.into_response();
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        st.metrics
            .observe(&method, &route, started.elapsed().as_secs_f64());
        return resp;
    }
    let in_flight = st.in_flight.fetch_add(1, Ordering::AcqRel);
    let resp = if in_flight >= st.config().concurrency {
        // The body is read (up to the limit) and dropped, so a keep-alive client can send its
        // retry on the same connection.
        let _ = axum::body::to_bytes(req.into_body(), st.config().body_limit).await;
        ApiError::unavailable(
            format!(
                "the daemon is handling {} requests already; retry shortly",
                st.config().concurrency
            ),
            1,
        )
        .into_response()
    } else {
        match tokio::time::timeout(
            Duration::from_millis(st.config().request_timeout_ms),
            next.run(req),
        )
        .await
        {
            Ok(r) => r,
            Err(_) => ApiError::from_status(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "no answer within {} ms; retry, or narrow the request (e.g. a smaller limit)",
                    st.config().request_timeout_ms
                ),
            )
            .into_response(),
        }
    };
    st.in_flight.fetch_sub(1, Ordering::AcqRel);
    // MCP answers its own errors the way its clients read them (JSON-RPC bodies).
    let resp = if route == "/mcp" {
        resp
    } else {
        problemize(resp).await
    };
    st.metrics
        .observe(&method, &route, started.elapsed().as_secs_f64());
    resp
}

/// Longest request target answered; longer ones get 414 as a problem document. Below hyper's
/// own limit, whose refusal has no body (and no hook to give it one).
const MAX_URI_BYTES: usize = 8 * 1024;

/// Most header bytes answered; more get 431 as a problem document (hyper's own limit, far
/// above, answers with an empty body).
const MAX_HEADER_BYTES: usize = 64 * 1024;

/// 414 for a very long request target, 431 for very large headers.
fn head_too_large(req: &axum::extract::Request) -> Option<ApiError> {
    let uri = req.uri().to_string().len();
    if uri > MAX_URI_BYTES {
        return Some(ApiError::from_status(
            StatusCode::URI_TOO_LONG,
            format!(
                "the request target is {uri} bytes, more than the {MAX_URI_BYTES} this daemon \
                 reads; send long values in a JSON body instead"
            ),
        ));
    }
    let headers: usize = req
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    (headers > MAX_HEADER_BYTES).then(|| {
        ApiError::from_status(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            format!(
                "the headers are {headers} bytes, more than the {MAX_HEADER_BYTES} this daemon \
                 reads; send fewer or shorter headers"
            ),
        )
    })
}

/// 413 when the request declares a `Content-Length` above `limit`.
fn declared_too_large(req: &axum::extract::Request, limit: usize) -> Option<ApiError> {
    let len: u64 = req
        .headers()
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    (len > limit as u64).then(|| {
        ApiError::from_status(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the body is {len} bytes, more than the {limit} this daemon takes (server.body_limit); send a smaller one"
            ),
        )
    })
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
