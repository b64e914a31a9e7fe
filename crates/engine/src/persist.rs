//! Persisting a run into the store: every post, deletion and input
//! checkpoint, committed every few seconds.
//!
//! A [`Persister`] sits inside a run's sink. Posts and deletions go to the
//! store as they arrive; at the end of a batch the inputs' positions become
//! checkpoints, and when a commit is due (time or size) the store commits
//! them together with everything before (see `tidewatch_store::Store`). A
//! later run with the same inputs asks [`resume_points`] where to start, so
//! after a crash nothing acknowledged is lost and nothing is counted twice.

use crate::datadir::DataDir;
use crate::decode::{Position, Resume};
use crate::live::LiveFeeds;
use crate::run::{MatchedPost, SinkError};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tidewatch_core::pseudonym::Keyring;
use tidewatch_core::Deletion;
use tidewatch_store::db::{Checkpoint, FeedRow};
use tidewatch_store::{CommitStats, Recovery, Store, StoreConfig, StoreError};

/// When a commit is due.
#[derive(Clone, Copy, Debug)]
pub struct CommitPolicy {
    /// At most this long between commits (what a crash can make a source
    /// read again).
    pub interval: Duration,
    /// At most this many posts in one commit (bounds the writer's memory).
    pub max_posts: u64,
}

impl Default for CommitPolicy {
    fn default() -> Self {
        CommitPolicy {
            interval: Duration::from_secs(5),
            max_posts: 200_000,
        }
    }
}

/// A store opened for a run ([`open_for_run`]).
pub struct Opened {
    pub persister: Persister,
    /// The feeds, with the ids the store knows.
    pub live: Arc<LiveFeeds>,
    /// Where each input resumes, by checkpoint name.
    pub resume: HashMap<String, Resume>,
    /// What opening repaired (a commit interrupted by a crash).
    pub recovery: Recovery,
}

/// Why a store could not be opened for a run.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("opening the store in {dir}: {source}")]
    Store { dir: PathBuf, source: StoreError },
    #[error(transparent)]
    Feeds(#[from] crate::feeds::FeedError),
}

/// Opens the store in `data` for a run over `inputs` (checkpoint names by
/// position: files, then `source:NAME`) with the feeds `defs`: the feeds
/// keep the ids the store knows, and posts older than `retention_days`
/// (0: kept) leave the index.
pub fn open_for_run(
    data: &DataDir,
    inputs: Vec<Option<String>>,
    defs: &[crate::feeds::FeedDef],
    keyring: &Arc<Keyring>,
    retention_days: u32,
    commit: CommitPolicy,
) -> Result<Opened, OpenError> {
    let config = StoreConfig {
        retention_ms: (retention_days > 0).then(|| retention_days as i64 * tidewatch_core::Timestamp::DAY),
        ..Default::default()
    };
    let at = |source| OpenError::Store {
        dir: data.path().to_path_buf(),
        source,
    };
    let (store, recovery) = Store::open(data.path(), config).map_err(at)?;
    let known: Vec<(String, u32)> = store
        .db()
        .feeds()
        .map_err(at)?
        .into_iter()
        .map(|f| (f.name, f.id))
        .collect();
    let live = Arc::new(LiveFeeds::from_set(crate::feeds::FeedSet::with_known_ids(
        &known, defs,
    )?));
    let resume = resume_points(&store).map_err(at)?;
    let persister =
        Persister::with_inputs(store, inputs, live.clone(), data.clone(), keyring.clone(), commit).map_err(at)?;
    Ok(Opened {
        persister,
        live,
        resume,
        recovery,
    })
}

/// Where each input resumes, from the store's checkpoints.
pub fn resume_points(store: &Store) -> Result<HashMap<String, Resume>, StoreError> {
    Ok(store
        .checkpoints()?
        .into_iter()
        .map(|(source, c)| {
            (
                source,
                Resume {
                    events: c.events,
                    done: c.done,
                    offset: c.offset,
                },
            )
        })
        .collect())
}

/// The feed table as the store records it: every feed ever known (so old
/// aggregates keep their names), active or not.
pub fn feed_rows(live: &LiveFeeds, previous: &[FeedRow]) -> Vec<FeedRow> {
    let current = live.current();
    let set = &current.set;
    let old: HashMap<u32, &FeedRow> = previous.iter().map(|r| (r.id, r)).collect();
    set.known_ids()
        .map(|(name, id)| match set.feeds.get(&id) {
            Some(f) => FeedRow {
                id,
                name: name.to_string(),
                query: f.text.clone(),
                active: true,
            },
            None => FeedRow {
                id,
                name: name.to_string(),
                query: old.get(&id).map(|r| r.query.clone()).unwrap_or_default(),
                active: false,
            },
        })
        .collect()
}

/// The cursors (checkpoint offsets) the store has committed, by checkpoint
/// name: what an HTTP push source waits for before it acknowledges a
/// request.
#[derive(Debug, Default)]
pub struct CommitWatch {
    committed: Mutex<HashMap<String, u64>>,
}

impl CommitWatch {
    /// The offset of `checkpoint` as of the last commit of this run.
    pub fn committed(&self, checkpoint: &str) -> Option<u64> {
        self.lock().get(checkpoint).copied()
    }

    fn publish(&self, offsets: &mut HashMap<String, u64>) {
        let mut committed = self.lock();
        for (name, offset) in offsets.drain() {
            committed.insert(name, offset);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, u64>> {
        self.committed.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Writes a run into the store.
pub struct Persister {
    store: Store,
    /// The run's inputs, by position; `None` for standard input, which
    /// cannot be resumed and has no checkpoint.
    inputs: Vec<Option<String>>,
    live: Arc<LiveFeeds>,
    feeds_version: Option<u64>,
    recorded_feeds: Vec<FeedRow>,
    data: DataDir,
    keyring: Arc<Keyring>,
    keyring_generation: Option<u64>,
    /// Whether this store's data directory keeps the keyring (not when the
    /// keys live elsewhere, as a cluster worker's do).
    saves_keyring: bool,
    policy: CommitPolicy,
    last_commit: Instant,
    /// The first store error since the last commit: reported at the end of
    /// the batch, which stops the run.
    error: Option<StoreError>,
    totals: CommitStats,
    /// Checkpoint offsets recorded since the last commit, published to
    /// `watch` once committed.
    pending_offsets: HashMap<String, u64>,
    watch: Arc<CommitWatch>,
}

impl Persister {
    pub fn new(
        store: Store,
        paths: &[PathBuf],
        live: Arc<LiveFeeds>,
        data: DataDir,
        keyring: Arc<Keyring>,
        policy: CommitPolicy,
    ) -> Result<Persister, StoreError> {
        let inputs = paths
            .iter()
            .map(|p| (p.as_os_str() != "-").then(|| p.display().to_string()))
            .collect();
        Persister::with_inputs(store, inputs, live, data, keyring, policy)
    }

    /// A persister whose inputs have these checkpoint names, by position
    /// (`None`: not resumable, no checkpoint): file paths, then
    /// `source:NAME` for live sources ([`crate::sources::checkpoint_name`]).
    pub fn with_inputs(
        store: Store,
        inputs: Vec<Option<String>>,
        live: Arc<LiveFeeds>,
        data: DataDir,
        keyring: Arc<Keyring>,
        policy: CommitPolicy,
    ) -> Result<Persister, StoreError> {
        let recorded_feeds = store.db().feeds()?;
        Ok(Persister {
            store,
            inputs,
            live,
            feeds_version: None,
            recorded_feeds,
            data,
            keyring,
            keyring_generation: None,
            saves_keyring: true,
            policy,
            last_commit: Instant::now(),
            error: None,
            totals: CommitStats::default(),
            pending_offsets: HashMap::new(),
            watch: Arc::default(),
        })
    }

    /// For posts pseudonymised elsewhere (a cluster's publisher holds the
    /// keys): commits never write a keyring into the data directory.
    pub fn keys_kept_elsewhere(mut self) -> Persister {
        self.saves_keyring = false;
        self
    }

    /// What the store has committed of each input's offset (cursor).
    pub fn commit_watch(&self) -> Arc<CommitWatch> {
        self.watch.clone()
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Totals over every commit of this run (`seq` is the last one).
    pub fn totals(&self) -> CommitStats {
        self.totals
    }

    /// Stores a post; `narrative` is the narrative it joined, when
    /// narratives are watched (the index's `cluster` field).
    pub fn post(&mut self, m: &MatchedPost, narrative: Option<u64>) {
        if self.error.is_none() {
            if let Err(e) = self.store.add_clustered(&m.post, &m.feeds, narrative) {
                self.error = Some(e);
            }
        }
    }

    pub fn deletion(&mut self, d: &Deletion) {
        if self.error.is_none() {
            if let Err(e) = self.store.delete(&d.id) {
                self.error = Some(e);
            }
        }
    }

    /// Alert events to record with the next commit.
    pub fn alerts(&mut self, rows: Vec<tidewatch_store::db::AlertRow>) {
        for r in rows {
            self.store.alert(r);
        }
    }

    /// Narrative summaries to record with the next commit.
    pub fn narratives(&mut self, rows: Vec<tidewatch_store::db::NarrativeRow>) {
        for r in rows {
            self.store.narrative(r);
        }
    }

    /// Coordinated groups to record with the next commit.
    pub fn coordination_groups(&mut self, rows: Vec<tidewatch_store::db::CoordinationGroupRow>) {
        for r in rows {
            self.store.coordination_group(r);
        }
    }

    /// Emerging topics to record with the next commit.
    pub fn topics(&mut self, rows: Vec<tidewatch_store::db::TopicRow>) {
        for r in rows {
            self.store.topic(r);
        }
    }

    /// Records where the inputs stand after a batch; commits when due.
    pub fn batch_end(&mut self, at: &Position, finished: &[Position]) -> Result<(), SinkError> {
        if let Some(e) = self.error.take() {
            return Err(Box::new(e));
        }
        for p in finished.iter().chain(std::iter::once(at)) {
            if let Some(Some(source)) = self.inputs.get(p.input) {
                self.store.checkpoint(
                    source,
                    Checkpoint {
                        events: p.events,
                        offset: p.offset,
                        done: p.done,
                    },
                );
                if let Some(offset) = p.offset {
                    self.pending_offsets.insert(source.clone(), offset);
                }
            }
        }
        if self.last_commit.elapsed() >= self.policy.interval || self.store.pending_posts() >= self.policy.max_posts {
            self.commit()?;
        }
        Ok(())
    }

    /// Where each input stood at the last commit, by checkpoint name
    /// (saved with the detectors' state, see [`crate::state`]).
    pub fn input_positions(&self) -> Result<crate::state::InputPositions, StoreError> {
        Ok(self
            .store
            .checkpoints()?
            .into_iter()
            .map(|(name, c)| {
                let at = crate::state::InputAt {
                    events: c.events,
                    offset: c.offset,
                };
                (name, at)
            })
            .collect())
    }

    /// Commits now: the keyring first (posts in the commit were hashed with
    /// its keys), then the store.
    pub fn commit(&mut self) -> Result<CommitStats, StoreError> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        let generation = self.keyring.generation();
        if self.saves_keyring && self.keyring_generation != Some(generation) {
            self.data
                .save_keyring(&self.keyring)
                .map_err(|e| StoreError::Invalid(e.to_string()))?;
            self.keyring_generation = Some(generation);
            self.store.epochs_deleted(&self.keyring.take_deleted());
        }
        let version = self.live.current().version();
        if self.feeds_version != Some(version) {
            let rows = feed_rows(&self.live, &self.recorded_feeds);
            self.store.set_feeds(rows.clone());
            self.recorded_feeds = rows;
            self.feeds_version = Some(version);
        }
        let stats = self.store.commit()?;
        self.watch.publish(&mut self.pending_offsets);
        self.last_commit = Instant::now();
        self.totals.seq = stats.seq;
        self.totals.posts += stats.posts;
        self.totals.deletions += stats.deletions;
        self.totals.duplicates += stats.duplicates;
        self.totals.retention_cutoff = stats.retention_cutoff.or(self.totals.retention_cutoff);
        Ok(stats)
    }
}
