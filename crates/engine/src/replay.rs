//! Replaying a recorded stream at an accelerated event-time rate.
//!
//! A file of posts spanning days can be watched "live": the decode stage
//! holds each post back until the wall clock has caught up with its event
//! time divided by a speed (1,440 = one simulated day per minute). The
//! rest of the pipeline cannot tell the difference from a live source,
//! which is what `tidewatch demo` shows and what the latency benchmark
//! measures: time from a post's release into the pipeline to its alert.
//!
//! The clock starts at the first dated post; event time never runs
//! backwards for pacing (a late post is released at once). Undated posts
//! and deletions are released with whatever comes next.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tidewatch_core::Timestamp;

/// Longest sleep between checks of the stop flag.
const STOP_CHECK: Duration = Duration::from_millis(50);

/// The replay's clock, shared by the decode stage (which waits on it) and
/// whoever wants to know what was released when.
#[derive(Debug)]
pub struct ReplayClock {
    speed: f64,
    /// The first paced post's event time and its release instant.
    origin: OnceLock<(i64, Instant)>,
    /// Newest event time released so far (pacing never goes back).
    newest: Mutex<i64>,
    /// (newest event time, instant) at each release, when recording.
    releases: Option<Mutex<Vec<(i64, Instant)>>>,
    stop: AtomicBool,
    /// A flag owned elsewhere (Ctrl-C) that also stops the replay.
    stop_flag: OnceLock<Arc<AtomicBool>>,
}

impl ReplayClock {
    /// A clock running `speed` times faster than event time (> 0).
    pub fn new(speed: f64) -> ReplayClock {
        ReplayClock {
            speed: if speed.is_finite() && speed > 0.0 { speed } else { 1.0 },
            origin: OnceLock::new(),
            newest: Mutex::new(i64::MIN),
            releases: None,
            stop: AtomicBool::new(false),
            stop_flag: OnceLock::new(),
        }
    }

    /// Also remembers when each event time was released (for latency
    /// measurements: [`ReplayClock::released_at`]).
    pub fn recording(mut self) -> ReplayClock {
        self.releases = Some(Mutex::new(Vec::new()));
        self
    }

    pub fn speed(&self) -> f64 {
        self.speed
    }

    /// Ends the replay: the decode stage stops at its next post.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Also stops when `flag` is set (the first flag given counts).
    pub fn stop_on(&self, flag: Arc<AtomicBool>) {
        let _ = self.stop_flag.set(flag);
    }

    pub fn is_stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed) || self.stop_flag.get().is_some_and(|f| f.load(Ordering::Relaxed))
    }

    /// When a post of event time `t` is due; the first call sets the
    /// origin (due at once).
    pub fn due(&self, t: Timestamp) -> Instant {
        let (t0, w0) = *self.origin.get_or_init(|| (t.0, Instant::now()));
        let newest = {
            let mut n = self.newest.lock().unwrap_or_else(|p| p.into_inner());
            *n = (*n).max(t.0);
            *n
        };
        let ahead_ms = (newest - t0).max(0) as f64 / self.speed;
        w0 + Duration::from_secs_f64(ahead_ms / 1000.0)
    }

    /// Waits until `t` is due. Returns false if the replay was stopped.
    pub fn wait(&self, t: Timestamp) -> bool {
        let due = self.due(t);
        loop {
            if self.is_stopped() {
                return false;
            }
            let now = Instant::now();
            if now >= due {
                return true;
            }
            std::thread::sleep((due - now).min(STOP_CHECK));
        }
    }

    /// Records that everything up to event time `t` has been released now.
    pub fn released(&self, t: Timestamp) {
        if let Some(r) = &self.releases {
            let mut r = r.lock().unwrap_or_else(|p| p.into_inner());
            if r.last().is_none_or(|&(last, _)| t.0 > last) {
                r.push((t.0, Instant::now()));
            }
        }
    }

    /// The instant the first post of event time ≥ `t` was released (when
    /// recording).
    pub fn released_at(&self, t: Timestamp) -> Option<Instant> {
        let r = self.releases.as_ref()?.lock().unwrap_or_else(|p| p.into_inner());
        let i = r.partition_point(|&(e, _)| e < t.0);
        r.get(i).map(|&(_, at)| at)
    }

    /// The first and the last release instants (when recording).
    pub fn release_span(&self) -> Option<(Instant, Instant)> {
        let r = self.releases.as_ref()?.lock().unwrap_or_else(|p| p.into_inner());
        Some((r.first()?.1, r.last()?.1))
    }

    /// The newest event time released so far.
    pub fn newest(&self) -> Option<Timestamp> {
        let n = *self.newest.lock().unwrap_or_else(|p| p.into_inner());
        (n != i64::MIN).then_some(Timestamp(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn posts_are_due_at_their_event_time_divided_by_the_speed() {
        let clock = ReplayClock::new(60_000.0); // a minute of event time per ms
        let start = clock.due(Timestamp(1_000_000));
        let later = clock.due(Timestamp(1_000_000 + 120 * Timestamp::MINUTE));
        assert_eq!(later - start, Duration::from_millis(120));
        // A late post is due no earlier than the newest one seen.
        assert_eq!(clock.due(Timestamp(1_000_000)), later);
    }

    #[test]
    fn waiting_returns_once_due_and_stops_when_told() {
        let clock = ReplayClock::new(60_000.0);
        assert!(clock.wait(Timestamp(0)));
        let before = Instant::now();
        assert!(clock.wait(Timestamp(20 * Timestamp::MINUTE)));
        assert!(before.elapsed() >= Duration::from_millis(15));
        clock.stop();
        assert!(!clock.wait(Timestamp(10_000 * Timestamp::MINUTE)));
    }

    #[test]
    fn releases_are_looked_up_by_event_time() {
        let clock = ReplayClock::new(1.0).recording();
        clock.released(Timestamp(10));
        clock.released(Timestamp(5)); // not newer: not recorded
        clock.released(Timestamp(20));
        let first = clock.released_at(Timestamp(0)).unwrap();
        assert_eq!(clock.released_at(Timestamp(10)), Some(first));
        assert!(clock.released_at(Timestamp(11)).unwrap() >= first);
        assert_eq!(clock.released_at(Timestamp(21)), None);
    }
}
