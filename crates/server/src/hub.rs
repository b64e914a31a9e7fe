//! The live event hub: what `GET /api/v1/stream` sends, kept in a ring
//! buffer so a client that reconnects misses nothing recent.
//!
//! Producers call [`EventHub::publish`]: in `tidewatch serve` the poller
//! (`crate::poll`) does, once a second, from what the store and
//! `status.json` show; a process that runs the pipeline itself can publish
//! directly, the moment an alert is raised. Every event gets the next id.
//! Ids start at the hub's creation time in microseconds, so the ids of a
//! restarted server are larger than those its clients saw before: a
//! client's `Last-Event-ID` from an earlier server is older than the
//! buffer, and it is told so with a `reset` event.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;
use tokio::sync::watch;

/// Events kept for reconnecting clients, by default.
pub const DEFAULT_RETAINED: usize = 4096;

/// One event of the stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamEvent {
    pub id: u64,
    /// The SSE event name: `alert`, `counts`, `health` (or `reset`).
    pub kind: String,
    /// Its JSON.
    pub data: String,
}

/// What a client should get after `last` (the id it last saw).
#[derive(Debug, PartialEq, Eq)]
pub struct Catchup {
    /// Events after `last` that were already dropped from the buffer.
    pub missed: bool,
    pub events: Vec<StreamEvent>,
}

/// The ring buffer and the signal of new events.
pub struct EventHub {
    buffer: Mutex<Ring>,
    newest: watch::Sender<u64>,
    /// Set when the server stops: open streams end, so a graceful
    /// shutdown does not wait for clients that never leave.
    closed: AtomicBool,
}

struct Ring {
    events: VecDeque<StreamEvent>,
    capacity: usize,
    next_id: u64,
}

impl EventHub {
    /// A hub retaining the last `capacity` events (at least one).
    pub fn new(capacity: usize) -> Arc<EventHub> {
        let start = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(1, |d| d.as_micros() as u64);
        EventHub::starting_at(capacity, start)
    }

    /// A hub whose first event has id `first_id` (tests).
    pub fn starting_at(capacity: usize, first_id: u64) -> Arc<EventHub> {
        let (newest, _) = watch::channel(first_id.saturating_sub(1));
        Arc::new(EventHub {
            buffer: Mutex::new(Ring {
                events: VecDeque::with_capacity(capacity.clamp(1, 1 << 16)),
                capacity: capacity.max(1),
                next_id: first_id,
            }),
            newest,
            closed: AtomicBool::new(false),
        })
    }

    /// Ends every open stream (and those opened later).
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        // Wake the streams waiting for an event.
        self.newest.send_modify(|_| {});
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Adds an event; returns its id.
    pub fn publish(&self, kind: &str, data: String) -> u64 {
        let id = {
            let mut ring = self.buffer.lock().unwrap_or_else(|p| p.into_inner());
            let id = ring.next_id;
            ring.next_id += 1;
            if ring.events.len() == ring.capacity {
                ring.events.pop_front();
            }
            ring.events.push_back(StreamEvent {
                id,
                kind: kind.to_string(),
                data,
            });
            id
        };
        self.newest.send_replace(id);
        id
    }

    /// The id of the newest event (one less than the first for an empty hub).
    pub fn newest_id(&self) -> u64 {
        *self.newest.borrow()
    }

    /// A receiver that changes when an event is published.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.newest.subscribe()
    }

    /// The newest retained event of `kind` (a new client's first `health`).
    pub fn latest(&self, kind: &str) -> Option<StreamEvent> {
        let ring = self.buffer.lock().unwrap_or_else(|p| p.into_inner());
        ring.events.iter().rev().find(|e| e.kind == kind).cloned()
    }

    /// The retained events after `last`; `missed` when some after it are
    /// no longer retained.
    pub fn since(&self, last: u64) -> Catchup {
        let ring = self.buffer.lock().unwrap_or_else(|p| p.into_inner());
        let oldest = ring.events.front().map_or(ring.next_id, |e| e.id);
        Catchup {
            missed: last.saturating_add(1) < oldest && last < ring.next_id.saturating_sub(1),
            events: ring.events.iter().filter(|e| e.id > last).cloned().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reconnecting_client_gets_what_it_missed_or_is_told_it_was_dropped() {
        let hub = EventHub::starting_at(3, 100);
        for i in 0..5 {
            hub.publish("counts", format!("{{\"n\":{i}}}"));
        }
        // Ids 100..=104; 102..=104 retained.
        assert_eq!(hub.newest_id(), 104);
        let c = hub.since(102);
        assert!(!c.missed);
        assert_eq!(c.events.iter().map(|e| e.id).collect::<Vec<_>>(), vec![103, 104]);
        let c = hub.since(101);
        assert!(!c.missed, "101 seen, 102 is the oldest retained");
        assert_eq!(c.events.len(), 3);
        let c = hub.since(100);
        assert!(c.missed, "101 was dropped");
        assert!(hub.since(104).events.is_empty());
        assert!(!hub.since(104).missed);
    }
}
