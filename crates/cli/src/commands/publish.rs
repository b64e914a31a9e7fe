//! `tidewatch publish`: decode inputs, pseudonymise them with the
//! cluster's shared keyring and publish them to the partitioned NATS
//! JetStream stream that `tidewatch worker`s consume. The work is in
//! `tidewatch_cluster::publish`; this module parses arguments and reports.

use crate::commands::ingest::{load_public_accounts, parse_csv_mapping, parse_format};
use anyhow::{Context, Result};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tidewatch_cluster::publish::{run_blocking, PublishOptions};
use tidewatch_cluster::ClusterConfig;
use tidewatch_core::pseudonym::PseudonymConfig;
use tidewatch_core::Timestamp;
use tidewatch_engine::decode::DecodeOptions;

/// Bad records shown on standard error when no `--rejects` file is given.
const REJECTS_SHOWN: u64 = 20;

#[derive(clap::Args)]
pub struct Args {
    /// Input files (`-` for standard input); `.gz` and `.zst` are decompressed.
    #[arg(required = true)]
    pub sources: Vec<PathBuf>,
    /// NATS server URL(s), comma-separated.
    #[arg(long)]
    pub nats: String,
    /// The JetStream stream posts are published to.
    #[arg(long, default_value = tidewatch_cluster::DEFAULT_STREAM)]
    pub stream: String,
    /// Partitions P (fixed when the stream is created; default: the stream's, or 16 for a new one).
    #[arg(long)]
    pub partitions: Option<u32>,
    /// Copies of the stream and buckets when they are created (3 on a 3-node cluster).
    #[arg(long, default_value_t = 1)]
    pub replicas: usize,
    /// Re-publishing a post within this many seconds is de-duplicated (when the stream is created).
    #[arg(long, default_value_t = 600)]
    pub dedup_window_secs: u64,
    /// Days a post stays in the stream (like the store's `retention_days`;
    /// 0 keeps every post). Applied to an existing stream too.
    #[arg(long, default_value_t = 30)]
    pub retention_days: u64,
    /// Input format: auto, canonical, twitter-v1, twitter-v2, jetstream,
    /// mastodon, reddit, rss, csv.
    #[arg(long, default_value = "auto")]
    pub format: String,
    /// CSV column mapping: a preset (`cnt`, `ira`) or `field=column,...`.
    #[arg(long)]
    pub csv: Option<String>,
    /// A file of public account handles (one a line) whose mentions stay visible.
    #[arg(long)]
    pub public_accounts: Option<PathBuf>,
    /// Pseudonym epoch length in hours (must match the cluster's; default: the cluster's, 24 for a new one).
    #[arg(long)]
    pub epoch_hours: Option<i64>,
    /// Days an epoch key is kept after its epoch ends (must match the cluster's; default 7 for a new one).
    #[arg(long)]
    pub linkage_days: Option<i64>,
    /// Where bad records are listed as `file:line: reason` (default: the first ones on standard error).
    #[arg(long)]
    pub rejects: Option<PathBuf>,
    /// The most published messages awaiting acknowledgement at once.
    #[arg(long, default_value_t = 4096)]
    pub max_pending: usize,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let format = parse_format(&args.format)?;
    let csv_mapping = args.csv.as_deref().map(parse_csv_mapping).transpose()?;
    let public = load_public_accounts(args.public_accounts.as_ref())?;
    let pseudonym = match (args.epoch_hours, args.linkage_days) {
        (None, None) => None,
        (h, d) => {
            let default = PseudonymConfig::default();
            Some(PseudonymConfig {
                epoch_ms: h.map_or(default.epoch_ms, |h| h.max(1) * Timestamp::HOUR),
                linkage_window_ms: d.map_or(default.linkage_window_ms, |d| d.max(0) * Timestamp::DAY),
            })
        }
    };
    let mut cluster = ClusterConfig::new(&args.nats);
    cluster.stream = args.stream.clone();
    cluster.partitions = args.partitions;
    cluster.replicas = args.replicas;
    cluster.duplicate_window = Duration::from_secs(args.dedup_window_secs.max(1));
    cluster.max_age = Some(Duration::from_secs(args.retention_days.saturating_mul(86_400)));
    let opts = PublishOptions {
        decode: DecodeOptions {
            format,
            csv_mapping,
            ..Default::default()
        },
        pseudonym,
        undated_time: Timestamp(chrono::Utc::now().timestamp_millis()),
        max_pending: args.max_pending,
        public_accounts: Arc::new(public),
    };

    let mut rejects_file = match &args.rejects {
        Some(p) => Some(BufWriter::new(
            File::create(p).with_context(|| format!("creating {}", p.display()))?,
        )),
        None => None,
    };
    let mut shown = 0u64;
    let mut reject_error = None;
    let summary = run_blocking(&cluster, &args.sources, &opts, &mut |r| match rejects_file.as_mut() {
        Some(f) => {
            if reject_error.is_none() {
                if let Err(e) = writeln!(f, "{r}") {
                    reject_error = Some(e);
                }
            }
        }
        None => {
            shown += 1;
            if shown <= REJECTS_SHOWN {
                eprintln!("{r}");
            }
        }
    })
    .with_context(|| format!("publishing to {}", args.nats))?;
    if let Some(e) = reject_error {
        return Err(e).context("writing the rejects file");
    }
    if let Some(mut f) = rejects_file {
        f.flush().context("writing the rejects file")?;
    }
    if shown > REJECTS_SHOWN {
        eprintln!(
            "... and {} more bad records (list them all with --rejects FILE)",
            shown - REJECTS_SHOWN
        );
    }
    for f in &summary.files {
        if let Some(e) = &f.error {
            eprintln!("{}: {e}", f.path);
        }
    }
    println!("{}", serde_json::to_string_pretty(&summary)?);
    let read_anything = summary.files.iter().any(|f| f.posts + f.deletions + f.ignored > 0);
    Ok(if read_anything {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
