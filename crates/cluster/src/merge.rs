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
//!   published on `tidewatch.agg.<p>` as each shard's windows close, kept
//!   a few hours in their own stream (so a merger started late reads them
//!   back) and merged here (heavy-hitter sketches merge). These are best
//!   effort: a window lost with a crashed worker leaves an explanation a
//!   little poorer, never a count wrong.
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
}

impl Default for MergerOptions {
    fn default() -> Self {
        MergerOptions {
            lateness_ms: WindowConfig::default().allowed_lateness_ms,
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(5),
        }
    }
}

/// Partial windows received, by (minute, feed name), merged.
type Sketches = Arc<Mutex<HashMap<(i64, String), WindowStats>>>;

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
    sketches: Sketches,
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
        let sketches: Sketches = Arc::default();
        // Every partial window still kept, then the new ones as they come.
        let partials = cluster
            .jetstream()
            .get_stream(crate::setup::partials_stream(cluster.stream_name()))
            .await
            .map_err(nats("opening the partial windows stream"))?;
        let consumer = partials
            .create_consumer(async_nats::jetstream::consumer::push::OrderedConfig {
                deliver_subject: cluster.client().new_inbox(),
                filter_subject: format!("{AGG_PREFIX}.*"),
                deliver_policy: async_nats::jetstream::consumer::DeliverPolicy::All,
                ..Default::default()
            })
            .await
            .map_err(nats("reading the partial windows"))?;
        let mut sub = consumer.messages().await.map_err(nats("reading the partial windows"))?;
        let into = sketches.clone();
        let listener = tokio::spawn(async move {
            while let Some(msg) = sub.next().await {
                let Ok(msg) = msg else { continue };
                // A message that does not decode is dropped: explanations
                // are best effort, counts never come from here.
                let Ok(partial) = serde_json::from_slice::<PartialWindows>(&msg.payload) else {
                    continue;
                };
                let mut merged = into.lock().unwrap_or_else(|e| e.into_inner());
                for w in partial.windows {
                    let minute = w.start.div_euclid(Timestamp::MINUTE);
                    match merged.entry((minute, w.feed)) {
                        std::collections::hash_map::Entry::Occupied(mut e) => e.get_mut().merge(&w.stats),
                        std::collections::hash_map::Entry::Vacant(e) => {
                            e.insert(w.stats);
                        }
                    }
                }
            }
        });
        Ok(Merger {
            cluster,
            store,
            live,
            feeds_revision: None,
            recorded_feeds,
            alerts,
            next_minute: None,
            sketches,
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
        // Minutes ending at or before `until` are final.
        let end_minute = until.div_euclid(Timestamp::MINUTE);
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
                let sketch = self
                    .sketches
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&(m, name.to_string()));
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
        self.sketches
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(m, _), _| *m >= end_minute);
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

fn known(rows: &[FeedRow]) -> Vec<(String, u32)> {
    rows.iter().map(|r| (r.name.clone(), r.id)).collect()
}

fn view_err(e: view::ViewError) -> Error {
    Error::Io(std::io::Error::other(e))
}
