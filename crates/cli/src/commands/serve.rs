//! `tidewatch serve`: the HTTP API and live event stream over a data
//! directory (see `tidewatch-server`).
//!
//! Settings come from flags, then the configuration file (its data
//! directory, its feeds file and its privacy `k`), then defaults. The API
//! listens on 127.0.0.1:8080 unless `--addr` says otherwise; the
//! config's `[server] listen` is where push sources listen, a different
//! thing.
//!
//! With `--nats`, search is answered by every shard of the cluster
//! (`tidewatch_cluster::view`), and this process raises the cluster's
//! spike alerts from the merged counts of every partition
//! (`tidewatch_cluster::merge`) into its data directory, which also holds
//! the server's own state (tokens, webhooks) and is created when missing.

use anyhow::{bail, Context, Result};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tidewatch_cluster::merge::MergerOptions;
use tidewatch_cluster::ClusterConfig;
use tidewatch_engine::config::{Config, Feeds};
use tidewatch_engine::datadir::DEFAULT_DATA_DIR;
use tidewatch_server::{ClusterTarget, ServerConfig, DEFAULT_ADDR};

#[derive(clap::Args)]
pub struct Args {
    /// The data directory a `tidewatch run` writes (default: the config's, or ./tidewatch-data).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// The configuration file (`tidewatch.toml`): data directory, feeds file, privacy k.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Where to listen.
    #[arg(long, default_value = DEFAULT_ADDR)]
    pub addr: SocketAddr,
    /// The feeds file the feeds API edits (default: the config's `[feeds] path`).
    #[arg(long)]
    pub feeds: Option<PathBuf>,
    /// Allow reads without a token (only on a loopback address).
    #[arg(long)]
    pub anonymous_read: bool,
    /// Let webhooks point at loopback and private addresses (by default
    /// only public ones: a URL must not make the server probe its networks).
    #[arg(long)]
    pub allow_private_webhooks: bool,
    /// Larger request bodies are refused with 413.
    #[arg(long, default_value_t = 1 << 20)]
    pub max_body_bytes: usize,
    /// Requests not answered within this many seconds get 503.
    #[arg(long, default_value_t = 30)]
    pub timeout_secs: u64,
    /// Answer search from every shard of a cluster: NATS server URL(s), comma-separated.
    #[arg(long)]
    pub nats: Option<String>,
    /// The cluster's posts stream (with `--nats`).
    #[arg(long, default_value = tidewatch_cluster::DEFAULT_STREAM, requires = "nats")]
    pub stream: String,
    /// How long each partition has to answer a search, in milliseconds (with `--nats`).
    #[arg(long, default_value_t = 5000, requires = "nats")]
    pub shard_timeout_ms: u64,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let config = args.config.as_deref().map(Config::load).transpose()?;
    let data = args
        .data
        .or_else(|| config.as_ref().and_then(|c| c.data.clone()))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
    let feeds_file = match (args.feeds, config.as_ref().map(|c| &c.feeds)) {
        (Some(f), _) => Some(f),
        (None, Some(Feeds::File(f))) => Some(f.clone()),
        _ => None,
    };
    if args.anonymous_read && !args.addr.ip().is_loopback() {
        bail!(
            "--anonymous-read is only allowed on a loopback address, not {}",
            args.addr
        );
    }
    if args.nats.is_some() {
        std::fs::create_dir_all(&data).with_context(|| format!("creating {}", data.display()))?;
    }
    if !data.exists() {
        bail!(
            "{}: no data directory (run `tidewatch run --data {}` first, or pass --data)",
            data.display(),
            data.display()
        );
    }
    let mut sc = ServerConfig::new(data.clone(), args.addr);
    sc.feeds_file = feeds_file;
    sc.anonymous_read = args.anonymous_read;
    sc.allow_private_webhooks = args.allow_private_webhooks;
    sc.max_body_bytes = args.max_body_bytes;
    sc.request_timeout = Duration::from_secs(args.timeout_secs.max(1));
    if let Some(c) = &config {
        sc.k = c.privacy.k;
    }
    // Over a cluster, this process also raises the cluster's alerts into
    // its data directory (see `tidewatch_cluster::merge`).
    let merger_stop = Arc::new(AtomicBool::new(false));
    let mut merger = None;
    if let Some(url) = &args.nats {
        let mut cluster = ClusterConfig::new(url);
        cluster.stream = args.stream.clone();
        let opts = MergerOptions {
            timeout: Duration::from_millis(args.shard_timeout_ms),
            ..Default::default()
        };
        merger = Some(tidewatch_cluster::merge::spawn(
            cluster.clone(),
            data.clone(),
            opts,
            merger_stop.clone(),
        ));
        sc.cluster = Some(ClusterTarget {
            config: cluster,
            shard_timeout: Duration::from_millis(args.shard_timeout_ms),
        });
    }
    let over = match &args.nats {
        Some(url) => format!(
            "search over the cluster at {url}, its alerts recorded in {}",
            data.display()
        ),
        None => data.display().to_string(),
    };
    let feeds_note = sc
        .feeds_file
        .as_ref()
        .map_or("feeds are read-only (no --feeds file)".to_string(), |f| {
            format!("feeds file {}", f.display())
        });
    let served = tidewatch_server::serve_until_signal(sc, |addr| {
        eprintln!("tidewatch serve: http://{addr}/api/v1 (OpenAPI at /api/v1/openapi.json) over {over}; {feeds_note}");
    });
    merger_stop.store(true, Ordering::Relaxed);
    if let Some(m) = merger {
        match m.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("cluster alerts stopped: {e:#}"),
            Err(_) => eprintln!("cluster alerts stopped: the merger panicked"),
        }
    }
    served.context("serving")?;
    Ok(ExitCode::SUCCESS)
}
