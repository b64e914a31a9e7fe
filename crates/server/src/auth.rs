//! Who may do what: every request but the health check needs a bearer
//! token; reads need the `read` role, writes `admin`.
//!
//! A route's role follows its method (GET reads, POST/PUT/DELETE write),
//! except the few POSTs that change nothing ([`READ_POSTS`]). With
//! `anonymous_read` (loopback only, checked at start) a request without
//! a token may read.
//!
//! The dashboard's pages (every path outside `/api/v1`) are reads too. A
//! browser signs in at `/login`, which sets the `tidewatch_token` cookie;
//! a request without a bearer header may present that cookie instead, and
//! it grants the read role only, whatever the token's own role: a write
//! needs the header, so no other site can make a browser write (no CSRF
//! surface). A page request without credentials is redirected to
//! `/login`; an API request keeps its 401 problem document.

use crate::dashboard;
use crate::problem::Problem;
use crate::state::AppState;
use crate::tokens::Role;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use std::sync::Arc;
use std::time::Duration;

/// Paths anyone may read, without a token: a liveness probe.
pub const PUBLIC_PATHS: &[&str] = &["/api/v1/health"];
/// POST routes that only read.
pub const READ_POSTS: &[&str] = &["/api/v1/feeds/validate"];

/// The role a request needs.
pub fn required_role(method: &Method, path: &str) -> Role {
    if method == Method::GET || method == Method::HEAD || method == Method::OPTIONS || READ_POSTS.contains(&path) {
        Role::Read
    } else {
        Role::Admin
    }
}

fn unauthorized(detail: &str) -> Response {
    let mut res = Problem::new(StatusCode::UNAUTHORIZED, detail).into_response();
    res.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    res
}

/// Checks the bearer token of a request against the role its route needs.
pub async fn require_role(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if PUBLIC_PATHS.contains(&path) || dashboard::PUBLIC_PATHS.contains(&path) {
        return next.run(req).await;
    }
    let needed = required_role(req.method(), path);
    let presented = req.headers().get(header::AUTHORIZATION).map(|v| {
        v.to_str()
            .ok()
            .and_then(|s| s.strip_prefix("Bearer ").or_else(|| s.strip_prefix("bearer ")))
            .map(str::trim)
    });
    // The sign-in cookie, when its token is known: reading only.
    let cookie_reads =
        presented.is_none() && cookie_token(req.headers()).is_some_and(|t| state.tokens.role_of(t).is_some());
    let role = match presented {
        None if cookie_reads => Role::Read,
        None if state.config.anonymous_read && needed == Role::Read => Role::Read,
        None if dashboard::is_page(path) => return Redirect::to(dashboard::LOGIN_PATH).into_response(),
        None => return unauthorized("this endpoint needs a bearer token (`tidewatch token create`)"),
        Some(None) => return unauthorized("the Authorization header must be `Bearer <token>`"),
        Some(Some(token)) => {
            // A hash and a stat of the tokens file: cheap enough inline.
            match state.tokens.role_of(token) {
                Some(r) => r,
                None => return unauthorized("unknown token"),
            }
        }
    };
    if role < needed {
        return Problem::new(
            StatusCode::FORBIDDEN,
            format!(
                "this needs the {} role; the token has {}",
                needed.as_str(),
                role.as_str()
            ),
        )
        .into_response();
    }
    next.run(req).await
}

/// The token of the dashboard's sign-in cookie, if the request has one.
pub fn cookie_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == dashboard::COOKIE)
        .map(|(_, value)| value.trim())
}

/// Answers 503 when a handler has not produced its response head in time.
/// Streaming bodies (export, the event stream) are not cut: their head is
/// sent at once.
pub async fn timeout(State(limit): State<Duration>, req: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(res) => res,
        Err(_) => {
            let mut res = Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("the request took longer than {} ms", limit.as_millis()),
            )
            .into_response();
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            res
        }
    }
}
