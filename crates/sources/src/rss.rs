//! RSS/Atom polling: fetch many feeds, each on its own interval, politely,
//! and hand on a feed document whenever it holds items not seen before.
//!
//! Feeds come from a list file (one URL a line, optionally followed by an
//! interval such as `300`, `90s`, `15m`, `1h`; `#` starts a comment) or an
//! OPML file (every `outline` with an `xmlUrl`). Each feed is polled with a
//! conditional GET: the `ETag` and `Last-Modified` of the last answer go
//! back as `If-None-Match` and `If-Modified-Since`, so an unchanged feed
//! costs a `304 Not Modified` and no body.
//!
//! **What is handed on.** The Rss adapter decodes whole feed documents, so
//! the poller hands on the fetched document, unchanged, when it holds at
//! least one item the poller has not seen before; the pipeline's decoder
//! (which remembers the ids it emitted) and the store (de-duplication by
//! id) drop the items already known. To know which items are new, the
//! poller decodes the document with the same adapter, so it names items by
//! exactly the ids the pipeline will use (guid / Atom id, else link, else a
//! hash of the text), and remembers a bounded set of them per feed. It
//! counts one health event per new item: the count of posts the pipeline
//! gets out of the document. Sending whole documents rather than rebuilding
//! one small document per item keeps every field the feed had (its
//! language, its authors) exactly as the adapter expects it.
//!
//! **Politeness.** At most one request per host is in flight at a time, and
//! requests to one host are at least `min_host_delay` apart, however many
//! feeds it serves.
//!
//! **Errors and gaps.** Each feed keeps its last HTTP status, its last
//! error and its count of consecutive failures ([`FeedStatus`]). A feed
//! that has not been read for `outage_intervals` of its intervals may have
//! lost items that came and went meanwhile: that is reported as a [`Gap`]
//! once per outage (a later success ends the outage).

use crate::thread::SourceThread;
use crate::{Gap, Received, SourceHealth, SourceMessage};
use crossbeam_channel::{SendTimeoutError, Sender};
use futures_util::StreamExt;
use reqwest::header::{ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED};
use reqwest::{StatusCode, Url};
use std::collections::{HashMap, HashSet, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tidewatch_ingest::format::{DecodeOutput, Format};
use tokio::sync::watch;
use tokio::time::Instant;

/// One feed to poll.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedSpec {
    pub url: String,
    /// Its own interval; the config's default when `None`.
    pub interval: Option<Duration>,
}

/// How to poll a set of feeds.
#[derive(Clone, Debug)]
pub struct RssConfig {
    /// The source's name (its health and gaps are reported under it).
    pub name: String,
    pub feeds: Vec<FeedSpec>,
    pub default_interval: Duration,
    /// Least time between the end of one request to a host and the start
    /// of the next.
    pub min_host_delay: Duration,
    pub request_timeout: Duration,
    /// Larger feed bodies are refused (an error for that poll).
    pub max_body_bytes: usize,
    /// Item ids remembered per feed (at least twice the feed's size is
    /// kept whatever this says, so a long feed does not repeat itself).
    pub seen_per_feed: usize,
    /// A feed unread for this many intervals is reported as a gap.
    pub outage_intervals: u32,
}

impl RssConfig {
    /// A config with the usual interval (15 min), delays and limits.
    pub fn new(name: impl Into<String>, feeds: Vec<FeedSpec>) -> Self {
        RssConfig {
            name: name.into(),
            feeds,
            default_interval: Duration::from_secs(15 * 60),
            min_host_delay: Duration::from_secs(1),
            request_timeout: Duration::from_secs(30),
            max_body_bytes: 10 << 20,
            seen_per_feed: 2_000,
            outage_intervals: 2,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RssError {
    #[error("feed URL `{url}`: {reason}")]
    Url { url: String, reason: String },
    #[error("could not start the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    #[error("could not start the poller's thread or runtime: {0}")]
    Runtime(#[from] std::io::Error),
}

/// Why a feed list could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FeedListError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("line {line}: {reason}")]
    Line { line: usize, reason: String },
    #[error("OPML: {0}")]
    Opml(String),
}

/// Reads a feed list: OPML when the file starts with `<`, else one URL a
/// line.
pub fn load_feed_list(path: &Path) -> Result<Vec<FeedSpec>, FeedListError> {
    let text = std::fs::read_to_string(path).map_err(|source| FeedListError::Io {
        path: path.display().to_string(),
        source,
    })?;
    if text.trim_start().starts_with('<') {
        parse_opml(&text)
    } else {
        parse_feed_list(&text)
    }
}

/// Parses `URL [INTERVAL]` lines; blank lines and `#` comments are skipped.
pub fn parse_feed_list(text: &str) -> Result<Vec<FeedSpec>, FeedListError> {
    let mut feeds = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split_once('#').map_or(raw, |(before, _)| before).trim();
        if line.is_empty() {
            continue;
        }
        let bad = |reason: String| FeedListError::Line { line: i + 1, reason };
        let mut words = line.split_whitespace();
        let url = words.next().unwrap_or_default();
        check_url(url).map_err(bad)?;
        let interval = match words.next() {
            None => None,
            Some(w) => {
                Some(parse_interval(w).ok_or_else(|| bad(format!("`{w}` is not an interval (300, 90s, 15m, 1h)")))?)
            }
        };
        if let Some(extra) = words.next() {
            return Err(bad(format!("unexpected `{extra}` after the interval")));
        }
        feeds.push(FeedSpec {
            url: url.to_owned(),
            interval,
        });
    }
    Ok(feeds)
}

/// Takes the `xmlUrl` of every `outline` of an OPML document.
pub fn parse_opml(text: &str) -> Result<Vec<FeedSpec>, FeedListError> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(text);
    let mut feeds = Vec::new();
    loop {
        let event = reader
            .read_event()
            .map_err(|e| FeedListError::Opml(format!("at byte {}: {e}", reader.buffer_position())))?;
        match event {
            Event::Start(e) | Event::Empty(e) if e.local_name().as_ref() == b"outline" => {
                for attr in e.attributes() {
                    let attr = attr.map_err(|e| FeedListError::Opml(e.to_string()))?;
                    if attr.key.local_name().as_ref() != b"xmlUrl" {
                        continue;
                    }
                    let url = attr
                        .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                        .map_err(|e| FeedListError::Opml(e.to_string()))?;
                    let url = url.trim();
                    check_url(url).map_err(FeedListError::Opml)?;
                    feeds.push(FeedSpec {
                        url: url.to_owned(),
                        interval: None,
                    });
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(feeds)
}

/// `300` (seconds), `90s`, `15m`, `1h`; `None` for anything else or zero.
pub fn parse_interval(s: &str) -> Option<Duration> {
    let (digits, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => s.split_at(at),
        None => (s, "s"),
    };
    let n: u64 = digits.parse().ok()?;
    let secs = match unit {
        "s" => n,
        "m" => n.checked_mul(60)?,
        "h" => n.checked_mul(3600)?,
        _ => return None,
    };
    (secs > 0).then(|| Duration::from_secs(secs))
}

fn check_url(url: &str) -> Result<Url, String> {
    let parsed = Url::parse(url).map_err(|e| format!("`{url}`: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(format!("`{url}` is not an http(s) URL"));
    }
    Ok(parsed)
}

/// A feed's state as last seen, for status reports.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct FeedStatus {
    pub url: String,
    /// HTTP status of the last answer (`None` before one, or when the
    /// request itself failed).
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    pub consecutive_failures: u32,
    pub polls: u64,
    /// Answers `304 Not Modified`.
    pub not_modified: u64,
    /// Items handed on as new.
    pub new_items: u64,
    /// Unread for longer than the outage threshold (a gap was reported).
    pub in_outage: bool,
}

/// The running poller; [`RssHandle::stop`] (or dropping it) ends it.
pub struct RssHandle {
    thread: SourceThread,
    feeds: Arc<Mutex<Vec<FeedStatus>>>,
}

impl RssHandle {
    /// Each feed's state, in the order of the config.
    pub fn feeds(&self) -> Vec<FeedStatus> {
        lock(&self.feeds).clone()
    }

    /// Stops the poller and waits for its thread.
    pub fn stop(self) {
        self.thread.stop();
    }

    pub fn is_finished(&self) -> bool {
        self.thread.is_finished()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Starts polling every feed of `config` on the poller's own thread. Each
/// feed is first polled at once (requests to one host still queue).
pub fn start(config: RssConfig, tx: Sender<SourceMessage>, health: Arc<SourceHealth>) -> Result<RssHandle, RssError> {
    let mut urls = Vec::with_capacity(config.feeds.len());
    for feed in &config.feeds {
        let url = check_url(&feed.url).map_err(|reason| RssError::Url {
            url: feed.url.clone(),
            reason,
        })?;
        urls.push(url);
    }
    let http = reqwest::Client::builder()
        .connect_timeout(config.request_timeout)
        .timeout(config.request_timeout)
        .user_agent(concat!("tidewatch/", env!("CARGO_PKG_VERSION"), " (feed poller)"))
        .build()?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let statuses: Vec<FeedStatus> = config
        .feeds
        .iter()
        .map(|f| FeedStatus {
            url: f.url.clone(),
            ..FeedStatus::default()
        })
        .collect();
    let feeds = Arc::new(Mutex::new(statuses));
    let (stop_tx, stop_rx) = watch::channel(false);
    let shared = Arc::new(Shared {
        config,
        http,
        tx,
        health,
        stop: stop_rx,
        statuses: feeds.clone(),
    });
    let thread = std::thread::Builder::new()
        .name(format!("rss-{}", shared.config.name))
        .spawn(move || runtime.block_on(run(shared, urls)))?;
    Ok(RssHandle {
        thread: SourceThread::new(stop_tx, thread),
        feeds,
    })
}

/// What every feed's task shares.
struct Shared {
    config: RssConfig,
    http: reqwest::Client,
    tx: Sender<SourceMessage>,
    health: Arc<SourceHealth>,
    stop: watch::Receiver<bool>,
    statuses: Arc<Mutex<Vec<FeedStatus>>>,
}

/// One host's turn: held during a request; remembers when the last one
/// ended.
type HostSlot = Arc<tokio::sync::Mutex<Option<Instant>>>;

async fn run(shared: Arc<Shared>, urls: Vec<Url>) {
    let mut hosts: HashMap<String, HostSlot> = HashMap::new();
    let mut tasks = tokio::task::JoinSet::new();
    for (index, url) in urls.into_iter().enumerate() {
        let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
        let slot = hosts.entry(host).or_default().clone();
        let interval = shared.config.feeds[index]
            .interval
            .unwrap_or(shared.config.default_interval)
            .max(Duration::from_millis(1));
        let feed = Feed::new(index, url, interval, shared.clone(), slot);
        tasks.spawn(feed.run());
    }
    shared.health.set_connected(true);
    let mut stop = shared.stop.clone();
    tokio::select! {
        _ = stop.wait_for(|s| *s) => {}
        // Every task ended: the pipeline is gone.
        _ = async { while tasks.join_next().await.is_some() {} } => {}
    }
    tasks.abort_all();
    shared.health.set_connected(false);
}

/// What one poll found.
enum Outcome {
    NotModified,
    /// A document with the ids, times and count of its new items.
    Fetched {
        body: Vec<u8>,
        new: Vec<Option<i64>>,
    },
    Failed {
        status: Option<u16>,
        error: String,
    },
}

/// One feed's poller.
struct Feed {
    index: usize,
    url: Url,
    interval: Duration,
    shared: Arc<Shared>,
    host: HostSlot,
    etag: Option<String>,
    last_modified: Option<String>,
    seen: SeenIds,
    /// When the feed was last read (or the poller started).
    last_ok: Instant,
    in_outage: bool,
}

impl Feed {
    fn new(index: usize, url: Url, interval: Duration, shared: Arc<Shared>, host: HostSlot) -> Self {
        let seen = SeenIds::new(shared.config.seen_per_feed);
        Feed {
            index,
            url,
            interval,
            shared,
            host,
            etag: None,
            last_modified: None,
            seen,
            last_ok: Instant::now(),
            in_outage: false,
        }
    }

    async fn run(mut self) {
        let mut next = Instant::now();
        loop {
            tokio::time::sleep_until(next).await;
            let started = Instant::now();
            let outcome = {
                let host = self.host.clone();
                let mut last_end = host.lock().await;
                if let Some(end) = *last_end {
                    tokio::time::sleep_until(end + self.shared.config.min_host_delay).await;
                }
                let outcome = self.poll().await;
                *last_end = Some(Instant::now());
                outcome
            };
            if self.handle(outcome).is_err() {
                return;
            }
            next = (started + self.interval).max(Instant::now());
        }
    }

    /// One conditional GET.
    async fn poll(&mut self) -> Outcome {
        let mut request = self.shared.http.get(self.url.clone());
        if let Some(etag) = &self.etag {
            request = request.header(IF_NONE_MATCH, etag);
        }
        if let Some(modified) = &self.last_modified {
            request = request.header(IF_MODIFIED_SINCE, modified);
        }
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => {
                let error = if e.is_timeout() {
                    "request timed out".to_owned()
                } else {
                    format!("request failed: {e}")
                };
                return Outcome::Failed { status: None, error };
            }
        };
        let status = response.status();
        if status == StatusCode::NOT_MODIFIED {
            return Outcome::NotModified;
        }
        if !status.is_success() {
            return Outcome::Failed {
                status: Some(status.as_u16()),
                error: format!("HTTP {}", status.as_u16()),
            };
        }
        let header = |name| {
            response
                .headers()
                .get(name)
                .and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok())
                .map(str::to_owned)
        };
        let (etag, modified) = (header(ETAG), header(LAST_MODIFIED));
        let failed = |error: String| Outcome::Failed {
            status: Some(status.as_u16()),
            error,
        };
        let mut body = Vec::new();
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(bytes) if body.len() + bytes.len() <= self.shared.config.max_body_bytes => {
                    body.extend_from_slice(&bytes)
                }
                Ok(_) => return failed(format!("body larger than {} bytes", self.shared.config.max_body_bytes)),
                Err(e) => return failed(format!("reading the body: {e}")),
            }
        }

        // Name the items exactly as the pipeline's adapter will.
        let mut decoded = DecodeOutput::default();
        if let Err(e) = Format::Rss.decoder(None).decode(&body, &mut decoded) {
            self.shared.health.malformed();
            eprintln!(
                "tidewatch-sources: {}: feed {} skipped: {e}",
                self.shared.config.name, self.url
            );
            return failed(format!("not a feed: {e}"));
        }
        // Only a document that parsed may stand for the feed's state.
        self.etag = etag;
        self.last_modified = modified;
        let posts: Vec<_> = decoded
            .events
            .iter()
            .filter_map(|e| match e {
                tidewatch_core::Event::Post(p) => Some(p),
                tidewatch_core::Event::Delete(_) => None,
            })
            .collect();
        self.seen.fit(posts.len());
        let new = posts
            .iter()
            .filter(|p| self.seen.insert(&p.id))
            .map(|p| p.created_at.map(|t| t.millis()))
            .collect();
        Outcome::Fetched { body, new }
    }

    /// Updates the feed's state and hands on what is new. `Err` when the
    /// poller must end.
    fn handle(&mut self, outcome: Outcome) -> Result<(), ()> {
        let mut status = FeedStatus::default();
        let failure = match outcome {
            Outcome::NotModified => {
                self.update_status(|s| {
                    s.last_status = Some(304);
                    s.not_modified += 1;
                });
                None
            }
            Outcome::Fetched { body, new } => {
                let count = new.len() as u64;
                self.update_status(|s| {
                    s.last_status = Some(200);
                    s.new_items += count;
                });
                if count > 0 {
                    for created in &new {
                        self.shared.health.event(*created);
                    }
                    self.send(SourceMessage::Record(Received {
                        source: self.shared.config.name.clone(),
                        format: Format::Rss,
                        bytes: body,
                        cursor: None,
                    }))?;
                }
                None
            }
            Outcome::Failed { status: code, error } => Some((code, error)),
        };
        match failure {
            None => {
                self.last_ok = Instant::now();
                self.in_outage = false;
                self.update_status(|s| {
                    s.polls += 1;
                    s.consecutive_failures = 0;
                    s.last_error = None;
                    s.in_outage = false;
                });
            }
            Some((code, error)) => {
                self.shared.health.error(format!("{}: {error}", self.url));
                self.update_status(|s| {
                    s.polls += 1;
                    s.last_status = code;
                    s.consecutive_failures += 1;
                    s.last_error = Some(error.clone());
                    status = s.clone();
                });
                let unread = self.last_ok.elapsed();
                let threshold = self.interval * self.shared.config.outage_intervals.max(1);
                if !self.in_outage && unread >= threshold {
                    self.in_outage = true;
                    self.update_status(|s| s.in_outage = true);
                    let since_ms = now_ms() - unread.as_millis() as i64;
                    let gap = Gap {
                        source: self.shared.config.name.clone(),
                        detected_at: now_ms(),
                        from: u64::try_from(since_ms).ok(),
                        to: None,
                        what: format!(
                            "feed {} unreachable for {} s ({} failed polls, last: {error}); items it published meanwhile may be missing",
                            self.url,
                            unread.as_secs(),
                            status.consecutive_failures
                        ),
                    };
                    self.shared.health.gap(gap.clone());
                    self.send(SourceMessage::Gap(gap))?;
                }
            }
        }
        Ok(())
    }

    fn update_status(&self, f: impl FnOnce(&mut FeedStatus)) {
        if let Some(s) = lock(&self.shared.statuses).get_mut(self.index) {
            f(s);
        }
    }

    /// Blocks while the pipeline's channel is full (back-pressure); gives
    /// up when asked to stop or when the pipeline is gone.
    fn send(&self, message: SourceMessage) -> Result<(), ()> {
        let mut message = message;
        loop {
            match self.shared.tx.send_timeout(message, Duration::from_millis(50)) {
                Ok(()) => return Ok(()),
                Err(SendTimeoutError::Disconnected(_)) => return Err(()),
                Err(SendTimeoutError::Timeout(back)) => {
                    if *self.shared.stop.borrow() {
                        return Err(());
                    }
                    message = back;
                }
            }
        }
    }
}

/// The item ids of one feed seen last, oldest forgotten first.
struct SeenIds {
    set: HashSet<String>,
    order: VecDeque<String>,
    capacity: usize,
}

impl SeenIds {
    fn new(capacity: usize) -> Self {
        SeenIds {
            set: HashSet::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    /// Keeps room for at least twice a document of `items` items, so that
    /// the items of a long feed are never forgotten while it still lists
    /// them.
    fn fit(&mut self, items: usize) {
        self.capacity = self.capacity.max(items.saturating_mul(2));
    }

    /// `false` when `id` was seen.
    fn insert(&mut self, id: &str) -> bool {
        if self.set.contains(id) {
            return false;
        }
        self.set.insert(id.to_owned());
        self.order.push_back(id.to_owned());
        while self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
        true
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

    #[test]
    fn feed_lists_take_urls_intervals_and_comments() {
        let text = "# my feeds\nhttps://a.example/feed.xml\n\nhttp://b.example/rss 90s  # news\nhttps://c.example/atom 15m\nhttps://d.example/x 300\n";
        let feeds = parse_feed_list(text).unwrap();
        let got: Vec<(&str, Option<u64>)> = feeds
            .iter()
            .map(|f| (f.url.as_str(), f.interval.map(|d| d.as_secs())))
            .collect();
        assert_eq!(
            got,
            [
                ("https://a.example/feed.xml", None),
                ("http://b.example/rss", Some(90)),
                ("https://c.example/atom", Some(900)),
                ("https://d.example/x", Some(300)),
            ]
        );
    }

    #[test]
    fn feed_list_errors_name_the_line() {
        for (text, line) in [
            ("https://a.example/f\nnot a url\n", 2),
            ("ftp://a.example/f\n", 1),
            ("https://a.example/f 5 days\n", 1),
            ("\n\nhttps://a.example/f 0\n", 3),
        ] {
            match parse_feed_list(text) {
                Err(FeedListError::Line { line: l, .. }) => assert_eq!(l, line, "{text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn intervals() {
        assert_eq!(parse_interval("45"), Some(Duration::from_secs(45)));
        assert_eq!(parse_interval("2h"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_interval("0m"), None);
        assert_eq!(parse_interval("m"), None);
        assert_eq!(parse_interval("5d"), None);
        assert_eq!(parse_interval("99999999999999999999h"), None);
    }

    #[test]
    fn opml_outlines_give_feeds() {
        let opml = r#"<?xml version="1.0"?>
<opml version="2.0"><head><title>subs</title></head><body>
  <outline text="News">
    <outline type="rss" text="A" xmlUrl="https://a.example/feed?x=1&amp;y=2"/>
    <outline type="rss" text="B" xmlUrl=" http://b.example/rss "></outline>
  </outline>
  <outline text="no feed"/>
</body></opml>"#;
        let feeds = parse_opml(opml).unwrap();
        let urls: Vec<&str> = feeds.iter().map(|f| f.url.as_str()).collect();
        assert_eq!(urls, ["https://a.example/feed?x=1&y=2", "http://b.example/rss"]);
        assert!(parse_opml("<opml><body><outline xmlUrl=\"nope\"/></body></opml>").is_err());
        assert!(parse_opml("<opml><body></outline>").is_err());
    }

    #[test]
    fn seen_ids_keep_room_for_the_whole_feed() {
        let mut seen = SeenIds::new(2);
        seen.fit(3);
        for id in ["a", "b", "c"] {
            assert!(seen.insert(id));
        }
        for id in ["a", "b", "c"] {
            assert!(!seen.insert(id));
        }
        for id in ["d", "e", "f", "g"] {
            assert!(seen.insert(id));
        }
        assert!(seen.insert("a")); // forgotten beyond 6
    }
}
