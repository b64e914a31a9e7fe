//! The webhooks' own SQLite file, `DATA/webhooks.db`: the webhooks, the
//! alert events the deliverer has taken in, and one delivery per
//! (webhook, alert event).
//!
//! It is a file of its own, not a table in `tidewatch.db`: the pipeline
//! is the only writer there and commits in big transactions, while
//! deliveries change row by row at any time, from any process serving the
//! data directory. The file holds the webhooks' HMAC keys in plain (they
//! must be usable to sign), so it is created readable by its owner only
//! (mode 0600; SQLite gives its `-wal` and `-shm` files the same mode).
//!
//! | table          | one row per                                             |
//! |----------------|---------------------------------------------------------|
//! | `meta`         | setting (`baseline`: the first look is done; `alerts_commit_seq`: the store commit last read) |
//! | `webhooks`     | webhook: url, feed (NULL = every feed), secret, created, active |
//! | `alert_events` | alert event (id, kind) taken in: its feed, its JSON, when |
//! | `deliveries`   | webhook × alert event: attempts, status, last answer, next attempt, lease |
//!
//! Two processes may deliver from one data directory; a delivery is
//! claimed by one atomic `UPDATE … WHERE status = 'pending' AND lease
//! expired` inside an immediate transaction, so only one of them sends it.

use super::WebhookError;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;
use tidewatch_core::Timestamp;
use utoipa::ToSchema;

/// The file name inside the data directory.
pub const FILE: &str = "webhooks.db";

/// How long a writer waits for another process's transaction.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

const CREATE: &str = "
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS webhooks (
    id         INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused
    url        TEXT NOT NULL,
    feed       TEXT,                 -- feed name; NULL = every feed
    secret     TEXT NOT NULL,        -- the HMAC key (why this file is 0600)
    created_at INTEGER NOT NULL,     -- unix ms
    active     INTEGER NOT NULL      -- 0 once deleted
);
CREATE TABLE IF NOT EXISTS alert_events (
    alert_id   TEXT NOT NULL,
    alert_kind TEXT NOT NULL,        -- opened | closed
    feed       TEXT NOT NULL,
    record     TEXT NOT NULL,        -- the stored alert record: the body sent
    seen_at    INTEGER NOT NULL,     -- unix ms
    PRIMARY KEY (alert_id, alert_kind)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS deliveries (
    id              INTEGER PRIMARY KEY AUTOINCREMENT, -- the Tidewatch-Delivery header
    webhook_id      INTEGER NOT NULL,
    alert_id        TEXT NOT NULL,
    alert_kind      TEXT NOT NULL,
    feed            TEXT NOT NULL,
    attempts        INTEGER NOT NULL,
    status          TEXT NOT NULL,   -- pending | delivered | failed
    last_status     INTEGER,         -- HTTP status of the last answer
    last_error      TEXT,
    next_attempt_at INTEGER,         -- unix ms; NULL once settled
    delivered_at    INTEGER,         -- unix ms
    created_at      INTEGER NOT NULL,
    lease_until     INTEGER NOT NULL DEFAULT 0, -- unix ms: claimed by a sender until then
    UNIQUE (webhook_id, alert_id, alert_kind)
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (status, next_attempt_at);
";

/// A webhook as the API lists it: never its secret.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct Webhook {
    pub id: i64,
    pub url: String,
    /// The feed whose alerts it receives; `null` for every feed.
    pub feed: Option<String>,
    #[schema(value_type = String)]
    pub created_at: Timestamp,
}

/// Where a delivery stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    /// Not yet delivered; retried at `next_attempt_at`.
    Pending,
    /// A 2xx answer was received.
    Delivered,
    /// Given up after the attempt bound (or the webhook was deleted).
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
        }
    }
}

impl FromStr for DeliveryStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<DeliveryStatus, String> {
        match s {
            "pending" => Ok(DeliveryStatus::Pending),
            "delivered" => Ok(DeliveryStatus::Delivered),
            "failed" => Ok(DeliveryStatus::Failed),
            other => Err(format!(
                "{other:?} is not a delivery status (pending, delivered, failed)"
            )),
        }
    }
}

/// One alert event sent (or to be sent) to one webhook.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct Delivery {
    /// Sent as `Tidewatch-Delivery`.
    pub id: i64,
    pub webhook_id: i64,
    pub alert_id: String,
    /// `opened` or `closed`.
    pub alert_kind: String,
    pub feed: String,
    /// Requests made so far.
    pub attempts: u32,
    pub status: DeliveryStatus,
    /// HTTP status of the last answer, if any came.
    pub last_status: Option<u16>,
    /// Why the last attempt failed (status line or transport error).
    pub last_error: Option<String>,
    /// When the next attempt is due (pending deliveries only).
    #[schema(value_type = Option<String>)]
    pub next_attempt_at: Option<Timestamp>,
    #[schema(value_type = Option<String>)]
    pub delivered_at: Option<Timestamp>,
    #[schema(value_type = String)]
    pub created_at: Timestamp,
}

/// An alert event read from the store's `alerts` table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertEvent {
    pub id: String,
    pub kind: String,
    pub feed: String,
    /// The stored record, JSON: the body sent.
    pub record: String,
}

/// A delivery this process has claimed and must now send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claimed {
    pub id: i64,
    pub webhook_id: i64,
    pub url: String,
    pub secret: String,
    pub alert_kind: String,
    pub body: String,
    /// Attempts made before this one.
    pub attempts: u32,
}

/// How an attempt ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A 2xx answer with this status.
    Delivered(u16),
    /// Any other answer (`Some(status)`) or none at all, and why.
    Failed(Option<u16>, String),
}

/// A connection to `webhooks.db`.
pub struct WebhookStore {
    path: PathBuf,
    conn: Connection,
}

impl WebhookStore {
    /// The file's path in data directory `data`.
    pub fn path(data: &Path) -> PathBuf {
        data.join(FILE)
    }

    /// Opens (creating if needed, mode 0600) the webhooks file of data
    /// directory `data`.
    pub fn open(data: &Path) -> Result<WebhookStore, WebhookError> {
        let path = WebhookStore::path(data);
        let io = |source| WebhookError::Io {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(data).map_err(io)?;
        create_private(&path).map_err(io)?;
        let conn = Connection::open(&path).map_err(|e| WebhookError::db(&path, e))?;
        let store = WebhookStore { path, conn };
        store.conn.busy_timeout(BUSY_TIMEOUT).map_err(|e| store.err(e))?;
        store
            .conn
            .execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")
            .map_err(|e| store.err(e))?;
        store.conn.execute_batch(CREATE).map_err(|e| store.err(e))?;
        Ok(store)
    }

    fn err(&self, e: rusqlite::Error) -> WebhookError {
        WebhookError::db(&self.path, e)
    }

    /// Adds a webhook; returns it and its secret.
    pub fn create(&self, url: &str, feed: Option<&str>, now: Timestamp) -> Result<(Webhook, String), WebhookError> {
        let secret = super::sign::new_secret();
        self.conn
            .execute(
                "INSERT INTO webhooks (url, feed, secret, created_at, active) VALUES (?1, ?2, ?3, ?4, 1)",
                params![url, feed, secret, now.0],
            )
            .map_err(|e| self.err(e))?;
        let hook = Webhook {
            id: self.conn.last_insert_rowid(),
            url: url.to_string(),
            feed: feed.map(str::to_string),
            created_at: now,
        };
        Ok((hook, secret))
    }

    /// The active webhooks, oldest first.
    pub fn list(&self) -> Result<Vec<Webhook>, WebhookError> {
        let mut st = self
            .conn
            .prepare_cached("SELECT id, url, feed, created_at FROM webhooks WHERE active = 1 ORDER BY id")
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map([], |r| {
                Ok(Webhook {
                    id: r.get(0)?,
                    url: r.get(1)?,
                    feed: r.get(2)?,
                    created_at: Timestamp(r.get(3)?),
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// Whether webhook `id` exists and is active.
    pub fn is_active(&self, id: i64) -> Result<bool, WebhookError> {
        self.conn
            .query_row("SELECT 1 FROM webhooks WHERE id = ?1 AND active = 1", [id], |_| Ok(()))
            .optional()
            .map(|r| r.is_some())
            .map_err(|e| self.err(e))
    }

    /// Deletes webhook `id`: it receives nothing more and its pending
    /// deliveries fail. Returns false when there was no such active
    /// webhook. Its row stays (inactive) so delivery ids stay explained.
    pub fn delete(&mut self, id: i64) -> Result<bool, WebhookError> {
        let path = self.path.clone();
        let err = |e| WebhookError::db(&path, e);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        let changed = tx
            .execute("UPDATE webhooks SET active = 0 WHERE id = ?1 AND active = 1", [id])
            .map_err(err)?;
        tx.execute(
            "UPDATE deliveries SET status = 'failed', last_error = 'the webhook was deleted', next_attempt_at = NULL
             WHERE webhook_id = ?1 AND status = 'pending'",
            [id],
        )
        .map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(changed == 1)
    }

    /// Deliveries of webhook `id`, newest first, optionally only those in
    /// `status`; at most `limit`.
    pub fn deliveries(
        &self,
        webhook: i64,
        status: Option<DeliveryStatus>,
        limit: usize,
    ) -> Result<Vec<Delivery>, WebhookError> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT id, webhook_id, alert_id, alert_kind, feed, attempts, status, last_status, last_error,
                        next_attempt_at, delivered_at, created_at
                 FROM deliveries WHERE webhook_id = ?1 AND (?2 IS NULL OR status = ?2)
                 ORDER BY id DESC LIMIT ?3",
            )
            .map_err(|e| self.err(e))?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = st
            .query_map(params![webhook, status.map(DeliveryStatus::as_str), limit], |r| {
                let status: String = r.get(6)?;
                Ok(Delivery {
                    id: r.get(0)?,
                    webhook_id: r.get(1)?,
                    alert_id: r.get(2)?,
                    alert_kind: r.get(3)?,
                    feed: r.get(4)?,
                    attempts: r.get(5)?,
                    // Only this module writes the column.
                    status: status.parse().unwrap_or(DeliveryStatus::Failed),
                    last_status: r.get(7)?,
                    last_error: r.get(8)?,
                    next_attempt_at: r.get::<_, Option<i64>>(9)?.map(Timestamp),
                    delivered_at: r.get::<_, Option<i64>>(10)?.map(Timestamp),
                    created_at: Timestamp(r.get(11)?),
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// The store commit whose alerts were last taken in, if any.
    pub fn alerts_commit_seq(&self) -> Result<Option<u64>, WebhookError> {
        Ok(self.meta("alerts_commit_seq")?.and_then(|v| v.parse().ok()))
    }

    /// Whether the first look (which takes in what the store already
    /// holds without sending it) is done.
    pub fn has_baseline(&self) -> Result<bool, WebhookError> {
        Ok(self.meta("baseline")?.is_some())
    }

    fn meta(&self, key: &str) -> Result<Option<String>, WebhookError> {
        self.conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Every alert event taken in so far, as (id, kind).
    pub fn seen(&self) -> Result<Vec<(String, String)>, WebhookError> {
        let mut st = self
            .conn
            .prepare_cached("SELECT alert_id, alert_kind FROM alert_events")
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// Takes in `events` read at store commit `commit_seq`: each one not
    /// taken in before gets a pending delivery to every active webhook of
    /// its feed (or of every feed) — unless this is the baseline (the
    /// first look ever), which records what the store already held
    /// without sending it. One transaction, so the cursor and the
    /// deliveries move together. Returns the deliveries created.
    pub fn take_in(&mut self, events: &[AlertEvent], commit_seq: u64, now: Timestamp) -> Result<usize, WebhookError> {
        let path = self.path.clone();
        let err = |e| WebhookError::db(&path, e);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        let baseline = tx
            .query_row("SELECT 1 FROM meta WHERE key = 'baseline'", [], |_| Ok(()))
            .optional()
            .map_err(err)?
            .is_none();
        let mut created = 0;
        {
            let mut seen = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO alert_events (alert_id, alert_kind, feed, record, seen_at)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(err)?;
            let mut deliver = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO deliveries
                       (webhook_id, alert_id, alert_kind, feed, attempts, status, next_attempt_at, created_at)
                     SELECT id, ?1, ?2, ?3, 0, 'pending', ?4, ?4 FROM webhooks
                     WHERE active = 1 AND (feed IS NULL OR feed = ?3)",
                )
                .map_err(err)?;
            for e in events {
                // Another process may have taken it in first; it then made
                // the deliveries too, in the same transaction.
                let new = seen
                    .execute(params![e.id, e.kind, e.feed, e.record, now.0])
                    .map_err(err)?;
                if new == 1 && !baseline {
                    created += deliver.execute(params![e.id, e.kind, e.feed, now.0]).map_err(err)?;
                }
            }
        }
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('alerts_commit_seq', ?1)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [commit_seq.to_string()],
        )
        .map_err(err)?;
        tx.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('baseline', '1')", [])
            .map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(created)
    }

    /// Claims the pending delivery due first, if any is due and not
    /// leased by another sender, for `lease`.
    pub fn claim(&mut self, now: Timestamp, lease: Duration) -> Result<Option<Claimed>, WebhookError> {
        let path = self.path.clone();
        let err = |e| WebhookError::db(&path, e);
        let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
        // Immediate: the write lock is taken before the read, so the
        // check and the update see the same state in every process.
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        let claimed = tx
            .query_row(
                "UPDATE deliveries SET lease_until = ?1 + ?2
                 WHERE id = (SELECT d.id FROM deliveries d JOIN webhooks w ON w.id = d.webhook_id
                             WHERE d.status = 'pending' AND d.next_attempt_at <= ?1 AND d.lease_until <= ?1
                               AND w.active = 1
                             ORDER BY d.next_attempt_at, d.id LIMIT 1)
                   AND status = 'pending' AND lease_until <= ?1
                 RETURNING id",
                params![now.0, lease_ms],
                |r| r.get::<_, i64>(0),
            )
            .optional()
            .map_err(err)?;
        let Some(id) = claimed else {
            tx.commit().map_err(err)?;
            return Ok(None);
        };
        let claimed = tx
            .query_row(
                "SELECT d.id, d.webhook_id, w.url, w.secret, d.alert_kind, e.record, d.attempts
                 FROM deliveries d
                 JOIN webhooks w ON w.id = d.webhook_id
                 JOIN alert_events e ON e.alert_id = d.alert_id AND e.alert_kind = d.alert_kind
                 WHERE d.id = ?1",
                [id],
                |r| {
                    Ok(Claimed {
                        id: r.get(0)?,
                        webhook_id: r.get(1)?,
                        url: r.get(2)?,
                        secret: r.get(3)?,
                        alert_kind: r.get(4)?,
                        body: r.get(5)?,
                        attempts: r.get(6)?,
                    })
                },
            )
            .optional()
            .map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(claimed)
    }

    /// Records the outcome of an attempt of delivery `id`: delivered, or
    /// failed and retried at `retry_at`, or failed for good when
    /// `retry_at` is `None`.
    pub fn finish(
        &self,
        id: i64,
        outcome: &Outcome,
        now: Timestamp,
        retry_at: Option<Timestamp>,
    ) -> Result<(), WebhookError> {
        let result = match outcome {
            Outcome::Delivered(status) => self.conn.execute(
                "UPDATE deliveries SET attempts = attempts + 1, status = 'delivered', last_status = ?2,
                   last_error = NULL, next_attempt_at = NULL, delivered_at = ?3, lease_until = 0
                 WHERE id = ?1 AND status = 'pending'",
                params![id, status, now.0],
            ),
            Outcome::Failed(status, error) => {
                let (state, next) = match retry_at {
                    Some(t) => ("pending", Some(t.0)),
                    None => ("failed", None),
                };
                self.conn.execute(
                    "UPDATE deliveries SET attempts = attempts + 1, status = ?2, last_status = ?3,
                       last_error = ?4, next_attempt_at = ?5, lease_until = 0
                     WHERE id = ?1 AND status = 'pending'",
                    params![id, state, status, error, next],
                )
            }
        };
        result.map(drop).map_err(|e| self.err(e))
    }

    /// Gives claimed deliveries back (a sender stopping mid-attempt): they
    /// are due again at once, for whichever process looks next.
    pub fn release(&self, ids: &[i64]) -> Result<(), WebhookError> {
        let mut st = self
            .conn
            .prepare_cached("UPDATE deliveries SET lease_until = 0 WHERE id = ?1 AND status = 'pending'")
            .map_err(|e| self.err(e))?;
        for id in ids {
            st.execute([id]).map_err(|e| self.err(e))?;
        }
        Ok(())
    }
}

/// Creates `path` readable and writable by its owner only, or narrows an
/// existing file to that.
fn create_private(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(0o600);
        let file = options.open(path)?;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    #[cfg(not(unix))]
    {
        options.open(path)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: &str, kind: &str, feed: &str) -> AlertEvent {
        AlertEvent {
            id: id.into(),
            kind: kind.into(),
            feed: feed.into(),
            record: format!(r#"{{"id":"{id}","kind":"{kind}","feed_name":"{feed}"}}"#),
        }
    }

    const T0: Timestamp = Timestamp(1_764_254_400_000);
    const LEASE: Duration = Duration::from_secs(30);

    #[test]
    fn file_is_private() {
        let dir = tempfile::tempdir().unwrap();
        WebhookStore::open(dir.path()).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(FILE)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn baseline_then_deliveries_by_feed() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = WebhookStore::open(dir.path()).unwrap();
        let (all, _) = s.create("http://127.0.0.1:9/all", None, T0).unwrap();
        let (quakes, _) = s.create("http://127.0.0.1:9/q", Some("quakes"), T0).unwrap();
        // The first look: history is recorded, nothing is sent.
        assert_eq!(s.take_in(&[event("a1", "opened", "quakes")], 1, T0).unwrap(), 0);
        assert!(s.has_baseline().unwrap());
        assert_eq!(s.alerts_commit_seq().unwrap(), Some(1));
        // New events: the global webhook gets both, the quakes one its own;
        // an event seen twice is taken in once.
        let new = [
            event("a1", "opened", "quakes"),
            event("a1", "closed", "quakes"),
            event("b1", "opened", "tech"),
        ];
        assert_eq!(s.take_in(&new, 2, T0).unwrap(), 3);
        assert_eq!(s.take_in(&new, 3, T0).unwrap(), 0);
        assert_eq!(s.seen().unwrap().len(), 3);
        assert_eq!(s.deliveries(all.id, None, 100).unwrap().len(), 2);
        let q = s.deliveries(quakes.id, None, 100).unwrap();
        assert_eq!(q.len(), 1);
        assert_eq!((q[0].alert_id.as_str(), q[0].alert_kind.as_str()), ("a1", "closed"));
        assert_eq!(q[0].status, DeliveryStatus::Pending);
        assert_eq!(q[0].attempts, 0);
    }

    #[test]
    fn a_claim_is_exclusive_until_released_or_finished() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = WebhookStore::open(dir.path()).unwrap();
        let mut b = WebhookStore::open(dir.path()).unwrap();
        let (hook, secret) = a.create("http://127.0.0.1:9/", None, T0).unwrap();
        a.take_in(&[], 1, T0).unwrap();
        a.take_in(&[event("a1", "opened", "quakes")], 2, T0).unwrap();

        let c = a.claim(T0, LEASE).unwrap().unwrap();
        assert_eq!(
            (c.webhook_id, c.secret.as_str(), c.attempts),
            (hook.id, secret.as_str(), 0)
        );
        assert_eq!(c.body, event("a1", "opened", "quakes").record);
        // Leased: the other connection finds nothing, until the lease ends.
        assert_eq!(b.claim(T0, LEASE).unwrap(), None);
        assert!(b.claim(Timestamp(T0.0 + 30_000), LEASE).unwrap().is_some());
        b.release(&[c.id]).unwrap();

        let c = b.claim(T0, LEASE).unwrap().unwrap();
        let retry = Timestamp(T0.0 + 1_000);
        b.finish(
            c.id,
            &Outcome::Failed(Some(500), "500 Internal Server Error".into()),
            T0,
            Some(retry),
        )
        .unwrap();
        // Not due before its retry time.
        assert_eq!(a.claim(T0, LEASE).unwrap(), None);
        let c = a.claim(retry, LEASE).unwrap().unwrap();
        assert_eq!(c.attempts, 1);
        a.finish(c.id, &Outcome::Delivered(204), retry, None).unwrap();
        assert_eq!(a.claim(Timestamp(i64::MAX / 2), LEASE).unwrap(), None);
        let d = &a.deliveries(hook.id, Some(DeliveryStatus::Delivered), 10).unwrap()[0];
        assert_eq!(d.attempts, 2);
        assert_eq!(d.last_status, Some(204));
        assert_eq!(d.delivered_at, Some(retry));
        assert_eq!(d.next_attempt_at, None);
    }

    #[test]
    fn deleting_fails_pending_deliveries() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = WebhookStore::open(dir.path()).unwrap();
        let (hook, _) = s.create("https://example.invalid/hook", None, T0).unwrap();
        s.take_in(&[], 1, T0).unwrap();
        s.take_in(&[event("a1", "opened", "quakes")], 2, T0).unwrap();
        assert!(s.delete(hook.id).unwrap());
        assert!(!s.delete(hook.id).unwrap());
        assert!(s.list().unwrap().is_empty());
        assert_eq!(s.claim(T0, LEASE).unwrap(), None);
        let d = &s.deliveries(hook.id, Some(DeliveryStatus::Failed), 10).unwrap()[0];
        assert_eq!(d.last_error.as_deref(), Some("the webhook was deleted"));
    }
}
