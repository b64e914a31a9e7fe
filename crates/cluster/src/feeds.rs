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
//! use. An edit (read the set, change it, write it back: the feeds API of
//! `tidewatch serve --nats`) writes with [`put_feeds_if`], which refuses
//! when someone else wrote in between, so two edits never lose one another. [`FeedsWatch`] gives the current set, then every later one; the
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

/// Why [`put_feeds_if`] did not write.
#[derive(Debug, thiserror::Error)]
pub enum PutFeedsError {
    /// The feed set is no longer the one the caller read: read it again,
    /// apply the change again, and retry.
    #[error("the cluster's feeds changed since revision {expected:?} was read")]
    Conflict {
        /// The revision the caller expected (`None`: no feed set yet).
        expected: Option<u64>,
    },
    /// Not a usable feeds file, or the cluster could not be reached.
    #[error(transparent)]
    Cluster(#[from] Error),
}

/// [`put_feeds`], but only if the feed set is still at `expected_revision`
/// (the [`FeedsVersion::revision`] the caller read; `None` when there was
/// no feed set yet), checked by the server as it writes (compare-and-set).
/// Returns the new revision, or [`PutFeedsError::Conflict`] when another
/// write came first.
pub async fn put_feeds_if(cluster: &Cluster, text: &str, expected_revision: Option<u64>) -> Result<u64, PutFeedsError> {
    let defs = parse_feeds(text, "the feeds to publish").map_err(Error::from)?;
    FeedSet::with_known_ids(&[], &defs).map_err(Error::from)?;
    // Revision 0 asks that the key hold nothing yet (not even a deletion).
    let written = cluster
        .feeds_bucket()
        .update(
            FEEDS_KEY,
            text.to_string().into_bytes().into(),
            expected_revision.unwrap_or(0),
        )
        .await;
    match written {
        Ok(revision) => Ok(revision),
        Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => Err(PutFeedsError::Conflict {
            expected: expected_revision,
        }),
        Err(e) => Err(nats("writing the cluster's feeds")(e).into()),
    }
}

/// The text of a feeds file holding `defs`, as [`put_feeds`] takes it and
/// [`parse_feeds`] reads it back (the single-node feeds file's format:
/// TOML strings escape quotes, backslashes and control characters, and
/// keep any Unicode).
pub fn feeds_toml(defs: &[FeedDef]) -> String {
    tidewatch_engine::feeds::feeds_toml(defs)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{nats_server_available, NatsServer};
    use proptest::prelude::*;

    fn def(name: &str, query: &str) -> FeedDef {
        FeedDef {
            name: name.into(),
            query: query.into(),
        }
    }

    #[test]
    fn feeds_toml_round_trips_awkward_names_and_queries() {
        let defs = vec![
            def(r#"say "hi""#, r#""climate change" OR #climate"#),
            def("l'été d'O'Brien", "l'été OR café"),
            def(r"back\slash \n not a newline", r#"path\to OR "a \ b""#),
            def("東京 · Zürich · 🌊", "地震 OR Zürich* OR “typographic quotes”"),
            def("tab\tinside", "'single' AND \"double\" -'''triple'''"),
        ];
        let text = feeds_toml(&defs);
        assert_eq!(parse_feeds(&text, "test").unwrap(), defs);
        // What a worker does with it: every query compiles.
        assert_eq!(FeedSet::with_known_ids(&[], &defs).unwrap().len(), 5);
    }

    #[test]
    fn feeds_toml_of_no_feeds_is_an_empty_set() {
        assert_eq!(parse_feeds(&feeds_toml(&[]), "test").unwrap(), Vec::<FeedDef>::new());
    }

    proptest! {
        #[test]
        fn feeds_toml_round_trips_any_names(names in proptest::collection::hash_set("\\PC*[a-zA-Z]\\PC*", 0..5)) {
            let defs: Vec<FeedDef> = names.iter().map(|n| def(n, "rain OR snow")).collect();
            prop_assert_eq!(parse_feeds(&feeds_toml(&defs), "test").unwrap(), defs);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn put_feeds_if_writes_only_over_the_revision_it_read() {
        if !nats_server_available("put_feeds_if_writes_only_over_the_revision_it_read") {
            return;
        }
        let server = NatsServer::start().expect("starting nats-server");
        let mut cfg = ClusterConfig::new(server.url());
        cfg.partitions = Some(2);
        let cluster = Cluster::connect(&cfg).await.expect("connecting");
        let one = feeds_toml(&[def("weather", "rain")]);
        let two = feeds_toml(&[def("weather", "rain OR snow")]);

        // Nothing yet: only "no feed set" is the expected state.
        assert!(matches!(
            put_feeds_if(&cluster, &one, Some(7)).await,
            Err(PutFeedsError::Conflict { expected: Some(7) })
        ));
        let first = put_feeds_if(&cluster, &one, None).await.expect("first write");
        assert!(matches!(
            put_feeds_if(&cluster, &two, None).await,
            Err(PutFeedsError::Conflict { expected: None })
        ));
        // Someone else writes: the revision read before is stale.
        let other = put_feeds(&cluster, &one).await.expect("another write");
        assert!(matches!(
            put_feeds_if(&cluster, &two, Some(first)).await,
            Err(PutFeedsError::Conflict { .. })
        ));
        let now = put_feeds_if(&cluster, &two, Some(other))
            .await
            .expect("over the latest");
        let current = current_feeds(&cluster).await.expect("reading").expect("a feed set");
        assert_eq!(current.revision, now);
        assert_eq!(current.defs, vec![def("weather", "rain OR snow")]);

        // A set that does not compile is refused before anything is written.
        let bad = "[[feed]]\nname = \"x\"\nquery = \"rain AND (snow\"\n";
        assert!(matches!(
            put_feeds_if(&cluster, bad, Some(now)).await,
            Err(PutFeedsError::Cluster(Error::Feeds(_)))
        ));
        assert_eq!(
            current_feeds(&cluster).await.expect("reading").expect("a set").revision,
            now
        );
    }
}
