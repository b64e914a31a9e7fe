//! `tidewatch run`: the end-to-end pipeline — decode, enrich, match every
//! post against the detection feeds, and keep per-feed event-time series.

use crate::commands::ingest::{default_threads, load_public_accounts, parse_csv_mapping, parse_format};
use crate::output::{spinner, thousands};
use anyhow::{Context, Result};
use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tidewatch_core::emerging::EmergingConfig;
use tidewatch_core::pseudonym::Keyring;
use tidewatch_core::pseudonym::PseudonymConfig;
use tidewatch_core::spike::SpikeConfig;
use tidewatch_core::window::WindowConfig;
use tidewatch_core::window::WindowView;
use tidewatch_core::Deletion;
use tidewatch_core::Timestamp;
use tidewatch_engine::alerts::{AlertLog, SpikeAlerts};
use tidewatch_engine::datadir::{DataDir, DEFAULT_DATA_DIR};
use tidewatch_engine::decode::{DecodeOptions, Position, Resume};
use tidewatch_engine::feeds::{load_feeds, FeedDef, FeedSet};
use tidewatch_engine::live::LiveFeeds;
use tidewatch_engine::persist::{resume_points, CommitPolicy, Persister};
use tidewatch_engine::run::{self, MatchedPost, RunConfig, RunProgress, RunSink, SinkError};
use tidewatch_engine::series::SeriesWriter;
use tidewatch_engine::topics::TopicWatch;
use tidewatch_store::{Store, StoreConfig};

#[derive(clap::Args)]
pub struct Args {
    /// Input files (`-` for standard input), any supported format.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// The feeds file (TOML: `[[feed]] name = "...", query = "..."`). It is
    /// re-read when it changes during the run.
    #[arg(long)]
    pub feeds: PathBuf,
    /// The data directory (keyring; series go to DATA/series unless --out).
    #[arg(long, default_value = DEFAULT_DATA_DIR)]
    pub data: PathBuf,
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
    /// older ones are deleted, their aggregates stay. 0 keeps every post.
    #[arg(long, default_value_t = 30)]
    pub retention_days: u32,
    /// Milliseconds between store commits (a crash re-reads at most this
    /// much input).
    #[arg(long, default_value_t = 5000)]
    pub commit_ms: u64,
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
    let config = StoreConfig {
        retention_ms: (retention_days > 0).then(|| retention_days as i64 * Timestamp::DAY),
        ..Default::default()
    };
    let (store, recovery) =
        Store::open(data.path(), config).with_context(|| format!("opening the store in {}", data.path().display()))?;
    if let Some(batch) = recovery.rolled_back {
        eprintln!(
            "recovered {}: commit {batch} was interrupted and is rolled back; inputs resume at commit {}",
            data.path().display(),
            recovery.seq
        );
    }
    let known: Vec<(String, u32)> = store.db().feeds()?.into_iter().map(|f| (f.name, f.id)).collect();
    let live = Arc::new(LiveFeeds::from_set(FeedSet::with_known_ids(&known, defs)?));
    let resume = resume_points(&store)?;
    let persister = Persister::new(store, paths, live.clone(), data.clone(), keyring.clone(), commit)?;
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
    persist: Persister,
    live: Arc<LiveFeeds>,
    bar: indicatif::ProgressBar,
    names_version: u64,
}

impl RunSink for TerminalSink {
    fn post(&mut self, post: &MatchedPost) {
        self.series.post(post);
        self.persist.post(post);
        for rec in self.topics.post(post) {
            self.say(&rec.summary());
        }
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
            if self.bar.is_hidden() {
                println!("{}", rec.summary());
            } else {
                self.bar.println(rec.summary());
            }
        }
        self.persist.alerts(self.alerts.take_pending());
    }

    fn batch_end(&mut self, at: &Position, finished: &[Position]) -> Result<(), SinkError> {
        self.persist.topics(self.topics.take_pending());
        self.persist.batch_end(at, finished)
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
        self.bar.set_message(format!(
            "{} posts, {:.0} posts/s, {} matched, watermark {}; top feeds last minute: {}",
            thousands(p.posts),
            p.posts as f64 / secs,
            thousands(p.matched),
            p.watermark.map_or("-".into(), |t| t.to_string()),
            top.join(", ")
        ));
    }
}

impl TerminalSink {
    /// A line above the live summary.
    fn say(&self, line: &str) {
        if self.bar.is_hidden() {
            println!("{line}");
        } else {
            self.bar.println(line);
        }
    }
}

pub fn run(args: Args) -> Result<ExitCode> {
    let defs = load_feeds(&args.feeds)?;
    let data = DataDir::open(&args.data)?;
    let keyring = Arc::new(data.load_keyring(PseudonymConfig::default())?);
    let policy = CommitPolicy {
        interval: Duration::from_millis(args.commit_ms),
        ..Default::default()
    };
    let (persist, live, resume) = open_store(&data, &args.paths, &defs, &keyring, args.retention_days, policy)?;
    let cfg = RunConfig {
        decode: DecodeOptions {
            format: parse_format(&args.format)?,
            csv_mapping: args.csv.as_deref().map(parse_csv_mapping).transpose()?,
            resume,
            ..Default::default()
        },
        threads: args.threads.unwrap_or_else(default_threads),
        keyring: keyring.clone(),
        public_accounts: Arc::new(load_public_accounts(args.public_accounts.as_ref())?),
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
    let watcher = watch_feeds(args.feeds.clone(), live.clone(), stop.clone());
    let alerts = SpikeAlerts::new(SpikeConfig::default(), AlertLog::open(persist.store().db())?);
    let topics = TopicWatch::open(EmergingConfig::default(), persist.store().db())?;
    let mut sink = TerminalSink {
        series,
        alerts,
        topics,
        persist,
        live: live.clone(),
        bar: spinner(),
        names_version: live.current().version(),
    };
    let mut reject_error = None;
    let summary = run::run(&args.paths, &cfg, &live, &mut sink, &mut |r| {
        if reject_error.is_none() {
            if let Err(e) = writeln!(rejects, "{r}") {
                reject_error = Some(e);
            }
        }
    });
    // Whatever happened, what was processed is committed.
    for rec in sink.topics.finish() {
        sink.say(&rec.summary());
    }
    sink.persist.topics(sink.topics.take_pending());
    let committed = sink.persist.commit();
    let summary = summary
        .map_err(|e| anyhow::anyhow!("{e}"))
        .context("writing to the store")?;
    let committed = committed.context("committing to the store")?;
    if let Some(e) = reject_error {
        return Err(e).with_context(|| format!("writing {}", rejects_path.display()));
    }
    let TerminalSink {
        series, bar, persist, ..
    } = sink;
    stop.store(true, Ordering::Relaxed);
    let _ = watcher.join();
    bar.finish_and_clear();
    rejects.flush()?;
    data.save_keyring(&keyring)?;

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
    if let Some((id, s)) = summary.match_stats.slowest(1).first() {
        println!(
            "slowest feed to verify: {} ({} candidates, {:.0} ns each); all in {}",
            names.get(*id as usize).map_or("?", String::as_str),
            thousands(s.candidates),
            s.mean_verify_nanos(),
            stats_path.display()
        );
    }
    println!("series written to {}", out_dir.display());
    // Failure when no input gave anything: all unreadable, or not posts.
    // Inputs an earlier run already stored count as read.
    let read_anything = summary
        .files
        .iter()
        .any(|f| f.posts + f.deletions + f.ignored + f.resumed > 0);
    Ok(if read_anything {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
