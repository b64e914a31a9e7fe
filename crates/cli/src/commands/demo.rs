//! `tidewatch demo`: the README's first command. Generates a realistic
//! multi-day stream with planted events, runs it through the whole pipeline
//! (decode, pseudonymise, enrich, match one detection feed per topic,
//! event-time windows), writes the per-feed series, and shows how each
//! planted burst and emerging topic stands out in its feed's series.

use crate::commands::gen::write_stream;
use crate::commands::ingest::default_threads;
use crate::commands::run::open_store;
use crate::output::thousands;
use anyhow::Context;
use anyhow::Result;
use std::collections::HashMap;
use std::io::BufWriter;
use std::path::Path;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use tidewatch_core::emerging::EmergingConfig;
use tidewatch_core::pseudonym::PseudonymConfig;
use tidewatch_core::redact::PublicAccounts;
use tidewatch_core::spike::SpikeConfig;
use tidewatch_core::window::{Resolution, WindowConfig, WindowView};
use tidewatch_core::Deletion;
use tidewatch_core::Timestamp;
use tidewatch_engine::alerts::{AlertLog, AlertRecord, SpikeAlerts};
use tidewatch_engine::datadir::DataDir;
use tidewatch_engine::decode::DecodeOptions;
use tidewatch_engine::decode::Position;
use tidewatch_engine::feeds::FeedDef;
use tidewatch_engine::persist::{CommitPolicy, Persister};
use tidewatch_engine::run::SinkError;
use tidewatch_engine::run::{self, MatchedPost, RunConfig, RunSink};
use tidewatch_engine::series::SeriesWriter;
use tidewatch_engine::topics::TopicWatch;
use tidewatch_gen::{EventKind, GenConfig, Generator, PUBLIC_ACCOUNTS};
use tidewatch_ingest::Format;
use tidewatch_store::Store;

#[derive(clap::Args)]
pub struct Args {
    /// Data directory. The demo's store (index, aggregates, alerts) is
    /// replaced on every demo run, so `tidewatch search --data DIR` and
    /// `tidewatch alerts --data DIR` show the latest demo.
    #[arg(long, default_value = "tidewatch-demo")]
    pub data: PathBuf,
    /// Posts to generate.
    #[arg(long, default_value_t = 1_000_000)]
    pub posts: u64,
    /// Simulated days.
    #[arg(long, default_value_t = 3)]
    pub days: u32,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// Writes the series, prints alerts as they happen, and keeps per-feed
/// minute counts for the summary.
struct DemoSink {
    series: SeriesWriter,
    alerts: SpikeAlerts,
    topics: TopicWatch,
    names: Vec<String>,
    raised: Vec<AlertRecord>,
    persist: Persister,
    minutes: HashMap<u32, Vec<(i64, u64)>>,
}

impl RunSink for DemoSink {
    fn post(&mut self, post: &MatchedPost) {
        self.series.post(post);
        self.persist.post(post, None);
        for rec in self.topics.post(post) {
            println!("{}", rec.summary());
        }
    }

    fn deletion(&mut self, deletion: &Deletion) {
        self.persist.deletion(deletion);
    }

    fn window(&mut self, w: &WindowView<'_>) {
        if w.resolution() == Resolution::Minute {
            self.minutes.entry(w.feed()).or_default().push((w.start().0, w.count()));
        }
        self.series.window(w);
        let names = &self.names;
        for rec in self
            .alerts
            .window(w, |id| names.get(id as usize).cloned().unwrap_or_default())
        {
            println!("{}", rec.summary());
            self.raised.push(rec);
        }
        self.persist.alerts(self.alerts.take_pending());
    }

    fn batch_end(&mut self, at: &Position, finished: &[Position]) -> Result<(), SinkError> {
        self.persist.topics(self.topics.take_pending());
        self.persist.batch_end(at, finished)
    }
}

/// Removes the store of an earlier demo in `dir` (only tidewatch's own
/// files), so each demo starts from an empty history.
fn clear_demo_store(dir: &Path) -> Result<()> {
    let db = Store::db_path(dir);
    if !db.exists() {
        return Ok(());
    }
    eprintln!("replacing the earlier demo's store in {}", dir.display());
    for name in ["tidewatch.db", "tidewatch.db-wal", "tidewatch.db-shm", "keyring.json"] {
        let p = dir.join(name);
        if p.exists() {
            std::fs::remove_file(&p).with_context(|| format!("removing {}", p.display()))?;
        }
    }
    for sub in [Store::index_dir(dir), dir.join("series")] {
        if sub.exists() {
            std::fs::remove_dir_all(&sub).with_context(|| format!("removing {}", sub.display()))?;
        }
    }
    Ok(())
}

pub fn run(args: Args) -> Result<ExitCode> {
    let tmp = tempfile::tempdir()?;
    let data_path = args.data.clone();
    clear_demo_store(&data_path)?;
    let data = DataDir::open(&data_path)?;
    let raw = tmp.path().join("stream.jsonl");

    let gen = Generator::new(&GenConfig {
        posts: args.posts,
        days: args.days,
        seed: args.seed,
        ..Default::default()
    });
    let truth = gen.truth();
    eprintln!(
        "generating {} posts over {} simulated days (seed {}), with {} planted events...",
        thousands(args.posts),
        args.days,
        args.seed,
        truth.events.len()
    );
    write_stream(gen, &mut BufWriter::new(std::fs::File::create(&raw)?))?;

    // One feed per background topic, one per planted emerging topic.
    let mut defs: Vec<FeedDef> = truth
        .topics
        .iter()
        .map(|t| FeedDef {
            name: t.name.clone(),
            query: t.query.clone(),
        })
        .collect();
    for e in truth.events.iter().filter(|e| e.kind == EventKind::EmergingTopic) {
        if let Some(q) = &e.query {
            defs.push(FeedDef {
                name: e.id.clone(),
                query: q.clone(),
            });
        }
    }
    let keyring = Arc::new(data.load_keyring(PseudonymConfig::default())?);
    let paths = [raw];
    // The demo's stream spans a few days: keep all of it in the index.
    let (persist, live, _) = open_store(&data, &paths, &defs, &keyring, 0, CommitPolicy::default())?;
    let cfg = RunConfig {
        decode: DecodeOptions {
            format: Some(Format::Canonical),
            ..Default::default()
        },
        threads: default_threads(),
        keyring: keyring.clone(),
        public_accounts: Arc::new(PublicAccounts::new(PUBLIC_ACCOUNTS.iter())),
        undated_time: Timestamp(chrono::Utc::now().timestamp_millis()),
        window: WindowConfig::default(),
    };
    let series_dir = data_path.join("series");
    let names = live.current().set.names();
    let mut sink = DemoSink {
        series: SeriesWriter::create(&series_dir, names.clone())?,
        alerts: SpikeAlerts::new(SpikeConfig::default(), AlertLog::open(persist.store().db())?),
        topics: TopicWatch::open(EmergingConfig::default(), persist.store().db())?,
        names: names.clone(),
        raised: Vec::new(),
        persist,
        minutes: HashMap::new(),
    };
    println!("live alerts and emerging topics (event time):");
    let summary = run::run(&paths, &cfg, &live, &mut sink, &mut |r| eprintln!("{r}"));
    for rec in sink.topics.finish() {
        println!("{}", rec.summary());
    }
    sink.persist.topics(sink.topics.take_pending());
    let committed = sink.persist.commit();
    let summary = summary
        .map_err(|e| anyhow::anyhow!("{e}"))
        .context("writing to the store")?;
    committed.context("committing to the store")?;
    let DemoSink {
        series,
        raised,
        minutes,
        persist,
        ..
    } = sink;
    series.finish()?;
    let p = summary.progress;
    let secs = p.elapsed.as_secs_f64();
    println!(
        "pipeline: {} posts decoded, pseudonymised, enriched, matched against {} feeds and windowed in {:.2} s ({:.0} posts/s on {} threads)",
        thousands(p.posts),
        defs.len(),
        secs,
        p.posts as f64 / secs,
        cfg.threads
    );
    println!("series per feed and minute/hour/day: {}", series_dir.display());
    println!(
        "stored: {} posts in the index, aggregates and alerts in {} (try `tidewatch alerts --data {dir}`, `tidewatch topics --data {dir}` and `tidewatch search --data {dir} 'earthquake'`)",
        thousands(persist.store().index().num_docs()),
        Store::db_path(&data_path).display(),
        dir = data_path.display()
    );

    // How each planted volume event shows in its feed's minute series.
    let id_of = |name: &str| names.iter().position(|n| n == name).map(|i| i as u32);
    println!("\nplanted events and what the feeds saw:");
    for e in &truth.events {
        let feed = match e.kind {
            EventKind::Burst => e.topic.as_deref().and_then(id_of),
            EventKind::EmergingTopic => id_of(&e.id),
            _ => None,
        };
        let label = format!("{} {:?} {}..{}", e.id, e.kind, e.start, e.end);
        let Some(series) = feed.and_then(|f| minutes.get(&f)) else {
            println!(
                "  {label}: a campaign of {} posts by {} accounts (not a volume event: no feed spikes)",
                thousands(e.size),
                e.accounts.len()
            );
            continue;
        };
        let inside: Vec<u64> = series
            .iter()
            .filter(|(t, _)| *t >= e.start.0 && *t < e.end.0)
            .map(|(_, c)| *c)
            .collect();
        let before: Vec<u64> = series
            .iter()
            .filter(|(t, _)| *t < e.start.0 && *t >= e.start.0 - 6 * Timestamp::HOUR)
            .map(|(_, c)| *c)
            .collect();
        let peak = inside.iter().copied().max().unwrap_or(0);
        let typical = median(&before);
        let name = feed.and_then(|f| names.get(f as usize)).map_or("?", |s| s.as_str());
        // An alert on this feed whose onset is within 5 minutes of the planted start.
        let alert = raised.iter().find(|a| {
            a.kind == "opened" && a.feed_name == name && (a.spike.onset.0 - e.start.0).abs() <= 5 * Timestamp::MINUTE
        });
        let ratio = if typical > 0 {
            format!(" (x{:.1})", peak as f64 / typical as f64)
        } else {
            String::new()
        };
        let verdict = match alert {
            Some(a) => format!("alert {} from {}", a.id, a.spike.onset),
            None if e.kind == EventKind::EmergingTopic => {
                "a slow rise for emerging-topic detection, not a spike".into()
            }
            None => "no alert".into(),
        };
        println!(
            "  {label}: feed {name:?} peaks at {peak}/min against a typical {typical}/min before it{ratio}; {verdict}"
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn median(v: &[u64]) -> u64 {
    if v.is_empty() {
        return 0;
    }
    let mut s = v.to_vec();
    s.sort_unstable();
    s[s.len() / 2]
}
