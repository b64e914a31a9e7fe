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
use std::sync::Arc;
use std::time::{Duration, Instant};
use tidewatch_core::pseudonym::Keyring;
use tidewatch_core::{Event, Timestamp};
use tidewatch_ingest::format::csv::CsvMapping;
use tidewatch_ingest::format::{detect, DecodeOutput, Decoder, Format};
use tidewatch_ingest::read::{FrameError, Input};

use crate::replay::ReplayClock;

/// When replaying, a wait this long sends the posts already due first…
const PACE_FLUSH_WAIT: Duration = Duration::from_millis(2);
/// …and so does any wait once they have been held this long.
const PACE_MAX_HOLD: Duration = Duration::from_millis(10);

/// How inputs are decoded.
#[derive(Clone, Debug)]
pub struct DecodeOptions {
    /// `None` detects each input's format from its content.
    pub format: Option<Format>,
    /// The column mapping for CSV; `None` detects it from the header.
    pub csv_mapping: Option<CsvMapping>,
    /// Events per batch handed to the next stage.
    pub batch_size: usize,
    /// Where to resume each input (by its path as given), from a
    /// checkpoint of an earlier run; absent inputs are read from the start.
    pub resume: HashMap<String, Resume>,
    /// Replay at an accelerated event-time rate instead of as fast as
    /// possible: each post waits until it is due on this clock.
    pub pace: Option<Arc<ReplayClock>>,
    /// Read each input only up to this many events (by its path as
    /// given); inputs without an entry are not read. For reading again
    /// what an earlier run consumed between two checkpoints; `None` reads
    /// every input to its end.
    pub until: Option<HashMap<String, u64>>,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions {
            format: None,
            csv_mapping: None,
            batch_size: 1024,
            resume: HashMap::new(),
            pace: None,
            until: None,
        }
    }
}

/// Where an input's reading resumes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Resume {
    /// Events already consumed: decoded again but not emitted. Decoding
    /// from the start (rather than seeking) rebuilds the decoder's state —
    /// its de-duplication set, a Twitter file's collected records — exactly
    /// as the first run had it.
    pub events: u64,
    /// The input was read to the end: it is skipped, unless it is a plain
    /// file that has grown since (then it is read on).
    pub done: bool,
    /// The byte offset recorded with the checkpoint, kept as it was.
    pub offset: Option<u64>,
}

/// Where a batch ends in the inputs: the input of its last event and how
/// far that input has been consumed. Inputs before `input` are finished.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Position {
    /// Index into the list of inputs.
    pub input: usize,
    /// Events of that input up to the end of the batch (skipped ones
    /// included).
    pub events: u64,
    /// Byte offset (decompressed) after the last record all of whose events
    /// are in or before this batch, when records map to events one by one.
    pub offset: Option<u64>,
    /// The input has been read to the end.
    pub done: bool,
}

/// A batch of decoded events and where it ends.
#[derive(Debug, Default)]
pub struct Decoded {
    pub events: Vec<Event>,
    pub at: Position,
    /// The inputs read to the end within this batch, with their totals.
    pub finished: Vec<Position>,
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
    /// Events not emitted because an earlier run consumed them.
    pub resumed: u64,
    /// Set when the input could not be opened, detected or read to the end.
    pub error: Option<String>,
}

/// Decodes every input in order, handing batches of events to `emit`
/// (which returns false to stop) and each bad record to `on_reject`.
///
/// Every batch says where it ends ([`Decoded::at`]); after the last input a
/// final batch (possibly empty) marks it done, so a checkpoint taken after
/// any batch is exact.
pub fn decode_inputs(
    paths: &[PathBuf],
    opts: &DecodeOptions,
    emit: &mut dyn FnMut(Decoded) -> bool,
    on_reject: &mut dyn FnMut(&Reject),
) -> Vec<FileReport> {
    let mut state = DecodeState {
        decoders: HashMap::new(),
        batch: Decoded::default(),
        emitted_at: None,
        held_since: None,
    };
    let mut reports = Vec::new();
    let mut stopped = false;
    for (input, path) in paths.iter().enumerate() {
        let mut report = FileReport {
            path: path.display().to_string(),
            ..Default::default()
        };
        if !stopped {
            let mut resume = opts.resume.get(&report.path).copied().unwrap_or_default();
            if resume.done && grown_since(path, &resume) {
                // Read on: its earlier records are decoded again and
                // skipped, as for any input resumed mid-way.
                resume.done = false;
            }
            let until = match &opts.until {
                None => u64::MAX,
                Some(until) => until.get(&report.path).copied().unwrap_or(0),
            };
            if until <= resume.events {
                report.detection = "nothing to read again".into();
                report.resumed = resume.events;
            } else if resume.done {
                report.detection = "already read to the end by an earlier run (checkpoint)".into();
                report.resumed = resume.events;
                state.batch.at = Position {
                    input,
                    events: resume.events,
                    offset: resume.offset,
                    done: true,
                };
                state.batch.finished.push(state.batch.at);
            } else {
                stopped = !decode_one(
                    input,
                    path,
                    opts,
                    (resume, until),
                    &mut state,
                    &mut report,
                    emit,
                    on_reject,
                );
            }
        }
        reports.push(report);
    }
    // The last batch, also when empty: it carries the last inputs' ends.
    // (Nothing at all was positioned when every input failed to open.)
    let positioned = !state.batch.finished.is_empty() || state.emitted_at.is_some() || !state.batch.events.is_empty();
    if !stopped && positioned && (!state.batch.events.is_empty() || state.emitted_at != Some(state.batch.at)) {
        emit(state.batch);
    }
    reports
}

/// Whether an input an earlier run read to its end has grown since: a
/// plain (uncompressed) file now longer than where that run stopped, as an
/// export that is still being appended to. (A compressed file's offset
/// counts decompressed bytes, so it is not compared; inputs whose records
/// are not read one by one record no offset.)
fn grown_since(path: &Path, resume: &Resume) -> bool {
    let Some(offset) = resume.offset else {
        return false;
    };
    if path.as_os_str() == "-" {
        return false;
    }
    match std::fs::metadata(path) {
        Ok(meta) if meta.len() > offset => {}
        _ => return false,
    }
    matches!(
        Input::open(path).map(|i| i.compression),
        Ok(tidewatch_ingest::read::Compression::None)
    )
}

/// [`decode_inputs`] as the pipelines run it: pseudonymisation keys past
/// the linkage window are deleted as the decoded event time advances
/// ([`KeyExpiry`]), before the batches reach enrichment.
pub fn decode_inputs_expiring_keys(
    paths: &[PathBuf],
    opts: &DecodeOptions,
    keyring: &Keyring,
    emit: &mut dyn FnMut(Decoded) -> bool,
    on_reject: &mut dyn FnMut(&Reject),
) -> Vec<FileReport> {
    let mut expiry = KeyExpiry::new(keyring);
    decode_inputs(
        paths,
        opts,
        &mut |batch| {
            expiry.observe(&batch.events);
            emit(batch)
        },
        on_reject,
    )
}

/// What decoding carries from one input to the next.
struct DecodeState {
    /// Decoders are kept across inputs of the same format (see the module doc).
    decoders: HashMap<Format, Box<dyn Decoder>>,
    /// The batch being filled; its `at` is where its last event came from.
    batch: Decoded,
    /// Where the last emitted batch ended.
    emitted_at: Option<Position>,
    /// When replaying: since when the batch holds posts.
    held_since: Option<Instant>,
}

/// Emits `batch` if it is full. Returns false if `emit` asked to stop.
fn emit_if_full(
    batch: &mut Decoded,
    emitted_at: &mut Option<Position>,
    opts: &DecodeOptions,
    emit: &mut dyn FnMut(Decoded) -> bool,
) -> bool {
    if batch.events.len() < opts.batch_size {
        return true;
    }
    emit_now(batch, emitted_at, opts, emit)
}

/// Emits `batch` (when it holds anything) and, when replaying, records
/// the release of its newest post. Returns false if `emit` asked to stop.
fn emit_now(
    batch: &mut Decoded,
    emitted_at: &mut Option<Position>,
    opts: &DecodeOptions,
    emit: &mut dyn FnMut(Decoded) -> bool,
) -> bool {
    if batch.events.is_empty() {
        return true;
    }
    if let Some(clock) = &opts.pace {
        if let Some(t) = newest_event_time(&batch.events) {
            clock.released(t);
        }
    }
    let at = batch.at;
    let full = std::mem::replace(
        batch,
        Decoded {
            events: Vec::with_capacity(opts.batch_size),
            at,
            finished: Vec::new(),
        },
    );
    *emitted_at = Some(at);
    emit(full)
}

/// Returns false if `emit` asked to stop.
#[allow(clippy::too_many_arguments)]
fn decode_one(
    input_index: usize,
    path: &Path,
    opts: &DecodeOptions,
    (resume, until): (Resume, u64),
    state: &mut DecodeState,
    report: &mut FileReport,
    emit: &mut dyn FnMut(Decoded) -> bool,
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
        state.decoders.entry(format).or_insert_with(|| format.decoder(None))
    };
    let mut records = input.records(format.framing());
    let mut out = DecodeOutput::default();
    let mut file = FileEvents {
        input: input_index,
        events: 0,
        skip: resume.events,
    };
    let mut last_line = 0;
    let mut offset = 0;
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
        offset = rec.end_offset;
        out.events.clear();
        out.ignored = 0;
        // A decoder bug must cost one record, not the run.
        let result = catch_unwind(AssertUnwindSafe(|| decoder.decode(rec.bytes, &mut out)))
            .unwrap_or_else(|_| Err(tidewatch_ingest::DecodeError::Other("internal decoder error".into())));
        if let (Some(clock), Some(t)) = (&opts.pace, newest_event_time(&out.events)) {
            // What was due before this post leaves now and this one waits;
            // but a short wait does not cut a young batch: at tens of
            // thousands of posts a second, batches of a few posts would
            // cost the pipeline more than the replay's rate allows.
            let (due, now) = (clock.due(t), Instant::now());
            let held = state.held_since.map_or(Duration::ZERO, |h| now - h);
            if due > now
                && (due - now >= PACE_FLUSH_WAIT || held >= PACE_MAX_HOLD)
                && !emit_now(&mut state.batch, &mut state.emitted_at, opts, emit)
            {
                return false;
            }
            if !clock.wait(t) {
                return false;
            }
        }
        take_output(
            result,
            &mut out,
            last_line,
            &mut file,
            &mut state.batch,
            report,
            on_reject,
        );
        if state.batch.at.input == input_index && !state.batch.at.done {
            state.batch.at.offset = Some(offset);
        }
        if file.events >= until {
            // Read again as far as asked: what follows (the decoder's
            // last events included) lies beyond.
            let beyond = (file.events - until) as usize;
            state.batch.events.truncate(state.batch.events.len() - beyond);
            return emit_if_full(&mut state.batch, &mut state.emitted_at, opts, emit);
        }
        if !emit_if_full(&mut state.batch, &mut state.emitted_at, opts, emit) {
            return false;
        }
        if state.batch.events.is_empty() {
            state.held_since = None;
        } else if state.held_since.is_none() && opts.pace.is_some() {
            state.held_since = Some(Instant::now());
        }
    }
    out.events.clear();
    out.ignored = 0;
    let result = catch_unwind(AssertUnwindSafe(|| decoder.finish(&mut out)))
        .unwrap_or_else(|_| Err(tidewatch_ingest::DecodeError::Other("internal decoder error".into())));
    take_output(
        result,
        &mut out,
        last_line,
        &mut file,
        &mut state.batch,
        report,
        on_reject,
    );
    if report.error.is_none() {
        state.batch.at = Position {
            input: input_index,
            events: file.events,
            offset: Some(offset),
            done: true,
        };
        state.batch.finished.push(state.batch.at);
    }
    emit_if_full(&mut state.batch, &mut state.emitted_at, opts, emit)
}

/// The newest creation time among `events`' posts.
fn newest_event_time(events: &[Event]) -> Option<Timestamp> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Post(p) => p.created_at,
            Event::Delete(_) => None,
        })
        .max()
}

/// Counts one input's events and drops the ones an earlier run consumed.
struct FileEvents {
    input: usize,
    events: u64,
    skip: u64,
}

/// Moves a decoded record's events into the batch and counts them, or
/// reports the record as rejected.
fn take_output(
    result: Result<(), tidewatch_ingest::DecodeError>,
    out: &mut DecodeOutput,
    line: u64,
    file: &mut FileEvents,
    batch: &mut Decoded,
    report: &mut FileReport,
    on_reject: &mut dyn FnMut(&Reject),
) {
    report.ignored += out.ignored;
    match result {
        Ok(()) => {
            for ev in out.events.drain(..) {
                file.events += 1;
                // Skipped events were consumed by an earlier run: the
                // position moves past them too.
                batch.at = Position {
                    input: file.input,
                    events: file.events,
                    offset: batch.at.offset.filter(|_| batch.at.input == file.input),
                    done: false,
                };
                if file.events <= file.skip {
                    report.resumed += 1;
                    continue;
                }
                match ev {
                    Event::Post(_) => report.posts += 1,
                    Event::Delete(_) => report.deletions += 1,
                }
                batch.events.push(ev);
            }
        }
        Err(e) => {
            report.rejected += 1;
            on_reject(&Reject {
                path: report.path.clone(),
                line,
                reason: e.to_string(),
            });
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
                events.extend(b.events);
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

    /// Reading again between two checkpoints: from the events the first
    /// consumed up to those the second had, in any batch size; an input
    /// without an end is not read.
    #[test]
    fn until_reads_again_between_two_positions() {
        let dir = tempfile::tempdir().unwrap();
        let line = |i: usize| format!("{{\"id\":\"{i}\",\"platform\":\"x\",\"text\":\"post {i}\",\"source\":\"s\"}}\n");
        let a = write(dir.path(), "a.jsonl", &(0..8).map(line).collect::<String>());
        let b = write(dir.path(), "b.jsonl", &(8..12).map(line).collect::<String>());
        let c = write(dir.path(), "c.jsonl", &(12..14).map(line).collect::<String>());
        let name = |p: &PathBuf| p.display().to_string();
        for batch_size in [1, 2, 3, 100] {
            let opts = DecodeOptions {
                batch_size,
                resume: HashMap::from([(
                    name(&a),
                    Resume {
                        events: 2,
                        done: false,
                        offset: None,
                    },
                )]),
                until: Some(HashMap::from([(name(&a), 5), (name(&b), 3)])),
                ..Default::default()
            };
            let (events, _, _) = decode(&[a.clone(), b.clone(), c.clone()], &opts);
            let ids: Vec<String> = events
                .iter()
                .map(|e| match e {
                    Event::Post(p) => p.id.clone(),
                    Event::Delete(_) => unreachable!(),
                })
                .collect();
            assert_eq!(ids, ["2", "3", "4", "8", "9", "10"], "batches of {batch_size}");
        }
    }
}
