//! Test helpers. Real `nats-server` processes (one JetStream server, or a
//! 3-node JetStream cluster, on loopback): the harness lives in
//! `tidewatch_sources::nats::testing`, where the NATS partition source's
//! own tests use it too, and is re-exported here. And [`shard_store`],
//! a shard as a worker would leave it, for the view's tests.

pub use tidewatch_sources::nats::testing::*;

use std::path::Path;
use tidewatch_core::Post;
use tidewatch_store::db::FeedRow;
use tidewatch_store::{Store, StoreConfig};

/// Writes one shard store: its feed table and posts with the ids of the
/// feeds they matched, in one commit. The store stays open (as a worker's
/// writer would) and is returned.
pub fn shard_store(dir: &Path, feeds: Vec<FeedRow>, posts: &[(Post, Vec<u32>)]) -> Store {
    let config = StoreConfig {
        retention_ms: None,
        writer_heap_bytes: 50 << 20,
    };
    let (mut store, _) = Store::open(dir, config).expect("opening a shard store");
    store.set_feeds(feeds);
    for (post, feeds) in posts {
        store.add(post, feeds).expect("adding a post");
    }
    store.commit().expect("committing");
    store
}

/// [`shard_store`] with one feed, `weather` (query `query`), under the id
/// `feed_id`, matched by every post; the store is closed.
pub fn weather_shard(dir: &Path, feed_id: u32, query: &str, posts: &[Post]) {
    let feed = FeedRow {
        id: feed_id,
        name: "weather".into(),
        query: query.into(),
        active: true,
    };
    let posts: Vec<(Post, Vec<u32>)> = posts.iter().map(|p| (p.clone(), vec![feed_id])).collect();
    shard_store(dir, vec![feed], &posts);
}
