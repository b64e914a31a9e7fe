//! `tidewatch eval`: detectors measured against labelled data.

use anyhow::{bail, Context, Result};
use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;
use tidewatch_core::{lang, Post};

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
}

pub fn run(e: Eval) -> Result<ExitCode> {
    match e {
        Eval::Lang { path, exclude, json } => eval_lang(&path, &exclude, json),
    }
}

fn eval_lang(path: &PathBuf, exclude: &[String], json: bool) -> Result<ExitCode> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut samples: Vec<(String, String)> = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("{}:{}", path.display(), i + 1))?;
        let Ok(post) = Post::from_json(line.as_bytes()) else { continue };
        let gold = post.labels.get("language").and_then(|v| v.as_str()).map(str::to_string).or(post.lang.clone());
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
            .map(|(k, s)| (k.clone(), serde_json::json!({"total": s.total, "accuracy": s.accuracy()})))
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
        println!(
            "accuracy without {}: {:.4} over {} posts; {:.0} detections/s (one thread, including scoring)",
            excluded.join(","),
            headline,
            samples.len(),
            samples.len() as f64 / secs
        );
    }
    Ok(ExitCode::SUCCESS)
}
