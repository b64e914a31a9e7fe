//! The cluster's feed set, kept in the `tidewatch-feeds` key-value bucket.
//!
//! The whole feeds file (the TOML a single-node run reads with `--feeds`)
//! is one value under the key [`FEEDS_KEY`]. One key rather than one per
//! feed because a change must reach every worker as one step: a worker
//! that saw half of an edit (a feed renamed: the old name deleted, the new
//! one not yet added) would match some posts against a set nobody wrote.
//! The value's revision is the feed set's version across the cluster.
//!
//! [`put_feeds`] checks the text as a run would (TOML, names, every query
//! compiles) before it writes, so a worker never receives a set it cannot
//! use. [`FeedsWatch`] gives the current set, then every later one; the
//! worker swaps each into its shards' live feeds (see `crate::worker`).

use crate::setup::{Cluster, ClusterConfig};
use crate::{nats, Error, Result};
use async_nats::jetstream::kv;
use futures_util::StreamExt;
use tidewatch_engine::feeds::{parse_feeds, FeedDef, FeedSet};

/// The key holding the feeds file.
pub const FEEDS_KEY: &str = "feeds";

/// Where a feed set came from, for error messages.
const ORIGIN: &str = "the cluster's feeds (tidewatch-feeds/feeds)";

/// One version of the cluster's feed set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedsVersion {
    pub defs: Vec<FeedDef>,
    /// The key-value revision that wrote it.
    pub revision: u64,
}

/// Checks `text` as a feeds file (every query must compile) and makes it
/// the cluster's feed set. Returns the new revision.
pub async fn put_feeds(cluster: &Cluster, text: &str) -> Result<u64> {
    let defs = parse_feeds(text, "the feeds to publish")?;
    FeedSet::with_known_ids(&[], &defs)?;
    cluster
        .feeds_bucket()
        .put(FEEDS_KEY, text.to_string().into_bytes().into())
        .await
        .map_err(nats("writing the cluster's feeds"))
}

/// [`put_feeds`] for callers without an async runtime (`tidewatch feeds
/// push`): connects with `cfg`, writes, disconnects.
pub fn put_feeds_blocking(cfg: &ClusterConfig, text: &str) -> Result<u64> {
    crate::publish::runtime()?.block_on(async {
        let cluster = Cluster::connect(cfg).await?;
        put_feeds(&cluster, text).await
    })
}

/// The cluster's feed set now, if one was ever written.
pub async fn current_feeds(cluster: &Cluster) -> Result<Option<FeedsVersion>> {
    let entry = cluster
        .feeds_bucket()
        .entry(FEEDS_KEY)
        .await
        .map_err(nats("reading the cluster's feeds"))?;
    entry.map(version_of).transpose().map(Option::flatten)
}

/// The feed set as it changes: the current one first (if any), then each
/// new one as it is written.
pub struct FeedsWatch {
    watch: kv::Watch,
}

impl FeedsWatch {
    pub async fn start(cluster: &Cluster) -> Result<FeedsWatch> {
        // With history: the last value comes first, so nothing written
        // between reading it and watching is missed.
        let watch = cluster
            .feeds_bucket()
            .watch_with_history(FEEDS_KEY)
            .await
            .map_err(nats("watching the cluster's feeds"))?;
        Ok(FeedsWatch { watch })
    }

    /// The next feed set. A deleted key is an empty set. A value that is
    /// not a usable feeds file (written around [`put_feeds`]) is an error
    /// naming what is wrong; the caller keeps its current set and may call
    /// again. `None`: the watch ended (the connection closed for good).
    pub async fn next(&mut self) -> Option<Result<FeedsVersion>> {
        loop {
            let entry = match self.watch.next().await? {
                Ok(e) => e,
                Err(e) => return Some(Err(nats("watching the cluster's feeds")(e))),
            };
            if let Some(v) = version_of(entry).transpose() {
                return Some(v);
            }
        }
    }
}

/// The feed set an entry holds (an empty one for a deletion).
fn version_of(entry: kv::Entry) -> Result<Option<FeedsVersion>> {
    let defs = match entry.operation {
        kv::Operation::Put => {
            let text = std::str::from_utf8(&entry.value).map_err(|e| Error::Corrupt {
                bucket: crate::FEEDS_BUCKET,
                key: FEEDS_KEY.to_string(),
                reason: e.to_string(),
            })?;
            let defs = parse_feeds(text, ORIGIN)?;
            FeedSet::with_known_ids(&[], &defs)?;
            defs
        }
        kv::Operation::Delete | kv::Operation::Purge => Vec::new(),
    };
    Ok(Some(FeedsVersion {
        defs,
        revision: entry.revision,
    }))
}
