//! `tidewatch bench pipeline`: the whole `run` path — decode, enrich,
//! match against N generated feeds, event-time windows — measured next to
//! the same run's decode + enrich pipeline without feeds; `--detectors`
//! adds the spike alerts and emerging topics `run` keeps.
//!
//! `tidewatch bench index`: the same path with the store (index, aggregates,
//! checkpoints, commits every two seconds), next to the same run without it.

use super::feeds::generate_feeds;
use super::generated_input;
use crate::commands::run::open_store;
use anyhow::Context;
use anyhow::Result;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;
use tidewatch_core::emerging::EmergingConfig;
use tidewatch_core::pseudonym::{Keyring, PseudonymConfig};
use tidewatch_core::redact::PublicAccounts;
use tidewatch_core::spike::SpikeConfig;
use tidewatch_core::window::WindowView;
use tidewatch_core::Timestamp;
use tidewatch_engine::alerts::{AlertLog, SpikeAlerts};
use tidewatch_engine::datadir::DataDir;
use tidewatch_engine::decode::DecodeOptions;
use tidewatch_engine::decode::Position;
use tidewatch_engine::feeds::FeedDef;
use tidewatch_engine::ingest::{self, IngestConfig};
use tidewatch_engine::live::LiveFeeds;
use tidewatch_engine::persist::{CommitPolicy, Persister};
use tidewatch_engine::run::{self, MatchedPost, RunSink, SinkError};
use tidewatch_engine::topics::TopicWatch;
use tidewatch_ingest::Format;
use tidewatch_store::db::Db;

/// Counts what a run produces; keeps it only when given a store, and runs
/// the detectors when given them.
#[derive(Default)]
pub(super) struct Counter {
    posts: u64,
    matches: u64,
    windows: u64,
    pub(super) persist: Option<Persister>,
    detectors: Option<Detectors>,
}

impl Counter {
    /// A counter that also stores every post through `persist`.
    pub(super) fn storing(persist: Persister) -> Counter {
        Counter {
            persist: Some(persist),
            ..Default::default()
        }
    }
}

/// The detectors `tidewatch run` runs in its sink.
struct Detectors {
    alerts: SpikeAlerts,
    topics: TopicWatch,
    raised: u64,
    announced: u64,
}

impl RunSink for Counter {
    fn post(&mut self, post: &MatchedPost) {
        self.posts += 1;
        self.matches += post.feeds.len() as u64;
        if let Some(p) = &mut self.persist {
            p.post(post, None);
        }
        if let Some(d) = &mut self.detectors {
            d.announced += d.topics.post(post).len() as u64;
        }
    }

    fn window(&mut self, window: &WindowView<'_>) {
        self.windows += 1;
        if let Some(d) = &mut self.detectors {
            d.raised += d.alerts.window(window, |id| id.to_string()).len() as u64;
            d.alerts.take_pending();
        }
    }

    fn batch_end(&mut self, at: &Position, finished: &[Position]) -> Result<(), SinkError> {
        match &mut self.persist {
            Some(p) => p.batch_end(at, finished),
            None => Ok(()),
        }
    }
}

/// `bench index`: the run with the store against the run without it.
pub fn bench_index(
    feeds: usize,
    posts: u64,
    threads: usize,
    seed: u64,
    dir: Option<PathBuf>,
    event_rate: Option<f64>,
    commit_ms: u64,
) -> Result<ExitCode> {
    let tmp = tempfile::tempdir()?;
    let input = generated_input(dir.as_deref().unwrap_or(tmp.path()), posts, seed, event_rate)?;
    let defs: Vec<FeedDef> = generate_feeds(feeds, seed)
        .into_iter()
        .map(|(name, query)| FeedDef { name, query })
        .collect();
    let keyring = Arc::new(Keyring::new(PseudonymConfig::default()));
    let cfg = super::run_config(threads, keyring.clone());
    let paths = [input];

    // Without the store.
    let live = LiveFeeds::new(&defs)?;
    let mut plain = Counter::default();
    let base = run::run(&paths, &cfg, &live, &mut plain, &mut |_| {}).map_err(|e| anyhow::anyhow!("{e}"))?;
    let base_rate = base.progress.posts as f64 / base.progress.elapsed.as_secs_f64();

    // With it: a fresh data directory, retention off (the posts span a day).
    let data_path = tmp.path().join("data");
    let data = DataDir::open(&data_path)?;
    let policy = CommitPolicy {
        interval: std::time::Duration::from_millis(commit_ms),
        ..Default::default()
    };
    let (persist, live, _) = open_store(&data, &paths, &defs, &keyring, 0, policy)?;
    let mut stored = Counter::storing(persist);
    let start = Instant::now();
    let with = run::run(&paths, &cfg, &live, &mut stored, &mut |_| {}).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut persist = stored.persist.take().context("the store sink")?;
    persist.commit()?;
    let secs = start.elapsed().as_secs_f64();
    let rate = with.progress.posts as f64 / secs;
    let index_bytes = persist.store().index().size_bytes();
    let db_bytes: u64 = ["tidewatch.db", "tidewatch.db-wal"]
        .iter()
        .filter_map(|f| std::fs::metadata(data_path.join(f)).ok())
        .map(|m| m.len())
        .sum();
    let per_million = |b: u64| (b as f64 * 1e6 / with.progress.posts.max(1) as f64).round();
    println!(
        "{}",
        serde_json::json!({
            "bench": "index",
            "stages": "decode + enrich + match + windows + index + aggregates + commits",
            "commit_ms": commit_ms,
            "posts": with.progress.posts,
            "feeds": defs.len(),
            "threads": threads,
            "event_rate_posts_per_s": event_rate,
            "seconds": secs,
            "posts_per_s": rate.round(),
            "commits": persist.totals().seq,
            "index_bytes": index_bytes,
            "index_bytes_per_million_posts": per_million(index_bytes),
            "db_bytes": db_bytes,
            "matches_per_post": stored.matches as f64 / stored.posts.max(1) as f64,
            "baseline": "the same run without the store, same process",
            "baseline_posts_per_s": base_rate.round(),
            "ratio": rate / base_rate,
        })
    );
    Ok(ExitCode::SUCCESS)
}

pub fn bench_pipeline(
    feeds: usize,
    posts: u64,
    threads: usize,
    seed: u64,
    dir: Option<PathBuf>,
    rate: Option<f64>,
    detectors: bool,
) -> Result<ExitCode> {
    let event_rate = rate;
    let tmp = tempfile::tempdir()?;
    let input = generated_input(dir.as_deref().unwrap_or(tmp.path()), posts, seed, rate)?;
    let defs: Vec<FeedDef> = generate_feeds(feeds, seed)
        .into_iter()
        .map(|(name, query)| FeedDef { name, query })
        .collect();
    let build = Instant::now();
    let live = LiveFeeds::new(&defs)?;
    let build_s = build.elapsed().as_secs_f64();
    let decode = DecodeOptions {
        format: Some(Format::Canonical),
        ..Default::default()
    };
    let keyring = Arc::new(Keyring::new(PseudonymConfig::default()));
    let public_accounts = Arc::new(PublicAccounts::default());

    // Baseline: the same inputs through decode + enrich only.
    let base_cfg = IngestConfig {
        decode: decode.clone(),
        threads,
        keyring: keyring.clone(),
        public_accounts: public_accounts.clone(),
        undated_time: Timestamp(0),
    };
    let base = ingest::run_without_output(std::slice::from_ref(&input), &base_cfg)?;
    let base_rate = base.posts as f64 / base.elapsed.as_secs_f64();

    let cfg = super::run_config(threads, keyring);
    // The alert log needs a database; a scratch one, so every alert is new.
    let db = Db::open(&tmp.path().join("alerts.db"))?;
    let mut counter = Counter {
        detectors: detectors
            .then(|| -> Result<Detectors> {
                Ok(Detectors {
                    alerts: SpikeAlerts::new(SpikeConfig::default(), AlertLog::open(&db)?),
                    topics: TopicWatch::new(EmergingConfig::default()),
                    raised: 0,
                    announced: 0,
                })
            })
            .transpose()?,
        ..Default::default()
    };
    let cpu = super::CpuClock::start();
    let summary = run::run(std::slice::from_ref(&input), &cfg, &live, &mut counter, &mut |_| {})
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let secs = summary.progress.elapsed.as_secs_f64();
    let rate = summary.progress.posts as f64 / secs;
    println!(
        "{}",
        serde_json::json!({
            "bench": "pipeline",
            "stages": if detectors {
                "decode + enrich + match + windows + spike alerts + emerging topics"
            } else {
                "decode + enrich + match + windows"
            },
            "alerts": counter.detectors.as_ref().map(|d| d.raised),
            "topics_announced": counter.detectors.as_ref().map(|d| d.announced),
            "posts": summary.progress.posts,
            "feeds": live.current().set.len(),
            "threads": threads,
            "event_rate_posts_per_s": event_rate,
            "build_s": build_s,
            "seconds": secs,
            "posts_per_s": rate.round(),
            "cpu_s": cpu.seconds(),
            "cpu_us_per_post": cpu.us_per_post(summary.progress.posts),
            "matched_share": summary.progress.matched as f64 / summary.progress.posts.max(1) as f64,
            "matches_per_post": counter.matches as f64 / counter.posts.max(1) as f64,
            "windows_closed": counter.windows,
            "baseline": "decode + enrich without feeds, same run",
            "baseline_posts_per_s": base_rate.round(),
            "ratio": rate / base_rate,
        })
    );
    Ok(ExitCode::SUCCESS)
}
