//! The deliverer: turns new alert events into signed POSTs, and retries
//! them until they are answered 2xx or the attempt bound is reached.
//!
//! Every `poll_every` it
//! 1. looks at the store's commit sequence number; when it moved, reads
//!    the `alerts` table (a read-only connection to `tidewatch.db`) and
//!    takes in the events it had not taken in before, creating their
//!    pending deliveries ([`WebhookStore::take_in`]). What it has taken
//!    in is kept in `webhooks.db`, so a restart neither re-sends nor
//!    skips. (The `alerts` table has no insertion order to keep a single
//!    number as the cursor: an alert of one feed may be recorded after a
//!    later-starting alert of another. The cursor is therefore the set of
//!    events taken in, plus the commit last read.)
//! 2. claims due deliveries one at a time (an atomic update with a lease,
//!    so two processes on one data directory never send the same one) and
//!    sends each on a task of its own, at most `max_in_flight` at once.
//!
//! An attempt answered 2xx is delivered. Any other answer, a transport
//! error or the timeout is a failure, retried after an exponential
//! backoff with jitter ([`DeliveryOptions::backoff`]); the attempt that
//! reaches `max_attempts` marks it failed, with its last status and
//! error. Redirects are not followed (a 3xx is a failure): a webhook's
//! URL is the one it was registered with.
//!
//! Stopping gives the attempts in flight back (their lease is released),
//! so the next start sends them again: a receiver may see a delivery
//! twice, with the same `Tidewatch-Delivery` id, never zero times.

use super::sign::{sign, DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER};
use super::store::{AlertEvent, Claimed, Outcome, WebhookStore};
use super::WebhookError;
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use std::collections::HashSet;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tidewatch_core::Timestamp;
use tidewatch_store::Store;
use tokio::task::JoinSet;

/// At most this much of an error's text is kept.
const ERROR_CHARS: usize = 300;

/// How the deliverer polls, sends and retries.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DeliveryOptions {
    /// How often the store is looked at and due deliveries are claimed.
    pub poll_every: Duration,
    /// The delay after the first failure.
    pub base: Duration,
    /// Each later failure multiplies the delay by this.
    pub factor: f64,
    /// Attempts in all before a delivery is marked failed.
    pub max_attempts: u32,
    /// The delay never exceeds this.
    pub cap: Duration,
    /// A request not answered by then has failed.
    pub timeout: Duration,
    /// How long a claim holds a delivery (longer than `timeout`, so a
    /// slow attempt is never sent twice at once).
    pub lease: Duration,
    /// Requests in flight at once.
    pub max_in_flight: usize,
    /// Once told to stop, keep going this long at most: take in the last
    /// commit's alerts and send what is due, waiting for the answers.
    /// Zero (the default) stops at once; `tidewatch run` drains, so that
    /// the alerts of its final commit are sent before it exits. A delivery
    /// that fails meanwhile stays pending for the next start.
    pub drain: Duration,
    /// Send to loopback and private addresses too (see [`super::address`]).
    pub allow_private: bool,
}

impl Default for DeliveryOptions {
    fn default() -> DeliveryOptions {
        DeliveryOptions {
            poll_every: Duration::from_millis(250),
            base: Duration::from_secs(1),
            factor: 2.0,
            max_attempts: 8,
            cap: Duration::from_secs(600),
            timeout: Duration::from_secs(10),
            lease: Duration::from_secs(30),
            max_in_flight: 8,
            drain: Duration::ZERO,
            allow_private: false,
        }
    }
}

impl DeliveryOptions {
    /// The wait after the `failures`-th failed attempt (1-based):
    /// `d = min(cap, base × factor^(failures−1))`, then a random point in
    /// `[d/2, d]` (`jitter` in [0, 1] picks it), so receivers that failed
    /// together are not all retried in the same instant.
    pub fn backoff(&self, failures: u32, jitter: f64) -> Duration {
        let exp = i32::try_from(failures.saturating_sub(1)).unwrap_or(i32::MAX);
        let full = self.base.as_secs_f64() * self.factor.max(1.0).powi(exp);
        let d = full.min(self.cap.as_secs_f64());
        let jitter = if jitter.is_finite() {
            jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        Duration::try_from_secs_f64(d / 2.0 + d / 2.0 * jitter).unwrap_or(self.cap)
    }
}

/// The wall clock as a timestamp (deliveries are scheduled in wall time).
pub(crate) fn now() -> Timestamp {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    Timestamp(ms)
}

fn after(t: Timestamp, d: Duration) -> Timestamp {
    Timestamp(t.0.saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)))
}

/// Delivers until `stop` resolves, then gives back what is in flight.
/// Fails only when it cannot start (the webhooks file cannot be opened,
/// the HTTP client cannot be built); later errors (a busy or missing
/// database) are reported on stderr and retried on the next tick.
pub async fn run(data: PathBuf, options: DeliveryOptions, stop: impl Future<Output = ()>) -> Result<(), WebhookError> {
    run_tracked(data, options, stop, InFlight::default()).await
}

/// Delivers on a runtime of its own until `stop` is set: what `tidewatch
/// run` without `--serve` calls on a thread beside the pipeline (a
/// serving process delivers already, see [`crate::serve`]). Returns once
/// `stop` is set and the attempts in flight are given back.
///
/// ```no_run
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use std::sync::Arc;
/// use tidewatch_server::webhooks::{run_until_stopped, DeliveryOptions};
///
/// let data = std::path::PathBuf::from("data");
/// let stop = Arc::new(AtomicBool::new(false));
/// let deliverer = std::thread::spawn({
///     let (data, stop) = (data.clone(), stop.clone());
///     move || run_until_stopped(&data, DeliveryOptions::default(), stop)
/// });
/// // … the pipeline runs …
/// stop.store(true, Ordering::Relaxed);
/// if let Ok(Err(e)) = deliverer.join() {
///     eprintln!("webhooks: {e}");
/// }
/// ```
pub fn run_until_stopped(data: &Path, options: DeliveryOptions, stop: Arc<AtomicBool>) -> Result<(), WebhookError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| WebhookError::Io {
            path: data.to_path_buf(),
            source,
        })?;
    let stopped = async move {
        while !stop.load(Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    runtime.block_on(run(data.to_path_buf(), options, stopped))
}

/// A deliverer running on the current runtime; dropping it stops it.
#[must_use = "dropping it stops the deliverer"]
pub struct Running {
    task: tokio::task::JoinHandle<()>,
    data: PathBuf,
    in_flight: InFlight,
}

/// Starts delivering on the current tokio runtime, until the returned
/// handle is dropped: what [`crate::serve`] does. A failure to start is
/// reported on stderr (the server serves on without webhooks).
pub fn spawn(data: &Path, options: DeliveryOptions) -> Running {
    let in_flight = InFlight::default();
    let (d, tracked) = (data.to_path_buf(), in_flight.clone());
    let task = tokio::spawn(async move {
        if let Err(e) = run_tracked(d, options, std::future::pending(), tracked).await {
            eprintln!("tidewatch: webhooks are not delivered by this process: {e}");
        }
    });
    Running {
        task,
        data: data.to_path_buf(),
        in_flight,
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
        // Give back the attempts cut short now, not when their lease runs
        // out: the runtime may end before the aborted task runs again.
        let ids = self.in_flight.take();
        if !ids.is_empty() {
            if let Err(e) = WebhookStore::open(&self.data).and_then(|s| s.release(&ids)) {
                eprintln!("tidewatch: webhooks: {e}");
            }
        }
    }
}

/// The deliveries this process is sending, by id.
#[derive(Clone, Default)]
struct InFlight(Arc<Mutex<HashSet<i64>>>);

impl InFlight {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<i64>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
    fn take(&self) -> Vec<i64> {
        self.lock().drain().collect()
    }
}

type SharedStore = Arc<Mutex<WebhookStore>>;

fn lock(store: &SharedStore) -> std::sync::MutexGuard<'_, WebhookStore> {
    store.lock().unwrap_or_else(|p| p.into_inner())
}

async fn run_tracked(
    data: PathBuf,
    options: DeliveryOptions,
    stop: impl Future<Output = ()>,
    in_flight: InFlight,
) -> Result<(), WebhookError> {
    let mut client = reqwest::Client::builder()
        .timeout(options.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("tidewatch-webhooks/", env!("CARGO_PKG_VERSION")));
    if !options.allow_private {
        client = client.dns_resolver(Arc::new(super::address::PublicOnly));
    }
    let client = client.build().map_err(|e| WebhookError::Client(e.to_string()))?;
    let opened = {
        let data = data.clone();
        tokio::task::spawn_blocking(move || -> Result<(WebhookStore, Cursor), WebhookError> {
            let store = WebhookStore::open(&data)?;
            let cursor = Cursor {
                commit_seq: store.alerts_commit_seq()?,
                seen: store.seen()?.into_iter().collect(),
                conn: None,
            };
            Ok((store, cursor))
        })
        .await
        .map_err(|e| WebhookError::Worker(e.to_string()))??
    };
    let (store, cursor) = opened;
    let mut d = Deliverer {
        data,
        options,
        client,
        store: Arc::new(Mutex::new(store)),
        cursor: Some(cursor),
        tasks: JoinSet::new(),
        in_flight,
        last_error: None,
    };
    let mut tick = tokio::time::interval(options.poll_every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = tick.tick() => {
                d.step().await;
            }
        }
    }
    d.drain(options.drain).await;
    d.shutdown().await;
    Ok(())
}

/// What the deliverer has taken in from the store.
struct Cursor {
    /// The store commit last read.
    commit_seq: Option<u64>,
    /// Alert events (id, kind) taken in.
    seen: HashSet<(String, String)>,
    /// Read-only, to `tidewatch.db`, with the identity of the file it
    /// opened; opened once the file exists.
    conn: Option<(Connection, FileId)>,
}

/// Which file a path names: a store deleted and made afresh (`tidewatch
/// demo --data` does so) is a new file, and a connection to the old one
/// would never see its alerts. The inode alone is not enough (a freed
/// inode number is soon reused), so its creation time goes with it where
/// the file system records one.
type FileId = (u64, Option<SystemTime>);

fn file_id(path: &Path) -> Option<FileId> {
    let meta = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let ino = std::os::unix::fs::MetadataExt::ino(&meta);
    #[cfg(not(unix))]
    let ino = 0;
    Some((ino, meta.created().ok()))
}

impl Cursor {
    /// Takes in the alert events recorded since the last look; returns
    /// the deliveries created.
    fn scan(&mut self, data: &Path, store: &SharedStore) -> Result<usize, WebhookError> {
        let path = Store::db_path(data);
        let no_store = |cursor: &mut Cursor| -> Result<usize, WebhookError> {
            cursor.conn = None;
            // No store yet: nothing has happened, which is the baseline.
            let mut s = lock(store);
            if !s.has_baseline()? {
                s.take_in(&[], 0, now())?;
            }
            Ok(0)
        };
        let Some(id) = file_id(&path) else {
            return no_store(self);
        };
        if self.conn.as_ref().is_none_or(|(_, opened)| *opened != id) {
            let conn = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY)
                .map_err(|e| WebhookError::db(&path, e))?;
            // A store being created this moment has its file before its
            // tables.
            let has_tables: bool = conn
                .query_row(
                    "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE name = 'meta')",
                    [],
                    |r| r.get(0),
                )
                .map_err(|e| WebhookError::db(&path, e))?;
            if !has_tables {
                return no_store(self);
            }
            self.conn = Some((conn, id));
        }
        let result = self.read_new(&path);
        let (seq, events) = match result {
            Ok(r) => r,
            Err(e) => {
                // The file may have been replaced: reopen next time.
                self.conn = None;
                return Err(e);
            }
        };
        if self.commit_seq == Some(seq) && events.is_empty() {
            return Ok(0);
        }
        let created = lock(store).take_in(&events, seq, now())?;
        self.seen.extend(events.into_iter().map(|e| (e.id, e.kind)));
        self.commit_seq = Some(seq);
        Ok(created)
    }

    /// The store's commit sequence number and the alert events not taken
    /// in yet (none when the sequence number has not moved).
    fn read_new(&self, path: &Path) -> Result<(u64, Vec<AlertEvent>), WebhookError> {
        let Some((conn, _)) = &self.conn else {
            return Ok((self.commit_seq.unwrap_or(0), Vec::new()));
        };
        let err = |e| WebhookError::db(path, e);
        let seq: Option<String> = conn
            .query_row("SELECT value FROM meta WHERE key = 'commit_seq'", [], |r| r.get(0))
            .optional()
            .map_err(err)?;
        let seq = seq.and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        if self.commit_seq == Some(seq) {
            return Ok((seq, Vec::new()));
        }
        let mut keys = conn.prepare_cached("SELECT id, kind FROM alerts").map_err(err)?;
        let new: Vec<(String, String)> = keys
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(err)?
            .filter(|k| k.as_ref().map_or(true, |k| !self.seen.contains(k)))
            .collect::<Result<_, _>>()
            .map_err(err)?;
        let mut one = conn
            .prepare_cached("SELECT feed, record FROM alerts WHERE id = ?1 AND kind = ?2")
            .map_err(err)?;
        let mut events = Vec::with_capacity(new.len());
        for (id, kind) in new {
            let row: Option<(String, String)> = one
                .query_row([&id, &kind], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
                .map_err(err)?;
            if let Some((feed, record)) = row {
                events.push(AlertEvent { id, kind, feed, record });
            }
        }
        Ok((seq, events))
    }
}

struct Deliverer {
    data: PathBuf,
    options: DeliveryOptions,
    client: reqwest::Client,
    store: SharedStore,
    /// `None` only while a scan runs on the blocking pool.
    cursor: Option<Cursor>,
    tasks: JoinSet<()>,
    in_flight: InFlight,
    last_error: Option<String>,
}

impl Deliverer {
    /// After the stop: looks at the store once more and sends what is due,
    /// answers awaited, until nothing is due or `within` has passed.
    async fn drain(&mut self, within: Duration) {
        if within.is_zero() {
            return;
        }
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let started = self.step().await;
            while !self.tasks.is_empty() {
                tokio::select! {
                    _ = self.tasks.join_next() => {}
                    _ = tokio::time::sleep_until(deadline) => return,
                }
            }
            if started == 0 || tokio::time::Instant::now() >= deadline {
                return;
            }
        }
    }

    /// One tick: take in new alert events, then start the due deliveries;
    /// returns how many it started.
    async fn step(&mut self) -> usize {
        let mut started = 0;
        while self.tasks.try_join_next().is_some() {}
        if let Some(mut cursor) = self.cursor.take() {
            let (data, store) = (self.data.clone(), self.store.clone());
            match tokio::task::spawn_blocking(move || {
                let r = cursor.scan(&data, &store);
                (cursor, r)
            })
            .await
            {
                Ok((cursor, r)) => {
                    self.cursor = Some(cursor);
                    if let Err(e) = r {
                        self.report(e);
                    }
                }
                Err(e) => {
                    // A panic in one scan: start over from what webhooks.db holds.
                    self.report(WebhookError::Worker(e.to_string()));
                    self.cursor = Some(Cursor {
                        commit_seq: None,
                        seen: HashSet::new(),
                        conn: None,
                    });
                }
            }
        }
        while self.tasks.len() < self.options.max_in_flight.max(1) {
            let store = self.store.clone();
            let lease = self.options.lease;
            let claimed = tokio::task::spawn_blocking(move || lock(&store).claim(now(), lease)).await;
            let claimed = match claimed {
                Ok(Ok(Some(c))) => c,
                Ok(Ok(None)) => break,
                Ok(Err(e)) => {
                    self.report(e);
                    break;
                }
                Err(e) => {
                    self.report(WebhookError::Worker(e.to_string()));
                    break;
                }
            };
            self.in_flight.lock().insert(claimed.id);
            started += 1;
            let (client, store, in_flight, options) = (
                self.client.clone(),
                self.store.clone(),
                self.in_flight.clone(),
                self.options,
            );
            self.tasks.spawn(async move {
                let id = claimed.id;
                let failures_before = claimed.attempts;
                let outcome = attempt(&client, claimed, options.allow_private).await;
                let at = now();
                let retry_at = match &outcome {
                    Outcome::Failed(..) if failures_before.saturating_add(1) < options.max_attempts => {
                        Some(after(at, options.backoff(failures_before + 1, rand::random())))
                    }
                    _ => None,
                };
                let finished =
                    tokio::task::spawn_blocking(move || lock(&store).finish(id, &outcome, at, retry_at)).await;
                if let Ok(Err(e)) = finished {
                    // Its lease runs out and it is retried: better twice than never.
                    eprintln!("tidewatch: webhooks: {e}");
                }
                in_flight.lock().remove(&id);
            });
        }
        started
    }

    /// Reports an error on stderr, unless it is the one reported last: a
    /// database that stays busy must not flood the terminal.
    fn report(&mut self, e: WebhookError) {
        let text = e.to_string();
        if self.last_error.as_deref() != Some(text.as_str()) {
            eprintln!("tidewatch: webhooks: {text}");
            self.last_error = Some(text);
        }
    }

    /// Cancels the attempts in flight and gives their deliveries back.
    async fn shutdown(mut self) {
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
        let ids = self.in_flight.take();
        if ids.is_empty() {
            return;
        }
        let store = self.store.clone();
        if let Ok(Err(e)) = tokio::task::spawn_blocking(move || lock(&store).release(&ids)).await {
            eprintln!("tidewatch: webhooks: {e}");
        }
    }
}

/// One signed POST of a claimed delivery.
async fn attempt(client: &reqwest::Client, c: Claimed, allow_private: bool) -> Outcome {
    if !allow_private {
        // A host name is checked by the resolver; an address here.
        if let Some(why) = reqwest::Url::parse(&c.url)
            .ok()
            .as_ref()
            .and_then(super::address::private_literal)
        {
            return Outcome::Failed(None, format!("refused: {why} (see --allow-private-webhooks)"));
        }
    }
    let t = now().0.div_euclid(1000);
    let signature = sign(&c.secret, t, c.body.as_bytes());
    let sent = client
        .post(&c.url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(SIGNATURE_HEADER, signature)
        .header(EVENT_HEADER, format!("alert.{}", c.alert_kind))
        .header(DELIVERY_HEADER, c.id.to_string())
        .body(c.body)
        .send()
        .await;
    match sent {
        Ok(res) if res.status().is_success() => Outcome::Delivered(res.status().as_u16()),
        Ok(res) => {
            let s = res.status();
            Outcome::Failed(Some(s.as_u16()), format!("answered {s}"))
        }
        // The URL is left out of the text: it may hold a receiver's token.
        Err(e) => Outcome::Failed(None, truncate(describe(e.without_url()))),
    }
}

fn describe(e: reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    let mut text = format!("{kind}: {e}");
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn truncate(mut s: String) -> String {
    if let Some((i, _)) = s.char_indices().nth(ERROR_CHARS) {
        s.truncate(i);
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let o = DeliveryOptions::default();
        // jitter 1: the full delay; 0: half of it.
        let full: Vec<u64> = (1..=11).map(|n| o.backoff(n, 1.0).as_secs()).collect();
        assert_eq!(full, [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 600]);
        assert_eq!(o.backoff(1, 0.0), Duration::from_millis(500));
        assert_eq!(o.backoff(40, 0.0), Duration::from_secs(300));
        // Out-of-range jitter is clamped, never a panic.
        assert_eq!(o.backoff(1, f64::NAN), Duration::from_millis(500));
        assert_eq!(o.backoff(1, 7.0), Duration::from_secs(1));
        assert_eq!(o.backoff(u32::MAX, 0.5), Duration::from_secs(450));
    }

    #[test]
    fn long_errors_are_cut() {
        assert_eq!(truncate("short".into()), "short");
        let long = truncate("é".repeat(1000));
        assert_eq!(long.chars().count(), ERROR_CHARS + 1);
    }
}
