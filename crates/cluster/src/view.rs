//! One view over all shards: search and feed series asked of every
//! partition over NATS request-reply and merged.
//!
//! The idea: each worker answers for the partitions it holds, from the
//! shard store it writes ([`crate::shard_dir`]), opened read-only as
//! `tidewatch serve` opens a store a `run` is writing. A reader (the CLI,
//! the server, a test) sends the same request to every partition at once,
//! waits at most a timeout, and merges what came back. A partition that
//! did not answer in time is listed in [`FannedOut::missing`]: a merged
//! result always says when it is partial.
//!
//! Subjects: `tidewatch.shard.<p>.search` and `tidewatch.shard.<p>.series`
//! ([`SHARD_PREFIX`]), answered in the queue group [`QUEUE_GROUP`] so that
//! when two workers briefly both answer for a partition (a lease moving)
//! only one of them does the work.
//!
//! Wire format (JSON): a request is a [`ViewSearch`] or a [`ViewSeries`];
//! a reply is `{"ok": <result>}` or `{"error": "<message>"}` ([`Reply`]).
//! Feed ids differ from shard to shard (each store numbers its feeds
//! itself), so feeds always cross the network by *name*.

use crate::{nats, BoxError};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tidewatch_core::query::ast::Node;
use tidewatch_core::query::{ParseError, Query};
use tidewatch_core::Timestamp;
use tidewatch_store::db::{Db, MinuteCounts};
use tidewatch_store::index::PostIndex;
use tidewatch_store::search::SearchRequest;
use tidewatch_store::{Store, StoreError};
use tokio::sync::{oneshot, Semaphore};
use tokio::task::JoinSet;

/// Shard subjects start with this: `tidewatch.shard.<p>.<kind>`.
pub const SHARD_PREFIX: &str = "tidewatch.shard";
/// The queue group every shard responder subscribes in.
pub const QUEUE_GROUP: &str = "tidewatch-shard";
/// Store reads one responder runs at once (each takes a blocking thread).
const CONCURRENT_READS: usize = 4;

/// The subject partition `p` answers searches on.
pub fn search_subject(p: u32) -> String {
    format!("{SHARD_PREFIX}.{p}.search")
}

/// The subject partition `p` answers series requests on.
pub fn series_subject(p: u32) -> String {
    format!("{SHARD_PREFIX}.{p}.series")
}

/// A search over the whole cluster (and the request sent to each shard).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViewSearch {
    /// The query, in the feed query language. Empty (or only spaces)
    /// together with `feed`: every post that matched the feed, whatever
    /// its text (what a feed's page samples).
    pub query: String,
    /// Only posts at or after this time (ms since the epoch).
    #[serde(default)]
    pub from: Option<i64>,
    /// Only posts before this time (ms since the epoch).
    #[serde(default)]
    pub to: Option<i64>,
    /// Only posts that matched the feed of this name.
    #[serde(default)]
    pub feed: Option<String>,
    /// At most this many hits, newest first.
    pub limit: usize,
}

/// One hit as it crosses the network: a stored post as it may be shown
/// (no author: none is stored), with the names of the feeds it matched.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ViewHit {
    /// The post's keyed-hash id.
    pub id: String,
    /// Milliseconds since the epoch on the wire (exact, whatever the year).
    #[serde(with = "opt_ms")]
    pub created_at: Option<Timestamp>,
    pub platform: String,
    pub lang: Option<String>,
    /// `negative`, `neutral`, `positive`, or empty.
    pub sentiment: String,
    /// The redacted text.
    pub text: String,
    pub url: Option<String>,
    /// The names of the feeds the post matched (`#<id>` for an id the
    /// shard's feed table does not know), ascending by the shard's ids.
    pub feeds: Vec<String>,
}

/// Search results: one shard's, or merged.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ViewSearchResult {
    /// The newest hits, newest first (ties by id).
    pub hits: Vec<ViewHit>,
    /// Every match (not only those returned); merged, the sum over shards.
    pub count: u64,
}

/// Per-minute counts of feeds over the whole cluster (and the request sent
/// to each shard).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViewSeries {
    /// Only the feed of this name; every feed when absent.
    #[serde(default)]
    pub feed: Option<String>,
    /// Only minutes at or after this time (ms since the epoch; the minute
    /// it falls in counts).
    #[serde(default)]
    pub from: Option<i64>,
    /// Only minutes before this time (ms since the epoch).
    #[serde(default)]
    pub to: Option<i64>,
}

/// How far a shard has got: what the merger of a cluster's partial
/// windows waits for (see `crate::merge`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardProgress {
    /// The newest unix minute holding a committed post (none yet: `None`).
    pub newest_minute: Option<i64>,
    /// Posts committed in all.
    pub posts: i64,
}

/// The subject partition `p`'s holder answers progress requests on.
pub fn progress_subject(p: u32) -> String {
    format!("{SHARD_PREFIX}.{p}.progress")
}

/// Per feed name, per unix minute: the counts.
pub type FeedSeries = BTreeMap<String, BTreeMap<i64, MinuteCounts>>;

/// [`MinuteCounts`] on the wire.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct WireCounts {
    posts: i64,
    negative: i64,
    neutral: i64,
    positive: i64,
    sentiment_sum: i64,
    reposts: i64,
    replies: i64,
}

impl From<MinuteCounts> for WireCounts {
    fn from(c: MinuteCounts) -> WireCounts {
        WireCounts {
            posts: c.posts,
            negative: c.negative,
            neutral: c.neutral,
            positive: c.positive,
            sentiment_sum: c.sentiment_sum,
            reposts: c.reposts,
            replies: c.replies,
        }
    }
}

impl From<WireCounts> for MinuteCounts {
    fn from(c: WireCounts) -> MinuteCounts {
        MinuteCounts {
            posts: c.posts,
            negative: c.negative,
            neutral: c.neutral,
            positive: c.positive,
            sentiment_sum: c.sentiment_sum,
            reposts: c.reposts,
            replies: c.replies,
        }
    }
}

/// A series reply: per feed name, per unix minute.
type WireSeries = BTreeMap<String, BTreeMap<i64, WireCounts>>;

/// A shard's reply.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reply<T> {
    Ok(T),
    /// Why the shard could not answer (a query that does not parse: the
    /// parse error, with its column).
    Error(String),
}

/// A merged result and which partitions it covers.
#[derive(Clone, Debug, PartialEq)]
pub struct FannedOut<T> {
    pub result: T,
    /// Partitions that answered, ascending.
    pub answered: Vec<u32>,
    /// Partitions that did not answer in time (no responder, or a slow
    /// one), ascending: `result` lacks their share.
    pub missing: Vec<u32>,
}

/// Why a fanned-out request failed.
#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    /// The query does not parse (found before anything is sent).
    #[error("{0}")]
    Query(#[from] ParseError),
    /// A shard answered with an error.
    #[error("partition {partition}: {message}")]
    Shard { partition: u32, message: String },
    /// A shard's reply is not what this tidewatch understands.
    #[error("partition {partition} sent an unreadable reply: {reason}")]
    Reply { partition: u32, reason: String },
    #[error("encoding the request: {0}")]
    Encode(serde_json::Error),
    #[error(transparent)]
    Cluster(#[from] crate::Error),
}

/// Answers view requests for one partition.
pub struct ShardResponder {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl ShardResponder {
    /// Answers requests for partition `p` from the store in `dir` (opened
    /// read-only for each request, as the server does, so it sees every
    /// commit of the shard's writer). A `dir` without a store yet answers
    /// empty results. The subscriptions are in place when this returns.
    pub async fn start(client: async_nats::Client, p: u32, dir: PathBuf) -> crate::Result<ShardResponder> {
        let mut search = client
            .queue_subscribe(search_subject(p), QUEUE_GROUP.to_string())
            .await
            .map_err(nats(format!("subscribing to {}", search_subject(p))))?;
        let mut series = client
            .queue_subscribe(series_subject(p), QUEUE_GROUP.to_string())
            .await
            .map_err(nats(format!("subscribing to {}", series_subject(p))))?;
        let mut progress = client
            .queue_subscribe(progress_subject(p), QUEUE_GROUP.to_string())
            .await
            .map_err(nats(format!("subscribing to {}", progress_subject(p))))?;
        // The server has the subscriptions once a message this client sent
        // after them comes back to it: a connection's messages are handled
        // in order (a flush only writes the socket).
        let inbox = client.new_inbox();
        let mut echo = client
            .subscribe(inbox.clone())
            .await
            .map_err(nats(format!("subscribing to partition {p}'s view subjects")))?;
        client
            .publish(inbox, Default::default())
            .await
            .map_err(nats(format!("subscribing to partition {p}'s view subjects")))?;
        if tokio::time::timeout(Duration::from_secs(10), echo.next())
            .await
            .is_err()
        {
            return Err(nats(format!("subscribing to partition {p}'s view subjects"))(
                "the server did not confirm the subscriptions within 10 s",
            ));
        }
        let _ = echo.unsubscribe().await;
        let (stop, mut stopped) = oneshot::channel();
        let dir = Arc::new(dir);
        let task = tokio::spawn(async move {
            let reads = Arc::new(Semaphore::new(CONCURRENT_READS));
            let mut in_flight = JoinSet::new();
            loop {
                let (msg, kind) = tokio::select! {
                    _ = &mut stopped => break,
                    Some(m) = search.next() => (m, Kind::Search),
                    Some(m) = series.next() => (m, Kind::Series),
                    Some(m) = progress.next() => (m, Kind::Progress),
                    // Finished answers are collected as they come, so the set stays small.
                    Some(_) = in_flight.join_next(), if !in_flight.is_empty() => continue,
                    else => break,
                };
                // A message without a reply subject is no request: nobody to answer.
                let Some(reply_to) = msg.reply else { continue };
                let (client, dir, reads) = (client.clone(), dir.clone(), reads.clone());
                in_flight.spawn(async move {
                    // Closed only when the task ends; then there is no one to answer.
                    let Ok(_permit) = reads.acquire_owned().await else {
                        return;
                    };
                    let payload = msg.payload;
                    let body = tokio::task::spawn_blocking(move || answer(kind, &dir, &payload))
                        .await
                        .unwrap_or_else(|e| {
                            encode(&Reply::<()>::Error(format!(
                                "partition {p}: the shard reader failed: {e}"
                            )))
                        });
                    // A reply over the server's limit would be dropped and
                    // look like a missing shard; say why instead.
                    let max = client.server_info().max_payload;
                    let body = if max > 0 && body.len() > max {
                        encode(&Reply::<()>::Error(format!(
                            "partition {p}: the reply ({} bytes) is larger than the NATS server's \
                             max_payload ({max} bytes); ask for fewer hits",
                            body.len()
                        )))
                    } else {
                        body
                    };
                    // A requester that gave up is not an error here.
                    let _ = client.publish(reply_to, body.into()).await;
                });
            }
            let _ = search.unsubscribe().await;
            let _ = series.unsubscribe().await;
            let _ = progress.unsubscribe().await;
            // Requests already taken are still answered.
            while in_flight.join_next().await.is_some() {}
            let _ = client.flush().await;
        });
        Ok(ShardResponder { stop, task })
    }

    /// Stops answering: unsubscribes, then waits for the requests already
    /// taken to be answered.
    pub async fn stop(self) {
        // The task may have ended already (its subscriptions closed).
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Search,
    Series,
    Progress,
}

/// The encoded reply to one request (runs on the blocking pool).
fn answer(kind: Kind, dir: &Path, payload: &[u8]) -> Vec<u8> {
    match kind {
        Kind::Search => encode(&match serde_json::from_slice::<ViewSearch>(payload) {
            Ok(req) => shard_search(dir, &req).map_or_else(Reply::Error, Reply::Ok),
            Err(e) => Reply::Error(format!("not a search request: {e}")),
        }),
        Kind::Series => encode(&match serde_json::from_slice::<ViewSeries>(payload) {
            Ok(req) => shard_series(dir, &req).map_or_else(Reply::Error, Reply::Ok),
            Err(e) => Reply::Error(format!("not a series request: {e}")),
        }),
        Kind::Progress => encode(&shard_progress(dir).map_or_else(Reply::Error, Reply::Ok)),
    }
}

fn encode<T: Serialize>(reply: &Reply<T>) -> Vec<u8> {
    // Plain data (strings, numbers, maps with string or integer keys)
    // always serialises; the fallback is unreachable in practice.
    serde_json::to_vec(reply).unwrap_or_else(|e| format!(r#"{{"error":"encoding the reply: {e}"}}"#).into_bytes())
}

/// The shard's feed table, id → name (empty when there is no database yet).
fn feed_names(dir: &Path) -> Result<HashMap<u32, String>, StoreError> {
    let path = Store::db_path(dir);
    if !path.is_file() {
        return Ok(HashMap::new());
    }
    Ok(Db::open(&path)?.feeds()?.into_iter().map(|f| (f.id, f.name)).collect())
}

/// The query a search carries: as written, or, when empty with a feed,
/// one that holds for every post (an empty AND), so the feed filter alone
/// decides. Without a feed an empty query is the parser's error.
fn view_query(req: &ViewSearch) -> Result<Query, ParseError> {
    if req.query.trim().is_empty() && req.feed.is_some() {
        return Ok(Query::from_node(Node::And(Vec::new())));
    }
    Query::parse(&req.query)
}

/// One shard's answer to a search.
fn shard_search(dir: &Path, req: &ViewSearch) -> Result<ViewSearchResult, String> {
    let query = view_query(req).map_err(|e| e.to_string())?;
    let index_dir = Store::index_dir(dir);
    // No commit yet: nothing stored, nothing found.
    if !index_dir.join("meta.json").is_file() {
        return Ok(ViewSearchResult::default());
    }
    let names = feed_names(dir).map_err(|e| e.to_string())?;
    let feed = match &req.feed {
        None => None,
        Some(name) => match names.iter().find(|(_, n)| *n == name) {
            Some((id, _)) => Some(*id),
            // This shard never recorded the feed: none of its posts matched it.
            None => return Ok(ViewSearchResult::default()),
        },
    };
    let request = SearchRequest {
        query,
        from: req.from.map(Timestamp),
        to: req.to.map(Timestamp),
        feed,
        limit: req.limit,
    };
    let index = PostIndex::open_read_only(&index_dir).map_err(|e| e.to_string())?;
    let count = index.count(&request).map_err(|e| e.to_string())?;
    let hits = index.search(&request).map_err(|e| e.to_string())?;
    Ok(ViewSearchResult {
        count,
        hits: hits
            .into_iter()
            .map(|h| ViewHit {
                feeds: h
                    .feeds
                    .iter()
                    .map(|id| names.get(id).cloned().unwrap_or_else(|| format!("#{id}")))
                    .collect(),
                id: h.id,
                created_at: h.created_at,
                platform: h.platform,
                lang: h.lang,
                sentiment: h.sentiment,
                text: h.text,
                url: h.url,
            })
            .collect(),
    })
}

/// One shard's answer to a series request: every feed of its table (or the
/// one asked for), with the minutes that had matches.
fn shard_series(dir: &Path, req: &ViewSeries) -> Result<WireSeries, String> {
    let path = Store::db_path(dir);
    if !path.is_file() {
        return Ok(WireSeries::new());
    }
    let db = Db::open(&path).map_err(|e| e.to_string())?;
    let from = req.from.map_or(i64::MIN, |t| t.div_euclid(Timestamp::MINUTE));
    let to = req.to.map_or(i64::MAX, |t| t.div_euclid(Timestamp::MINUTE));
    let mut out = WireSeries::new();
    for feed in db.feeds().map_err(|e| e.to_string())? {
        if req.feed.as_ref().is_some_and(|name| *name != feed.name) {
            continue;
        }
        let minutes = db.feed_minutes(feed.id, from, to).map_err(|e| e.to_string())?;
        let series = out.entry(feed.name).or_default();
        for (minute, counts) in minutes {
            let mut sum = MinuteCounts::from(series.get(&minute).copied().unwrap_or_default());
            sum.add(&counts);
            series.insert(minute, sum.into());
        }
    }
    Ok(out)
}

/// One shard's progress (nothing yet without a database).
fn shard_progress(dir: &Path) -> Result<ShardProgress, String> {
    let path = Store::db_path(dir);
    if !path.is_file() {
        return Ok(ShardProgress::default());
    }
    let (newest_minute, posts) = Db::open(&path)
        .and_then(|db| db.progress())
        .map_err(|e| e.to_string())?;
    Ok(ShardProgress { newest_minute, posts })
}

/// Sends `body` to `subject(p)` for every partition at once; returns the
/// replies of those that answered in time, and who did not.
async fn fan_out<T: serde::de::DeserializeOwned>(
    client: &async_nats::Client,
    partitions: u32,
    subject: fn(u32) -> String,
    body: Vec<u8>,
    timeout: Duration,
) -> Result<(Vec<(u32, T)>, Vec<u32>), ViewError> {
    let asks = (0..partitions).map(|p| {
        let request = async_nats::Request::new()
            .payload(body.clone().into())
            .timeout(Some(timeout));
        async move { (p, client.send_request(subject(p), request).await) }
    });
    let mut answered = Vec::new();
    let mut missing = Vec::new();
    for (p, outcome) in futures_util::future::join_all(asks).await {
        let msg = match outcome {
            Ok(msg) => msg,
            Err(e) => {
                use async_nats::RequestErrorKind as K;
                match e.kind() {
                    // Nobody holds the partition, or its holder is too slow.
                    K::TimedOut | K::NoResponders => {
                        missing.push(p);
                        continue;
                    }
                    K::Other => return Err(nats(format!("asking partition {p}"))(BoxError::from(e)).into()),
                }
            }
        };
        match serde_json::from_slice::<Reply<T>>(&msg.payload) {
            Ok(Reply::Ok(r)) => answered.push((p, r)),
            Ok(Reply::Error(message)) => return Err(ViewError::Shard { partition: p, message }),
            Err(e) => {
                return Err(ViewError::Reply {
                    partition: p,
                    reason: e.to_string(),
                })
            }
        }
    }
    Ok((answered, missing))
}

/// Searches every partition and merges: hits newest first (ties by id,
/// posts without a time last), each post id once, cut to `req.limit`;
/// counts summed (a post stored in two shards, which partitioning by post
/// id prevents short of copying a shard by hand, is shown once but
/// counted twice). A query that does not parse fails here, before anything
/// is sent; a shard that answers with an error fails the whole search.
pub async fn search(
    client: &async_nats::Client,
    partitions: u32,
    req: &ViewSearch,
    timeout: Duration,
) -> Result<FannedOut<ViewSearchResult>, ViewError> {
    view_query(req)?;
    let body = serde_json::to_vec(req).map_err(ViewError::Encode)?;
    let (replies, missing) = fan_out::<ViewSearchResult>(client, partitions, search_subject, body, timeout).await?;
    let answered = replies.iter().map(|(p, _)| *p).collect();
    Ok(FannedOut {
        result: merge_search(replies.into_iter().map(|(_, r)| r), req.limit),
        answered,
        missing,
    })
}

/// Merges shard results (see [`search`]).
pub fn merge_search(shards: impl IntoIterator<Item = ViewSearchResult>, limit: usize) -> ViewSearchResult {
    let mut count = 0u64;
    let mut hits = Vec::new();
    for shard in shards {
        count = count.saturating_add(shard.count);
        hits.extend(shard.hits);
    }
    // Newest first; `None` (no time) sorts below every time.
    hits.sort_by(|a, b| b.created_at.cmp(&a.created_at).then_with(|| a.id.cmp(&b.id)));
    let mut seen = HashSet::new();
    hits.retain(|h| seen.insert(h.id.clone()));
    hits.truncate(limit);
    ViewSearchResult { hits, count }
}

/// Asks every partition for per-minute feed counts and sums them per
/// (feed name, minute).
pub async fn series(
    client: &async_nats::Client,
    partitions: u32,
    req: &ViewSeries,
    timeout: Duration,
) -> Result<FannedOut<FeedSeries>, ViewError> {
    let body = serde_json::to_vec(req).map_err(ViewError::Encode)?;
    let (replies, missing) = fan_out::<WireSeries>(client, partitions, series_subject, body, timeout).await?;
    let answered = replies.iter().map(|(p, _)| *p).collect();
    let mut result = FeedSeries::new();
    for (_, shard) in replies {
        for (feed, minutes) in shard {
            let merged = result.entry(feed).or_default();
            for (minute, counts) in minutes {
                merged.entry(minute).or_default().add(&counts.into());
            }
        }
    }
    Ok(FannedOut {
        result,
        answered,
        missing,
    })
}

/// Asks every partition how far its shard has got.
pub async fn progress(
    client: &async_nats::Client,
    partitions: u32,
    timeout: Duration,
) -> Result<FannedOut<BTreeMap<u32, ShardProgress>>, ViewError> {
    let (replies, missing) =
        fan_out::<ShardProgress>(client, partitions, progress_subject, b"{}".to_vec(), timeout).await?;
    Ok(FannedOut {
        answered: replies.iter().map(|(p, _)| *p).collect(),
        result: replies.into_iter().collect(),
        missing,
    })
}

/// [`search`] for synchronous callers (the CLI): connects to the cluster
/// described by `cfg` (which says P) on a runtime of its own.
pub fn search_blocking(
    cfg: &crate::ClusterConfig,
    req: &ViewSearch,
    timeout: Duration,
) -> Result<FannedOut<ViewSearchResult>, ViewError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(crate::Error::Io)?;
    rt.block_on(async {
        // A bad query fails before connecting.
        view_query(req)?;
        let cluster = crate::Cluster::connect(cfg).await?;
        search(cluster.client(), cluster.partitions(), req, timeout).await
    })
}

/// `Option<Timestamp>` as optional milliseconds since the epoch.
mod opt_ms {
    use serde::{Deserialize, Deserializer, Serializer};
    use tidewatch_core::Timestamp;

    pub fn serialize<S: Serializer>(t: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_some(&t.0),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Timestamp>, D::Error> {
        Ok(Option::<i64>::deserialize(d)?.map(Timestamp))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(id: &str, t: Option<i64>) -> ViewHit {
        ViewHit {
            id: id.to_string(),
            created_at: t.map(Timestamp),
            platform: "test".into(),
            lang: None,
            sentiment: String::new(),
            text: format!("text of {id}"),
            url: None,
            feeds: vec!["climate".into()],
        }
    }

    fn ids(r: &ViewSearchResult) -> Vec<&str> {
        r.hits.iter().map(|h| h.id.as_str()).collect()
    }

    #[test]
    fn merged_hits_are_newest_first_ties_by_id_untimed_last_and_unique() {
        let a = ViewSearchResult {
            hits: vec![hit("b", Some(30)), hit("x", Some(10)), hit("u", None)],
            count: 3,
        };
        let b = ViewSearchResult {
            hits: vec![hit("c", Some(40)), hit("a", Some(30)), hit("x", Some(10))],
            count: 5,
        };
        let merged = merge_search([a.clone(), b.clone()], 10);
        assert_eq!(ids(&merged), ["c", "a", "b", "x", "u"]);
        assert_eq!(merged.count, 8);
        assert_eq!(ids(&merge_search([a, b], 2)), ["c", "a"]);
        assert_eq!(merge_search([], 5), ViewSearchResult::default());
    }

    #[test]
    fn hits_cross_the_wire_with_exact_times() {
        let h = hit("p1", Some(-62_135_596_800_001));
        let json = serde_json::to_string(&Reply::Ok(h.clone())).unwrap();
        assert!(
            json.starts_with(r#"{"ok":{"id":"p1","created_at":-62135596800001,"#),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<Reply<ViewHit>>(&json).unwrap(), Reply::Ok(h));
        let err: Reply<ViewHit> = serde_json::from_str(r#"{"error":"bad"}"#).unwrap();
        assert_eq!(err, Reply::Error("bad".into()));
    }

    #[test]
    fn requests_default_their_optional_fields() {
        let s: ViewSearch = serde_json::from_str(r#"{"query":"rain","limit":5}"#).unwrap();
        assert_eq!(
            s,
            ViewSearch {
                query: "rain".into(),
                from: None,
                to: None,
                feed: None,
                limit: 5
            }
        );
        assert_eq!(serde_json::from_str::<ViewSeries>("{}").unwrap(), ViewSeries::default());
    }

    #[test]
    fn a_directory_without_a_store_answers_empty() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("part-7");
        let req = ViewSearch {
            query: "rain".into(),
            from: None,
            to: None,
            feed: None,
            limit: 5,
        };
        assert_eq!(shard_search(&missing, &req), Ok(ViewSearchResult::default()));
        assert_eq!(shard_series(&missing, &ViewSeries::default()), Ok(WireSeries::new()));
        assert!(!missing.exists(), "answering creates nothing");
        let bad = ViewSearch {
            query: "(rain".into(),
            ..req
        };
        let err = shard_search(&missing, &bad).unwrap_err();
        assert!(err.contains("column"), "{err}");
    }

    #[test]
    fn an_empty_query_means_every_post_only_with_a_feed() {
        let mut req = ViewSearch {
            query: " ".into(),
            from: None,
            to: None,
            feed: Some("weather".into()),
            limit: 5,
        };
        assert_eq!(view_query(&req), Ok(Query::from_node(Node::And(Vec::new()))));
        req.feed = None;
        assert!(view_query(&req).is_err());
    }
}
