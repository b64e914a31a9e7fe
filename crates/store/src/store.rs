//! [`Store`]: the index and the database committed together.
//!
//! Between commits the store collects: documents in the index writer,
//! aggregate deltas, deletions, alerts, emerging topics and the inputs'
//! checkpoints. A commit then writes
//!
//! 1. the index, with payload `{"seq": N}`, every document of the batch
//!    carrying batch number N;
//! 2. SQLite, one transaction: the deltas, the checkpoints and
//!    `commit_seq = N`.
//!
//! If the process dies between 1 and 2, the index is one batch ahead of
//! the database. [`Store::open`] sees `index seq = db seq + 1`, deletes
//! batch N from the index and commits that, so both stand at the
//! database's checkpoint, from which the sources resume: every post is
//! counted and indexed exactly once.
//!
//! A store made [`Store::without_post_index`] keeps everything but the
//! posts themselves: aggregates, checkpoints, alerts, topics, narratives
//! and groups (a cluster's detection view, whose posts live in the
//! workers' shards). Its index stays empty and only carries the commit
//! number, so recovery works as above.

use crate::db::{AlertRow, Checkpoint, CommitDelta, Db, FeedRow, MinuteCounts, TopicRow};
use crate::dedup::IdFilter;
use crate::index::PostIndex;
use crate::StoreError;
use rustc_hash::FxHashSet;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use tidewatch_core::query::SentimentClass;
use tidewatch_core::{Post, Timestamp};

/// How the store keeps things.
#[derive(Clone, Debug)]
pub struct StoreConfig {
    /// Posts older than this (event time, ms, behind the newest post seen)
    /// are deleted from the index; aggregates stay. `None` keeps them.
    pub retention_ms: Option<i64>,
    /// Memory the index writer may buffer before flushing a segment.
    pub writer_heap_bytes: usize,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            retention_ms: Some(30 * Timestamp::DAY),
            writer_heap_bytes: 256 << 20,
        }
    }
}

/// Retention deletes run when the cutoff has moved at least this far, so
/// that a commit every second does not rewrite delete bitsets every second.
const RETENTION_STEP_MS: i64 = Timestamp::HOUR;

/// What [`Store::open`] found and repaired.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Recovery {
    /// The sequence number of the last complete commit.
    pub seq: u64,
    /// A batch found in the index but not in the database (the process
    /// stopped between the two writes), deleted from the index.
    pub rolled_back: Option<u64>,
}

/// What one commit wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CommitStats {
    pub seq: u64,
    pub posts: u64,
    pub deletions: u64,
    /// Posts not stored because their id already was.
    pub duplicates: u64,
    /// Set when this commit applied retention up to this time.
    pub retention_cutoff: Option<Timestamp>,
}

/// The data directory's index and database.
pub struct Store {
    dir: PathBuf,
    config: StoreConfig,
    index: PostIndex,
    db: Db,
    /// The last complete commit.
    seq: u64,
    pending: CommitDelta,
    pending_posts: u64,
    pending_deletions: u64,
    newest: Option<Timestamp>,
    retention_applied: Option<Timestamp>,
    /// Every id in the index or in the open commit (see [`crate::dedup`]).
    ids: IdFilter,
    /// The ids added since the last commit (not yet searchable).
    pending_ids: FxHashSet<String>,
    pending_duplicates: u64,
    /// False for a store [`Store::without_post_index`].
    index_posts: bool,
    /// Without a post index: ids of earlier commits of this process (the
    /// newest [`RECENT_IDS`] or more), the only de-duplication left.
    recent_ids: FxHashSet<String>,
}

/// Without a post index, ids are remembered across commits until this many
/// have gathered; then the older ones are forgotten (memory stays bounded).
const RECENT_IDS: usize = 1_000_000;

#[derive(serde::Serialize, serde::Deserialize)]
struct Payload {
    seq: u64,
}

impl Store {
    /// The index directory inside a data directory.
    pub fn index_dir(data_dir: &Path) -> PathBuf {
        data_dir.join("index")
    }

    /// The database file inside a data directory.
    pub fn db_path(data_dir: &Path) -> PathBuf {
        data_dir.join("tidewatch.db")
    }

    /// Opens (or creates) the store in `data_dir` and brings the index and
    /// the database back to the same commit.
    pub fn open(data_dir: &Path, config: StoreConfig) -> Result<(Store, Recovery), StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|source| StoreError::Io {
            path: data_dir.to_path_buf(),
            source,
        })?;
        let db = Db::open(&Store::db_path(data_dir))?;
        let mut index = PostIndex::open(&Store::index_dir(data_dir), config.writer_heap_bytes)?;
        let db_seq = db.commit_seq()?;
        let index_seq = match index.payload()? {
            None => 0,
            Some(p) => {
                serde_json::from_str::<Payload>(&p)
                    .map_err(|e| StoreError::Invalid(format!("index commit payload {p:?}: {e}")))?
                    .seq
            }
        };
        let mut recovery = Recovery {
            seq: db_seq,
            rolled_back: None,
        };
        if index_seq == db_seq + 1 {
            index.delete_batch(index_seq)?;
            index.commit(&payload(db_seq))?;
            recovery.rolled_back = Some(index_seq);
        } else if index_seq != db_seq {
            return Err(StoreError::Invalid(format!(
                "{}: the index is at commit {index_seq} and the database at {db_seq}; \
                 they can only differ by the one commit a crash interrupts",
                data_dir.display()
            )));
        }
        let ids = id_filter(&index)?;
        Ok((
            Store {
                dir: data_dir.to_path_buf(),
                config,
                index,
                db,
                seq: db_seq,
                pending: CommitDelta::default(),
                pending_posts: 0,
                pending_deletions: 0,
                newest: None,
                retention_applied: None,
                ids,
                pending_ids: FxHashSet::default(),
                pending_duplicates: 0,
                index_posts: true,
                recent_ids: FxHashSet::default(),
            },
            recovery,
        ))
    }

    /// This store without a post index: posts are counted in the
    /// aggregates but not indexed (nor kept anywhere else), while alerts,
    /// topics, narratives, groups and checkpoints are stored as usual.
    /// For a data directory whose posts are stored elsewhere (a cluster's
    /// detection view: the workers' shards hold them).
    ///
    /// De-duplication by post id then covers only the posts this process
    /// added since it opened the store (the newest million or more): an
    /// input that resumes at its committed checkpoint, as every source
    /// does, sends nothing older again.
    pub fn without_post_index(mut self) -> Store {
        self.index_posts = false;
        self
    }

    /// False for a store [`Store::without_post_index`].
    pub fn indexes_posts(&self) -> bool {
        self.index_posts
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn index(&self) -> &PostIndex {
        &self.index
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The sequence number of the last complete commit.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Posts added since the last commit.
    pub fn pending_posts(&self) -> u64 {
        self.pending_posts
    }

    /// Adds a post (enriched, redacted) that matched `feeds`: indexed, and
    /// counted in the per-minute aggregates of its event time. A post whose
    /// id is already stored is a duplicate: it is skipped and counted.
    pub fn add(&mut self, post: &Post, feeds: &[u32]) -> Result<(), StoreError> {
        self.add_clustered(post, feeds, None)
    }

    /// [`Store::add`], recording in the index the id of the narrative the
    /// post belongs to (the number of a `tidewatch_core::narrative::NarrativeId`).
    pub fn add_clustered(&mut self, post: &Post, feeds: &[u32], cluster: Option<u64>) -> Result<(), StoreError> {
        if !self.index_posts {
            if self.pending_ids.contains(&post.id) || self.recent_ids.contains(&post.id) {
                self.pending_duplicates += 1;
                return Ok(());
            }
            self.pending_ids.insert(post.id.clone());
            self.pending_posts += 1;
            self.count(post, feeds);
            return Ok(());
        }
        if self.ids.may_contain(post.id.as_bytes())
            && (self.pending_ids.contains(&post.id) || self.index.contains_id(&post.id)?)
        {
            self.pending_duplicates += 1;
            return Ok(());
        }
        self.ids.insert(post.id.as_bytes());
        self.pending_ids.insert(post.id.clone());
        self.index.add_clustered(post, feeds, self.seq + 1, cluster)?;
        self.pending_posts += 1;
        self.count(post, feeds);
        Ok(())
    }

    /// Counts a new post in the per-minute aggregates of its event time.
    fn count(&mut self, post: &Post, feeds: &[u32]) {
        let Some(t) = post.created_at else {
            // No event time, no minute to count it in (it is still indexed).
            return;
        };
        self.newest = self.newest.max(Some(t));
        let minute = t.0.div_euclid(60_000);
        let v = self.pending.volume_minutes.entry(minute).or_default();
        v.0 += 1;
        v.1 += !feeds.is_empty() as i64;
        if feeds.is_empty() {
            return;
        }
        let one = post_counts(post);
        for &f in feeds {
            self.pending.feed_minutes.entry((f, minute)).or_default().add(&one);
        }
    }

    /// An upstream deletion: the post with this (keyed-hash) id leaves the
    /// index at the next commit. Aggregates keep counting it: they record
    /// what was seen.
    pub fn delete(&mut self, id: &str) -> Result<(), StoreError> {
        self.pending_deletions += 1;
        if !self.index_posts {
            return Ok(());
        }
        self.index.delete_id(id)
    }

    /// Where the input `source` stands once everything added so far is
    /// committed.
    pub fn checkpoint(&mut self, source: &str, checkpoint: Checkpoint) {
        match self.pending.checkpoints.iter_mut().find(|(s, _)| s == source) {
            Some((_, c)) => *c = checkpoint,
            None => self.pending.checkpoints.push((source.to_string(), checkpoint)),
        }
    }

    /// Every checkpoint as of the last commit.
    pub fn checkpoints(&self) -> Result<HashMap<String, Checkpoint>, StoreError> {
        self.db.checkpoints()
    }

    /// The full feed table, to record with the next commit.
    pub fn set_feeds(&mut self, feeds: Vec<FeedRow>) {
        self.pending.feeds = Some(feeds);
    }

    /// An alert event, recorded with the next commit (once per id and kind).
    pub fn alert(&mut self, alert: AlertRow) {
        self.pending.alerts.push(alert);
    }

    /// An emerging topic, recorded with the next commit (upserted on id).
    pub fn topic(&mut self, topic: TopicRow) {
        self.pending.topics.push(topic);
    }

    /// A narrative's latest summary, written with the next commit.
    pub fn narrative(&mut self, narrative: crate::db::NarrativeRow) {
        self.pending.narratives.push(narrative);
    }

    /// A coordinated group's latest state, written with the next commit
    /// (the table refuses groups under 5 accounts).
    pub fn coordination_group(&mut self, group: crate::db::CoordinationGroupRow) {
        self.pending.coordination_groups.push(group);
    }

    /// Pseudonymisation epochs whose keys were deleted.
    pub fn epochs_deleted(&mut self, epochs: &[i64]) {
        self.pending.deleted_epochs.extend_from_slice(epochs);
    }

    /// Commits everything since the last commit (see the module doc).
    pub fn commit(&mut self) -> Result<CommitStats, StoreError> {
        let seq = self.seq + 1;
        let mut stats = CommitStats {
            seq,
            posts: self.pending_posts,
            deletions: self.pending_deletions,
            duplicates: self.pending_duplicates,
            retention_cutoff: None,
        };
        let retention = self.config.retention_ms.filter(|_| self.index_posts);
        if let (Some(keep), Some(newest)) = (retention, self.newest) {
            let cutoff = Timestamp(newest.0 - keep);
            if self
                .retention_applied
                .is_none_or(|done| cutoff.0 - done.0 >= RETENTION_STEP_MS)
            {
                self.index.delete_before(cutoff)?;
                self.retention_applied = Some(cutoff);
                stats.retention_cutoff = Some(cutoff);
            }
        }
        self.index.commit(&payload(seq))?;
        self.db.commit(seq, &self.pending)?;
        self.seq = seq;
        self.pending = CommitDelta::default();
        self.pending_posts = 0;
        self.pending_deletions = 0;
        self.pending_duplicates = 0;
        if self.index_posts {
            self.pending_ids.clear();
        } else if self.recent_ids.len() >= RECENT_IDS {
            // The oldest ids go; the newest commit's stay.
            self.recent_ids = std::mem::take(&mut self.pending_ids);
        } else {
            self.recent_ids.extend(self.pending_ids.drain());
        }
        if self.ids.is_full() {
            self.ids = id_filter(&self.index)?;
        }
        Ok(stats)
    }
}

/// A duplicate filter holding every id of the index, with room to grow.
fn id_filter(index: &PostIndex) -> Result<IdFilter, StoreError> {
    let mut ids = IdFilter::with_capacity(index.num_docs() * 2 + 1_000_000);
    index.for_each_id(&mut |id| ids.insert(id))?;
    Ok(ids)
}

fn payload(seq: u64) -> String {
    serde_json::to_string(&Payload { seq }).unwrap_or_default()
}

/// One post's contribution to a (feed, minute) row.
fn post_counts(post: &Post) -> MinuteCounts {
    let mut c = MinuteCounts {
        posts: 1,
        reposts: post.is_repost() as i64,
        replies: post.is_reply() as i64,
        ..Default::default()
    };
    if let Some(s) = &post.sentiment {
        c.sentiment_sum = (s.compound * 10_000.0).round() as i64;
        match SentimentClass::of_compound(s.compound) {
            SentimentClass::Negative => c.negative = 1,
            SentimentClass::Neutral => c.neutral = 1,
            SentimentClass::Positive => c.positive = 1,
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::SearchRequest;
    use tidewatch_core::post::Sentiment;
    use tidewatch_core::query::Query;

    fn post(id: &str, minute: i64, text: &str) -> Post {
        Post {
            id: id.into(),
            platform: "bluesky".into(),
            created_at: Some(Timestamp(minute * 60_000)),
            text: text.into(),
            sentiment: Some(Sentiment {
                compound: 0.5,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn ids(store: &Store, query: &str) -> Vec<String> {
        let req = SearchRequest {
            query: Query::parse(query).unwrap(),
            from: None,
            to: None,
            feed: None,
            limit: 1000,
        };
        let mut v: Vec<String> = store.index().search(&req).unwrap().into_iter().map(|h| h.id).collect();
        v.sort();
        v
    }

    fn keep_all() -> StoreConfig {
        StoreConfig {
            retention_ms: None,
            writer_heap_bytes: 16 << 20,
        }
    }

    #[test]
    fn a_crash_between_index_and_database_commits_is_rolled_back() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut store, rec) = Store::open(dir.path(), keep_all()).unwrap();
            assert_eq!(rec, Recovery::default());
            store.add(&post("a", 10, "river flood"), &[1]).unwrap();
            store.commit().unwrap();
            // The next commit gets as far as the index, then the process dies.
            store.add(&post("b", 11, "river flood again"), &[1]).unwrap();
            store.index.commit(&payload(2)).unwrap();
        }
        let (store, rec) = Store::open(dir.path(), keep_all()).unwrap();
        assert_eq!(
            rec,
            Recovery {
                seq: 1,
                rolled_back: Some(2)
            }
        );
        assert_eq!(ids(&store, "river"), vec!["a"], "batch 2 left the index");
        assert_eq!(
            store.db().aggregates_dump().unwrap().len(),
            2,
            "one feed row, one volume row"
        );
        drop(store);
        // Recovered once: a second start finds both at commit 1.
        let (_, rec) = Store::open(dir.path(), keep_all()).unwrap();
        assert_eq!(rec.rolled_back, None);
    }

    #[test]
    fn uncommitted_work_is_lost_and_checkpoints_move_with_commits() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut store, _) = Store::open(dir.path(), keep_all()).unwrap();
            store.add(&post("a", 10, "one"), &[]).unwrap();
            store.checkpoint(
                "in.jsonl",
                Checkpoint {
                    events: 1,
                    ..Default::default()
                },
            );
            store.commit().unwrap();
            store.add(&post("b", 10, "two"), &[]).unwrap();
            store.checkpoint(
                "in.jsonl",
                Checkpoint {
                    events: 2,
                    ..Default::default()
                },
            );
        }
        let (store, _) = Store::open(dir.path(), keep_all()).unwrap();
        assert_eq!(store.checkpoints().unwrap()["in.jsonl"].events, 1);
        assert_eq!(store.index().num_docs(), 1);
        assert_eq!(store.db().aggregates_dump().unwrap(), vec!["v 10 1 0 0 0 0 0 0 0"]);
    }

    #[test]
    fn retention_deletes_old_posts_and_keeps_their_aggregates() {
        let dir = tempfile::tempdir().unwrap();
        let config = StoreConfig {
            retention_ms: Some(Timestamp::DAY),
            writer_heap_bytes: 16 << 20,
        };
        let (mut store, _) = Store::open(dir.path(), config).unwrap();
        let day = 24 * 60;
        store.add(&post("old", 0, "harbour strike"), &[4]).unwrap();
        store.add(&post("edge", day, "harbour strike"), &[4]).unwrap();
        store.commit().unwrap();
        assert_eq!(ids(&store, "harbour"), vec!["edge", "old"]);
        // Two days on, the first post is more than a day behind the newest.
        store.add(&post("new", 2 * day, "harbour strike"), &[4]).unwrap();
        let stats = store.commit().unwrap();
        assert_eq!(stats.retention_cutoff, Some(Timestamp(day * 60_000)));
        assert_eq!(
            ids(&store, "harbour"),
            vec!["edge", "new"],
            "exactly the post before the cutoff left"
        );
        let feed: u64 = store
            .db()
            .feed_minutes(4, 0, 3 * day)
            .unwrap()
            .iter()
            .map(|(_, c)| c.posts as u64)
            .sum();
        assert_eq!(feed, 3, "aggregates keep the expired post");
    }

    #[test]
    fn an_upstream_deletion_removes_the_post_at_the_next_commit() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, _) = Store::open(dir.path(), keep_all()).unwrap();
        store.add(&post("keep", 5, "bridge closed"), &[2]).unwrap();
        store.add(&post("gone", 6, "bridge closed"), &[2]).unwrap();
        store.commit().unwrap();
        store.delete("gone").unwrap();
        assert_eq!(ids(&store, "bridge"), vec!["gone", "keep"], "not before the commit");
        let stats = store.commit().unwrap();
        assert_eq!(stats.deletions, 1);
        assert_eq!(ids(&store, "bridge"), vec!["keep"]);
        // A deletion may arrive before its post is committed (same batch).
        store.add(&post("fast", 7, "bridge closed"), &[2]).unwrap();
        store.delete("fast").unwrap();
        store.commit().unwrap();
        assert_eq!(ids(&store, "bridge"), vec!["keep"]);
    }

    #[test]
    fn a_post_stored_before_is_not_stored_or_counted_again() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut store, _) = Store::open(dir.path(), keep_all()).unwrap();
            store.add(&post("a", 1, "tide"), &[1]).unwrap();
            store.add(&post("a", 1, "tide"), &[1]).unwrap();
            assert_eq!(store.commit().unwrap().duplicates, 1, "within a commit");
            store.add(&post("a", 1, "tide"), &[1]).unwrap();
            store.add(&post("b", 1, "tide"), &[1]).unwrap();
            assert_eq!(store.commit().unwrap().duplicates, 1, "against the index");
        }
        // Another run, another input holding the same posts.
        let (mut store, _) = Store::open(dir.path(), keep_all()).unwrap();
        store.add(&post("b", 1, "tide"), &[1]).unwrap();
        store.add(&post("c", 1, "tide"), &[1]).unwrap();
        assert_eq!(store.commit().unwrap().duplicates, 1, "after reopening");
        assert_eq!(ids(&store, "tide"), vec!["a", "b", "c"]);
        assert_eq!(
            store.db().aggregates_dump().unwrap(),
            vec!["f 1 1 3 0 0 3 15000 0 0", "v 1 3 3 0 0 0 0 0 0"]
        );
    }

    #[test]
    fn a_store_without_post_index_counts_posts_but_keeps_none() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (store, _) = Store::open(dir.path(), keep_all()).unwrap();
            let mut store = store.without_post_index();
            assert!(!store.indexes_posts());
            store.add(&post("a", 1, "tide"), &[1]).unwrap();
            store.add(&post("a", 1, "tide"), &[1]).unwrap();
            store.checkpoint(
                "source:detect",
                Checkpoint {
                    events: 2,
                    ..Default::default()
                },
            );
            let first = store.commit().unwrap();
            assert_eq!((first.posts, first.duplicates), (1, 1), "within a commit");
            // Ids of earlier commits of this process are still known.
            store.add(&post("a", 1, "tide"), &[1]).unwrap();
            store.add(&post("b", 2, "tide"), &[]).unwrap();
            store.delete("b").unwrap();
            let second = store.commit().unwrap();
            assert_eq!((second.posts, second.duplicates, second.deletions), (1, 1, 1));
            assert_eq!(ids(&store, "tide"), Vec::<String>::new(), "nothing indexed");
        }
        // Reopened as a normal store: index and database agree on commit 2,
        // the aggregates and the checkpoint are there, the index is empty.
        let (store, rec) = Store::open(dir.path(), keep_all()).unwrap();
        assert_eq!(
            rec,
            Recovery {
                seq: 2,
                rolled_back: None
            }
        );
        assert_eq!(store.index().num_docs(), 0);
        assert_eq!(store.checkpoints().unwrap()["source:detect"].events, 2);
        assert_eq!(
            store.db().aggregates_dump().unwrap(),
            vec!["f 1 1 1 0 0 1 5000 0 0", "v 1 1 1 0 0 0 0 0 0", "v 2 1 0 0 0 0 0 0 0"]
        );
    }

    #[test]
    fn aggregates_count_sentiment_reposts_and_replies_per_feed_and_minute() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, _) = Store::open(dir.path(), keep_all()).unwrap();
        let mut reply = post("r", 3, "meh");
        reply.reply_to = Some("x".into());
        reply.sentiment = Some(Sentiment {
            compound: -0.6,
            ..Default::default()
        });
        store.add(&reply, &[1, 2]).unwrap();
        store.add(&post("p", 3, "great"), &[1]).unwrap();
        store.add(&post("q", 3, "none"), &[]).unwrap();
        store.commit().unwrap();
        assert_eq!(
            store.db().aggregates_dump().unwrap(),
            vec![
                "f 1 3 2 1 0 1 -1000 0 1",
                "f 2 3 1 1 0 0 -6000 0 1",
                "v 3 3 2 0 0 0 0 0 0",
            ]
        );
    }
}
