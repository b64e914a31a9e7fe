//! Mastodon streaming: keep a server-sent-events stream of one timeline
//! open, and when it breaks, fill the hole through the REST timeline.
//!
//! A Mastodon instance streams a timeline as server-sent events
//! (`/api/v1/streaming/public`, `.../public/local`, `.../hashtag?tag=`,
//! `.../hashtag/local?tag=`): `event: update` carries a status as JSON,
//! `event: status.update` an edited status, `event: delete` the id of a
//! deleted status; lines starting with `:` are heartbeats. Status ids are
//! numbers in strings that grow with time, so the highest id handed on is
//! the source's **cursor**.
//!
//! Whatever the stream missed while it was down is read back from the REST
//! timeline (`/api/v1/timelines/public` or `/api/v1/timelines/tag/:tag`)
//! with `min_id=CURSOR`: the page of statuses just after the cursor,
//! oldest first once sorted, page after page until a short page says the
//! present is reached. The stream is opened *before* the backfill, so what
//! is posted during the backfill arrives on the stream; statuses seen by
//! both are dropped by a bounded set of recent ids.
//!
//! Before paginating, one probe (`max_id=CURSOR+1&limit=1`) asks whether
//! the timeline still holds anything at or before the cursor. If it holds
//! nothing there, the instance no longer serves the statuses just after the
//! cursor (retention, or a timeline that only goes back so far), and the
//! hole is reported as a [`Gap`]; so is a backfill stopped by its page cap.
//!
//! Each (instance, timeline) is one source with one cursor: status ids are
//! an instance's own, so one cursor cannot resume two instances. Several
//! instances or hashtags are several sources, each started with [`start`].
//!
//! What is handed on ([`Received::bytes`], [`Format::Mastodon`]): an
//! `update` or `status.update` as the status JSON itself; a `delete` as
//! `{"event":"delete","payload":"ID"}`, the streaming-event shape the
//! Mastodon adapter turns into a deletion.
//!
//! Limits: a remote status fetched late may get an id below the cursor
//! (Mastodon derives ids from creation times); one that arrives while the
//! stream is down sorts before the cursor and is not backfilled.

use crate::thread::SourceThread;
use crate::{Gap, Received, SourceHealth, SourceMessage};
use crossbeam_channel::{SendTimeoutError, Sender};
use futures_util::StreamExt;
use reqwest::Url;
use serde_json::Value;
use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tidewatch_core::Timestamp;
use tidewatch_ingest::format::Format;
use tokio::sync::watch;

/// Which timeline of an instance to follow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Timeline {
    /// The federated public timeline, or only the instance's own posts.
    Public { local: bool },
    /// Public posts with a hashtag (given without `#`).
    Hashtag { tag: String, local: bool },
}

/// How to follow one timeline of one instance.
#[derive(Clone, Debug)]
pub struct MastodonConfig {
    /// The source's name: the key of its checkpoint and health.
    pub name: String,
    /// The instance's base URL, e.g. `https://example.social`.
    pub instance: String,
    pub timeline: Timeline,
    /// Sent as `Authorization: Bearer` when set (some instances require it
    /// for public timelines).
    pub access_token: Option<String>,
    /// First reconnect delay; doubles up to `backoff_max`, with jitter.
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    /// A stream silent for this long (no event, no heartbeat) is treated
    /// as stalled and reopened. Instances send a heartbeat every ~15 s.
    pub idle_timeout: Duration,
    /// Timeout of one REST request and of opening the stream.
    pub request_timeout: Duration,
    /// Statuses per REST page (Mastodon allows at most 40).
    pub page_limit: u32,
    /// A backfill stops after this many pages and reports a gap.
    pub max_backfill_pages: u32,
    /// How many recent status ids are remembered to drop repeats.
    pub dedup_window: usize,
}

impl MastodonConfig {
    /// A config with the usual delays and limits.
    pub fn new(name: impl Into<String>, instance: impl Into<String>, timeline: Timeline) -> Self {
        MastodonConfig {
            name: name.into(),
            instance: instance.into(),
            timeline,
            access_token: None,
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(60),
            request_timeout: Duration::from_secs(30),
            page_limit: 40,
            max_backfill_pages: 50,
            dedup_window: 10_000,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MastodonError {
    #[error("instance URL `{url}`: {reason}")]
    Url { url: String, reason: String },
    #[error("could not start the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    #[error("could not start the source's thread or runtime: {0}")]
    Runtime(#[from] std::io::Error),
}

/// A running Mastodon source; stopping (or dropping) it ends it and waits
/// for its thread.
pub type MastodonHandle = SourceThread;

/// Starts following a timeline on its own thread. With `resume_cursor`
/// (a status id checkpointed earlier), what was posted since is backfilled
/// first.
pub fn start(
    config: MastodonConfig,
    resume_cursor: Option<u64>,
    tx: Sender<SourceMessage>,
    health: Arc<SourceHealth>,
) -> Result<MastodonHandle, MastodonError> {
    let urls = Urls::new(&config)?;
    let http = reqwest::Client::builder()
        .connect_timeout(config.request_timeout)
        .user_agent(concat!("tidewatch/", env!("CARGO_PKG_VERSION")))
        .build()?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let client = Client {
        recent: RecentIds::new(config.dedup_window),
        config,
        urls,
        http,
        tx,
        health,
        stop: stop_rx,
        cursor: resume_cursor,
    };
    let thread = std::thread::Builder::new()
        .name(format!("mastodon-{}", client.config.name))
        .spawn(move || runtime.block_on(client.run()))?;
    Ok(SourceThread::new(stop_tx, thread))
}

/// The streaming and REST URLs of the configured timeline.
struct Urls {
    stream: Url,
    rest: Url,
}

impl Urls {
    fn new(config: &MastodonConfig) -> Result<Urls, MastodonError> {
        let bad = |reason: String| MastodonError::Url {
            url: config.instance.clone(),
            reason,
        };
        let base = Url::parse(config.instance.trim_end_matches('/')).map_err(|e| bad(e.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(bad("not http or https".into()));
        }
        let join = |path: &str| base.join(path).map_err(|e| bad(e.to_string()));
        let (mut stream, mut rest) = match &config.timeline {
            Timeline::Public { local } => {
                let stream = join(if *local {
                    "/api/v1/streaming/public/local"
                } else {
                    "/api/v1/streaming/public"
                })?;
                let mut rest = join("/api/v1/timelines/public")?;
                if *local {
                    rest.query_pairs_mut().append_pair("local", "true");
                }
                (stream, rest)
            }
            Timeline::Hashtag { tag, local } => {
                let tag = tag.trim_start_matches('#');
                if tag.is_empty() {
                    return Err(bad("empty hashtag".into()));
                }
                let mut stream = join(if *local {
                    "/api/v1/streaming/hashtag/local"
                } else {
                    "/api/v1/streaming/hashtag"
                })?;
                stream.query_pairs_mut().append_pair("tag", tag);
                let mut rest = join("/api/v1/timelines/tag/")?;
                rest.path_segments_mut()
                    .map_err(|()| bad("cannot hold a path".into()))?
                    .pop_if_empty()
                    .push(tag);
                if *local {
                    rest.query_pairs_mut().append_pair("local", "true");
                }
                (stream, rest)
            }
        };
        // Keep the URLs free of an empty `?` when no pair was added.
        for url in [&mut stream, &mut rest] {
            if url.query() == Some("") {
                url.set_query(None);
            }
        }
        Ok(Urls { stream, rest })
    }

    /// The REST timeline with paging parameters added.
    fn page(&self, params: &[(&str, String)]) -> Url {
        let mut url = self.rest.clone();
        {
            let mut q = url.query_pairs_mut();
            for (k, v) in params {
                q.append_pair(k, v);
            }
        }
        url
    }
}

/// Why a connection ended.
enum Ended {
    /// Asked to stop, or the pipeline is gone: the source ends.
    Stopped,
    /// The stream broke; reconnect after a delay.
    Broken(String),
}

/// The source's state while it runs.
struct Client {
    config: MastodonConfig,
    urls: Urls,
    http: reqwest::Client,
    tx: Sender<SourceMessage>,
    health: Arc<SourceHealth>,
    stop: watch::Receiver<bool>,
    /// The highest status id handed on.
    cursor: Option<u64>,
    recent: RecentIds,
}

impl Client {
    async fn run(mut self) {
        let mut backoff = Backoff::new(self.config.backoff_initial, self.config.backoff_max);
        let mut first = true;
        loop {
            if !first {
                self.health.reconnected();
            }
            first = false;
            let ended = self.connection(&mut backoff).await;
            self.health.set_connected(false);
            match ended {
                Ended::Stopped => break,
                Ended::Broken(reason) => self.health.error(reason),
            }
            let delay = backoff.next_delay();
            let mut stop = self.stop.clone();
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = stop.wait_for(|s| *s) => break,
            }
        }
    }

    /// One connection: open the stream, backfill, then read the stream
    /// until it ends.
    async fn connection(&mut self, backoff: &mut Backoff) -> Ended {
        let mut stop = self.stop.clone();
        let opened = tokio::select! {
            r = tokio::time::timeout(self.config.request_timeout, self.request(self.urls.stream.clone())
                .header(reqwest::header::ACCEPT, "text/event-stream")
                .send()) => r,
            _ = stop.wait_for(|s| *s) => return Ended::Stopped,
        };
        let response = match opened {
            Err(_) => return Ended::Broken("opening the stream timed out".into()),
            Ok(Err(e)) => return Ended::Broken(format!("opening the stream: {e}")),
            Ok(Ok(r)) if !r.status().is_success() => {
                return Ended::Broken(format!("stream answered HTTP {}", r.status().as_u16()))
            }
            Ok(Ok(r)) => r,
        };
        self.health.set_connected(true);

        if let Some(cursor) = self.cursor {
            let backfilled = tokio::select! {
                r = self.backfill(cursor) => r,
                _ = stop.wait_for(|s| *s) => return Ended::Stopped,
            };
            match backfilled {
                Ok(true) => {}
                Ok(false) => return Ended::Stopped,
                Err(reason) => return Ended::Broken(format!("backfill: {reason}")),
            }
        }

        let mut body = response.bytes_stream();
        let mut sse = SseParser::default();
        let mut events = Vec::new();
        loop {
            let chunk = tokio::select! {
                c = tokio::time::timeout(self.config.idle_timeout, body.next()) => c,
                _ = stop.wait_for(|s| *s) => return Ended::Stopped,
            };
            let bytes = match chunk {
                Err(_) => return Ended::Broken("stream stalled (no event or heartbeat)".into()),
                Ok(None) => return Ended::Broken("stream closed by the server".into()),
                Ok(Some(Err(e))) => return Ended::Broken(format!("reading the stream: {e}")),
                Ok(Some(Ok(bytes))) => bytes,
            };
            if sse.push(&bytes, &mut events).is_err() {
                self.malformed("stream", "a line longer than the limit");
            }
            for event in events.drain(..) {
                match self.event(event) {
                    Ok(true) => backoff.reset(),
                    Ok(false) => {}
                    Err(Stopped) => return Ended::Stopped,
                }
            }
        }
    }

    fn request(&self, url: Url) -> reqwest::RequestBuilder {
        let request = self.http.get(url);
        match &self.config.access_token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// Handles one streaming event; `Ok(true)` when it carried a status.
    fn event(&mut self, event: SseEvent) -> Result<bool, Stopped> {
        match event.name.as_str() {
            "update" | "status.update" => {
                let Some(status) = Status::parse(event.data.as_bytes()) else {
                    self.malformed(&event.name, "data is not a status with a numeric id");
                    return Ok(false);
                };
                if event.name == "update" {
                    self.deliver(status)?;
                } else {
                    // An edit: the same id again, handed on as itself.
                    self.health.event(status.created_ms);
                    self.send_record(status.json)?;
                }
                Ok(true)
            }
            "delete" => {
                // The payload is the bare id; some servers quote it.
                let id = event.data.trim().trim_matches('"');
                if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
                    self.malformed("delete", "payload is not a status id");
                    return Ok(false);
                }
                let record = serde_json::json!({"event": "delete", "payload": id});
                self.send_record(record.to_string().into_bytes())?;
                Ok(true)
            }
            // Notifications, filter changes, announcements: not posts.
            _ => Ok(false),
        }
    }

    /// Hands on a status unless it was handed on recently.
    fn deliver(&mut self, status: Status) -> Result<(), Stopped> {
        if !self.recent.insert(status.id) {
            return Ok(());
        }
        self.cursor = Some(self.cursor.map_or(status.id, |c| c.max(status.id)));
        self.health.event(status.created_ms);
        self.send_record(status.json)
    }

    /// Reads what was posted after `since` from the REST timeline and
    /// hands it on, oldest first. `Ok(false)` when the pipeline is gone.
    async fn backfill(&mut self, since: u64) -> Result<bool, String> {
        let limit = self.config.page_limit.max(1);
        // Does the timeline still hold anything at or before the cursor?
        let probe = self
            .page(&[("max_id", since.saturating_add(1).to_string()), ("limit", "1".into())])
            .await?;
        let mut reaches_back = !probe.is_empty();

        let mut min_id = since;
        let mut pages = 0;
        loop {
            if pages == self.config.max_backfill_pages {
                let what = format!("backfill stopped after {pages} pages; statuses after {min_id} may be missing");
                return Ok(self.gap(Some(min_id), None, what).is_ok());
            }
            let mut page = self
                .page(&[("min_id", min_id.to_string()), ("limit", limit.to_string())])
                .await?;
            pages += 1;
            page.sort_by_key(|s| s.id);
            if !reaches_back {
                reaches_back = true;
                let to = page.first().map(|s| s.id);
                let what = format!(
                    "the timeline no longer reaches back to status {since}; statuses after it were lost upstream"
                );
                if self.gap(Some(since), to, what).is_err() {
                    return Ok(false);
                }
            }
            let full = page.len() >= limit as usize;
            let newest = page.last().map(|s| s.id);
            for status in page {
                if self.deliver(status).is_err() {
                    return Ok(false);
                }
            }
            match newest {
                Some(newest) if full && newest > min_id => min_id = newest,
                _ => return Ok(true),
            }
        }
    }

    /// One page of the REST timeline, as statuses (unreadable ones are
    /// counted as malformed and skipped).
    async fn page(&self, params: &[(&str, String)]) -> Result<Vec<Status>, String> {
        let url = self.urls.page(params);
        let response = self
            .request(url)
            .timeout(self.config.request_timeout)
            .send()
            .await
            .map_err(|e| format!("timeline request: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("timeline answered HTTP {}", response.status().as_u16()));
        }
        let body = response.bytes().await.map_err(|e| format!("timeline body: {e}"))?;
        let Ok(Value::Array(items)) = serde_json::from_slice::<Value>(&body) else {
            return Err("timeline page is not a JSON array".into());
        };
        let mut statuses = Vec::with_capacity(items.len());
        for item in items {
            match Status::from_value(item) {
                Some(status) => statuses.push(status),
                None => self.malformed("timeline", "an item is not a status with a numeric id"),
            }
        }
        Ok(statuses)
    }

    fn malformed(&self, what: &str, reason: &str) {
        self.health.malformed();
        eprintln!(
            "tidewatch-sources: {}: malformed {what} skipped: {reason}",
            self.config.name
        );
    }

    fn gap(&self, from: Option<u64>, to: Option<u64>, what: String) -> Result<(), Stopped> {
        let gap = Gap {
            source: self.config.name.clone(),
            detected_at: now_ms(),
            from,
            to,
            what,
        };
        self.health.gap(gap.clone());
        self.send(SourceMessage::Gap(gap))
    }

    fn send_record(&self, bytes: Vec<u8>) -> Result<(), Stopped> {
        self.send(SourceMessage::Record(Received {
            source: self.config.name.clone(),
            format: Format::Mastodon,
            bytes,
            cursor: self.cursor,
        }))
    }

    /// Blocks while the pipeline's channel is full (back-pressure), but
    /// gives up when asked to stop or when the pipeline is gone.
    fn send(&self, message: SourceMessage) -> Result<(), Stopped> {
        let mut message = message;
        loop {
            match self.tx.send_timeout(message, Duration::from_millis(50)) {
                Ok(()) => return Ok(()),
                Err(SendTimeoutError::Disconnected(_)) => return Err(Stopped),
                Err(SendTimeoutError::Timeout(back)) => {
                    if *self.stop.borrow() {
                        return Err(Stopped);
                    }
                    message = back;
                }
            }
        }
    }
}

/// The source must end (asked to stop, or the pipeline is gone).
struct Stopped;

/// A status as far as the client needs it: its id, its time, its JSON.
struct Status {
    id: u64,
    created_ms: Option<i64>,
    json: Vec<u8>,
}

impl Status {
    fn parse(data: &[u8]) -> Option<Status> {
        let value: Value = serde_json::from_slice(data).ok()?;
        let (id, created_ms) = Status::fields(&value)?;
        Some(Status {
            id,
            created_ms,
            json: data.to_vec(),
        })
    }

    fn from_value(value: Value) -> Option<Status> {
        let (id, created_ms) = Status::fields(&value)?;
        Some(Status {
            id,
            created_ms,
            json: value.to_string().into_bytes(),
        })
    }

    /// The numeric id and creation time of a status object.
    fn fields(value: &Value) -> Option<(u64, Option<i64>)> {
        let obj = value.as_object()?;
        let id = match obj.get("id")? {
            Value::String(s) => s.parse().ok()?,
            Value::Number(n) => n.as_u64()?,
            _ => return None,
        };
        obj.get("uri")?.as_str()?;
        let created_ms = obj
            .get("created_at")
            .and_then(Value::as_str)
            .and_then(|t| Timestamp::parse(t).ok())
            .map(Timestamp::millis);
        Some((id, created_ms))
    }
}

/// One server-sent event.
#[derive(Debug, PartialEq, Eq)]
struct SseEvent {
    name: String,
    data: String,
}

/// A server-sent-events reader fed with chunks as they arrive.
#[derive(Default)]
struct SseParser {
    line: Vec<u8>,
    name: String,
    data: String,
    has_data: bool,
}

/// Longest line accepted; a longer one is dropped (a status is a few kB).
const MAX_LINE: usize = 8 << 20;

impl SseParser {
    /// Adds a chunk; complete events go to `out`. `Err` when a line was
    /// too long and had to be dropped (the reader goes on).
    fn push(&mut self, chunk: &[u8], out: &mut Vec<SseEvent>) -> Result<(), ()> {
        let mut overflow = false;
        for &b in chunk {
            if b == b'\n' {
                let mut line = std::mem::take(&mut self.line);
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                self.line_done(&String::from_utf8_lossy(&line), out);
            } else if self.line.len() < MAX_LINE {
                self.line.push(b);
            } else {
                overflow = true;
                self.line.clear();
            }
        }
        if overflow {
            Err(())
        } else {
            Ok(())
        }
    }

    fn line_done(&mut self, line: &str, out: &mut Vec<SseEvent>) {
        if line.is_empty() {
            if self.has_data {
                out.push(SseEvent {
                    name: std::mem::take(&mut self.name),
                    data: std::mem::take(&mut self.data),
                });
            }
            self.name.clear();
            self.data.clear();
            self.has_data = false;
            return;
        }
        if line.starts_with(':') {
            return; // a heartbeat or comment
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => self.name = value.to_owned(),
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            _ => {} // `id`, `retry`: not used by Mastodon's stream
        }
    }
}

/// The last `capacity` ids handed on, to drop repeats from the overlap of
/// stream and backfill.
struct RecentIds {
    set: HashSet<u64>,
    order: VecDeque<u64>,
    capacity: usize,
}

impl RecentIds {
    fn new(capacity: usize) -> Self {
        RecentIds {
            set: HashSet::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    /// `false` when `id` is among the recent ones.
    fn insert(&mut self, id: u64) -> bool {
        if !self.set.insert(id) {
            return false;
        }
        self.order.push_back(id);
        if self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
        true
    }
}

/// Exponential reconnect delays with jitter, so that many clients cut off
/// together do not come back together.
struct Backoff {
    initial: Duration,
    max: Duration,
    current: Duration,
}

impl Backoff {
    fn new(initial: Duration, max: Duration) -> Self {
        Backoff {
            initial,
            max: max.max(initial),
            current: initial,
        }
    }

    /// A delay between half and all of the current step; the step doubles.
    fn next_delay(&mut self) -> Duration {
        let step = self.current;
        self.current = (self.current * 2).min(self.max);
        let half = step / 2;
        half + half.mul_f64(rand::random::<f64>())
    }

    fn reset(&mut self) {
        self.current = self.initial;
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

    fn parse_all(chunks: &[&str]) -> Vec<SseEvent> {
        let mut parser = SseParser::default();
        let mut out = Vec::new();
        for chunk in chunks {
            parser.push(chunk.as_bytes(), &mut out).unwrap();
        }
        out
    }

    #[test]
    fn sse_events_split_across_chunks_are_joined() {
        let events = parse_all(&[
            ":)\n\nevent: upd",
            "ate\r\ndata: {\"id\":\"1\"}\r\n\r\n:thump\n\n",
            "event: delete\ndata:7\n\nevent: x\ndata: a\ndata: b\n\n",
        ]);
        let want = [("update", "{\"id\":\"1\"}"), ("delete", "7"), ("x", "a\nb")];
        let got: Vec<(&str, &str)> = events.iter().map(|e| (e.name.as_str(), e.data.as_str())).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn an_overlong_line_is_dropped_and_reading_goes_on() {
        let mut parser = SseParser::default();
        let mut out = Vec::new();
        let long = vec![b'x'; MAX_LINE + 10];
        assert!(parser.push(&long, &mut out).is_err());
        parser.push(b"\nevent: delete\ndata: 5\n\n", &mut out).unwrap();
        assert_eq!(
            out,
            vec![SseEvent {
                name: "delete".into(),
                data: "5".into()
            }]
        );
    }

    #[test]
    fn statuses_need_a_numeric_id_and_a_uri() {
        let ok = br#"{"id":"110","uri":"https://a.example/s/110","created_at":"2026-01-02T03:04:05Z","content":""}"#;
        let s = Status::parse(ok).unwrap();
        assert_eq!(s.id, 110);
        assert_eq!(
            s.created_ms,
            Timestamp::parse("2026-01-02T03:04:05Z").ok().map(Timestamp::millis)
        );
        for bad in [&br#"{"id":"x1","uri":"u"}"#[..], br#"{"id":"1"}"#, b"[1]", b"{oops"] {
            assert!(Status::parse(bad).is_none());
        }
    }

    #[test]
    fn recent_ids_forget_the_oldest_beyond_capacity() {
        let mut r = RecentIds::new(2);
        assert!(r.insert(1));
        assert!(r.insert(2));
        assert!(!r.insert(1));
        assert!(r.insert(3)); // 1 forgotten
        assert!(r.insert(1));
        assert!(!r.insert(3));
    }

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(350));
        let steps = [100, 200, 350, 350];
        for step in steps {
            let d = b.next_delay();
            assert!(
                d >= Duration::from_millis(step / 2) && d <= Duration::from_millis(step),
                "{d:?} for {step}"
            );
        }
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(100));
    }

    #[test]
    fn urls_follow_the_timeline() {
        let urls = |timeline| {
            let u = Urls::new(&MastodonConfig::new("m", "https://example.social/", timeline)).unwrap();
            (u.stream.to_string(), u.rest.to_string())
        };
        assert_eq!(
            urls(Timeline::Public { local: false }),
            (
                "https://example.social/api/v1/streaming/public".into(),
                "https://example.social/api/v1/timelines/public".into()
            )
        );
        assert_eq!(
            urls(Timeline::Hashtag {
                tag: "#tides".into(),
                local: true
            }),
            (
                "https://example.social/api/v1/streaming/hashtag/local?tag=tides".into(),
                "https://example.social/api/v1/timelines/tag/tides?local=true".into()
            )
        );
        let bad = MastodonConfig::new("m", "ftp://example.social", Timeline::Public { local: true });
        assert!(matches!(Urls::new(&bad), Err(MastodonError::Url { .. })));
    }
}
