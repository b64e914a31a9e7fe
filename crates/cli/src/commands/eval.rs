//! `tidewatch eval`: detectors measured against labelled data.

use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use tidewatch_core::pseudonym::{Keyring, PseudonymConfig};
use tidewatch_core::redact::PublicAccounts;
use tidewatch_core::window::WindowConfig;
use tidewatch_core::{lang, Post, Timestamp};
use tidewatch_engine::feeds::load_feeds;
use tidewatch_engine::live::LiveFeeds;
use tidewatch_engine::run::{PostProcessor, RunConfig};

#[derive(clap::Subcommand)]
pub enum Eval {
    /// Language detection accuracy on canonical posts that carry a gold tag
    /// (the tag is hidden from the detector).
    Lang {
        /// Canonical JSON Lines; gold from `labels.language` (a name or code), else `lang`.
        path: PathBuf,
        /// Gold languages left out of the headline accuracy (still reported).
        #[arg(long, value_delimiter = ',', default_value = "hi")]
        exclude: Vec<String>,
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Precision and recall of detection feeds against labelled posts: each
    /// feed is judged on the posts whose GROUP label equals the feed's name.
    Feeds {
        /// The feeds file; feed names are values of the group label.
        feeds: PathBuf,
        /// Canonical JSON Lines with labels.
        data: PathBuf,
        /// The label that assigns a post to a feed.
        #[arg(long, default_value = "event")]
        group: String,
        /// Which posts a feed should find: LABEL=VALUE.
        #[arg(long, default_value = "topic=on-topic")]
        positive: String,
        #[arg(long)]
        json: bool,
    },
    /// Spike alerts and emerging topics, run as `tidewatch run` runs them,
    /// against a generator's planted events (`--truth`) or labelled posts
    /// (one feed per group: first positive post against first alert).
    Spikes(crate::commands::eval_spikes::Args),
    /// Coordinated groups against a generator's planted campaigns: recall of
    /// campaign accounts and repost rings, organic accounts and groups
    /// wrongly found, and near-duplicate pairs against exact Jaccard.
    Coordination(crate::commands::coordination::EvalArgs),
    /// Near-duplicate narratives against exact Jaccard similarity: the
    /// share of sampled same-narrative post pairs at Jaccard >= 0.8.
    Narratives(crate::commands::eval_narratives::Args),
}

pub fn run(e: Eval) -> Result<ExitCode> {
    match e {
        Eval::Lang { path, exclude, json } => eval_lang(&path, &exclude, json),
        Eval::Feeds {
            feeds,
            data,
            group,
            positive,
            json,
        } => eval_feeds(&feeds, &data, &group, &positive, json),
        Eval::Spikes(args) => crate::commands::eval_spikes::run(args),
        Eval::Coordination(args) => crate::commands::coordination::eval(args),
        Eval::Narratives(args) => crate::commands::eval_narratives::run(args),
    }
}

fn eval_lang(path: &PathBuf, exclude: &[String], json: bool) -> Result<ExitCode> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut samples: Vec<(String, String)> = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("{}:{}", path.display(), i + 1))?;
        let Ok(post) = Post::from_json(line.as_bytes()) else {
            continue;
        };
        let gold = post.labels.get_str("language").or(post.lang.clone());
        if let Some(code) = gold.as_deref().and_then(lang::normalise_tag) {
            samples.push((post.text, code));
        }
    }
    if samples.is_empty() {
        bail!("{}: no post carries a gold language", path.display());
    }
    let start = std::time::Instant::now();
    let report = lang::evaluate(samples.iter().map(|(t, g)| (t.as_str(), g.as_str())));
    let secs = start.elapsed().as_secs_f64().max(1e-9);
    let excluded: Vec<&str> = exclude.iter().map(String::as_str).collect();
    let headline = report.accuracy_excluding(&excluded);
    if json {
        let per: serde_json::Map<String, serde_json::Value> = report
            .per_lang
            .iter()
            .map(|(k, s)| {
                (
                    k.clone(),
                    serde_json::json!({"total": s.total, "accuracy": s.accuracy()}),
                )
            })
            .collect();
        println!(
            "{}",
            serde_json::json!({
                "posts": samples.len(),
                "accuracy": headline,
                "excluded": excluded,
                "accuracy_all": report.accuracy(),
                "per_lang": per,
                "detections_per_s": samples.len() as f64 / secs,
            })
        );
    } else {
        println!("{report}");
        let counted: u64 = report
            .per_lang
            .iter()
            .filter(|(k, _)| !excluded.contains(&k.as_str()))
            .map(|(_, s)| s.total)
            .sum();
        println!(
            "accuracy without {}: {:.4} over {} posts; {:.0} detections/s (one thread, including scoring)",
            excluded.join(","),
            headline,
            counted,
            samples.len() as f64 / secs
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Precision and recall of each feed on the posts of its own group.
pub fn eval_feeds(feeds_path: &Path, data: &Path, group: &str, positive: &str, json: bool) -> Result<ExitCode> {
    let (pos_field, pos_value) = positive
        .split_once('=')
        .with_context(|| format!("--positive {positive:?}: expected FIELD=VALUE"))?;
    let defs = load_feeds(feeds_path)?;
    let live = LiveFeeds::new(&defs)?;
    let compiled = live.current();
    let cfg = RunConfig {
        decode: Default::default(),
        threads: 1,
        keyring: Arc::new(Keyring::new(PseudonymConfig::default())),
        enriched_upstream: false,
        public_accounts: Arc::new(PublicAccounts::default()),
        undated_time: Timestamp(0),
        window: WindowConfig::default(),
    };
    let mut proc = PostProcessor::new(&cfg);
    // Per feed: (true positives, matched, positives in its group, posts in its group).
    let mut counts: BTreeMap<String, [u64; 4]> = defs.iter().map(|d| (d.name.clone(), [0; 4])).collect();
    let file = std::fs::File::open(data).with_context(|| format!("opening {}", data.display()))?;
    let start = std::time::Instant::now();
    let mut n = 0u64;
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("{}:{}", data.display(), i + 1))?;
        let Ok(post) = Post::from_json(line.as_bytes()) else {
            continue;
        };
        let label = |f: &str| post.labels.get_str(f);
        let (Some(g), is_pos) = (label(group), label(pos_field).as_deref() == Some(pos_value)) else {
            continue;
        };
        let Some(c) = counts.get_mut(&g) else { continue };
        let feed_id = compiled.set.feeds.values().find(|f| f.name == g).map(|f| f.id);
        let m = proc.process(post, &compiled);
        n += 1;
        let hit = feed_id.is_some_and(|id| m.feeds.contains(&id));
        c[0] += (hit && is_pos) as u64;
        c[1] += hit as u64;
        c[2] += is_pos as u64;
        c[3] += 1;
    }
    let rate = n as f64 / start.elapsed().as_secs_f64().max(1e-9);
    let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    if json {
        let rows: Vec<serde_json::Value> = counts
            .iter()
            .map(|(name, c)| {
                serde_json::json!({"feed": name, "matched": c[1], "posts": c[3], "positives": c[2],
                "precision": ratio(c[0], c[1]), "recall": ratio(c[0], c[2])})
            })
            .collect();
        println!("{}", serde_json::json!({"feeds": rows, "posts": n}));
    } else {
        println!(
            "{:<28} {:>8} {:>8} {:>9} {:>9} {:>7}",
            "feed", "posts", "matched", "precision", "recall", "F1"
        );
        for (name, c) in &counts {
            let (p, r) = (ratio(c[0], c[1]), ratio(c[0], c[2]));
            let f1 = if p + r > 0.0 { 2.0 * p * r / (p + r) } else { 0.0 };
            println!("{name:<28} {:>8} {:>8} {p:>9.3} {r:>9.3} {f1:>7.3}", c[3], c[1]);
        }
        println!("{n} posts evaluated ({rate:.0} posts/s through enrich + match, one thread)");
    }
    Ok(ExitCode::SUCCESS)
}
