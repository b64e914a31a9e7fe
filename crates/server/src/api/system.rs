//! The service itself: health, metrics, the OpenAPI document, and the
//! push-ingest endpoint.
//!
//! Health and metrics come from `status.json`, which a live
//! `tidewatch run` rewrites every two seconds: posts per second is the
//! rate between the two latest snapshots this server saw, lag the largest
//! of the sources' (now − newest event time).
//!
//! Push ingest (`POST /api/v1/ingest`) belongs to the pipeline: the push
//! source of `tidewatch-sources` answers it, 202 once the records are
//! committed. Under `tidewatch run --serve` with a push source this route
//! hands requests to that source ([`AppState::ingest`]); `tidewatch serve`
//! alone runs no pipeline, so there it answers 503 and says where a
//! running `run`'s push source listens.

use crate::problem::Problem;
use crate::state::{blocking, AppState};
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;
use tidewatch_engine::sources::{RunStatus, SourceStatus};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// A run's status older than this is stale: the run was killed or is stuck.
pub const STALE_MS: i64 = 10_000;

pub fn router() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(metrics))
        .routes(routes!(openapi_json))
        .routes(routes!(ingest))
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The state of the run writing to the data directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    /// Its status is fresh.
    Running,
    /// It says it runs but has not written for a while.
    Stale,
    /// It ended.
    Ended,
    /// No status file: no live run has used this data directory.
    Absent,
}

/// Pipeline health, as the stream's `health` events and `/metrics` carry it.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct Metrics {
    pub run: RunState,
    /// Unix ms of the run's last status.
    pub updated_at: Option<i64>,
    /// Posts per second between the last two status snapshots seen.
    pub posts_per_s: Option<f64>,
    pub posts: u64,
    pub matched: u64,
    pub rejected: u64,
    /// The largest lag of any live source (ms).
    pub lag_ms: Option<i64>,
    /// The store's last commit number.
    pub commit_seq: u64,
    /// Per live source: events/s, lag, connection, errors, gaps.
    #[schema(value_type = Vec<Object>)]
    pub sources: Vec<SourceStatus>,
}

/// Reads `status.json` and the commit number; updates the rate.
pub fn metrics_now(state: &AppState) -> Result<Metrics, Problem> {
    let commit_seq = state.with_db(|db| db.commit_seq())?;
    let status = RunStatus::read(&state.config.data).ok();
    let Some(s) = status else {
        return Ok(Metrics {
            run: RunState::Absent,
            updated_at: None,
            posts_per_s: None,
            posts: 0,
            matched: 0,
            rejected: 0,
            lag_ms: None,
            commit_seq,
            sources: Vec::new(),
        });
    };
    let posts_per_s = {
        let mut rate = state.rate.lock().unwrap_or_else(|p| p.into_inner());
        let newest = (s.updated_at, s.posts);
        *rate = match *rate {
            Some((_, last)) if last.0 == newest.0 => *rate,
            Some((_, last)) => Some((last, newest)),
            None => Some((newest, newest)),
        };
        rate.and_then(|(a, b)| (b.0 > a.0 && b.1 >= a.1).then(|| (b.1 - a.1) as f64 * 1000.0 / (b.0 - a.0) as f64))
    };
    let run = if !s.running {
        RunState::Ended
    } else if now_ms() - s.updated_at > STALE_MS {
        RunState::Stale
    } else {
        RunState::Running
    };
    Ok(Metrics {
        run,
        updated_at: Some(s.updated_at),
        posts_per_s: if run == RunState::Running {
            posts_per_s
        } else {
            Some(0.0)
        },
        posts: s.posts,
        matched: s.matched,
        rejected: s.rejected,
        lag_ms: s.sources.iter().filter_map(|src| src.lag_ms).max(),
        commit_seq,
        sources: s.sources,
    })
}

/// Liveness.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok` when the database can be read.
    pub status: String,
    pub run: RunState,
}

/// Is the server up and its database readable? (No token needed.)
#[utoipa::path(get, path = "/api/v1/health", tag = "system", security(()),
    responses(
        (status = 200, description = "Up", body = Health),
        (status = 500, description = "The database cannot be read", body = Problem, content_type = "application/problem+json")))]
async fn health(State(state): State<Arc<AppState>>) -> Result<Json<Health>, Problem> {
    let m = blocking(&state, metrics_now).await?;
    Ok(Json(Health {
        status: "ok".into(),
        run: m.run,
    }))
}

/// Posts per second, lag and per-source status of the run.
#[utoipa::path(get, path = "/api/v1/metrics", tag = "system",
    responses((status = 200, description = "Metrics", body = Metrics)))]
async fn metrics(State(state): State<Arc<AppState>>) -> Result<Json<Metrics>, Problem> {
    blocking(&state, metrics_now).await.map(Json)
}

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "system",
    responses((status = 200, description = "The OpenAPI 3 document", body = Object)))]
async fn openapi_json(State(state): State<Arc<AppState>>) -> Response {
    let json = state.openapi.get().cloned().unwrap_or_else(|| "{}".into());
    let mut res = json.into_response();
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res
}

/// Push records (NDJSON, any supported format) into the pipeline.
///
/// Answered by the pipeline's push source (`[[source]] kind = "push"`):
/// 202 once committed. `tidewatch serve` alone runs no pipeline and
/// answers 503.
#[utoipa::path(post, path = "/api/v1/ingest", tag = "system",
    request_body(content = String, content_type = "application/x-ndjson"),
    params(("format" = Option<String>, Query, description = "The records' format (default: detected from the body)")),
    responses(
        (status = 202, description = "Accepted and committed (pipeline push source); malformed lines listed by number", body = Object),
        (status = 400, description = "Only malformed lines, or an unknown format", body = Object),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "CSV cannot be pushed", body = Object),
        (status = 503, description = "No pipeline in this process, or not committed in time: send again", body = Problem, content_type = "application/problem+json")))]
async fn ingest(
    State(state): State<Arc<AppState>>,
    Query(params): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    if let Some(handler) = state.ingest.get() {
        return handler(params, body).await;
    }
    Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "`tidewatch serve` runs no pipeline: post records to the push source of the running \
         `tidewatch run` (a `[[source]] kind = \"push\"` in its config; same path, /api/v1/ingest), \
         or to the API of `tidewatch run --serve` with a push source",
    )
    .into_response()
}
