//! The JSON API under `/api/v1`, one router per area.
//!
//! Every route is registered with `utoipa_axum::routes!`, which takes the
//! path and methods from the handler's `#[utoipa::path]` annotation and
//! adds the operation to the OpenAPI document at the same time: a route
//! cannot exist without its documentation. `tests/api.rs` checks the
//! assembled router against the document both ways.

pub mod feeds;
pub mod findings;
pub mod search;
pub mod stream;
pub mod system;
pub mod webhooks;

use crate::problem::Problem;
use crate::state::AppState;
use axum::Router;
use serde::Deserialize;
use std::sync::Arc;
use tidewatch_core::Timestamp;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

/// The prefix of every API path.
pub const PREFIX: &str = "/api/v1";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "tidewatch API",
        description = "Feeds, their series and alerts, emerging topics, narratives, coordinated groups, \
                       search and export over a tidewatch data directory, and a live event stream. \
                       Topics, not people: no endpoint lists or filters by account."
    ),
    modifiers(&BearerAuth),
    security(("bearer" = []))
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Every API route with its documentation.
pub fn documented() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(feeds::router())
        .merge(findings::router())
        .merge(search::router())
        .merge(system::router())
        .merge(stream::router())
        .merge(webhooks::router())
}

/// The OpenAPI document of the API.
pub fn openapi() -> utoipa::openapi::OpenApi {
    documented().split_for_parts().1
}

/// The API router; records the document in `state` for `/openapi.json`.
pub fn router(state: Arc<AppState>) -> Router<Arc<AppState>> {
    let (router, doc) = documented().split_for_parts();
    let json = doc.to_pretty_json().unwrap_or_else(|_| "{}".into());
    let _ = state.openapi.set(json);
    router.fallback(|| async { Problem::not_found("no such endpoint; see /api/v1/openapi.json") })
}

/// A time parameter: RFC 3339, a date, unix seconds (as `Timestamp::parse`).
pub(crate) fn time_param(name: &str, value: Option<&str>) -> Result<Option<Timestamp>, Problem> {
    match value {
        None | Some("") => Ok(None),
        Some(v) => Timestamp::parse(v)
            .map(Some)
            .map_err(|e| Problem::bad_request(format!("{name}={v:?}: not a time ({e})"))),
    }
}

/// `?since=` of the list endpoints.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Since {
    /// Only items at or after this time (RFC 3339, a date, or unix seconds).
    pub since: Option<String>,
}
