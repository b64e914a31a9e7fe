//! What a source sends and what it reports about itself.

use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};
use tidewatch_ingest::format::Format;

/// One record as the source received it.
#[derive(Clone, Debug)]
pub struct Received {
    /// The source's name (unique in a run; the checkpoint's key).
    pub source: String,
    /// How the pipeline decodes `bytes`.
    pub format: Format,
    /// One record in the wire format (a JSON event, a status, a feed
    /// document).
    pub bytes: Vec<u8>,
    /// The cursor to resume from after this record, when the protocol has
    /// one.
    pub cursor: Option<u64>,
}

/// Records may be missing between `from` and `to` (cursors or event
/// times in ms, as `what` says).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Gap {
    pub source: String,
    /// Unix ms when the gap was detected.
    pub detected_at: i64,
    pub from: Option<u64>,
    pub to: Option<u64>,
    /// One line for a human: "cursor jumped from .. to ..", "feed
    /// unreachable for 3 intervals", ...
    pub what: String,
}

/// What a source sends to the pipeline.
#[derive(Clone, Debug)]
pub enum SourceMessage {
    Record(Received),
    Gap(Gap),
}

/// Counters a source updates as it runs; cheap to update from its thread,
/// read by anyone.
#[derive(Debug, Default)]
pub struct SourceHealth {
    events: AtomicU64,
    malformed: AtomicU64,
    reconnects: AtomicU64,
    errors: AtomicU64,
    /// Newest event time seen (unix ms), 0 before any.
    newest_event_ms: AtomicU64,
    detail: Mutex<Detail>,
}

#[derive(Debug, Default)]
struct Detail {
    last_error: Option<String>,
    gaps: Vec<Gap>,
    connected: bool,
}

/// A copy of a source's health at one moment.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct HealthSnapshot {
    pub events: u64,
    pub malformed: u64,
    pub reconnects: u64,
    pub errors: u64,
    pub connected: bool,
    /// Now − newest event time, in ms (`None` before the first event).
    pub lag_ms: Option<i64>,
    pub last_error: Option<String>,
    pub gaps: Vec<Gap>,
}

/// Gaps kept per source for reporting (the oldest are dropped beyond).
const MAX_GAPS: usize = 100;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl SourceHealth {
    /// One event received; `event_ms` is its event time when known.
    pub fn event(&self, event_ms: Option<i64>) {
        self.events.fetch_add(1, Ordering::Relaxed);
        if let Some(t) = event_ms.filter(|t| *t > 0) {
            self.newest_event_ms.fetch_max(t as u64, Ordering::Relaxed);
        }
    }

    /// A frame or record that could not be read; the connection goes on.
    pub fn malformed(&self) {
        self.malformed.fetch_add(1, Ordering::Relaxed);
    }

    pub fn reconnected(&self) {
        self.reconnects.fetch_add(1, Ordering::Relaxed);
    }

    pub fn set_connected(&self, connected: bool) {
        self.lock().connected = connected;
    }

    /// A failure (connect, read, HTTP status), kept as the last error.
    pub fn error(&self, message: impl Into<String>) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        self.lock().last_error = Some(message.into());
    }

    pub fn gap(&self, gap: Gap) {
        let mut d = self.lock();
        if d.gaps.len() == MAX_GAPS {
            d.gaps.remove(0);
        }
        d.gaps.push(gap);
    }

    pub fn snapshot(&self) -> HealthSnapshot {
        let newest = self.newest_event_ms.load(Ordering::Relaxed);
        let d = self.lock();
        HealthSnapshot {
            events: self.events.load(Ordering::Relaxed),
            malformed: self.malformed.load(Ordering::Relaxed),
            reconnects: self.reconnects.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            connected: d.connected,
            lag_ms: (newest > 0).then(|| now_ms() - newest as i64),
            last_error: d.last_error.clone(),
            gaps: d.gaps.clone(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Detail> {
        self.detail.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_counts_and_keeps_the_newest_gaps() {
        let h = SourceHealth::default();
        h.event(Some(1_000));
        h.event(Some(500));
        h.malformed();
        h.reconnected();
        h.error("connection refused");
        for i in 0..(MAX_GAPS as u64 + 5) {
            h.gap(Gap {
                source: "s".into(),
                detected_at: 0,
                from: Some(i),
                to: Some(i + 1),
                what: "test".into(),
            });
        }
        let s = h.snapshot();
        assert_eq!((s.events, s.malformed, s.reconnects, s.errors), (2, 1, 1, 1));
        assert_eq!(s.last_error.as_deref(), Some("connection refused"));
        assert_eq!(s.gaps.len(), MAX_GAPS);
        assert_eq!(s.gaps[0].from, Some(5));
        assert!(s.lag_ms.unwrap() > 0);
    }
}
