//! Alerts: spikes in a feed's volume, recorded once each.
//!
//! Alerts live in the store's `alerts` table, one row per event: `opened`
//! when a spike is detected (what a live user needs first) and `closed`
//! with its final peak, end and magnitude. An alert's id is a hash of its
//! feed's name and its onset minute, so the same spike in a replayed or
//! restarted run has the same id, and [`AlertLog`] records each (id, kind)
//! once: a restart does not re-emit what was already recorded.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::collections::{BTreeMap, HashSet};
use tidewatch_core::spike::explain::{Driver, SpikeExplainer};
use tidewatch_core::spike::{Spike, SpikeConfig, SpikeDetector, SpikeEvent, SpikeId};
use tidewatch_core::window::{Resolution, WindowView};
use tidewatch_core::Timestamp;
use tidewatch_store::db::{AlertRow, Db};

use crate::repeats::RepeatCounts;
use tidewatch_store::StoreError;

/// One alert event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlertRecord {
    /// Stable id: 16 hex digits.
    pub id: String,
    /// `opened` or `closed`.
    pub kind: String,
    pub feed_name: String,
    pub spike: Spike,
    /// What is over-represented in the spike's minutes, strongest first.
    #[serde(default)]
    pub why: Vec<Driver>,
    /// Share of the spike's posts that repeat an earlier post's text
    /// (near-duplicates and reposts; see [`crate::repeats`]), when the run
    /// clusters narratives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub near_duplicate_share: Option<f64>,
}

/// The stable id of a spike of feed `name` starting at `onset`.
pub fn alert_id(name: &str, onset: Timestamp) -> String {
    let mut h = blake3::Hasher::new();
    h.update(b"tidewatch-alert-v1\0");
    h.update(name.as_bytes());
    h.update(b"\0");
    h.update(&onset.0.to_le_bytes());
    h.finalize().to_hex()[..16].to_string()
}

/// Which alert events are recorded, and the new ones waiting for the next
/// store commit.
pub struct AlertLog {
    written: HashSet<(String, String)>,
    pending: Vec<AlertRow>,
}

impl AlertLog {
    /// Remembers what the store's alert table holds.
    pub fn open(db: &Db) -> Result<AlertLog, StoreError> {
        let written = db.alerts(None)?.into_iter().map(|r| (r.id, r.kind)).collect();
        Ok(AlertLog {
            written,
            pending: Vec::new(),
        })
    }

    /// Records a detector event for feed `feed_name`, with what drove it;
    /// returns the record if it is new (not recorded before, by this run or
    /// an earlier one).
    pub fn record(
        &mut self,
        event: &SpikeEvent,
        feed_name: &str,
        why: &[Driver],
        near_duplicate_share: Option<f64>,
    ) -> Option<AlertRecord> {
        let (kind, spike) = match event {
            SpikeEvent::Opened(s) => ("opened", s),
            SpikeEvent::Closed(s) => ("closed", s),
        };
        let id = alert_id(feed_name, spike.onset);
        if !self.written.insert((id.clone(), kind.to_string())) {
            return None;
        }
        let rec = AlertRecord {
            id,
            kind: kind.into(),
            feed_name: feed_name.into(),
            spike: spike.clone(),
            why: why.to_vec(),
            near_duplicate_share,
        };
        self.pending.push(AlertRow {
            id: rec.id.clone(),
            kind: rec.kind.clone(),
            feed: rec.feed_name.clone(),
            onset_ms: spike.onset.0,
            record: serde_json::to_string(&rec).unwrap_or_default(),
        });
        Some(rec)
    }

    /// The records made since the last call, for the store.
    pub fn take_pending(&mut self) -> Vec<AlertRow> {
        std::mem::take(&mut self.pending)
    }
}

/// Spike detection on a run's closed minute windows, recorded to the
/// alert log: what a [`RunSink`](crate::run::RunSink) calls for each window.
pub struct SpikeAlerts {
    detector: SpikeDetector,
    explainer: SpikeExplainer,
    /// The drivers of each open spike, found when it opened.
    why: HashMap<SpikeId, Vec<Driver>>,
    log: AlertLog,
    events: Vec<SpikeEvent>,
    /// Repeated text per feed and minute, when the run clusters narratives.
    repeats: Option<RepeatCounts>,
}

impl SpikeAlerts {
    pub fn new(config: SpikeConfig, log: AlertLog) -> SpikeAlerts {
        SpikeAlerts {
            detector: SpikeDetector::new(config),
            explainer: SpikeExplainer::new(),
            why: HashMap::new(),
            log,
            events: Vec::new(),
            repeats: None,
        }
    }

    /// Also says, for each alert, which share of the spike's posts repeat
    /// earlier text; the sink reports each such post with [`Self::repeat`].
    pub fn with_near_duplicates(mut self) -> SpikeAlerts {
        self.repeats = Some(RepeatCounts::default());
        self
    }

    /// A post at `t`, matched by `feeds`, joined a narrative that already
    /// existed (see [`Self::with_near_duplicates`]).
    pub fn repeat(&mut self, t: Timestamp, feeds: &[u32]) {
        if let Some(r) = &mut self.repeats {
            r.repeat(t, feeds);
        }
    }

    /// Feeds a closed window to the detector; returns the alerts it raised
    /// or closed that were not recorded before. `name_of` names feed ids.
    pub fn window(&mut self, w: &WindowView<'_>, name_of: impl Fn(u32) -> String) -> Vec<AlertRecord> {
        if w.resolution() != Resolution::Minute {
            return Vec::new();
        }
        self.explainer.observe(w);
        self.detector.observe(w.feed(), w.start(), w.count(), &mut self.events);
        let mut new = Vec::new();
        for ev in std::mem::take(&mut self.events) {
            let s = ev.spike();
            // Explained when it opens (its minutes are still recent); the
            // closing record repeats that explanation.
            let why = match &ev {
                SpikeEvent::Opened(_) => {
                    let why = self.explainer.explain(s.feed, s.onset, s.detected_at);
                    self.why.insert(s.id, why.clone());
                    why
                }
                SpikeEvent::Closed(_) => self.why.remove(&s.id).unwrap_or_default(),
            };
            // From the onset to the last minute seen (the end, once closed).
            let last = s.end.unwrap_or(Timestamp(w.start().0 + Timestamp::MINUTE));
            let share = self
                .repeats
                .as_ref()
                .and_then(|r| r.share(s.feed, s.onset, last, s.posts));
            if let Some(rec) = self.log.record(&ev, &name_of(s.feed), &why, share) {
                new.push(rec);
            }
        }
        new
    }

    /// The records made since the last call, for the store.
    pub fn take_pending(&mut self) -> Vec<AlertRow> {
        self.log.take_pending()
    }
}

impl AlertRecord {
    /// `; why: bridge, #bridgecollapse, news.example; 40% repeat earlier
    /// text` (empty without drivers or a near-duplicate share).
    pub fn why_text(&self) -> String {
        let copies = self
            .near_duplicate_share
            .map_or(String::new(), |s| format!("; {:.0}% repeat earlier text", s * 100.0));
        if self.why.is_empty() {
            return copies;
        }
        let labels: Vec<String> = self.why.iter().take(5).map(Driver::label).collect();
        format!("; why: {}{copies}", labels.join(", "))
    }

    /// One line for a terminal.
    pub fn summary(&self) -> String {
        let s = &self.spike;
        match self.kind.as_str() {
            "opened" => format!(
                "ALERT {} feed {:?}: spike from {} — {} posts/min against {:.1} expected (x{:.1}, p=1e{:.0}){}",
                self.id,
                self.feed_name,
                s.onset,
                s.peak_count,
                s.peak_expected,
                s.magnitude,
                s.log10_p,
                self.why_text()
            ),
            _ => format!(
                "ended {} feed {:?}: {} .. {}, peak {} posts/min at {} (x{:.1}), {} posts against {:.0} expected",
                self.id,
                self.feed_name,
                s.onset,
                s.end.map_or("-".to_string(), |e| e.to_string()),
                s.peak_count,
                s.peak,
                s.magnitude,
                s.posts,
                s.expected_posts
            ),
        }
    }
}

/// The alerts recorded in the store, one per id (a closed record
/// supersedes the opened one), in onset order. A row that cannot be read is
/// skipped.
pub fn current_alerts(db: &Db, since: Option<Timestamp>) -> Result<Vec<AlertRecord>, StoreError> {
    let mut by_id: BTreeMap<String, AlertRecord> = BTreeMap::new();
    for row in db.alerts(since.map(|t| t.0))? {
        let Ok(rec) = serde_json::from_str::<AlertRecord>(&row.record) else {
            continue;
        };
        match by_id.get(&rec.id) {
            Some(prev) if prev.kind == "closed" => {}
            _ => {
                by_id.insert(rec.id.clone(), rec);
            }
        }
    }
    let mut v: Vec<AlertRecord> = by_id.into_values().collect();
    v.sort_by(|a, b| a.spike.onset.cmp(&b.spike.onset).then(a.feed_name.cmp(&b.feed_name)));
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tidewatch_core::spike::SpikeId;

    fn spike(onset: i64, end: Option<i64>) -> Spike {
        Spike {
            id: SpikeId::new(0, Timestamp(onset)),
            feed: 0,
            onset: Timestamp(onset),
            detected_at: Timestamp(onset),
            peak: Timestamp(onset),
            peak_count: 50,
            peak_expected: 5.0,
            end: end.map(Timestamp),
            magnitude: 10.0,
            log10_p: -12.0,
            posts: 120,
            expected_posts: 15.0,
        }
    }

    #[test]
    fn each_alert_is_written_once_even_across_restarts() {
        use tidewatch_store::db::CommitDelta;
        let dir = tempfile::tempdir().unwrap();
        let mut db = Db::open(&dir.path().join("t.db")).unwrap();
        let opened = SpikeEvent::Opened(spike(60_000, None));
        let closed = SpikeEvent::Closed(spike(60_000, Some(600_000)));
        let commit = |db: &mut Db, seq, log: &mut AlertLog| {
            let delta = CommitDelta {
                alerts: log.take_pending(),
                ..Default::default()
            };
            db.commit(seq, &delta).unwrap();
        };
        {
            let mut log = AlertLog::open(&db).unwrap();
            assert!(log.record(&opened, "quakes", &[], None).is_some());
            assert!(log.record(&opened, "quakes", &[], None).is_none());
            commit(&mut db, 1, &mut log);
        }
        let mut log = AlertLog::open(&db).unwrap();
        assert!(
            log.record(&opened, "quakes", &[], None).is_none(),
            "a restart does not re-emit"
        );
        assert!(log.record(&closed, "quakes", &[], None).is_some());
        assert!(
            log.record(&opened, "floods", &[], None).is_some(),
            "another feed, another alert"
        );
        commit(&mut db, 2, &mut log);
        let alerts = current_alerts(&db, None).unwrap();
        assert_eq!(alerts.len(), 2);
        let quake = alerts.iter().find(|a| a.feed_name == "quakes").unwrap();
        assert_eq!(quake.kind, "closed");
        assert_eq!(quake.spike.end, Some(Timestamp(600_000)));
        assert_eq!(quake.id, alert_id("quakes", Timestamp(60_000)));
        assert_eq!(quake.id.len(), 16);
        assert!(current_alerts(&db, Some(Timestamp(60_001))).unwrap().is_empty());
    }
}
