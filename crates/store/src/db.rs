//! The SQLite half of the store: small relational state a user can read
//! with the `sqlite3` shell.
//!
//! Everything in it changes in one transaction per store commit
//! ([`Db::commit`]): aggregate deltas, feeds, alerts, emerging topics, key
//! epochs, source checkpoints and the commit's sequence number. Aggregates are integer
//! sums keyed by (feed, minute), so adding the deltas of one commit is
//! associative: however a stream is cut into commits (or restarted after a
//! crash), the totals are the same.
//!
//! Tables (times are event time in unix minutes; views show them as text):
//!
//! | table / view        | one row per                                   |
//! |---------------------|-----------------------------------------------|
//! | `meta`              | setting (`schema`, `commit_seq`)              |
//! | `feeds`             | feed ever known: stable id, name, query, active |
//! | `feed_minute`       | feed × minute with matches: posts, sentiment classes, sentiment sum (×10⁴), reposts, replies |
//! | `volume_minute`     | minute: all posts, posts matching any feed    |
//! | `alerts`            | alert event (`opened`/`closed`) with its JSON |
//! | `topics`            | emerging topic: first and last seen, score, terms, suggested query, its JSON |
//! | `coordination_groups` | coordinated group (≥ 5 accounts, enforced by a CHECK): epoch, times, size, score, its JSON with pseudonyms and evidence |
//! | `narratives`        | narrative (near-duplicate cluster): first and last seen, posts, distinct-account count, growth, redacted representative text, its JSON (counts, never pseudonyms) |
//! | `key_epochs`        | pseudonymisation epoch: when its key was deleted (never the key) |
//! | `checkpoints`       | input: events consumed, byte offset, done     |
//! | `feed_minutes` (view), `feed_hours` (view), `feed_days` (view) | the series by feed name and readable time |

use crate::StoreError;
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use rustc_hash::FxHashMap;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The schema version this code writes.
const SCHEMA: i64 = 1;

const CREATE: &str = "
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS feeds (
    id     INTEGER PRIMARY KEY,      -- stable; never reused for another name
    name   TEXT NOT NULL UNIQUE,
    query  TEXT NOT NULL,
    active INTEGER NOT NULL          -- 0 once removed from the feeds file
);
CREATE TABLE IF NOT EXISTS feed_minute (
    feed          INTEGER NOT NULL,  -- feeds.id
    minute        INTEGER NOT NULL,  -- event time, unix minutes
    posts         INTEGER NOT NULL,
    negative      INTEGER NOT NULL,
    neutral       INTEGER NOT NULL,
    positive      INTEGER NOT NULL,
    sentiment_sum INTEGER NOT NULL,  -- sum of VADER compound x 10000
    reposts       INTEGER NOT NULL,
    replies       INTEGER NOT NULL,
    PRIMARY KEY (feed, minute)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS volume_minute (
    minute  INTEGER PRIMARY KEY,
    posts   INTEGER NOT NULL,
    matched INTEGER NOT NULL         -- posts that matched at least one feed
);
CREATE TABLE IF NOT EXISTS alerts (
    id        TEXT NOT NULL,         -- stable: hash of feed name and onset
    kind      TEXT NOT NULL,         -- opened | closed
    feed      TEXT NOT NULL,         -- feed name
    onset     INTEGER NOT NULL,      -- unix ms
    record    TEXT NOT NULL,         -- the whole alert as JSON
    PRIMARY KEY (id, kind)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS topics (
    id              TEXT PRIMARY KEY,  -- stable: hash of the topic's founding key
    first_seen      INTEGER NOT NULL,  -- unix ms, event time
    last_seen       INTEGER NOT NULL,  -- unix ms, event time: last listed as emerging
    score           REAL NOT NULL,
    terms           TEXT NOT NULL,     -- its keys in query form, comma-separated
    suggested_query TEXT,              -- a detection feed for it, when one was found
    record          TEXT NOT NULL      -- the whole topic as JSON
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS coordination_groups (
    id         TEXT PRIMARY KEY,     -- stable within a pseudonym epoch (see tidewatch_engine::coordination)
    epoch      INTEGER NOT NULL,     -- pseudonym epoch of its members
    first_seen INTEGER NOT NULL,     -- unix ms, event time: first coincidence
    last_seen  INTEGER NOT NULL,     -- unix ms, event time: last coincidence
    accounts   INTEGER NOT NULL CHECK (accounts >= 5), -- never a group under k = 5
    score      REAL NOT NULL,
    types      TEXT NOT NULL,        -- edge types present, comma-separated
    record     TEXT NOT NULL         -- the whole group as JSON: pseudonyms, edges, evidence
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS narratives (
    id             TEXT PRIMARY KEY,   -- stable: hash of its founding post's id
    first_seen     INTEGER NOT NULL,   -- unix ms, event time
    last_seen      INTEGER NOT NULL,   -- unix ms, event time: its newest post
    posts          INTEGER NOT NULL,   -- near-duplicates and reposts counted in it
    accounts       INTEGER NOT NULL,   -- distinct accounts (a count, never who)
    growth         REAL NOT NULL,      -- last 10 minutes' rate over the hour before's
    representative TEXT NOT NULL,      -- a member's redacted text
    record         TEXT NOT NULL       -- the whole summary as JSON
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS key_epochs (
    epoch      INTEGER PRIMARY KEY,  -- epoch number (event time / epoch length)
    deleted_at INTEGER               -- commit seq when its key was deleted
);
CREATE TABLE IF NOT EXISTS checkpoints (
    source  TEXT PRIMARY KEY,        -- input path
    events  INTEGER NOT NULL,        -- events consumed from it
    offset  INTEGER,                 -- byte offset after the last whole record, when known
    done    INTEGER NOT NULL         -- 1 once read to the end
);
CREATE VIEW IF NOT EXISTS feed_minutes AS
    SELECT f.name AS feed, datetime(m.minute * 60, 'unixepoch') AS minute, m.posts,
           m.negative, m.neutral, m.positive,
           round(m.sentiment_sum / 10000.0 / m.posts, 4) AS mean_sentiment, m.reposts, m.replies
    FROM feed_minute m JOIN feeds f ON f.id = m.feed;
CREATE VIEW IF NOT EXISTS feed_hours AS
    SELECT f.name AS feed, datetime(m.minute / 60 * 3600, 'unixepoch') AS hour, sum(m.posts) AS posts,
           sum(m.negative) AS negative, sum(m.neutral) AS neutral, sum(m.positive) AS positive,
           sum(m.reposts) AS reposts, sum(m.replies) AS replies
    FROM feed_minute m JOIN feeds f ON f.id = m.feed GROUP BY m.feed, m.minute / 60;
CREATE VIEW IF NOT EXISTS feed_days AS
    SELECT f.name AS feed, date(m.minute / 1440 * 86400, 'unixepoch') AS day, sum(m.posts) AS posts,
           sum(m.negative) AS negative, sum(m.neutral) AS neutral, sum(m.positive) AS positive,
           sum(m.reposts) AS reposts, sum(m.replies) AS replies
    FROM feed_minute m JOIN feeds f ON f.id = m.feed GROUP BY m.feed, m.minute / 1440;
";

/// Counts of one (feed, minute); also the shape of a delta.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MinuteCounts {
    pub posts: i64,
    pub negative: i64,
    pub neutral: i64,
    pub positive: i64,
    /// Sum of the VADER compound scores, × 10⁴ (integer, so sums are exact).
    pub sentiment_sum: i64,
    pub reposts: i64,
    pub replies: i64,
}

/// The seven counts of a `feed_minute` row, from column `first` on
/// (posts, negative, neutral, positive, sentiment_sum, reposts, replies).
fn minute_counts(r: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<MinuteCounts> {
    Ok(MinuteCounts {
        posts: r.get(first)?,
        negative: r.get(first + 1)?,
        neutral: r.get(first + 2)?,
        positive: r.get(first + 3)?,
        sentiment_sum: r.get(first + 4)?,
        reposts: r.get(first + 5)?,
        replies: r.get(first + 6)?,
    })
}

impl MinuteCounts {
    pub fn add(&mut self, o: &MinuteCounts) {
        self.posts += o.posts;
        self.negative += o.negative;
        self.neutral += o.neutral;
        self.positive += o.positive;
        self.sentiment_sum += o.sentiment_sum;
        self.reposts += o.reposts;
        self.replies += o.replies;
    }
}

/// Where reading an input stopped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Checkpoint {
    /// Events (posts and deletions) consumed from the input.
    pub events: u64,
    /// Byte offset (in the decompressed input) after the last record all of
    /// whose events are consumed, when the format allows resuming there.
    pub offset: Option<u64>,
    /// The input was read to the end.
    pub done: bool,
}

/// A feed as recorded in the `feeds` table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedRow {
    pub id: u32,
    pub name: String,
    pub query: String,
    pub active: bool,
}

/// An alert event as recorded in the `alerts` table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertRow {
    pub id: String,
    pub kind: String,
    pub feed: String,
    pub onset_ms: i64,
    /// The whole alert, JSON.
    pub record: String,
}

/// An emerging topic as recorded in the `topics` table.
#[derive(Clone, Debug, PartialEq)]
pub struct TopicRow {
    pub id: String,
    pub first_seen_ms: i64,
    pub last_seen_ms: i64,
    pub score: f64,
    /// Its keys in query form, comma-separated.
    pub terms: String,
    pub suggested_query: Option<String>,
    /// The whole topic, JSON.
    pub record: String,
}

/// A coordinated group as recorded in the `coordination_groups` table.
#[derive(Clone, Debug, PartialEq)]
pub struct CoordinationGroupRow {
    pub id: String,
    pub epoch: i64,
    pub first_seen_ms: i64,
    pub last_seen_ms: i64,
    /// Distinct member accounts (the table refuses fewer than 5).
    pub accounts: i64,
    pub score: f64,
    /// Edge types present, comma-separated.
    pub types: String,
    /// The whole group, JSON.
    pub record: String,
}

/// A narrative as recorded in the `narratives` table.
#[derive(Clone, Debug, PartialEq)]
pub struct NarrativeRow {
    pub id: String,
    pub first_seen_ms: i64,
    pub last_seen_ms: i64,
    pub posts: i64,
    /// Distinct accounts: a count only.
    pub accounts: i64,
    pub growth: f64,
    /// Redacted text of one of its posts.
    pub representative: String,
    /// The whole summary, JSON.
    pub record: String,
}

/// Everything one store commit writes to SQLite.
#[derive(Debug, Default)]
pub struct CommitDelta {
    pub feed_minutes: FxHashMap<(u32, i64), MinuteCounts>,
    /// Per minute: (posts, matched).
    pub volume_minutes: FxHashMap<i64, (i64, i64)>,
    /// The full feed table, when it changed since the last commit.
    pub feeds: Option<Vec<FeedRow>>,
    pub alerts: Vec<AlertRow>,
    /// Emerging topics, new or updated (upserted on id).
    pub topics: Vec<TopicRow>,
    /// Coordinated groups, new or updated (upserted on id).
    pub coordination_groups: Vec<CoordinationGroupRow>,
    /// Narratives, new or updated (upserted on id).
    pub narratives: Vec<NarrativeRow>,
    pub checkpoints: Vec<(String, Checkpoint)>,
    /// Epochs whose keys were deleted.
    pub deleted_epochs: Vec<i64>,
}

impl CommitDelta {
    pub fn is_empty(&self) -> bool {
        self.feed_minutes.is_empty()
            && self.volume_minutes.is_empty()
            && self.feeds.is_none()
            && self.alerts.is_empty()
            && self.topics.is_empty()
            && self.coordination_groups.is_empty()
            && self.narratives.is_empty()
            && self.checkpoints.is_empty()
            && self.deleted_epochs.is_empty()
    }
}

/// The opened database.
pub struct Db {
    path: PathBuf,
    conn: Connection,
}

impl Db {
    /// Opens (or creates) the database at `path`.
    pub fn open(path: &Path) -> Result<Db, StoreError> {
        let conn = Connection::open(path).map_err(|e| db_err(path, e))?;
        let db = Db {
            path: path.to_path_buf(),
            conn,
        };
        // WAL: a commit is one append, readers (the dashboard, a sqlite3
        // shell) never block the writer, and a killed process loses only
        // what it had not committed. NORMAL sync is durable across process
        // crashes (fsync at checkpoints only; a power cut may lose the
        // latest commits, never corrupt).
        db.conn
            .execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")
            .map_err(|e| db.err(e))?;
        // In one transaction, so a reader never sees some tables and not
        // others (the webhook deliverer looks while a store is created).
        db.conn.execute_batch("BEGIN").map_err(|e| db.err(e))?;
        db.conn.execute_batch(CREATE).map_err(|e| db.err(e))?;
        db.conn.execute_batch("COMMIT").map_err(|e| db.err(e))?;
        match db.meta("schema")? {
            None => db.set_meta("schema", &SCHEMA.to_string())?,
            Some(v) if v == SCHEMA.to_string() => {}
            Some(v) => {
                return Err(StoreError::Invalid(format!(
                    "{}: schema version {v}, this tidewatch reads {SCHEMA}",
                    path.display()
                )))
            }
        }
        Ok(db)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, e: rusqlite::Error) -> StoreError {
        db_err(&self.path, e)
    }

    fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .map_err(|e| self.err(e))
    }

    fn set_meta(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![key, value],
            )
            .map(drop)
            .map_err(|e| self.err(e))
    }

    /// The sequence number of the last commit (0 for a new database).
    pub fn commit_seq(&self) -> Result<u64, StoreError> {
        Ok(self.meta("commit_seq")?.and_then(|v| v.parse().ok()).unwrap_or(0))
    }

    /// Writes `delta` and sets the commit sequence number to `seq`, in one
    /// transaction.
    pub fn commit(&mut self, seq: u64, delta: &CommitDelta) -> Result<(), StoreError> {
        let path = self.path.clone();
        let err = |e| db_err(&path, e);
        let tx = self.conn.transaction().map_err(err)?;
        write_delta(&tx, delta).map_err(err)?;
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('commit_seq', ?1) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [seq.to_string()],
        )
        .map_err(err)?;
        tx.commit().map_err(err)
    }

    /// Every input's checkpoint, by path.
    pub fn checkpoints(&self) -> Result<HashMap<String, Checkpoint>, StoreError> {
        let mut st = self
            .conn
            .prepare("SELECT source, events, offset, done FROM checkpoints")
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    Checkpoint {
                        events: r.get::<_, i64>(1)? as u64,
                        offset: r.get::<_, Option<i64>>(2)?.map(|o| o as u64),
                        done: r.get::<_, i64>(3)? != 0,
                    },
                ))
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// Every feed ever recorded, by id.
    pub fn feeds(&self) -> Result<Vec<FeedRow>, StoreError> {
        let mut st = self
            .conn
            .prepare("SELECT id, name, query, active FROM feeds ORDER BY id")
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map([], |r| {
                Ok(FeedRow {
                    id: r.get::<_, i64>(0)? as u32,
                    name: r.get(1)?,
                    query: r.get(2)?,
                    active: r.get::<_, i64>(3)? != 0,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// The per-minute counts of feed `id` in `[from, to)` (unix minutes),
    /// ascending; minutes without matches are absent.
    pub fn feed_minutes(&self, id: u32, from: i64, to: i64) -> Result<Vec<(i64, MinuteCounts)>, StoreError> {
        let mut st = self
            .conn
            .prepare(
                "SELECT minute, posts, negative, neutral, positive, sentiment_sum, reposts, replies
                 FROM feed_minute WHERE feed = ?1 AND minute >= ?2 AND minute < ?3 ORDER BY minute",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map(params![id as i64, from, to], |r| Ok((r.get(0)?, minute_counts(r, 1)?)))
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// Every feed's per-minute counts in `[from, to)` (unix minutes), by
    /// minute then feed id, handed to `f` one row at a time (a week of
    /// minutes of thousands of feeds is not held in memory). Returns the
    /// rows read.
    pub fn each_feed_minute(
        &self,
        from: i64,
        to: i64,
        mut f: impl FnMut(u32, i64, &MinuteCounts),
    ) -> Result<u64, StoreError> {
        let mut st = self
            .conn
            .prepare(
                "SELECT feed, minute, posts, negative, neutral, positive, sentiment_sum, reposts, replies
                 FROM feed_minute WHERE minute >= ?1 AND minute < ?2 ORDER BY minute, feed",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map(params![from, to], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, minute_counts(r, 2)?))
            })
            .map_err(|e| self.err(e))?;
        let mut n = 0;
        for row in rows {
            let (feed, minute, counts) = row.map_err(|e| self.err(e))?;
            f(feed as u32, minute, &counts);
            n += 1;
        }
        Ok(n)
    }

    /// Every row of `feed_minute` and `volume_minute`, in key order, as
    /// text: what two runs must agree on (the crash test compares these).
    pub fn aggregates_dump(&self) -> Result<Vec<String>, StoreError> {
        let mut out = Vec::new();
        for sql in [
            "SELECT 'f', feed, minute, posts, negative, neutral, positive, sentiment_sum, reposts, replies
             FROM feed_minute ORDER BY feed, minute",
            "SELECT 'v', minute, posts, matched, 0, 0, 0, 0, 0, 0 FROM volume_minute ORDER BY minute",
        ] {
            let mut st = self.conn.prepare(sql).map_err(|e| self.err(e))?;
            let rows = st
                .query_map([], |r| {
                    let mut line = r.get::<_, String>(0)?;
                    for i in 1..10 {
                        line.push(' ');
                        line.push_str(&r.get::<_, i64>(i)?.to_string());
                    }
                    Ok(line)
                })
                .map_err(|e| self.err(e))?;
            for row in rows {
                out.push(row.map_err(|e| self.err(e))?);
            }
        }
        Ok(out)
    }

    /// Alert events, oldest onset first, optionally only those with an
    /// onset at or after `since_ms`.
    pub fn alerts(&self, since_ms: Option<i64>) -> Result<Vec<AlertRow>, StoreError> {
        let mut st = self
            .conn
            .prepare(
                "SELECT id, kind, feed, onset, record FROM alerts WHERE onset >= ?1
                 ORDER BY onset, feed, kind DESC",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map([since_ms.unwrap_or(i64::MIN)], |r| {
                Ok(AlertRow {
                    id: r.get(0)?,
                    kind: r.get(1)?,
                    feed: r.get(2)?,
                    onset_ms: r.get(3)?,
                    record: r.get(4)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// Whether alert event (`id`, `kind`) is recorded.
    pub fn has_alert(&self, id: &str, kind: &str) -> Result<bool, StoreError> {
        self.conn
            .query_row("SELECT 1 FROM alerts WHERE id = ?1 AND kind = ?2", [id, kind], |_| {
                Ok(())
            })
            .optional()
            .map(|r| r.is_some())
            .map_err(|e| self.err(e))
    }

    /// Emerging topics last seen at or after `since_ms` (all without it),
    /// in order of first sighting.
    pub fn topics(&self, since_ms: Option<i64>) -> Result<Vec<TopicRow>, StoreError> {
        let mut st = self
            .conn
            .prepare(
                "SELECT id, first_seen, last_seen, score, terms, suggested_query, record FROM topics
                 WHERE last_seen >= ?1 ORDER BY first_seen, id",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map([since_ms.unwrap_or(i64::MIN)], |r| {
                Ok(TopicRow {
                    id: r.get(0)?,
                    first_seen_ms: r.get(1)?,
                    last_seen_ms: r.get(2)?,
                    score: r.get(3)?,
                    terms: r.get(4)?,
                    suggested_query: r.get(5)?,
                    record: r.get(6)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// Coordinated groups last seen at or after `since_ms` (all without
    /// it), highest score first.
    pub fn coordination_groups(&self, since_ms: Option<i64>) -> Result<Vec<CoordinationGroupRow>, StoreError> {
        let mut st = self
            .conn
            .prepare(
                "SELECT id, epoch, first_seen, last_seen, accounts, score, types, record FROM coordination_groups
                 WHERE last_seen >= ?1 ORDER BY score DESC, id",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map([since_ms.unwrap_or(i64::MIN)], |r| {
                Ok(CoordinationGroupRow {
                    id: r.get(0)?,
                    epoch: r.get(1)?,
                    first_seen_ms: r.get(2)?,
                    last_seen_ms: r.get(3)?,
                    accounts: r.get(4)?,
                    score: r.get(5)?,
                    types: r.get(6)?,
                    record: r.get(7)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// At most `limit` narratives last seen at or after `since_ms` (all
    /// without it), most distinct accounts first (then most posts, then id).
    pub fn narratives(&self, since_ms: Option<i64>, limit: usize) -> Result<Vec<NarrativeRow>, StoreError> {
        let mut st = self
            .conn
            .prepare(
                "SELECT id, first_seen, last_seen, posts, accounts, growth, representative, record FROM narratives
                 WHERE last_seen >= ?1 ORDER BY accounts DESC, posts DESC, id LIMIT ?2",
            )
            .map_err(|e| self.err(e))?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = st
            .query_map(params![since_ms.unwrap_or(i64::MIN), limit], |r| {
                Ok(NarrativeRow {
                    id: r.get(0)?,
                    first_seen_ms: r.get(1)?,
                    last_seen_ms: r.get(2)?,
                    posts: r.get(3)?,
                    accounts: r.get(4)?,
                    growth: r.get(5)?,
                    representative: r.get(6)?,
                    record: r.get(7)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// The newest minute (unix minutes) holding a committed post, and the
    /// posts committed in all: how far a store has got along its stream.
    pub fn progress(&self) -> Result<(Option<i64>, i64), StoreError> {
        self.conn
            .query_row(
                "SELECT MAX(minute), COALESCE(SUM(posts), 0) FROM volume_minute",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(|e| self.err(e))
    }

    /// Epochs whose keys have been deleted.
    pub fn deleted_epochs(&self) -> Result<Vec<i64>, StoreError> {
        let mut st = self
            .conn
            .prepare("SELECT epoch FROM key_epochs WHERE deleted_at IS NOT NULL ORDER BY epoch")
            .map_err(|e| self.err(e))?;
        let rows = st.query_map([], |r| r.get(0)).map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }
}

fn write_delta(tx: &Transaction<'_>, d: &CommitDelta) -> rusqlite::Result<()> {
    {
        let mut st = tx.prepare_cached(
            "INSERT INTO feed_minute (feed, minute, posts, negative, neutral, positive, sentiment_sum, reposts, replies)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
             ON CONFLICT (feed, minute) DO UPDATE SET
               posts = posts + excluded.posts, negative = negative + excluded.negative,
               neutral = neutral + excluded.neutral, positive = positive + excluded.positive,
               sentiment_sum = sentiment_sum + excluded.sentiment_sum,
               reposts = reposts + excluded.reposts, replies = replies + excluded.replies",
        )?;
        // Key order: B-tree inserts in order are cheaper, and the write is
        // deterministic.
        let mut rows: Vec<_> = d.feed_minutes.iter().collect();
        rows.sort_unstable_by_key(|(k, _)| **k);
        for (&(feed, minute), c) in rows {
            st.execute(params![
                feed as i64,
                minute,
                c.posts,
                c.negative,
                c.neutral,
                c.positive,
                c.sentiment_sum,
                c.reposts,
                c.replies
            ])?;
        }
    }
    {
        let mut st = tx.prepare_cached(
            "INSERT INTO volume_minute (minute, posts, matched) VALUES (?1, ?2, ?3)
             ON CONFLICT (minute) DO UPDATE SET posts = posts + excluded.posts, matched = matched + excluded.matched",
        )?;
        let mut rows: Vec<_> = d.volume_minutes.iter().collect();
        rows.sort_unstable_by_key(|(k, _)| **k);
        for (&minute, &(posts, matched)) in rows {
            st.execute(params![minute, posts, matched])?;
        }
    }
    if let Some(feeds) = &d.feeds {
        tx.execute("UPDATE feeds SET active = 0", [])?;
        let mut st = tx.prepare_cached(
            "INSERT INTO feeds (id, name, query, active) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, query = excluded.query, active = excluded.active",
        )?;
        for f in feeds {
            st.execute(params![f.id as i64, f.name, f.query, f.active as i64])?;
        }
    }
    {
        let mut st = tx.prepare_cached(
            "INSERT INTO alerts (id, kind, feed, onset, record) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (id, kind) DO NOTHING",
        )?;
        for a in &d.alerts {
            st.execute(params![a.id, a.kind, a.feed, a.onset_ms, a.record])?;
        }
    }
    {
        // A topic keeps its earliest sighting; the rest is the latest
        // record (a replay that is behind does not overwrite a newer one).
        let mut st = tx.prepare_cached(
            "INSERT INTO topics (id, first_seen, last_seen, score, terms, suggested_query, record)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (id) DO UPDATE SET
               first_seen = min(first_seen, excluded.first_seen), last_seen = excluded.last_seen,
               score = excluded.score, terms = excluded.terms,
               suggested_query = excluded.suggested_query, record = excluded.record
             WHERE excluded.last_seen >= topics.last_seen",
        )?;
        for t in &d.topics {
            st.execute(params![
                t.id,
                t.first_seen_ms,
                t.last_seen_ms,
                t.score,
                t.terms,
                t.suggested_query,
                t.record
            ])?;
        }
    }
    {
        // A group keeps its earliest sighting; the rest is its latest state.
        let mut st = tx.prepare_cached(
            "INSERT INTO coordination_groups (id, epoch, first_seen, last_seen, accounts, score, types, record)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (id) DO UPDATE SET
               first_seen = min(first_seen, excluded.first_seen), last_seen = excluded.last_seen,
               accounts = excluded.accounts, score = excluded.score, types = excluded.types,
               record = excluded.record
             WHERE excluded.last_seen >= coordination_groups.last_seen",
        )?;
        for g in &d.coordination_groups {
            st.execute(params![
                g.id,
                g.epoch,
                g.first_seen_ms,
                g.last_seen_ms,
                g.accounts,
                g.score,
                g.types,
                g.record
            ])?;
        }
    }
    {
        // A narrative keeps its earliest sighting; the rest is its latest
        // summary (a replay that is behind does not overwrite a newer one).
        let mut st = tx.prepare_cached(
            "INSERT INTO narratives (id, first_seen, last_seen, posts, accounts, growth, representative, record)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (id) DO UPDATE SET
               first_seen = min(first_seen, excluded.first_seen), last_seen = excluded.last_seen,
               posts = excluded.posts, accounts = excluded.accounts, growth = excluded.growth,
               representative = excluded.representative, record = excluded.record
             WHERE excluded.last_seen >= narratives.last_seen",
        )?;
        for n in &d.narratives {
            st.execute(params![
                n.id,
                n.first_seen_ms,
                n.last_seen_ms,
                n.posts,
                n.accounts,
                n.growth,
                n.representative,
                n.record
            ])?;
        }
    }
    {
        let mut st = tx.prepare_cached(
            "INSERT INTO checkpoints (source, events, offset, done) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (source) DO UPDATE SET events = excluded.events, offset = excluded.offset, done = excluded.done",
        )?;
        for (source, c) in &d.checkpoints {
            st.execute(params![
                source,
                c.events as i64,
                c.offset.map(|o| o as i64),
                c.done as i64
            ])?;
        }
    }
    {
        let mut st = tx.prepare_cached(
            "INSERT INTO key_epochs (epoch, deleted_at) VALUES (?1, strftime('%s', 'now'))
             ON CONFLICT (epoch) DO UPDATE SET deleted_at = coalesce(deleted_at, excluded.deleted_at)",
        )?;
        for e in &d.deleted_epochs {
            st.execute([e])?;
        }
    }
    Ok(())
}

fn db_err(path: &Path, source: rusqlite::Error) -> StoreError {
    StoreError::Db {
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(posts: i64, sentiment_sum: i64) -> MinuteCounts {
        MinuteCounts {
            posts,
            positive: posts,
            sentiment_sum,
            ..Default::default()
        }
    }

    #[test]
    fn deltas_add_up_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let mut db = Db::open(&path).unwrap();
        assert_eq!(db.commit_seq().unwrap(), 0);
        assert_eq!(db.progress().unwrap(), (None, 0));
        let mut d = CommitDelta::default();
        d.feed_minutes.insert((3, 100), counts(2, 5000));
        d.feed_minutes.insert((3, 101), counts(1, -20));
        d.volume_minutes.insert(100, (10, 2));
        d.feeds = Some(vec![FeedRow {
            id: 3,
            name: "climate".into(),
            query: "climate".into(),
            active: true,
        }]);
        d.checkpoints.push((
            "a.jsonl".into(),
            Checkpoint {
                events: 12,
                offset: Some(999),
                done: false,
            },
        ));
        db.commit(1, &d).unwrap();
        let mut d2 = CommitDelta::default();
        d2.feed_minutes.insert((3, 100), counts(4, 1));
        d2.volume_minutes.insert(100, (5, 4));
        d2.checkpoints.push((
            "a.jsonl".into(),
            Checkpoint {
                events: 30,
                offset: None,
                done: true,
            },
        ));
        db.commit(2, &d2).unwrap();
        // Volume of minute 100 only: newest minute 100, 10 + 5 posts.
        assert_eq!(db.progress().unwrap(), (Some(100), 15));
        drop(db);

        let db = Db::open(&path).unwrap();
        assert_eq!(db.commit_seq().unwrap(), 2);
        assert_eq!(
            db.feed_minutes(3, 0, 1000).unwrap(),
            vec![(100, counts(6, 5001)), (101, counts(1, -20))]
        );
        assert_eq!(
            db.aggregates_dump().unwrap(),
            vec![
                "f 3 100 6 0 0 6 5001 0 0".to_string(),
                "f 3 101 1 0 0 1 -20 0 0".to_string(),
                "v 100 15 6 0 0 0 0 0 0".to_string(),
            ]
        );
        let cps = db.checkpoints().unwrap();
        assert_eq!(
            cps["a.jsonl"],
            Checkpoint {
                events: 30,
                offset: None,
                done: true
            }
        );
        // The views a sqlite3 user reads.
        let (name, minute, posts): (String, String, i64) = db
            .conn
            .query_row(
                "SELECT feed, minute, posts FROM feed_minutes ORDER BY minute LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!(
            (name.as_str(), minute.as_str(), posts),
            ("climate", "1970-01-01 01:40:00", 6)
        );
        let hour: (String, i64) = db
            .conn
            .query_row("SELECT hour, posts FROM feed_hours", [], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap();
        assert_eq!(hour, ("1970-01-01 01:00:00".to_string(), 7));
    }

    #[test]
    fn feeds_keep_ids_and_removed_ones_become_inactive() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = Db::open(&dir.path().join("t.db")).unwrap();
        let row = |id, name: &str| FeedRow {
            id,
            name: name.into(),
            query: name.into(),
            active: true,
        };
        db.commit(
            1,
            &CommitDelta {
                feeds: Some(vec![row(0, "a"), row(1, "b")]),
                ..Default::default()
            },
        )
        .unwrap();
        db.commit(
            2,
            &CommitDelta {
                feeds: Some(vec![row(1, "b"), row(2, "c")]),
                ..Default::default()
            },
        )
        .unwrap();
        let feeds = db.feeds().unwrap();
        assert_eq!(
            feeds
                .iter()
                .map(|f| (f.id, f.name.as_str(), f.active))
                .collect::<Vec<_>>(),
            vec![(0, "a", false), (1, "b", true), (2, "c", true)]
        );
    }

    #[test]
    fn alerts_are_recorded_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = Db::open(&dir.path().join("t.db")).unwrap();
        let alert = AlertRow {
            id: "abc".into(),
            kind: "opened".into(),
            feed: "f".into(),
            onset_ms: 60_000,
            record: "{}".into(),
        };
        for seq in 1..=2 {
            db.commit(
                seq,
                &CommitDelta {
                    alerts: vec![alert.clone()],
                    ..Default::default()
                },
            )
            .unwrap();
        }
        assert_eq!(db.alerts(None).unwrap(), vec![alert]);
        assert!(db.has_alert("abc", "opened").unwrap());
        assert!(!db.has_alert("abc", "closed").unwrap());
        assert!(db.alerts(Some(60_001)).unwrap().is_empty());
    }

    #[test]
    fn topics_are_upserted_and_keep_their_first_sighting() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = Db::open(&dir.path().join("t.db")).unwrap();
        let row = |first: i64, last: i64, score: f64, query: &str| TopicRow {
            id: "00000000000000aa".into(),
            first_seen_ms: first,
            last_seen_ms: last,
            score,
            terms: "quorvex, #quorvex".into(),
            suggested_query: Some(query.into()),
            record: format!("{{\"score\":{score}}}"),
        };
        let commit = |db: &mut Db, seq, r: TopicRow| {
            db.commit(
                seq,
                &CommitDelta {
                    topics: vec![r],
                    ..Default::default()
                },
            )
            .unwrap();
        };
        commit(&mut db, 1, row(60_000, 120_000, 10.0, "quorvex"));
        commit(&mut db, 2, row(90_000, 180_000, 25.0, "quorvex OR #quorvex"));
        // Behind the recorded sighting: ignored.
        commit(&mut db, 3, row(30_000, 150_000, 1.0, "stale"));
        let got = db.topics(None).unwrap();
        assert_eq!(got, vec![row(60_000, 180_000, 25.0, "quorvex OR #quorvex")]);
        assert_eq!(db.topics(Some(180_000)).unwrap().len(), 1);
        assert!(db.topics(Some(180_001)).unwrap().is_empty());
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let db = Db::open(&path).unwrap();
        db.set_meta("schema", "99").unwrap();
        drop(db);
        let err = Db::open(&path).err().unwrap().to_string();
        assert!(err.contains("schema version 99"), "{err}");
    }
}
