//! `tidewatch eval spikes`: the live detectors (spike alerts per feed,
//! emerging topics over the whole stream) run over a file exactly as
//! `tidewatch run` runs them, then scored against what is known to be in
//! it.
//!
//! Two kinds of truth:
//!
//! - **planted** (`--truth TRUTH.json`, written by `tidewatch gen --truth`):
//!   precision, recall and onset delay of the alerts against the planted
//!   bursts, and for each planted emerging topic the rank at which it is
//!   first listed, how long after its start, and how its suggested feed does
//!   on its posts. Feeds: one per background topic of the truth (its query,
//!   named after the topic), unless `--feeds` is given (feed names must then
//!   be topic names for alerts to match bursts).
//! - **labelled** (no `--truth`; `--feeds` required): posts carry a group
//!   label (`--group`, e.g. the crisis) and a positive label (`--positive`,
//!   e.g. `topic=on-topic`); for each group, the first positive post
//!   against the first alert of the feed named after the group.
//!
//! The scoring rules are those of [`tidewatch_engine::evaluate`]. Labels
//! and truth are read here only; the pipeline never sees them.

use crate::commands::ingest::default_threads;
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use tidewatch_core::emerging::EmergingConfig;
use tidewatch_core::pseudonym::{Keyring, PseudonymConfig};
use tidewatch_core::query::Query;
use tidewatch_core::redact::PublicAccounts;
use tidewatch_core::spike::SpikeConfig;
use tidewatch_core::window::{WindowConfig, WindowView};
use tidewatch_core::{Post, Timestamp};
use tidewatch_engine::alerts::{AlertLog, SpikeAlerts};
use tidewatch_engine::evaluate::{
    score_labelled, score_spikes, EmergingOutcome, EmergingTracker, FeedCounts, GroupOutcome, GroupTruth,
    ObservedAlert, PlantedTruth, SpikeScore,
};
use tidewatch_engine::feeds::{load_feeds, FeedDef};
use tidewatch_engine::live::LiveFeeds;
use tidewatch_engine::run::{self, MatchedPost, PostProcessor, RunConfig, RunSink};
use tidewatch_engine::topics::{TopicWatch, TOP_K};
use tidewatch_store::db::Db;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

#[derive(clap::Args)]
pub struct Args {
    /// Canonical JSON Lines (or any format `run` reads).
    pub data: PathBuf,
    /// The truth file of `tidewatch gen --truth` (planted mode). Without
    /// it, the posts' labels are the truth (labelled mode).
    #[arg(long)]
    pub truth: Option<PathBuf>,
    /// The feeds file. Planted mode: default one feed per background topic
    /// of the truth. Labelled mode: required, one feed per group, named
    /// like the group's label value (e.g. `examples/crisislex_t6_feeds.toml`).
    #[arg(long)]
    pub feeds: Option<PathBuf>,
    /// Labelled mode: the label that assigns a post to a group (a crisis).
    #[arg(long, default_value = "event")]
    pub group: String,
    /// Labelled mode: which posts are the group's real topic, LABEL=VALUE.
    #[arg(long, default_value = "topic=on-topic")]
    pub positive: String,
    /// Worker threads (default: every core); results do not depend on it.
    #[arg(long)]
    pub threads: Option<usize>,
    #[arg(long, value_enum, default_value = "text")]
    pub format: OutputFormat,
}

pub fn run(args: Args) -> Result<ExitCode> {
    match &args.truth {
        Some(truth) => planted(&args, truth),
        None => labelled(&args),
    }
}

/// Collects the run's opened alerts and, with a tracker, the emerging
/// topics ranked at the end of every minute.
struct EvalSink {
    alerts: SpikeAlerts,
    names: Vec<String>,
    opened: Vec<ObservedAlert>,
    topics: Option<(TopicWatch, EmergingTracker)>,
    minute: Option<i64>,
    /// Topics the watch announced (first sightings, continuations aside).
    announced: usize,
}

impl RunSink for EvalSink {
    fn post(&mut self, m: &MatchedPost) {
        let Some((watch, tracker)) = self.topics.as_mut() else {
            return;
        };
        // The watch judges a minute when the first post of the next one
        // arrives; the same ranking is taken here, at the same moment.
        if let Some(t) = m.post.created_at {
            let minute = t.0.div_euclid(Timestamp::MINUTE);
            if self.minute.is_some_and(|prev| minute > prev) {
                let now = Timestamp(minute.saturating_mul(Timestamp::MINUTE));
                let top = watch.detector().top(now, TOP_K);
                for (i, topic) in tracker.observe(now, &top) {
                    tracker.set_suggested(i, watch.detector().suggest_feed(&topic, now));
                }
            }
            if self.minute.is_none_or(|prev| minute > prev) {
                self.minute = Some(minute);
            }
        }
        self.announced += watch.post(m).len();
    }

    fn window(&mut self, w: &WindowView<'_>) {
        let names = &self.names;
        let new = self
            .alerts
            .window(w, |id| names.get(id as usize).cloned().unwrap_or_default());
        self.opened
            .extend(new.iter().filter(|r| r.kind == "opened").map(ObservedAlert::from));
        // Nothing is stored: the records are only needed here.
        self.alerts.take_pending();
    }
}

/// Runs the pipeline over `data` with `defs`; returns the sink.
fn run_pipeline(
    data: &Path,
    defs: &[FeedDef],
    threads: usize,
    tracker: Option<EmergingTracker>,
) -> Result<(EvalSink, u64)> {
    let live = LiveFeeds::new(defs)?;
    let tmp = tempfile::tempdir()?;
    // The alert log remembers what an earlier run recorded; a fresh,
    // temporary database makes every alert of this run new.
    let db = Db::open(&tmp.path().join("eval.db")).context("opening a temporary alert log")?;
    let names = live.current().set.names();
    let mut sink = EvalSink {
        alerts: SpikeAlerts::new(SpikeConfig::default(), AlertLog::open(&db)?),
        names,
        opened: Vec::new(),
        topics: tracker.map(|t| (TopicWatch::new(EmergingConfig::default()), t)),
        minute: None,
        announced: 0,
    };
    let cfg = pipeline_config(threads);
    let mut rejected = 0u64;
    let summary = run::run(&[data.to_path_buf()], &cfg, &live, &mut sink, &mut |_| rejected += 1)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    if let Some((watch, _)) = sink.topics.as_mut() {
        sink.announced += watch.finish().len();
    }
    if let Some(e) = summary.files.iter().find_map(|f| f.error.as_ref()) {
        bail!("{}: {e}", data.display());
    }
    if rejected > 0 {
        eprintln!(
            "{}: {rejected} records could not be read and were skipped",
            data.display()
        );
    }
    Ok((sink, summary.progress.posts))
}

/// The pipeline as `tidewatch run` sets it up, minus the store.
fn pipeline_config(threads: usize) -> RunConfig {
    RunConfig {
        decode: Default::default(),
        threads,
        keyring: Arc::new(Keyring::new(PseudonymConfig::default())),
        enriched_upstream: false,
        public_accounts: Arc::new(PublicAccounts::default()),
        undated_time: Timestamp(0),
        window: WindowConfig::default(),
    }
}

fn planted(args: &Args, truth_path: &Path) -> Result<ExitCode> {
    let bytes = std::fs::read(truth_path).with_context(|| format!("reading {}", truth_path.display()))?;
    let truth = PlantedTruth::from_json(&bytes).with_context(|| format!("reading {}", truth_path.display()))?;
    let defs = match &args.feeds {
        Some(p) => load_feeds(p)?,
        None => truth
            .topics
            .iter()
            .map(|t| FeedDef {
                name: t.name.clone(),
                query: t.query.clone(),
            })
            .collect(),
    };
    if defs.is_empty() {
        bail!("no feeds: the truth file lists no topics and no --feeds was given");
    }
    let threads = args.threads.unwrap_or_else(default_threads);
    let started = std::time::Instant::now();
    let tracker = EmergingTracker::new(truth.emerging.clone());
    let (sink, posts) = run_pipeline(&args.data, &defs, threads, Some(tracker))?;
    let spikes = score_spikes(&truth.bursts, &truth.campaigns, &sink.opened);
    let announced = sink.announced;
    let mut emerging = match sink.topics {
        Some((_, tracker)) => tracker.into_outcomes(),
        None => Vec::new(),
    };
    score_suggested_feeds(&args.data, &mut emerging, threads)?;
    let secs = started.elapsed().as_secs_f64();

    if args.format == OutputFormat::Json {
        let rows: Vec<serde_json::Value> = emerging.iter().map(emerging_json).collect();
        println!(
            "{}",
            serde_json::json!({
                "mode": "planted",
                "posts": posts,
                "feeds": defs.len(),
                "spikes": spikes,
                "emerging": rows,
                "topics_announced": announced,
                "seconds": secs,
            })
        );
    } else {
        print_spikes(&spikes);
        print_emerging(&emerging, announced);
        println!(
            "{posts} posts through the pipeline with {} feeds in {secs:.1} s",
            defs.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs each suggested feed (those that parse) over its planted topic's
/// span with the real matcher, against the topic's post ids.
fn score_suggested_feeds(data: &Path, outcomes: &mut [EmergingOutcome], threads: usize) -> Result<()> {
    let defs: Vec<FeedDef> = outcomes
        .iter()
        .filter_map(|o| {
            let q = &o.suggested.as_ref()?.query;
            Query::parse(q).ok()?;
            Some(FeedDef {
                name: o.planted.id.clone(),
                query: q.clone(),
            })
        })
        .collect();
    if defs.is_empty() {
        return Ok(());
    }
    let live = LiveFeeds::new(&defs)?;
    let compiled = live.current();
    let mut proc = PostProcessor::new(&pipeline_config(threads));
    // Per outcome: its feed's id, if it has one.
    let ids: Vec<Option<u32>> = outcomes
        .iter()
        .map(|o| {
            compiled
                .set
                .known_ids()
                .find(|(name, _)| *name == o.planted.id)
                .map(|(_, id)| id)
        })
        .collect();
    let mut counts = vec![FeedCounts::default(); outcomes.len()];
    let file = std::fs::File::open(data).with_context(|| format!("opening {}", data.display()))?;
    for line in std::io::BufReader::new(file).lines() {
        let line = line.with_context(|| format!("reading {}", data.display()))?;
        let Ok(post) = Post::from_json(line.as_bytes()) else {
            continue;
        };
        let Some(t) = post.created_at else { continue };
        let inside: Vec<usize> = outcomes
            .iter()
            .enumerate()
            .filter(|(i, o)| ids[*i].is_some() && t >= o.planted.start && t < o.planted.end)
            .map(|(i, _)| i)
            .collect();
        if inside.is_empty() {
            continue;
        }
        let id = post.id.clone();
        let m = proc.process(post, &compiled);
        for i in inside {
            let hit = ids[i].is_some_and(|f| m.feeds.contains(&f));
            counts[i].add(hit, outcomes[i].planted.post_ids.contains(&id));
        }
    }
    for (o, (c, id)) in outcomes.iter_mut().zip(counts.into_iter().zip(ids)) {
        if id.is_some() {
            o.feed = Some(c);
        }
    }
    Ok(())
}

fn emerging_json(o: &EmergingOutcome) -> serde_json::Value {
    let p = &o.planted;
    serde_json::json!({
        "id": p.id,
        "name": p.name,
        "start": p.start,
        "end": p.end,
        "posts": p.post_ids.len(),
        "found": o.sighting.is_some(),
        "rank": o.sighting.as_ref().map(|s| s.rank),
        "minutes_after_start": o.sighting.as_ref().map(|s| s.minutes_after_start),
        "sighting": o.sighting,
        "suggested_feed": o.suggested.as_ref().map(|s| &s.query),
        "feed_precision": o.feed.map(|c| c.precision()),
        "feed_recall": o.feed.map(|c| c.recall()),
        "feed_counts": o.feed,
    })
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or("-".into(), |x| format!("{x:.digits$}"))
}

fn print_spikes(s: &SpikeScore) {
    println!(
        "spikes: {} planted bursts, {} detected; {} alerts, {} matched ({} duplicates)",
        s.bursts, s.detected, s.alerts, s.matched_alerts, s.duplicates
    );
    println!(
        "  {} alerts on planted campaign waves (real volume spikes, not bursts: set apart)",
        s.campaign_alerts.len()
    );
    println!(
        "  precision {:.3} ({:.3} counting campaign alerts as false)  recall {:.3}  onset delay median {} min, max {} min",
        s.precision,
        s.precision_all,
        s.recall,
        opt(s.median_delay_minutes, 1),
        opt(s.max_delay_minutes, 1)
    );
    println!(
        "  {:<10} {:<16} {:<21} {:>8} {:>11}",
        "burst", "topic", "planted start", "delay", "onset err"
    );
    for b in &s.per_burst {
        println!(
            "  {:<10} {:<16} {:<21} {:>8} {:>11}",
            b.burst.id,
            b.burst.topic,
            b.burst.start.to_string(),
            b.delay_minutes.map_or("missed".into(), |d| format!("{d:.1}")),
            b.onset_error_minutes.map_or("-".into(), |e| e.to_string())
        );
    }
    for a in &s.unmatched {
        println!(
            "  unmatched alert {} feed {:?}: onset {}, peak {}/min (x{:.1})",
            a.id, a.feed, a.onset, a.peak_count, a.magnitude
        );
    }
}

fn print_emerging(outcomes: &[EmergingOutcome], announced: usize) {
    println!(
        "emerging topics: {} planted; {announced} topics announced in all",
        outcomes.len()
    );
    println!(
        "  {:<13} {:<18} {:>5} {:>9} {:>9} {:>7}  suggested feed",
        "planted", "name", "rank", "after", "feed P", "feed R"
    );
    for o in outcomes {
        let s = o.sighting.as_ref();
        println!(
            "  {:<13} {:<18} {:>5} {:>9} {:>9} {:>7}  {}",
            o.planted.id,
            o.planted.name,
            s.map_or("-".into(), |s| s.rank.to_string()),
            s.map_or("never".into(), |s| format!("{:.0} min", s.minutes_after_start)),
            opt(o.feed.map(|c| c.precision()), 3),
            opt(o.feed.map(|c| c.recall()), 3),
            o.suggested.as_ref().map_or("-", |f| f.query.as_str())
        );
    }
}

fn labelled(args: &Args) -> Result<ExitCode> {
    let Some(feeds) = &args.feeds else {
        bail!("without --truth the posts' labels are the truth, and --feeds must name one feed per group (e.g. examples/crisislex_t6_feeds.toml)");
    };
    let (pos_field, pos_value) = args
        .positive
        .split_once('=')
        .with_context(|| format!("--positive {:?}: expected LABEL=VALUE", args.positive))?;
    let defs = load_feeds(feeds)?;
    // The truth: per group, its span of posts and first positive post.
    let mut groups: BTreeMap<String, GroupTruth> = BTreeMap::new();
    let file = std::fs::File::open(&args.data).with_context(|| format!("opening {}", args.data.display()))?;
    for line in std::io::BufReader::new(file).lines() {
        let line = line.with_context(|| format!("reading {}", args.data.display()))?;
        let Ok(post) = Post::from_json(line.as_bytes()) else {
            continue;
        };
        let label = |f: &str| post.labels.get_str(f);
        let Some(group) = label(&args.group) else {
            continue;
        };
        let positive = label(pos_field).as_deref() == Some(pos_value);
        groups.entry(group).or_default().add(post.created_at, positive);
    }
    if groups.is_empty() {
        bail!("{}: no post carries a {:?} label", args.data.display(), args.group);
    }
    let threads = args.threads.unwrap_or_else(default_threads);
    let (sink, posts) = run_pipeline(&args.data, &defs, threads, None)?;
    let outcomes = score_labelled(&groups, &sink.opened);
    if args.format == OutputFormat::Json {
        let feeds: Vec<&str> = defs.iter().map(|d| d.name.as_str()).collect();
        println!(
            "{}",
            serde_json::json!({
                "mode": "labelled",
                "posts": posts,
                "feeds": feeds,
                "alerts": sink.opened.len(),
                "groups": outcomes,
            })
        );
    } else {
        print_labelled(&outcomes);
        println!(
            "{posts} posts through the pipeline with {} feeds; {} alerts in all",
            defs.len(),
            sink.opened.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn print_labelled(outcomes: &[GroupOutcome]) {
    println!(
        "{:<28} {:<21} {:<21} {:>10} {:>10} {:>7}",
        "group", "first positive", "detected onset", "onset Δ", "delay", "alerts"
    );
    for g in outcomes {
        let t = |v: Option<Timestamp>| v.map_or("-".to_string(), |t| t.floor(1000).to_string());
        println!(
            "{:<28} {:<21} {:<21} {:>10} {:>10} {:>7}",
            g.group,
            t(g.truth.first_positive),
            t(g.first_alert.as_ref().map(|a| a.onset)),
            g.onset_minutes.map_or("-".into(), |m| format!("{m:.0} min")),
            g.delay_minutes.map_or("no alert".into(), |m| format!("{m:.0} min")),
            g.alerts
        );
    }
    println!("onset Δ: detected onset minus the first positive post; delay: when the alert was raised (end of its minute) minus the first positive post");
}
