//! # tidewatch-cluster
//!
//! tidewatch scaled out over NATS JetStream. The idea: one machine decodes
//! and pseudonymises posts and *publishes* them into a JetStream stream cut
//! into P partitions by subject; workers on other machines *lease*
//! partitions and consume them. Everything the machines must agree on lives
//! in JetStream itself, so there is no other coordinator:
//!
//! - the stream `TIDEWATCH` (name configurable) with subjects
//!   `tidewatch.posts.<partition>` ([`subject`]), P fixed when it is created
//!   ([`setup`]);
//! - the partition of a post, a hash of its pseudonymous id ([`partition()`]);
//! - the pseudonymisation keyring, shared through a key-value bucket so that
//!   every publisher makes the same pseudonyms ([`keyring`]);
//! - partition leases, claimed and renewed with compare-and-set on a
//!   key-value bucket ([`lease`]).
//!
//! [`publish`] ties them together for `tidewatch publish`. The test harness
//! that starts real `nats-server` processes is in [`testing`].

pub mod detect;
pub mod feeds;
pub mod keyring;
pub mod lease;
pub mod merge;
pub mod partition;
pub mod publish;
pub mod setup;
#[doc(hidden)]
pub mod testing;
pub mod view;
pub mod worker;

pub use keyring::SharedKeyring;
pub use lease::Leases;
pub use partition::partition;
pub use publish::{publish_inputs, PublishOptions, PublishSummary};
pub use setup::{Cluster, ClusterConfig};

/// The default name of the posts stream.
pub const DEFAULT_STREAM: &str = "TIDEWATCH";
/// Posts of partition `p` are published to `tidewatch.posts.<p>`.
pub const SUBJECT_PREFIX: &str = "tidewatch.posts";
/// The stream's subject filter: every partition.
pub const SUBJECT_FILTER: &str = "tidewatch.posts.*";
/// The key-value bucket of feed definitions (read by workers).
pub const FEEDS_BUCKET: &str = "tidewatch-feeds";
/// The key-value bucket of the shared pseudonymisation keyring.
pub const KEYRING_BUCKET: &str = "tidewatch-keyring";
/// The key-value bucket of partition leases (its entries expire).
pub const LEASES_BUCKET: &str = "tidewatch-leases";
/// The key-value bucket of cluster constants: the partition count of each stream.
pub const CONFIG_BUCKET: &str = "tidewatch-config";
/// The most partitions a stream may have.
pub const MAX_PARTITIONS: u32 = 4096;

/// The subject partition `p` is published to.
pub fn subject(p: u32) -> String {
    format!("{SUBJECT_PREFIX}.{p}")
}

/// The name of the durable consumer that reads partition `p` (one per
/// partition, shared by whichever worker holds the partition's lease, so a
/// worker that takes a partition over continues where the last one acked).
pub fn consumer_name(p: u32) -> String {
    format!("tidewatch-p{p}")
}

/// A boxed error from the NATS client (its operations have many error types).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What can go wrong talking to the cluster.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    // The cause is the error's source (shown by `{:#}` and error reporters).
    #[error("cannot connect to NATS at {url}")]
    Connect { url: String, source: BoxError },
    #[error("NATS: {op}")]
    Nats { op: String, source: BoxError },
    #[error("invalid stream name {0:?}: use ASCII letters, digits, '-' and '_'")]
    InvalidStreamName(String),
    #[error("invalid partition count {0}: it must be between 1 and {MAX_PARTITIONS}")]
    InvalidPartitions(u32),
    #[error(
        "stream {stream} was created with {stored} partitions, not {requested}: \
         the partition count is fixed when the stream is created"
    )]
    PartitionMismatch {
        stream: String,
        stored: u32,
        requested: u32,
    },
    #[error("stream {stream} exists with subjects {found:?}; tidewatch needs [{SUBJECT_FILTER}]")]
    StreamSubjects { stream: String, found: Vec<String> },
    #[error("{bucket}/{key} holds an unreadable value: {reason}")]
    Corrupt {
        bucket: &'static str,
        key: String,
        reason: String,
    },
    #[error(
        "the cluster's keyring uses epochs of {stored_epoch_ms} ms and a linkage window of \
         {stored_window_ms} ms; this publisher asked for {epoch_ms} ms and {window_ms} ms"
    )]
    KeyringConfig {
        stored_epoch_ms: i64,
        stored_window_ms: i64,
        epoch_ms: i64,
        window_ms: i64,
    },
    #[error("the stream did not acknowledge a published message: {0}")]
    Ack(BoxError),
    #[error(transparent)]
    Feeds(#[from] tidewatch_engine::feeds::FeedError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Wraps a client error with what was being done.
pub(crate) fn nats<E: Into<BoxError>>(op: impl Into<String>) -> impl FnOnce(E) -> Error {
    let op = op.into();
    move |e| Error::Nats { op, source: e.into() }
}

/// Runs a NATS operation with a deadline; missing it is an error like any
/// other of `op`. For reads that end only when the server says so (listing
/// a bucket's keys reads an ordered consumer to its end), which may never
/// happen while a stream has no leader.
pub(crate) async fn within<T>(
    limit: std::time::Duration,
    op: &str,
    run: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    match tokio::time::timeout(limit, run).await {
        Ok(done) => done,
        Err(elapsed) => Err(nats(op)(elapsed)),
    }
}

/// Where a worker keeps partition `p`'s store (index, database, checkpoints)
/// under its data directory: one directory per partition, so a partition
/// can move between workers without splitting anything.
pub fn shard_dir(data: &std::path::Path, p: u32) -> std::path::PathBuf {
    data.join(format!("part-{p}"))
}
