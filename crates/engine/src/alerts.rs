//! Alerts: spikes in a feed's volume, recorded once each.
//!
//! Until the store lands, alerts live in `DATA/alerts.jsonl`, one event a
//! line: `opened` when a spike is detected (what a live user needs first)
//! and `closed` with its final peak, end and magnitude. An alert's id is a
//! hash of its feed's name and its onset minute, so the same spike in a
//! replayed or restarted run has the same id, and [`AlertLog`] writes each
//! (id, kind) once: a restart does not re-emit what was already recorded.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use tidewatch_core::spike::{Spike, SpikeConfig, SpikeDetector, SpikeEvent};
use tidewatch_core::window::{Resolution, WindowView};
use tidewatch_core::Timestamp;

/// One line of the alert log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlertRecord {
    /// Stable id: 16 hex digits.
    pub id: String,
    /// `opened` or `closed`.
    pub kind: String,
    pub feed_name: String,
    pub spike: Spike,
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

/// The append-only alert log of a data directory.
pub struct AlertLog {
    path: PathBuf,
    file: File,
    written: HashSet<(String, String)>,
}

impl AlertLog {
    /// Opens (or creates) `DATA/alerts.jsonl` and remembers what it holds.
    pub fn open(data_dir: &Path) -> io::Result<AlertLog> {
        let path = data_dir.join("alerts.jsonl");
        let written = read_records(&path)?.into_iter().map(|r| (r.id, r.kind)).collect();
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        Ok(AlertLog { path, file, written })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records a detector event for feed `feed_name`; returns the record if
    /// it is new (not written before, by this run or an earlier one).
    pub fn record(&mut self, event: &SpikeEvent, feed_name: &str) -> io::Result<Option<AlertRecord>> {
        let (kind, spike) = match event {
            SpikeEvent::Opened(s) => ("opened", s),
            SpikeEvent::Closed(s) => ("closed", s),
        };
        let id = alert_id(feed_name, spike.onset);
        if !self.written.insert((id.clone(), kind.to_string())) {
            return Ok(None);
        }
        let rec = AlertRecord {
            id,
            kind: kind.into(),
            feed_name: feed_name.into(),
            spike: spike.clone(),
        };
        let mut line = serde_json::to_vec(&rec).map_err(io::Error::other)?;
        line.push(b'\n');
        self.file.write_all(&line)?;
        Ok(Some(rec))
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// Spike detection on a run's closed minute windows, recorded to the
/// alert log: what a [`RunSink`](crate::run::RunSink) calls for each window.
pub struct SpikeAlerts {
    detector: SpikeDetector,
    log: AlertLog,
    events: Vec<SpikeEvent>,
}

impl SpikeAlerts {
    pub fn new(config: SpikeConfig, log: AlertLog) -> SpikeAlerts {
        SpikeAlerts {
            detector: SpikeDetector::new(config),
            log,
            events: Vec::new(),
        }
    }

    /// Feeds a closed window to the detector; returns the alerts it raised
    /// or closed that were not recorded before. `name_of` names feed ids.
    pub fn window(&mut self, w: &WindowView<'_>, name_of: impl Fn(u32) -> String) -> io::Result<Vec<AlertRecord>> {
        if w.resolution() != Resolution::Minute {
            return Ok(Vec::new());
        }
        self.detector.observe(w.feed(), w.start(), w.count(), &mut self.events);
        let mut new = Vec::new();
        for ev in std::mem::take(&mut self.events) {
            if let Some(rec) = self.log.record(&ev, &name_of(ev.spike().feed))? {
                new.push(rec);
            }
        }
        Ok(new)
    }

    pub fn log_path(&self) -> &Path {
        self.log.path()
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.log.flush()
    }
}

impl AlertRecord {
    /// One line for a terminal.
    pub fn summary(&self) -> String {
        let s = &self.spike;
        match self.kind.as_str() {
            "opened" => format!(
                "ALERT {} feed {:?}: spike from {} — {} posts/min against {:.1} expected (x{:.1}, p=1e{:.0})",
                self.id, self.feed_name, s.onset, s.peak_count, s.peak_expected, s.magnitude, s.log10_p
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

/// Every record of an alert log (none if it does not exist). A line that
/// cannot be read — the tail of a crash — is skipped.
pub fn read_records(path: &Path) -> io::Result<Vec<AlertRecord>> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for line in BufReader::new(file).lines() {
        if let Ok(rec) = serde_json::from_str::<AlertRecord>(&line?) {
            out.push(rec);
        }
    }
    Ok(out)
}

/// The alerts of a log, one per id (a closed record supersedes the opened
/// one), in onset order.
pub fn current_alerts(path: &Path) -> io::Result<Vec<AlertRecord>> {
    let mut by_id: BTreeMap<String, AlertRecord> = BTreeMap::new();
    for rec in read_records(path)? {
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
        let dir = tempfile::tempdir().unwrap();
        let opened = SpikeEvent::Opened(spike(60_000, None));
        let closed = SpikeEvent::Closed(spike(60_000, Some(600_000)));
        {
            let mut log = AlertLog::open(dir.path()).unwrap();
            assert!(log.record(&opened, "quakes").unwrap().is_some());
            assert!(log.record(&opened, "quakes").unwrap().is_none());
            log.flush().unwrap();
        }
        let mut log = AlertLog::open(dir.path()).unwrap();
        assert!(
            log.record(&opened, "quakes").unwrap().is_none(),
            "a restart does not re-emit"
        );
        assert!(log.record(&closed, "quakes").unwrap().is_some());
        assert!(
            log.record(&opened, "floods").unwrap().is_some(),
            "another feed, another alert"
        );
        log.flush().unwrap();
        let alerts = current_alerts(log.path()).unwrap();
        assert_eq!(alerts.len(), 2);
        let quake = alerts.iter().find(|a| a.feed_name == "quakes").unwrap();
        assert_eq!(quake.kind, "closed");
        assert_eq!(quake.spike.end, Some(Timestamp(600_000)));
        assert_eq!(quake.id, alert_id("quakes", Timestamp(60_000)));
        assert_eq!(quake.id.len(), 16);
    }
}
