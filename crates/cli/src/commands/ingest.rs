//! `tidewatch ingest`: files in any supported format → pseudonymised,
//! enriched, redacted canonical JSON Lines, in input order.

use crate::output::{spinner, thousands};
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use tidewatch_core::pseudonym::PseudonymConfig;
use tidewatch_core::redact::PublicAccounts;
use tidewatch_core::Timestamp;
use tidewatch_engine::datadir::{DataDir, DEFAULT_DATA_DIR};
use tidewatch_engine::decode::DecodeOptions;
use tidewatch_engine::ingest::{self, IngestConfig};
use tidewatch_ingest::format::csv::CsvMapping;
use tidewatch_ingest::Format;

#[derive(clap::Args)]
pub struct Args {
    /// Input files (`-` for standard input); `.gz` and `.zst` are decompressed.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Output file of canonical JSON Lines (`-` for standard output).
    #[arg(long)]
    pub out: PathBuf,
    /// Input format: auto, canonical, twitter-v1, twitter-v2, jetstream,
    /// mastodon, reddit, rss, csv.
    #[arg(long, default_value = "auto")]
    pub format: String,
    /// CSV column mapping: a preset (`cnt`, `ira`) or `field=column,...`.
    #[arg(long)]
    pub csv: Option<String>,
    /// The data directory holding the pseudonymisation keyring.
    #[arg(long, default_value = DEFAULT_DATA_DIR)]
    pub data: PathBuf,
    /// Where bad records are listed as `file:line: reason` (default: OUT.rejects).
    #[arg(long)]
    pub rejects: Option<PathBuf>,
    /// A file of public account handles (one a line) whose mentions stay visible.
    #[arg(long)]
    pub public_accounts: Option<PathBuf>,
    /// Pseudonym epoch length in hours (used when the keyring is created).
    #[arg(long, default_value_t = 24)]
    pub epoch_hours: i64,
    /// Days an epoch key is kept after its epoch ends (used when the keyring is created).
    #[arg(long, default_value_t = 7)]
    pub linkage_days: i64,
    /// Enrichment threads (default: every core).
    #[arg(long)]
    pub threads: Option<usize>,
}

pub fn parse_format(name: &str) -> Result<Option<Format>> {
    if name == "auto" {
        return Ok(None);
    }
    match Format::from_name(name) {
        Some(f) => Ok(Some(f)),
        None => {
            let names: Vec<&str> = Format::ALL.iter().map(|f| f.name()).collect();
            bail!("unknown format {name:?}; expected auto or one of {}", names.join(", "))
        }
    }
}

pub fn parse_csv_mapping(spec: &str) -> Result<CsvMapping> {
    match CsvMapping::preset(spec) {
        Some(m) => Ok(m),
        None => CsvMapping::parse(spec).with_context(|| format!("--csv {spec:?}")),
    }
}

pub fn load_public_accounts(path: Option<&PathBuf>) -> Result<PublicAccounts> {
    let Some(path) = path else {
        return Ok(PublicAccounts::default());
    };
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(PublicAccounts::new(
        text.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#')),
    ))
}

pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

pub fn run(args: Args) -> Result<ExitCode> {
    let format = parse_format(&args.format)?;
    let csv_mapping = args.csv.as_deref().map(parse_csv_mapping).transpose()?;
    let public = load_public_accounts(args.public_accounts.as_ref())?;
    let data = DataDir::open(&args.data)?;
    let pcfg = PseudonymConfig {
        epoch_ms: args.epoch_hours.max(1) * Timestamp::HOUR,
        linkage_window_ms: args.linkage_days.max(0) * Timestamp::DAY,
    };
    let keyring = Arc::new(data.load_keyring(pcfg)?);
    let cfg = IngestConfig {
        decode: DecodeOptions {
            format,
            csv_mapping,
            ..Default::default()
        },
        threads: args.threads.unwrap_or_else(default_threads),
        keyring: keyring.clone(),
        public_accounts: Arc::new(public),
        undated_time: Timestamp(chrono::Utc::now().timestamp_millis()),
    };

    let to_stdout = args.out.as_os_str() == "-";
    let mut out: Box<dyn Write + Send> = if to_stdout {
        Box::new(BufWriter::with_capacity(1 << 20, std::io::stdout()))
    } else {
        let f = File::create(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
        Box::new(BufWriter::with_capacity(1 << 20, f))
    };
    let rejects_path = args.rejects.clone().unwrap_or_else(|| {
        if to_stdout {
            PathBuf::from("ingest.rejects")
        } else {
            let mut p = args.out.clone().into_os_string();
            p.push(".rejects");
            PathBuf::from(p)
        }
    });
    let mut rejects =
        BufWriter::new(File::create(&rejects_path).with_context(|| format!("creating {}", rejects_path.display()))?);

    let bar = spinner();
    let summary = ingest::run(&args.paths, &cfg, &mut out, &mut rejects, &|p| {
        let secs = p.elapsed.as_secs_f64().max(1e-9);
        bar.set_message(format!(
            "{} posts, {:.0} posts/s, {} bad records",
            thousands(p.posts),
            p.posts as f64 / secs,
            thousands(p.rejected)
        ));
    })
    .context("ingest failed")?;
    bar.finish_and_clear();
    data.save_keyring(&keyring)?;

    // Which format each input was read as, and why.
    for f in &summary.files {
        match (&f.format, &f.error) {
            (_, Some(e)) => eprintln!("{}: {e}", f.path),
            (Some(fmt), None) => eprintln!("{}: read as {fmt} ({})", f.path, f.detection),
            (None, None) => {}
        }
    }
    // Per format: files, posts, deletions, ignored, rejected.
    let mut by_format: BTreeMap<&str, [u64; 5]> = BTreeMap::new();
    for f in &summary.files {
        let name = f.format.map_or("unread", |x| x.name());
        let row = by_format.entry(name).or_default();
        row[0] += 1;
        row[1] += f.posts;
        row[2] += f.deletions;
        row[3] += f.ignored;
        row[4] += f.rejected;
    }
    eprintln!(
        "{:<12} {:>6} {:>12} {:>10} {:>10} {:>10}",
        "format", "files", "posts", "deletions", "ignored", "rejected"
    );
    for (name, r) in &by_format {
        eprintln!(
            "{:<12} {:>6} {:>12} {:>10} {:>10} {:>10}",
            name,
            r[0],
            thousands(r[1]),
            thousands(r[2]),
            thousands(r[3]),
            thousands(r[4])
        );
    }
    let secs = summary.elapsed.as_secs_f64().max(1e-9);
    eprintln!(
        "wrote {} posts and {} deletions to {} in {:.2} s ({:.0} posts/s); {} bad records listed in {}",
        thousands(summary.posts),
        thousands(summary.deletions),
        args.out.display(),
        secs,
        summary.posts as f64 / secs,
        thousands(summary.rejected),
        rejects_path.display()
    );
    let read_anything = summary.files.iter().any(|f| f.posts + f.deletions + f.ignored > 0);
    Ok(if read_anything {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
