//! Errors as RFC 7807 problem documents (`application/problem+json`).
//!
//! Every handler fails with a [`Problem`]: a status, a short title and a
//! detail a person can act on, plus `column` for a query that does not
//! parse. Errors that axum or a layer produce themselves (an unknown path,
//! a wrong method, a body over the limit, a malformed JSON body) are
//! rewritten into the same shape by [`problem_layer`], so a client sees
//! one error format whatever failed.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tidewatch_core::query::ParseError;
use utoipa::ToSchema;

/// The media type of a problem document.
pub const PROBLEM_JSON: &str = "application/problem+json";
/// At most this much of a non-problem error body becomes the detail.
const DETAIL_BYTES: usize = 4096;

/// An RFC 7807 problem document.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem (`about:blank` when the status says it all).
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// For a query that does not parse: the 1-based column of the error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
}

impl Problem {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Problem {
        Problem {
            kind: "about:blank".into(),
            title: status.canonical_reason().unwrap_or("Error").to_string(),
            status: status.as_u16(),
            detail: detail.into(),
            column: None,
        }
    }

    pub fn bad_request(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::BAD_REQUEST, detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::NOT_FOUND, detail)
    }

    pub fn internal(detail: impl std::fmt::Display) -> Problem {
        Problem::new(StatusCode::INTERNAL_SERVER_ERROR, detail.to_string())
    }

    /// A query that does not parse, with the column of the error.
    pub fn query(e: &ParseError) -> Problem {
        Problem {
            kind: "https://tidewatch.invalid/problems/query-syntax".into(),
            title: "The query does not parse".into(),
            status: 400,
            detail: format!("{} at column {}", e.kind, e.column),
            column: Some(e.column),
        }
    }

    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut res = (self.status_code(), body).into_response();
        res.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        res
    }
}

impl From<tidewatch_store::StoreError> for Problem {
    fn from(e: tidewatch_store::StoreError) -> Problem {
        match e {
            tidewatch_store::StoreError::Invalid(m) => Problem::bad_request(m),
            other => Problem::internal(other),
        }
    }
}

/// Rewrites every error response (status ≥ 400) that is not already a
/// problem document into one, keeping its text as the detail.
pub async fn problem_layer(req: Request, next: Next) -> Response {
    let res = next.run(req).await;
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return res;
    }
    let is_problem = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(PROBLEM_JSON.as_bytes()));
    if is_problem {
        return res;
    }
    let (parts, body) = res.into_parts();
    let text = match axum::body::to_bytes(body, DETAIL_BYTES).await {
        Ok(b) => String::from_utf8_lossy(&b).trim().to_string(),
        Err(_) => String::new(),
    };
    let detail = if text.is_empty() {
        status.canonical_reason().unwrap_or("Error").to_string()
    } else {
        text
    };
    let mut out = Problem::new(status, detail).into_response();
    // Keep headers that matter to the client (Allow on 405, WWW-Authenticate).
    for name in [header::ALLOW, header::WWW_AUTHENTICATE, header::RETRY_AFTER] {
        if let Some(v) = parts.headers.get(&name) {
            out.headers_mut().insert(name, v.clone());
        }
    }
    out
}

/// The body of an empty response, for handlers that answer 204.
pub fn no_content() -> Response {
    (StatusCode::NO_CONTENT, Body::empty()).into_response()
}
