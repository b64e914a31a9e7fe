//! `tidewatch run --nats`: the cluster's detection process, which reads
//! every post of the posts stream once, in the order it was published.
//!
//! Narratives, coordinated groups and emerging topics need the posts of a
//! key together, so no shard can compute them. One process that reads the
//! whole stream can: it runs the single-node pipeline (narratives,
//! coordination, topics, alerts) with the stream as its only input and
//! keeps its findings in a store without a post index (the shards hold the
//! posts).
//!
//! **One consumer, in stream order.** The input is one live NATS source
//! ([`NatsPartitionConfig`]) whose durable consumer is filtered to every
//! partition ([`crate::SUBJECT_FILTER`]) and is this process's own, not a
//! worker's: messages come in stream-sequence order, which is the order
//! the publisher sent them (the input's order), as a single run reads a
//! file. Reading each partition through a consumer of its own would
//! interleave the partitions by arrival instead: a partition read faster
//! than another runs ahead in event time by minutes or hours, its posts
//! count as late in the windows, and co-posts 60 s apart in two partitions
//! would meet only by luck. The source's cursor is the stream sequence, so
//! checkpoints, resumption at the last commit and acknowledgement after
//! commits work as for a worker's shard.
//!
//! **Feeds** come from the cluster's key-value bucket: the current set at
//! start ([`DetectInput::connect`]), each new one through
//! [`watch_feeds`], which the caller swaps into its live feeds.

use crate::feeds::{current_feeds, FeedsVersion, FeedsWatch};
use crate::setup::{Cluster, ClusterConfig};
use crate::{Error, Result, SUBJECT_FILTER};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use tidewatch_sources::nats::NatsPartitionConfig;

/// The detection source's default name (its checkpoint is `source:detect`).
pub const DETECT_SOURCE: &str = "detect";
/// The detection process's default durable consumer: not a worker's
/// (`tidewatch-p<p>`), so detection and workers read independently.
pub const DETECT_CONSUMER: &str = "tidewatch-detect";

/// What a detection run reads, found by connecting to the cluster.
#[derive(Clone, Debug)]
pub struct DetectInput {
    /// The whole posts stream as one live source.
    pub source: NatsPartitionConfig,
    /// The stream's partition count P (for reports).
    pub partitions: u32,
    /// The cluster's feed set now (`None`: none was ever written).
    pub feeds: Option<FeedsVersion>,
}

impl DetectInput {
    /// Connects (without an async runtime of the caller's), checks that the
    /// stream and buckets exist, and reads the current feed set. The
    /// source reads through the durable consumer `consumer`.
    pub fn connect(cfg: &ClusterConfig, consumer: &str) -> Result<DetectInput> {
        crate::publish::runtime()?.block_on(async {
            let cluster = Cluster::connect(cfg).await?;
            // Recreating a worker's consumer would move it under the worker.
            if (0..cluster.partitions()).any(|p| crate::consumer_name(p) == consumer) {
                return Err(Error::Io(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("consumer {consumer:?} is a worker's: a detection run needs a consumer of its own"),
                )));
            }
            let feeds = current_feeds(&cluster).await?;
            Ok(DetectInput {
                source: NatsPartitionConfig::new(
                    DETECT_SOURCE,
                    cfg.url.clone(),
                    cluster.stream_name().to_string(),
                    SUBJECT_FILTER,
                    consumer,
                ),
                partitions: cluster.partitions(),
                feeds,
            })
        })
    }
}

/// Watches the cluster's feed set on a thread of its own and calls
/// `apply` with every version after `after` (the revision already in use;
/// 0 for none), until `stop` is set. An unusable value is reported and
/// skipped (the current feeds stay).
pub fn watch_feeds(
    cfg: ClusterConfig,
    after: u64,
    stop: Arc<AtomicBool>,
    mut apply: impl FnMut(FeedsVersion) + Send + 'static,
) -> Result<JoinHandle<()>> {
    // One thread drives the connection and the watch: a current-thread
    // runtime, moved to the watching thread once connected.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let (cluster, mut watch) = runtime.block_on(async {
        let cluster = Cluster::connect(&cfg).await?;
        let watch = FeedsWatch::start(&cluster).await?;
        Ok::<_, Error>((cluster, watch))
    })?;
    let thread = std::thread::Builder::new()
        .name("cluster feeds".into())
        .spawn(move || {
            // The watch and the connection are dropped inside the runtime
            // (their clean-up spawns tasks), with the future that owns them.
            runtime.block_on(async move {
                let _cluster = cluster;
                let mut applied = after;
                while !stop.load(Ordering::Relaxed) {
                    // The stop flag is polled between waits.
                    let next = tokio::time::timeout(Duration::from_millis(200), watch.next()).await;
                    match next {
                        Err(_) => {}
                        Ok(Some(Ok(version))) if version.revision > applied => {
                            applied = version.revision;
                            apply(version);
                        }
                        Ok(Some(Ok(_))) => {}
                        Ok(Some(Err(e))) => eprintln!("cluster feeds not applied: {e:#}"),
                        Ok(None) => {
                            eprintln!("the cluster's feeds watch ended; the current feeds stay");
                            return;
                        }
                    }
                }
            })
        })?;
    Ok(thread)
}
