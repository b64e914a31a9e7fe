//! A Mastodon instance in miniature: the streaming API as server-sent
//! events and the REST timelines with `min_id` / `since_id` / `max_id`
//! paging, serving generated statuses (invented accounts and texts).
//!
//! The test drives it: [`MastodonReplay::publish`] posts statuses (they go
//! to the timeline and to every open stream that wants them), and the
//! fault switches make it misbehave: close each stream after N events,
//! stall new streams, send an event whose data is not JSON, go down and
//! come back on the same port, or keep only the newest statuses in the REST
//! timeline (statuses lost upstream).
//!
//! Each run of the server lives in its own tokio runtime; going down shuts
//! that runtime down, which closes the listener and every connection at
//! once, as a crashed instance would. Control methods block, so call them
//! from plain threads (tests), not from async code.

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::json;
use std::collections::HashMap;
use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tidewatch_core::Timestamp;
use tokio::runtime::Runtime;
use tokio::sync::broadcast;

/// Invented accounts: bare names are local to the replay instance.
const ACCOUNTS: [&str; 5] = [
    "alice_example",
    "bob_example",
    "carol_example",
    "dave_example@far.example",
    "erin_example@other.example",
];
const WORDS: [&str; 12] = [
    "tide", "harbour", "gull", "pier", "storm", "calm", "sand", "kelp", "lantern", "ferry", "reef", "dune",
];
const TAGS: [&str; 3] = ["tides", "harbour", "storms"];
/// The first id; ids then grow by 1..=1000, like Mastodon's time-based ids.
const FIRST_ID: u64 = 112_000_000_000_000_000;
/// 2026-03-01T00:00:00Z, the first status's time; one second apart.
const FIRST_MS: i64 = 1_772_323_200_000;

/// A generated status.
#[derive(Clone, Debug)]
pub struct ReplayStatus {
    pub id: u64,
    pub local: bool,
    pub tags: Vec<String>,
    /// The status as the API writes it.
    pub json: String,
}

/// What the server has done, for assertions.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MastodonReplayStats {
    pub stream_connections: u64,
    pub events_sent: u64,
    pub timeline_requests: u64,
}

/// A running replay instance.
pub struct MastodonReplay {
    addr: SocketAddr,
    app: Arc<App>,
    runtime: Option<Runtime>,
}

struct App {
    state: Mutex<ReplayState>,
    events: broadcast::Sender<Wire>,
}

#[derive(Default)]
struct ReplayState {
    /// Pseudo-random state (splitmix64), so runs are reproducible.
    seed: u64,
    next_id: u64,
    published: u64,
    /// Every status not deleted, oldest first.
    timeline: Vec<Arc<ReplayStatus>>,
    /// The REST timeline serves only this many of the newest statuses.
    keep_newest: Option<usize>,
    drop_after: Option<u64>,
    stall_next: u64,
    stats: MastodonReplayStats,
}

/// One event on the broadcast to open streams.
#[derive(Clone, Debug)]
enum Wire {
    Update(Arc<ReplayStatus>),
    Edit(Arc<ReplayStatus>),
    Delete(u64),
    Malformed,
}

/// Which statuses a stream or timeline shows.
#[derive(Clone, Debug)]
struct Filter {
    local: bool,
    tag: Option<String>,
}

impl Filter {
    fn wants(&self, s: &ReplayStatus) -> bool {
        (!self.local || s.local)
            && self
                .tag
                .as_ref()
                .is_none_or(|t| s.tags.iter().any(|x| x.eq_ignore_ascii_case(t)))
    }
}

impl MastodonReplay {
    /// Starts on `127.0.0.1` and a free port; `seed` fixes the statuses.
    pub fn start(seed: u64) -> io::Result<Self> {
        let (events, _) = broadcast::channel(16_384);
        let app = Arc::new(App {
            state: Mutex::new(ReplayState {
                seed,
                next_id: FIRST_ID,
                ..ReplayState::default()
            }),
            events,
        });
        let (runtime, addr) = serve(&app, SocketAddr::from(([127, 0, 0, 1], 0)))?;
        Ok(MastodonReplay {
            addr,
            app,
            runtime: Some(runtime),
        })
    }

    /// The instance's base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Posts `n` statuses: into the timeline and onto the open streams.
    /// Returns their ids.
    pub fn publish(&self, n: usize) -> Vec<u64> {
        let mut ids = Vec::with_capacity(n);
        for _ in 0..n {
            let status = Arc::new(self.app.lock().generate());
            ids.push(status.id);
            // No open stream is not an error: the status waits in the
            // timeline.
            let _ = self.app.events.send(Wire::Update(status));
        }
        ids
    }

    /// Sends an edit of a published status (`status.update`).
    pub fn edit(&self, id: u64) {
        let status = self.app.lock().timeline.iter().find(|s| s.id == id).cloned();
        if let Some(status) = status {
            let _ = self.app.events.send(Wire::Edit(status));
        }
    }

    /// Deletes a status: gone from the timeline, `delete` on the streams.
    pub fn delete(&self, id: u64) {
        self.app.lock().timeline.retain(|s| s.id != id);
        let _ = self.app.events.send(Wire::Delete(id));
    }

    /// Sends an `update` whose data is not JSON to every open stream.
    pub fn send_malformed(&self) {
        let _ = self.app.events.send(Wire::Malformed);
    }

    /// Each stream opened from now on is closed by the server after `n`
    /// events (`None`: never).
    pub fn drop_streams_after(&self, n: Option<u64>) {
        self.app.lock().drop_after = n;
    }

    /// The next `n` streams opened send their greeting, then nothing.
    pub fn stall_next_streams(&self, n: u64) {
        self.app.lock().stall_next = n;
    }

    /// The REST timeline serves only the newest `n` statuses from now on:
    /// older ones are lost upstream.
    pub fn keep_newest(&self, n: Option<usize>) {
        self.app.lock().keep_newest = n;
    }

    pub fn stats(&self) -> MastodonReplayStats {
        self.app.lock().stats.clone()
    }

    /// Every status published and not deleted, oldest first.
    pub fn statuses(&self) -> Vec<Arc<ReplayStatus>> {
        self.app.lock().timeline.clone()
    }

    /// Stops serving: the listener and every connection close at once.
    pub fn down(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(Duration::from_secs(2));
        }
    }

    /// Serves again on the same port.
    pub fn up(&mut self) -> io::Result<()> {
        if self.runtime.is_none() {
            let (runtime, _) = serve(&self.app, self.addr)?;
            self.runtime = Some(runtime);
        }
        Ok(())
    }

    /// Goes down and comes back on the same port.
    pub fn restart(&mut self) -> io::Result<()> {
        self.down();
        self.up()
    }
}

impl Drop for MastodonReplay {
    fn drop(&mut self) {
        self.down();
    }
}

impl App {
    fn lock(&self) -> MutexGuard<'_, ReplayState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl ReplayState {
    fn random(&mut self) -> u64 {
        self.seed = self.seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.seed;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[(self.random() % from.len() as u64) as usize]
    }

    /// A new status, added to the timeline.
    fn generate(&mut self) -> ReplayStatus {
        let id = self.next_id;
        self.next_id += 1 + self.random() % 1000;
        let created = Timestamp::from_millis(FIRST_MS + self.published as i64 * 1000);
        self.published += 1;
        let acct = self.pick(&ACCOUNTS);
        let username = acct.split('@').next().unwrap_or(acct);
        let host = acct.split_once('@').map_or("replay.example", |(_, h)| h);
        let words: Vec<&str> = (0..6).map(|_| self.pick(&WORDS)).collect();
        let tag = self.pick(&TAGS);
        let json = json!({
            "id": id.to_string(),
            "created_at": created.to_rfc3339(),
            "in_reply_to_id": null,
            "in_reply_to_account_id": null,
            "sensitive": false,
            "spoiler_text": "",
            "visibility": "public",
            "language": "en",
            "uri": format!("https://{host}/users/{username}/statuses/{id}"),
            "url": format!("https://{host}/@{username}/{id}"),
            "content": format!("<p>{} <a href=\"https://replay.example/tags/{tag}\" class=\"mention hashtag\">#<span>{tag}</span></a></p>", words.join(" ")),
            "reblog": null,
            "account": {
                "id": (self.random() % 100_000).to_string(),
                "username": username,
                "acct": acct,
                "display_name": username,
                "url": format!("https://{host}/@{username}"),
            },
            "media_attachments": [],
            "mentions": [],
            "tags": [{"name": tag, "url": format!("https://replay.example/tags/{tag}")}],
            "emojis": [],
            "card": null,
            "poll": null
        });
        let status = ReplayStatus {
            id,
            local: !acct.contains('@'),
            tags: vec![tag.to_owned()],
            json: json.to_string(),
        };
        self.timeline.push(Arc::new(status.clone()));
        status
    }

    /// A page of the REST timeline, newest first, as Mastodon pages it:
    /// `min_id` gives the statuses just after it, otherwise the newest
    /// ones (after `since_id`, before `max_id`).
    fn page(&self, filter: &Filter, q: &HashMap<String, String>) -> Vec<Arc<ReplayStatus>> {
        let num = |k: &str| q.get(k).and_then(|v| v.parse::<u64>().ok());
        let limit = num("limit").unwrap_or(20).clamp(1, 40) as usize;
        let (min_id, since_id, max_id) = (num("min_id"), num("since_id"), num("max_id"));
        let kept_from = self.keep_newest.map_or(0, |n| self.timeline.len().saturating_sub(n));
        let candidates: Vec<&Arc<ReplayStatus>> = self.timeline[kept_from..]
            .iter()
            .filter(|s| filter.wants(s))
            .filter(|s| max_id.is_none_or(|m| s.id < m))
            .filter(|s| since_id.is_none_or(|m| s.id > m))
            .filter(|s| min_id.is_none_or(|m| s.id > m))
            .collect();
        let chosen: Vec<&Arc<ReplayStatus>> = if min_id.is_some() {
            candidates.into_iter().take(limit).collect()
        } else {
            let skip = candidates.len().saturating_sub(limit);
            candidates.into_iter().skip(skip).collect()
        };
        chosen.into_iter().rev().cloned().collect()
    }
}

/// Binds `addr` (retrying briefly: the previous run's socket may still be
/// closing) and serves the app on a fresh runtime.
fn serve(app: &Arc<App>, addr: SocketAddr) -> io::Result<(Runtime, SocketAddr)> {
    let listener = bind(addr)?;
    let local = listener.local_addr()?;
    listener.set_nonblocking(true)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("mastodon-replay")
        .enable_all()
        .build()?;
    let listener = {
        let _guard = runtime.enter();
        tokio::net::TcpListener::from_std(listener)?
    };
    let router = Router::new()
        .route("/api/v1/streaming/public", get(stream_public))
        .route("/api/v1/streaming/public/local", get(stream_public_local))
        .route("/api/v1/streaming/hashtag", get(stream_hashtag))
        .route("/api/v1/streaming/hashtag/local", get(stream_hashtag_local))
        .route("/api/v1/timelines/public", get(timeline_public))
        .route("/api/v1/timelines/tag/{tag}", get(timeline_tag))
        .with_state(app.clone());
    runtime.spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Ok((runtime, local))
}

pub(crate) fn bind(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let mut tries = 0;
    loop {
        match std::net::TcpListener::bind(addr) {
            Err(e) if e.kind() == io::ErrorKind::AddrInUse && tries < 40 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(50));
            }
            other => return other,
        }
    }
}

type Params = Query<HashMap<String, String>>;

async fn stream_public(State(app): State<Arc<App>>) -> Response {
    open_stream(
        app,
        Filter {
            local: false,
            tag: None,
        },
    )
}

async fn stream_public_local(State(app): State<Arc<App>>) -> Response {
    open_stream(app, Filter { local: true, tag: None })
}

async fn stream_hashtag(State(app): State<Arc<App>>, Query(q): Params) -> Response {
    match q.get("tag") {
        Some(tag) => open_stream(
            app,
            Filter {
                local: false,
                tag: Some(tag.clone()),
            },
        ),
        None => (StatusCode::BAD_REQUEST, "missing tag").into_response(),
    }
}

async fn stream_hashtag_local(State(app): State<Arc<App>>, Query(q): Params) -> Response {
    match q.get("tag") {
        Some(tag) => open_stream(
            app,
            Filter {
                local: true,
                tag: Some(tag.clone()),
            },
        ),
        None => (StatusCode::BAD_REQUEST, "missing tag").into_response(),
    }
}

async fn timeline_public(State(app): State<Arc<App>>, Query(q): Params) -> Response {
    let local = q.get("local").is_some_and(|v| v == "true" || v == "1");
    timeline(&app, &Filter { local, tag: None }, &q)
}

async fn timeline_tag(State(app): State<Arc<App>>, Path(tag): Path<String>, Query(q): Params) -> Response {
    let local = q.get("local").is_some_and(|v| v == "true" || v == "1");
    timeline(&app, &Filter { local, tag: Some(tag) }, &q)
}

fn timeline(app: &App, filter: &Filter, q: &HashMap<String, String>) -> Response {
    let page = {
        let mut state = app.lock();
        state.stats.timeline_requests += 1;
        state.page(filter, q)
    };
    let mut body = String::from("[");
    for (i, s) in page.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&s.json);
    }
    body.push(']');
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// One open stream's state.
struct Conn {
    app: Arc<App>,
    rx: broadcast::Receiver<Wire>,
    filter: Filter,
    greeted: bool,
    stalled: bool,
    sent: u64,
    drop_after: Option<u64>,
}

impl Conn {
    /// The next chunk of the body; `None` closes the stream.
    async fn next(&mut self) -> Option<String> {
        if !self.greeted {
            self.greeted = true;
            return Some(":)\n\n".into());
        }
        if self.stalled {
            std::future::pending::<()>().await;
        }
        if self.drop_after.is_some_and(|n| self.sent >= n) {
            return None;
        }
        loop {
            // A stream too slow to keep up is closed, as Mastodon does.
            let wire = self.rx.recv().await.ok()?;
            let text = match &wire {
                Wire::Update(s) if self.filter.wants(s) => format!("event: update\ndata: {}\n\n", s.json),
                Wire::Edit(s) if self.filter.wants(s) => format!("event: status.update\ndata: {}\n\n", s.json),
                Wire::Delete(id) => format!("event: delete\ndata: {id}\n\n"),
                Wire::Malformed => "event: update\ndata: {\"id\": \"12\", \"uri\": oops\n\n".to_owned(),
                _ => continue,
            };
            self.sent += 1;
            self.app.lock().stats.events_sent += 1;
            return Some(text);
        }
    }
}

fn open_stream(app: Arc<App>, filter: Filter) -> Response {
    // Subscribe before answering, so that every status published after the
    // client sees the answer is on this stream.
    let rx = app.events.subscribe();
    let (drop_after, stalled) = {
        let mut state = app.lock();
        state.stats.stream_connections += 1;
        let stalled = state.stall_next > 0;
        state.stall_next = state.stall_next.saturating_sub(1);
        (state.drop_after, stalled)
    };
    let conn = Conn {
        app,
        rx,
        filter,
        greeted: false,
        stalled,
        sent: 0,
        drop_after,
    };
    let body = futures_util::stream::unfold(conn, |mut conn| async move {
        let chunk = conn.next().await?;
        Some((Ok::<String, Infallible>(chunk), conn))
    });
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        Body::from_stream(body),
    )
        .into_response()
}
