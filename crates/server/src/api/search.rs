//! Search and streaming export over the post index, in the feed query
//! language, with the store's own search (`tidewatch_store::search`).
//!
//! A server started with a cluster (`tidewatch serve --nats`) answers
//! `GET /search` from every shard instead (`tidewatch_cluster::view`): the
//! merged result lists the partitions that did not answer in
//! `missing_partitions`, so a partial answer always says so.
//!
//! Export streams: the store's export visits one stored post at a time on
//! a blocking thread and hands each encoded line through a small bounded
//! channel to the response body, so memory stays constant whatever the
//! number of hits, and a client that goes away stops the export.

use super::time_param;
use crate::problem::Problem;
use crate::state::{blocking, AppState, ClusterView};
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;
use tidewatch_cluster::view::{self, ViewError, ViewHit, ViewSearch};
use tidewatch_core::query::ast::Node;
use tidewatch_core::query::Query as FeedQuery;
use tidewatch_core::Timestamp;
use tidewatch_store::search::{Hit, SearchRequest};
use tidewatch_store::StoreError;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Hits returned when the request says no `limit`.
const DEFAULT_LIMIT: usize = 20;
/// The most hits one search may return (export has no limit).
const MAX_LIMIT: usize = 1000;
/// Encoded lines in flight between the export thread and the client.
const EXPORT_CHANNEL: usize = 64;

pub fn router() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new().routes(routes!(search)).routes(routes!(export))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// The query, in the feed query language.
    pub q: String,
    /// Only posts at or after this time (RFC 3339, a date, or unix seconds).
    pub from: Option<String>,
    /// Only posts before this time.
    pub to: Option<String>,
    /// Only posts that matched the feed of this name.
    pub feed: Option<String>,
    /// At most this many hits, newest first (default 20, at most 1000).
    pub limit: Option<usize>,
}

/// A stored post as it may be shown: no author (none is stored).
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct HitView {
    /// The post's keyed-hash id.
    pub id: String,
    #[schema(value_type = Option<String>)]
    pub created_at: Option<Timestamp>,
    pub platform: String,
    pub lang: Option<String>,
    /// `negative`, `neutral`, `positive`, or empty.
    pub sentiment: String,
    /// The names of the feeds it matched.
    pub feeds: Vec<String>,
    /// The redacted text.
    pub text: String,
    pub url: Option<String>,
}

/// Search results.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct SearchResult {
    /// Every match (not only those returned).
    pub total: u64,
    /// The newest matches.
    pub hits: Vec<HitView>,
    /// Only for a server over a cluster: the partitions that did not
    /// answer in time, whose posts are neither in `hits` nor in `total`
    /// (empty when the answer is complete).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub missing_partitions: Option<Vec<u32>>,
}

/// A parsed request and the feed names to show hits with.
struct Prepared {
    request: SearchRequest,
    names: HashMap<u32, String>,
}

fn prepare(
    state: &AppState,
    q: &str,
    from: Option<&str>,
    to: Option<&str>,
    feed: Option<&str>,
    limit: usize,
) -> Result<Prepared, Problem> {
    let query = FeedQuery::parse(q).map_err(|e| Problem::query(&e))?;
    let from = time_param("from", from)?;
    let to = time_param("to", to)?;
    let rows = state.with_db(|db| db.feeds())?;
    let names: HashMap<u32, String> = rows.iter().map(|r| (r.id, r.name.clone())).collect();
    let feed = match feed {
        None | Some("") => None,
        Some(name) => match rows.iter().find(|r| r.name == name) {
            Some(r) => Some(r.id),
            None => return Err(Problem::bad_request(format!("no feed named {name:?}"))),
        },
    };
    Ok(Prepared {
        request: SearchRequest {
            query,
            from,
            to,
            feed,
            limit,
        },
        names,
    })
}

fn view(hit: &Hit, names: &HashMap<u32, String>) -> HitView {
    HitView {
        id: hit.id.clone(),
        created_at: hit.created_at,
        platform: hit.platform.clone(),
        lang: hit.lang.clone(),
        sentiment: hit.sentiment.clone(),
        feeds: hit
            .feeds
            .iter()
            .map(|id| names.get(id).cloned().unwrap_or_else(|| format!("#{id}")))
            .collect(),
        text: hit.text.clone(),
        url: hit.url.clone(),
    }
}

/// Search the stored posts: the count of matches and the newest ones.
#[utoipa::path(get, path = "/api/v1/search", tag = "search", params(SearchParams),
    responses(
        (status = 200, description = "Matches", body = SearchResult),
        (status = 400, description = "The query does not parse (`column` says where), or bad parameters", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "Over a cluster: a shard answered with an error", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "No index yet", body = Problem, content_type = "application/problem+json")))]
async fn search(
    State(state): State<Arc<AppState>>,
    Query(p): Query<SearchParams>,
) -> Result<Json<SearchResult>, Problem> {
    let limit = p.limit.unwrap_or(DEFAULT_LIMIT).min(MAX_LIMIT);
    search_any(&state, p, limit).await.map(Json)
}

/// A search as `GET /search` answers it (the dashboard's search page too):
/// over the cluster when the server has one, else over the data directory.
pub(crate) async fn search_any(state: &Arc<AppState>, p: SearchParams, limit: usize) -> Result<SearchResult, Problem> {
    if let Some(cluster) = state.cluster.get() {
        return cluster_search(cluster, &p, limit).await;
    }
    blocking(state, move |s| {
        run_search(s, &p.q, p.from.as_deref(), p.to.as_deref(), p.feed.as_deref(), limit)
    })
    .await
}

/// `GET /search` over a cluster: every shard asked, the answers merged.
async fn cluster_search(c: &ClusterView, p: &SearchParams, limit: usize) -> Result<SearchResult, Problem> {
    // The fan-out reads an empty query with a feed as "every post of the
    // feed" (what the feed page samples); here, as without a cluster, an
    // empty query is an error.
    FeedQuery::parse(&p.q).map_err(|e| Problem::query(&e))?;
    let req = ViewSearch {
        query: p.q.clone(),
        from: time_param("from", p.from.as_deref())?.map(|t| t.0),
        to: time_param("to", p.to.as_deref())?.map(|t| t.0),
        // A feed no shard recorded has no posts: an empty result, not a 400
        // (the server holds no feed table of its own to check the name against).
        feed: p.feed.clone().filter(|f| !f.is_empty()),
        limit,
    };
    let cluster = &c.cluster;
    let got = view::search(cluster.client(), cluster.partitions(), &req, c.shard_timeout)
        .await
        .map_err(view_problem)?;
    Ok(SearchResult {
        total: got.result.count,
        hits: got.result.hits.into_iter().map(hit_view).collect(),
        missing_partitions: Some(got.missing),
    })
}

/// A failed fan-out as a problem: a query that does not parse is the
/// client's (400, with its column); anything else is a shard's (502).
pub(crate) fn view_problem(e: ViewError) -> Problem {
    match e {
        ViewError::Query(e) => Problem::query(&e),
        other => Problem::new(axum::http::StatusCode::BAD_GATEWAY, other.to_string()),
    }
}

/// [`feed_posts`] over a cluster: the newest `limit` posts that matched
/// the feed named `feed` in `[from, to)`, from every shard, and the
/// partitions that did not answer.
pub(crate) async fn cluster_feed_posts(
    c: &ClusterView,
    feed: &str,
    from: Option<Timestamp>,
    to: Option<Timestamp>,
    limit: usize,
) -> Result<(Vec<HitView>, Vec<u32>), Problem> {
    let req = ViewSearch {
        // Empty with a feed: every post of the feed, whatever its text.
        query: String::new(),
        from: from.map(|t| t.0),
        to: to.map(|t| t.0),
        feed: Some(feed.to_string()),
        limit,
    };
    let cluster = &c.cluster;
    let got = view::search(cluster.client(), cluster.partitions(), &req, c.shard_timeout)
        .await
        .map_err(view_problem)?;
    Ok((got.result.hits.into_iter().map(hit_view).collect(), got.missing))
}

fn hit_view(h: ViewHit) -> HitView {
    HitView {
        id: h.id,
        created_at: h.created_at,
        platform: h.platform,
        lang: h.lang,
        sentiment: h.sentiment,
        feeds: h.feeds,
        text: h.text,
        url: h.url,
    }
}

/// A search over the data directory: the count of matches and the newest
/// `limit`. Call on the blocking pool.
fn run_search(
    s: &AppState,
    q: &str,
    from: Option<&str>,
    to: Option<&str>,
    feed: Option<&str>,
    limit: usize,
) -> Result<SearchResult, Problem> {
    let prepared = prepare(s, q, from, to, feed, limit)?;
    let index = s.index()?;
    let total = index.count(&prepared.request)?;
    let hits = index.search(&prepared.request)?;
    Ok(SearchResult {
        total,
        hits: hits.iter().map(|h| view(h, &prepared.names)).collect(),
        missing_partitions: None,
    })
}

/// The newest `limit` posts that matched feed `feed` in `[from, to)`,
/// whatever their text (a query of no condition). Call on the blocking pool.
pub(crate) fn feed_posts(
    s: &AppState,
    feed: u32,
    from: Option<Timestamp>,
    to: Option<Timestamp>,
    limit: usize,
) -> Result<Vec<HitView>, Problem> {
    let names: HashMap<u32, String> = s
        .with_db(|db| db.feeds())?
        .into_iter()
        .map(|r| (r.id, r.name))
        .collect();
    let request = SearchRequest {
        // An empty AND holds for every post.
        query: FeedQuery::from_node(Node::And(Vec::new())),
        from,
        to,
        feed: Some(feed),
        limit,
    };
    let hits = s.index()?.search(&request)?;
    Ok(hits.iter().map(|h| view(h, &names)).collect())
}

/// Export formats.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    #[default]
    Jsonl,
    Csv,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportParams {
    /// The query, in the feed query language.
    pub q: String,
    /// Only posts at or after this time.
    pub from: Option<String>,
    /// Only posts before this time.
    pub to: Option<String>,
    /// Only posts that matched the feed of this name.
    pub feed: Option<String>,
    /// `jsonl` (default) or `csv`.
    #[param(inline)]
    pub format: Option<ExportFormat>,
}

/// The CSV header of an export.
pub const CSV_HEADER: &str = "id,created_at,platform,lang,sentiment,feeds,url,text\n";

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn csv_line(h: &HitView) -> String {
    let fields = [
        csv_field(&h.id),
        h.created_at.map(|t| t.to_string()).unwrap_or_default(),
        csv_field(&h.platform),
        csv_field(h.lang.as_deref().unwrap_or("")),
        csv_field(&h.sentiment),
        csv_field(&h.feeds.join(";")),
        csv_field(h.url.as_deref().unwrap_or("")),
        csv_field(&h.text),
    ];
    let mut line = fields.join(",");
    line.push('\n');
    line
}

/// Stream every matching post, as JSON Lines or CSV (in index order, not by time).
#[utoipa::path(get, path = "/api/v1/export", tag = "search", params(ExportParams),
    responses(
        (status = 200, description = "Every match, streamed", content(
            (String = "application/x-ndjson"),
            (String = "text/csv"))),
        (status = 400, description = "The query does not parse (`column` says where), or bad parameters", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "No index yet", body = Problem, content_type = "application/problem+json")))]
async fn export(State(state): State<Arc<AppState>>, Query(p): Query<ExportParams>) -> Result<Response, Problem> {
    let format = p.format.unwrap_or_default();
    // Everything that can fail with a status fails here, before the
    // response head is sent.
    let (prepared, index) = blocking(&state, move |s| {
        let prepared = prepare(
            s,
            &p.q,
            p.from.as_deref(),
            p.to.as_deref(),
            p.feed.as_deref(),
            usize::MAX,
        )?;
        let index = s.index()?;
        Ok((prepared, index))
    })
    .await?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(EXPORT_CHANNEL);
    tokio::task::spawn_blocking(move || {
        if format == ExportFormat::Csv && tx.blocking_send(Bytes::from_static(CSV_HEADER.as_bytes())).is_err() {
            return;
        }
        let mut each = |hit: &Hit| -> Result<(), StoreError> {
            let v = view(hit, &prepared.names);
            let line = match format {
                ExportFormat::Jsonl => {
                    let mut s = serde_json::to_string(&v).map_err(|e| StoreError::Invalid(e.to_string()))?;
                    s.push('\n');
                    s
                }
                ExportFormat::Csv => csv_line(&v),
            };
            // A closed channel means the client went away: stop.
            tx.blocking_send(Bytes::from(line))
                .map_err(|_| StoreError::Invalid("client went away".into()))
        };
        // An error mid-stream can only end the body early: the head is sent.
        let _ = index.export(&prepared.request, &mut each);
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, std::io::Error>(b), rx))
    });
    let mut res = Body::from_stream(stream).into_response();
    let content_type = match format {
        ExportFormat::Jsonl => "application/x-ndjson",
        ExportFormat::Csv => "text/csv; charset=utf-8",
    };
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    Ok(res)
}
