//! # The web dashboard
//!
//! The idea: the same read functions the JSON API uses, rendered as HTML
//! on the server, so a browser needs nothing but the page. Every page is a
//! plain document (maud escapes every value it writes, so a feed name or a
//! post text cannot inject markup); charts are SVG paths drawn here; the
//! only script is a few lines that listen to the live event stream and
//! prepend new alerts to the overview.
//!
//! - [`layout`]: the page shell (landmarks, navigation, CSS) and the live
//!   script served at `/assets/live.js`.
//! - [`svg`]: the charts: volume with shaded spikes, sparklines, split
//!   bars and the network drawing of a coordinated group.
//! - One module per page: [`overview`] (`/`), [`feeds`] (`/feeds`),
//!   [`feed`] (`/feeds/{name}`), [`narratives`], [`groups`] (`/groups`,
//!   `/groups/{id}`), [`search`], [`login`].
//!
//! Pages are reads. A browser cannot send a bearer header, so `/login`
//! turns a token into an HttpOnly, SameSite=Strict cookie that
//! [`crate::auth::require_role`] accepts for the read role only.
//! Privacy: no page shows an account's pseudonym or handle, nor a post's
//! permalink (it names its author): only counts, redacted texts and
//! anonymous member numbers.

pub mod feed;
pub mod feeds;
pub mod groups;
pub mod layout;
pub mod login;
pub mod narratives;
pub mod overview;
pub mod search;
pub mod svg;

use crate::problem::Problem;
use crate::state::AppState;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use maud::Markup;
use std::sync::Arc;
use tidewatch_core::Timestamp;

/// The cookie `/login` sets: a token, accepted for reading only.
pub const COOKIE: &str = "tidewatch_token";

/// Dashboard paths anyone may fetch: the login form and the live script.
pub const PUBLIC_PATHS: &[&str] = &["/login", "/assets/live.js"];

/// Where an unauthenticated page request is sent.
pub const LOGIN_PATH: &str = "/login";

/// The dashboard's routes.
pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/", get(overview::page))
        .route("/feeds", get(feeds::page))
        .route("/feeds/{name}", get(feed::page))
        .route("/narratives", get(narratives::page))
        .route("/groups", get(groups::list))
        .route("/groups/{id}", get(groups::detail))
        .route("/search", get(search::page))
        .route("/login", get(login::form).post(login::submit))
        .route("/assets/live.js", get(layout::live_js))
}

/// Whether a path is a dashboard page (everything outside the API).
pub fn is_page(path: &str) -> bool {
    !path.starts_with(crate::api::PREFIX)
}

/// A rendered page.
pub struct Html(pub StatusCode, pub Markup);

impl IntoResponse for Html {
    fn into_response(self) -> Response {
        (
            self.0,
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                // Pages show live data: never from a cache.
                (header::CACHE_CONTROL, "no-store"),
            ],
            self.1.into_string(),
        )
            .into_response()
    }
}

/// A page that failed: the problem, shown as a page with its status.
pub struct PageError(pub Problem);

impl From<Problem> for PageError {
    fn from(p: Problem) -> PageError {
        PageError(p)
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let p = self.0;
        let status = StatusCode::from_u16(p.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = maud::html! {
            h1 { (p.title) }
            p role="alert" { (p.detail) }
        };
        Html(status, layout::shell(&p.title, layout::Section::None, body)).into_response()
    }
}

/// What a page handler returns.
pub type PageResult = Result<Html, PageError>;

/// Percent-encodes a path segment exactly as JavaScript's
/// `encodeURIComponent` does, so server-rendered and script-added links
/// are identical.
pub fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `2026-03-02 14:05`: a time to the minute (UTC), as the live script
/// writes it too.
pub fn short_time(t: Timestamp) -> String {
    let s = t.to_rfc3339();
    s.get(..16).unwrap_or(&s).replace('T', " ")
}

/// A count of milliseconds as a short duration (`850 ms`, `12 s`, `3 min`, `2.5 h`).
pub fn duration(ms: i64) -> String {
    let ms = ms.max(0);
    if ms < 1_000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{} s", ms / 1_000)
    } else if ms < 3_600_000 {
        format!("{} min", ms / 60_000)
    } else {
        format!("{:.1} h", ms as f64 / 3_600_000.0)
    }
}

/// `part` of `whole` as a whole percentage (0 for an empty whole).
pub fn percent(part: u64, whole: u64) -> u64 {
    (part * 100 + whole / 2).checked_div(whole).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_encoded_like_encode_uri_component() {
        assert_eq!(encode_segment("quakes"), "quakes");
        assert_eq!(encode_segment("a b/c"), "a%20b%2Fc");
        assert_eq!(encode_segment("<x>&\"é"), "%3Cx%3E%26%22%C3%A9");
        assert_eq!(encode_segment("it's-(ok)_~!*."), "it's-(ok)_~!*.");
    }

    #[test]
    fn times_and_durations_read_short() {
        assert_eq!(
            short_time(Timestamp(1_772_409_600_000 + 14 * 3_600_000 + 5 * 60_000)),
            "2026-03-02 14:05"
        );
        assert_eq!(duration(850), "850 ms");
        assert_eq!(duration(12_400), "12 s");
        assert_eq!(duration(180_000), "3 min");
        assert_eq!(duration(9_000_000), "2.5 h");
        assert_eq!(percent(1, 3), 33);
        assert_eq!(percent(2, 3), 67);
        assert_eq!(percent(5, 0), 0);
    }
}
