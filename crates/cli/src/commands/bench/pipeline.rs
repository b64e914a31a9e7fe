//! `tidewatch bench pipeline`: the whole `run` path — decode, enrich,
//! match against N generated feeds, event-time windows — measured next to
//! the same run's decode + enrich pipeline without feeds.

use super::feeds::generate_feeds;
use super::generated_input;
use anyhow::Result;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;
use tidewatch_core::pseudonym::{Keyring, PseudonymConfig};
use tidewatch_core::redact::PublicAccounts;
use tidewatch_core::window::{WindowConfig, WindowView};
use tidewatch_core::Timestamp;
use tidewatch_engine::decode::DecodeOptions;
use tidewatch_engine::feeds::FeedDef;
use tidewatch_engine::ingest::{self, IngestConfig};
use tidewatch_engine::live::LiveFeeds;
use tidewatch_engine::run::{self, MatchedPost, RunConfig, RunSink};
use tidewatch_ingest::Format;

/// Counts what a run produces, and keeps nothing.
#[derive(Default)]
struct Counter {
    posts: u64,
    matches: u64,
    windows: u64,
}

impl RunSink for Counter {
    fn post(&mut self, post: &MatchedPost) {
        self.posts += 1;
        self.matches += post.feeds.len() as u64;
    }

    fn window(&mut self, _window: &WindowView<'_>) {
        self.windows += 1;
    }
}

pub fn bench_pipeline(
    feeds: usize,
    posts: u64,
    threads: usize,
    seed: u64,
    dir: Option<PathBuf>,
    rate: Option<f64>,
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

    let cfg = RunConfig {
        decode,
        threads,
        keyring,
        public_accounts,
        undated_time: Timestamp(0),
        window: WindowConfig::default(),
    };
    let mut counter = Counter::default();
    let summary = run::run(std::slice::from_ref(&input), &cfg, &live, &mut counter, &mut |_| {})
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let secs = summary.progress.elapsed.as_secs_f64();
    let rate = summary.progress.posts as f64 / secs;
    println!(
        "{}",
        serde_json::json!({
            "bench": "pipeline",
            "stages": "decode + enrich + match + windows",
            "posts": summary.progress.posts,
            "feeds": live.current().set.len(),
            "threads": threads,
            "event_rate_posts_per_s": event_rate,
            "build_s": build_s,
            "seconds": secs,
            "posts_per_s": rate.round(),
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
