//! `tidewatch bench search`: query latency over a large index of generated
//! posts.
//!
//! The idea: build the index once, the way `tidewatch run` builds it
//! (generated posts decoded, enriched, matched against the generator's
//! topic feeds, redacted and committed to a data directory every two
//! seconds), keep it in a cache directory, and then time a fixed mix of
//! queries against it — every kind of construct the query language has,
//! with and without time ranges and feed filters, plus counts and
//! histograms. The index is searched as `run` leaves it (no forced merge),
//! read-only, as `tidewatch search` opens it.
//!
//! A cache directory is complete once its marker file exists; a directory
//! without one (an interrupted build) is built again.

use super::generated_input;
use crate::commands::run::open_store;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;
use tidewatch_core::pseudonym::{Keyring, PseudonymConfig};
use tidewatch_core::query::Query;
use tidewatch_core::window::WindowView;
use tidewatch_core::{Deletion, Timestamp};
use tidewatch_engine::datadir::DataDir;
use tidewatch_engine::decode::Position;
use tidewatch_engine::feeds::FeedDef;
use tidewatch_engine::persist::{CommitPolicy, Persister};
use tidewatch_engine::run::{self, MatchedPost, RunProgress, RunSink, SinkError};
use tidewatch_gen::GenConfig;
use tidewatch_gen::TOPICS;
use tidewatch_store::db::Db;
use tidewatch_store::index::PostIndex;
use tidewatch_store::search::SearchRequest;
use tidewatch_store::Store;

/// The file whose presence marks a complete cache directory.
const MARKER: &str = "complete.json";
/// Hits per search, as `tidewatch search` shows by default.
const LIMIT: usize = 20;
/// The issue's targets on 10M posts.
const TARGET_P50_MS: f64 = 20.0;
const TARGET_P99_MS: f64 = 200.0;

/// What the marker records about the build.
#[derive(Serialize, Deserialize)]
struct Built {
    posts: u64,
    seed: u64,
    build_s: f64,
    posts_per_s: f64,
}

/// The cache directory for `posts` posts of `seed`:
/// `$XDG_CACHE_HOME/tidewatch/...`, else `~/.cache/tidewatch/...`.
fn default_cache(posts: u64, seed: u64) -> Result<PathBuf> {
    let base = match std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .context("neither XDG_CACHE_HOME nor HOME is set: pass --cache DIR")?,
        )
        .join(".cache"),
    };
    Ok(base.join("tidewatch").join(format!("bench-search-{posts}-{seed}")))
}

/// Passes a run's posts, deletions and checkpoints to the store, and
/// reports progress on standard error every ten seconds.
struct Build {
    persist: Persister,
    last_report: Instant,
}

impl RunSink for Build {
    fn post(&mut self, post: &MatchedPost) {
        self.persist.post(post, None);
    }

    fn deletion(&mut self, deletion: &Deletion) {
        self.persist.deletion(deletion);
    }

    fn window(&mut self, _window: &WindowView<'_>) {}

    fn progress(&mut self, p: &RunProgress) {
        if self.last_report.elapsed().as_secs() >= 10 {
            self.last_report = Instant::now();
            eprintln!(
                "indexing: {} posts, {:.0} posts/s",
                p.posts,
                p.posts as f64 / p.elapsed.as_secs_f64().max(1e-9)
            );
        }
    }

    fn batch_end(&mut self, at: &Position, finished: &[Position]) -> Result<(), SinkError> {
        self.persist.batch_end(at, finished)
    }
}

/// Builds the data directory `cache/data` from generated posts, then
/// writes the marker.
fn build(cache: &Path, posts: u64, seed: u64, threads: usize) -> Result<Built> {
    let data_path = cache.join("data");
    if data_path.exists() {
        // An interrupted build: start over.
        std::fs::remove_dir_all(&data_path).with_context(|| format!("removing {}", data_path.display()))?;
    }
    eprintln!("generating {posts} posts into {}", cache.display());
    let input = generated_input(cache, posts, seed, None)?;
    let defs: Vec<FeedDef> = TOPICS
        .iter()
        .map(|t| FeedDef {
            name: t.name.to_string(),
            query: t.query(),
        })
        .collect();
    let keyring = Arc::new(Keyring::new(PseudonymConfig::default()));
    let cfg = super::run_config(threads, keyring.clone());
    let paths = [input.clone()];
    let data = DataDir::open(&data_path)?;
    // Retention off: the generated day is far in the past of the clock,
    // but retention is relative to the newest post, so this only keeps
    // the figure independent of the default.
    let (persist, live, _) = open_store(&data, &paths, &defs, &keyring, 0, CommitPolicy::default())?;
    let mut sink = Build {
        persist,
        last_report: Instant::now(),
    };
    let start = Instant::now();
    let summary = run::run(&paths, &cfg, &live, &mut sink, &mut |_| {}).map_err(|e| anyhow::anyhow!("{e}"))?;
    sink.persist.commit().context("the last commit")?;
    drop(sink);
    let build_s = start.elapsed().as_secs_f64();
    let built = Built {
        posts: summary.progress.posts,
        seed,
        build_s,
        posts_per_s: summary.progress.posts as f64 / build_s.max(1e-9),
    };
    // The input is no longer needed: the index is what is measured.
    std::fs::remove_file(&input).with_context(|| format!("removing {}", input.display()))?;
    std::fs::write(cache.join(MARKER), serde_json::to_string(&built)?)?;
    Ok(built)
}

/// One query of the mix.
struct Case {
    kind: &'static str,
    op: Op,
    req: SearchRequest,
}

enum Op {
    /// The newest [`LIMIT`] hits.
    Search,
    Count,
    /// Hits per hour.
    Histogram,
}

/// The fixed mix. Time ranges are hours of the generated day; the feed
/// filters use the topic feeds the index was built with.
fn mix(feeds: &[(String, u32)]) -> Result<Vec<Case>> {
    let start = GenConfig::default().start.0;
    let hour = Timestamp::HOUR;
    let one_hour = (Some(Timestamp(start + 14 * hour)), Some(Timestamp(start + 15 * hour)));
    let half_day = (Some(Timestamp(start + 6 * hour)), Some(Timestamp(start + 18 * hour)));
    let feed = |name: &str| -> Result<u32> {
        feeds
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, id)| *id)
            .with_context(|| format!("the cached index has no feed {name:?}"))
    };
    let football = feed("football")?;
    let climate = feed("climate")?;
    let transit = feed("transit")?;
    let topic_query = |name: &str| TOPICS.iter().find(|t| t.name == name).map(|t| t.query());

    let mut cases = Vec::new();
    let mut add = |kind: &'static str, op: Op, q: &str, range: (Option<Timestamp>, Option<Timestamp>), feed| {
        let query = Query::parse(q).map_err(|e| anyhow::anyhow!("bench query {q:?}: {e}"))?;
        cases.push(Case {
            kind,
            op,
            req: SearchRequest {
                query,
                from: range.0,
                to: range.1,
                feed,
                limit: LIMIT,
            },
        });
        anyhow::Ok(())
    };
    let all = (None, None);
    for q in ["penalty", "heatwave", "stadium"] {
        add("term_common", Op::Search, q, all, None)?;
    }
    for q in ["geomagnetic", "aurora", "blackout"] {
        add("term_rare", Op::Search, q, all, None)?;
    }
    for q in ["\"champions cup\"", "\"solar flare\"", "\"metro strike\""] {
        add("phrase", Op::Search, q, all, None)?;
    }
    for name in ["football", "space-weather", "tech"] {
        let q = topic_query(name).context("a generator topic")?;
        add("or_list", Op::Search, &q, all, None)?;
    }
    for q in [
        "(#football OR #matchday) -penalty",
        "climate AND drought -summit",
        "metro AND strike NOT delays",
    ] {
        add("and_not", Op::Search, q, all, None)?;
    }
    for q in ["chip NEAR/3 shortage", "metro NEAR/5 strike", "solar NEAR/2 flare"] {
        add("near", Op::Search, q, all, None)?;
    }
    for q in ["climat*", "stad*", "geomag*"] {
        add("wildcard_prefix", Op::Search, q, all, None)?;
    }
    for q in ["c*mate", "st?dium", "sol*r"] {
        add("wildcard_infix", Op::Search, q, all, None)?;
    }
    for q in ["#climate", "#aurora", "#matchday"] {
        add("hashtag", Op::Search, q, all, None)?;
    }
    for q in [
        "lang:de",
        "platform:bluesky",
        "sentiment:negative",
        "heatwave lang:en sentiment:negative",
    ] {
        add("field", Op::Search, q, all, None)?;
    }
    for q in ["-penalty", "NOT lang:en", "-platform:twitter -sentiment:neutral"] {
        add("pure_negative", Op::Search, q, all, None)?;
    }
    for (q, range) in [
        ("penalty", one_hour),
        ("aurora", one_hour),
        ("\"champions cup\" OR #matchday", half_day),
        ("chip NEAR/3 shortage", half_day),
    ] {
        add("time_range", Op::Search, q, range, None)?;
    }
    for (q, range, id) in [
        ("sentiment:negative", all, football),
        ("referee", all, football),
        ("-heatwave", all, climate),
        ("signal*", one_hour, transit),
    ] {
        add("feed_filter", Op::Search, q, range, Some(id))?;
    }
    for (q, range) in [
        ("penalty", all),
        ("#climate OR heatwave", all),
        ("climat*", half_day),
        ("metro NEAR/5 strike", all),
        ("-penalty", all),
    ] {
        add("count", Op::Count, q, range, None)?;
    }
    for (q, range) in [("penalty", all), ("#aurora", all), ("lang:de", half_day)] {
        add("histogram", Op::Histogram, q, range, None)?;
    }
    Ok(cases)
}

/// The `q`-quantile of sorted samples (nearest rank).
fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn summary(samples: &mut [f64]) -> serde_json::Value {
    samples.sort_by(f64::total_cmp);
    serde_json::json!({
        "runs": samples.len(),
        "p50_ms": round3(quantile(samples, 0.5)),
        "p99_ms": round3(quantile(samples, 0.99)),
        "max_ms": round3(samples.last().copied().unwrap_or(f64::NAN)),
    })
}

/// Runs one case; returns the number of results (hits, matches or
/// buckets) so the work cannot be skipped.
fn run_case(index: &PostIndex, case: &Case) -> Result<u64> {
    Ok(match case.op {
        Op::Search => index.search(&case.req)?.len() as u64,
        Op::Count => index.count(&case.req)?,
        Op::Histogram => index.histogram(&case.req, Timestamp::HOUR)?.len() as u64,
    })
}

pub fn bench_search(posts: u64, seed: u64, cache: Option<PathBuf>, queries: usize, threads: usize) -> Result<ExitCode> {
    let cache = match cache {
        Some(c) => c,
        None => default_cache(posts, seed)?,
    };
    std::fs::create_dir_all(&cache).with_context(|| format!("creating {}", cache.display()))?;
    let marker = cache.join(MARKER);
    let (built, reused) = match std::fs::read_to_string(&marker) {
        Ok(text) => (
            serde_json::from_str::<Built>(&text).with_context(|| format!("reading {}", marker.display()))?,
            true,
        ),
        Err(_) => (build(&cache, posts, seed, threads)?, false),
    };
    let data = cache.join("data");
    let index = PostIndex::open_read_only(&Store::index_dir(&data))?;
    let feeds: Vec<(String, u32)> = Db::open(&Store::db_path(&data))?
        .feeds()?
        .into_iter()
        .map(|f| (f.name, f.id))
        .collect();
    let cases = mix(&feeds)?;

    // One untimed pass (first use of each term dictionary and column), then
    // round-robin passes until `queries` runs are timed.
    let mut results = Vec::with_capacity(cases.len());
    for case in &cases {
        results.push(run_case(&index, case)?);
    }
    let rounds = queries.div_ceil(cases.len().max(1)).max(1);
    let mut per_kind: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    let mut all = Vec::with_capacity(rounds * cases.len());
    let mut slowest: Vec<(f64, usize)> = vec![(0.0, 0); cases.len()];
    for _ in 0..rounds {
        for (i, case) in cases.iter().enumerate() {
            let t = Instant::now();
            let n = run_case(&index, case)?;
            let ms = t.elapsed().as_secs_f64() * 1e3;
            if n != results[i] {
                anyhow::bail!("query {i} gave {n} results, then {}", results[i]);
            }
            all.push(ms);
            per_kind.entry(case.kind).or_default().push(ms);
            if ms > slowest[i].0 {
                slowest[i] = (ms, i);
            }
        }
    }
    slowest.sort_by(|a, b| b.0.total_cmp(&a.0));
    let slowest: Vec<serde_json::Value> = slowest
        .iter()
        .take(3)
        .map(|&(ms, i)| {
            serde_json::json!({
                "kind": cases[i].kind,
                "query": cases[i].req.query.normalized(),
                "max_ms": round3(ms),
                "results": results[i],
            })
        })
        .collect();
    let overall = summary(&mut all);
    let kinds: serde_json::Map<String, serde_json::Value> = per_kind
        .into_iter()
        .map(|(k, mut v)| (k.to_string(), summary(&mut v)))
        .collect();
    let docs = index.num_docs();
    let bytes = index.size_bytes();
    let p50 = overall["p50_ms"].as_f64().unwrap_or(f64::NAN);
    let p99 = overall["p99_ms"].as_f64().unwrap_or(f64::NAN);
    println!(
        "{}",
        serde_json::json!({
            "bench": "search",
            "posts_in_index": docs,
            "segments": index.segment_count(),
            "index_bytes": bytes,
            "index_bytes_per_million_posts": (bytes as f64 * 1e6 / docs.max(1) as f64).round(),
            "cache": cache.display().to_string(),
            "cache_reused": reused,
            "build_s": round3(built.build_s),
            "build_posts_per_s": built.posts_per_s.round(),
            "queries_in_mix": cases.len(),
            "hits_per_search": LIMIT,
            "p50_ms": overall["p50_ms"],
            "p99_ms": overall["p99_ms"],
            "max_ms": overall["max_ms"],
            "runs": overall["runs"],
            "per_kind": kinds,
            "slowest": slowest,
            "target": {"p50_ms": TARGET_P50_MS, "p99_ms": TARGET_P99_MS, "met": p50 <= TARGET_P50_MS && p99 <= TARGET_P99_MS},
        })
    );
    Ok(ExitCode::SUCCESS)
}
