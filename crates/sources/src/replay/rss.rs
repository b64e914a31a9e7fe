//! A feed host in miniature: RSS 2.0 feeds with `ETag` / `Last-Modified`
//! and `304 Not Modified`, items added over time by the test, and failures
//! on cue (an HTTP error status, or no answer at all).
//!
//! It counts what a polite, economical poller should cause: requests and
//! conditional hits per feed, and the most requests in flight at once per
//! host name (the `Host` header, so `127.0.0.1` and `localhost` are two
//! hosts of the same server). A fixed latency can be added to every
//! answer so that overlapping requests would show.
//!
//! Control methods block; call them from plain threads, not async code.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tidewatch_core::Timestamp;
use tokio::runtime::Runtime;

/// Items listed in a feed document (older ones fall off, as on real feeds).
const WINDOW: usize = 20;
/// 2026-03-01T00:00:00Z; each item one minute after the previous.
const FIRST_MS: i64 = 1_772_323_200_000;

/// How a feed fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// Answers with this HTTP status.
    Status(u16),
    /// Never answers (the client's timeout must fire).
    Stall,
}

/// What one feed was asked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FeedStats {
    pub requests: u64,
    /// Conditional requests answered `304 Not Modified`.
    pub not_modified: u64,
    /// Answers with a body.
    pub full: u64,
}

/// A running feed host.
pub struct RssReplay {
    addr: SocketAddr,
    app: Arc<App>,
    runtime: Option<Runtime>,
}

#[derive(Default)]
struct App {
    state: Mutex<HostState>,
}

#[derive(Default)]
struct HostState {
    feeds: HashMap<String, ReplayFeed>,
    latency: Duration,
    in_flight: HashMap<String, usize>,
    max_in_flight: HashMap<String, usize>,
    published: u64,
}

#[derive(Default)]
struct ReplayFeed {
    /// (guid, title, time), oldest first.
    items: Vec<(String, String, Timestamp)>,
    /// Bumped whenever the document changes: the ETag.
    version: u64,
    failure: Option<Failure>,
    stats: FeedStats,
}

impl RssReplay {
    /// Starts on `127.0.0.1` and a free port.
    pub fn start() -> io::Result<Self> {
        let app = Arc::new(App::default());
        let listener = super::mastodon::bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
        let addr = listener.local_addr()?;
        listener.set_nonblocking(true)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("rss-replay")
            .enable_all()
            .build()?;
        let listener = {
            let _guard = runtime.enter();
            tokio::net::TcpListener::from_std(listener)?
        };
        let router = Router::new().route("/feeds/{name}", get(feed)).with_state(app.clone());
        runtime.spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(RssReplay {
            addr,
            app,
            runtime: Some(runtime),
        })
    }

    /// The URL of a feed, through `host` (`127.0.0.1` or `localhost`).
    pub fn feed_url(&self, host: &str, name: &str) -> String {
        format!("http://{host}:{}/feeds/{name}.xml", self.addr.port())
    }

    /// Adds `n` items to a feed (created on first use); returns their guids.
    pub fn add_items(&self, name: &str, n: usize) -> Vec<String> {
        let mut state = self.app.lock();
        let mut guids = Vec::with_capacity(n);
        for _ in 0..n {
            let k = state.published;
            state.published += 1;
            let feed = state.feeds.entry(name.to_owned()).or_default();
            let guid = format!("https://feeds.replay.example/{name}/items/{k}");
            let title = format!("Harbour notice {k}: tide tables for pier {}", k % 7);
            feed.items.push((
                guid.clone(),
                title,
                Timestamp::from_millis(FIRST_MS + k as i64 * 60_000),
            ));
            feed.version += 1;
            guids.push(guid);
        }
        guids
    }

    pub fn set_failure(&self, name: &str, failure: Option<Failure>) {
        self.app.lock().feeds.entry(name.to_owned()).or_default().failure = failure;
    }

    /// Every answer waits this long first.
    pub fn set_latency(&self, latency: Duration) {
        self.app.lock().latency = latency;
    }

    pub fn stats(&self, name: &str) -> FeedStats {
        self.app
            .lock()
            .feeds
            .get(name)
            .map(|f| f.stats.clone())
            .unwrap_or_default()
    }

    /// The most requests that were in flight at once for `host`.
    pub fn max_in_flight(&self, host: &str) -> usize {
        self.app.lock().max_in_flight.get(host).copied().unwrap_or(0)
    }
}

impl Drop for RssReplay {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(Duration::from_secs(2));
        }
    }
}

impl App {
    fn lock(&self) -> MutexGuard<'_, HostState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Counts a request in flight for its host while alive (also when the
/// client gives up and the answer is dropped).
struct InFlight {
    app: Arc<App>,
    host: String,
}

impl InFlight {
    fn new(app: Arc<App>, host: String) -> Self {
        {
            let mut state = app.lock();
            let n = state.in_flight.entry(host.clone()).or_default();
            *n += 1;
            let now = *n;
            let max = state.max_in_flight.entry(host.clone()).or_default();
            *max = (*max).max(now);
        }
        InFlight { app, host }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(n) = self.app.lock().in_flight.get_mut(&self.host) {
            *n = n.saturating_sub(1);
        }
    }
}

async fn feed(State(app): State<Arc<App>>, Path(file): Path<String>, headers: HeaderMap) -> Response {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(|h| h.rsplit_once(':').map_or(h, |(host, _)| host).to_owned())
        .unwrap_or_default();
    let _in_flight = InFlight::new(app.clone(), host);
    let latency = app.lock().latency;
    tokio::time::sleep(latency).await;

    let name = file.strip_suffix(".xml").unwrap_or(&file).to_owned();
    let failure = {
        let mut state = app.lock();
        let Some(feed) = state.feeds.get_mut(&name) else {
            return StatusCode::NOT_FOUND.into_response();
        };
        feed.stats.requests += 1;
        feed.failure
    };
    match failure {
        Some(Failure::Status(code)) => {
            return StatusCode::from_u16(code)
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
                .into_response()
        }
        Some(Failure::Stall) => std::future::pending::<()>().await,
        None => {}
    }

    let mut state = app.lock();
    let Some(feed) = state.feeds.get_mut(&name) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let etag = format!("\"v{}\"", feed.version);
    let modified = feed
        .items
        .last()
        .and_then(|(_, _, t)| t.to_datetime())
        .map(|t| t.format("%a, %d %b %Y %H:%M:%S GMT").to_string())
        .unwrap_or_else(|| "Sun, 01 Mar 2026 00:00:00 GMT".to_owned());
    let header_is = |name, want: &str| headers.get(name).and_then(|v| v.to_str().ok()) == Some(want);
    // If-None-Match wins over If-Modified-Since when both are sent.
    let unchanged = if headers.contains_key(header::IF_NONE_MATCH) {
        header_is(header::IF_NONE_MATCH, &etag)
    } else {
        header_is(header::IF_MODIFIED_SINCE, &modified)
    };
    if unchanged {
        feed.stats.not_modified += 1;
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response();
    }
    feed.stats.full += 1;
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rss version=\"2.0\"><channel><title>{name}</title><link>https://feeds.replay.example/{name}</link><description>Invented notices</description><language>en-gb</language>\n"
    );
    for (guid, title, time) in feed.items.iter().rev().take(WINDOW) {
        let date = time.to_datetime().map(|t| t.to_rfc2822()).unwrap_or_default();
        xml.push_str(&format!(
            "<item><title>{title}</title><link>{guid}</link><guid>{guid}</guid><pubDate>{date}</pubDate><description>&lt;p&gt;Calm water expected near the ferry.&lt;/p&gt;</description></item>\n"
        ));
    }
    xml.push_str("</channel></rss>\n");
    (
        [
            (header::CONTENT_TYPE, "application/rss+xml".to_owned()),
            (header::ETAG, etag),
            (header::LAST_MODIFIED, modified),
        ],
        xml,
    )
        .into_response()
}
