//! Extractors whose rejections are problem documents with advice, instead of axum's plain-text
//! ones: a JSON body ([`Body`]) and a query string ([`Q`]).

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;

use crate::error::ApiError;

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
