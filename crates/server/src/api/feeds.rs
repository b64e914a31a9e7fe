//! Feeds: list, create, update, delete, validate a query, and a feed's
//! volume series.
//!
//! The feeds file is the truth. Each change reads it, applies the change,
//! checks the whole new file as `tidewatch run` would (names unique, every
//! query parses) and replaces the file atomically (write beside, rename):
//! a running `run` watching the file reloads it, and never sees half a
//! file. Rewriting drops the file's comments. Feed ids come from the
//! database (a feed keeps its id for life); a feed no run has seen yet has
//! none.
//!
//! A server over a cluster (`tidewatch serve --nats`) lists the cluster's
//! feed set (one key-value entry, `tidewatch_cluster::feeds`) and answers
//! a series from every shard (`tidewatch_cluster::view::series`), summed
//! by feed name and minute: its data directory holds no posts. Each shard
//! numbers its feeds itself, so over a cluster a feed has no id, and a
//! series lists the partitions that did not answer in `missing_partitions`.
//! There, create, update and delete edit the cluster's feed set instead of
//! a file, with the same checks and answers: read it with its revision,
//! apply the change, write it back only if nobody wrote in between
//! (compare-and-set), and start again from the newer set if somebody did.
//! Every worker applies the new set as it lands.

use super::time_param;
use crate::api::search::view_problem;
use crate::problem::{no_content, Problem};
use crate::state::{blocking, AppState, ClusterView};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;
use tidewatch_cluster::feeds::{self as cluster_feeds, PutFeedsError};
use tidewatch_cluster::view::{self, FannedOut, FeedSeries, ViewSeries};
use tidewatch_core::query::{Anchors, Query as FeedQuery};
use tidewatch_core::Timestamp;
use tidewatch_engine::feeds::{feeds_toml, parse_feeds, FeedDef, FeedError};
use tidewatch_store::db::{FeedRow, MinuteCounts};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Points a series may have (a minute series over ~70 days).
const MAX_POINTS: i64 = 100_000;

/// Times an edit of the cluster's feed set is tried when others keep
/// writing in between (each failure means another edit landed).
const EDIT_ATTEMPTS: u32 = 8;

pub fn router() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(list_feeds, create_feed))
        .routes(routes!(update_feed, delete_feed))
        .routes(routes!(validate_query))
        .routes(routes!(feed_series))
}

/// A feed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FeedView {
    /// Stable id, once a run has seen the feed.
    pub id: Option<u32>,
    pub name: String,
    pub query: String,
    /// In the feeds file now (false for a removed feed the database remembers).
    pub active: bool,
}

/// A new feed.
#[derive(Clone, Debug, Deserialize, ToSchema)]
pub struct NewFeed {
    pub name: String,
    pub query: String,
}

/// A feed's new query.
#[derive(Clone, Debug, Deserialize, ToSchema)]
pub struct FeedUpdate {
    pub query: String,
}

/// A query to check.
#[derive(Clone, Debug, Deserialize, ToSchema)]
pub struct QueryCheck {
    pub query: String,
}

/// A valid query.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct QueryCheckResult {
    pub valid: bool,
    /// The query in normal form.
    pub normalized: String,
    /// The terms the presearcher indexes it by, or `none` for a query
    /// verified against every post.
    pub presearch: String,
}

fn check_query(q: &str) -> Result<FeedQuery, Problem> {
    FeedQuery::parse(q).map_err(|e| Problem::query(&e))
}

fn check_name(name: &str) -> Result<(), Problem> {
    if name.trim().is_empty() || name.chars().any(char::is_control) || name.len() > 200 {
        return Err(Problem::bad_request(
            "a feed name must be 1 to 200 characters, without control characters",
        ));
    }
    Ok(())
}

fn feed_problem(e: FeedError) -> Problem {
    match e {
        FeedError::Query { error, .. } => Problem::query(&error),
        FeedError::Duplicate { name, .. } => {
            Problem::new(StatusCode::CONFLICT, format!("a feed named {name:?} exists"))
        }
        other => Problem::bad_request(other.to_string()),
    }
}

/// The feeds of the feeds file, or `None` when the server has none.
fn read_file(state: &AppState) -> Result<Option<Vec<FeedDef>>, Problem> {
    let Some(path) = &state.config.feeds_file else {
        return Ok(None);
    };
    match std::fs::read_to_string(path) {
        Ok(text) => parse_feeds(&text, &path.display().to_string())
            .map(Some)
            .map_err(|e| Problem::internal(format!("the feeds file is not valid: {e}"))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Some(Vec::new())),
        Err(e) => Err(Problem::internal(format!("{}: {e}", path.display()))),
    }
}

/// The feeds as `GET /feeds` lists them (the dashboard too).
pub(crate) fn list(state: &AppState) -> Result<Vec<FeedView>, Problem> {
    let rows = state.with_db(|db| db.feeds())?;
    let Some(defs) = read_file(state)? else {
        return Ok(rows
            .into_iter()
            .map(|r| FeedView {
                id: Some(r.id),
                name: r.name,
                query: r.query,
                active: r.active,
            })
            .collect());
    };
    let ids: HashMap<&str, u32> = rows.iter().map(|r| (r.name.as_str(), r.id)).collect();
    Ok(defs
        .into_iter()
        .map(|d| FeedView {
            id: ids.get(d.name.as_str()).copied(),
            name: d.name,
            query: d.query,
            active: true,
        })
        .collect())
}

/// Applies `change` to the feed set: the cluster's over a cluster
/// ([`edit_cluster`]), else the feeds file, checked and replaced
/// atomically.
async fn edit<R: Send + 'static>(
    state: &Arc<AppState>,
    change: impl Fn(&mut Vec<FeedDef>) -> Result<R, Problem> + Send + 'static,
) -> Result<R, Problem> {
    let _guard = state.feeds_lock.lock().await;
    if let Some(c) = state.cluster.get() {
        return edit_cluster(c, change).await;
    }
    blocking(state, move |state| {
        let Some(path) = state.config.feeds_file.clone() else {
            return Err(Problem::new(
                StatusCode::CONFLICT,
                "this server has no feeds file to edit: start it with --feeds FILE (or a config whose [feeds] path names one)",
            ));
        };
        let mut defs = read_file(state)?.unwrap_or_default();
        let out = change(&mut defs)?;
        let text = feeds_toml(&defs);
        parse_feeds(&text, "feeds").map_err(feed_problem)?;
        let tmp = path.with_extension("toml.tmp");
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, &path)
        };
        write().map_err(|e| Problem::internal(format!("{}: {e}", path.display())))?;
        Ok(out)
    })
    .await
}

/// Applies `change` to the cluster's feed set: read it with its revision,
/// change it, check it as a worker would and write it only if nobody
/// wrote in between (compare-and-set on the revision). Another server, or
/// `tidewatch feeds push`, may edit at the same moment; the loser reads
/// again and applies its change to the winner's set, so neither edit is
/// lost. `change` runs once per attempt, on a fresh copy.
async fn edit_cluster<R>(
    c: &ClusterView,
    change: impl Fn(&mut Vec<FeedDef>) -> Result<R, Problem>,
) -> Result<R, Problem> {
    for attempt in 0..EDIT_ATTEMPTS {
        let current = tidewatch_cluster::feeds::current_feeds(&c.cluster)
            .await
            .map_err(cluster_problem)?;
        let (mut defs, revision) = match current {
            Some(v) => (v.defs, Some(v.revision)),
            None => (Vec::new(), None),
        };
        let out = change(&mut defs)?;
        // `put_feeds_if` checks it as a worker would before it writes.
        let text = cluster_feeds::feeds_toml(&defs);
        match cluster_feeds::put_feeds_if(&c.cluster, &text, revision).await {
            Ok(_) => return Ok(out),
            Err(PutFeedsError::Conflict { .. }) => {
                // Spread the competitors out a little so that they do not
                // collide again at once.
                let pause = rand::random::<u64>() % (10 * (u64::from(attempt) + 1));
                tokio::time::sleep(Duration::from_millis(pause)).await;
            }
            Err(PutFeedsError::Cluster(tidewatch_cluster::Error::Feeds(e))) => return Err(feed_problem(e)),
            Err(PutFeedsError::Cluster(e)) => return Err(cluster_problem(e)),
        }
    }
    Err(Problem::new(
        StatusCode::CONFLICT,
        format!("the cluster's feeds changed under this edit {EDIT_ATTEMPTS} times in a row; try again"),
    ))
}

/// The cluster could not be read or written.
fn cluster_problem(e: tidewatch_cluster::Error) -> Problem {
    Problem::new(StatusCode::BAD_GATEWAY, e.to_string())
}

/// The feeds as `GET /feeds` lists them: the cluster's feed set when the
/// server has a cluster (no ids: each shard numbers its feeds itself),
/// else [`list`].
pub(crate) async fn list_any(state: &Arc<AppState>) -> Result<Vec<FeedView>, Problem> {
    let Some(c) = state.cluster.get() else {
        return blocking(state, list).await;
    };
    Ok(cluster_feeds(c)
        .await?
        .into_iter()
        .map(|d| FeedView {
            id: None,
            name: d.name,
            query: d.query,
            active: true,
        })
        .collect())
}

/// The cluster's feed set now (empty when none was ever written).
pub(crate) async fn cluster_feeds(c: &ClusterView) -> Result<Vec<FeedDef>, Problem> {
    let current = tidewatch_cluster::feeds::current_feeds(&c.cluster)
        .await
        .map_err(cluster_problem)?;
    Ok(current.map(|v| v.defs).unwrap_or_default())
}

/// Per-minute counts of one feed (or every feed) from every shard, summed
/// by feed name and minute, over `[from, to)` in ms as the local path
/// reads them (the minute `from` falls in counts).
pub(crate) async fn cluster_minutes(
    c: &ClusterView,
    feed: Option<&str>,
    from: Option<Timestamp>,
    to: Option<Timestamp>,
) -> Result<FannedOut<FeedSeries>, Problem> {
    let req = ViewSeries {
        feed: feed.map(str::to_string),
        from: from.map(|t| t.0),
        to: to.map(|t| t.0),
    };
    let cluster = &c.cluster;
    view::series(cluster.client(), cluster.partitions(), &req, c.shard_timeout)
        .await
        .map_err(view_problem)
}

/// List the feeds.
#[utoipa::path(get, path = "/api/v1/feeds", tag = "feeds",
    responses(
        (status = 200, description = "The feeds", body = [FeedView]),
        (status = 502, description = "Over a cluster: its feed set could not be read", body = Problem, content_type = "application/problem+json")))]
async fn list_feeds(State(state): State<Arc<AppState>>) -> Result<Json<Vec<FeedView>>, Problem> {
    list_any(&state).await.map(Json)
}

/// Add a feed to the feeds file (over a cluster: to the cluster's feed set).
#[utoipa::path(post, path = "/api/v1/feeds", tag = "feeds", request_body = NewFeed,
    responses(
        (status = 201, description = "Added", body = FeedView),
        (status = 400, description = "Bad name or query (with its column)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A feed of that name exists, or no feeds file, or (over a cluster) the feed set kept changing under the edit", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "Over a cluster: its feed set could not be read or written", body = Problem, content_type = "application/problem+json")))]
async fn create_feed(State(state): State<Arc<AppState>>, Json(new): Json<NewFeed>) -> Result<Response, Problem> {
    check_name(&new.name)?;
    check_query(&new.query)?;
    let def = FeedDef {
        name: new.name.clone(),
        query: new.query.clone(),
    };
    edit(&state, move |defs| {
        if defs.iter().any(|d| d.name == def.name) {
            return Err(Problem::new(
                StatusCode::CONFLICT,
                format!(
                    "a feed named {:?} exists; PUT /api/v1/feeds/{{name}} changes it",
                    def.name
                ),
            ));
        }
        defs.push(def.clone());
        Ok(())
    })
    .await?;
    let view = FeedView {
        id: known_id(&state, &new.name).await,
        name: new.name,
        query: new.query,
        active: true,
    };
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

/// The feed's id in the database, once a run has seen it (none over a
/// cluster, whose shards each number their feeds themselves).
async fn known_id(state: &Arc<AppState>, name: &str) -> Option<u32> {
    if state.cluster.get().is_some() {
        return None;
    }
    let name = name.to_string();
    blocking(state, move |s| s.with_db(|db| db.feeds()))
        .await
        .ok()?
        .into_iter()
        .find(|r| r.name == name)
        .map(|r| r.id)
}

/// Replace a feed's query.
#[utoipa::path(put, path = "/api/v1/feeds/{name}", tag = "feeds", request_body = FeedUpdate,
    params(("name" = String, Path, description = "The feed's name")),
    responses(
        (status = 200, description = "Changed", body = FeedView),
        (status = 400, description = "Bad query (with its column)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such feed", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "No feeds file, or (over a cluster) the feed set kept changing under the edit", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "Over a cluster: its feed set could not be read or written", body = Problem, content_type = "application/problem+json")))]
async fn update_feed(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    Json(update): Json<FeedUpdate>,
) -> Result<Json<FeedView>, Problem> {
    check_query(&update.query)?;
    let (n, q) = (name.clone(), update.query.clone());
    edit(&state, move |defs| match defs.iter_mut().find(|d| d.name == n) {
        Some(d) => {
            d.query.clone_from(&q);
            Ok(())
        }
        None => Err(Problem::not_found(format!("no feed named {n:?}"))),
    })
    .await?;
    Ok(Json(FeedView {
        id: known_id(&state, &name).await,
        name,
        query: update.query,
        active: true,
    }))
}

/// Remove a feed from the feeds file (its id, series and alerts stay).
#[utoipa::path(delete, path = "/api/v1/feeds/{name}", tag = "feeds",
    params(("name" = String, Path, description = "The feed's name")),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "No such feed", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "No feeds file, or (over a cluster) the feed set kept changing under the edit", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "Over a cluster: its feed set could not be read or written", body = Problem, content_type = "application/problem+json")))]
async fn delete_feed(State(state): State<Arc<AppState>>, Path(name): Path<String>) -> Result<Response, Problem> {
    edit(&state, move |defs| {
        let before = defs.len();
        defs.retain(|d| d.name != name);
        if defs.len() == before {
            return Err(Problem::not_found(format!("no feed named {name:?}")));
        }
        Ok(())
    })
    .await?;
    Ok(no_content())
}

/// Check a query without saving it.
#[utoipa::path(post, path = "/api/v1/feeds/validate", tag = "feeds", request_body = QueryCheck,
    responses(
        (status = 200, description = "The query is valid", body = QueryCheckResult),
        (status = 400, description = "It does not parse; `column` says where", body = Problem, content_type = "application/problem+json")))]
async fn validate_query(Json(check): Json<QueryCheck>) -> Result<Json<QueryCheckResult>, Problem> {
    let q = check_query(&check.query)?;
    let presearch = match q.anchors() {
        Anchors::Unanchored => "none".to_string(),
        a => a.to_string(),
    };
    Ok(Json(QueryCheckResult {
        valid: true,
        normalized: q.normalized(),
        presearch,
    }))
}

/// The width of a series' points.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Interval {
    #[default]
    Minute,
    Hour,
    Day,
}

impl Interval {
    pub(crate) fn minutes(self) -> i64 {
        match self {
            Interval::Minute => 1,
            Interval::Hour => 60,
            Interval::Day => 1440,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SeriesParams {
    /// Start (inclusive): RFC 3339, a date, or unix seconds.
    pub from: Option<String>,
    /// End (exclusive).
    pub to: Option<String>,
    /// `minute` (default), `hour` or `day`.
    #[param(inline)]
    pub interval: Option<Interval>,
}

/// One point of a series: a feed's matches in one interval.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct SeriesPoint {
    /// The interval's start (RFC 3339).
    #[schema(value_type = String)]
    pub t: Timestamp,
    pub posts: i64,
    pub negative: i64,
    pub neutral: i64,
    pub positive: i64,
    /// Mean VADER compound score of the interval's posts.
    pub sentiment_mean: f64,
    pub reposts: i64,
    pub replies: i64,
}

/// A feed's series.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Series {
    pub feed: String,
    /// The feed's id; absent over a cluster, whose shards each number
    /// their feeds themselves.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<u32>,
    #[schema(inline)]
    pub interval: Interval,
    /// Intervals with matches, ascending (absent ones had none).
    pub points: Vec<SeriesPoint>,
    /// Only for a server over a cluster: the partitions that did not
    /// answer in time, whose posts are not counted in `points` (empty
    /// when the series is complete).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub missing_partitions: Option<Vec<u32>>,
}

/// A feed's volume and sentiment over time.
#[utoipa::path(get, path = "/api/v1/feeds/{name}/series", tag = "feeds",
    params(("name" = String, Path, description = "The feed's name"), SeriesParams),
    responses(
        (status = 200, description = "The series", body = Series),
        (status = 400, description = "Bad parameters", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such feed", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "Over a cluster: a shard answered with an error, or the feed set could not be read", body = Problem, content_type = "application/problem+json")))]
async fn feed_series(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    Query(p): Query<SeriesParams>,
) -> Result<Json<Series>, Problem> {
    let from = time_param("from", p.from.as_deref())?;
    let to = time_param("to", p.to.as_deref())?;
    let interval = p.interval.unwrap_or_default();
    if let Some(c) = state.cluster.get() {
        return cluster_series(c, name, from, to, interval).await.map(Json);
    }
    let from_min = from.map_or(i64::MIN, |t| t.0.div_euclid(Timestamp::MINUTE));
    let to_min = to.map_or(i64::MAX, |t| t.0.div_euclid(Timestamp::MINUTE));
    blocking(&state, move |s| {
        let row = feed_row(s, &name)?;
        let minutes = s.with_db(|db| db.feed_minutes(row.id, from_min, to_min))?;
        Ok(Series {
            feed: row.name,
            id: Some(row.id),
            interval,
            points: bucket(minutes, interval)?,
            missing_partitions: None,
        })
    })
    .await
    .map(Json)
}

/// `GET /feeds/{name}/series` over a cluster. A feed is known when it is
/// in the cluster's feed set or some shard has counts for it (a feed
/// removed from the set keeps its series, as in a data directory).
async fn cluster_series(
    c: &ClusterView,
    name: String,
    from: Option<Timestamp>,
    to: Option<Timestamp>,
    interval: Interval,
) -> Result<Series, Problem> {
    let (defs, got) = tokio::join!(cluster_feeds(c), cluster_minutes(c, Some(&name), from, to));
    let (defs, mut got) = (defs?, got?);
    let minutes = got.result.remove(&name);
    if minutes.is_none() && !defs.iter().any(|d| d.name == name) {
        return Err(Problem::not_found(format!("no feed named {name:?} in the cluster")));
    }
    let minutes: Vec<(i64, MinuteCounts)> = minutes.unwrap_or_default().into_iter().collect();
    Ok(Series {
        feed: name,
        id: None,
        interval,
        points: bucket(minutes, interval)?,
        missing_partitions: Some(got.missing),
    })
}

/// The database's row of the feed named `name` (404 when none).
pub(crate) fn feed_row(s: &AppState, name: &str) -> Result<FeedRow, Problem> {
    let feeds = s.with_db(|db| db.feeds())?;
    feeds
        .into_iter()
        .find(|r| r.name == name)
        .ok_or_else(|| Problem::not_found(format!("no feed named {name:?} in the database")))
}

/// Sums minute counts (ascending unix minutes) into points of `interval`.
pub(crate) fn bucket(minutes: Vec<(i64, MinuteCounts)>, interval: Interval) -> Result<Vec<SeriesPoint>, Problem> {
    let width = interval.minutes();
    let mut buckets: BTreeMap<i64, MinuteCounts> = BTreeMap::new();
    for (minute, counts) in minutes {
        buckets
            .entry(minute.div_euclid(width) * width)
            .or_default()
            .add(&counts);
        if buckets.len() as i64 > MAX_POINTS {
            return Err(Problem::bad_request(format!(
                "more than {MAX_POINTS} points: narrow from/to or use a wider interval"
            )));
        }
    }
    Ok(buckets
        .into_iter()
        .map(|(minute, c)| SeriesPoint {
            t: Timestamp(minute.saturating_mul(Timestamp::MINUTE)),
            posts: c.posts,
            negative: c.negative,
            neutral: c.neutral,
            positive: c.positive,
            sentiment_mean: if c.posts > 0 {
                c.sentiment_sum as f64 / 10_000.0 / c.posts as f64
            } else {
                0.0
            },
            reposts: c.reposts,
            replies: c.replies,
        })
        .collect())
}
