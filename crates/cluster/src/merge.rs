//! Detection over the whole cluster: spikes computed on the sum of every
//! partition's counts, as one process would compute them on the whole
//! stream.
//!
//! Each partition's shard knows only its share of a feed's posts; a spike
//! is a property of the sum. The [`Merger`] (run by `tidewatch serve
//! --nats`) builds that sum minute by minute:
//!
//! - **Counts** come from the shards' stores through the fan-out
//!   ([`crate::view::series`]): the per-feed minute aggregates a store
//!   commits together with its checkpoint, so they are exact and survive
//!   a worker's crash (what was committed is counted once; what was not is
//!   read again by the next owner).
//! - **When a minute is final**: every shard reports how far it has
//!   committed ([`crate::view::progress`]); a minute is closed once every
//!   partition that holds posts has committed posts at least the allowed
//!   lateness past its end, the rule a single run's event-time windows
//!   follow. A partition that does not answer holds everything back: a
//!   sum with a hole would raise or miss alerts.
//! - **What the posts said** (top terms, hashtags, domains, languages, for
//!   the alert's explanation) comes from the workers' partial windows,
//!   published on `tidewatch.agg.<p>` after the commit that covers them,
//!   kept a few hours in their own stream (so a merger started late reads
//!   them back) and merged here (heavy-hitter sketches merge). A worker
//!   sends them in order, each acknowledged before the next, and the last
//!   message after a commit carries the shard's watermark; so a minute
//!   also waits until every partition's watermark has passed it, else its
//!   explanation would be made before its windows arrived. They are still
//!   best effort: windows open in a worker that crashed are never sent,
//!   and a partition whose watermark stands still for
//!   [`MergerOptions::partials_grace`] while the merger can read the
//!   stream is not waited for; that leaves an explanation a little poorer,
//!   never a count wrong. While the stream cannot be read (a NATS node
//!   down, a leader being elected), the workers cannot send either, and
//!   the merger waits.
//!
//! Each closed minute then goes, feed by feed in feed-id order, through
//! the same [`SpikeAlerts`] a single run uses, and the alerts it raises
//! are recorded in the serving data directory's store (so the API, the
//! dashboard and the webhooks see them as they see a single run's). Alert
//! ids depend on the feed name and the onset only, so the cluster raises
//! the very alerts one process raises over the same input. The merger
//! keeps no state of its own: started again, it reads the series of the
//! last [`RESUME_HISTORY_MINUTES`] (7 days, what a restarted `run`
//! replays too), and the alert log drops what it recorded before.

use crate::feeds::current_feeds;
use crate::setup::{Cluster, ClusterConfig};
use crate::view::{self, ViewSeries};
use crate::{nats, Error, Result};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tidewatch_core::spike::SpikeConfig;
use tidewatch_core::window::{ClosedWindow, Resolution, WindowConfig, WindowStats};
use tidewatch_core::Timestamp;
use tidewatch_engine::alerts::{AlertLog, AlertRecord, SpikeAlerts, RESUME_HISTORY_MINUTES};
use tidewatch_engine::feeds::FeedSet;
use tidewatch_engine::live::LiveFeeds;
use tidewatch_engine::persist::feed_rows;
use tidewatch_store::db::FeedRow;
use tidewatch_store::{Store, StoreConfig};

/// Partial windows of partition `p` are published to `tidewatch.agg.<p>`.
pub const AGG_PREFIX: &str = "tidewatch.agg";

pub fn agg_subject(p: u32) -> String {
    format!("{AGG_PREFIX}.{p}")
}

/// Closed minute windows of one partition's shard (one message).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct PartialWindows {
    pub partition: u32,
    pub windows: Vec<PartialWindow>,
    /// The shard's watermark (ms): with this message, every window of the
    /// partition ending at or before it has been sent. Set on the last
    /// message after each commit.
    #[serde(default)]
    pub watermark: Option<i64>,
}

/// One feed's minute window as one shard saw it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PartialWindow {
    /// The feed's name (ids differ between shards).
    pub feed: String,
    /// The minute's start, ms since the epoch.
    pub start: i64,
    pub stats: WindowStats,
}

/// How the merger runs.
#[derive(Clone, Debug)]
pub struct MergerOptions {
    /// A minute is final this long (event time) after its end, in every
    /// partition: a single run's allowed lateness.
    pub lateness_ms: i64,
    /// Time between rounds.
    pub interval: Duration,
    /// How long each partition has to answer.
    pub timeout: Duration,
    /// How long a minute whose counts are final waits for partitions'
    /// partial windows whose watermark has stopped short of it (a worker
    /// that died with windows open never sends them), counted only while
    /// the partial windows stream can be read.
    pub partials_grace: Duration,
}

impl Default for MergerOptions {
    fn default() -> Self {
        MergerOptions {
            lateness_ms: WindowConfig::default().allowed_lateness_ms,
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(5),
            partials_grace: Duration::from_secs(10),
        }
    }
}

/// What the partial windows received so far say.
#[derive(Default)]
struct Partials {
    /// By (minute, feed name), merged over partitions.
    sketches: HashMap<(i64, String), WindowStats>,
    /// Each partition's newest watermark (ms).
    watermarks: HashMap<u32, i64>,
    /// Since when the listener has been reading the stream without a
    /// failure (`None` while it cannot): windows that could not be read
    /// are not given up on.
    reading_since: Option<std::time::Instant>,
}

impl Partials {
    fn add(&mut self, partial: PartialWindows) {
        for w in partial.windows {
            let minute = w.start.div_euclid(Timestamp::MINUTE);
            match self.sketches.entry((minute, w.feed)) {
                std::collections::hash_map::Entry::Occupied(mut e) => e.get_mut().merge(&w.stats),
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(w.stats);
                }
            }
        }
        if let Some(w) = partial.watermark {
            let at = self.watermarks.entry(partial.partition).or_insert(w);
            *at = (*at).max(w);
        }
    }
}

type SharedPartials = Arc<Mutex<Partials>>;

/// Cluster-wide spike detection (see the module doc).
pub struct Merger {
    cluster: Cluster,
    store: Store,
    live: LiveFeeds,
    feeds_revision: Option<u64>,
    recorded_feeds: Vec<FeedRow>,
    alerts: SpikeAlerts,
    /// The first minute not yet fed to the detector.
    next_minute: Option<i64>,
    partials: SharedPartials,
    /// How long closing has waited for partial windows.
    held: PartialsWait,
    listener: tokio::task::JoinHandle<()>,
    opts: MergerOptions,
}

impl Drop for Merger {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

impl Merger {
    /// Connects, opens the store in `data` (where the alerts are recorded)
    /// and starts listening to the partial windows.
    pub async fn open(cluster: Cluster, data: &Path, opts: MergerOptions) -> Result<Merger> {
        let store_err = |e: tidewatch_store::StoreError| Error::Io(std::io::Error::other(e));
        let (store, _) = Store::open(data, StoreConfig::default()).map_err(store_err)?;
        let recorded_feeds = store.db().feeds().map_err(store_err)?;
        let alerts = SpikeAlerts::new(SpikeConfig::default(), AlertLog::open(store.db()).map_err(store_err)?);
        let live = LiveFeeds::from_set(FeedSet::with_known_ids(&known(&recorded_feeds), &[])?);
        let partials: SharedPartials = Arc::default();
        let listener = tokio::spawn(listen(cluster.clone(), partials.clone()));
        Ok(Merger {
            cluster,
            store,
            live,
            feeds_revision: None,
            recorded_feeds,
            alerts,
            next_minute: None,
            partials,
            held: PartialsWait::default(),
            listener,
            opts,
        })
    }

    /// The first minute not yet final (none before the first round that
    /// closed one).
    pub fn next_minute(&self) -> Option<i64> {
        self.next_minute
    }

    /// One round: closes every minute now final in every partition, feeds
    /// it to the detector and records the alerts raised. Returns them.
    pub async fn step(&mut self) -> Result<Vec<AlertRecord>> {
        self.refresh_feeds().await?;
        let client = self.cluster.client().clone();
        let partitions = self.cluster.partitions();
        let progress = view::progress(&client, partitions, self.opts.timeout)
            .await
            .map_err(view_err)?;
        if !progress.missing.is_empty() {
            return Ok(Vec::new());
        }
        let (_, stored) = self.cluster.stream_counts().await?;
        let mut until: Option<i64> = None;
        for p in 0..partitions {
            let newest = progress.result.get(&p).and_then(|s| s.newest_minute);
            match newest {
                Some(m) => {
                    let w = m * Timestamp::MINUTE - self.opts.lateness_ms;
                    until = Some(until.map_or(w, |u| u.min(w)));
                }
                // A partition with posts but none committed holds back.
                None if stored.get(p as usize).copied().unwrap_or(0) > 0 => return Ok(Vec::new()),
                None => {}
            }
        }
        let Some(until) = until else {
            return Ok(Vec::new());
        };
        // Minutes ending at or before `until` are final; they are closed
        // once their partial windows are in too.
        let Some(end_minute) = self.explained_until(until.div_euclid(Timestamp::MINUTE), &stored) else {
            return Ok(Vec::new());
        };
        if self.next_minute.is_some_and(|n| n >= end_minute) {
            return Ok(Vec::new());
        }
        // Started (or started again), the detector learns from the last
        // days only, as a restarted `run` does (see `SpikeAlerts::resume`).
        let from = self
            .next_minute
            .unwrap_or_else(|| end_minute.saturating_sub(RESUME_HISTORY_MINUTES));
        let req = ViewSeries {
            feed: None,
            from: Some(from.saturating_mul(Timestamp::MINUTE)),
            to: Some(end_minute * Timestamp::MINUTE),
        };
        let series = view::series(&client, partitions, &req, self.opts.timeout)
            .await
            .map_err(view_err)?;
        if !series.missing.is_empty() {
            return Ok(Vec::new());
        }
        let current = self.live.current();
        let set = &current.set;
        let ids: HashMap<&str, u32> = set.known_ids().collect();
        // Minute by minute, feeds in id order: the order a single run's
        // windows close in.
        let mut by_minute: BTreeMap<i64, Vec<(u32, &str, tidewatch_store::db::MinuteCounts)>> = BTreeMap::new();
        for (name, minutes) in &series.result {
            let Some(&id) = ids.get(name.as_str()) else { continue };
            for (&m, counts) in minutes {
                by_minute.entry(m).or_default().push((id, name.as_str(), *counts));
            }
        }
        let cfg = WindowConfig::default();
        let mut raised = Vec::new();
        let name_of = |id: u32| set.name_of(id).unwrap_or("?").to_string();
        for (m, mut feeds) in by_minute {
            feeds.sort_unstable_by_key(|(id, _, _)| *id);
            for (id, name, c) in feeds {
                let sketch = lock(&self.partials).sketches.remove(&(m, name.to_string()));
                let mut stats = sketch.unwrap_or_else(|| WindowStats::new(cfg.sketch_capacity, cfg.lang_capacity));
                stats.count = c.posts.max(0) as u64;
                stats.compound_micros = c.sentiment_sum.saturating_mul(100);
                stats.positive = c.positive.max(0) as u64;
                stats.negative = c.negative.max(0) as u64;
                let window = ClosedWindow {
                    feed: id,
                    resolution: Resolution::Minute,
                    start: Timestamp(m * Timestamp::MINUTE),
                    stats,
                };
                raised.extend(window.with_view(|v| self.alerts.window(v, name_of)));
            }
        }
        self.next_minute = Some(end_minute);
        // Partial windows of minutes now closed are not needed any more.
        lock(&self.partials).sketches.retain(|(m, _), _| *m >= end_minute);
        for row in self.alerts.take_pending() {
            self.store.alert(row);
        }
        let rows = feed_rows(&self.live, &self.recorded_feeds);
        if rows != self.recorded_feeds {
            self.store.set_feeds(rows.clone());
            self.recorded_feeds = rows;
        }
        self.store.commit().map_err(|e| Error::Io(std::io::Error::other(e)))?;
        Ok(raised)
    }

    /// The first minute not to close yet: `final_end` (counts final before
    /// it), or earlier where a partition holding posts (`stored`) has not
    /// sent its partial windows that far (`None`: one has sent none); see
    /// [`PartialsWait`].
    fn explained_until(&mut self, final_end: i64, stored: &[u64]) -> Option<i64> {
        let (complete, reading_since) = {
            let partials = lock(&self.partials);
            (
                partials_complete(final_end, stored, &partials.watermarks),
                partials.reading_since,
            )
        };
        let now = std::time::Instant::now();
        self.held
            .until(final_end, complete, reading_since, now, self.opts.partials_grace)
    }

    /// Takes the cluster's newest feed set (ids of known names kept).
    async fn refresh_feeds(&mut self) -> Result<()> {
        let Some(v) = current_feeds(&self.cluster).await? else {
            return Ok(());
        };
        if self.feeds_revision != Some(v.revision) {
            self.live.replace_all(&v.defs)?;
            self.feeds_revision = Some(v.revision);
        }
        Ok(())
    }

    /// Rounds every interval until `stop` is set; a failed round (a node
    /// restarting) is reported and tried again.
    pub async fn run(mut self, stop: Arc<AtomicBool>) {
        while !stop.load(Ordering::Relaxed) {
            if let Err(e) = self.step().await {
                eprintln!("cluster alerts: {e:#}");
            }
            let until = tokio::time::Instant::now() + self.opts.interval;
            while tokio::time::Instant::now() < until && !stop.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Runs a [`Merger`] over the cluster `cfg` on a thread of its own until
/// `stop` is set; alerts go to the store in `data`.
pub fn spawn(
    cfg: ClusterConfig,
    data: std::path::PathBuf,
    opts: MergerOptions,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Result<()>> {
    std::thread::spawn(move || {
        crate::publish::runtime()?.block_on(async {
            let cluster = Cluster::connect(&cfg).await?;
            Merger::open(cluster, &data, opts).await?.run(stop).await;
            Ok(())
        })
    })
}

/// The first minute some partition holding posts (`stored`, by
/// partition) has not sent its partial windows for, by the watermarks
/// received; `None` when one has sent none; `final_end` when all are past
/// it.
fn partials_complete(final_end: i64, stored: &[u64], watermarks: &HashMap<u32, i64>) -> Option<i64> {
    (0u32..)
        .zip(stored)
        .filter(|(_, &posts)| posts > 0)
        .map(|(p, _)| watermarks.get(&p).map(|w| w.div_euclid(Timestamp::MINUTE)))
        .min()
        .unwrap_or(Some(final_end))
        .map(|c| c.min(final_end))
}

/// How long closing has waited for partial windows, and whether it may
/// stop waiting.
///
/// A partition whose watermark has stood still for the grace while the
/// merger could read the stream is not waited for: its worker may have
/// died with those windows. Time during which the merger could not read
/// the stream does not count: a NATS node down or a stream leader being
/// elected stops the workers' partial windows as well as the merger's
/// reading, and both resume together; giving up then would close minutes
/// without the explanations the workers are still sending.
#[derive(Clone, Copy, Debug, Default)]
struct PartialsWait {
    /// Since when, and at which complete minute, closing has waited.
    held: Option<(std::time::Instant, Option<i64>)>,
}

impl PartialsWait {
    /// The first minute not to close yet, given the minute the partial
    /// windows are `complete` up to and since when the stream has been
    /// read without a failure (`None`: it cannot be read now).
    fn until(
        &mut self,
        final_end: i64,
        complete: Option<i64>,
        reading_since: Option<std::time::Instant>,
        now: std::time::Instant,
        grace: Duration,
    ) -> Option<i64> {
        if complete.is_some_and(|c| c >= final_end) {
            self.held = None;
            return Some(final_end);
        }
        match self.held {
            Some((since, at)) if at == complete => {
                let waited_while_reading = reading_since.map(|r| now.saturating_duration_since(since.max(r)));
                if waited_while_reading.is_some_and(|w| w >= grace) {
                    return Some(final_end);
                }
            }
            _ => self.held = Some((now, complete)),
        }
        complete
    }
}

/// Reads the partial windows stream from its start into `into` for as
/// long as the merger runs. A consumer that fails (its NATS node died, a
/// heartbeat was missed) is created again from the message after the last
/// one read, so nothing is missed or read twice.
async fn listen(cluster: Cluster, into: SharedPartials) {
    let mut next_sequence = 1;
    let mut backoff = Duration::from_millis(100);
    loop {
        match read_partials(&cluster, &mut next_sequence, &into).await {
            Ok(()) => backoff = Duration::from_millis(100),
            Err(e) => {
                lock(&into).reading_since = None;
                eprintln!("cluster alerts: reading partial windows again from message {next_sequence}: {e}");
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        }
        tokio::time::sleep(backoff).await;
    }
}

/// One consumer's life: messages from `next_sequence` on, until it fails.
async fn read_partials(cluster: &Cluster, next_sequence: &mut u64, into: &SharedPartials) -> Result<()> {
    use async_nats::jetstream::consumer::{push::OrderedConfig, DeliverPolicy};
    let partials = cluster
        .jetstream()
        .get_stream(crate::setup::partials_stream(cluster.stream_name()))
        .await
        .map_err(nats("opening the partial windows stream"))?;
    let consumer = partials
        .create_consumer(OrderedConfig {
            deliver_subject: cluster.client().new_inbox(),
            filter_subject: format!("{AGG_PREFIX}.*"),
            deliver_policy: DeliverPolicy::ByStartSequence {
                start_sequence: *next_sequence,
            },
            ..Default::default()
        })
        .await
        .map_err(nats("reading the partial windows"))?;
    let mut messages = consumer.messages().await.map_err(nats("reading the partial windows"))?;
    {
        let mut partials = lock(into);
        partials.reading_since = partials.reading_since.or_else(|| Some(std::time::Instant::now()));
    }
    while let Some(msg) = messages.next().await {
        let msg = msg.map_err(nats("reading the partial windows"))?;
        if let Ok(info) = msg.info() {
            *next_sequence = info.stream_sequence + 1;
        }
        // A message that does not decode is dropped: explanations are
        // best effort, counts never come from here.
        if let Ok(partial) = serde_json::from_slice::<PartialWindows>(&msg.payload) {
            lock(into).add(partial);
        }
    }
    Ok(())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn known(rows: &[FeedRow]) -> Vec<(String, u32)> {
    rows.iter().map(|r| (r.name.clone(), r.id)).collect()
}

fn view_err(e: view::ViewError) -> Error {
    Error::Io(std::io::Error::other(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minutes_wait_for_the_partial_windows_of_every_partition_with_posts() {
        let m = Timestamp::MINUTE;
        // Partition 1 has sent windows up to 10:00 + 30 s, partition 0 up
        // to 12:00, partition 2 holds no posts and is not waited for.
        let marks = HashMap::from([(0, 12 * m), (1, 10 * m + 30_000)]);
        assert_eq!(partials_complete(20, &[5, 5, 0], &marks), Some(10));
        assert_eq!(partials_complete(8, &[5, 5, 0], &marks), Some(8));
        // Partition 2 now holds posts but has sent nothing.
        assert_eq!(partials_complete(20, &[5, 5, 1], &marks), None);
        assert_eq!(partials_complete(20, &[0, 0, 0], &marks), Some(20));
    }

    #[test]
    fn partial_windows_are_waited_for_while_the_stream_cannot_be_read() {
        let grace = Duration::from_secs(10);
        let t0 = std::time::Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut wait = PartialsWait::default();
        // Read without a failure since t0; windows complete up to 10, counts final to 20.
        assert_eq!(wait.until(20, Some(10), Some(t0), at(0), grace), Some(10));
        assert_eq!(wait.until(20, Some(10), Some(t0), at(9), grace), Some(10));
        // The stream cannot be read from 9 s on: no grace runs out, however long.
        assert_eq!(wait.until(20, Some(10), None, at(10), grace), Some(10));
        assert_eq!(wait.until(20, Some(10), None, at(60), grace), Some(10));
        // Read again from 60 s: the grace counts from there.
        assert_eq!(wait.until(20, Some(10), Some(at(60)), at(65), grace), Some(10));
        assert_eq!(wait.until(20, Some(10), Some(at(60)), at(70), grace), Some(20));
        // Windows that arrive end the wait at once, and a new wait starts afresh.
        let mut wait = PartialsWait::default();
        assert_eq!(wait.until(20, Some(12), Some(t0), at(0), grace), Some(12));
        assert_eq!(wait.until(20, Some(15), Some(t0), at(9), grace), Some(15));
        assert_eq!(wait.until(20, Some(15), Some(t0), at(18), grace), Some(15));
        assert_eq!(wait.until(20, Some(15), Some(t0), at(19), grace), Some(20));
        assert_eq!(wait.until(30, Some(30), Some(t0), at(20), grace), Some(30));
        assert_eq!(wait.held.map(|(_, c)| c), None);
    }
}
