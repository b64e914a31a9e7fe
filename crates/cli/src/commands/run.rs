//! `tidewatch run`: the end-to-end pipeline — decode, enrich, match every
//! post against the detection feeds, and keep per-feed event-time series.
//!
//! With `--nats URL` the run is a cluster's detection process
//! (`tidewatch_cluster::detect`): its only input is the cluster's whole
//! posts stream, read in stream order through a durable consumer of its
//! own, with the posts arriving enriched and masked; its feeds come from
//! the cluster's key-value bucket and change live; and its data directory
//! keeps aggregates, alerts, topics, narratives and groups but no post
//! (`Store::without_post_index`: the workers' shards hold the posts).

use crate::commands::ingest::{default_threads, load_public_accounts, parse_csv_mapping, parse_format};
use crate::output::{spinner, thousands};
use anyhow::{bail, Context, Result};
use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};
use tidewatch_cluster::detect::DetectInput;
use tidewatch_cluster::feeds::FeedsVersion;
use tidewatch_cluster::ClusterConfig;
use tidewatch_core::coordination::CoordinationConfig;
use tidewatch_core::emerging::EmergingConfig;
use tidewatch_core::narrative::{NarrativeConfig, NarrativeSketch};
use tidewatch_core::pseudonym::Keyring;
use tidewatch_core::pseudonym::PseudonymConfig;
use tidewatch_core::spike::SpikeConfig;
use tidewatch_core::window::WindowConfig;
use tidewatch_core::window::WindowView;
use tidewatch_core::Deletion;
use tidewatch_core::Timestamp;
use tidewatch_engine::alerts::{AlertLog, SpikeAlerts};
use tidewatch_engine::config::{Config, Feeds};
use tidewatch_engine::coordination::CoordinationWatch;
use tidewatch_engine::datadir::{DataDir, SavedState, DEFAULT_DATA_DIR};
use tidewatch_engine::decode::{DecodeOptions, Position, Resume};
use tidewatch_engine::detectors::{Detected, DetectedRows, PostDetectors};
use tidewatch_engine::feeds::{load_feeds, FeedDef, FeedSet};
use tidewatch_engine::live::LiveFeeds;
use tidewatch_engine::narratives::{NarrativeRecord, NarrativeWatch};
use tidewatch_engine::persist::{open_for_run, resume_points, CommitPolicy, Opened, Persister};
use tidewatch_engine::replay::ReplayClock;
use tidewatch_engine::run::{self, Inputs, MatchedPost, RunConfig, RunProgress, RunSink, SinkError};
use tidewatch_engine::series::SeriesWriter;
use tidewatch_engine::sources::{
    checkpoint_name, LiveOptions, LiveSources, RunStatus, SourceSpec, SourceStats, StatusWriter, STATUS_FILE,
};
use tidewatch_engine::state::{DetectorsSnapshot, InputPositions, StateError};
use tidewatch_engine::topics::TopicWatch;
use tidewatch_server::hub::EventHub;
use tidewatch_server::state::IngestHandler;
use tidewatch_server::{AppState, ClusterTarget, ServerConfig};
use tidewatch_store::{Store, StoreConfig};

/// With `--nats --serve`: how long each partition has to answer a search.
const SHARD_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a run without `--serve` keeps sending webhooks after its final
/// commit (see [`tidewatch_server::webhooks::DeliveryOptions::drain`]).
const WEBHOOK_DRAIN: std::time::Duration = std::time::Duration::from_secs(15);

/// Seconds between checkpoints of the detectors' state (`--checkpoint-secs`):
/// a checkpoint pauses the pipeline for about 2.5 s at 60 MB of state
/// (README, Restarts), 0.4% of a run at this interval.
const DEFAULT_CHECKPOINT_SECS: u64 = 600;

#[derive(clap::Args)]
pub struct Args {
    /// Input files (`-` for standard input), any supported format; read
    /// after the config's `file` sources.
    #[arg(required_unless_present_any = ["config", "nats"])]
    pub paths: Vec<PathBuf>,
    /// The configuration file (`tidewatch.toml`): sources, feeds, privacy,
    /// data directory. Options given here override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The feeds file (TOML: `[[feed]] name = "...", query = "..."`). It is
    /// re-read when it changes during the run.
    #[arg(long, required_unless_present_any = ["config", "nats"])]
    pub feeds: Option<PathBuf>,
    /// The data directory (keyring, store, status.json; series go to
    /// DATA/series unless --out) [default: tidewatch-data].
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Directory for the per-feed series (CSV per resolution and JSON Lines).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Input format (see `tidewatch ingest --help`).
    #[arg(long, default_value = "auto")]
    pub format: String,
    /// CSV column mapping: a preset (`cnt`, `ira`) or `field=column,...`.
    #[arg(long)]
    pub csv: Option<String>,
    /// Minutes a post may arrive after newer ones and still be counted.
    #[arg(long, default_value_t = 5)]
    pub lateness_minutes: i64,
    /// A file of public account handles whose mentions stay visible.
    #[arg(long)]
    pub public_accounts: Option<PathBuf>,
    /// Worker threads (default: every core).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Days of posts (event time, behind the newest) kept in the index;
    /// older ones are deleted, their aggregates stay. 0 keeps every post
    /// [default: 30].
    #[arg(long)]
    pub retention_days: Option<u32>,
    /// Milliseconds between store commits (a crash re-reads at most this
    /// much input) [default: 5000].
    #[arg(long)]
    pub commit_ms: Option<u64>,
    /// Seconds between checkpoints of the detectors' state (emerging
    /// topics, narratives, coordination), each saved with a commit made
    /// for it: a run killed later goes on from the last one instead of
    /// starting them empty. 0: saved only when the run stops cleanly
    /// [default: 600].
    #[arg(long, value_name = "SECS")]
    pub checkpoint_secs: Option<u64>,
    /// End the run once the live sources have delivered nothing for this
    /// many seconds (for scripts and tests); without it a run with live
    /// sources goes on until Ctrl-C.
    #[arg(long, value_name = "SECS")]
    pub until_idle: Option<f64>,
    /// Also cluster near-duplicate posts and their reposts into narratives
    /// (stored in the `narratives` table and the index's cluster field).
    /// Off by default: it runs on a thread of its own beside the ordered
    /// stage and still costs about half of a firehose run's throughput on
    /// two cores today.
    #[arg(long)]
    pub narratives: bool,
    /// Also find coordinated groups of at least 5 accounts (co-post,
    /// co-link, co-repost, co-reply, co-hashtag within 60 s; implies
    /// --narratives; see `tidewatch coordination --help`).
    #[arg(long)]
    pub coordination: bool,
    #[command(flatten)]
    pub narrative_memory: crate::commands::narratives::NarrativeMemory,
    /// Also serve the JSON API and live event stream (`tidewatch serve`)
    /// over this run's data directory while it runs, e.g. 127.0.0.1:8080.
    #[arg(long, value_name = "ADDR")]
    pub serve: Option<std::net::SocketAddr>,
    /// With --serve: allow API reads without a token (loopback only).
    #[arg(long, requires = "serve")]
    pub anonymous_read: bool,
    /// Let webhooks point at loopback and private addresses (by default
    /// only public ones).
    #[arg(long)]
    pub allow_private_webhooks: bool,
    /// With --serve: once the inputs end, keep serving the API and the
    /// dashboard until Ctrl-C.
    #[arg(long, requires = "serve")]
    pub keep_serving: bool,
    /// Replay the input files at this many times their event-time rate
    /// (1440: one simulated day per minute) instead of as fast as
    /// possible, so an archive can be watched as if live.
    #[arg(long, value_name = "X", value_parser = parse_speed)]
    pub speed: Option<f64>,
    /// The replay clock to pace files with (set by `demo` and the latency
    /// benchmark, which read its release times); overrides --speed.
    #[arg(skip)]
    pub replay: Option<Arc<ReplayClock>>,
    /// Set to the server's address once it listens (with --serve).
    #[arg(skip)]
    pub served: Option<Arc<OnceLock<SocketAddr>>>,
    /// Do not save the detectors' state at the end (set by `demo` when its
    /// data directory is deleted right after: the save would cost seconds
    /// for nothing).
    #[arg(skip)]
    pub discard_state: bool,
    /// The cluster to detect over (`--nats`), instead of files.
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// `run --nats`: the cluster's detection process (see the module doc).
#[derive(clap::Args, Clone, Debug)]
pub struct ClusterArgs {
    /// Read a cluster's whole posts stream instead of files (NATS server
    /// URL(s), comma-separated): narratives, coordinated groups, emerging
    /// topics and alerts over every partition. The feeds come from the
    /// cluster (`tidewatch feeds push`); the data directory keeps no posts
    /// (the workers' shards do), and `--serve` searches the shards.
    #[arg(
        long,
        value_name = "URL",
        conflicts_with_all = ["paths", "config", "feeds", "format", "csv", "speed", "public_accounts"]
    )]
    pub nats: Option<String>,
    /// The cluster's posts stream (with --nats).
    #[arg(long, default_value = tidewatch_cluster::DEFAULT_STREAM, requires = "nats")]
    pub stream: String,
    /// The durable consumer this process reads the stream through (with
    /// --nats): one per detection process, never a worker's.
    #[arg(long, default_value = tidewatch_cluster::detect::DETECT_CONSUMER, requires = "nats")]
    pub consumer: String,
}

impl Default for ClusterArgs {
    /// No cluster: an ordinary run.
    fn default() -> Self {
        ClusterArgs {
            nats: None,
            stream: tidewatch_cluster::DEFAULT_STREAM.to_string(),
            consumer: tidewatch_cluster::detect::DETECT_CONSUMER.to_string(),
        }
    }
}

pub(crate) fn parse_speed(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 => Ok(x),
        _ => Err(format!(
            "expected a positive number (1440 = a simulated day per minute), not {s:?}"
        )),
    }
}

/// The store of a data directory, opened for a run over `paths` with the
/// feeds `defs`: the feeds keep the ids the store knows, the inputs resume
/// at their checkpoints. Returns the persister, the live feeds and where
/// each input resumes.
pub fn open_store(
    data: &DataDir,
    paths: &[PathBuf],
    defs: &[FeedDef],
    keyring: &Arc<Keyring>,
    retention_days: u32,
    commit: CommitPolicy,
) -> Result<(Persister, Arc<LiveFeeds>, HashMap<String, Resume>)> {
    open_store_for(data, file_inputs(paths), defs, keyring, retention_days, commit)
}

/// The checkpoint names of file inputs: their paths (standard input has
/// none).
fn file_inputs(paths: &[PathBuf]) -> Vec<Option<String>> {
    paths
        .iter()
        .map(|p| (p.as_os_str() != "-").then(|| p.display().to_string()))
        .collect()
}

/// [`open_store`] for inputs given by checkpoint name (files, then live
/// sources as `source:NAME`).
pub fn open_store_for(
    data: &DataDir,
    inputs: Vec<Option<String>>,
    defs: &[FeedDef],
    keyring: &Arc<Keyring>,
    retention_days: u32,
    commit: CommitPolicy,
) -> Result<(Persister, Arc<LiveFeeds>, HashMap<String, Resume>)> {
    let opened = open_for_run(data, inputs, defs, keyring, retention_days, commit)?;
    if let Some(batch) = opened.recovery.rolled_back {
        eprintln!(
            "recovered {}: commit {batch} was interrupted and is rolled back; inputs resume at commit {}",
            data.path().display(),
            opened.recovery.seq
        );
    }
    let Opened {
        persister,
        live,
        resume,
        ..
    } = opened;
    Ok((persister, live, resume))
}

/// The store of a cluster's detection view ([`Store::without_post_index`])
/// opened for a run whose inputs have these checkpoint names: as
/// [`open_store_for`], for posts pseudonymised by the cluster's publisher
/// (no keyring is saved here).
fn open_view(
    data: &DataDir,
    inputs: Vec<Option<String>>,
    defs: &[FeedDef],
    keyring: &Arc<Keyring>,
    commit: CommitPolicy,
) -> Result<(Persister, Arc<LiveFeeds>, HashMap<String, Resume>)> {
    let config = StoreConfig {
        // Retention applies to posts; the view has none.
        retention_ms: None,
        ..Default::default()
    };
    let (store, recovery) =
        Store::open(data.path(), config).with_context(|| format!("opening the store in {}", data.path().display()))?;
    if let Some(batch) = recovery.rolled_back {
        eprintln!(
            "recovered {}: commit {batch} was interrupted and is rolled back; the stream resumes at commit {}",
            data.path().display(),
            recovery.seq
        );
    }
    if store.index().num_docs() > 0 {
        bail!(
            "{} holds indexed posts: `run --nats` keeps a detection view without posts; give it a directory of its own",
            data.path().display()
        );
    }
    let store = store.without_post_index();
    let known: Vec<(String, u32)> = store.db().feeds()?.into_iter().map(|f| (f.name, f.id)).collect();
    let live = Arc::new(LiveFeeds::from_set(FeedSet::with_known_ids(&known, defs)?));
    let resume = resume_points(&store)?;
    let persister = Persister::with_inputs(store, inputs, live.clone(), data.clone(), keyring.clone(), commit)?
        .keys_kept_elsewhere();
    Ok((persister, live, resume))
}

/// Re-reads the feeds file when its modification time changes, and swaps
/// the new feed set in while the run goes on.
fn watch_feeds(path: PathBuf, live: Arc<LiveFeeds>, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mtime = |p: &PathBuf| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        let mut seen: Option<SystemTime> = mtime(&path);
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(500));
            let now = mtime(&path);
            if now == seen {
                continue;
            }
            seen = now;
            match load_feeds(&path)
                .map_err(anyhow::Error::from)
                .and_then(|defs| Ok(live.replace_all(&defs)?))
            {
                Ok(v) => eprintln!("feeds reloaded from {} (version {v})", path.display()),
                Err(e) => eprintln!("feeds file not reloaded, keeping the current feeds: {e:#}"),
            }
        }
    })
}

/// Writes the series, raises alerts, and keeps a one-line live summary on
/// the terminal.
struct TerminalSink {
    series: SeriesWriter,
    alerts: SpikeAlerts,
    topics: TopicWatch,
    /// Narratives and coordination; lent to the run while it goes on,
    /// which drives them on a thread of their own.
    detectors: Option<PostDetectors>,
    persist: Persister,
    live: Arc<LiveFeeds>,
    bar: indicatif::ProgressBar,
    names_version: u64,
    /// Live sources' counters, for the terminal line.
    sources: Vec<Arc<SourceStats>>,
    /// The latest totals, shared with the status writer.
    shared_progress: Arc<Mutex<RunProgress>>,
    /// The served live stream, which gets each alert the moment it is
    /// raised (the store has it at the next commit).
    hub: Option<Arc<EventHub>>,
    /// Where and how often the detectors' state is checkpointed (`None`:
    /// never while the run goes on).
    checkpoints: Option<Checkpoints>,
}

/// The detectors' checkpoints of a run (see [`tidewatch_engine::state`]).
struct Checkpoints {
    data: DataDir,
    every: Duration,
    last: std::time::Instant,
}

impl RunSink for TerminalSink {
    fn post(&mut self, post: &MatchedPost) {
        self.post_sketched(post, None);
    }

    /// With narratives on, the workers sketch each post's text (shingles,
    /// MinHash) so the detectors do only the clustering.
    fn narrative_sketches(&self) -> Option<NarrativeConfig> {
        self.detectors.as_ref().map(|d| d.sketch_config().clone())
    }

    fn take_detectors(&mut self) -> Option<PostDetectors> {
        self.detectors.take()
    }

    fn return_detectors(&mut self, detectors: PostDetectors) {
        self.detectors = Some(detectors);
    }

    fn post_sketched(&mut self, post: &MatchedPost, sketch: Option<&NarrativeSketch>) {
        // Detectors not lent to the run run here.
        let found = self.detectors.as_mut().map(|d| d.post(post, sketch));
        self.post_found(post, found.as_ref());
    }

    fn post_detected(&mut self, post: &MatchedPost, found: &Detected) {
        self.post_found(post, Some(found));
    }

    fn rows_detected(&mut self, rows: DetectedRows) {
        self.persist.narratives(rows.narratives);
        self.persist.coordination_groups(rows.groups);
    }

    fn deletion(&mut self, deletion: &Deletion) {
        self.persist.deletion(deletion);
    }

    fn window(&mut self, window: &WindowView<'_>) {
        self.series.window(window);
        let live = &self.live;
        let new = self
            .alerts
            .window(window, |id| live.current().set.name_of(id).unwrap_or("?").to_string());
        for rec in new {
            if let Some(hub) = &self.hub {
                // The same JSON the store records, so a client cannot tell
                // the two paths apart.
                if let Ok(json) = serde_json::to_string(&rec) {
                    hub.publish("alert", json);
                }
            }
            self.say(&rec.summary());
        }
        self.persist.alerts(self.alerts.take_pending());
    }

    fn batch_end(&mut self, at: &Position, finished: &[Position]) -> Result<(), SinkError> {
        self.persist.topics(self.topics.take_pending());
        if let Some(d) = &mut self.detectors {
            let rows = d.take_rows();
            self.rows_detected(rows);
        }
        self.persist.batch_end(at, finished)
    }

    fn checkpoint_due(&mut self) -> bool {
        match &mut self.checkpoints {
            Some(c) if c.last.elapsed() >= c.every => {
                c.last = std::time::Instant::now();
                true
            }
            _ => false,
        }
    }

    /// Commits, then saves the state with that commit. A failed save
    /// costs only the checkpoint; a failed commit stops the run.
    fn checkpoint(&mut self, taken: Option<Result<DetectorsSnapshot, StateError>>) -> Result<(), SinkError> {
        let Some(c) = &self.checkpoints else {
            return Ok(());
        };
        let started = std::time::Instant::now();
        let snapshot = match taken {
            Some(taken) => taken,
            None => DetectorsSnapshot::of(self.detectors.as_ref()),
        };
        let committed = self.persist.commit().map_err(Box::new)?;
        let line = match save_detectors(&c.data, &self.persist, committed.seq, &self.topics, snapshot) {
            Ok(bytes) => format!(
                "detectors' state checkpointed with commit {} ({:.1} MB in {:.2} s)",
                committed.seq,
                bytes as f64 / 1e6,
                started.elapsed().as_secs_f64()
            ),
            Err(e) => format!("warning: the detectors' state was not checkpointed: {e:#}"),
        };
        self.bar.suspend(|| eprintln!("{line}"));
        Ok(())
    }

    fn progress(&mut self, p: &RunProgress) {
        let current = self.live.current();
        if current.version() != self.names_version {
            // Feeds added while running need names in the series.
            self.series.set_names(current.set.names());
            self.names_version = current.version();
        }
        let secs = p.elapsed.as_secs_f64().max(1e-9);
        let mut top: Vec<&(i64, u32, u64)> = self.series.last_minute.iter().collect();
        top.sort_by(|a, b| b.2.cmp(&a.2).then(a.1.cmp(&b.1)));
        let top: Vec<String> = top
            .iter()
            .take(3)
            .map(|(_, f, c)| format!("{} {c}", current.set.name_of(*f).unwrap_or("?")))
            .collect();
        *self.shared_progress.lock().unwrap_or_else(|e| e.into_inner()) = *p;
        self.bar.set_message(format!(
            "{} posts, {:.0} posts/s, {} matched, watermark {}; top feeds last minute: {}{}",
            thousands(p.posts),
            p.posts as f64 / secs,
            thousands(p.matched),
            p.watermark.map_or("-".into(), |t| t.to_string()),
            top.join(", "),
            sources_line(&self.sources)
        ));
    }
}

impl TerminalSink {
    /// One post, with what the detectors found in it when they are on.
    fn post_found(&mut self, post: &MatchedPost, found: Option<&Detected>) {
        self.series.post(post);
        let mut said = Vec::new();
        let update = found.and_then(|f| f.update);
        if let Some(found) = found {
            said.extend(found.reported.iter().map(|r| r.summary()));
            if let (Some(u), Some(t)) = (update, post.post.created_at) {
                if !u.is_new {
                    self.alerts.repeat(t, &post.feeds);
                }
            }
            said.extend(found.groups.iter().map(|g| g.summary()));
        }
        self.persist.post(post, update.map(|u| u.narrative.0));
        said.extend(self.topics.post(post).iter().map(|r| r.summary()));
        if let Some(found) = found {
            self.narratives_grown(&found.grown, &mut said);
        }
        for line in said {
            self.say(&line);
        }
    }

    /// A narrative that grew fast becomes an emerging topic and an alert
    /// (published like a spike's); their lines go to `said`.
    fn narratives_grown(&mut self, grown: &[NarrativeRecord], said: &mut Vec<String>) {
        if grown.is_empty() {
            return;
        }
        let live = &self.live;
        for n in grown {
            if let Some(topic) = self.topics.narrative(n) {
                said.push(topic.summary());
            }
            let name_of = |id: u32| live.current().set.name_of(id).unwrap_or("?").to_string();
            if let Some(alert) = self.alerts.narrative(n, name_of) {
                if let Some(hub) = &self.hub {
                    if let Ok(json) = serde_json::to_string(&alert) {
                        hub.publish("alert", json);
                    }
                }
                said.push(alert.summary());
            }
        }
        self.persist.alerts(self.alerts.take_pending());
    }

    /// A line above the live summary.
    fn say(&self, line: &str) {
        if self.bar.is_hidden() {
            println!("{line}");
        } else {
            self.bar.println(line);
        }
    }
}

/// `; sources: bsky 12,345 events (lag 0.4 s, 2 reconnects, 1 gap)`, or
/// nothing without live sources.
fn sources_line(sources: &[Arc<SourceStats>]) -> String {
    if sources.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = sources
        .iter()
        .map(|s| {
            let st = s.status();
            let mut part = format!("{} {} events", st.name, thousands(st.events));
            let mut notes = Vec::new();
            if let Some(lag) = st.lag_ms {
                notes.push(format!("lag {:.1} s", lag as f64 / 1000.0));
            }
            if st.reconnects > 0 {
                notes.push(format!("{} reconnects", st.reconnects));
            }
            if st.malformed + st.rejected > 0 {
                notes.push(format!("{} malformed", st.malformed + st.rejected));
            }
            if !st.gaps.is_empty() {
                notes.push(format!("{} GAPS", st.gaps.len()));
            }
            if !notes.is_empty() {
                part.push_str(&format!(" ({})", notes.join(", ")));
            }
            part
        })
        .collect();
    format!("; sources: {}", parts.join(", "))
}

/// Writes `DATA/status.json` every two seconds until `stop` is set, then
/// once more with `running: false`.
fn write_status(
    dir: PathBuf,
    sources: Vec<Arc<SourceStats>>,
    progress: Arc<Mutex<RunProgress>>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let started_at = chrono::Utc::now().timestamp_millis();
        let mut writer = StatusWriter::default();
        let mut warned = false;
        loop {
            let last = stop.load(Ordering::Relaxed);
            let p = *progress.lock().unwrap_or_else(|e| e.into_inner());
            let status = RunStatus {
                updated_at: chrono::Utc::now().timestamp_millis(),
                started_at,
                pid: std::process::id(),
                running: !last,
                posts: p.posts,
                matched: p.matched,
                rejected: p.rejected,
                sources: writer.snapshot(&sources),
            };
            if let Err(e) = status.write(&dir) {
                if !warned {
                    eprintln!("cannot write {}: {e}", dir.join(STATUS_FILE).display());
                    warned = true;
                }
            }
            if last {
                return;
            }
            // Sleep in short steps so the end of a run is not delayed.
            for _ in 0..20 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    })
}

/// The detectors to run with: those the last run on `data` saved (when it
/// stopped, or at its last checkpoint), when the store is at or after that
/// commit (`seq`) and the settings are the same; else the fresh ones. Says
/// which on stderr. State of a checkpoint comes with what to read again
/// for it ([`Replay`]): the posts of `files` and of the live sources
/// (`specs`) that can replay, committed since.
fn resume_detectors(
    data: &DataDir,
    (seq, resume): (u64, &HashMap<String, Resume>),
    (files, specs): (&[Option<String>], &[SourceSpec]),
    topics: TopicWatch,
    detectors: Option<PostDetectors>,
) -> (TopicWatch, Option<PostDetectors>, Option<Replay>) {
    let started = std::time::Instant::now();
    let (saved, from, replay) = match data.load_state(seq) {
        Ok(SavedState::None) => return (topics, detectors, None),
        Ok(SavedState::Ahead { saved }) => {
            eprintln!(
                "emerging topics, narratives and coordination start empty: their saved state is of commit {saved}, \
                 later than the store's {seq} (the store was replaced or rolled back)"
            );
            return (topics, detectors, None);
        }
        Ok(SavedState::Current(saved)) => (*saved, "where the last run stopped".to_string(), None),
        Ok(SavedState::Behind { saved, state }) => {
            let replay = Replay::between(&state.inputs, resume, files, specs);
            let from = if replay.blind.is_empty() {
                format!(
                    "from the checkpoint of commit {saved}, reading again what commits {}..={seq} stored \
                     (the last run did not stop cleanly)",
                    saved + 1
                )
            } else {
                format!(
                    "from the checkpoint of commit {saved}, blind to what {} delivered in commits {}..={seq} \
                     (the last run did not stop cleanly; Mastodon, feeds, pushed posts, and inputs not \
                     given to this run, cannot be read again)",
                    replay.blind.join(", "),
                    saved + 1
                )
            };
            (*state, from, Some(replay))
        }
        Err(e) => {
            eprintln!("emerging topics, narratives and coordination start empty: {e}");
            return (topics, detectors, None);
        }
    };
    let mut resumed = Vec::new();
    let mut other = Vec::new();
    let topics = if saved.topics.detector().config() == topics.detector().config() {
        resumed.push(format!(
            "emerging topics ({} keys tracked)",
            saved.topics.detector().tracked()
        ));
        saved.topics
    } else {
        other.push("emerging topics");
        topics
    };
    let detectors = detectors.map(|fresh| {
        let (narratives, coordination) = match saved.detectors {
            Some(d) => (Some(d.narratives), d.coordination),
            None => (None, None),
        };
        let narratives = match narratives {
            Some(n) if n.config() == fresh.narratives.config() => {
                resumed.push(format!("{} narratives", n.narratives().stats().narratives));
                n
            }
            Some(_) => {
                other.push("narratives");
                fresh.narratives
            }
            None => fresh.narratives,
        };
        let coordination = match (fresh.coordination, coordination) {
            (Some(fresh), Some(saved)) if saved.config() == fresh.config() => {
                resumed.push(format!("{} coordination edges", saved.stats().edges));
                Some(saved)
            }
            (Some(fresh), Some(_)) => {
                other.push("coordination");
                Some(fresh)
            }
            (fresh, _) => fresh,
        };
        PostDetectors {
            narratives,
            coordination,
        }
    });
    if !resumed.is_empty() {
        eprintln!(
            "resumed {from}: {} (read in {:.2} s)",
            resumed.join(", "),
            started.elapsed().as_secs_f64()
        );
    }
    if !other.is_empty() {
        eprintln!(
            "{} start empty: the saved state was made with other settings",
            other.join(", ")
        );
    }
    (topics, detectors, replay)
}

/// Saves the detectors' state with commit `seq` and where the inputs stood
/// at it: the topics, held here, and the `snapshot` of the rest (see
/// [`tidewatch_engine::state`]). Returns the file's size.
fn save_detectors(
    data: &DataDir,
    persist: &Persister,
    seq: u64,
    topics: &TopicWatch,
    snapshot: Result<DetectorsSnapshot, StateError>,
) -> anyhow::Result<u64> {
    let inputs = persist.input_positions()?;
    Ok(data.save_state(seq, &inputs, topics, &snapshot?)?)
}

/// What a run that goes on from a checkpoint reads again for its
/// detectors: each file input, and each live source that can replay
/// (Jetstream, a cluster's posts stream), from where it stood at the
/// checkpoint to where the store has it.
struct Replay {
    from: HashMap<String, Resume>,
    until: HashMap<String, u64>,
    /// Live sources bounded to the store's cursor
    /// ([`SourceSpec::read_again_until`]), with where each starts and that
    /// cursor.
    live: Vec<(SourceSpec, Resume, u64)>,
    /// Inputs that delivered posts after the checkpoint and cannot be
    /// read again: other live sources, and inputs not given to this run.
    blind: Vec<String>,
}

/// How long a live source read again waits for its next record before
/// the replay gives up on it (its history is gone, or its server).
const REPLAY_IDLE: Duration = Duration::from_secs(30);

impl Replay {
    fn between(
        checkpoint: &InputPositions,
        store: &HashMap<String, Resume>,
        files: &[Option<String>],
        specs: &[SourceSpec],
    ) -> Replay {
        let mut replay = Replay {
            from: HashMap::new(),
            until: HashMap::new(),
            live: Vec::new(),
            blind: Vec::new(),
        };
        for (name, stored) in store {
            let then = checkpoint.get(name).copied().unwrap_or_default();
            if stored.events <= then.events {
                continue;
            }
            let at = Resume {
                events: then.events,
                done: false,
                offset: None,
            };
            // A live source replays between its cursors (the stream
            // sequence, Jetstream's time_us) as checkpointed.
            let bounded = |until: u64| {
                let spec = specs.iter().find(|s| checkpoint_name(s.name()) == *name)?;
                Some((spec.read_again_until(until)?, until))
            };
            if files.iter().flatten().any(|f| f == name) {
                replay.from.insert(name.clone(), at);
                replay.until.insert(name.clone(), stored.events);
            } else if let Some((spec, until)) = then.offset.and(stored.offset).and_then(bounded) {
                let at = Resume {
                    offset: then.offset,
                    ..at
                };
                replay.live.push((spec, at, until));
            } else {
                replay.blind.push(name.clone());
            }
        }
        replay.live.sort_by(|a, b| a.0.name().cmp(b.0.name()));
        replay.blind.sort();
        replay
    }

    /// Reads the files and live sources again from the checkpoint to the
    /// store's commit, through the whole pipeline but into the detectors
    /// only (the store, series and alerts have these posts already), so
    /// that they stand where an uninterrupted run's would.
    fn run(
        self,
        paths: &[PathBuf],
        cfg: &RunConfig,
        live: &LiveFeeds,
        topics: &mut TopicWatch,
        detectors: Option<&mut PostDetectors>,
    ) -> anyhow::Result<()> {
        if self.until.is_empty() && self.live.is_empty() {
            return Ok(());
        }
        let started = std::time::Instant::now();
        let mut cfg = cfg.clone();
        cfg.decode.resume = self.from;
        cfg.decode.until = Some(self.until);
        cfg.decode.pace = None;
        let mut sink = ReplaySink {
            topics,
            detectors,
            posts: 0,
            reached: HashMap::new(),
        };
        // Where each live source must get to: its input index, name and
        // the store's cursor.
        let ends: Vec<(usize, String, u64)> = self
            .live
            .iter()
            .enumerate()
            .map(|(i, (spec, _, until))| (paths.len() + i, spec.name().to_string(), *until))
            .collect();
        let mut sources = if self.live.is_empty() {
            None
        } else {
            let resume: HashMap<String, Resume> = self
                .live
                .iter()
                .map(|(spec, at, _)| (checkpoint_name(spec.name()), *at))
                .collect();
            let specs = self.live.into_iter().map(|(spec, _, _)| spec).collect();
            let opts = LiveOptions {
                until_idle: Some(REPLAY_IDLE),
                ..LiveOptions::default()
            };
            let stop = Arc::new(AtomicBool::new(false));
            let sources = LiveSources::start(specs, paths.len(), &resume, opts, stop, None)
                .context("reading the live sources again from the checkpoint")?;
            Some(sources)
        };
        let inputs = match sources.as_mut() {
            Some(sources) => Inputs::Live { files: paths, sources },
            None => Inputs::Files(paths),
        };
        run::run_inputs(inputs, &cfg, live, &mut sink, &mut |_| {})
            .map_err(|e| anyhow::anyhow!("{e}"))
            .context("reading again what was committed after the checkpoint")?;
        // Their rows are in the store already.
        drop(sink.topics.take_pending());
        if let Some(d) = sink.detectors {
            drop(d.take_rows());
        }
        eprintln!(
            "read again the {} posts committed after the checkpoint, for the detectors ({:.2} s)",
            thousands(sink.posts),
            started.elapsed().as_secs_f64()
        );
        for (input, name, until) in ends {
            let reached = sink.reached.get(&input).copied();
            if reached.is_none_or(|r| r < until) {
                eprintln!(
                    "{name} was read again only up to cursor {}, short of the store's {until} (its history \
                     is gone, or it sent nothing for {} s): the detectors are blind to the rest",
                    reached.map_or("none".to_string(), |r| r.to_string()),
                    REPLAY_IDLE.as_secs()
                );
            }
        }
        Ok(())
    }
}

/// The sink of a [`Replay`]: every post goes to the detectors as in
/// [`TerminalSink`], and nowhere else. It keeps them on its own thread (a
/// replay is minutes of posts; lent or kept, they find the same).
struct ReplaySink<'a> {
    topics: &'a mut TopicWatch,
    detectors: Option<&'a mut PostDetectors>,
    posts: u64,
    /// The cursor each input had reached, by input index.
    reached: HashMap<usize, u64>,
}

impl RunSink for ReplaySink<'_> {
    fn post(&mut self, post: &MatchedPost) {
        self.post_sketched(post, None);
    }

    fn narrative_sketches(&self) -> Option<NarrativeConfig> {
        self.detectors.as_ref().map(|d| d.sketch_config().clone())
    }

    fn post_sketched(&mut self, post: &MatchedPost, sketch: Option<&NarrativeSketch>) {
        self.posts += 1;
        let found = self.detectors.as_mut().map(|d| d.post(post, sketch));
        self.topics.post(post);
        for n in found.iter().flat_map(|f| &f.grown) {
            self.topics.narrative(n);
        }
    }

    fn window(&mut self, _window: &WindowView<'_>) {}

    fn batch_end(&mut self, at: &Position, _finished: &[Position]) -> Result<(), SinkError> {
        if let Some(offset) = at.offset {
            self.reached.insert(at.input, offset);
        }
        Ok(())
    }
}

/// Sets `flag` on Ctrl-C or SIGTERM ([`tidewatch_server::signals`]); a
/// second one ends the process at once (what was committed stays; the rest
/// is read again by the next run).
pub(crate) fn stop_on_signal(flag: Arc<AtomicBool>) {
    let stopping = "stopping: the sources are closed and what they delivered is committed (Ctrl-C again to quit now)";
    if let Err(e) = tidewatch_server::signals::stop_on_signal(flag, stopping) {
        eprintln!("Ctrl-C and SIGTERM will not stop the run cleanly: {e}");
    }
}

pub fn run(args: Args) -> Result<ExitCode> {
    run_with(args, &mut |_| Ok(()))
}

/// [`run`], calling `after` once the inputs are processed and committed,
/// while the server (with --serve) still answers: `demo` reports there.
pub fn run_with(args: Args, after: &mut dyn FnMut(&Persister) -> Result<()>) -> Result<ExitCode> {
    let config = args.config.as_deref().map(Config::load).transpose()?;
    if let Some(nats) = config.as_ref().and_then(|c| c.nats.first()) {
        bail!(
            "source {:?}: `run` reads no NATS source from its config; a cluster's posts stream is \
             read by `tidewatch worker --nats URL --data DIR` and `tidewatch run --nats URL` (see \
             the README's scale-out section); remove it from {} to run the other sources",
            nats.name,
            config.as_ref().map_or(String::new(), |c| c.path.display().to_string())
        );
    }
    let privacy = config.as_ref().map(|c| c.privacy.clone()).unwrap_or_default();
    // Files: the config's first, then those on the command line.
    let mut paths = config.as_ref().map(Config::file_paths).unwrap_or_default();
    paths.extend(args.paths.iter().cloned());
    let mut specs = config.as_ref().map(|c| c.sources.clone()).unwrap_or_default();
    // A cluster's detection process: the stream is the only input, the
    // feeds are the cluster's.
    let cluster = args.cluster.nats.as_ref().map(|url| {
        let mut c = ClusterConfig::new(url);
        c.stream = args.cluster.stream.clone();
        c
    });
    let detect = cluster
        .as_ref()
        .map(|c| DetectInput::connect(c, &args.cluster.consumer))
        .transpose()
        .context("connecting to the cluster")?;
    let (defs, feeds_file) = match (&args.feeds, config.as_ref().map(|c| &c.feeds)) {
        (Some(path), _) => (load_feeds(path)?, Some(path.clone())),
        (None, Some(Feeds::File(path))) => (load_feeds(path)?, Some(path.clone())),
        (None, Some(Feeds::Inline(defs))) => (defs.clone(), None),
        (None, Some(Feeds::None) | None) => (
            detect
                .as_ref()
                .and_then(|d| d.feeds.as_ref())
                .map(|f| f.defs.clone())
                .unwrap_or_default(),
            None,
        ),
    };
    let feeds_revision = detect.as_ref().and_then(|d| d.feeds.as_ref()).map_or(0, |f| f.revision);
    if let Some(d) = &detect {
        eprintln!(
            "reading stream {} ({} partitions) through consumer {}; {} feeds from the cluster (revision {feeds_revision})",
            d.source.stream,
            d.partitions,
            d.source.consumer,
            defs.len()
        );
        specs.push(SourceSpec::Nats(d.source.clone()));
    }
    let data_path = args
        .data
        .clone()
        .or_else(|| config.as_ref().and_then(|c| c.data.clone()))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
    let data = DataDir::open(&data_path)?;
    let pseudonyms = PseudonymConfig {
        epoch_ms: privacy.epoch_hours * Timestamp::HOUR,
        linkage_window_ms: privacy.linkage_days * Timestamp::DAY,
    };
    let keyring = Arc::new(match &detect {
        // Posts arrive pseudonymised: the keys are the cluster's, and this
        // one (which the live stage wants to expire) never hashes anything.
        Some(_) => Keyring::new(pseudonyms),
        None => data.load_keyring(pseudonyms)?,
    });
    let commit_ms = args
        .commit_ms
        .or_else(|| config.as_ref().and_then(|c| c.commit_ms))
        .unwrap_or(5000);
    let policy = CommitPolicy {
        interval: Duration::from_millis(commit_ms),
        ..Default::default()
    };
    let retention_days = args.retention_days.unwrap_or(privacy.retention_days);
    let mut inputs = file_inputs(&paths);
    inputs.extend(specs.iter().map(|s| Some(checkpoint_name(s.name()))));
    let (mut persist, live, resume) = match &detect {
        Some(_) => open_view(&data, inputs, &defs, &keyring, policy)?,
        None => open_store_for(&data, inputs, &defs, &keyring, retention_days, policy)?,
    };
    let format = match parse_format(&args.format)? {
        Some(f) => Some(f),
        None => config.as_ref().and_then(Config::file_format),
    };
    let public_accounts = args.public_accounts.clone().or(privacy.public_accounts.clone());
    let interrupted = Arc::new(AtomicBool::new(false));
    stop_on_signal(interrupted.clone());
    let pace = args
        .replay
        .clone()
        .or_else(|| args.speed.map(|x| Arc::new(ReplayClock::new(x))));
    if let Some(clock) = &pace {
        clock.stop_on(interrupted.clone());
    }
    // What a run going on from a checkpoint may read again (see `Replay`).
    let replayable = specs.clone();
    let mut sources = if specs.is_empty() {
        None
    } else {
        let opts = LiveOptions {
            until_idle: args.until_idle.map(|s| Duration::from_secs_f64(s.max(0.0))),
            ..LiveOptions::default()
        };
        let started = LiveSources::start(
            specs,
            paths.len(),
            &resume,
            opts,
            interrupted.clone(),
            Some(persist.commit_watch()),
        )
        .context("starting the live sources")?;
        for (name, addr) in started.push_addrs() {
            eprintln!(
                "push source {name}: POST NDJSON to http://{addr}{}",
                tidewatch_sources::push::INGEST_PATH
            );
        }
        Some(started)
    };
    let cfg = RunConfig {
        decode: DecodeOptions {
            format,
            csv_mapping: args.csv.as_deref().map(parse_csv_mapping).transpose()?,
            resume,
            pace: pace.clone(),
            ..Default::default()
        },
        threads: args.threads.unwrap_or_else(default_threads),
        keyring: keyring.clone(),
        enriched_upstream: detect.is_some(),
        public_accounts: Arc::new(load_public_accounts(public_accounts.as_ref())?),
        undated_time: Timestamp(chrono::Utc::now().timestamp_millis()),
        window: WindowConfig {
            allowed_lateness_ms: args.lateness_minutes.max(0) * Timestamp::MINUTE,
            ..Default::default()
        },
    };
    let out_dir = args.out.clone().unwrap_or_else(|| data.path().join("series"));
    let series = SeriesWriter::create(&out_dir, live.current().set.names())
        .with_context(|| format!("creating series files in {}", out_dir.display()))?;
    let rejects_path = out_dir.join("rejects.txt");
    let mut rejects = std::io::BufWriter::new(
        std::fs::File::create(&rejects_path).with_context(|| format!("creating {}", rejects_path.display()))?,
    );

    let stop = Arc::new(AtomicBool::new(false));
    let mut hub = None;
    let server_stop = Arc::new(AtomicBool::new(false));
    let served_at = args.served.clone().unwrap_or_default();
    let discard_state = args.discard_state;
    let server = match args.serve {
        Some(addr) => {
            if args.anonymous_read && !addr.ip().is_loopback() {
                bail!("--anonymous-read is only allowed on a loopback address, not {addr}");
            }
            let mut sc = ServerConfig::new(data.path().to_path_buf(), addr);
            sc.feeds_file = feeds_file.clone();
            sc.anonymous_read = args.anonymous_read;
            sc.allow_private_webhooks = args.allow_private_webhooks;
            sc.k = privacy.k;
            // This process raises the alerts: it publishes them itself.
            sc.poll_alerts = false;
            // A detection view has no posts: search asks the shards.
            sc.cluster = cluster.clone().map(|config| ClusterTarget {
                config,
                shard_timeout: SHARD_TIMEOUT,
            });
            let state = AppState::new(sc);
            hub = Some(state.hub.clone());
            // The API's ingest route answers as the (first) push source.
            if let Some(endpoint) = sources.as_ref().and_then(|s| s.push_endpoints().first().cloned()) {
                eprintln!(
                    "push source {}: also at the API's /api/v1/ingest (admin token)",
                    endpoint.name()
                );
                let handler: IngestHandler = Arc::new(move |params, body| {
                    let endpoint = endpoint.clone();
                    Box::pin(async move { endpoint.ingest(params, body).await })
                });
                let _ = state.ingest.set(handler);
            }
            let stop = server_stop.clone();
            let served = served_at.clone();
            Some(std::thread::spawn(move || {
                tidewatch_server::serve_until_stopped(state, stop, |addr| {
                    eprintln!("dashboard: http://{addr}/  API: http://{addr}/api/v1 (OpenAPI at /api/v1/openapi.json)");
                    let _ = served.set(addr);
                })
            }))
        }
        None => None,
    };
    // Alerts go to the configured webhooks; a serving process's server
    // delivers them itself.
    let webhooks = server.is_none().then(|| {
        let (dir, stop) = (data.path().to_path_buf(), stop.clone());
        let allow_private = args.allow_private_webhooks;
        std::thread::spawn(move || {
            // The final commit's alerts are sent before the run exits.
            let options = tidewatch_server::webhooks::DeliveryOptions {
                drain: WEBHOOK_DRAIN,
                allow_private,
                ..Default::default()
            };
            if let Err(e) = tidewatch_server::webhooks::run_until_stopped(&dir, options, stop) {
                eprintln!("webhooks are not delivered: {e}");
            }
        })
    });
    let watcher = match (feeds_file, &cluster) {
        (Some(path), _) => Some(watch_feeds(path, live.clone(), stop.clone())),
        (None, Some(c)) => {
            let live = live.clone();
            let apply = move |v: FeedsVersion| match live.replace_all(&v.defs) {
                Ok(n) => eprintln!("feeds revision {} from the cluster applied (version {n})", v.revision),
                Err(e) => eprintln!("feeds revision {} from the cluster not applied: {e:#}", v.revision),
            };
            Some(
                tidewatch_cluster::detect::watch_feeds(c.clone(), feeds_revision, stop.clone(), apply)
                    .context("watching the cluster's feeds")?,
            )
        }
        (None, None) => None,
    };
    let source_stats = sources.as_ref().map(LiveSources::stats).unwrap_or_default();
    let shared_progress = Arc::new(Mutex::new(RunProgress::default()));
    let status = write_status(
        data.path().to_path_buf(),
        source_stats.clone(),
        shared_progress.clone(),
        stop.clone(),
    );
    let mut alerts = SpikeAlerts::new(SpikeConfig::default(), AlertLog::open(persist.store().db())?);
    if args.narratives || args.coordination {
        alerts = alerts.with_near_duplicates();
    }
    // A restarted run picks spike detection up where the store left it,
    // instead of spending the detector's warm-up blind.
    let (resumed, raised) = {
        let current = live.current();
        alerts
            .resume(persist.store().db(), cfg.window.allowed_lateness_ms, |id| {
                current.set.name_of(id).map(str::to_string)
            })
            .context("resuming spike detection from the store")?
    };
    if let Some(through) = resumed.through {
        eprintln!(
            "spike detection resumed from {} stored feed-minutes (up to {through}); {} recent ones carried over",
            resumed.replayed, resumed.carried
        );
    }
    // Alerts the store does not hold yet (one written by a version that
    // kept no alerts, or whose alert table was emptied) go out as any new
    // alert does.
    for rec in raised {
        if let (Some(hub), Ok(json)) = (&hub, serde_json::to_string(&rec)) {
            hub.publish("alert", json);
        }
        println!("{}", rec.summary());
    }
    persist.alerts(alerts.take_pending());
    let topics = TopicWatch::open(EmergingConfig::default(), persist.store().db())?;
    let narratives = (args.narratives || args.coordination)
        .then(|| NarrativeWatch::open(args.narrative_memory.watch_config(), persist.store().db()))
        .transpose()?;
    let coordination = args
        .coordination
        .then(|| CoordinationWatch::open(CoordinationConfig::default(), persist.store().db()))
        .transpose()?;
    let detectors = narratives.map(|narratives| PostDetectors {
        narratives,
        coordination,
    });
    let (mut topics, mut detectors, replay) = resume_detectors(
        &data,
        (persist.store().seq(), &cfg.decode.resume),
        (&file_inputs(&paths), &replayable),
        topics,
        detectors,
    );
    if let Some(replay) = replay {
        replay.run(&paths, &cfg, &live, &mut topics, detectors.as_mut())?;
    }
    let mut sink = TerminalSink {
        series,
        alerts,
        topics,
        detectors,
        persist,
        live: live.clone(),
        bar: spinner(),
        names_version: live.current().version(),
        sources: source_stats.clone(),
        shared_progress: shared_progress.clone(),
        hub,
        checkpoints: match args
            .checkpoint_secs
            .or_else(|| config.as_ref().and_then(|c| c.checkpoint_secs))
            .unwrap_or(DEFAULT_CHECKPOINT_SECS)
        {
            0 => None,
            _ if discard_state => None,
            secs => Some(Checkpoints {
                data: data.clone(),
                every: Duration::from_secs(secs),
                last: std::time::Instant::now(),
            }),
        },
    };
    let mut reject_error = None;
    let inputs = match sources.as_mut() {
        Some(sources) => Inputs::Live { files: &paths, sources },
        None => Inputs::Files(&paths),
    };
    let summary = run::run_inputs(inputs, &cfg, &live, &mut sink, &mut |r| {
        if reject_error.is_none() {
            if let Err(e) = writeln!(rejects, "{r}") {
                reject_error = Some(e);
            }
        }
    });
    drop(sources);
    // Whatever happened, what was processed is committed.
    for rec in sink.topics.finish() {
        sink.say(&rec.summary());
    }
    sink.persist.topics(sink.topics.take_pending());
    let mut last: Vec<String> = Vec::new();
    if let Some(d) = &mut sink.detectors {
        last.extend(d.narratives.finish().iter().map(|r| r.summary()));
        let grown = d.narratives.take_grown();
        sink.narratives_grown(&grown, &mut last);
    }
    if let Some(coord) = sink.detectors.as_mut().and_then(|d| d.coordination.as_mut()) {
        last.extend(coord.finish().iter().map(|g| g.summary()));
    }
    for line in last {
        sink.say(&line);
    }
    if let Some(d) = &mut sink.detectors {
        let rows = d.take_rows();
        sink.rows_detected(rows);
    }
    let committed = sink.persist.commit();
    let summary = summary
        .map_err(|e| anyhow::anyhow!("{e}"))
        .context("writing to the store")?;
    let committed = committed.context("committing to the store")?;
    // The next run on this directory goes on from here (a failed save
    // costs only that).
    if !discard_state {
        let started = std::time::Instant::now();
        let snapshot = DetectorsSnapshot::of(sink.detectors.as_ref());
        match save_detectors(&data, &sink.persist, committed.seq, &sink.topics, snapshot) {
            Ok(bytes) => eprintln!(
                "detectors' state saved for the next run ({:.1} MB in {:.2} s)",
                bytes as f64 / 1e6,
                started.elapsed().as_secs_f64()
            ),
            Err(e) => eprintln!("warning: the detectors' state was not saved for the next run: {e:#}"),
        }
    }
    if let Some(e) = reject_error {
        return Err(e).with_context(|| format!("writing {}", rejects_path.display()));
    }
    let TerminalSink {
        series, bar, persist, ..
    } = sink;
    *shared_progress.lock().unwrap_or_else(|e| e.into_inner()) = summary.progress;
    stop.store(true, Ordering::Relaxed);
    if let Some(webhooks) = webhooks {
        let _ = webhooks.join();
    }
    if let Some(watcher) = watcher {
        let _ = watcher.join();
    }
    let _ = status.join();
    bar.finish_and_clear();
    rejects.flush()?;
    if detect.is_none() {
        data.save_keyring(&keyring)?;
    }

    let names = live.current().set.names();
    let totals = series.totals.clone();
    series
        .finish()
        .with_context(|| format!("writing series in {}", out_dir.display()))?;
    for f in &summary.files {
        match (&f.format, &f.error) {
            (_, Some(e)) => eprintln!("{}: {e}", f.path),
            (Some(fmt), None) => eprintln!("{}: read as {fmt} ({})", f.path, f.detection),
            _ => {}
        }
    }
    let p = summary.progress;
    let secs = p.elapsed.as_secs_f64().max(1e-9);
    println!(
        "{} posts in {:.2} s ({:.0} posts/s), {} matched at least one of {} feeds; {} late, {} bad records ({}), {} deletions",
        thousands(p.posts),
        secs,
        p.posts as f64 / secs,
        thousands(p.matched),
        live.current().set.len(),
        thousands(p.late),
        thousands(p.rejected),
        rejects_path.display(),
        thousands(p.deletions)
    );
    let totals_store = persist.totals();
    if !persist.store().indexes_posts() {
        println!(
            "stored in {}: commit {}, {} posts counted (no post index: the cluster's shards hold the posts), {} already counted before (skipped)",
            data.path().display(),
            committed.seq,
            thousands(totals_store.posts),
            thousands(totals_store.duplicates),
        );
    } else {
        println!(
        "stored in {}: commit {}, {} posts indexed ({} in the index), {} already stored before (skipped), {} deletions applied{}",
        data.path().display(),
        committed.seq,
        thousands(totals_store.posts),
        thousands(persist.store().index().num_docs()),
        thousands(totals_store.duplicates),
        thousands(totals_store.deletions),
        totals_store
            .retention_cutoff
            .map_or(String::new(), |t| format!(", posts before {t} expired"))
    );
    }
    for f in &summary.files {
        if f.resumed > 0 {
            eprintln!(
                "{}: {} events already stored by an earlier run were skipped",
                f.path,
                thousands(f.resumed)
            );
        }
    }
    let mut ranked: Vec<(usize, u64)> = totals.iter().copied().enumerate().filter(|(_, c)| *c > 0).collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    for (id, count) in ranked.iter().take(20) {
        println!(
            "  {:>10}  {}",
            thousands(*count),
            names.get(*id).map_or("?", String::as_str)
        );
    }
    // Which feeds cost the most to verify: what to look at when a run is slow.
    let stats_path = out_dir.join("feed-stats.csv");
    let mut w = std::io::BufWriter::new(
        std::fs::File::create(&stats_path).with_context(|| format!("creating {}", stats_path.display()))?,
    );
    writeln!(
        w,
        "feed_name,matched,candidates,candidate_rate,mean_verify_ns,est_verify_ms"
    )?;
    let posts = summary.match_stats.posts.max(1) as f64;
    for (id, s) in summary.match_stats.slowest(usize::MAX) {
        writeln!(
            w,
            "\"{}\",{},{},{:.6},{:.0},{:.3}",
            names.get(id as usize).map_or("?", String::as_str).replace('"', "\"\""),
            s.matched,
            s.candidates,
            s.candidates as f64 / posts,
            s.mean_verify_nanos(),
            s.est_verify_nanos() / 1e6
        )?;
    }
    w.flush()?;
    let slowest = summary.match_stats.slowest(1);
    match slowest.first() {
        // Feeds whose terms decide a match alone are never verified, and
        // one verification in TIMING_SAMPLE is timed: a run may time none,
        // and then there is no slowest feed to name.
        Some((_, s)) if s.timed == 0 => println!(
            "no feed verification was timed (one in {} is; feeds matched by their terms alone need none); all in {}",
            tidewatch_core::matcher::TIMING_SAMPLE,
            stats_path.display()
        ),
        Some((id, s)) => println!(
            "slowest feed to verify: {} ({} candidates, {:.0} ns each); all in {}",
            names.get(*id as usize).map_or("?", String::as_str),
            thousands(s.candidates),
            s.mean_verify_nanos(),
            stats_path.display()
        ),
        None => {}
    }
    println!("series written to {}", out_dir.display());
    // Failure when no input gave anything: all unreadable, or not posts.
    // Inputs an earlier run already stored count as read.
    for st in source_stats.iter().map(|s| s.status()) {
        println!(
            "source {} ({}): {} events, {} posts, {} deletions, {} rejected, {} malformed, {} reconnects, {} errors{}",
            st.name,
            st.kind,
            thousands(st.events),
            thousands(st.posts),
            thousands(st.deletions),
            thousands(st.rejected),
            thousands(st.malformed),
            st.reconnects,
            st.errors,
            st.last_error
                .as_deref()
                .map_or(String::new(), |e| format!("; last error: {e}"))
        );
        for g in &st.gaps {
            println!("  GAP in {}: {}", st.name, g.what);
        }
    }
    after(&persist)?;
    if let Some(server) = server {
        if args.keep_serving && !interrupted.load(Ordering::Relaxed) && !server.is_finished() {
            match served_at.get() {
                Some(addr) => println!("the inputs are done; the dashboard stays up at http://{addr}/ until Ctrl-C"),
                None => println!("the inputs are done; the server stays up until Ctrl-C"),
            }
            while !interrupted.load(Ordering::Relaxed) && !server.is_finished() {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        server_stop.store(true, Ordering::Relaxed);
        match server.join() {
            Ok(Err(e)) => eprintln!("the API server stopped: {e}"),
            Err(_) => eprintln!("the API server's thread panicked"),
            Ok(Ok(())) => {}
        }
    }
    // A run of live sources succeeds when it ends as asked, even quiet.
    let read_anything = !source_stats.is_empty()
        || summary
            .files
            .iter()
            .any(|f| f.posts + f.deletions + f.ignored + f.resumed > 0);
    Ok(if read_anything {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use tidewatch_engine::state::InputAt;

    #[test]
    fn a_replay_reads_this_runs_files_and_replaying_sources_from_the_checkpoint_to_the_store() {
        use tidewatch_sources::jetstream::JetstreamConfig;
        use tidewatch_sources::mastodon::{MastodonConfig, Timeline};
        use tidewatch_sources::nats::NatsPartitionConfig;
        let at = |events, offset| Resume {
            events,
            done: false,
            offset,
        };
        let then = |events, offset| InputAt { events, offset };
        let checkpoint = InputPositions::from([
            ("a.jsonl".to_string(), then(5, Some(500))),
            ("d.jsonl".to_string(), then(2, Some(200))),
            ("source:bsky".to_string(), then(10, Some(1_700_000_000_000_000))),
            ("source:detect".to_string(), then(40, Some(52))),
            ("source:masto".to_string(), then(3, Some(900))),
        ]);
        let store = HashMap::from([
            ("a.jsonl".to_string(), at(9, Some(900))),
            ("b.jsonl".to_string(), at(3, Some(300))),
            ("c.jsonl".to_string(), at(4, Some(400))),
            ("d.jsonl".to_string(), at(2, Some(200))),
            ("source:bsky".to_string(), at(12, Some(1_700_000_000_500_000))),
            ("source:detect".to_string(), at(45, Some(61))),
            ("source:masto".to_string(), at(7, Some(950))),
            ("source:gone".to_string(), at(7, Some(950))),
        ]);
        let files = file_inputs(&["a.jsonl", "b.jsonl", "d.jsonl", "-"].map(PathBuf::from));
        let specs = [
            SourceSpec::Jetstream(JetstreamConfig::new("bsky", vec!["ws://x/subscribe".to_string()])),
            SourceSpec::Nats(NatsPartitionConfig::new(
                "detect",
                "nats://x",
                "TIDEWATCH",
                "tidewatch.posts.*",
                "tw-detect",
            )),
            SourceSpec::Mastodon(MastodonConfig::new(
                "masto",
                "https://m.example",
                Timeline::Public { local: false },
            )),
        ];
        let replay = Replay::between(&checkpoint, &store, &files, &specs);
        let from: BTreeMap<&str, u64> = replay.from.iter().map(|(k, r)| (k.as_str(), r.events)).collect();
        let until: BTreeMap<&str, u64> = replay.until.iter().map(|(k, &e)| (k.as_str(), e)).collect();
        // Files are read again by events, from the start.
        assert_eq!(from, BTreeMap::from([("a.jsonl", 5), ("b.jsonl", 0)]));
        assert!(replay.from.values().all(|r| r.offset.is_none()));
        assert_eq!(until, BTreeMap::from([("a.jsonl", 9), ("b.jsonl", 3)]));
        // Jetstream by time_us and the posts stream by stream sequence,
        // after the checkpoint's cursor up to the store's.
        let live: Vec<String> = replay
            .live
            .iter()
            .map(|(spec, at, _)| match spec {
                SourceSpec::Jetstream(c) => format!("{} {:?} {:?} {:?}", c.name, at.events, at.offset, c.until_us),
                SourceSpec::Nats(c) => format!(
                    "{} {} {:?} {:?} {:?}",
                    c.name, c.consumer, at.events, at.offset, c.until
                ),
                other => panic!("{} cannot be read again", other.name()),
            })
            .collect();
        assert_eq!(
            live,
            [
                "bsky 10 Some(1700000000000000) Some(1700000000500000)",
                "detect tw-detect-replay 40 Some(52) Some(61)",
            ]
        );
        // Mastodon cannot replay; `gone` and `c.jsonl` are not in this run.
        assert_eq!(replay.blind, ["c.jsonl", "source:gone", "source:masto"]);
    }
}
