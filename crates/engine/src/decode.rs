//! The decode stage: inputs → records → events.
//!
//! For each input this stage opens the file (or stdin), detects its format
//! from the content unless one was given, frames it and runs the format's
//! decoder. A record that cannot be decoded becomes a [`Reject`]
//! (`file:line: reason`) and the stream goes on; an input that cannot be
//! read at all is recorded in its [`FileReport`] and the next input is read.
//!
//! Decoders are kept across inputs of the same format, so that posts seen
//! through several files (Mastodon timelines, overlapping RSS snapshots)
//! are emitted once.

use std::collections::HashMap;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use tidewatch_core::pseudonym::Keyring;
use tidewatch_core::{Event, Timestamp};
use tidewatch_ingest::format::csv::CsvMapping;
use tidewatch_ingest::format::{detect, DecodeOutput, Decoder, Format};
use tidewatch_ingest::read::{FrameError, Input};

/// How inputs are decoded.
#[derive(Clone, Debug)]
pub struct DecodeOptions {
    /// `None` detects each input's format from its content.
    pub format: Option<Format>,
    /// The column mapping for CSV; `None` detects it from the header.
    pub csv_mapping: Option<CsvMapping>,
    /// Events per batch handed to the next stage.
    pub batch_size: usize,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions {
            format: None,
            csv_mapping: None,
            batch_size: 1024,
        }
    }
}

/// Deletes pseudonymisation keys past the linkage window as event time
/// advances: the decode stage calls it on every batch, before the batch is
/// enriched, so no later post is pseudonymised under an expired key.
pub struct KeyExpiry<'k> {
    keyring: &'k Keyring,
    newest: Option<Timestamp>,
}

impl<'k> KeyExpiry<'k> {
    pub fn new(keyring: &'k Keyring) -> Self {
        KeyExpiry { keyring, newest: None }
    }

    pub fn observe(&mut self, events: &[Event]) {
        let newest = events.iter().filter_map(|e| match e {
            Event::Post(p) => p.created_at,
            Event::Delete(_) => None,
        });
        self.newest = self.newest.into_iter().chain(newest).max();
        if let Some(t) = self.newest {
            self.keyring.expire(t);
        }
    }
}

/// One record that could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reject {
    pub path: String,
    pub line: u64,
    pub reason: String,
}

impl fmt::Display for Reject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.path, self.line, self.reason)
    }
}

/// What was read from one input.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileReport {
    pub path: String,
    pub format: Option<Format>,
    /// Why this format was chosen (auto-detection), or "given".
    pub detection: String,
    pub posts: u64,
    pub deletions: u64,
    /// Valid records holding no post (likes, user objects, duplicates).
    pub ignored: u64,
    pub rejected: u64,
    /// Set when the input could not be opened, detected or read to the end.
    pub error: Option<String>,
}

/// Decodes every input in order, handing batches of events to `emit`
/// (which returns false to stop) and each bad record to `on_reject`.
pub fn decode_inputs(
    paths: &[PathBuf],
    opts: &DecodeOptions,
    emit: &mut dyn FnMut(Vec<Event>) -> bool,
    on_reject: &mut dyn FnMut(&Reject),
) -> Vec<FileReport> {
    let mut decoders: HashMap<Format, Box<dyn Decoder>> = HashMap::new();
    let mut batch = Vec::with_capacity(opts.batch_size);
    let mut reports = Vec::new();
    let mut stopped = false;
    for path in paths {
        let mut report = FileReport {
            path: path.display().to_string(),
            ..Default::default()
        };
        if !stopped {
            stopped = !decode_one(path, opts, &mut decoders, &mut batch, &mut report, emit, on_reject);
        }
        reports.push(report);
    }
    if !stopped && !batch.is_empty() {
        emit(batch);
    }
    reports
}

/// [`decode_inputs`] as the pipelines run it: pseudonymisation keys past
/// the linkage window are deleted as the decoded event time advances
/// ([`KeyExpiry`]), before the batches reach enrichment.
pub fn decode_inputs_expiring_keys(
    paths: &[PathBuf],
    opts: &DecodeOptions,
    keyring: &Keyring,
    emit: &mut dyn FnMut(Vec<Event>) -> bool,
    on_reject: &mut dyn FnMut(&Reject),
) -> Vec<FileReport> {
    let mut expiry = KeyExpiry::new(keyring);
    decode_inputs(
        paths,
        opts,
        &mut |events| {
            expiry.observe(&events);
            emit(events)
        },
        on_reject,
    )
}

/// Returns false if `emit` asked to stop.
fn decode_one(
    path: &Path,
    opts: &DecodeOptions,
    decoders: &mut HashMap<Format, Box<dyn Decoder>>,
    batch: &mut Vec<Event>,
    report: &mut FileReport,
    emit: &mut dyn FnMut(Vec<Event>) -> bool,
    on_reject: &mut dyn FnMut(&Reject),
) -> bool {
    let input = match Input::open(path) {
        Ok(i) => i,
        Err(e) => {
            report.error = Some(format!("cannot open: {e}"));
            return true;
        }
    };
    let (format, csv_mapping) = match opts.format {
        Some(f) => {
            report.detection = "given".into();
            (f, opts.csv_mapping.clone())
        }
        None => match detect::detect(&input.head) {
            Ok(d) => {
                report.detection = d.reason;
                (d.format, opts.csv_mapping.clone().or(d.csv_mapping))
            }
            Err(e) => {
                report.error = Some(format!("format not recognised: {e}"));
                return true;
            }
        },
    };
    report.format = Some(format);
    // CSV headers differ between files; every other decoder is shared.
    let mut fresh;
    let decoder: &mut Box<dyn Decoder> = if format == Format::Csv {
        fresh = format.decoder(csv_mapping);
        &mut fresh
    } else {
        decoders.entry(format).or_insert_with(|| format.decoder(None))
    };
    let mut records = input.records(format.framing());
    let mut out = DecodeOutput::default();
    let mut last_line = 0;
    loop {
        let rec = match records.next_record() {
            Ok(Some(r)) => r,
            Ok(None) => break,
            Err(FrameError::TooLarge { line }) => {
                report.rejected += 1;
                on_reject(&Reject {
                    path: report.path.clone(),
                    line,
                    reason: FrameError::TooLarge { line }.to_string(),
                });
                continue;
            }
            Err(e) => {
                report.error = Some(format!("read error: {e}"));
                break;
            }
        };
        last_line = rec.line;
        out.events.clear();
        out.ignored = 0;
        // A decoder bug must cost one record, not the run.
        let result = catch_unwind(AssertUnwindSafe(|| decoder.decode(rec.bytes, &mut out)))
            .unwrap_or_else(|_| Err(tidewatch_ingest::DecodeError::Other("internal decoder error".into())));
        if !take_output(result, &mut out, last_line, batch, report, on_reject) && batch.len() >= opts.batch_size {
            let full = std::mem::replace(batch, Vec::with_capacity(opts.batch_size));
            if !emit(full) {
                return false;
            }
        }
    }
    out.events.clear();
    out.ignored = 0;
    let result = catch_unwind(AssertUnwindSafe(|| decoder.finish(&mut out)))
        .unwrap_or_else(|_| Err(tidewatch_ingest::DecodeError::Other("internal decoder error".into())));
    take_output(result, &mut out, last_line, batch, report, on_reject);
    true
}

/// Moves a decoded record's events into the batch and counts them, or
/// reports the record as rejected. Returns true if it was rejected.
fn take_output(
    result: Result<(), tidewatch_ingest::DecodeError>,
    out: &mut DecodeOutput,
    line: u64,
    batch: &mut Vec<Event>,
    report: &mut FileReport,
    on_reject: &mut dyn FnMut(&Reject),
) -> bool {
    report.ignored += out.ignored;
    match result {
        Ok(()) => {
            for ev in out.events.drain(..) {
                match ev {
                    Event::Post(_) => report.posts += 1,
                    Event::Delete(_) => report.deletions += 1,
                }
                batch.push(ev);
            }
            false
        }
        Err(e) => {
            report.rejected += 1;
            on_reject(&Reject {
                path: report.path.clone(),
                line,
                reason: e.to_string(),
            });
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, body: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, body).unwrap();
        p
    }

    fn decode(paths: &[PathBuf], opts: &DecodeOptions) -> (Vec<Event>, Vec<FileReport>, Vec<String>) {
        let mut events = Vec::new();
        let mut rejects = Vec::new();
        let reports = decode_inputs(
            paths,
            opts,
            &mut |b| {
                events.extend(b);
                true
            },
            &mut |r| rejects.push(r.to_string()),
        );
        (events, reports, rejects)
    }

    #[test]
    fn bad_records_are_rejected_by_file_and_line_and_the_rest_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let a = write(
            dir.path(),
            "a.jsonl",
            "{\"id\":\"1\",\"platform\":\"x\",\"text\":\"one\",\"source\":\"s\"}\n{broken\n\n{\"id\":\"3\",\"platform\":\"x\",\"text\":\"three\",\"source\":\"s\"}\n",
        );
        let b = write(dir.path(), "b.csv", "message_id,user_id,username,repost_id,reply_id,message,timestamp,urls\n7,1,someone,,,\"hello\",1600000000,\n8,1,someone,,,\"never closed\n");
        let missing = dir.path().join("missing.jsonl");
        let opts = DecodeOptions {
            batch_size: 1,
            ..Default::default()
        };
        let (events, reports, rejects) = decode(&[a.clone(), missing, b.clone()], &opts);
        assert_eq!(events.len(), 3);
        assert_eq!(rejects.len(), 2, "{rejects:?}");
        assert!(
            rejects[0].starts_with(&format!("{}:2: invalid JSON", a.display())),
            "{rejects:?}"
        );
        assert!(
            rejects[1].starts_with(&format!("{}:3: field `message`", b.display())),
            "{rejects:?}"
        );
        assert_eq!(reports[0].format, Some(Format::Canonical));
        assert_eq!((reports[0].posts, reports[0].rejected), (2, 1));
        assert!(reports[1].error.as_deref().unwrap().starts_with("cannot open"));
        assert_eq!(reports[2].format, Some(Format::Csv));
        assert_eq!((reports[2].posts, reports[2].rejected), (1, 1));
    }

    #[test]
    fn keys_expire_as_event_time_advances() {
        use tidewatch_core::pseudonym::{PseudonymConfig, Pseudonymiser};
        let ring = std::sync::Arc::new(Keyring::from_seed(PseudonymConfig::default(), 1));
        let mut ps = Pseudonymiser::new(ring.clone(), Timestamp(0));
        ps.account("x", "a", 0);
        ps.account("x", "a", 5);
        let post_at = |day: i64| {
            Event::Post(tidewatch_core::Post {
                created_at: Some(Timestamp(day * Timestamp::DAY)),
                ..Default::default()
            })
        };
        let mut expiry = KeyExpiry::new(&ring);
        expiry.observe(&[post_at(3)]);
        assert_eq!(ring.snapshot().epoch_keys.len(), 2, "within the linkage window");
        expiry.observe(&[post_at(9), post_at(2)]);
        assert_eq!(
            ring.snapshot().epoch_keys.keys().copied().collect::<Vec<_>>(),
            vec![5],
            "epoch 0 ended 8 days ago"
        );
        expiry.observe(&[post_at(1)]);
        assert_eq!(
            ring.snapshot().epoch_keys.len(),
            1,
            "a late post does not bring a key back"
        );
    }

    #[test]
    fn an_unrecognised_input_is_reported_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        let junk = write(dir.path(), "junk.txt", "just some words\n");
        let (events, reports, _) = decode(&[junk], &DecodeOptions::default());
        assert!(events.is_empty());
        assert!(
            reports[0]
                .error
                .as_deref()
                .unwrap()
                .starts_with("format not recognised"),
            "{reports:?}"
        );
    }
}
