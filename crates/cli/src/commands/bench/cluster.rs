//! `tidewatch bench cluster`: the scaled-out path on this machine. The
//! generated posts are published (decode, pseudonymise, enrich, redact) to
//! a local nats-server, then W in-process workers consume the stream into
//! their shards (match, windows, store). Reported next to the
//! single-process run over the same input in the same process: without
//! the store (what `bench pipeline` measures) and with it (`bench index`),
//! which is what the workers do.
//!
//! Each worker holds P / W partitions from the start (`max_partitions`),
//! so the figure is the steady rate, not a rebalancing.

use super::feeds::generate_feeds;
use super::generated_input;
use super::pipeline::Counter;
use crate::commands::run::open_store;
use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tidewatch_cluster::publish::{run_blocking, PublishOptions};
use tidewatch_cluster::testing::NatsServer;
use tidewatch_cluster::worker::{wait_consumed, Worker, WorkerOptions};
use tidewatch_cluster::ClusterConfig;
use tidewatch_core::pseudonym::{Keyring, PseudonymConfig};
use tidewatch_core::Timestamp;
use tidewatch_engine::datadir::DataDir;
use tidewatch_engine::feeds::FeedDef;
use tidewatch_engine::live::LiveFeeds;
use tidewatch_engine::persist::CommitPolicy;
use tidewatch_engine::run;

#[derive(clap::Args)]
pub struct Args {
    /// Posts to generate.
    #[arg(long, default_value_t = 1_000_000)]
    pub posts: u64,
    /// Feeds to generate (as `bench feeds` does).
    #[arg(long, default_value_t = 10_000)]
    pub feeds: usize,
    /// Workers (in this process).
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
    /// Partitions of the stream (a multiple of the workers).
    #[arg(long, default_value_t = 4)]
    pub partitions: u32,
    /// Processing threads of each shard's pipeline.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Event-time rate of the generated stream in posts/s.
    #[arg(long, default_value_t = 2000.0)]
    pub event_rate: f64,
    /// Where to keep the generated input (default: a temporary directory).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

pub fn bench_cluster(args: Args) -> Result<ExitCode> {
    if args.workers == 0 || !(args.partitions as usize).is_multiple_of(args.workers) {
        bail!("--partitions must be a multiple of --workers");
    }
    let tmp = tempfile::tempdir()?;
    let input = generated_input(
        args.dir.as_deref().unwrap_or(tmp.path()),
        args.posts,
        args.seed,
        Some(args.event_rate),
    )?;
    let defs: Vec<FeedDef> = generate_feeds(args.feeds, args.seed)
        .into_iter()
        .map(|(name, query)| FeedDef { name, query })
        .collect();
    let threads = crate::commands::ingest::default_threads();
    let keyring = Arc::new(Keyring::new(PseudonymConfig::default()));
    let cfg = super::run_config(threads, keyring.clone());
    let paths = [input.clone()];

    // Single process, without and with the store.
    let live = LiveFeeds::new(&defs)?;
    let plain =
        run::run(&paths, &cfg, &live, &mut Counter::default(), &mut |_| {}).map_err(|e| anyhow::anyhow!("{e}"))?;
    let plain_rate = plain.progress.posts as f64 / plain.progress.elapsed.as_secs_f64();
    let data = DataDir::open(&tmp.path().join("single"))?;
    let policy = CommitPolicy {
        interval: Duration::from_secs(1),
        ..Default::default()
    };
    let (persist, live, _) = open_store(&data, &paths, &defs, &keyring, 0, policy)?;
    let mut stored = Counter::storing(persist);
    let start = Instant::now();
    let with = run::run(&paths, &cfg, &live, &mut stored, &mut |_| {}).map_err(|e| anyhow::anyhow!("{e}"))?;
    stored.persist.as_mut().context("the store sink")?.commit()?;
    let stored_rate = with.progress.posts as f64 / start.elapsed().as_secs_f64();

    // The cluster: a local server, the posts published, the feeds in KV.
    let server = NatsServer::start().context("starting a local nats-server (is Debian's nats-server installed?)")?;
    let mut cluster_cfg = ClusterConfig::new(server.url());
    cluster_cfg.partitions = Some(args.partitions);
    let opts = PublishOptions {
        undated_time: Timestamp(0),
        ..Default::default()
    };
    let published = run_blocking(&cluster_cfg, &paths, &opts, &mut |_| {}).context("publishing")?;
    let mut toml = String::new();
    for d in &defs {
        toml.push_str(&format!("[[feed]]\nname = {:?}\nquery = {:?}\n", d.name, d.query));
    }
    tidewatch_cluster::feeds::put_feeds_blocking(&cluster_cfg, &toml).context("writing the feeds")?;

    let start = Instant::now();
    let workers: Vec<Worker> = (0..args.workers)
        .map(|i| {
            Worker::start(
                ClusterConfig::new(server.url()),
                WorkerOptions {
                    data: tmp.path().join("shards"),
                    worker_id: format!("bench-{i}"),
                    threads: args.threads,
                    commit: policy,
                    retention_days: 0,
                    max_partitions: Some(args.partitions as usize / args.workers),
                },
            )
        })
        .collect::<Result<_, _>>()?;
    if !wait_consumed(&cluster_cfg, Duration::from_secs(3600))? {
        bail!("the workers did not consume the stream within an hour");
    }
    let secs = start.elapsed().as_secs_f64();
    let processed: u64 = workers
        .iter()
        .flat_map(|w| w.status().shards.into_values())
        .map(|s| s.posts)
        .sum();
    for w in workers {
        w.stop()?;
    }
    let rate = processed as f64 / secs;
    println!(
        "{}",
        serde_json::json!({
            "bench": "cluster",
            "stages": "workers: consume + match + windows + store; publish (decode + pseudonymise + enrich + redact) measured apart",
            "posts": with.progress.posts,
            "feeds": defs.len(),
            "workers": args.workers,
            "partitions": args.partitions,
            "threads_per_shard": args.threads,
            "publish_posts_per_s": published.events_per_second.round(),
            "workers_posts": processed,
            "workers_seconds": secs,
            "posts_per_s": rate.round(),
            "baseline": "single-process run over the same input, same process, every core",
            "single_posts_per_s": plain_rate.round(),
            "single_with_store_posts_per_s": stored_rate.round(),
            "ratio": rate / plain_rate,
            "ratio_with_store": rate / stored_rate,
        })
    );
    Ok(ExitCode::SUCCESS)
}
