//! `tidewatch eval narratives DATA.jsonl`: do the posts the near-duplicate
//! clusterer puts together really have near-identical text?
//!
//! The posts are clustered as `tidewatch run --narratives` does (default
//! settings, in time order) and measured by
//! [`tidewatch_core::narrative::agreement`]: the share of `--sample`
//! same-narrative pairs at exact Jaccard ≥ 0.8 (the issue asks for ≥ 95%),
//! the same among pairs whose MinHash estimate is ≥ 0.8, and how many of
//! all pairs at exact ≥ 0.8 within the window share a narrative. Only
//! figures are printed, never a post's text or author. A line that is not
//! a post is reported with its line number and counted, and the rest goes
//! on.

use crate::commands::eval_spikes::OutputFormat;
use anyhow::{Context, Result};
use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;
use tidewatch_core::narrative::agreement::{Agreement, AgreementMeter};
use tidewatch_core::narrative::NarrativeConfig;
use tidewatch_core::Post;

/// Malformed lines reported one by one; the rest are only counted.
const REPORTED_ERRORS: usize = 10;

#[derive(clap::Args)]
pub struct Args {
    /// Canonical JSON Lines (one post a line).
    pub data: PathBuf,
    /// Same-narrative pairs drawn for the exact check.
    #[arg(long, default_value_t = 10_000)]
    pub sample: usize,
    /// Seed of the pair draw.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    #[arg(long, value_enum, default_value = "text")]
    pub format: OutputFormat,
}

/// What the evaluation measured.
#[derive(Debug, serde::Serialize)]
struct Report {
    #[serde(flatten)]
    agreement: Agreement,
    /// Lines that were not a post.
    rejected: usize,
    seconds: f64,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let start = std::time::Instant::now();
    let path = args.data.display();
    let file = std::fs::File::open(&args.data).with_context(|| format!("opening {path}"))?;
    let mut posts: Vec<Post> = Vec::new();
    let mut rejected = 0;
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("{path}:{}", i + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        match Post::from_json(line.as_bytes()) {
            Ok(p) => posts.push(p),
            Err(e) => {
                rejected += 1;
                if rejected <= REPORTED_ERRORS {
                    eprintln!("{path}:{}: not a post, skipped: {e}", i + 1);
                }
            }
        }
    }
    if rejected > REPORTED_ERRORS {
        eprintln!("{path}: {rejected} lines skipped in all");
    }
    posts.sort_by_key(|p| p.created_at.map_or(i64::MAX, |t| t.0));
    let mut meter = AgreementMeter::new(NarrativeConfig::default()).map_err(|e| anyhow::anyhow!("{e}"))?;
    for p in &posts {
        meter.observe(p);
    }
    let report = Report {
        agreement: meter.measure(args.sample, args.seed),
        rejected,
        seconds: start.elapsed().as_secs_f64(),
    };
    if args.format == OutputFormat::Json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        let a = &report.agreement;
        println!(
            "{} posts, {} placed by text in {} narratives of 2+ ({} same-narrative pairs)\n\
             exact Jaccard >= 0.8: {:.2}% of {} sampled pairs (the issue asks for >= 95%)\n\
             MinHash estimate >= 0.8: {} sampled pairs, {:.2}% of them exact >= 0.8\n\
             pairs within the window at exact >= 0.8: {}, {:.2}% of them in one narrative\n\
             {} lines skipped, {:.1} s",
            a.posts,
            a.text_posts,
            a.narratives,
            a.pairs,
            a.exact_agreement * 100.0,
            a.sampled,
            a.estimated,
            a.estimated_agreement * 100.0,
            a.near_pairs,
            a.recall * 100.0,
            report.rejected,
            report.seconds
        );
    }
    Ok(ExitCode::SUCCESS)
}
