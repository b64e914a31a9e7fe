//! Alerts: spikes in a feed's volume, recorded once each.
//!
//! Alerts live in the store's `alerts` table, one row per event: `opened`
//! when a spike is detected (what a live user needs first) and `closed`
//! with its final peak, end and magnitude. An alert's id is a hash of its
//! feed's name and its onset minute, so the same spike in a replayed or
//! restarted run has the same id, and [`AlertLog`] records each (id, kind)
//! once: a restart does not re-emit what was already recorded.
//!
//! A narrative that grows fast (see [`crate::narratives`]) raises one alert
//! of kind `narrative_growth` ([`SpikeAlerts::narrative`]), with the id
//! [`narrative_alert_id`] of its narrative's id, in the same log. Its
//! stored record is an [`AlertEntry`]: the [`AlertRecord`] fields every
//! reader knows (the `spike` describes the burst: its last 10 minutes
//! against the hour before, see [`NarrativeFacts`]) plus a `narrative`
//! object with its size, distinct accounts, growth and representative
//! text. Readers of older records see no difference.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::collections::{BTreeMap, HashSet};
use tidewatch_core::spike::explain::{Driver, SpikeExplainer};
use tidewatch_core::spike::{log10_poisson_upper_tail, Spike, SpikeConfig, SpikeDetector, SpikeEvent, SpikeId};
use tidewatch_core::window::{Resolution, WindowView};
use tidewatch_core::Timestamp;
use tidewatch_store::db::{AlertRow, Db};

use crate::narratives::NarrativeRecord;
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

/// The kind of a narrative's growth alert.
pub const NARRATIVE_GROWTH: &str = "narrative_growth";

/// The `spike.feed` of a narrative alert whose posts matched no feed.
pub const NO_FEED: u32 = u32::MAX;

/// What a `narrative_growth` alert says about its narrative: counts only.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NarrativeFacts {
    /// The narrative's id (16 hex digits).
    pub id: String,
    pub posts: u64,
    pub reposts: u64,
    /// Distinct accounts (estimated beyond 128: `accounts_exact`).
    pub accounts: u64,
    pub accounts_exact: bool,
    pub first_seen: Timestamp,
    /// Posts in its last 10 minutes, in the hour before, and the growth
    /// score from them.
    pub recent_10m: u64,
    pub previous_60m: u64,
    pub growth: f64,
    /// A member's redacted text.
    pub representative: String,
}

/// An alert as stored: an [`AlertRecord`] and, for a `narrative_growth`
/// alert, its narrative.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlertEntry {
    #[serde(flatten)]
    pub alert: AlertRecord,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub narrative: Option<NarrativeFacts>,
}

impl AlertEntry {
    /// One line for a terminal.
    pub fn summary(&self) -> String {
        match &self.narrative {
            Some(n) => {
                let text: String = n.representative.chars().take(100).collect();
                let more = if n.representative.chars().count() > 100 {
                    "…"
                } else {
                    ""
                };
                format!(
                    "ALERT {} narrative {} growing fast: {} posts in 10 min against {:.1} expected (x{:.1}), {} posts from {}{} accounts since {}, all near-duplicates: \"{text}{more}\"",
                    self.alert.id,
                    n.id,
                    n.recent_10m,
                    n.previous_60m as f64 / 6.0,
                    n.growth,
                    n.posts,
                    if n.accounts_exact { "" } else { "~" },
                    n.accounts,
                    n.first_seen
                )
            }
            None => self.alert.summary(),
        }
    }
}

/// The stable id of narrative `narrative_id`'s growth alert.
pub fn narrative_alert_id(narrative_id: &str) -> String {
    let mut h = blake3::Hasher::new();
    h.update(b"tidewatch-narrative-alert-v1\0");
    h.update(narrative_id.as_bytes());
    h.finalize().to_hex()[..16].to_string()
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

    /// Records the growth alert of narrative `n`, under the feed most of
    /// its posts matched (`feed`: its id and name), if any; returns it if
    /// it is new (not recorded before, by this run or an earlier one).
    pub fn record_narrative(&mut self, n: &NarrativeRecord, feed: Option<(u32, String)>) -> Option<AlertEntry> {
        let id = narrative_alert_id(&n.id);
        if !self.written.insert((id.clone(), NARRATIVE_GROWTH.to_string())) {
            return None;
        }
        let (feed_id, feed_name) = feed.unwrap_or((NO_FEED, String::new()));
        // The burst: the narrative's last 10 minutes (or its whole life if
        // shorter), against the previous hour's 10-minute rate.
        let detected = n.last_seen;
        let onset = Timestamp(detected.0.saturating_sub(10 * Timestamp::MINUTE).max(n.first_seen.0));
        let expected = n.previous_60m as f64 / 6.0;
        let spike = Spike {
            id: SpikeId::new(feed_id, onset),
            feed: feed_id,
            onset,
            detected_at: detected,
            peak: detected,
            peak_count: n.recent_10m,
            peak_expected: expected,
            end: None,
            magnitude: n.growth,
            // Against at least one post per 10 minutes, so a narrative new
            // this hour is not infinitely surprising.
            log10_p: log10_poisson_upper_tail(n.recent_10m, expected.max(1.0)),
            posts: n.recent_10m,
            expected_posts: expected,
        };
        let entry = AlertEntry {
            alert: AlertRecord {
                id,
                kind: NARRATIVE_GROWTH.into(),
                feed_name,
                spike,
                why: Vec::new(),
                near_duplicate_share: Some(1.0),
            },
            narrative: Some(NarrativeFacts {
                id: n.id.clone(),
                posts: n.posts,
                reposts: n.reposts,
                accounts: n.accounts,
                accounts_exact: n.accounts_exact,
                first_seen: n.first_seen,
                recent_10m: n.recent_10m,
                previous_60m: n.previous_60m,
                growth: n.growth,
                representative: n.representative.clone(),
            }),
        };
        self.pending.push(AlertRow {
            id: entry.alert.id.clone(),
            kind: entry.alert.kind.clone(),
            feed: entry.alert.feed_name.clone(),
            onset_ms: onset.0,
            record: serde_json::to_string(&entry).unwrap_or_default(),
        });
        Some(entry)
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
    /// Counts a store committed for minutes a resumed run may still
    /// close, by (unix minute, feed); see [`SpikeAlerts::resume`].
    carried: BTreeMap<(i64, u32), u64>,
    /// The recorded explanations of alerts that were open when the store
    /// was last committed, by alert id: a resumed run reopens them from
    /// counts alone and must not close them with a poorer explanation.
    recorded_why: HashMap<String, Vec<Driver>>,
}

/// How far [`SpikeAlerts::resume`] brought the detector.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Resumed {
    /// Stored (feed, minute) counts replayed through the detector.
    pub replayed: u64,
    /// Minutes replayed up to (exclusive), when any were.
    pub through: Option<Timestamp>,
    /// Stored (feed, minute) counts held until the run closes their minute.
    pub carried: usize,
}

/// How much stored history [`SpikeAlerts::resume`] replays: more than the
/// detector's memory of a daily rhythm (3 days by default) needs.
pub const RESUME_HISTORY_MINUTES: i64 = 7 * 24 * 60;

impl SpikeAlerts {
    pub fn new(config: SpikeConfig, log: AlertLog) -> SpikeAlerts {
        SpikeAlerts {
            detector: SpikeDetector::new(config),
            explainer: SpikeExplainer::new(),
            why: HashMap::new(),
            log,
            events: Vec::new(),
            repeats: None,
            carried: BTreeMap::new(),
            recorded_why: HashMap::new(),
        }
    }

    /// Brings the detector to where the run that committed `db` had it,
    /// so that a restarted run (after a stop or a crash) does not spend
    /// the detector's warm-up (2 hours) blind and relearn each feed's
    /// daily rhythm (days): every feed's stored minute counts of the last
    /// [`RESUME_HISTORY_MINUTES`] before the store's committed watermark
    /// (its newest minute minus `lateness_ms`) go through the detector in
    /// the order a run closes them.
    ///
    /// Minutes at or after that watermark may still receive posts from the
    /// resumed run (it reads its inputs again from their checkpoints, which
    /// come after the posts already committed), so their stored counts are
    /// carried and added to the run's own count of the same minute when it
    /// closes: the detector then sees the whole minute, as an uninterrupted
    /// run would. Alerts the replay raises that the log does not hold yet
    /// are returned (none, when the store was committed by a run with the
    /// same detector settings). An alert open at the stop keeps the
    /// explanation it was recorded with; later ones are explained against
    /// a baseline of terms that starts afresh (the store keeps counts, not
    /// the terms of each minute). Feeds that `name_of` does not know
    /// (removed since) are left out.
    pub fn resume(
        &mut self,
        db: &Db,
        lateness_ms: i64,
        name_of: impl Fn(u32) -> Option<String>,
    ) -> Result<(Resumed, Vec<AlertRecord>), StoreError> {
        let (Some(newest), _) = db.progress()? else {
            return Ok((Resumed::default(), Vec::new()));
        };
        // Alerts opened and not yet closed keep the explanation they were
        // recorded with.
        let rows = db.alerts(None)?;
        let closed: HashSet<&str> = rows
            .iter()
            .filter(|r| r.kind == "closed")
            .map(|r| r.id.as_str())
            .collect();
        for row in rows
            .iter()
            .filter(|r| r.kind == "opened" && !closed.contains(r.id.as_str()))
        {
            if let Ok(rec) = serde_json::from_str::<AlertRecord>(&row.record) {
                self.recorded_why.insert(row.id.clone(), rec.why);
            }
        }
        let watermark = newest
            .saturating_mul(Timestamp::MINUTE)
            .saturating_sub(lateness_ms.max(0));
        // Minutes ending at or before the watermark are closed.
        let closed_until = watermark.div_euclid(Timestamp::MINUTE);
        // The names of the stored feeds the run still has, looked up once.
        let names: HashMap<u32, String> = db
            .feeds()?
            .into_iter()
            .filter_map(|f| name_of(f.id).map(|name| (f.id, name)))
            .collect();
        let name = |feed: u32| names.get(&feed).cloned().unwrap_or_default();
        let mut raised = Vec::new();
        let mut replayed = 0;
        db.each_feed_minute(
            closed_until.saturating_sub(RESUME_HISTORY_MINUTES),
            closed_until,
            |feed, m, c| {
                if names.contains_key(&feed) {
                    let start = Timestamp(m.saturating_mul(Timestamp::MINUTE));
                    let count = c.posts.max(0) as u64;
                    raised.extend(self.observe_count(feed, start, count, &name));
                    replayed += 1;
                }
            },
        )?;
        db.each_feed_minute(closed_until, i64::MAX, |feed, m, c| {
            if names.contains_key(&feed) {
                self.carried.insert((m, feed), c.posts.max(0) as u64);
            }
        })?;
        let resumed = Resumed {
            replayed,
            through: (replayed > 0).then_some(Timestamp(closed_until.saturating_mul(Timestamp::MINUTE))),
            carried: self.carried.len(),
        };
        Ok((resumed, raised))
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
        let minute = w.start().0.div_euclid(Timestamp::MINUTE);
        let mut new = Vec::new();
        // Stored minutes a resumed run closes no window for come first, in
        // the order a run would have closed them.
        while let Some(entry) = self.carried.first_entry() {
            let &(m, feed) = entry.key();
            if (m, feed) >= (minute, w.feed()) {
                break;
            }
            let count = entry.remove();
            new.extend(self.observe_count(feed, Timestamp(m.saturating_mul(Timestamp::MINUTE)), count, &name_of));
        }
        let stored = self.carried.remove(&(minute, w.feed())).unwrap_or(0);
        self.explainer.observe(w);
        new.extend(self.observe_count(w.feed(), w.start(), w.count() + stored, &name_of));
        new
    }

    /// One minute's count of one feed through the detector; the alerts
    /// it raised or closed that were not recorded before.
    fn observe_count(
        &mut self,
        feed: u32,
        start: Timestamp,
        count: u64,
        name_of: &impl Fn(u32) -> String,
    ) -> Vec<AlertRecord> {
        self.detector.observe(feed, start, count, &mut self.events);
        let mut new = Vec::new();
        for ev in std::mem::take(&mut self.events) {
            let s = ev.spike();
            // Explained when it opens (its minutes are still recent); the
            // closing record repeats that explanation.
            let why = match &ev {
                SpikeEvent::Opened(_) => {
                    let recorded = match self.recorded_why.is_empty() {
                        true => None,
                        false => self.recorded_why.remove(&alert_id(&name_of(s.feed), s.onset)),
                    };
                    let why = recorded.unwrap_or_else(|| self.explainer.explain(s.feed, s.onset, s.detected_at));
                    self.why.insert(s.id, why.clone());
                    why
                }
                SpikeEvent::Closed(_) => self.why.remove(&s.id).unwrap_or_default(),
            };
            // From the onset to the last minute seen (the end, once closed).
            let last = s.end.unwrap_or(Timestamp(start.0 + Timestamp::MINUTE));
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

    /// Raises the growth alert of narrative `n` (see the module docs);
    /// returns it if it is new. `name_of` names feed ids.
    pub fn narrative(&mut self, n: &NarrativeRecord, name_of: impl Fn(u32) -> String) -> Option<AlertEntry> {
        let feed = n.feeds.first().map(|&(id, _)| (id, name_of(id)));
        self.log.record_narrative(n, feed)
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
            NARRATIVE_GROWTH => format!(
                "ALERT {} narrative growing fast (feed {:?}): {} posts in 10 min from {} against {:.1} expected (x{:.1}), all near-duplicates",
                self.id, self.feed_name, s.peak_count, s.onset, s.peak_expected, s.magnitude
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
    Ok(current_alert_entries(db, since)?.into_iter().map(|e| e.alert).collect())
}

/// [`current_alerts`] with, for a `narrative_growth` alert, its narrative.
pub fn current_alert_entries(db: &Db, since: Option<Timestamp>) -> Result<Vec<AlertEntry>, StoreError> {
    let mut by_id: BTreeMap<String, AlertEntry> = BTreeMap::new();
    for row in db.alerts(since.map(|t| t.0))? {
        let Ok(e) = serde_json::from_str::<AlertEntry>(&row.record) else {
            continue;
        };
        match by_id.get(&e.alert.id) {
            Some(prev) if prev.alert.kind == "closed" => {}
            _ => {
                by_id.insert(e.alert.id.clone(), e);
            }
        }
    }
    let mut v: Vec<AlertEntry> = by_id.into_values().collect();
    v.sort_by(|a, b| {
        a.alert
            .spike
            .onset
            .cmp(&b.alert.spike.onset)
            .then(a.alert.feed_name.cmp(&b.alert.feed_name))
    });
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
