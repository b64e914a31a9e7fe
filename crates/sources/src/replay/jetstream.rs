//! A local Jetstream: a websocket server on loopback that replays a fixed
//! list of events with Jetstream's query semantics, and misbehaves on cue.
//!
//! What it honours, as a real Jetstream server does:
//!
//! - `GET /subscribe` upgraded to a websocket; other paths get a 404.
//! - `cursor=<time_us>`: replay starts at the first event at or after it.
//!   A real server treats an absent cursor as "live tail"; this one has no
//!   live part, so it then serves its whole (retained) list, as if every
//!   event happened after the connection.
//! - `wantedCollections=<nsid>` (repeatable, `prefix.*` allowed): commit
//!   events of other collections are not sent; identity and account
//!   events always are.
//! - A retention horizon: events older than it are gone, and a replay
//!   asked from before it starts at the oldest event kept — exactly how
//!   events are truly lost upstream.
//!
//! Faults ([`Faults`]) are tied to event positions in the list and fire
//! once each, so a test is deterministic however often the client
//! reconnects and re-reads: drop the connection without a close frame
//! after an event, stall after an event, send a malformed frame before an
//! event, move the retention horizon after an event. [`JetstreamReplay::restart`]
//! stops listening, closes every connection and listens again on the same
//! port.
//!
//! [`generate`] writes valid Jetstream events (posts, reposts, likes,
//! deletions, identity events) by invented accounts with invented texts.

use futures_util::{SinkExt, StreamExt};
use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tidewatch_core::Timestamp;
use tokio::net::{TcpSocket, TcpStream};
use tokio::runtime::Runtime;
use tokio::task::{AbortHandle, JoinHandle};
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::{Bytes, Message, Utf8Bytes};

/// One event the server can send.
#[derive(Clone, Debug)]
pub struct ReplayEvent {
    /// The event's `time_us` (its cursor); increasing along the list.
    pub time_us: u64,
    /// The commit's collection; `None` for identity and account events,
    /// which every subscriber receives.
    pub collection: Option<String>,
    /// The event as sent, one JSON object.
    pub json: String,
}

impl ReplayEvent {
    /// Whether a subscriber asking for `wanted` collections receives this
    /// event (empty `wanted` means everything).
    pub fn wanted_by<S: AsRef<str>>(&self, wanted: &[S]) -> bool {
        let Some(collection) = &self.collection else {
            return true;
        };
        wanted.is_empty() || wanted.iter().any(|w| collection_matches(w.as_ref(), collection))
    }
}

/// `app.bsky.feed.post` matches itself; `app.bsky.*` matches every NSID
/// under `app.bsky.`.
fn collection_matches(wanted: &str, collection: &str) -> bool {
    match wanted.strip_suffix('*') {
        Some(prefix) => prefix.ends_with('.') && collection.starts_with(prefix),
        None => wanted == collection,
    }
}

/// Misbehaviour on cue. Positions are indexes in the server's event list;
/// each fault fires once, the first time the server passes its position.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// Drop the connection (TCP close, no websocket close frame) right
    /// after sending the event at each of these positions.
    pub drop_after: Vec<usize>,
    /// Stop sending for a while after the event at a position.
    pub stall_after: Vec<(usize, Duration)>,
    /// Send a malformed frame just before the event at each position; the
    /// kinds rotate: text that is not JSON, binary garbage, an object
    /// without `time_us`, a `time_us` that is not a number.
    pub malformed_before: Vec<usize>,
    /// After sending the event at a position, forget every event older
    /// than the given `time_us` (the retention horizon moves on).
    pub expire_after: Vec<(usize, u64)>,
}

#[derive(Clone, Debug)]
enum Fault {
    Malformed(usize),
    Drop,
    Stall(Duration),
    Expire(u64),
}

/// Faults not yet fired, by position; `pending` lets the hot path skip
/// the lock once all have fired.
#[derive(Default)]
struct FaultBook {
    pending: AtomicUsize,
    before: Mutex<BTreeMap<usize, Vec<Fault>>>,
    after: Mutex<BTreeMap<usize, Vec<Fault>>>,
}

impl FaultBook {
    fn new(faults: Faults) -> Self {
        let mut before: BTreeMap<usize, Vec<Fault>> = BTreeMap::new();
        let mut after: BTreeMap<usize, Vec<Fault>> = BTreeMap::new();
        for (kind, at) in faults.malformed_before.into_iter().enumerate() {
            before.entry(at).or_default().push(Fault::Malformed(kind));
        }
        // At one position: forget, then stall, then drop (a drop ends the
        // connection, so it comes last).
        for (at, horizon) in faults.expire_after {
            after.entry(at).or_default().push(Fault::Expire(horizon));
        }
        for (at, pause) in faults.stall_after {
            after.entry(at).or_default().push(Fault::Stall(pause));
        }
        for at in faults.drop_after {
            after.entry(at).or_default().push(Fault::Drop);
        }
        let count = before.values().chain(after.values()).map(Vec::len).sum();
        FaultBook {
            pending: AtomicUsize::new(count),
            before: Mutex::new(before),
            after: Mutex::new(after),
        }
    }

    /// Takes the faults due at `position` (empty once fired).
    fn take(&self, book: &Mutex<BTreeMap<usize, Vec<Fault>>>, position: usize) -> Vec<Fault> {
        if self.pending.load(Ordering::Relaxed) == 0 {
            return Vec::new();
        }
        let taken = book
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&position)
            .unwrap_or_default();
        self.pending.fetch_sub(taken.len(), Ordering::Relaxed);
        taken
    }
}

/// What the server and its connections share.
struct Shared {
    times: Vec<u64>,
    events: Vec<ReplayEvent>,
    /// The events as websocket payloads, shared without copying.
    payloads: Vec<Utf8Bytes>,
    faults: FaultBook,
    /// Events with `time_us` below this are gone.
    oldest_us: AtomicU64,
    connections: AtomicU64,
    sent: AtomicU64,
    cursors: Mutex<Vec<Option<u64>>>,
    live: Mutex<Vec<AbortHandle>>,
}

/// A running replay server, with its own runtime. Dropping it stops it.
/// Use it from ordinary (not async) code: [`JetstreamReplay::start`],
/// [`JetstreamReplay::restart`] and dropping it block on that runtime.
pub struct JetstreamReplay {
    runtime: Runtime,
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl JetstreamReplay {
    /// Starts serving `events` (sorted by `time_us`) on `127.0.0.1`, on a
    /// port of the system's choosing.
    pub fn start(events: Vec<ReplayEvent>, faults: Faults) -> io::Result<Self> {
        let mut events = events;
        events.sort_by_key(|e| e.time_us);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("jetstream-replay")
            .enable_all()
            .build()?;
        let shared = Arc::new(Shared {
            times: events.iter().map(|e| e.time_us).collect(),
            payloads: events.iter().map(|e| Utf8Bytes::from(e.json.clone())).collect(),
            events,
            faults: FaultBook::new(faults),
            oldest_us: AtomicU64::new(0),
            connections: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            cursors: Mutex::new(Vec::new()),
            live: Mutex::new(Vec::new()),
        });
        let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
        let (addr, accept) = runtime.block_on(async {
            let listener = listen(loopback)?;
            let addr = listener.local_addr()?;
            io::Result::Ok((addr, tokio::spawn(accept_loop(listener, Arc::clone(&shared)))))
        })?;
        Ok(JetstreamReplay {
            runtime,
            addr,
            shared,
            accept: Some(accept),
        })
    }

    /// The websocket URL of the server's `/subscribe` endpoint.
    pub fn url(&self) -> String {
        format!("ws://{}/subscribe", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The events the server holds, in order.
    pub fn events(&self) -> &[ReplayEvent] {
        &self.shared.events
    }

    /// Forgets every event older than `oldest_us` (for connections opened
    /// from now on).
    pub fn set_retention(&self, oldest_us: u64) {
        self.shared.oldest_us.fetch_max(oldest_us, Ordering::Relaxed);
    }

    /// Websocket connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.shared.connections.load(Ordering::Relaxed)
    }

    /// Event frames sent so far, over all connections (re-sent ones too).
    pub fn sent(&self) -> u64 {
        self.shared.sent.load(Ordering::Relaxed)
    }

    /// The `cursor` each connection asked for, in connection order.
    pub fn cursors(&self) -> Vec<Option<u64>> {
        self.shared.cursors.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Stops listening and closes every connection, stays down for
    /// `down_for` (connections are refused meanwhile), then listens again
    /// on the same port.
    pub fn restart(&mut self, down_for: Duration) -> io::Result<()> {
        let accept = self.accept.take();
        let shared = Arc::clone(&self.shared);
        let addr = self.addr;
        let accept = self.runtime.block_on(async move {
            if let Some(accept) = accept {
                accept.abort();
                // The listener is dropped, and the port freed, once the
                // aborted task has finished.
                let _ = accept.await;
            }
            for connection in shared.live.lock().unwrap_or_else(|e| e.into_inner()).drain(..) {
                connection.abort();
            }
            tokio::time::sleep(down_for).await;
            let listener = listen(addr)?;
            io::Result::Ok(tokio::spawn(accept_loop(listener, shared)))
        })?;
        self.accept = Some(accept);
        Ok(())
    }
}

impl Drop for JetstreamReplay {
    fn drop(&mut self) {
        if let Some(accept) = self.accept.take() {
            accept.abort();
        }
        for connection in self.shared.live.lock().unwrap_or_else(|e| e.into_inner()).drain(..) {
            connection.abort();
        }
    }
}

/// A listener that may take over a port its previous incarnation just
/// released.
fn listen(addr: SocketAddr) -> io::Result<tokio::net::TcpListener> {
    if !addr.ip().is_loopback() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "replay servers listen on loopback only",
        ));
    }
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(128)
}

async fn accept_loop(listener: tokio::net::TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((stream, _peer)) = listener.accept().await else {
            // Out of file descriptors or similar: pause instead of spinning.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let task = tokio::spawn(serve(stream, Arc::clone(&shared)));
        let mut live = shared.live.lock().unwrap_or_else(|e| e.into_inner());
        live.retain(|t| !t.is_finished());
        live.push(task.abort_handle());
    }
}

/// The query parameters the server understands.
#[derive(Debug, Default, PartialEq)]
struct Query {
    cursor: Option<u64>,
    wanted: Vec<String>,
}

fn parse_query(query: &str) -> Query {
    let mut q = Query::default();
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = percent_decode(value);
        match key {
            "cursor" => q.cursor = value.parse().ok(),
            "wantedCollections" if !value.is_empty() => q.wanted.push(value),
            _ => {}
        }
    }
    q
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The malformed frame of a given kind (see [`Faults::malformed_before`]).
fn malformed_frame(kind: usize) -> Message {
    match kind % 4 {
        0 => Message::text("{\"did\": \"did:plc:"),
        1 => Message::Binary(Bytes::from_static(&[0xff, 0xfe, 0x00, 0x9c, 0x28, 0xb5, 0x2f, 0xfd])),
        2 => Message::text("{\"kind\":\"commit\",\"commit\":{}}"),
        _ => Message::text("{\"time_us\":\"yesterday\",\"kind\":\"commit\"}"),
    }
}

// The handshake callback's error type is tungstenite's HTTP response,
// large by nature.
#[allow(clippy::result_large_err)]
async fn serve(stream: TcpStream, shared: Arc<Shared>) {
    let mut query = Query::default();
    let handshake = tokio_tungstenite::accept_hdr_async(stream, |request: &Request, response: Response| {
        if request.uri().path() != "/subscribe" {
            let mut refusal = ErrorResponse::new(Some("not found".to_string()));
            *refusal.status_mut() = StatusCode::NOT_FOUND;
            return Err(refusal);
        }
        query = parse_query(request.uri().query().unwrap_or(""));
        Ok(response)
    })
    .await;
    let Ok(mut ws) = handshake else {
        return;
    };
    shared.connections.fetch_add(1, Ordering::Relaxed);
    shared
        .cursors
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(query.cursor);

    let from = query.cursor.unwrap_or(0).max(shared.oldest_us.load(Ordering::Relaxed));
    let start = shared.times.partition_point(|t| *t < from);
    for position in start..shared.events.len() {
        if !shared.events[position].wanted_by(&query.wanted) {
            continue;
        }
        for fault in shared.faults.take(&shared.faults.before, position) {
            if let Fault::Malformed(kind) = fault {
                if ws.feed(malformed_frame(kind)).await.is_err() {
                    return;
                }
            }
        }
        // `feed` buffers and writes once the buffer is full: one system
        // call per many events, as a busy server does.
        if ws.feed(Message::Text(shared.payloads[position].clone())).await.is_err() {
            return;
        }
        shared.sent.fetch_add(1, Ordering::Relaxed);
        for fault in shared.faults.take(&shared.faults.after, position) {
            match fault {
                Fault::Drop => {
                    // Everything sent so far arrives, then the TCP
                    // connection ends without a websocket close frame.
                    let _ = ws.flush().await;
                    return;
                }
                Fault::Stall(pause) => {
                    if ws.flush().await.is_err() {
                        return;
                    }
                    tokio::time::sleep(pause).await;
                }
                Fault::Expire(horizon) => {
                    shared.oldest_us.fetch_max(horizon, Ordering::Relaxed);
                }
                Fault::Malformed(_) => {}
            }
        }
    }
    if ws.flush().await.is_err() {
        return;
    }
    // The list is exhausted: stay connected, like a live tail with
    // nothing new, until the client leaves (reading answers its pings).
    while let Some(Ok(_)) = ws.next().await {}
}

/// Invented event content: words for texts, accounts by number.
const WORDS: [&str; 24] = [
    "tide",
    "harbour",
    "lantern",
    "ferry",
    "gull",
    "estuary",
    "drizzle",
    "pier",
    "signal",
    "compass",
    "kelp",
    "lighthouse",
    "marina",
    "current",
    "anchor",
    "breakwater",
    "sandbar",
    "buoy",
    "channel",
    "dune",
    "jetty",
    "mooring",
    "ripple",
    "squall",
];
const LANGS: [&str; 4] = ["en", "en", "fr", "de"];
const ACCOUNTS: u64 = 200;

/// A small deterministic mixer (SplitMix64) for invented identifiers.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

const BASE32_SORTABLE: &[u8; 32] = b"234567abcdefghijklmnopqrstuvwxyz";

/// An invented `did:plc:` identifier for account `n`.
fn did(n: u64) -> String {
    let mut id = String::from("did:plc:");
    let mut bits = mix(n) as u128 | ((mix(n + 1_000_003) as u128) << 64);
    for _ in 0..24 {
        id.push(BASE32_SORTABLE[(bits & 31) as usize] as char);
        bits >>= 5;
    }
    id
}

/// A record key in the AT Protocol's TID shape: 13 base32-sortable
/// characters of (microseconds << 10 | clock id).
fn tid(time_us: u64, clock: u64) -> String {
    let value = ((time_us & ((1 << 53) - 1)) << 10) | (clock & 1023);
    (0..13)
        .rev()
        .map(|i| BASE32_SORTABLE[((value >> (i * 5)) & 31) as usize] as char)
        .collect()
}

fn cid(seed: u64) -> String {
    format!(
        "bafyreig{:016x}{:016x}{:016x}",
        mix(seed),
        mix(seed ^ 0x5555),
        mix(seed ^ 0xaaaa)
    )
}

/// `count` valid Jetstream events, one every `step_us` from
/// `first_time_us`, by invented accounts. Out of every ten: six new
/// posts, two likes, one repost, one deletion of an earlier post; every
/// fiftieth event is an identity event instead.
pub fn generate(count: usize, first_time_us: u64, step_us: u64) -> Vec<ReplayEvent> {
    let mut events = Vec::with_capacity(count);
    for i in 0..count as u64 {
        let time_us = first_time_us + i * step_us;
        let author = mix(i) % ACCOUNTS;
        let who = did(author);
        let created = Timestamp((time_us / 1000) as i64).to_rfc3339();
        let rkey = tid(time_us, i);
        let rev = tid(time_us, i + 1);
        // An earlier post of this list to like, repost or delete: in the
        // previous block of ten, positions 0 to 5 are posts.
        let slot = i % 10;
        let earlier = if i >= 10 { i - slot - 10 + slot % 6 } else { 0 };
        let earlier_uri = format!(
            "at://{}/app.bsky.feed.post/{}",
            did(mix(earlier) % ACCOUNTS),
            tid(first_time_us + earlier * step_us, earlier)
        );
        let (collection, value) = if i % 50 == 49 {
            let identity = serde_json::json!({
                "did": who, "time_us": time_us, "kind": "identity",
                "identity": {"did": who, "handle": format!("sailor-{author}.example.test"), "seq": i, "time": created},
            });
            (None, identity)
        } else {
            let (collection, operation, record) = match slot {
                0..=5 => {
                    let text = format!(
                        "{} {} near the {} #{} (event {i})",
                        WORDS[(mix(i) % 24) as usize],
                        WORDS[(mix(i + 7) % 24) as usize],
                        WORDS[(mix(i + 13) % 24) as usize],
                        WORDS[(i % 24) as usize]
                    );
                    let mut record = serde_json::json!({
                        "$type": "app.bsky.feed.post", "createdAt": created,
                        "langs": [LANGS[(i % 4) as usize]], "text": text,
                    });
                    if i % 7 == 3 {
                        record["reply"] = serde_json::json!({
                            "parent": {"cid": cid(earlier), "uri": earlier_uri},
                            "root": {"cid": cid(earlier), "uri": earlier_uri},
                        });
                    }
                    ("app.bsky.feed.post", "create", Some(record))
                }
                6 | 7 => {
                    let record = serde_json::json!({
                        "$type": "app.bsky.feed.like", "createdAt": created,
                        "subject": {"cid": cid(earlier), "uri": earlier_uri},
                    });
                    ("app.bsky.feed.like", "create", Some(record))
                }
                8 => {
                    let record = serde_json::json!({
                        "$type": "app.bsky.feed.repost", "createdAt": created,
                        "subject": {"cid": cid(earlier), "uri": earlier_uri},
                    });
                    ("app.bsky.feed.repost", "create", Some(record))
                }
                _ => ("app.bsky.feed.post", "delete", None),
            };
            let mut commit = serde_json::json!({
                "rev": rev, "operation": operation, "collection": collection,
            });
            match record {
                Some(record) => {
                    commit["rkey"] = rkey.into();
                    commit["record"] = record;
                    commit["cid"] = cid(i).into();
                }
                None => {
                    // Deletes name an existing post by its own key.
                    commit["rkey"] = tid(first_time_us + earlier * step_us, earlier).into();
                }
            }
            let who = if operation == "delete" {
                did(mix(earlier) % ACCOUNTS)
            } else {
                who
            };
            let event = serde_json::json!({"did": who, "time_us": time_us, "kind": "commit", "commit": commit});
            (Some(collection.to_string()), event)
        };
        events.push(ReplayEvent {
            time_us,
            collection,
            json: value.to_string(),
        });
    }
    events
}

/// `count` Jetstream post events, one every `step_us` from
/// `first_time_us`, by invented accounts, each copying one of `texts`
/// invented messages word for word: what copy-paste campaigns look like
/// on the firehose, for tests of narratives over a live source.
pub fn generate_copies(count: usize, first_time_us: u64, step_us: u64, texts: u64) -> Vec<ReplayEvent> {
    (0..count as u64)
        .map(|i| {
            let time_us = first_time_us + i * step_us;
            let message = mix(i ^ 0x7e47) % texts.max(1);
            // Words of the message's own, so messages are far apart.
            let words: Vec<&str> = (0..7).map(|k| WORDS[(mix(message * 7 + k) % 24) as usize]).collect();
            let text = format!("message {message}: {} at the harbour", words.join(" "));
            let record = serde_json::json!({
                "$type": "app.bsky.feed.post",
                "createdAt": Timestamp((time_us / 1000) as i64).to_rfc3339(),
                "langs": ["en"],
                "text": text,
            });
            let commit = serde_json::json!({
                "rev": tid(time_us, i + 1), "operation": "create", "collection": "app.bsky.feed.post",
                "rkey": tid(time_us, i), "record": record, "cid": cid(i),
            });
            let event = serde_json::json!({
                "did": did(mix(i) % ACCOUNTS), "time_us": time_us, "kind": "commit", "commit": commit,
            });
            ReplayEvent {
                time_us,
                collection: Some("app.bsky.feed.post".to_string()),
                json: event.to_string(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_parsed_like_jetstream_does() {
        assert_eq!(
            parse_query("wantedCollections=app.bsky.feed.post&wantedCollections=app.bsky.graph.%2A&cursor=42&x=1"),
            Query {
                cursor: Some(42),
                wanted: vec!["app.bsky.feed.post".into(), "app.bsky.graph.*".into()],
            }
        );
        assert_eq!(parse_query(""), Query::default());
        assert_eq!(parse_query("cursor=soon&cursor"), Query::default());
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("%zz%41"), "%zzA");
    }

    #[test]
    fn wanted_collections_match_exactly_or_by_prefix() {
        let post = ReplayEvent {
            time_us: 1,
            collection: Some("app.bsky.feed.post".into()),
            json: String::new(),
        };
        let identity = ReplayEvent {
            collection: None,
            ..post.clone()
        };
        assert!(post.wanted_by(&["app.bsky.feed.post"]));
        assert!(post.wanted_by(&["app.bsky.*"]));
        assert!(post.wanted_by::<&str>(&[]));
        assert!(!post.wanted_by(&["app.bsky.feed.repost", "app.bsky.feed.po*"]));
        assert!(identity.wanted_by(&["app.bsky.feed.like"]));
    }

    #[test]
    fn tids_are_13_sortable_characters() {
        let a = tid(1_725_911_162_329_308, 1);
        let b = tid(1_725_911_162_329_309, 0);
        assert_eq!(a.len(), 13);
        assert!(a < b);
        assert!(did(3).starts_with("did:plc:") && did(3).len() == 32);
        assert_ne!(did(3), did(4));
    }

    #[test]
    fn generated_events_decode_as_jetstream() {
        use tidewatch_ingest::format::jetstream::JetstreamDecoder;
        use tidewatch_ingest::{DecodeOutput, Decoder};
        let events = generate(100, 1_725_000_000_000_000, 1000);
        let mut decoder = JetstreamDecoder;
        let mut out = DecodeOutput::default();
        for e in &events {
            decoder
                .decode(e.json.as_bytes(), &mut out)
                .expect("generated events are valid");
        }
        // 100 events: 60 posts and 10 reposts become posts; 20 likes and
        // the 2 identity events (49, 99, in deletion slots) are ignored;
        // the 8 other deletion slots become deletions.
        let posts = out
            .events
            .iter()
            .filter(|e| matches!(e, tidewatch_core::Event::Post(_)))
            .count();
        let deletes = out.events.len() - posts;
        assert_eq!(out.ignored, 22);
        assert_eq!(posts + deletes, 78);
        assert_eq!(deletes, 8);
    }
}
