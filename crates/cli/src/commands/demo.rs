//! `tidewatch demo`: the README's first command. Generates a realistic
//! multi-day stream with planted events (`tidewatch gen`), replays it
//! through the whole pipeline at accelerated event time (one simulated day
//! per minute by default), serves the dashboard and the API while it runs,
//! and prints each detected event as it happens.
//!
//! The demo is `tidewatch run` with presets: a generated input paced by a
//! [`ReplayClock`], one detection feed per generated topic and planted
//! emerging topic (written to a feeds file the dashboard can edit),
//! narratives and coordination on, commits every three seconds, anonymous reads
//! on loopback. At the end it sets each planted event beside what the
//! detectors found, then keeps serving until Ctrl-C.

use crate::commands::gen::write_stream;
use crate::commands::run as run_cmd;
use crate::output::thousands;
use anyhow::{Context, Result};
use std::io::BufWriter;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, OnceLock};
use tidewatch_core::Timestamp;
use tidewatch_engine::alerts::{current_alerts, AlertRecord};
use tidewatch_engine::datadir::DETECTOR_STATE_FILE;
use tidewatch_engine::feeds::{feeds_toml, FeedDef};
use tidewatch_engine::persist::Persister;
use tidewatch_engine::replay::ReplayClock;
use tidewatch_gen::{EventKind, GenConfig, Generator, Truth, PUBLIC_ACCOUNTS};
use tidewatch_store::Store;

/// One simulated day per minute.
pub const DEFAULT_SPEED: f64 = 1440.0;

#[derive(clap::Args)]
pub struct Args {
    /// Port of the dashboard and API on 127.0.0.1 (0: any free port).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Data directory to keep the demo's store in (an earlier demo's store
    /// there is replaced) [default: a fresh temporary directory, removed
    /// at the end].
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Event time runs this many times faster than real time (1440: one
    /// simulated day per minute).
    #[arg(long, default_value_t = DEFAULT_SPEED, value_parser = run_cmd::parse_speed)]
    pub speed: f64,
    /// Posts to generate.
    #[arg(long, default_value_t = 1_000_000)]
    pub posts: u64,
    /// Simulated days.
    #[arg(long, default_value_t = 3)]
    pub days: u32,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Exit once the stream is replayed instead of serving until Ctrl-C.
    #[arg(long)]
    pub exit_when_done: bool,
}

/// What a prepared demo runs on: its data directory, generated input and
/// feeds, and the generator's ground truth.
pub struct Prepared {
    /// Holds the temporary directories until the demo ends.
    _temp: Vec<tempfile::TempDir>,
    pub data: PathBuf,
    pub stream: PathBuf,
    pub feeds: PathBuf,
    pub public_accounts: PathBuf,
    pub truth: Truth,
    /// The data directory is deleted when the demo ends.
    pub data_is_temporary: bool,
}

/// Generates the stream and writes the feeds for a demo.
pub fn prepare(data: Option<&Path>, posts: u64, days: u32, seed: u64) -> Result<Prepared> {
    let mut temp = Vec::new();
    let data_is_temporary = data.is_none();
    let data = match data {
        Some(d) => {
            clear_demo_store(d)?;
            std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
            d.to_path_buf()
        }
        None => {
            let t = tempfile::Builder::new().prefix("tidewatch-demo-").tempdir()?;
            let p = t.path().to_path_buf();
            temp.push(t);
            p
        }
    };
    // The input lives beside the store, not in it: the store holds only
    // what tidewatch keeps (pseudonymised, redacted).
    let input = tempfile::Builder::new().prefix("tidewatch-demo-input-").tempdir()?;
    let stream = input.path().join("stream.jsonl");
    let public_accounts = input.path().join("public-accounts.txt");
    temp.push(input);

    let gen = Generator::new(&GenConfig {
        posts,
        days,
        seed,
        ..Default::default()
    });
    let truth = gen.truth();
    eprintln!(
        "generating {} posts over {days} simulated days (seed {seed}) with {} planted events...",
        thousands(posts),
        truth.events.len()
    );
    let file = std::fs::File::create(&stream).with_context(|| format!("creating {}", stream.display()))?;
    write_stream(gen, &mut BufWriter::new(file))?;
    std::fs::write(&public_accounts, PUBLIC_ACCOUNTS.join("\n"))?;

    let feeds = data.join("feeds.toml");
    std::fs::write(&feeds, feeds_toml(&demo_feeds(&truth))).with_context(|| format!("writing {}", feeds.display()))?;
    Ok(Prepared {
        _temp: temp,
        data,
        stream,
        feeds,
        public_accounts,
        truth,
        data_is_temporary,
    })
}

/// One feed per background topic and one per planted emerging topic.
fn demo_feeds(truth: &Truth) -> Vec<FeedDef> {
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
    defs
}

/// The `run` arguments of a demo over `p`.
pub fn run_args(p: &Prepared, port: u16, clock: Arc<ReplayClock>, keep_serving: bool) -> run_cmd::Args {
    run_cmd::Args {
        paths: vec![p.stream.clone()],
        config: None,
        feeds: Some(p.feeds.clone()),
        data: Some(p.data.clone()),
        out: None,
        format: "canonical".into(),
        csv: None,
        lateness_minutes: 5,
        public_accounts: Some(p.public_accounts.clone()),
        threads: None,
        // The stream spans a few days: keep all of it searchable.
        retention_days: Some(0),
        // Commit often: the dashboard's pages read what is committed (alerts
        // reach its live list at once). Every 3 s rather than every second:
        // each commit makes an index segment to merge later, and at the
        // 1 s interval that cost 10-20% of the demo's throughput.
        commit_ms: Some(3000),
        // The default (set aside when the store is temporary).
        checkpoint_secs: None,
        until_idle: None,
        narratives: true,
        coordination: true,
        narrative_memory: Default::default(),
        serve: Some(SocketAddr::from((Ipv4Addr::LOCALHOST, port))),
        anonymous_read: true,
        allow_private_webhooks: false,
        keep_serving,
        speed: None,
        replay: Some(clock),
        served: Some(Arc::new(OnceLock::new())),
        cluster: Default::default(),
        discard_state: p.data_is_temporary,
    }
}

pub fn run(args: Args) -> Result<ExitCode> {
    let prepared = prepare(args.data.as_deref(), args.posts, args.days, args.seed)?;
    let clock = Arc::new(ReplayClock::new(args.speed));
    let minutes = (args.days as f64 * 1440.0 / args.speed).max(0.0);
    println!(
        "replaying {} simulated days at {}x ({:.1} minutes); data in {}{}",
        args.days,
        args.speed,
        minutes,
        prepared.data.display(),
        if args.data.is_none() {
            " (temporary: give --data DIR to keep it)"
        } else {
            ""
        }
    );
    println!("detected events (event time):");
    let run_args = run_args(&prepared, args.port, clock, !args.exit_when_done);
    let truth = &prepared.truth;
    run_cmd::run_with(run_args, &mut |persist| report_planted(truth, persist))
}

/// Sets each planted event beside what the feeds and detectors saw.
fn report_planted(truth: &Truth, persist: &Persister) -> Result<()> {
    let db = persist.store().db();
    let alerts = current_alerts(db, None)?;
    let feeds: Vec<(String, u32)> = db.feeds()?.into_iter().map(|f| (f.name, f.id)).collect();
    let id_of = |name: &str| feeds.iter().find(|(n, _)| n == name).map(|(_, id)| *id);
    println!("\nplanted events and what the detectors saw:");
    for e in &truth.events {
        let label = format!("{} {:?} {}..{}", e.id, e.kind, e.start, e.end);
        let name = match e.kind {
            EventKind::Burst => e.topic.clone(),
            EventKind::EmergingTopic => Some(e.id.clone()),
            _ => None,
        };
        let Some((name, feed)) = name.and_then(|n| id_of(&n).map(|id| (n, id))) else {
            println!(
                "  {label}: a campaign of {} posts by {} accounts (see the coordinated groups)",
                thousands(e.size),
                e.accounts.len()
            );
            continue;
        };
        // The store keeps minutes as unix minutes.
        let start = e.start.0 / Timestamp::MINUTE;
        let series = db.feed_minutes(feed, start - 6 * 60, e.end.0 / Timestamp::MINUTE + 1)?;
        let peak = series
            .iter()
            .filter(|(t, _)| *t >= start)
            .map(|(_, c)| c.posts)
            .max()
            .unwrap_or(0);
        let before: Vec<i64> = series
            .iter()
            .filter(|(t, _)| *t < start)
            .map(|(_, c)| c.posts)
            .collect();
        let typical = median(&before);
        let ratio = if typical > 0 {
            format!(" (x{:.1})", peak as f64 / typical as f64)
        } else {
            String::new()
        };
        let verdict = match matching_alert(&alerts, &name, e.start) {
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
    Ok(())
}

/// An alert of feed `name` whose onset is within 5 minutes of `start`.
fn matching_alert<'a>(alerts: &'a [AlertRecord], name: &str, start: Timestamp) -> Option<&'a AlertRecord> {
    alerts
        .iter()
        .find(|a| a.feed_name == name && (a.spike.onset.0 - start.0).abs() <= 5 * Timestamp::MINUTE)
}

fn median(v: &[i64]) -> i64 {
    if v.is_empty() {
        return 0;
    }
    let mut s = v.to_vec();
    s.sort_unstable();
    s[s.len() / 2]
}

/// Removes the store of an earlier demo in `dir` (only tidewatch's own
/// files), so each demo starts from an empty history.
fn clear_demo_store(dir: &Path) -> Result<()> {
    let db = Store::db_path(dir);
    if !db.exists() {
        return Ok(());
    }
    eprintln!("replacing the earlier demo's store in {}", dir.display());
    for name in [
        "tidewatch.db",
        "tidewatch.db-wal",
        "tidewatch.db-shm",
        "keyring.json",
        "status.json",
        "feeds.toml",
        DETECTOR_STATE_FILE,
    ] {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_earlier_demo_store_is_cleared_state_included_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for name in ["tidewatch.db", "keyring.json", DETECTOR_STATE_FILE, "notes.txt"] {
            std::fs::write(d.join(name), b"x").unwrap();
        }
        std::fs::create_dir_all(Store::index_dir(d)).unwrap();
        std::fs::create_dir_all(d.join("series")).unwrap();
        clear_demo_store(d).unwrap();
        let mut left: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        // The saved state of the earlier demo would otherwise meet the new
        // store and be refused with a warning on the next run.
        assert_eq!(left, ["notes.txt"]);
    }

    #[test]
    fn a_directory_without_a_store_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(DETECTOR_STATE_FILE), b"x").unwrap();
        clear_demo_store(dir.path()).unwrap();
        assert!(dir.path().join(DETECTOR_STATE_FILE).exists());
    }
}
