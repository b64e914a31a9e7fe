//! `tidewatch bench`: throughput in posts per second, always next to a
//! baseline measured in the same run (these machines are shared and noisy,
//! so a ratio means more than an absolute figure).

use crate::commands::ingest::default_threads;
use anyhow::{Context, Result};
use std::io::{BufRead, BufReader, BufWriter};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;
use tidewatch_core::pseudonym::{Keyring, PseudonymConfig};
use tidewatch_core::redact::PublicAccounts;
use tidewatch_core::{Post, Timestamp};
use tidewatch_engine::decode::DecodeOptions;
use tidewatch_engine::ingest::{self, IngestConfig};
use tidewatch_gen::{GenConfig, Generator};
use tidewatch_ingest::Format;

mod cluster;
mod dashboard;
mod detectors;
mod emerging;
pub mod feeds;
mod jetstream;
mod latency;
mod narratives;
mod pipeline;
mod publish;
mod search;

/// How every run benchmark runs the pipeline: canonical input, `threads`
/// workers, no public accounts, windows as `run` has them.
fn run_config(threads: usize, keyring: Arc<Keyring>) -> tidewatch_engine::run::RunConfig {
    tidewatch_engine::run::RunConfig {
        decode: DecodeOptions {
            format: Some(Format::Canonical),
            ..Default::default()
        },
        threads,
        keyring,
        enriched_upstream: false,
        public_accounts: Arc::new(PublicAccounts::default()),
        undated_time: Timestamp(0),
        window: tidewatch_core::window::WindowConfig::default(),
    }
}

#[derive(clap::Subcommand)]
pub enum Bench {
    /// The run with narratives and coordination in its sink against the run
    /// without them; optionally memory over a long stream.
    Detectors(detectors::Args),
    /// Decode + pseudonymise + enrich + redact + serialise generated posts,
    /// against plain parsing of the same lines.
    Ingest {
        /// Posts to generate.
        #[arg(long, default_value_t = 1_000_000)]
        posts: u64,
        /// Worker threads (default: every core).
        #[arg(long)]
        threads: Option<usize>,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Where to put the generated input (default: a temporary directory).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Decode + enrich + match + event-time windows end to end, against the
    /// same run's pipeline without feeds.
    Pipeline {
        /// Feeds to generate (as `bench feeds` does).
        #[arg(long, default_value_t = 10_000)]
        feeds: usize,
        /// Posts to generate.
        #[arg(long, default_value_t = 1_000_000)]
        posts: u64,
        /// Worker threads (default: every core).
        #[arg(long)]
        threads: Option<usize>,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Where to keep the generated input (default: a temporary directory).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Event-time rate of the stream in posts/s (a firehose); 0 spreads
        /// the posts over a whole simulated day.
        #[arg(long, default_value_t = 2000.0)]
        event_rate: f64,
        /// Also run the detectors `run` runs on the stream: spike alerts
        /// with their explanations and emerging topics.
        #[arg(long)]
        detectors: bool,
    },
    /// The whole `run` with the store (index, aggregates, checkpoints,
    /// commits), against the same run without it.
    Index {
        /// Feeds to generate (as `bench feeds` does).
        #[arg(long, default_value_t = 10_000)]
        feeds: usize,
        /// Posts to generate.
        #[arg(long, default_value_t = 1_000_000)]
        posts: u64,
        /// Worker threads (default: every core).
        #[arg(long)]
        threads: Option<usize>,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Where to keep the generated input (default: a temporary directory).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Event-time rate of the stream in posts/s; 0 spreads the posts
        /// over a whole simulated day.
        #[arg(long, default_value_t = 2000.0)]
        event_rate: f64,
        /// Milliseconds between store commits (as `run --commit-ms`).
        #[arg(long, default_value_t = 5000)]
        commit_ms: u64,
    },
    /// The match stage alone: N generated feeds against generated,
    /// enriched posts (tokenisation included), against an Aho-Corasick scan
    /// of the feeds' literal strings.
    Feeds {
        /// Feeds to generate.
        #[arg(long, default_value_t = 10_000)]
        feeds: usize,
        /// Posts to generate.
        #[arg(long, default_value_t = 200_000)]
        posts: u64,
        /// Worker threads (default: every core).
        #[arg(long)]
        threads: Option<usize>,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Timed passes over the posts; the fastest is reported.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
    },
    /// Query latency (p50/p99 per kind) over an index of generated posts,
    /// built once into a cache directory the way `tidewatch run` builds it.
    Search {
        /// Posts in the index.
        #[arg(long, default_value_t = 10_000_000)]
        posts: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Where the index is kept between runs (default:
        /// `$XDG_CACHE_HOME` or `~/.cache`, then `tidewatch/bench-search-POSTS-SEED`).
        #[arg(long)]
        cache: Option<PathBuf>,
        /// Timed query runs in all, spread evenly over the fixed mix.
        #[arg(long, default_value_t = 500)]
        queries: usize,
        /// Worker threads for building the index (default: every core).
        #[arg(long)]
        threads: Option<usize>,
    },
    /// The whole pipeline fed by the Jetstream client over loopback: the
    /// replay server sends generated events, the run decodes, enriches,
    /// matches and windows them; against the same events from a file.
    Jetstream {
        /// Events the replay server generates and sends.
        #[arg(long, default_value_t = 1_000_000)]
        events: usize,
        /// Feeds to generate (as `bench feeds` does).
        #[arg(long, default_value_t = 10_000)]
        feeds: usize,
        /// Worker threads (default: every core).
        #[arg(long)]
        threads: Option<usize>,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Memory of the emerging-topic detector over a long generated stream:
    /// process RSS and the detector's own estimate every N posts.
    Emerging {
        /// Posts to generate.
        #[arg(long, default_value_t = 50_000_000)]
        posts: u64,
        /// Simulated days the posts span.
        #[arg(long, default_value_t = 7)]
        days: u32,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Posts between two reports.
        #[arg(long, default_value_t = 10_000_000)]
        every: u64,
    },
    /// Cost of the narrative watch (near-duplicate clustering) per post, against tokenising alone.
    Narratives(narratives::Args),
    /// Time from a post's arrival to its alert on the live stream, with the
    /// demo replaying at a given rate.
    Latency(latency::Args),
    /// Server time of every dashboard page over a data directory.
    Dashboard(dashboard::Args),
    /// Publishing to a partitioned NATS JetStream stream (`tidewatch
    /// publish`), against the same pipeline writing its messages to a file.
    Publish(publish::Args),
    /// The scaled-out path on this machine: publish to a local nats-server,
    /// then W workers consume it into their shards; against the
    /// single-process run over the same input.
    Cluster(cluster::Args),
}

pub fn run(b: Bench) -> Result<ExitCode> {
    match b {
        Bench::Detectors(a) => detectors::bench_detectors(a),
        Bench::Ingest {
            posts,
            threads,
            seed,
            dir,
        } => bench_ingest(posts, threads, seed, dir),
        Bench::Feeds {
            feeds,
            posts,
            threads,
            seed,
            rounds,
        } => feeds::bench_feeds(feeds, posts, threads.unwrap_or_else(default_threads), seed, rounds),
        Bench::Pipeline {
            feeds,
            posts,
            threads,
            seed,
            dir,
            event_rate,
            detectors,
        } => {
            let rate = (event_rate > 0.0).then_some(event_rate);
            let threads = threads.unwrap_or_else(default_threads);
            pipeline::bench_pipeline(feeds, posts, threads, seed, dir, rate, detectors)
        }
        Bench::Index {
            feeds,
            posts,
            threads,
            seed,
            dir,
            event_rate,
            commit_ms,
        } => {
            let rate = (event_rate > 0.0).then_some(event_rate);
            let threads = threads.unwrap_or_else(default_threads);
            pipeline::bench_index(feeds, posts, threads, seed, dir, rate, commit_ms)
        }
        Bench::Search {
            posts,
            seed,
            cache,
            queries,
            threads,
        } => search::bench_search(posts, seed, cache, queries, threads.unwrap_or_else(default_threads)),
        Bench::Jetstream {
            events,
            feeds,
            threads,
            seed,
        } => jetstream::bench_jetstream(events, feeds, threads.unwrap_or_else(default_threads), seed),
        Bench::Emerging {
            posts,
            days,
            seed,
            every,
        } => emerging::bench_emerging(posts, days, seed, every),
        Bench::Narratives(a) => narratives::bench_narratives(a),
        Bench::Latency(a) => latency::bench_latency(a),
        Bench::Dashboard(a) => dashboard::bench_dashboard(a),
        Bench::Publish(a) => publish::bench_publish(a),
        Bench::Cluster(a) => cluster::bench_cluster(a),
    }
}

/// A generated canonical file of `posts` posts over one simulated day, made
/// once per directory, size, seed and rate.
///
/// With `rate` (posts per second of event time), event time is compressed
/// so that the stream arrives at that rate, as a firehose does: the same
/// posts, rhythm and planted events, squeezed into `posts / rate` seconds.
/// Without it the posts span the whole day (a quiet stream: few posts per
/// feed and minute).
/// CPU time used by this process (user + system, every thread) since it
/// was started; `None` where `/proc/self/stat` is not available. On a
/// shared machine the CPU time a run needs varies less than its
/// wall-clock time (time the host gives to other machines is not
/// counted), so benchmarks print it next to posts per second.
pub(crate) struct CpuClock(Option<f64>);

impl CpuClock {
    pub(crate) fn start() -> CpuClock {
        CpuClock(process_cpu_seconds())
    }

    /// CPU seconds since [`CpuClock::start`].
    pub(crate) fn seconds(&self) -> Option<f64> {
        self.0.zip(process_cpu_seconds()).map(|(a, b)| b - a)
    }

    /// CPU microseconds per post since [`CpuClock::start`], to 0.01.
    pub(crate) fn us_per_post(&self, posts: u64) -> Option<f64> {
        self.seconds()
            .map(|c| (c * 1e6 / posts.max(1) as f64 * 100.0).round() / 100.0)
    }
}

/// CPU seconds this process has used so far.
fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may hold
    // spaces: state is field 3, utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i - 3)?.parse::<u64>().ok();
    // Linux reports these in USER_HZ, 100 on every architecture it runs on.
    Some((ticks(14)? + ticks(15)?) as f64 / 100.0)
}

pub fn generated_input(dir: &std::path::Path, posts: u64, seed: u64, rate: Option<f64>) -> Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let tag = rate.map_or("day".to_string(), |r| format!("{r:.0}ps"));
    let input = dir.join(format!("bench-{posts}-{seed}-{tag}.jsonl"));
    if !input.exists() {
        let cfg = GenConfig {
            posts,
            days: 1,
            seed,
            ..Default::default()
        };
        let start = cfg.start.0;
        let factor = rate.map_or(1.0, |r| (posts as f64 / r.max(1e-3)) / 86_400.0);
        let tmp = input.with_extension("partial");
        let f = std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        let mut out = BufWriter::with_capacity(1 << 20, f);
        let mut buf = Vec::with_capacity(1024);
        for mut post in Generator::new(&cfg) {
            if let Some(t) = post.created_at.as_mut() {
                t.0 = start + ((t.0 - start) as f64 * factor) as i64;
            }
            buf.clear();
            post.write_json(&mut buf);
            std::io::Write::write_all(&mut out, &buf)?;
        }
        std::io::Write::flush(&mut out)?;
        drop(out);
        std::fs::rename(&tmp, &input)?;
    }
    Ok(input)
}

fn bench_ingest(posts: u64, threads: Option<usize>, seed: u64, dir: Option<PathBuf>) -> Result<ExitCode> {
    let tmp = tempfile::tempdir()?;
    let input = generated_input(dir.as_deref().unwrap_or(tmp.path()), posts, seed, None)?;
    let bytes = std::fs::metadata(&input)?.len();

    // Baseline: parse every line into a Post, one thread, nothing else.
    let start = Instant::now();
    let mut parsed = 0u64;
    let mut untagged = 0u64;
    let mut reader = BufReader::with_capacity(1 << 20, std::fs::File::open(&input)?);
    let mut line = Vec::new();
    while reader.read_until(b'\n', &mut line)? > 0 {
        let p = Post::from_json(&line)?;
        untagged += p.lang.is_none() as u64;
        parsed += 1;
        line.clear();
    }
    let baseline = parsed as f64 / start.elapsed().as_secs_f64();

    // The ingest pipeline as `tidewatch ingest` runs it, output discarded.
    let threads = threads.unwrap_or_else(default_threads);
    let cfg = IngestConfig {
        decode: DecodeOptions {
            format: Some(Format::Canonical),
            ..Default::default()
        },
        threads,
        keyring: Arc::new(Keyring::new(PseudonymConfig::default())),
        public_accounts: Arc::new(PublicAccounts::default()),
        undated_time: Timestamp(0),
    };
    // Decode + enrich (pseudonymise, entities, language, sentiment, redact).
    let enriched = ingest::run_without_output(std::slice::from_ref(&input), &cfg)?;
    let rate = enriched.posts as f64 / enriched.elapsed.as_secs_f64();
    // The same with serialisation to canonical JSON, as `tidewatch ingest` does.
    let written = ingest::run(
        std::slice::from_ref(&input),
        &cfg,
        &mut std::io::sink(),
        &mut std::io::sink(),
        &|_| {},
    )?;
    let rate_written = written.posts as f64 / written.elapsed.as_secs_f64();
    println!(
        "{}",
        serde_json::json!({
            "bench": "ingest",
            "posts": enriched.posts,
            "input_bytes": bytes,
            "untagged_share": untagged as f64 / parsed.max(1) as f64,
            "threads": threads,
            "seconds": enriched.elapsed.as_secs_f64(),
            "posts_per_s": rate.round(),
            "with_serialisation_posts_per_s": rate_written.round(),
            "baseline": "serde parse of each canonical line into a Post, 1 thread",
            "baseline_posts_per_s": baseline.round(),
            "ratio": rate / baseline,
        })
    );
    Ok(ExitCode::SUCCESS)
}

/// Opens `GET path` on the server at `addr` as HTTP/1.0, whose answer
/// comes unchunked and ends when the server closes: what the benchmarks
/// read pages and the live stream with, as any plain client would.
pub(crate) fn http_request(addr: std::net::SocketAddr, path: &str) -> Result<std::net::TcpStream> {
    use std::io::Write;
    let mut conn = std::net::TcpStream::connect(addr).with_context(|| format!("connecting to {addr}"))?;
    conn.set_nodelay(true)?;
    write!(conn, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    Ok(conn)
}

/// `GET path` on `addr`: the status code and the body.
pub(crate) fn http_get(addr: std::net::SocketAddr, path: &str) -> Result<(u16, Vec<u8>)> {
    use std::io::Read;
    let mut answer = Vec::new();
    http_request(addr, path)?.read_to_end(&mut answer)?;
    let head_end = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .with_context(|| format!("{path}: no HTTP head"))?;
    let status = std::str::from_utf8(&answer[..head_end])
        .ok()
        .and_then(|h| h.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .with_context(|| format!("{path}: no status code"))?;
    Ok((status, answer[head_end + 4..].to_vec()))
}
