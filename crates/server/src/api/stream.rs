//! `GET /api/v1/stream`: Server-Sent Events of new alerts (`alert`),
//! per-feed counts of the minutes that changed (`counts`) and pipeline
//! health (`health`), each with an id.
//!
//! A client that reconnects sends the last id it saw (`Last-Event-ID`,
//! which browsers' `EventSource` does by itself, or `?last_event_id=`)
//! and first gets every retained event after it, then live ones. If some
//! events after it were already dropped from the ring buffer (or come
//! from an earlier server), it gets a `reset` event first, so it knows to
//! reload the lists rather than trust the stream to be complete. A new
//! client without an id starts with the latest `health` event, then live
//! ones.

use crate::hub::{EventHub, StreamEvent};
use crate::state::AppState;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::IntoResponse;
use futures_util::Stream;
use serde::Deserialize;
use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use tokio::sync::watch;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new().routes(routes!(stream))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StreamParams {
    /// The id of the last event seen, for clients that cannot send the
    /// `Last-Event-ID` header (the header wins when both are given).
    pub last_event_id: Option<u64>,
}

/// Where one client is in the hub's sequence.
struct Cursor {
    hub: Arc<EventHub>,
    rx: watch::Receiver<u64>,
    last: u64,
    pending: VecDeque<StreamEvent>,
}

fn sse(e: StreamEvent) -> Event {
    Event::default().id(e.id.to_string()).event(e.kind).data(e.data)
}

/// The events after `last`, then live ones, for as long as the client stays.
pub fn events_after(hub: Arc<EventHub>, last: Option<u64>) -> impl Stream<Item = Result<Event, Infallible>> {
    // Subscribe before reading the buffer: an event published in between
    // is then both in the buffer and signalled, never lost.
    let rx = hub.subscribe();
    let mut pending = VecDeque::new();
    let last = match last {
        Some(id) => id,
        None => {
            // A new client starts from now, with the pipeline's current health.
            pending.extend(hub.latest("health"));
            hub.newest_id()
        }
    };
    let cursor = Cursor { hub, rx, last, pending };
    futures_util::stream::unfold(cursor, |mut c| async move {
        loop {
            if c.hub.is_closed() {
                return None;
            }
            if let Some(e) = c.pending.pop_front() {
                c.last = c.last.max(e.id);
                return Some((Ok(sse(e)), c));
            }
            let catchup = c.hub.since(c.last);
            if catchup.missed {
                let oldest = catchup.events.first().map_or(c.hub.newest_id(), |e| e.id);
                c.last = oldest.saturating_sub(1);
                c.pending.extend(catchup.events);
                let data = format!("{{\"missed_after\":{},\"resumes_at\":{oldest}}}", c.last);
                // No id: the client's Last-Event-ID stays that of a real event.
                return Some((Ok(Event::default().event("reset").data(data)), c));
            }
            if !catchup.events.is_empty() {
                c.pending.extend(catchup.events);
                continue;
            }
            if c.rx.changed().await.is_err() {
                return None;
            }
        }
    })
}

/// Live events: `alert` (an alert record, as in /alerts), `counts` (per
/// feed, the minutes whose counts changed), `health` (as /metrics), and
/// `reset` when events after `Last-Event-ID` are no longer retained.
#[utoipa::path(get, path = "/api/v1/stream", tag = "stream",
    params(
        ("Last-Event-ID" = Option<String>, Header, description = "The id of the last event seen"),
        StreamParams),
    responses((status = 200, description = "An event stream", content_type = "text/event-stream", body = String)))]
async fn stream(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(p): Query<StreamParams>,
) -> impl IntoResponse {
    let header = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.trim().parse::<u64>().ok());
    Sse::new(events_after(state.hub.clone(), header.or(p.last_event_id))).keep_alive(KeepAlive::default())
}
