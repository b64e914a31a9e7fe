//! `tidewatch bench detectors`: what narratives and coordination cost a
//! run, and whether their memory stays flat over a long stream.
//!
//! - **Throughput**: the whole `run` path (decode, enrich, match against N
//!   generated feeds, windows) twice over the same generated input: once
//!   with a sink that only counts, once with a [`NarrativeWatch`] and a
//!   [`CoordinationWatch`] lent to the run as `tidewatch run` lends them
//!   (the workers make the narrative sketches, the detectors' own thread
//!   the rest, one batch ahead of the ordered consumer).
//!   Both rates are printed, with their ratio; the detectors' run also
//!   prints the process RSS every `--every` posts.
//! - **Memory** (`--memory-posts N`): a generated stream of N posts over
//!   `--days` days through pseudonymisation, entities and the two detectors
//!   alone (no feeds, one thread, as `tidewatch coordination` runs them), printing the process RSS and the detectors' own
//!   estimates every `--every` posts: the figures should stop growing once
//!   the windows (24 h of narratives, one epoch of edges) are full.

use super::feeds::generate_feeds;
use super::generated_input;
use crate::commands::coordination::Detectors;
use anyhow::Result;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;
use tidewatch_core::coordination::CoordinationConfig;
use tidewatch_core::entities;
use tidewatch_core::pseudonym::{Keyring, PseudonymConfig, Pseudonymiser};
use tidewatch_core::window::WindowView;
use tidewatch_core::Timestamp;
use tidewatch_engine::coordination::CoordinationWatch;
use tidewatch_engine::detectors::{Detected, DetectedRows, PostDetectors};
use tidewatch_engine::feeds::FeedDef;
use tidewatch_engine::live::LiveFeeds;
use tidewatch_engine::narratives::{NarrativeWatch, WatchConfig as NarrativeWatchConfig};
use tidewatch_engine::run::{self, MatchedPost, RunSink};
use tidewatch_gen::{GenConfig, Generator};

#[derive(clap::Args)]
pub struct Args {
    /// Feeds to generate (as `bench feeds` does).
    #[arg(long, default_value_t = 10_000)]
    pub feeds: usize,
    /// Posts to generate for the throughput runs.
    #[arg(long, default_value_t = 1_000_000)]
    pub posts: u64,
    /// Worker threads (default: every core).
    #[arg(long)]
    pub threads: Option<usize>,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Where to keep the generated input (default: a temporary directory).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Event-time rate of the stream in posts/s; 0 spreads the posts over
    /// a whole simulated day.
    #[arg(long, default_value_t = 2000.0)]
    pub event_rate: f64,
    /// Posts streamed through the detectors alone for the memory figures
    /// (0: skip this part).
    #[arg(long, default_value_t = 0)]
    pub memory_posts: u64,
    /// Simulated days the memory stream spans.
    #[arg(long, default_value_t = 7)]
    pub days: u32,
    /// Posts between two memory reports.
    #[arg(long, default_value_t = 10_000_000)]
    pub every: u64,
}

fn run_detectors() -> Result<PostDetectors> {
    Ok(PostDetectors {
        narratives: NarrativeWatch::new(NarrativeWatchConfig::default())?,
        coordination: Some(CoordinationWatch::new(CoordinationConfig::default())?),
    })
}

/// Counts posts; runs the detectors when it has them, and then reports the
/// process RSS every `every` posts.
struct Sink {
    posts: u64,
    /// Lent to the run while it goes on, as `tidewatch run` lends them.
    detectors: Option<PostDetectors>,
    groups: u64,
    every: u64,
    start: Instant,
}

impl RunSink for Sink {
    fn post(&mut self, _: &MatchedPost) {
        self.posts += 1;
    }

    fn take_detectors(&mut self) -> Option<PostDetectors> {
        self.detectors.take()
    }

    fn return_detectors(&mut self, detectors: PostDetectors) {
        self.detectors = Some(detectors);
    }

    fn post_detected(&mut self, _: &MatchedPost, _: &Detected) {
        self.posts += 1;
        if self.posts.is_multiple_of(self.every) {
            let secs = self.start.elapsed().as_secs_f64().max(1e-9);
            println!(
                "{}",
                serde_json::json!({
                    "bench": "detectors-run-memory",
                    "posts": self.posts,
                    "rss_mib": proc_status_mib("VmRSS"),
                    "peak_rss_mib": proc_status_mib("VmHWM"),
                    "posts_per_s": (self.posts as f64 / secs).round(),
                })
            );
        }
    }

    /// As a store sink takes them at each commit.
    fn rows_detected(&mut self, rows: DetectedRows) {
        self.groups += rows.groups.len() as u64;
    }

    fn window(&mut self, _: &WindowView<'_>) {}
}

fn mib(bytes: usize) -> f64 {
    (bytes as f64 / 1_048_576.0 * 10.0).round() / 10.0
}

pub fn bench_detectors(a: Args) -> Result<ExitCode> {
    let threads = a.threads.unwrap_or_else(crate::commands::ingest::default_threads);
    let tmp = tempfile::tempdir()?;
    let rate = (a.event_rate > 0.0).then_some(a.event_rate);
    let input = generated_input(a.dir.as_deref().unwrap_or(tmp.path()), a.posts, a.seed, rate)?;
    let defs: Vec<FeedDef> = generate_feeds(a.feeds, a.seed)
        .into_iter()
        .map(|(name, query)| FeedDef { name, query })
        .collect();
    let live = LiveFeeds::new(&defs)?;
    let paths = [input];
    let every = a.every.max(1);
    // Posts per second and CPU microseconds per post.
    let measure = |detectors: Option<PostDetectors>| -> Result<(f64, Option<f64>, Sink)> {
        let keyring = Arc::new(Keyring::new(PseudonymConfig::default()));
        let cfg = super::run_config(threads, keyring);
        let start = Instant::now();
        let cpu = super::CpuClock::start();
        let mut sink = Sink {
            posts: 0,
            detectors,
            groups: 0,
            every,
            start,
        };
        let s = run::run(&paths, &cfg, &live, &mut sink, &mut |_| {}).map_err(|e| anyhow::anyhow!("{e}"))?;
        if let Some(d) = &mut sink.detectors {
            d.narratives.finish();
            if let Some(c) = &mut d.coordination {
                c.finish();
            }
            sink.groups += d.take_rows().groups.len() as u64;
        }
        let cpu_us = cpu.us_per_post(s.progress.posts);
        Ok((
            s.progress.posts as f64 / start.elapsed().as_secs_f64().max(1e-9),
            cpu_us,
            sink,
        ))
    };
    let (base, base_cpu, _) = measure(None)?;
    let (with, with_cpu, sink) = measure(Some(run_detectors()?))?;
    let stats = sink
        .detectors
        .as_ref()
        .and_then(|d| d.coordination.as_ref())
        .map(|c| c.stats());
    let narratives = sink.detectors.as_ref().map(|d| d.narratives.narratives().stats());
    println!(
        "{}",
        serde_json::json!({
            "bench": "detectors",
            "stages": "decode + enrich + match + windows, with and without narratives + coordination in the sink",
            "feeds": a.feeds,
            "posts": sink.posts,
            "threads": threads,
            "event_rate": a.event_rate,
            "without_posts_per_s": base.round(),
            "with_posts_per_s": with.round(),
            "without_cpu_us_per_post": base_cpu,
            "with_cpu_us_per_post": with_cpu,
            "ratio": with / base,
            "group_records_written": sink.groups,
            "coordination": stats,
            "narratives": narratives.map(|n| serde_json::json!({
                "narratives": n.narratives,
                "founded": n.founded,
                "joined_by_text": n.joined_by_text,
                "joined_by_repost": n.joined_by_repost,
                "evicted_bucket_age_s": n.evicted_bucket_age_ms as f64 / 1000.0,
                "approx_mib": mib(n.approx_bytes),
            })),
        })
    );
    if a.memory_posts > 0 {
        memory(a.memory_posts, a.days, a.seed, a.every)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// A `kB` figure of `/proc/self/status` (`VmRSS`, `VmHWM`), in MiB.
fn proc_status_mib(field: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        let kb: f64 = rest.trim().trim_end_matches("kB").trim().parse().ok()?;
        Some((kb / 1024.0 * 10.0).round() / 10.0)
    })
}

/// The memory part: see the module doc.
fn memory(posts: u64, days: u32, seed: u64, every: u64) -> Result<()> {
    let every = every.max(1);
    let gen = Generator::new(&GenConfig {
        posts,
        days: days.max(1),
        seed,
        ..Default::default()
    });
    let keyring = Arc::new(Keyring::new(PseudonymConfig::default()));
    let mut ps = Pseudonymiser::new(keyring.clone(), Timestamp(0));
    let mut det = Detectors::new(CoordinationConfig::default(), Default::default())?;
    let mut spans = Vec::new();
    let start = Instant::now();
    let mut n = 0u64;
    let mut groups = 0u64;
    let report = |n: u64, det: &mut Detectors, groups: u64| {
        let secs = start.elapsed().as_secs_f64().max(1e-9);
        let c = det.watch_stats();
        let nstats = det.narratives().stats();
        println!(
            "{}",
            serde_json::json!({
                "bench": "detectors-memory",
                "posts": n,
                "rss_mib": proc_status_mib("VmRSS"),
                "peak_rss_mib": proc_status_mib("VmHWM"),
                "narratives_mib": mib(nstats.approx_bytes),
                "coordination_mib": mib(c.approx_bytes),
                "narratives": nstats.narratives,
                "edges": c.edges,
                "keys": c.keys,
                "group_records": groups,
                "posts_per_s": (n as f64 / secs).round(),
            })
        );
    };
    report(0, &mut det, 0);
    for mut post in gen {
        ps.apply(&mut post);
        // The keyring forgets epochs as `run` does (by event time).
        if let Some(t) = post.created_at {
            keyring.expire(t);
        }
        entities::scan_into(&post.text, &mut spans);
        post.entities = Some(entities::extract(&post.text, &spans));
        let m = MatchedPost {
            post,
            feeds: Vec::new(),
            version: 0,
            terms: String::new(),
        };
        det.post(&m);
        n += 1;
        if n.is_multiple_of(50_000) {
            groups += det.watch().take_pending().len() as u64;
        }
        if n.is_multiple_of(every) {
            report(n, &mut det, groups);
        }
    }
    if !n.is_multiple_of(every) {
        report(n, &mut det, groups);
    }
    Ok(())
}
