//! What feeds the live stream under `tidewatch serve`: once a second, the
//! poller looks at the data directory and publishes what changed.
//!
//! - `alert`: each alert event (opened, closed) recorded since the last
//!   look, as its stored JSON record;
//! - `counts`: after each store commit, the per-feed minute counts that
//!   changed, for the minutes from the newest one seen on (a late post
//!   that changes an older minute shows in `/feeds/{name}/series`, not
//!   here);
//! - `health`: the pipeline's metrics, whenever the run writes a new
//!   `status.json`.
//!
//! What is in the store when the server starts is not replayed: the
//! stream carries news. A process that runs the pipeline itself can skip
//! the poller and publish to the [`EventHub`](crate::hub::EventHub) the
//! moment something happens.
//!
//! Over a cluster (`tidewatch serve --nats`) the data directory holds the
//! cluster's alerts but no counts: those are in the workers' shards. There
//! [`ClusterCounts`] asks every shard each second for the minutes from the
//! newest one seen on (`tidewatch_cluster::view::series`, summed by feed
//! and minute), and a `counts` event also lists the partitions that did
//! not answer in `missing_partitions`. A silent shard makes a sum smaller,
//! which is not news: while partitions are missing, a count that fell is
//! not reported (it shows again, whole, once they answer).

use crate::api::system::{metrics_now, Metrics};
use crate::state::{AppState, ClusterView};
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tidewatch_cluster::view::{self, ViewSeries};
use tidewatch_core::Timestamp;
use tidewatch_store::Store;

/// Polls every `every` until the task is aborted.
pub async fn run(state: Arc<AppState>, every: Duration) {
    // Two loops: a partition that does not answer makes each look at the
    // cluster last the shard timeout, which must not delay alerts.
    tokio::join!(poll_store(state.clone(), every), poll_cluster(state, every));
}

/// Looks at the data directory every `every`.
async fn poll_store(state: Arc<AppState>, every: Duration) {
    let mut poller = Some(Poller::default());
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        let Some(mut p) = poller.take() else { return };
        let s = state.clone();
        match tokio::task::spawn_blocking(move || {
            p.poll(&s);
            p
        })
        .await
        {
            Ok(p) => poller = Some(p),
            // A panic in one poll must not end the stream: start afresh.
            Err(_) => poller = Some(Poller::default()),
        }
    }
}

/// Looks at the cluster's counts every `every`, when there is a cluster.
async fn poll_cluster(state: Arc<AppState>, every: Duration) {
    if state.cluster.get().is_none() {
        return;
    }
    let mut counts = ClusterCounts::default();
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        counts.poll(&state).await;
    }
}

/// One feed's counts in one minute, as a `counts` event lists them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MinuteCount {
    pub feed: String,
    pub minute: Timestamp,
    pub posts: i64,
    pub negative: i64,
    pub neutral: i64,
    pub positive: i64,
}

/// What the poller has already reported.
#[derive(Default)]
pub struct Poller {
    commit_seq: Option<u64>,
    /// (alert id, kind) already recorded; `None` before the first look.
    alerts: Option<HashSet<(String, String)>>,
    counts: Reported,
    health: Option<(crate::api::system::RunState, Option<i64>)>,
    conn: Option<Connection>,
}

impl Poller {
    /// One look at the data directory; publishes what is new.
    pub fn poll(&mut self, state: &AppState) {
        let Ok(metrics) = metrics_now(state) else {
            return;
        };
        if self.commit_seq != Some(metrics.commit_seq) {
            self.commit_seq = Some(metrics.commit_seq);
            if state.config.poll_alerts {
                self.alerts(state);
            }
            // Over a cluster the store holds no counts ([`ClusterCounts`]).
            if state.cluster.get().is_none() {
                self.counts(state);
            }
        }
        self.health(state, &metrics);
    }

    fn alerts(&mut self, state: &AppState) {
        let Ok(rows) = state.with_db(|db| db.alerts(None)) else {
            return;
        };
        let first = self.alerts.is_none();
        let seen = self.alerts.get_or_insert_with(HashSet::new);
        for row in rows {
            if seen.insert((row.id.clone(), row.kind.clone())) && !first {
                state.hub.publish("alert", row.record);
            }
        }
    }

    fn counts(&mut self, state: &AppState) {
        if self.conn.is_none() {
            let path = Store::db_path(&state.config.data);
            self.conn = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY).ok();
        }
        let Some(conn) = &self.conn else { return };
        let first = self.counts.from_minute.is_none();
        let from = match self.counts.from_minute {
            Some(m) => m,
            None => {
                let newest: Option<i64> = conn
                    .query_row("SELECT MAX(minute) FROM feed_minute", [], |r| r.get(0))
                    .optional()
                    .ok()
                    .flatten()
                    .flatten();
                // The newest minute and the one before it, as on every later look.
                newest.map_or(i64::MIN, |m| m.saturating_sub(1))
            }
        };
        let Ok(rows) = changed_since(conn, from) else {
            // The connection may be stale (database replaced): reopen next time.
            self.conn = None;
            return;
        };
        let changed = self.counts.absorb(rows, from, false);
        if !first && !changed.is_empty() {
            if let Ok(json) = serde_json::to_string(&serde_json::json!({ "counts": changed })) {
                state.hub.publish("counts", json);
            }
        }
    }

    fn health(&mut self, state: &AppState, m: &Metrics) {
        let key = (m.run, m.updated_at);
        if self.health == Some(key) {
            return;
        }
        self.health = Some(key);
        if let Ok(json) = serde_json::to_string(m) {
            state.hub.publish("health", json);
        }
    }
}

/// Counts already reported, by (feed, minute), for minutes ≥ `from_minute`
/// (`None` before the first look).
#[derive(Default)]
struct Reported {
    counts: BTreeMap<(String, i64), MinuteCount>,
    from_minute: Option<i64>,
}

impl Reported {
    /// Takes every feed's counts for minutes ≥ `from` (ascending minutes)
    /// and returns those that differ from what was reported; then keeps
    /// only the newest minute seen and the one before it. With `partial`
    /// (some partitions did not answer), a count that fell is skipped.
    fn absorb(&mut self, rows: Vec<MinuteCount>, from: i64, partial: bool) -> Vec<MinuteCount> {
        let mut changed = Vec::new();
        let mut newest = from;
        for c in rows {
            newest = newest.max(c.minute.0.div_euclid(Timestamp::MINUTE));
            let key = (c.feed.clone(), c.minute.0);
            let before = self.counts.get(&key);
            if partial && before.is_some_and(|b| c.posts < b.posts) {
                continue;
            }
            if before != Some(&c) {
                self.counts.insert(key, c.clone());
                changed.push(c);
            }
        }
        // Keep the newest minute's neighbour too: a commit may still add
        // posts to the minute before the newest.
        let keep_from = newest.saturating_sub(1);
        self.from_minute = Some(keep_from);
        self.counts
            .retain(|(_, t), _| t.div_euclid(Timestamp::MINUTE) >= keep_from);
        changed
    }
}

/// The `counts` events of a server over a cluster: what [`Poller`] reads
/// from a data directory, asked of every shard instead.
#[derive(Default)]
pub struct ClusterCounts {
    counts: Reported,
}

impl ClusterCounts {
    /// One look at the cluster (nothing without one); publishes the counts
    /// that changed. The first look that hears from some partition only
    /// notes where the news starts, as [`Poller`]'s first look does.
    pub async fn poll(&mut self, state: &AppState) {
        let Some(c) = state.cluster.get() else { return };
        let first = self.counts.from_minute.is_none();
        let from = match self.counts.from_minute {
            Some(m) => m,
            None => match newest_minute(c).await {
                Some(newest) => newest.map_or(i64::MIN, |m| m.saturating_sub(1)),
                // Nobody answered: the next look starts afresh rather than
                // taking the whole history of a late shard for news.
                None => return,
            },
        };
        let req = ViewSeries {
            feed: None,
            from: from.checked_mul(Timestamp::MINUTE),
            to: None,
        };
        let cluster = &c.cluster;
        let Ok(got) = view::series(cluster.client(), cluster.partitions(), &req, c.shard_timeout).await else {
            return;
        };
        if got.answered.is_empty() {
            return;
        }
        let mut rows: Vec<MinuteCount> = got
            .result
            .into_iter()
            .flat_map(|(feed, minutes)| {
                minutes.into_iter().map(move |(minute, m)| MinuteCount {
                    feed: feed.clone(),
                    minute: Timestamp(minute.saturating_mul(Timestamp::MINUTE)),
                    posts: m.posts,
                    negative: m.negative,
                    neutral: m.neutral,
                    positive: m.positive,
                })
            })
            .collect();
        // The order the local poller reads them in.
        rows.sort_by(|a, b| a.minute.cmp(&b.minute).then_with(|| a.feed.cmp(&b.feed)));
        let changed = self.counts.absorb(rows, from, !got.missing.is_empty());
        if !first && !changed.is_empty() {
            let event = serde_json::json!({ "counts": changed, "missing_partitions": got.missing });
            if let Ok(json) = serde_json::to_string(&event) {
                state.hub.publish("counts", json);
            }
        }
    }
}

/// The newest minute holding a committed post on any shard that answered
/// (`Some(None)`: they hold none yet; `None`: no shard answered).
async fn newest_minute(c: &ClusterView) -> Option<Option<i64>> {
    let cluster = &c.cluster;
    let got = view::progress(cluster.client(), cluster.partitions(), c.shard_timeout)
        .await
        .ok()?;
    if got.answered.is_empty() {
        return None;
    }
    Some(got.result.values().filter_map(|p| p.newest_minute).max())
}

/// Every feed's counts for minutes at or after `from` (unix minutes).
fn changed_since(conn: &Connection, from: i64) -> rusqlite::Result<Vec<MinuteCount>> {
    let mut st = conn.prepare_cached(
        "SELECT f.name, m.minute, m.posts, m.negative, m.neutral, m.positive
         FROM feed_minute m JOIN feeds f ON f.id = m.feed
         WHERE m.minute >= ?1 ORDER BY m.minute, f.name",
    )?;
    let rows = st.query_map([from], |r| {
        Ok(MinuteCount {
            feed: r.get(0)?,
            minute: Timestamp(r.get::<_, i64>(1)?.saturating_mul(Timestamp::MINUTE)),
            posts: r.get(2)?,
            negative: r.get(3)?,
            neutral: r.get(4)?,
            positive: r.get(5)?,
        })
    })?;
    rows.collect()
}
