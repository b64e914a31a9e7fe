//! `tidewatch demo`: the README's first command. Generates a realistic
//! multi-day stream with planted events, runs it through the pipeline, and
//! shows what came out: throughput, languages, sentiment, entities, and
//! the planted events the later stages will be measured against.

use crate::commands::gen::write_stream;
use crate::commands::ingest::default_threads;
use crate::output::thousands;
use anyhow::{Context, Result};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, BufWriter};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use tidewatch_core::pseudonym::PseudonymConfig;
use tidewatch_core::redact::PublicAccounts;
use tidewatch_core::{Post, Timestamp};
use tidewatch_engine::datadir::DataDir;
use tidewatch_engine::decode::DecodeOptions;
use tidewatch_engine::ingest::{self, IngestConfig};
use tidewatch_gen::{GenConfig, Generator};
use tidewatch_ingest::Format;

#[derive(clap::Args)]
pub struct Args {
    /// Data directory (default: a fresh temporary one).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Posts to generate.
    #[arg(long, default_value_t = 500_000)]
    pub posts: u64,
    /// Simulated days.
    #[arg(long, default_value_t = 2)]
    pub days: u32,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let tmp = tempfile::tempdir()?;
    let data_path = args.data.clone().unwrap_or_else(|| tmp.path().join("data"));
    let data = DataDir::open(&data_path)?;
    let raw = tmp.path().join("stream.jsonl");
    let enriched = tmp.path().join("enriched.jsonl");

    let gen = Generator::new(&GenConfig {
        posts: args.posts,
        days: args.days,
        seed: args.seed,
        ..Default::default()
    });
    let truth = gen.truth().clone();
    eprintln!(
        "generating {} posts over {} simulated days (seed {})...",
        thousands(args.posts),
        args.days,
        args.seed
    );
    write_stream(gen, &mut BufWriter::new(std::fs::File::create(&raw)?))?;

    let keyring = Arc::new(data.load_keyring(PseudonymConfig::default())?);
    let cfg = IngestConfig {
        decode: DecodeOptions {
            format: Some(Format::Canonical),
            ..Default::default()
        },
        threads: default_threads(),
        keyring: keyring.clone(),
        public_accounts: Arc::new(PublicAccounts::default()),
        undated_time: Timestamp(chrono::Utc::now().timestamp_millis()),
    };
    let mut out = BufWriter::new(std::fs::File::create(&enriched)?);
    let summary = ingest::run(&[raw], &cfg, &mut out, &mut std::io::sink(), &|_| {})?;
    drop(out);
    data.save_keyring(&keyring)?;
    let secs = summary.elapsed.as_secs_f64();
    println!(
        "pipeline: {} posts decoded, pseudonymised, enriched and redacted in {:.2} s ({:.0} posts/s on {} threads)",
        thousands(summary.posts),
        secs,
        summary.posts as f64 / secs,
        cfg.threads
    );

    // What the enrichment found, in aggregate: topics, not people.
    let mut langs: HashMap<String, u64> = HashMap::new();
    let mut detected = 0u64;
    let mut tags: HashMap<String, u64> = HashMap::new();
    let mut domains: HashMap<String, u64> = HashMap::new();
    let (mut pos, mut neg, mut n) = (0u64, 0u64, 0u64);
    let reader = BufReader::new(std::fs::File::open(&enriched).context("reading the enriched stream")?);
    for line in reader.lines() {
        let p = Post::from_json(line?.as_bytes())?;
        n += 1;
        *langs
            .entry(p.lang.clone().unwrap_or_else(|| "none".into()))
            .or_default() += 1;
        detected += (p.lang_source == Some(tidewatch_core::LangSource::Detected)) as u64;
        if let Some(s) = p.sentiment {
            pos += (s.compound >= 0.05) as u64;
            neg += (s.compound <= -0.05) as u64;
        }
        if let Some(e) = p.entities {
            for t in e.hashtags {
                *tags.entry(t).or_default() += 1;
            }
            for d in e.domains {
                *domains.entry(d).or_default() += 1;
            }
        }
    }
    let top = |m: &HashMap<String, u64>, k: usize| {
        let mut v: Vec<(&String, &u64)> = m.iter().collect();
        v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        v.iter()
            .take(k)
            .map(|(s, c)| format!("{s} {}", thousands(**c)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!(
        "languages: {} ({} detected, the rest tagged by the source)",
        top(&langs, 8),
        thousands(detected)
    );
    println!(
        "sentiment: {:.1}% positive, {:.1}% negative",
        100.0 * pos as f64 / n.max(1) as f64,
        100.0 * neg as f64 / n.max(1) as f64
    );
    println!("top hashtags: #{}", top(&tags, 8).replace(", ", ", #"));
    println!("top link domains: {}", top(&domains, 6));
    println!("planted events (ground truth the detectors are measured against):");
    for e in &truth.events {
        println!(
            "  {} {:<12} {} .. {}  {} posts{}",
            e.id,
            format!("{:?}", e.kind),
            e.start,
            e.end,
            thousands(e.size),
            e.query.as_ref().map(|q| format!("  feed: {q}")).unwrap_or_default()
        );
    }
    println!("data directory: {}", data_path.display());
    Ok(ExitCode::SUCCESS)
}
