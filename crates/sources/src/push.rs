//! HTTP push: other programs hand tidewatch records with
//! `POST /api/v1/ingest`, one JSON record a line (NDJSON) in any format the
//! pipeline reads.
//!
//! The format is the `?format=` query parameter, or detected from the
//! body's first bytes, as `--format auto` does for files. Every line is
//! decoded once here, with a fresh decoder of that format, so that a
//! malformed line is refused in the answer with its line number
//! (`{"line": 3, "reason": "..."}`) and never enters the pipeline; the
//! good lines go on, in order, as [`Received`] records. An RSS or Atom
//! body is one record (a whole feed document). CSV is refused: its lines
//! mean nothing without the header of a file.
//!
//! **When a request is acknowledged.** Every accepted line gets a cursor,
//! a sequence number that grows along the source (and across restarts:
//! numbering resumes after the checkpointed cursor). When a commit watch
//! is given ([`start`]'s `committed`), the server answers `202 Accepted`
//! only once the store has committed a checkpoint at or past the
//! request's last cursor: an acknowledged record is durable. Without one
//! it answers once the records are in the pipeline's channel, and
//! durability begins at the next commit. A request whose records are not
//! committed within `ack_timeout`, or that arrives while the source is
//! stopping, is answered `503`: the client sends it again, and the
//! store's de-duplication by post id makes the repeat harmless.
//!
//! Requests of one source are enqueued one at a time, so cursors reach
//! the pipeline in increasing order (a checkpoint at cursor `C` then
//! really covers every record up to `C`).

use crate::{Received, SourceHealth, SourceMessage};
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use crossbeam_channel::{SendTimeoutError, Sender};
use serde::Serialize;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tidewatch_ingest::format::{detect, DecodeOutput, Format, Framing};
use tokio::sync::watch;

/// The path records are posted to.
pub const INGEST_PATH: &str = "/api/v1/ingest";

/// How a push source listens.
#[derive(Clone, Debug)]
pub struct PushConfig {
    /// The source's name: the key of its checkpoint and health.
    pub name: String,
    pub listen: SocketAddr,
    /// The format when a request names none; `None` detects it per body.
    pub format: Option<Format>,
    /// Larger request bodies are refused with `413`.
    pub max_body_bytes: usize,
    /// How long a request waits for the commit of its records.
    pub ack_timeout: Duration,
    /// Malformed lines listed in an answer (all are counted).
    pub max_reported_errors: usize,
}

impl PushConfig {
    pub fn new(name: impl Into<String>, listen: SocketAddr) -> Self {
        PushConfig {
            name: name.into(),
            listen,
            format: None,
            max_body_bytes: 16 << 20,
            ack_timeout: Duration::from_secs(30),
            max_reported_errors: 100,
        }
    }
}

/// The newest cursor of this source that the store has committed.
pub type CommittedCursor = Arc<dyn Fn() -> Option<u64> + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("push source {name:?}: cannot listen on {addr}: {source}")]
    Listen {
        name: String,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("push source: could not start its runtime or thread: {0}")]
    Spawn(#[from] std::io::Error),
}

/// A running push server; stopping it (or dropping it) closes the
/// listener and joins its thread.
pub struct PushHandle {
    stop: watch::Sender<bool>,
    stopping: Arc<AtomicBool>,
    addr: SocketAddr,
    thread: Option<JoinHandle<()>>,
    endpoint: PushEndpoint,
}

/// The ingest endpoint of a running push source, for another HTTP server
/// of the same process to answer with: `POST /api/v1/ingest` of the API
/// under `tidewatch run --serve` behaves exactly as the source's own port.
#[derive(Clone)]
pub struct PushEndpoint(Arc<App>);

impl PushEndpoint {
    /// The source's name.
    pub fn name(&self) -> &str {
        &self.0.config.name
    }

    /// Answers one ingest request (`params` is its query string).
    pub async fn ingest(&self, params: HashMap<String, String>, body: Bytes) -> Response {
        ingest(State(self.0.clone()), Query(params), body).await
    }
}

impl PushHandle {
    /// The endpoint, to be answered by another server too.
    pub fn endpoint(&self) -> PushEndpoint {
        self.endpoint.clone()
    }

    /// The address it listens on (the port is the system's choice when
    /// the config asked for port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn stop(mut self) {
        self.shutdown();
    }

    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(|t| t.is_finished())
    }

    fn shutdown(&mut self) {
        // Requests waiting for a commit answer 503 at once: the commit
        // they wait for may only come after this source has stopped.
        self.stopping.store(true, Ordering::Relaxed);
        self.stop.send_replace(true);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for PushHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Starts the push server on its own thread. `resume_cursor` is the last
/// committed cursor (numbering goes on after it); `committed` tells the
/// newest committed cursor, to acknowledge only durable records.
pub fn start(
    config: PushConfig,
    resume_cursor: Option<u64>,
    tx: Sender<SourceMessage>,
    health: Arc<SourceHealth>,
    committed: Option<CommittedCursor>,
) -> Result<PushHandle, PushError> {
    let listener = std::net::TcpListener::bind(config.listen).map_err(|source| PushError::Listen {
        name: config.name.clone(),
        addr: config.listen,
        source,
    })?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let listener = {
        let _guard = runtime.enter();
        tokio::net::TcpListener::from_std(listener)?
    };
    let stopping = Arc::new(AtomicBool::new(false));
    let (stop_tx, mut stop_rx) = watch::channel(false);
    health.set_connected(true);
    let app = Arc::new(App {
        config,
        tx,
        health: health.clone(),
        committed,
        stopping: stopping.clone(),
        next_cursor: tokio::sync::Mutex::new(resume_cursor.map_or(1, |c| c.saturating_add(1))),
    });
    let router = Router::new().route(INGEST_PATH, post(ingest)).with_state(app.clone());
    let thread = std::thread::Builder::new()
        .name(format!("push-{}", app.config.name))
        .spawn(move || {
            runtime.block_on(async move {
                let shutdown = async move {
                    let _ = stop_rx.wait_for(|stop| *stop).await;
                };
                let _ = axum::serve(listener, router).with_graceful_shutdown(shutdown).await;
            });
            health.set_connected(false);
        })?;
    Ok(PushHandle {
        stop: stop_tx,
        stopping,
        addr,
        thread: Some(thread),
        endpoint: PushEndpoint(app),
    })
}

struct App {
    config: PushConfig,
    tx: Sender<SourceMessage>,
    health: Arc<SourceHealth>,
    committed: Option<CommittedCursor>,
    stopping: Arc<AtomicBool>,
    /// The next record's cursor; held while a request is enqueued.
    next_cursor: tokio::sync::Mutex<u64>,
}

/// One refused line of a request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LineError {
    pub line: u64,
    pub reason: String,
}

/// The answer's body.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PushAnswer {
    /// Records handed to the pipeline.
    pub accepted: u64,
    /// Lines refused (all counted, the first ones listed in `errors`).
    pub malformed: u64,
    pub errors: Vec<LineError>,
    /// The format the body was read as.
    pub format: Option<String>,
    /// True when the accepted records are committed to the store.
    pub committed: bool,
    /// Why the request failed, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

fn answer(status: StatusCode, body: &PushAnswer) -> Response {
    let json = serde_json::to_string(body).unwrap_or_else(|_| "{}".into());
    (status, [("content-type", "application/json")], json).into_response()
}

fn refuse(status: StatusCode, why: impl Into<String>) -> Response {
    answer(
        status,
        &PushAnswer {
            error: Some(why.into()),
            ..PushAnswer::default()
        },
    )
}

/// The records of a body, checked: the good ones, the bad lines.
pub fn split_body(body: &[u8], format: Format, max_reported: usize) -> (Vec<Vec<u8>>, PushAnswer) {
    let mut report = PushAnswer {
        format: Some(format.name().to_string()),
        ..PushAnswer::default()
    };
    let mut good = Vec::new();
    let mut decoder = format.decoder(None);
    let mut out = DecodeOutput::default();
    let mut check = |line: u64, record: &[u8], report: &mut PushAnswer, good: &mut Vec<Vec<u8>>| {
        out.events.clear();
        // A decoder bug must cost one line, not the server.
        let result = catch_unwind(AssertUnwindSafe(|| decoder.decode(record, &mut out)))
            .unwrap_or_else(|_| Err(tidewatch_ingest::DecodeError::Other("internal decoder error".into())));
        match result {
            Ok(()) => good.push(record.to_vec()),
            Err(e) => {
                report.malformed += 1;
                if report.errors.len() < max_reported {
                    report.errors.push(LineError {
                        line,
                        reason: e.to_string(),
                    });
                }
            }
        }
    };
    if format.framing() == Framing::Document {
        check(1, body, &mut report, &mut good);
    } else {
        for (i, line) in body.split(|b| *b == b'\n').enumerate() {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            check(i as u64 + 1, line, &mut report, &mut good);
        }
    }
    (good, report)
}

async fn ingest(State(app): State<Arc<App>>, Query(params): Query<HashMap<String, String>>, body: Bytes) -> Response {
    if body.len() > app.config.max_body_bytes {
        return refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body is larger than {} bytes", app.config.max_body_bytes),
        );
    }
    let format = match params.get("format").map(String::as_str) {
        Some("auto") | None => match app.config.format {
            Some(f) => f,
            None => match detect::detect(&body[..body.len().min(detect::HEAD_LEN)]) {
                Ok(d) => d.format,
                Err(e) => return refuse(StatusCode::BAD_REQUEST, format!("format not recognised: {e}")),
            },
        },
        Some(name) => match Format::from_name(name) {
            Some(f) => f,
            None => return refuse(StatusCode::BAD_REQUEST, format!("unknown format {name:?}")),
        },
    };
    if format == Format::Csv {
        return refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "CSV cannot be pushed line by line (its lines need the file's header); send NDJSON",
        );
    }
    let max_reported = app.config.max_reported_errors;
    let (records, mut report) = split_body(&body, format, max_reported);
    for _ in 0..report.malformed {
        app.health.malformed();
    }
    if report.malformed > 0 {
        eprintln!(
            "push source {}: refused {} malformed line(s) of a request",
            app.config.name, report.malformed
        );
    }
    if records.is_empty() {
        let status = if report.malformed > 0 {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::ACCEPTED
        };
        report.committed = report.malformed == 0;
        return answer(status, &report);
    }
    let last = {
        let mut next = app.next_cursor.lock().await;
        let mut last = *next;
        for bytes in records {
            let cursor = *next;
            let record = Received {
                source: app.config.name.clone(),
                format,
                bytes,
                cursor: Some(cursor),
            };
            if !send(&app, SourceMessage::Record(record)).await {
                // Records already sent are in the pipeline; the client
                // sends the whole request again.
                report.error = Some("the source is stopping; send the request again".into());
                return answer(StatusCode::SERVICE_UNAVAILABLE, &report);
            }
            app.health.event(None);
            report.accepted += 1;
            last = cursor;
            *next = cursor.saturating_add(1);
        }
        last
    };
    let Some(committed) = app.committed.clone() else {
        return answer(StatusCode::ACCEPTED, &report);
    };
    let deadline = Instant::now() + app.config.ack_timeout;
    loop {
        if committed().is_some_and(|c| c >= last) {
            report.committed = true;
            return answer(StatusCode::ACCEPTED, &report);
        }
        if app.stopping.load(Ordering::Relaxed) || Instant::now() >= deadline {
            report.error = Some("the records are in the pipeline but not yet committed; send the request again".into());
            return answer(StatusCode::SERVICE_UNAVAILABLE, &report);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Sends into the pipeline; waits (without blocking the runtime) while the
/// channel is full. False when the source stops or nobody listens.
async fn send(app: &App, message: SourceMessage) -> bool {
    let mut message = message;
    loop {
        match app.tx.send_timeout(message, Duration::ZERO) {
            Ok(()) => return true,
            Err(SendTimeoutError::Timeout(m)) => {
                if app.stopping.load(Ordering::Relaxed) {
                    return false;
                }
                message = m;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Err(SendTimeoutError::Disconnected(_)) => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"id":"1","platform":"x","text":"harbour lantern","source":"s"}"#;

    #[test]
    fn bad_lines_are_reported_by_number_and_blank_lines_skipped() {
        let body = format!("{GOOD}\n\n{{broken\r\n{GOOD}\n[1]\n");
        let (good, report) = split_body(body.as_bytes(), Format::Canonical, 1);
        assert_eq!(good.len(), 2);
        assert_eq!(good[0], GOOD.as_bytes());
        assert_eq!(report.malformed, 2);
        assert_eq!(report.errors.len(), 1, "only the first is listed");
        assert_eq!(report.errors[0].line, 3);
        assert!(report.errors[0].reason.starts_with("invalid JSON"), "{report:?}");
    }

    fn post(addr: SocketAddr, query: &str, body: &str) -> (u16, String) {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        write!(
            s,
            "POST {INGEST_PATH}{query} HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).unwrap();
        let status = answer[9..12].parse().unwrap();
        let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default().to_string();
        (status, body)
    }

    #[test]
    fn records_are_enqueued_with_growing_cursors_and_acknowledged_after_commit() {
        let (tx, rx) = crossbeam_channel::bounded(16);
        let committed = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let seen = committed.clone();
        let watch: CommittedCursor = Arc::new(move || Some(seen.load(Ordering::Relaxed)));
        let config = PushConfig::new("push", SocketAddr::from(([127, 0, 0, 1], 0)));
        let handle = start(config, Some(41), tx, Arc::default(), Some(watch)).unwrap();
        let addr = handle.addr();
        // The "store" commits whatever reached the channel.
        let committer = std::thread::spawn(move || {
            let mut got = Vec::new();
            while let Ok(SourceMessage::Record(r)) = rx.recv_timeout(Duration::from_secs(5)) {
                committed.store(r.cursor.unwrap(), Ordering::Relaxed);
                got.push((r.cursor.unwrap(), r.format));
                if got.len() == 3 {
                    break;
                }
            }
            got
        });
        let (status, body) = post(addr, "", &format!("{GOOD}\nnot json\n{GOOD}\n"));
        assert_eq!(status, 202, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["accepted"], 2);
        assert_eq!(v["malformed"], 1);
        assert_eq!(v["errors"][0]["line"], 2);
        assert_eq!(v["committed"], true);
        assert_eq!(v["format"], "canonical");
        let (status, _) = post(addr, "?format=canonical", GOOD);
        assert_eq!(status, 202);
        let (status, body) = post(addr, "?format=csv", "id,text\n1,a\n");
        assert_eq!(status, 415, "{body}");
        let (status, _) = post(addr, "", "{broken");
        assert_eq!(status, 400);
        assert_eq!(
            committer.join().unwrap(),
            vec![
                (42, Format::Canonical),
                (43, Format::Canonical),
                (44, Format::Canonical)
            ]
        );
        handle.stop();
    }
}
