//! `tidewatch bench publish`: the publish pipeline of a scaled-out
//! deployment (decode, pseudonymise with the cluster's shared keyring,
//! enrich, redact, serialise) into the partitioned stream of a nats-server, next
//! to the same pipeline writing its messages to a file, in one process.
//! Without `--nats` it starts a throw-away local nats-server (Debian's
//! `nats-server` must be installed).

use super::generated_input;
use anyhow::{Context, Result};
use std::path::PathBuf;
use std::process::ExitCode;
use tidewatch_cluster::publish::{compare_with_file_blocking, PublishOptions};
use tidewatch_cluster::testing::NatsServer;
use tidewatch_cluster::ClusterConfig;
use tidewatch_core::Timestamp;

#[derive(clap::Args)]
pub struct Args {
    /// Posts to generate (one simulated day).
    #[arg(long, default_value_t = 200_000)]
    pub posts: u64,
    /// Partitions of the stream.
    #[arg(long, default_value_t = 16)]
    pub partitions: u32,
    /// A NATS server with JetStream to publish to (default: start a local one).
    #[arg(long)]
    pub nats: Option<String>,
    /// The stream to publish to (on `--nats`, use a fresh one: posts already
    /// there are de-duplicated, not published).
    #[arg(long, default_value = "TIDEWATCH_BENCH")]
    pub stream: String,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Where to keep the generated input (default: a temporary directory).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

pub fn bench_publish(args: Args) -> Result<ExitCode> {
    let tmp = tempfile::tempdir()?;
    let input = generated_input(args.dir.as_deref().unwrap_or(tmp.path()), args.posts, args.seed, None)?;
    let local = match &args.nats {
        Some(_) => None,
        None => Some(NatsServer::start().context("starting a local nats-server (is Debian's nats-server installed?)")?),
    };
    let url = args
        .nats
        .clone()
        .or_else(|| local.as_ref().map(NatsServer::url))
        .unwrap_or_default();
    let mut cfg = ClusterConfig::new(url);
    cfg.stream = args.stream.clone();
    cfg.partitions = Some(args.partitions);
    let opts = PublishOptions {
        undated_time: Timestamp(0),
        ..Default::default()
    };
    let out = tmp.path().join("messages.jsonl");
    let (file, nats) = compare_with_file_blocking(&cfg, &[input], &opts, &out).context("publishing")?;
    println!(
        "{}",
        serde_json::json!({
            "bench": "publish",
            "stages": "decode + pseudonymise (shared keyring) + enrich + redact + serialise + publish",
            "posts": nats.posts,
            "published": nats.published,
            "duplicates": nats.duplicates,
            "partitions": nats.partitions,
            "max_pending": opts.max_pending,
            "local_server": local.is_some(),
            "seconds": nats.seconds,
            "posts_per_s": nats.events_per_second.round(),
            "baseline": "the same pipeline writing its messages to a file, same process",
            "baseline_posts_per_s": file.events_per_second.round(),
            "ratio": nats.events_per_second / file.events_per_second.max(1e-9),
        })
    );
    Ok(ExitCode::SUCCESS)
}
