//! `tidewatch worker`: one worker of a cluster. It leases partitions of
//! the posts stream that `tidewatch publish` fills, and keeps each one's
//! shard of the store under the data directory (see
//! `tidewatch_cluster::worker`). It runs until Ctrl-C (SIGINT) or SIGTERM,
//! then commits every shard and gives its partitions back.

use crate::commands::ingest::default_threads;
use anyhow::{Context, Result};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tidewatch_cluster::worker::{Worker, WorkerOptions};
use tidewatch_cluster::ClusterConfig;
use tidewatch_engine::persist::CommitPolicy;

#[derive(clap::Args)]
pub struct Args {
    /// NATS server URL(s), comma-separated.
    #[arg(long)]
    pub nats: String,
    /// Where the shards are kept (one directory per partition). Workers on
    /// one machine may share it.
    #[arg(long)]
    pub data: PathBuf,
    /// The JetStream stream of posts.
    #[arg(long, default_value = tidewatch_cluster::DEFAULT_STREAM)]
    pub stream: String,
    /// This worker's id (unique in the cluster; default: host name and process id).
    #[arg(long)]
    pub worker_id: Option<String>,
    /// Processing threads per partition (default: the cores over the partitions held, at least 1).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Milliseconds between commits (a message is acknowledged after the commit that covers it).
    #[arg(long, default_value_t = 1000)]
    pub commit_ms: u64,
    /// Days a post stays in a shard's index (0: kept).
    #[arg(long, default_value_t = 30)]
    pub retention_days: u32,
    /// Hold at most this many partitions.
    #[arg(long)]
    pub max_partitions: Option<usize>,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let mut cluster = ClusterConfig::new(&args.nats);
    cluster.stream = args.stream.clone();
    let worker_id = args.worker_id.clone().unwrap_or_else(default_worker_id);
    let opts = WorkerOptions {
        data: args.data.clone(),
        worker_id: worker_id.clone(),
        threads: args.threads.unwrap_or_else(|| (default_threads() / 2).max(1)),
        commit: CommitPolicy {
            interval: Duration::from_millis(args.commit_ms.max(1)),
            ..Default::default()
        },
        retention_days: args.retention_days,
        max_partitions: args.max_partitions,
    };
    let stop = Arc::new(AtomicBool::new(false));
    crate::commands::run::stop_on_signal(stop.clone());
    let worker = Worker::start(cluster, opts).with_context(|| format!("joining the cluster at {}", args.nats))?;
    eprintln!("worker {worker_id}: shards in {}", args.data.display());
    let mut said = String::new();
    while !stop.load(Ordering::Relaxed) && !worker.finished() {
        std::thread::sleep(Duration::from_millis(200));
        let s = worker.status();
        let line = format!(
            "worker {worker_id}: {} workers, partitions {:?}, feeds revision {}",
            s.workers,
            s.shards.keys().collect::<Vec<_>>(),
            s.feeds_revision
        );
        if line != said {
            eprintln!("{line}");
            said = line;
        }
    }
    worker.stop().context("stopping the worker")?;
    eprintln!("worker {worker_id}: stopped, every shard committed");
    Ok(ExitCode::SUCCESS)
}

fn default_worker_id() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "worker".to_string());
    format!("{host}-{}", std::process::id())
}
