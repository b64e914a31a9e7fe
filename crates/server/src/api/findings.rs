//! What the pipeline found: alerts (feed volume spikes), emerging topics,
//! narratives and coordinated groups, read with the engine's own readers.
//!
//! Privacy: none of these lists or filters by account. Alerts, topics and
//! narratives carry no account at all (their records hold terms, counts
//! and redacted texts). A coordinated group is shown only with at least
//! `k` members, and as counts and anonymous member indices: the stored
//! pseudonyms are left out ([`GroupView`]).

use super::{time_param, Since};
use crate::problem::Problem;
use crate::state::{blocking, AppState};
use axum::extract::{Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use tidewatch_core::Timestamp;
use tidewatch_engine::alerts::{current_alerts, AlertRecord};
use tidewatch_engine::coordination::{current_groups, GroupRecord, RecordEdge, RecordEvidence};
use tidewatch_engine::narratives::{current_narratives, NarrativeRecord};
use tidewatch_engine::topics::{current_topics, TopicRecord};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Narratives listed when the request says no `limit`.
const DEFAULT_NARRATIVES: usize = 50;
/// The most narratives one request may ask for.
const MAX_NARRATIVES: usize = 10_000;

pub fn router() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(alerts))
        .routes(routes!(topics))
        .routes(routes!(narratives))
        .routes(routes!(groups))
}

/// Alerts (spikes in a feed's volume) with what drove them, one per spike
/// (a closed record supersedes its opened one), in onset order.
#[utoipa::path(get, path = "/api/v1/alerts", tag = "findings", params(Since),
    responses(
        (status = 200, description = "Alerts with onset at or after `since`", body = [serde_json::Value]),
        (status = 400, description = "Bad `since`", body = Problem, content_type = "application/problem+json")))]
async fn alerts(State(state): State<Arc<AppState>>, Query(p): Query<Since>) -> Result<Json<Vec<AlertRecord>>, Problem> {
    let since = time_param("since", p.since.as_deref())?;
    blocking(&state, move |s| s.with_db(|db| current_alerts(db, since)))
        .await
        .map(Json)
}

/// Emerging topics, in order of first sighting, with suggested feed queries.
#[utoipa::path(get, path = "/api/v1/topics", tag = "findings", params(Since),
    responses(
        (status = 200, description = "Topics last seen at or after `since`", body = [serde_json::Value]),
        (status = 400, description = "Bad `since`", body = Problem, content_type = "application/problem+json")))]
async fn topics(State(state): State<Arc<AppState>>, Query(p): Query<Since>) -> Result<Json<Vec<TopicRecord>>, Problem> {
    let since = time_param("since", p.since.as_deref())?;
    blocking(&state, move |s| s.with_db(|db| current_topics(db, since)))
        .await
        .map(Json)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NarrativeParams {
    /// Only narratives last seen at or after this time.
    pub since: Option<String>,
    /// At most this many (default 50).
    pub limit: Option<usize>,
}

/// Narratives (texts many posts repeat), most distinct accounts first:
/// counts and a redacted representative text, never accounts.
#[utoipa::path(get, path = "/api/v1/narratives", tag = "findings", params(NarrativeParams),
    responses(
        (status = 200, description = "Narratives", body = [serde_json::Value]),
        (status = 400, description = "Bad parameters", body = Problem, content_type = "application/problem+json")))]
async fn narratives(
    State(state): State<Arc<AppState>>,
    Query(p): Query<NarrativeParams>,
) -> Result<Json<Vec<NarrativeRecord>>, Problem> {
    let since = time_param("since", p.since.as_deref())?;
    let limit = p.limit.unwrap_or(DEFAULT_NARRATIVES).min(MAX_NARRATIVES);
    blocking(&state, move |s| s.with_db(|db| current_narratives(db, since, limit)))
        .await
        .map(Json)
}

/// A coordinated group as the API shows it: its size and evidence, never
/// its members' pseudonyms. Edges name members by index (0..size).
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct GroupView {
    pub id: String,
    pub epoch: i64,
    #[schema(value_type = String)]
    pub first_seen: Timestamp,
    #[schema(value_type = String)]
    pub last_seen: Timestamp,
    /// Distinct member accounts (at least k).
    pub size: usize,
    #[schema(value_type = Vec<Object>)]
    pub edges: Vec<RecordEdge>,
    pub density: f64,
    pub total_weight: u64,
    pub weight_by_type: BTreeMap<String, u64>,
    pub types: Vec<String>,
    pub time_compression: f64,
    pub score: f64,
    /// Narratives the members co-posted.
    pub narratives: Vec<String>,
    /// Coincidences: the two posts (keyed-hash ids) and their times.
    #[schema(value_type = Vec<Object>)]
    pub evidence: Vec<RecordEvidence>,
}

impl GroupView {
    pub fn of(g: GroupRecord) -> GroupView {
        GroupView {
            id: g.id,
            epoch: g.epoch,
            first_seen: g.first_seen,
            last_seen: g.last_seen,
            size: g.accounts.len(),
            edges: g.edges,
            density: g.density,
            total_weight: g.total_weight,
            weight_by_type: g.weight_by_type,
            types: g.types,
            time_compression: g.time_compression,
            score: g.score,
            narratives: g.narratives,
            evidence: g.evidence,
        }
    }
}

/// Coordinated groups of at least k accounts, highest score first, with
/// their evidence.
#[utoipa::path(get, path = "/api/v1/coordination/groups", tag = "findings", params(Since),
    responses(
        (status = 200, description = "Groups last seen at or after `since`", body = [GroupView]),
        (status = 400, description = "Bad `since`", body = Problem, content_type = "application/problem+json")))]
async fn groups(State(state): State<Arc<AppState>>, Query(p): Query<Since>) -> Result<Json<Vec<GroupView>>, Problem> {
    let since = time_param("since", p.since.as_deref())?;
    let k = state.config.k;
    blocking(&state, move |s| {
        let groups = s.with_db(|db| current_groups(db, since))?;
        Ok(groups
            .into_iter()
            .filter(|g| g.accounts.len() >= k)
            .map(GroupView::of)
            .collect())
    })
    .await
    .map(Json)
}
