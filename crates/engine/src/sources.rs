//! The decode stage for live sources: records arriving from open
//! connections become batches of events, each batch saying how far its
//! source has been read, so the store checkpoints a stream exactly as it
//! checkpoints a file.
//!
//! Every configured source ([`SourceSpec`]) is started with the cursor of
//! its last committed checkpoint (`source:NAME`, the cursor kept in
//! `Checkpoint.offset`) and sends [`SourceMessage`]s into one bounded
//! channel. This stage reads that channel on the run's decode thread:
//!
//! - Each record is decoded with its source's decoder for the record's
//!   format (kept per source, so a decoder's de-duplication works along a
//!   stream). A record that fails to decode is a [`Reject`]
//!   (`source-name:record-number: reason`), counted, and the stream goes
//!   on.
//! - Batches are **per source**: a batch's [`Position`] is that source's
//!   input index (after the run's files), its events so far, and as
//!   `offset` the cursor of the batch's last record. A batch leaves when
//!   full or at every flush tick (~200 ms): a slow stream must still reach
//!   the store. When no source has anything at a tick, one empty batch
//!   goes through anyway, so that commits due by time still happen.
//! - Gaps are logged and kept in health by the sources themselves; this
//!   stage counts them.
//! - Pseudonym keys past the linkage window are deleted as event time
//!   advances, as for files, but only event times up to a little past the
//!   wall clock count: one post dated years ahead must not expire every
//!   key in use.
//! - A stop flag (Ctrl-C), or no record for `until_idle` (tests,
//!   benchmarks), ends the stage: sources are stopped, what they had
//!   already sent is decoded, and each source's last batch is emitted.

use crate::decode::{Decoded, Position, Reject, Resume};
use crate::persist::CommitWatch;
use crossbeam_channel::{bounded, Receiver, RecvTimeoutError};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tidewatch_core::pseudonym::Keyring;
use tidewatch_core::{Event, Timestamp};
use tidewatch_ingest::format::{DecodeOutput, Decoder, Format};
use tidewatch_sources::jetstream::{JetstreamConfig, JetstreamError, JetstreamHandle};
use tidewatch_sources::mastodon::{MastodonConfig, MastodonError, MastodonHandle};
use tidewatch_sources::nats::{NatsError, NatsHandle, NatsPartitionConfig};
use tidewatch_sources::push::{PushConfig, PushEndpoint, PushError, PushHandle};
use tidewatch_sources::rss::{RssConfig, RssError, RssHandle};
use tidewatch_sources::{SourceHealth, SourceMessage};

/// One live source of a run, with its client's configuration.
#[derive(Clone, Debug)]
pub enum SourceSpec {
    Jetstream(JetstreamConfig),
    Mastodon(MastodonConfig),
    Rss(RssConfig),
    Push(PushConfig),
    /// One partition of a NATS JetStream stream (a `tidewatch worker`'s shard).
    Nats(NatsPartitionConfig),
}

impl SourceSpec {
    pub fn name(&self) -> &str {
        match self {
            SourceSpec::Jetstream(c) => &c.name,
            SourceSpec::Mastodon(c) => &c.name,
            SourceSpec::Rss(c) => &c.name,
            SourceSpec::Push(c) => &c.name,
            SourceSpec::Nats(c) => &c.name,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            SourceSpec::Jetstream(_) => "jetstream",
            SourceSpec::Mastodon(_) => "mastodon",
            SourceSpec::Rss(_) => "rss",
            SourceSpec::Push(_) => "push",
            SourceSpec::Nats(_) => "nats",
        }
    }

    /// The same source reading again from its checkpoint's cursor up to
    /// cursor `until` and then ending, when the source can: a Jetstream
    /// server replays by `time_us` (within the history it keeps), a NATS
    /// stream by stream sequence (through a consumer of its own, deleted
    /// after). Mastodon's streaming API, feeds and pushed posts cannot be
    /// read again.
    pub fn read_again_until(&self, until: u64) -> Option<SourceSpec> {
        match self {
            SourceSpec::Jetstream(c) => Some(SourceSpec::Jetstream(JetstreamConfig {
                until_us: Some(until),
                ..c.clone()
            })),
            SourceSpec::Nats(c) => Some(SourceSpec::Nats(NatsPartitionConfig {
                consumer: format!("{}-replay", c.consumer),
                until: Some(until),
                ..c.clone()
            })),
            SourceSpec::Mastodon(_) | SourceSpec::Rss(_) | SourceSpec::Push(_) => None,
        }
    }
}

/// The checkpoint name of a live source: `source:NAME` (file inputs are
/// checkpointed under their paths).
pub fn checkpoint_name(source: &str) -> String {
    format!("source:{source}")
}

/// Why the live sources could not start.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("source {0:?} is configured twice")]
    Duplicate(String),
    #[error(transparent)]
    Jetstream(#[from] JetstreamError),
    #[error("mastodon source {name:?}: {source}")]
    Mastodon {
        name: String,
        #[source]
        source: MastodonError,
    },
    #[error("rss source {name:?}: {source}")]
    Rss {
        name: String,
        #[source]
        source: RssError,
    },
    #[error(transparent)]
    Push(#[from] PushError),
    #[error(transparent)]
    Nats(#[from] NatsError),
}

/// How the stage batches and when it ends by itself.
#[derive(Clone, Debug)]
pub struct LiveOptions {
    /// Events per batch at most.
    pub batch_size: usize,
    /// A source's batch leaves at least this often when it holds anything.
    pub flush_every: Duration,
    /// Messages the sources may queue ahead of decoding (back-pressure).
    pub channel_capacity: usize,
    /// End once no record arrived for this long (`None`: run until
    /// stopped).
    pub until_idle: Option<Duration>,
}

impl Default for LiveOptions {
    fn default() -> Self {
        LiveOptions {
            batch_size: 1024,
            flush_every: Duration::from_millis(200),
            channel_capacity: 16_384,
            until_idle: None,
        }
    }
}

/// What a source did in this run: the client's health plus what decoding
/// made of its records. Shared with whoever reports status.
#[derive(Debug)]
pub struct SourceStats {
    pub name: String,
    pub kind: &'static str,
    pub health: Arc<SourceHealth>,
    posts: AtomicU64,
    deletions: AtomicU64,
    ignored: AtomicU64,
    rejected: AtomicU64,
    gaps: AtomicU64,
}

impl SourceStats {
    fn new(name: &str, kind: &'static str) -> SourceStats {
        SourceStats {
            name: name.to_string(),
            kind,
            health: Arc::default(),
            posts: AtomicU64::new(0),
            deletions: AtomicU64::new(0),
            ignored: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            gaps: AtomicU64::new(0),
        }
    }

    /// The source's state now; `events_per_s` is left at 0 for the caller
    /// ([`StatusWriter`]) to fill from two snapshots.
    pub fn status(&self) -> SourceStatus {
        let h = self.health.snapshot();
        SourceStatus {
            name: self.name.clone(),
            kind: self.kind.to_string(),
            events: h.events,
            events_per_s: 0.0,
            posts: self.posts.load(Ordering::Relaxed),
            deletions: self.deletions.load(Ordering::Relaxed),
            ignored: self.ignored.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
            malformed: h.malformed,
            reconnects: h.reconnects,
            errors: h.errors,
            connected: h.connected,
            lag_ms: h.lag_ms,
            last_error: h.last_error,
            gaps: h
                .gaps
                .into_iter()
                .map(|g| GapStatus {
                    detected_at: g.detected_at,
                    from: g.from,
                    to: g.to,
                    what: g.what,
                })
                .collect(),
        }
    }
}

/// One source in `status.json`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SourceStatus {
    pub name: String,
    pub kind: String,
    /// Records received (before decoding; a feed document counts its new
    /// items).
    pub events: u64,
    pub events_per_s: f64,
    pub posts: u64,
    pub deletions: u64,
    /// Valid records holding no post (likes, identity events, repeats).
    pub ignored: u64,
    /// Records that could not be decoded.
    pub rejected: u64,
    /// Frames or lines the client skipped as malformed.
    pub malformed: u64,
    pub reconnects: u64,
    pub errors: u64,
    pub connected: bool,
    /// Now − newest event time.
    pub lag_ms: Option<i64>,
    pub last_error: Option<String>,
    pub gaps: Vec<GapStatus>,
}

/// A gap as `status.json` records it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GapStatus {
    pub detected_at: i64,
    pub from: Option<u64>,
    pub to: Option<u64>,
    pub what: String,
}

/// What `tidewatch run` writes to `DATA/status.json` every few seconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunStatus {
    /// Unix ms of this snapshot.
    pub updated_at: i64,
    pub started_at: i64,
    pub pid: u32,
    /// False in the last snapshot of a run that ended.
    pub running: bool,
    pub posts: u64,
    pub matched: u64,
    pub rejected: u64,
    pub sources: Vec<SourceStatus>,
}

/// The name of the status file in a data directory.
pub const STATUS_FILE: &str = "status.json";

impl RunStatus {
    /// Writes `status.json` into `dir` atomically (a reader never sees half
    /// a file).
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        let tmp = dir.join(format!("{STATUS_FILE}.tmp"));
        let json = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(&tmp, json)?;
        std::fs::rename(&tmp, dir.join(STATUS_FILE))
    }

    pub fn read(dir: &Path) -> std::io::Result<RunStatus> {
        let bytes = std::fs::read(dir.join(STATUS_FILE))?;
        serde_json::from_slice(&bytes).map_err(std::io::Error::other)
    }

    /// Every gap of every source, oldest first.
    pub fn gaps(&self) -> impl Iterator<Item = (&str, &GapStatus)> {
        self.sources
            .iter()
            .flat_map(|s| s.gaps.iter().map(move |g| (s.name.as_str(), g)))
    }
}

/// Snapshots sources' status and fills in their event rates from the
/// previous snapshot.
#[derive(Default)]
pub struct StatusWriter {
    previous: HashMap<String, (u64, Instant)>,
}

impl StatusWriter {
    pub fn snapshot(&mut self, stats: &[Arc<SourceStats>]) -> Vec<SourceStatus> {
        let now = Instant::now();
        stats
            .iter()
            .map(|s| {
                let mut status = s.status();
                if let Some((events, at)) = self.previous.get(&s.name) {
                    let secs = now.duration_since(*at).as_secs_f64();
                    if secs > 0.0 {
                        status.events_per_s = status.events.saturating_sub(*events) as f64 / secs;
                    }
                }
                self.previous.insert(s.name.clone(), (status.events, now));
                status
            })
            .collect()
    }
}

/// A running client, stopped when dropped.
enum Handle {
    Jetstream(JetstreamHandle),
    Mastodon(MastodonHandle),
    Rss(RssHandle),
    Push(PushHandle),
    Nats(NatsHandle),
}

impl Handle {
    fn stop(self) {
        match self {
            Handle::Jetstream(h) => h.stop(),
            Handle::Mastodon(h) => h.stop(),
            Handle::Rss(h) => h.stop(),
            Handle::Push(h) => h.stop(),
            Handle::Nats(h) => h.stop(),
        }
    }
}

/// One source as the stage tracks it.
struct Running {
    stats: Arc<SourceStats>,
    handle: Option<Handle>,
    /// Decoders by the format of the records (a push source may receive
    /// several formats).
    decoders: HashMap<Format, Box<dyn Decoder>>,
    /// The batch being filled; `at` is where the source stands.
    batch: Decoded,
    /// Where the last emitted batch of this source ended.
    emitted: Option<Position>,
    /// Events of this source over all runs (from the checkpoint on).
    events: u64,
    /// Records received in this run (the "line" of a reject).
    records: u64,
}

/// The live sources of a run, started and ready to be decoded.
pub struct LiveSources {
    rx: Receiver<SourceMessage>,
    sources: Vec<Running>,
    by_name: HashMap<String, usize>,
    opts: LiveOptions,
    stop: Arc<AtomicBool>,
    push_addrs: Vec<(String, SocketAddr)>,
    push_endpoints: Vec<PushEndpoint>,
}

impl LiveSources {
    /// Starts every source. Source `i` is input `first_input + i` of the
    /// run; each resumes from its checkpoint in `resume` (by
    /// [`checkpoint_name`]). `stop` ends the stage when set; `committed`
    /// lets push and NATS sources acknowledge only committed records.
    pub fn start(
        specs: Vec<SourceSpec>,
        first_input: usize,
        resume: &HashMap<String, Resume>,
        opts: LiveOptions,
        stop: Arc<AtomicBool>,
        committed: Option<Arc<CommitWatch>>,
    ) -> Result<LiveSources, SourceError> {
        let (tx, rx) = bounded(opts.channel_capacity.max(1));
        let mut sources = Vec::with_capacity(specs.len());
        let mut by_name = HashMap::new();
        let mut push_addrs = Vec::new();
        let mut push_endpoints = Vec::new();
        for (i, spec) in specs.into_iter().enumerate() {
            let name = spec.name().to_string();
            if by_name.insert(name.clone(), i).is_some() {
                return Err(SourceError::Duplicate(name));
            }
            let checkpoint = checkpoint_name(&name);
            let from = resume.get(&checkpoint).copied().unwrap_or_default();
            let stats = Arc::new(SourceStats::new(&name, spec.kind()));
            let health = stats.health.clone();
            let tx = tx.clone();
            let handle = match spec {
                SourceSpec::Jetstream(c) => {
                    Handle::Jetstream(tidewatch_sources::jetstream::start(c, from.offset, tx, health)?)
                }
                SourceSpec::Mastodon(c) => {
                    Handle::Mastodon(tidewatch_sources::mastodon::start(c, from.offset, tx, health).map_err(
                        |source| SourceError::Mastodon {
                            name: name.clone(),
                            source,
                        },
                    )?)
                }
                SourceSpec::Rss(c) => {
                    Handle::Rss(
                        tidewatch_sources::rss::start(c, tx, health).map_err(|source| SourceError::Rss {
                            name: name.clone(),
                            source,
                        })?,
                    )
                }
                SourceSpec::Push(c) => {
                    let watch = committed.clone().map(|w| {
                        let checkpoint = checkpoint.clone();
                        Arc::new(move || w.committed(&checkpoint)) as tidewatch_sources::push::CommittedCursor
                    });
                    let h = tidewatch_sources::push::start(c, from.offset, tx, health, watch)?;
                    push_addrs.push((name.clone(), h.addr()));
                    push_endpoints.push(h.endpoint());
                    Handle::Push(h)
                }
                SourceSpec::Nats(c) => {
                    // Like a push source: only what the store committed is acknowledged.
                    let watch = committed.clone().map(|w| {
                        let checkpoint = checkpoint.clone();
                        Arc::new(move || w.committed(&checkpoint)) as tidewatch_sources::push::CommittedCursor
                    });
                    Handle::Nats(tidewatch_sources::nats::start(c, from.offset, tx, health, watch)?)
                }
            };
            let at = Position {
                input: first_input + i,
                events: from.events,
                offset: from.offset,
                done: false,
            };
            sources.push(Running {
                stats,
                handle: Some(handle),
                decoders: HashMap::new(),
                batch: Decoded {
                    events: Vec::new(),
                    at,
                    finished: Vec::new(),
                },
                emitted: None,
                events: from.events,
                records: 0,
            });
        }
        Ok(LiveSources {
            rx,
            sources,
            by_name,
            opts,
            stop,
            push_addrs,
            push_endpoints,
        })
    }

    /// Each source's counters, in configuration order.
    pub fn stats(&self) -> Vec<Arc<SourceStats>> {
        self.sources.iter().map(|s| s.stats.clone()).collect()
    }

    /// The push sources' endpoints, for the API server to answer with.
    pub fn push_endpoints(&self) -> &[PushEndpoint] {
        &self.push_endpoints
    }

    /// Where each push source listens.
    pub fn push_addrs(&self) -> &[(String, SocketAddr)] {
        &self.push_addrs
    }

    /// True once the stop flag is set.
    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Stops every source's client (idempotent).
    pub fn stop_clients(&mut self) {
        for s in &mut self.sources {
            if let Some(h) = s.handle.take() {
                h.stop();
            }
        }
    }

    /// Decodes what the sources send until stopped or idle, handing
    /// batches to `emit` (false stops) and bad records to `on_reject`.
    pub fn decode(
        &mut self,
        keyring: &Keyring,
        emit: &mut dyn FnMut(Decoded) -> bool,
        on_reject: &mut dyn FnMut(&Reject),
    ) {
        let mut expiry = LiveExpiry { keyring, newest: None };
        let mut out = DecodeOutput::default();
        let mut last_record = Instant::now();
        let mut next_flush = Instant::now() + self.opts.flush_every;
        let mut going = true;
        while going && !self.stopping() {
            if self.opts.until_idle.is_some_and(|idle| last_record.elapsed() >= idle) {
                break;
            }
            let wait = next_flush.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(wait) {
                Ok(message) => {
                    if matches!(message, SourceMessage::Record(_)) {
                        last_record = Instant::now();
                    }
                    going = self.take(message, &mut out, &mut expiry, emit, on_reject);
                }
                Err(RecvTimeoutError::Timeout) => {}
                // Every client has ended.
                Err(RecvTimeoutError::Disconnected) => break,
            }
            if going && Instant::now() >= next_flush {
                going = self.flush(&mut expiry, emit, true);
                next_flush = Instant::now() + self.opts.flush_every;
            }
        }
        self.stop_clients();
        if !going {
            return;
        }
        // What the clients sent before they stopped is decoded and stored.
        while let Ok(message) = self.rx.try_recv() {
            if !self.take(message, &mut out, &mut expiry, emit, on_reject) {
                return;
            }
        }
        for s in &mut self.sources {
            for (_, mut decoder) in std::mem::take(&mut s.decoders) {
                out.events.clear();
                out.ignored = 0;
                let result = catch_unwind(AssertUnwindSafe(|| decoder.finish(&mut out)))
                    .unwrap_or_else(|_| Err(tidewatch_ingest::DecodeError::Other("internal decoder error".into())));
                let cursor = s.batch.at.offset;
                s.add(result, &mut out, cursor, on_reject);
            }
        }
        self.flush(&mut expiry, emit, false);
    }

    /// Decodes one message into its source's batch; emits the batch when
    /// full. False when `emit` asked to stop.
    fn take(
        &mut self,
        message: SourceMessage,
        out: &mut DecodeOutput,
        expiry: &mut LiveExpiry<'_>,
        emit: &mut dyn FnMut(Decoded) -> bool,
        on_reject: &mut dyn FnMut(&Reject),
    ) -> bool {
        let record = match message {
            SourceMessage::Record(r) => r,
            SourceMessage::Gap(g) => {
                // The source has logged it and kept it in its health.
                if let Some(&i) = self.by_name.get(&g.source) {
                    self.sources[i].stats.gaps.fetch_add(1, Ordering::Relaxed);
                }
                return true;
            }
        };
        let Some(&i) = self.by_name.get(&record.source) else {
            return true;
        };
        let s = &mut self.sources[i];
        let decoder = s
            .decoders
            .entry(record.format)
            .or_insert_with(|| record.format.decoder(None));
        out.events.clear();
        out.ignored = 0;
        // A decoder bug must cost one record, not the run.
        let result = catch_unwind(AssertUnwindSafe(|| decoder.decode(&record.bytes, out)))
            .unwrap_or_else(|_| Err(tidewatch_ingest::DecodeError::Other("internal decoder error".into())));
        s.records += 1;
        s.add(result, out, record.cursor, on_reject);
        if s.batch.events.len() >= self.opts.batch_size {
            return s.emit(expiry, emit, self.opts.batch_size);
        }
        true
    }

    /// Emits every source's batch that holds something new; with
    /// `heartbeat`, one empty batch when none did (commits due by time
    /// happen at batch ends).
    fn flush(&mut self, expiry: &mut LiveExpiry<'_>, emit: &mut dyn FnMut(Decoded) -> bool, heartbeat: bool) -> bool {
        let mut any = false;
        for s in &mut self.sources {
            if !s.batch.events.is_empty() || s.emitted != Some(s.batch.at) {
                any = true;
                if !s.emit(expiry, emit, self.opts.batch_size) {
                    return false;
                }
            }
        }
        if heartbeat && !any {
            if let Some(s) = self.sources.first_mut() {
                return s.emit(expiry, emit, self.opts.batch_size);
            }
        }
        true
    }
}

impl Drop for LiveSources {
    fn drop(&mut self) {
        self.stop_clients();
    }
}

impl Running {
    /// Moves one record's decoded events into the batch and counts them,
    /// or reports the record as rejected; the position moves to `cursor`.
    fn add(
        &mut self,
        result: Result<(), tidewatch_ingest::DecodeError>,
        out: &mut DecodeOutput,
        cursor: Option<u64>,
        on_reject: &mut dyn FnMut(&Reject),
    ) {
        self.stats.ignored.fetch_add(out.ignored, Ordering::Relaxed);
        match result {
            Ok(()) => {
                for ev in out.events.drain(..) {
                    match ev {
                        Event::Post(_) => self.stats.posts.fetch_add(1, Ordering::Relaxed),
                        Event::Delete(_) => self.stats.deletions.fetch_add(1, Ordering::Relaxed),
                    };
                    self.events += 1;
                    self.batch.events.push(ev);
                }
            }
            Err(e) => {
                self.stats.rejected.fetch_add(1, Ordering::Relaxed);
                on_reject(&Reject {
                    path: self.stats.name.clone(),
                    line: self.records,
                    reason: e.to_string(),
                });
            }
        }
        self.batch.at.events = self.events;
        if cursor.is_some() {
            self.batch.at.offset = cursor;
        }
    }

    fn emit(&mut self, expiry: &mut LiveExpiry<'_>, emit: &mut dyn FnMut(Decoded) -> bool, batch_size: usize) -> bool {
        let at = self.batch.at;
        let batch = std::mem::replace(
            &mut self.batch,
            Decoded {
                events: Vec::with_capacity(batch_size.min(4096)),
                at,
                finished: Vec::new(),
            },
        );
        self.emitted = Some(at);
        expiry.observe(&batch.events);
        emit(batch)
    }
}

/// Event times later than the wall clock by more than this do not move
/// key expiry on.
const FUTURE_TOLERANCE_MS: i64 = 10 * 60 * 1000;

/// Key expiry for live streams (see the module doc).
struct LiveExpiry<'k> {
    keyring: &'k Keyring,
    newest: Option<Timestamp>,
}

impl LiveExpiry<'_> {
    fn observe(&mut self, events: &[Event]) {
        let limit = Timestamp(now_ms().saturating_add(FUTURE_TOLERANCE_MS));
        let newest = events
            .iter()
            .filter_map(|e| match e {
                Event::Post(p) => p.created_at,
                Event::Delete(_) => None,
            })
            .filter(|t| *t <= limit)
            .max();
        if newest > self.newest {
            self.newest = newest;
            if let Some(t) = newest {
                self.keyring.expire(t);
            }
        }
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tidewatch_core::pseudonym::PseudonymConfig;
    use tidewatch_sources::replay::jetstream::{generate, Faults, JetstreamReplay};

    fn keyring() -> Keyring {
        Keyring::from_seed(PseudonymConfig::default(), 3)
    }

    #[test]
    fn push_records_become_batches_with_cursors_and_bad_records_are_rejected() {
        let stop = Arc::new(AtomicBool::new(false));
        let spec = SourceSpec::Push(PushConfig::new("inbox", SocketAddr::from(([127, 0, 0, 1], 0))));
        let resume = HashMap::from([(
            checkpoint_name("inbox"),
            Resume {
                events: 10,
                done: false,
                offset: Some(10),
            },
        )]);
        let opts = LiveOptions {
            until_idle: Some(Duration::from_millis(600)),
            ..LiveOptions::default()
        };
        let mut live = LiveSources::start(vec![spec], 2, &resume, opts, stop, None).unwrap();
        let addr = live.push_addrs()[0].1;
        let client = std::thread::spawn(move || {
            use std::io::{Read, Write};
            let body = "{\"id\":\"1\",\"platform\":\"x\",\"text\":\"harbour\",\"source\":\"s\"}\n\
                        {\"id\":\"2\",\"platform\":\"x\",\"text\":\"lantern\",\"source\":\"s\"}\n";
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            write!(
                s,
                "POST /api/v1/ingest HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            )
            .unwrap();
            let mut answer = String::new();
            s.read_to_string(&mut answer).unwrap();
            answer
        });
        let mut batches = Vec::new();
        let mut rejects = Vec::new();
        live.decode(
            &keyring(),
            &mut |b| {
                batches.push((b.events.len(), b.at));
                true
            },
            &mut |r| rejects.push(r.to_string()),
        );
        assert!(client.join().unwrap().starts_with("HTTP/1.1 202"));
        let events: usize = batches.iter().map(|b| b.0).sum();
        assert_eq!(events, 2);
        let last = batches.last().unwrap().1;
        assert_eq!(
            last,
            Position {
                input: 2,
                events: 12,
                offset: Some(12),
                done: false
            }
        );
        assert!(rejects.is_empty());
        assert_eq!(live.stats()[0].status().posts, 2);
    }

    #[test]
    fn a_jetstream_replay_is_decoded_once_with_the_cursor_of_each_batch() {
        let events = generate(3_000, 1_725_000_000_000_000, 1_000);
        let faults = Faults {
            drop_after: vec![500, 1_500],
            malformed_before: vec![700],
            ..Faults::default()
        };
        let server = JetstreamReplay::start(events.clone(), faults).unwrap();
        let mut config = JetstreamConfig::new("bsky", vec![server.url()]);
        config.backoff_initial = Duration::from_millis(10);
        let opts = LiveOptions {
            until_idle: Some(Duration::from_millis(800)),
            batch_size: 100,
            ..LiveOptions::default()
        };
        let stop = Arc::new(AtomicBool::new(false));
        let mut live = LiveSources::start(
            vec![SourceSpec::Jetstream(config)],
            0,
            &HashMap::new(),
            opts,
            stop,
            None,
        )
        .unwrap();
        let mut ids = Vec::new();
        let mut cursors = Vec::new();
        live.decode(
            &keyring(),
            &mut |b| {
                for e in &b.events {
                    if let Event::Post(p) = e {
                        ids.push(p.id.clone());
                    }
                }
                cursors.push(b.at.offset);
                true
            },
            &mut |_| {},
        );
        let posts_served = events
            .iter()
            .filter(|e| {
                matches!(
                    e.collection.as_deref(),
                    Some("app.bsky.feed.post" | "app.bsky.feed.repost")
                ) && e.json.contains("\"create\"")
            })
            .count();
        let distinct: std::collections::HashSet<&String> = ids.iter().collect();
        assert_eq!(ids.len(), posts_served, "no post lost or repeated");
        assert_eq!(distinct.len(), ids.len());
        assert_eq!(cursors.last().copied().flatten(), events.last().map(|e| e.time_us));
        assert!(cursors.windows(2).all(|w| w[0] <= w[1]), "cursors only move on");
        let status = live.stats()[0].status();
        assert_eq!(status.malformed, 1);
        assert!(status.reconnects >= 2, "{status:?}");
    }
}
