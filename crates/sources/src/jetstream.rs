//! Bluesky Jetstream client: keep a websocket to a Jetstream server open,
//! survive its failures without losing or repeating events, and say so
//! when events were lost upstream.
//!
//! Jetstream relays the AT Protocol firehose as one JSON event per text
//! frame. Every event carries `time_us`, the server's unix-microsecond
//! time for it, unique and increasing along the stream, and the server
//! replays from any such time given as the `cursor` query parameter (an
//! absent cursor means "live tail"). That makes `time_us` the cursor of
//! this source:
//!
//! - Each [`Received`] record carries its event's `time_us` as its cursor;
//!   the pipeline checkpoints it and passes the last committed one back to
//!   [`start`] after a restart.
//! - On every (re)connection the client asks for the newest `time_us` it
//!   already handed on, minus a small **rewind** (servers of a pool are
//!   not exactly in step), and drops every event at or before that time:
//!   the rewind re-reads a little, the drop makes it invisible downstream.
//!   (Jetstream's `time_us` is unique along one server's stream, so "at or
//!   before" never drops a new event.) Until the first event arrives there
//!   is no cursor, and a reconnection starts at the live tail again.
//! - A failed connection is retried with exponential backoff and jitter,
//!   moving to the next endpoint of the configured list each time;
//!   Jetstream cursors are wall-clock times, so they are valid on every
//!   server of the pool.
//! - **Gaps**: a server only keeps a limited history. When it is asked to
//!   replay from cursor `C` and its first event is later than
//!   `C + gap_tolerance`, the events in between are gone (a healthy
//!   server answers a rewound cursor with events at or before `C`); the
//!   client reports a [`Gap`] rather than pretending nothing was missed.
//! - **Bounded reads** (`until_us`): from the resume cursor up to a given
//!   `time_us`, then the source ends. A run that goes on from a checkpoint
//!   reads again this way what its store committed after it.
//! - Frames that are not a JSON object with a numeric `time_us` are
//!   counted as malformed, logged without their content and skipped; the
//!   connection goes on.
//!
//! Compression is not supported: Jetstream's `compress=true` mode uses
//! zstd with a custom dictionary that a client must ship, and tidewatch
//! does not carry one. Plain JSON frames are what this client asks for.
//!
//! The client runs on its own thread with a single-threaded tokio runtime
//! and sends into a bounded crossbeam channel; when the channel is full it
//! waits, which stops reading from the socket and lets TCP slow the
//! server down (back-pressure).

use crate::health::{Gap, Received, SourceHealth, SourceMessage};
use crate::thread::SourceThread;
use crossbeam_channel::{SendTimeoutError, Sender};
use futures_util::StreamExt;
use rand::Rng;
use serde::Deserialize;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tidewatch_ingest::format::Format;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

/// Bluesky's public Jetstream instances.
pub const DEFAULT_ENDPOINTS: [&str; 4] = [
    "wss://jetstream1.us-east.bsky.network/subscribe",
    "wss://jetstream2.us-east.bsky.network/subscribe",
    "wss://jetstream1.us-west.bsky.network/subscribe",
    "wss://jetstream2.us-west.bsky.network/subscribe",
];

/// The collections tidewatch turns into posts: posts and reposts.
pub const DEFAULT_COLLECTIONS: [&str; 2] = ["app.bsky.feed.post", "app.bsky.feed.repost"];

/// How a Jetstream source connects and recovers.
#[derive(Clone, Debug)]
pub struct JetstreamConfig {
    /// The source's name: the key of its checkpoint and health.
    pub name: String,
    /// `ws://` or `wss://` URLs of `/subscribe` endpoints, tried in turn.
    pub endpoints: Vec<String>,
    /// Collection NSIDs (or `prefix.*`) the server should send; identity
    /// and account events come regardless. Empty means everything.
    pub wanted_collections: Vec<String>,
    /// How far before the last event handed on a reconnection asks to
    /// replay from, in µs.
    pub rewind_us: u64,
    /// How much later than the asked cursor a replay may start before it
    /// counts as a gap, in µs.
    pub gap_tolerance_us: u64,
    /// First reconnect delay; doubled after each failed attempt.
    pub backoff_initial: Duration,
    /// Longest reconnect delay.
    pub backoff_max: Duration,
    /// Give up on a connection attempt after this long.
    pub connect_timeout: Duration,
    /// Reconnect when no frame arrived for this long (a stalled server).
    pub idle_timeout: Duration,
    /// Read only up to this `time_us`, then end (a bounded read: what a
    /// run reads again for its detectors after a checkpoint, from the
    /// resume cursor). `None`: read until stopped.
    pub until_us: Option<u64>,
}

impl JetstreamConfig {
    /// A configuration with the defaults for a real Jetstream pool.
    pub fn new(name: impl Into<String>, endpoints: Vec<String>) -> Self {
        JetstreamConfig {
            name: name.into(),
            endpoints,
            wanted_collections: DEFAULT_COLLECTIONS.iter().map(|c| c.to_string()).collect(),
            rewind_us: 1_000_000,
            gap_tolerance_us: 10_000_000,
            backoff_initial: Duration::from_millis(250),
            backoff_max: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            until_us: None,
        }
    }
}

impl Default for JetstreamConfig {
    fn default() -> Self {
        JetstreamConfig::new("jetstream", DEFAULT_ENDPOINTS.iter().map(|e| e.to_string()).collect())
    }
}

/// Why a Jetstream source could not start.
#[derive(Debug, thiserror::Error)]
pub enum JetstreamError {
    #[error("jetstream source {0:?}: no endpoint configured")]
    NoEndpoints(String),
    #[error("jetstream endpoint {url:?}: {why}")]
    BadEndpoint { url: String, why: String },
    #[error("jetstream source: could not start its runtime or thread: {0}")]
    Spawn(#[from] std::io::Error),
}

/// A running Jetstream source. Stopping it (or dropping it) closes the
/// connection and joins the thread.
pub type JetstreamHandle = SourceThread;

/// Starts a Jetstream source on its own thread. `resume_cursor` is the
/// cursor of the last record the pipeline committed (`None` to start at
/// the live tail).
pub fn start(
    config: JetstreamConfig,
    resume_cursor: Option<u64>,
    tx: Sender<SourceMessage>,
    health: Arc<SourceHealth>,
) -> Result<JetstreamHandle, JetstreamError> {
    if config.endpoints.is_empty() {
        return Err(JetstreamError::NoEndpoints(config.name));
    }
    for url in &config.endpoints {
        check_endpoint(url)?;
    }
    // tokio-tungstenite builds its TLS configuration from the process-wide
    // rustls provider; installing ring is a no-op when one is already set.
    let _ = rustls::crypto::ring::default_provider().install_default();

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let client = Client {
        config,
        tx,
        health,
        stop: stop_rx,
        high_water: resume_cursor,
    };
    let thread = std::thread::Builder::new()
        .name(format!("jetstream-{}", client.config.name))
        .spawn(move || {
            let health = Arc::clone(&client.health);
            runtime.block_on(client.run());
            health.set_connected(false);
        })?;
    Ok(SourceThread::new(stop_tx, thread))
}

fn check_endpoint(url: &str) -> Result<(), JetstreamError> {
    let bad = |why: &str| JetstreamError::BadEndpoint {
        url: url.to_string(),
        why: why.to_string(),
    };
    if !(url.starts_with("ws://") || url.starts_with("wss://")) {
        return Err(bad("must start with ws:// or wss://"));
    }
    if url.contains('#') {
        return Err(bad("must not contain a fragment (#)"));
    }
    url.into_client_request().map_err(|e| bad(&e.to_string()))?;
    Ok(())
}

/// The URL to connect to: the endpoint with Jetstream's query parameters.
pub fn subscribe_url(endpoint: &str, wanted_collections: &[String], cursor: Option<u64>) -> String {
    let mut url = endpoint.to_string();
    let mut separator = if url.contains('?') { '&' } else { '?' };
    for collection in wanted_collections {
        url.push(separator);
        url.push_str("wantedCollections=");
        push_query_value(&mut url, collection);
        separator = '&';
    }
    if let Some(cursor) = cursor {
        url.push(separator);
        let _ = write!(url, "cursor={cursor}");
    }
    url
}

/// Percent-encodes everything but RFC 3986's unreserved characters and
/// `*` (NSID prefixes like `app.bsky.*` are sent as written).
fn push_query_value(url: &mut String, value: &str) {
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'*') {
            url.push(b as char);
        } else {
            let _ = write!(url, "%{b:02X}");
        }
    }
}

/// The reconnect delay after `failures` consecutive failed attempts:
/// `initial · 2^failures`, capped, then a random point in its upper half
/// (jitter, so a crowd of clients does not reconnect in step).
pub fn backoff(initial: Duration, max: Duration, failures: u32) -> Duration {
    let factor = 1u32 << failures.min(16);
    let base = initial.saturating_mul(factor).min(max);
    let half = base / 2;
    let jitter_ns = rand::thread_rng().gen_range(0..=half.as_nanos().min(u64::MAX as u128) as u64);
    half + Duration::from_nanos(jitter_ns)
}

/// Why a frame was skipped. The frame itself is never logged: it may
/// carry handles and DIDs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Malformed {
    NotJson,
    NotAnObjectWithNumericTimeUs,
    NoTimeUs,
}

impl Malformed {
    fn describe(self) -> &'static str {
        match self {
            Malformed::NotJson => "not JSON",
            Malformed::NotAnObjectWithNumericTimeUs => "not an object with a whole-number time_us",
            Malformed::NoTimeUs => "no time_us",
        }
    }
}

/// Reads an event's `time_us`, checking on the way that the frame is one
/// well-formed JSON value.
pub fn event_time_us(frame: &[u8]) -> Result<u64, Malformed> {
    #[derive(Deserialize)]
    struct Head {
        time_us: Option<u64>,
    }
    // serde would also read a struct from an array (`[123]`); an event is
    // always an object.
    let is_object = frame.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    if !is_object {
        return match serde_json::from_slice::<serde::de::IgnoredAny>(frame) {
            Ok(_) => Err(Malformed::NotAnObjectWithNumericTimeUs),
            Err(_) => Err(Malformed::NotJson),
        };
    }
    match serde_json::from_slice::<Head>(frame) {
        Ok(Head { time_us: Some(t) }) => Ok(t),
        Ok(Head { time_us: None }) => Err(Malformed::NoTimeUs),
        Err(e) => match e.classify() {
            serde_json::error::Category::Data => Err(Malformed::NotAnObjectWithNumericTimeUs),
            _ => Err(Malformed::NotJson),
        },
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// How a connection ended.
enum End {
    /// The connection failed or was closed; `delivered` records were
    /// handed on before that.
    Dropped { delivered: u64 },
    /// Asked to stop, or nobody listens any more: the source ends.
    Halt,
}

/// What became of one frame.
enum Outcome {
    Sent,
    Skipped,
    Halt,
}

struct Client {
    config: JetstreamConfig,
    tx: Sender<SourceMessage>,
    health: Arc<SourceHealth>,
    stop: watch::Receiver<bool>,
    /// `time_us` of the newest event handed on (or the resume cursor):
    /// events at or before it are duplicates.
    high_water: Option<u64>,
}

impl Client {
    async fn run(mut self) {
        let endpoints = self.config.endpoints.len();
        let mut endpoint = 0;
        let mut failures = 0u32;
        let mut connected_before = false;
        loop {
            if *self.stop.borrow() || self.read_through() {
                return;
            }
            let asked = self.high_water;
            let url = subscribe_url(
                &self.config.endpoints[endpoint],
                &self.config.wanted_collections,
                asked.map(|c| c.saturating_sub(self.config.rewind_us)),
            );
            let connect = tokio::time::timeout(
                self.config.connect_timeout,
                tokio_tungstenite::connect_async_with_config(url, None, true),
            );
            let attempt = tokio::select! {
                _ = self.stop.changed() => return,
                attempt = connect => attempt,
            };
            let delivered = match attempt {
                Err(_) => {
                    self.health.error(format!(
                        "endpoint {}: connection timed out after {:?}",
                        self.config.endpoints[endpoint], self.config.connect_timeout
                    ));
                    0
                }
                Ok(Err(e)) => {
                    self.health
                        .error(format!("endpoint {}: {e}", self.config.endpoints[endpoint]));
                    0
                }
                Ok(Ok((ws, _response))) => {
                    if connected_before {
                        self.health.reconnected();
                    }
                    connected_before = true;
                    self.health.set_connected(true);
                    let end = self.read(ws, asked).await;
                    self.health.set_connected(false);
                    match end {
                        End::Halt => return,
                        End::Dropped { delivered } => delivered,
                    }
                }
            };
            // A connection that delivered something was healthy: come back
            // to the same endpoint soon. Otherwise move on to the next one
            // and wait longer each time.
            if delivered > 0 {
                failures = 0;
            } else {
                failures = failures.saturating_add(1);
                endpoint = (endpoint + 1) % endpoints;
            }
            let delay = backoff(self.config.backoff_initial, self.config.backoff_max, failures);
            tokio::select! {
                _ = self.stop.changed() => return,
                _ = tokio::time::sleep(delay) => {}
            }
        }
    }

    /// Reads one connection until it fails, goes quiet, or the source
    /// stops. `asked` is the cursor this connection resumed from.
    async fn read<S>(&mut self, mut ws: S, asked: Option<u64>) -> End
    where
        S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
    {
        let mut delivered = 0u64;
        let mut first = true;
        let idle = tokio::time::sleep(self.config.idle_timeout);
        tokio::pin!(idle);
        let mut stop = self.stop.clone();
        loop {
            let next = tokio::select! {
                biased;
                _ = stop.changed() => return End::Halt,
                _ = &mut idle => {
                    self.health.error(format!(
                        "no frame for {:?}: reconnecting",
                        self.config.idle_timeout
                    ));
                    return End::Dropped { delivered };
                }
                next = ws.next() => next,
            };
            let frame = match next {
                None => {
                    self.health.error("connection closed by the server");
                    return End::Dropped { delivered };
                }
                Some(Err(e)) => {
                    self.health.error(format!("connection lost: {e}"));
                    return End::Dropped { delivered };
                }
                Some(Ok(Message::Text(text))) => Vec::from(tokio_tungstenite::tungstenite::Bytes::from(text)),
                Some(Ok(Message::Binary(bytes))) => Vec::from(bytes),
                Some(Ok(Message::Close(_))) => {
                    self.health.error("connection closed by the server");
                    return End::Dropped { delivered };
                }
                // Pings are answered by tungstenite itself.
                Some(Ok(_)) => continue,
            };
            idle.as_mut()
                .reset(tokio::time::Instant::now() + self.config.idle_timeout);
            match self.accept(frame, &mut first, asked) {
                Outcome::Sent => delivered += 1,
                Outcome::Skipped => {}
                Outcome::Halt => return End::Halt,
            }
        }
    }

    /// Checks one frame, reports a gap if it reveals one, drops it if it
    /// was already handed on, and hands it on otherwise.
    fn accept(&mut self, frame: Vec<u8>, first: &mut bool, asked: Option<u64>) -> Outcome {
        let time_us = match event_time_us(&frame) {
            Ok(t) => t,
            Err(why) => {
                self.health.malformed();
                eprintln!(
                    "jetstream source {}: skipped a malformed frame ({} bytes): {}",
                    self.config.name,
                    frame.len(),
                    why.describe()
                );
                return Outcome::Skipped;
            }
        };
        if std::mem::take(first) {
            if let Some(from) = asked.filter(|c| time_us > c.saturating_add(self.config.gap_tolerance_us)) {
                let gap = Gap {
                    source: self.config.name.clone(),
                    detected_at: now_ms(),
                    from: Some(from),
                    to: Some(time_us),
                    what: format!(
                        "jetstream replay asked from time_us {from} but the server's oldest event was at \
                         time_us {time_us}: events in between are no longer kept upstream"
                    ),
                };
                eprintln!("jetstream source {}: gap: {}", self.config.name, gap.what);
                self.health.gap(gap.clone());
                if !self.send(SourceMessage::Gap(gap)) {
                    return Outcome::Halt;
                }
            }
        }
        if self.high_water.is_some_and(|seen| time_us <= seen) {
            return Outcome::Skipped;
        }
        if self.config.until_us.is_some_and(|until| time_us > until) {
            // A bounded read is through: this event is past its end.
            return Outcome::Halt;
        }
        self.high_water = Some(time_us);
        self.health.event(Some((time_us / 1000) as i64));
        let record = Received {
            source: self.config.name.clone(),
            format: Format::Jetstream,
            bytes: frame,
            cursor: Some(time_us),
        };
        if !self.send(SourceMessage::Record(record)) {
            return Outcome::Halt;
        }
        if self.read_through() {
            return Outcome::Halt;
        }
        Outcome::Sent
    }

    /// Whether a bounded read has handed on everything up to its end.
    fn read_through(&self) -> bool {
        matches!((self.config.until_us, self.high_water), (Some(until), Some(seen)) if seen >= until)
    }

    /// Sends into the pipeline, waiting while the channel is full but
    /// giving up when asked to stop. False when the source must end.
    fn send(&self, message: SourceMessage) -> bool {
        let mut message = message;
        loop {
            match self.tx.send_timeout(message, Duration::from_millis(50)) {
                Ok(()) => return true,
                Err(SendTimeoutError::Timeout(m)) => {
                    if *self.stop.borrow() {
                        return false;
                    }
                    message = m;
                }
                Err(SendTimeoutError::Disconnected(_)) => return false,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn subscribe_url_lists_collections_then_the_cursor() {
        let wanted = vec!["app.bsky.feed.post".to_string(), "app.bsky.graph.*".to_string()];
        assert_eq!(
            subscribe_url("ws://127.0.0.1:9/subscribe", &wanted, Some(1_725_000_000_000_000)),
            "ws://127.0.0.1:9/subscribe?wantedCollections=app.bsky.feed.post\
             &wantedCollections=app.bsky.graph.*&cursor=1725000000000000"
        );
        assert_eq!(
            subscribe_url("ws://h/subscribe?requireHello=false", &[], None),
            "ws://h/subscribe?requireHello=false"
        );
        assert_eq!(
            subscribe_url("ws://h/subscribe", &["a b&c".to_string()], Some(7)),
            "ws://h/subscribe?wantedCollections=a%20b%26c&cursor=7"
        );
    }

    #[test]
    fn endpoints_are_checked_at_start() {
        assert!(check_endpoint("wss://jetstream1.us-east.bsky.network/subscribe").is_ok());
        assert!(check_endpoint("ws://127.0.0.1:6008/subscribe").is_ok());
        assert!(matches!(
            check_endpoint("https://example.invalid/subscribe"),
            Err(JetstreamError::BadEndpoint { .. })
        ));
        assert!(matches!(
            check_endpoint("ws://h/subscribe#x"),
            Err(JetstreamError::BadEndpoint { .. })
        ));
        let (tx, _rx) = crossbeam_channel::bounded(1);
        let config = JetstreamConfig::new("empty", vec![]);
        assert!(matches!(
            start(config, None, tx, Arc::default()),
            Err(JetstreamError::NoEndpoints(_))
        ));
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_with_jitter_in_the_upper_half() {
        let initial = Duration::from_millis(100);
        let max = Duration::from_secs(3);
        for _ in 0..50 {
            let d0 = backoff(initial, max, 0);
            assert!(d0 >= Duration::from_millis(50) && d0 <= initial, "{d0:?}");
            let d3 = backoff(initial, max, 3);
            assert!(
                d3 >= Duration::from_millis(400) && d3 <= Duration::from_millis(800),
                "{d3:?}"
            );
            let d_big = backoff(initial, max, 1000);
            assert!(d_big >= max / 2 && d_big <= max, "{d_big:?}");
        }
    }

    #[test]
    fn time_us_is_read_and_bad_frames_are_classified() {
        assert_eq!(
            event_time_us(br#"{"did":"did:plc:x","time_us":1725911162329308,"kind":"commit"}"#),
            Ok(1_725_911_162_329_308)
        );
        assert_eq!(event_time_us(b"{not json"), Err(Malformed::NotJson));
        assert_eq!(event_time_us(&[0xff, 0xfe, 0x00, 0x13]), Err(Malformed::NotJson));
        assert_eq!(event_time_us(br#"{"kind":"commit"}"#), Err(Malformed::NoTimeUs));
        assert_eq!(
            event_time_us(br#"{"time_us":"soon"}"#),
            Err(Malformed::NotAnObjectWithNumericTimeUs)
        );
        assert_eq!(
            event_time_us(br#"{"time_us":-5}"#),
            Err(Malformed::NotAnObjectWithNumericTimeUs)
        );
        assert_eq!(event_time_us(b"[1,2]"), Err(Malformed::NotAnObjectWithNumericTimeUs));
        assert_eq!(
            event_time_us(b" [1725911162329308]"),
            Err(Malformed::NotAnObjectWithNumericTimeUs)
        );
        assert_eq!(event_time_us(b"17"), Err(Malformed::NotAnObjectWithNumericTimeUs));
        assert_eq!(event_time_us(b""), Err(Malformed::NotJson));
        assert_eq!(event_time_us(br#"{"time_us":1} trailing"#), Err(Malformed::NotJson));
    }

    proptest! {
        #[test]
        fn reading_time_us_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = event_time_us(&bytes);
        }
    }
}
