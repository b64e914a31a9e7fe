//! `tidewatch bench jetstream`: the whole `run` pipeline fed by a live
//! Jetstream connection over loopback, next to the same events read from
//! a file in the same process.
//!
//! The idea: the replay server sends N generated Jetstream events as fast
//! as the client takes them; the client checks and de-duplicates them,
//! the live decode stage turns them into posts with the Jetstream adapter,
//! and the workers pseudonymise, enrich and match them against generated
//! feeds before the event-time windows. The clock runs from starting the
//! source to the moment the last event has left the pipeline. The
//! baseline is the same events, as the server would send them, written to
//! a JSON Lines file and run through the same pipeline from that file:
//! the ratio is what the network path costs.
//!
//! The run stops as soon as the sink has seen as many posts and deletions
//! as the file run produced; an idle timeout ends it otherwise, and the
//! counts then say what went missing.

use super::feeds::generate_feeds;
use anyhow::{anyhow, Context, Result};
use std::collections::HashMap;
use std::io::{BufWriter, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tidewatch_core::pseudonym::{Keyring, PseudonymConfig};
use tidewatch_core::window::WindowView;
use tidewatch_engine::feeds::FeedDef;
use tidewatch_engine::live::LiveFeeds;
use tidewatch_engine::run::{self, Inputs, MatchedPost, RunConfig, RunProgress, RunSink};
use tidewatch_engine::sources::{LiveOptions, LiveSources, SourceSpec};
use tidewatch_ingest::Format;
use tidewatch_sources::jetstream::{JetstreamConfig, DEFAULT_COLLECTIONS};
use tidewatch_sources::replay::jetstream::{generate, Faults, JetstreamReplay};

/// Event time between two generated events: 2,000 events per second of
/// event time, about what Bluesky's relay carries.
const STEP_US: u64 = 500;

/// The throughput the live path must sustain (50× Bluesky's rate).
const TARGET_EVENTS_PER_S: f64 = 100_000.0;

/// With no record for this long, the live run ends even if events are
/// missing (the counts then show it).
const IDLE_LIMIT: Duration = Duration::from_secs(10);

/// Counts what leaves the pipeline and, once `target` posts and deletions
/// have, notes the time and stops the live sources.
struct Counter {
    posts: u64,
    matches: u64,
    windows: u64,
    target: Option<u64>,
    done_at: Option<Instant>,
    stop: Arc<AtomicBool>,
}

impl Counter {
    fn new(target: Option<u64>, stop: Arc<AtomicBool>) -> Counter {
        Counter {
            posts: 0,
            matches: 0,
            windows: 0,
            target,
            done_at: None,
            stop,
        }
    }
}

impl RunSink for Counter {
    fn post(&mut self, post: &MatchedPost) {
        self.posts += 1;
        self.matches += post.feeds.len() as u64;
    }

    fn window(&mut self, _window: &WindowView<'_>) {
        self.windows += 1;
    }

    fn progress(&mut self, progress: &RunProgress) {
        let out = progress.posts + progress.deletions;
        if self.done_at.is_none() && self.target.is_some_and(|t| out >= t) {
            self.done_at = Some(Instant::now());
            self.stop.store(true, Ordering::Relaxed);
        }
    }
}

/// The pipeline as `bench pipeline` runs it, reading Jetstream events,
/// with a fresh keyring (each run pseudonymises from scratch).
fn config(threads: usize) -> RunConfig {
    let mut cfg = super::run_config(threads, Arc::new(Keyring::new(PseudonymConfig::default())));
    cfg.decode.format = Some(Format::Jetstream);
    cfg
}

pub fn bench_jetstream(events: usize, feeds: usize, threads: usize, seed: u64) -> Result<ExitCode> {
    // Events up to now, so the stream looks like a live tail (key expiry
    // follows event time only up to the wall clock).
    let now_us = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64);
    let t0 = now_us.saturating_sub(events as u64 * STEP_US);
    let generated = generate(events, t0, STEP_US);
    // What the server sends a client asking for posts and reposts.
    let served: Vec<&str> = generated
        .iter()
        .filter(|e| e.wanted_by(&DEFAULT_COLLECTIONS))
        .map(|e| e.json.as_str())
        .collect();
    let served_count = served.len() as u64;
    let served_bytes: usize = served.iter().map(|j| j.len()).sum();

    let defs: Vec<FeedDef> = generate_feeds(feeds, seed)
        .into_iter()
        .map(|(name, query)| FeedDef { name, query })
        .collect();
    let build = Instant::now();
    let live = LiveFeeds::new(&defs)?;
    let build_s = build.elapsed().as_secs_f64();

    // Baseline: the served events from a file, same pipeline.
    let tmp = tempfile::tempdir()?;
    let path = tmp.path().join("jetstream.jsonl");
    {
        let file = std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        for json in &served {
            out.write_all(json.as_bytes())?;
            out.write_all(b"\n")?;
        }
        out.flush()?;
    }
    drop(served);
    let mut file_rejects = 0u64;
    let mut from_file = Counter::new(None, Arc::new(AtomicBool::new(false)));
    let base = run::run_inputs(
        Inputs::Files(std::slice::from_ref(&path)),
        &config(threads),
        &live,
        &mut from_file,
        &mut |_| file_rejects += 1,
    )
    .map_err(|e| anyhow!("{e}"))?;
    let base_secs = base.progress.elapsed.as_secs_f64();
    let expected = base.progress.posts + base.progress.deletions;

    // The live run: the replay server on loopback, one Jetstream source.
    let server = JetstreamReplay::start(generated, Faults::default()).context("starting the replay server")?;
    let stop = Arc::new(AtomicBool::new(false));
    let mut from_socket = Counter::new(Some(expected), stop.clone());
    let opts = LiveOptions {
        until_idle: Some(IDLE_LIMIT),
        ..LiveOptions::default()
    };
    let started = Instant::now();
    let mut sources = LiveSources::start(
        vec![SourceSpec::Jetstream(JetstreamConfig::new("bench", vec![server.url()]))],
        0,
        &HashMap::new(),
        opts,
        stop,
        None,
    )
    .context("starting the jetstream source")?;
    let stats = sources.stats();
    let mut live_rejects = 0u64;
    let summary = run::run_inputs(
        Inputs::Live {
            files: &[],
            sources: &mut sources,
        },
        &config(threads),
        &live,
        &mut from_socket,
        &mut |_| live_rejects += 1,
    )
    .map_err(|e| anyhow!("{e}"))?;
    // Without the target reached, the run ended by idling: the idle wait
    // is no work, so it is left out.
    let secs = match from_socket.done_at {
        Some(at) => at.duration_since(started).as_secs_f64(),
        None => (started.elapsed().saturating_sub(IDLE_LIMIT)).as_secs_f64(),
    };
    drop(sources);
    let status = stats.first().map(|s| s.status()).unwrap_or_default();
    let sent = server.sent();
    drop(server);

    let p = summary.progress;
    let complete = status.events == served_count
        && sent == served_count
        && p.posts == base.progress.posts
        && p.deletions == base.progress.deletions;
    let rate = status.events as f64 / secs;
    let base_rate = served_count as f64 / base_secs;
    println!(
        "{}",
        serde_json::json!({
            "bench": "jetstream",
            "stages": "websocket over loopback + jetstream decode + enrich + match + windows",
            "events_generated": events,
            "events_served": served_count,
            "events_sent_by_server": sent,
            "events_received": status.events,
            "received_equals_served": status.events == served_count,
            "served_mb": served_bytes as f64 / 1e6,
            "posts": p.posts,
            "deletions": p.deletions,
            "complete": complete,
            "malformed": status.malformed,
            "rejected": live_rejects,
            "reconnects": status.reconnects,
            "gaps": status.gaps.len(),
            "feeds": defs.len(),
            "build_s": build_s,
            "threads": threads,
            "seconds": secs,
            "events_per_s": rate.round(),
            "posts_per_s": (p.posts as f64 / secs).round(),
            "mb_per_s": served_bytes as f64 / 1e6 / secs,
            "matches_per_post": from_socket.matches as f64 / from_socket.posts.max(1) as f64,
            "windows_closed": from_socket.windows,
            "target_events_per_s": TARGET_EVENTS_PER_S,
            "meets_target": complete && rate >= TARGET_EVENTS_PER_S,
            "baseline": "the same served events from a JSON Lines file, same pipeline, same process",
            "baseline_seconds": base_secs,
            "baseline_events_per_s": base_rate.round(),
            "baseline_posts_per_s": (base.progress.posts as f64 / base_secs).round(),
            "baseline_rejected": file_rejects,
            "ratio": rate / base_rate,
        })
    );
    Ok(if complete { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
