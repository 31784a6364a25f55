//! Every error the API returns: an RFC 7807 problem document whose `detail` says what to do.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use schemars::JsonSchema;
use serde::Serialize;

/// The media type of problem documents.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// An RFC 7807 problem document.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Problem {
    /// A URI naming the problem type (`about:blank` style tags under `/problems/`).
    #[serde(rename = "type")]
    pub kind: String,
    /// Short, fixed summary of the problem type.
    pub title: String,
    /// HTTP status code.
    pub status: u16,
    /// What went wrong in this case and what to do about it.
    pub detail: String,
    /// Seconds to wait before retrying (429, 503).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
}

/// An error answered as a problem document.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// Status.
    pub status: StatusCode,
    /// Slug for the type URI and a fixed title.
    pub slug: &'static str,
    /// What went wrong and what to do.
    pub detail: String,
    /// Retry-After, seconds.
    pub retry_after: Option<u64>,
}

impl ApiError {
    fn new(status: StatusCode, slug: &'static str, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            slug,
            detail: detail.into(),
            retry_after: None,
        }
    }

    /// 400: the request is malformed.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad-request", detail)
    }
    /// 401: no or unknown credentials.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
    }
    /// 403: authenticated, but the role does not allow it.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }
    /// 404: nothing by that id in the caller's organisation.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", detail)
    }
    /// 409: the state does not allow it (already decided, already undone…).
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", detail)
    }
    /// 422: well-formed but not acceptable (invalid plan, reused idempotency key).
    pub fn unprocessable(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "unprocessable", detail)
    }
    /// 402: the organisation's monthly quota is used up.
    pub fn quota(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYMENT_REQUIRED, "quota-exceeded", detail)
    }
    /// 429 with Retry-After.
    pub fn too_many(slug: &'static str, detail: impl Into<String>, retry_after: u64) -> Self {
        ApiError {
            retry_after: Some(retry_after.max(1)),
            ..Self::new(StatusCode::TOO_MANY_REQUESTS, slug, detail)
        }
    }
    /// 503 with Retry-After.
    pub fn unavailable(detail: impl Into<String>, retry_after: u64) -> Self {
        ApiError {
            retry_after: Some(retry_after.max(1)),
            ..Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", detail)
        }
    }
    /// 500: a fault of the daemon; the detail still says what to do.
    pub fn internal(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", detail)
    }
    /// Any status, for errors produced outside handlers (unknown route, body too large…).
    pub fn from_status(status: StatusCode, detail: impl Into<String>) -> Self {
        let slug = match status.as_u16() {
            400 => "bad-request",
            401 => "unauthorized",
            403 => "forbidden",
            404 => "not-found",
            405 => "method-not-allowed",
            406 => "not-acceptable",
            408 => "timeout",
            413 => "body-too-large",
            415 => "unsupported-media-type",
            422 => "unprocessable",
            429 => "rate-limited",
            503 => "unavailable",
            504 => "timeout",
            _ if status.is_server_error() => "internal",
            _ => "error",
        };
        Self::new(status, slug, detail)
    }

    /// The document.
    pub fn problem(&self) -> Problem {
        Problem {
            kind: format!("https://kernos.dev/problems/{}", self.slug),
            title: self.status.canonical_reason().unwrap_or("Error").to_owned(),
            status: self.status.as_u16(),
            detail: self.detail.clone(),
            retry_after: self.retry_after,
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.status, self.detail)
    }
}

impl From<kernos_journal::JournalError> for ApiError {
    fn from(e: kernos_journal::JournalError) -> Self {
        use kernos_journal::JournalError as J;
        match e {
            J::Busy => ApiError::unavailable(format!("{e}"), 1),
            J::DiskFull => ApiError::unavailable(
                "the disk holding the journal is full; the operator must free space, then retry",
                30,
            ),
            _ => ApiError::internal(format!(
                "the journal failed: {e}; retry, and if it persists ask the operator to run `kernos journal verify`"
            )),
        }
    }
}

impl From<kernos_engine::EngineError> for ApiError {
    fn from(e: kernos_engine::EngineError) -> Self {
        use kernos_engine::EngineError as E;
        match e {
            E::Invalid(_) => ApiError::unprocessable(format!("{e}; fix the plan and resubmit")),
            E::NoSuchTx(_) => ApiError::not_found(format!(
                "{e}; list transactions with GET /v1/state/transactions"
            )),
            E::Ambiguous(..) => ApiError::bad_request(e.to_string()),
            E::NothingToUndo(m) => ApiError::conflict(m),
            E::Journal(j) => j.into(),
            E::BadEvent { .. } => ApiError::internal(e.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.problem()).unwrap_or_default();
        let mut r = (self.status, body).into_response();
        r.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some(s) = self.retry_after {
            if let Ok(v) = HeaderValue::from_str(&s.to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        if self.status == StatusCode::UNAUTHORIZED {
            // RFC 9110 §11.6.1: a 401 names the scheme the client should use.
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"kernos\""),
            );
        }
        r
    }
}

/// Result alias for handlers.
pub type ApiResult<T> = Result<T, ApiError>;
