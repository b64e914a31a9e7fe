//! `tidewatch run`: decode → enrich → match → windows, on every core.
//!
//! The calling thread decodes; worker threads pseudonymise, enrich,
//! tokenise once, match against the current compiled feed set (one version
//! per batch, see [`crate::live`]) and redact; one consumer thread takes the
//! results in input order and feeds the event-time windows, whose closed
//! windows and the matched posts go to a [`RunSink`].
//!
//! A sink that clusters narratives asks for each post's
//! [`NarrativeSketch`] ([`RunSink::narrative_sketches`]): the workers then
//! make it from the tokens they already have, so the ordered consumer
//! (one thread, the pipeline's narrowest point) does only the stateful
//! part. Without that request the workers do nothing more.
//!
//! A sink that has [`PostDetectors`] (narratives, coordination) lends them
//! to the run ([`RunSink::take_detectors`]): they then run on a thread of
//! their own one batch ahead of the consumer, and the sink gets each post
//! with their findings ([`RunSink::post_detected`]); see
//! [`crate::detectors`].
//!
//! Order matters for windows only through the watermark; keeping input
//! order makes a run's output independent of the thread count.
//!
//! The consumer does not free what it consumed: it hands each finished
//! batch back to the workers ([`SPENT_BATCHES`]), who drop it before
//! their next batch. Freeing a batch (a thousand posts, each a dozen
//! strings allocated on other threads) is work the one ordered thread
//! should not do.

use crate::decode::{decode_inputs_expiring_keys, DecodeOptions, Decoded, FileReport, Position, Reject};
use crate::detectors::{Detected, DetectedRows, PostDetectors};
use crate::live::LiveFeeds;
use crate::ordered;
use crate::sources::LiveSources;
use crate::state::{DetectorsSnapshot, StateError};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tidewatch_core::enrich::Enricher;
use tidewatch_core::matcher::{MatchScratch, MatchStats};
use tidewatch_core::narrative::{NarrativeConfig, NarrativeSketch, Sketcher};
use tidewatch_core::pseudonym::Keyring;
use tidewatch_core::redact::PublicAccounts;
use tidewatch_core::text::{tokenize, TokenKind, TokenizedText};
use tidewatch_core::window::{FeedWindows, WindowConfig, WindowInput, WindowSink, WindowView};
use tidewatch_core::{stopwords, Deletion, Event, Post, Timestamp};

/// Everything a run needs besides its inputs, feeds and sink.
#[derive(Clone)]
pub struct RunConfig {
    pub decode: DecodeOptions,
    pub threads: usize,
    pub keyring: Arc<Keyring>,
    /// The posts arrive pseudonymised, enriched and redacted already (a
    /// cluster's stream, see `tidewatch publish`): they are matched as
    /// they are, and the keyring is not used for them.
    pub enriched_upstream: bool,
    pub public_accounts: Arc<PublicAccounts>,
    pub undated_time: Timestamp,
    pub window: WindowConfig,
}

/// A post after the match stage: redacted, with the feeds it matched.
#[derive(Clone, Debug)]
pub struct MatchedPost {
    pub post: Post,
    /// Ids of the feeds matched, ascending.
    pub feeds: Vec<u32>,
    /// The feed-set version it was matched against.
    pub version: u64,
    /// Its distinct content terms (folded, no stop words), for top terms,
    /// separated by single spaces (one allocation instead of one per term).
    pub terms: String,
}

/// Where a run's results go.
pub trait RunSink {
    /// Every post, in input order, after matching and redaction.
    fn post(&mut self, post: &MatchedPost);
    /// The narrative settings for which the workers should make each
    /// post's [`NarrativeSketch`] (from its redacted text), handed to
    /// [`RunSink::post_sketched`]. Asked once, when the run starts; the
    /// default asks for none.
    fn narrative_sketches(&self) -> Option<NarrativeConfig> {
        None
    }
    /// Every post with its sketch when [`RunSink::narrative_sketches`]
    /// asked for one; called instead of [`RunSink::post`], which the
    /// default calls.
    fn post_sketched(&mut self, post: &MatchedPost, _sketch: Option<&NarrativeSketch>) {
        self.post(post)
    }
    /// The detectors the run should drive on a thread of its own (see
    /// [`crate::detectors`]): taken once when the run starts, and given
    /// back through [`RunSink::return_detectors`] when it ends, whether it
    /// succeeded or not. The default has none.
    fn take_detectors(&mut self) -> Option<PostDetectors> {
        None
    }
    /// Every post with what the taken detectors found in it; called
    /// instead of [`RunSink::post_sketched`] when they were taken.
    fn post_detected(&mut self, post: &MatchedPost, _found: &Detected) {
        self.post(post)
    }
    /// At the end of each batch, before [`RunSink::batch_end`]: the
    /// narratives and groups the taken detectors changed during it.
    fn rows_detected(&mut self, _rows: DetectedRows) {}
    /// The detectors taken at the start, back at the end of the run.
    fn return_detectors(&mut self, _detectors: PostDetectors) {}
    /// Every deletion notice, in input order.
    fn deletion(&mut self, _deletion: &Deletion) {}
    /// Every closed window (minute, hour, day), in emission order.
    fn window(&mut self, window: &WindowView<'_>);
    /// Running totals, after each batch.
    fn progress(&mut self, _progress: &RunProgress) {}
    /// The end of a batch: everything up to `at` in the inputs has been
    /// handed to this sink, and the inputs in `finished` were read to the
    /// end (a store commits its checkpoints here). An error stops the run:
    /// the decoder reads no further.
    fn batch_end(&mut self, _at: &Position, _finished: &[Position]) -> Result<(), SinkError> {
        Ok(())
    }
    /// Whether the sink wants a checkpoint of the detectors' state; asked
    /// after each batch, and true once per checkpoint wanted. The default
    /// wants none.
    fn checkpoint_due(&mut self) -> bool {
        false
    }
    /// A checkpoint asked for by [`RunSink::checkpoint_due`], right after
    /// the [`RunSink::batch_end`] of the batch it is taken at (the next
    /// batch, or the one after when the taken detectors already hold it):
    /// `taken` is the snapshot of the taken detectors as of this batch's
    /// end, `None` when the sink kept its detectors. A sink commits here
    /// and saves the state with the commit (see [`crate::state`]).
    fn checkpoint(&mut self, _taken: Option<Result<DetectorsSnapshot, StateError>>) -> Result<(), SinkError> {
        Ok(())
    }
}

/// Why a sink stopped a run (a full disk, a failed commit).
pub type SinkError = Box<dyn std::error::Error + Send + Sync>;

/// Running totals.
#[derive(Clone, Copy, Debug, Default)]
pub struct RunProgress {
    pub posts: u64,
    pub matched: u64,
    pub deletions: u64,
    pub rejected: u64,
    pub late: u64,
    pub watermark: Option<Timestamp>,
    pub elapsed: Duration,
}

/// What a run did.
#[derive(Clone, Debug, Default)]
pub struct RunSummary {
    pub files: Vec<FileReport>,
    pub progress: RunProgress,
    /// Per-feed matcher statistics of every worker: matched, candidates,
    /// verification time — to find a slow feed.
    pub match_stats: MatchStats,
}

/// Finished batches waiting for a worker to free them; when the queue is
/// full the consumer frees the batch itself.
pub const SPENT_BATCHES: usize = 8;

struct Batch {
    posts: Vec<MatchedPost>,
    /// The posts' narrative sketches, in the same order, when asked for.
    sketches: Vec<NarrativeSketch>,
    deletions: Vec<(usize, Deletion)>,
    at: Position,
    finished: Vec<Position>,
    /// Snapshot the taken detectors after this batch (a checkpoint).
    checkpoint: bool,
}

/// The work done on each post by a worker, outside the ordered section.
pub struct PostProcessor {
    enricher: Enricher,
    tokens: TokenizedText,
    scratch: MatchScratch,
    /// Reused buffers: the matched feeds and the terms are collected here
    /// and copied out at their exact size, one allocation each (none for
    /// an empty list) instead of a few growth steps per post.
    feeds: Vec<u32>,
    terms: String,
    /// Where each term sits in `terms`, to keep them distinct.
    term_ranges: Vec<std::ops::Range<usize>>,
    max_terms: usize,
    /// Where this worker's matcher statistics go when it is done.
    stats: Option<Arc<Mutex<MatchStats>>>,
    /// Makes each post's narrative sketch, when the sink asked for them.
    sketcher: Option<Sketcher>,
}

impl PostProcessor {
    pub fn new(cfg: &RunConfig) -> PostProcessor {
        PostProcessor {
            enricher: Enricher::new(cfg.keyring.clone(), cfg.public_accounts.clone(), cfg.undated_time)
                .enriched_upstream(cfg.enriched_upstream),
            tokens: TokenizedText::new(),
            scratch: MatchScratch::default(),
            feeds: Vec::new(),
            terms: String::new(),
            term_ranges: Vec::new(),
            max_terms: cfg.window.max_terms_per_post,
            stats: None,
            sketcher: None,
        }
    }

    /// Also makes each post's [`NarrativeSketch`] for clusterers configured
    /// with `cfg` ([`PostProcessor::process_sketched`]); an invalid `cfg`
    /// is refused.
    pub fn with_narrative_sketches(
        mut self,
        cfg: &NarrativeConfig,
    ) -> Result<Self, tidewatch_core::narrative::ConfigError> {
        self.sketcher = Some(Sketcher::new(cfg)?);
        Ok(self)
    }

    /// Adds this worker's statistics to `stats` when it is dropped.
    pub fn report_stats_to(mut self, stats: Arc<Mutex<MatchStats>>) -> Self {
        self.stats = Some(stats);
        self
    }

    /// Enrich, tokenise, match, collect terms, redact.
    pub fn process(&mut self, post: Post, live: &crate::live::Compiled) -> MatchedPost {
        self.process_sketched(post, live).0
    }

    /// [`PostProcessor::process`], and the post's narrative sketch (from
    /// its redacted text) when made [`PostProcessor::with_narrative_sketches`].
    pub fn process_sketched(
        &mut self,
        mut post: Post,
        live: &crate::live::Compiled,
    ) -> (MatchedPost, Option<NarrativeSketch>) {
        self.enricher.enrich(&mut post);
        tokenize(&post.text, &mut self.tokens);
        let feeds = &mut self.feeds;
        feeds.clear();
        live.matcher.match_post(&post, &self.tokens, &mut self.scratch, feeds);
        // Terms come from the redacted text: they end up in series, alerts
        // and the dashboard, where a handle or an e-mail address must never
        // appear. Matching above saw the raw text (mentions are queryable).
        // Redaction often leaves a text as it was (a digit is enough for it
        // to look for phone numbers); then the raw text's tokens stand.
        if self.enricher.redact_enriched(&mut post) {
            tokenize(&post.text, &mut self.tokens);
        }
        let terms = &mut self.terms;
        terms.clear();
        self.term_ranges.clear();
        let mut n = 0;
        // The plain word inside a mention (`@user` gives `@user`, `user`).
        let mut mention_until: Option<u32> = None;
        for (text, tok) in self.tokens.iter() {
            if n >= self.max_terms {
                break;
            }
            if tok.kind == TokenKind::Mention {
                mention_until = Some(tok.last_position);
                continue;
            }
            if mention_until.is_some_and(|last| tok.position <= last) {
                continue;
            }
            if tok.kind == TokenKind::Word
                && text.chars().count() >= 3
                && !is_link_word(text)
                && !text.bytes().all(|b| b.is_ascii_digit())
                && !stopwords::is_stop_word(text)
                && !self.term_ranges.iter().any(|r| terms.get(r.clone()) == Some(text))
            {
                if n > 0 {
                    terms.push(' ');
                }
                self.term_ranges.push(terms.len()..terms.len() + text.len());
                terms.push_str(text);
                n += 1;
            }
        }
        // The tokens are the redacted text's here, as a narrative watch in
        // the sink would make them.
        let sketch = self.sketcher.as_mut().map(|s| s.sketch(&post.text, &self.tokens));
        let matched = MatchedPost {
            post,
            feeds: self.feeds.as_slice().to_vec(),
            version: live.version(),
            terms: self.terms.as_str().to_owned(),
        };
        (matched, sketch)
    }

    pub fn deletion(&mut self, d: &mut Deletion) {
        self.enricher.deletion(d);
    }
}

/// Words the tokeniser makes of a link's scheme and host prefix: never a
/// topic's term.
fn is_link_word(word: &str) -> bool {
    matches!(word, "http" | "https" | "www")
}

impl Drop for PostProcessor {
    fn drop(&mut self) {
        if let Some(stats) = &self.stats {
            let mine = self.scratch.take_stats();
            stats.lock().unwrap_or_else(|e| e.into_inner()).merge(&mine);
        }
    }
}

struct SinkAdapter<'s>(&'s mut dyn RunSink);

impl WindowSink for SinkAdapter<'_> {
    fn closed(&mut self, window: &WindowView<'_>) {
        self.0.window(window);
    }
}

/// What a run reads.
pub enum Inputs<'a> {
    /// Files (`-` for standard input), each to its end.
    Files(&'a [PathBuf]),
    /// Files first, then live sources until they stop (Ctrl-C, or idle
    /// for their `until_idle`). The sources are inputs `files.len()..` of
    /// the run's positions.
    Live {
        files: &'a [PathBuf],
        sources: &'a mut LiveSources,
    },
}

impl Inputs<'_> {
    /// The producer of a run: decodes the inputs, handing batches to
    /// `emit`; returns the files' reports.
    fn produce(
        self,
        opts: &DecodeOptions,
        keyring: &Keyring,
        emit: &mut dyn FnMut(Decoded) -> bool,
        on_reject: &mut dyn FnMut(&Reject),
    ) -> Vec<FileReport> {
        match self {
            Inputs::Files(paths) => decode_inputs_expiring_keys(paths, opts, keyring, emit, on_reject),
            Inputs::Live { files, sources } => {
                let mut going = true;
                let reports = decode_inputs_expiring_keys(
                    files,
                    opts,
                    keyring,
                    &mut |batch| {
                        going = going && emit(batch) && !sources.stopping();
                        going
                    },
                    on_reject,
                );
                if going {
                    sources.decode(keyring, emit, on_reject);
                } else {
                    sources.stop_clients();
                }
                reports
            }
        }
    }
}

/// Runs the pipeline over `paths`. Bad records go to `on_reject`. Fails
/// only when the sink fails ([`RunSink::batch_end`]).
pub fn run(
    paths: &[PathBuf],
    cfg: &RunConfig,
    live: &LiveFeeds,
    sink: &mut (dyn RunSink + Send),
    on_reject: &mut dyn FnMut(&Reject),
) -> Result<RunSummary, SinkError> {
    run_inputs(Inputs::Files(paths), cfg, live, sink, on_reject)
}

/// Runs the pipeline over files and live sources ([`Inputs`]).
pub fn run_inputs(
    inputs: Inputs<'_>,
    cfg: &RunConfig,
    live: &LiveFeeds,
    sink: &mut (dyn RunSink + Send),
    on_reject: &mut dyn FnMut(&Reject),
) -> Result<RunSummary, SinkError> {
    let start = Instant::now();
    let rejected = AtomicU64::new(0);
    let mut totals = RunProgress::default();
    let mut windows = FeedWindows::new(cfg.window.clone());
    let match_stats = Arc::new(Mutex::new(MatchStats::default()));
    let detectors = sink.take_detectors();
    // An invalid configuration makes no sketches (the sink's clusterer
    // would refuse it too).
    let sketches = match &detectors {
        Some(d) => Some(d.sketch_config().clone()),
        None => sink.narrative_sketches(),
    };
    let (spent_tx, spent_rx) = crossbeam_channel::bounded::<Batch>(SPENT_BATCHES);
    let detect_apart = detectors.is_some();
    // A checkpoint the sink asked for, to take at the next batch handed
    // to the detectors' thread.
    let checkpoint_wanted = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let mut stage = detectors.map(|d| DetectStage::spawn(scope, d));
        // Everything the ordered consumer does with one batch, given the
        // detectors' findings for it when they run apart.
        let mut consume = |batch: Batch, found: Option<Found>| -> Result<(), SinkError> {
            let mut adapter = SinkAdapter(&mut *sink);
            let mut deletions = batch.deletions.iter().peekable();
            let mut terms: Vec<&str> = Vec::new();
            let (detected, rows, snapshot) = match found {
                Some(f) => (f.posts, Some(f.rows), f.snapshot),
                None => (Vec::new(), None, None),
            };
            for (i, m) in batch.posts.iter().enumerate() {
                while let Some((_, d)) = deletions.next_if(|(at, _)| *at == i) {
                    adapter.0.deletion(d);
                    totals.deletions += 1;
                }
                terms.clear();
                terms.extend(m.terms.split(' ').filter(|t| !t.is_empty()));
                let input = WindowInput::from_post(&m.post, &terms);
                windows.observe(&input, &m.feeds, &mut adapter);
                match (&rows, detected.get(i)) {
                    (Some(_), Some(found)) => adapter.0.post_detected(m, found),
                    _ => adapter.0.post_sketched(m, batch.sketches.get(i)),
                }
                totals.posts += 1;
                totals.matched += !m.feeds.is_empty() as u64;
            }
            for (_, d) in deletions {
                adapter.0.deletion(d);
                totals.deletions += 1;
            }
            if let Some(rows) = rows {
                adapter.0.rows_detected(rows);
            }
            totals.rejected = rejected.load(Ordering::Relaxed);
            totals.late = windows.metrics().late;
            totals.watermark = windows.watermark();
            totals.elapsed = start.elapsed();
            adapter.0.progress(&totals);
            let mut end = adapter.0.batch_end(&batch.at, &batch.finished);
            if let (Ok(()), Some(snapshot)) = (&end, snapshot) {
                end = adapter.0.checkpoint(Some(snapshot));
            }
            if end.is_ok() && adapter.0.checkpoint_due() {
                if detect_apart {
                    checkpoint_wanted.store(true, Ordering::Relaxed);
                } else {
                    end = adapter.0.checkpoint(None);
                }
            }
            // To a worker to free; if none keeps up, freed here.
            drop(spent_tx.try_send(batch));
            end
        };
        let files = ordered::run(
            cfg.threads,
            || {
                let mut proc = PostProcessor::new(cfg).report_stats_to(match_stats.clone());
                proc.sketcher = sketches.as_ref().and_then(|c| Sketcher::new(c).ok());
                let spent_rx = spent_rx.clone();
                move |decoded: Decoded| {
                    // Free what the consumer has finished with (see the
                    // module docs); one batch per batch made keeps the
                    // queue short.
                    drop(spent_rx.try_recv());
                    // One feed-set version for the whole batch.
                    let compiled = live.current();
                    let mut batch = Batch {
                        posts: Vec::with_capacity(decoded.events.len()),
                        // Grown by doubling, a batch's sketches cost
                        // reallocations into fresh pages.
                        sketches: match proc.sketcher {
                            Some(_) => Vec::with_capacity(decoded.events.len()),
                            None => Vec::new(),
                        },
                        deletions: Vec::new(),
                        at: decoded.at,
                        finished: decoded.finished,
                        checkpoint: false,
                    };
                    for ev in decoded.events {
                        match ev {
                            Event::Post(p) => {
                                let (m, sketch) = proc.process_sketched(p, &compiled);
                                batch.posts.push(m);
                                batch.sketches.extend(sketch);
                            }
                            Event::Delete(mut d) => {
                                proc.deletion(&mut d);
                                batch.deletions.push((batch.posts.len(), d));
                            }
                        }
                    }
                    batch
                }
            },
            |emit| {
                inputs.produce(&cfg.decode, &cfg.keyring, emit, &mut |r: &Reject| {
                    rejected.fetch_add(1, Ordering::Relaxed);
                    on_reject(r);
                })
            },
            |mut batch: Batch| match &mut stage {
                None => consume(batch, None),
                // The detectors take this batch while the consumer does
                // the one before, which they have finished.
                Some(stage) => match stage.pass({
                    batch.checkpoint = checkpoint_wanted.swap(false, Ordering::Relaxed);
                    batch
                })? {
                    Some((done, found)) => consume(done, Some(found)),
                    None => Ok(()),
                },
            },
        );
        // The last batch the detectors had, unless the run failed.
        let files = match (files, &mut stage) {
            (Ok(files), Some(stage)) => stage
                .drain()
                .and_then(|last| last.map_or(Ok(()), |(done, found)| consume(done, Some(found))))
                .map(|()| files),
            (files, _) => files,
        };
        if let Some(stage) = stage {
            sink.return_detectors(stage.join());
        }
        let files = files?;
        windows.flush(&mut SinkAdapter(sink));
        totals.late = windows.metrics().late;
        totals.rejected = rejected.load(Ordering::Relaxed);
        totals.elapsed = start.elapsed();
        let match_stats = std::mem::take(&mut *match_stats.lock().unwrap_or_else(|e| e.into_inner()));
        Ok(RunSummary {
            files,
            progress: totals,
            match_stats,
        })
    })
}

/// The detectors' findings for one batch.
struct Found {
    /// Per post, in the batch's order.
    posts: Vec<Detected>,
    rows: DetectedRows,
    /// The detectors' state after the batch, when it was a checkpoint's.
    snapshot: Option<Result<DetectorsSnapshot, StateError>>,
}

/// The `tw-detect` thread and the two channels to it: batches go in, and
/// come back with the detectors' findings, in order.
struct DetectStage<'scope> {
    to: Option<crossbeam_channel::Sender<Batch>>,
    from: crossbeam_channel::Receiver<(Batch, Found)>,
    thread: std::thread::ScopedJoinHandle<'scope, PostDetectors>,
    /// Batches given and not yet taken back (at most two: one being
    /// detected, one waiting).
    in_flight: usize,
}

impl<'scope> DetectStage<'scope> {
    fn spawn<'env>(scope: &'scope std::thread::Scope<'scope, 'env>, mut detectors: PostDetectors) -> Self {
        let (to, batches) = crossbeam_channel::bounded::<Batch>(1);
        let (done, from) = crossbeam_channel::bounded::<(Batch, Found)>(1);
        let thread = std::thread::Builder::new()
            .name("tw-detect".into())
            .spawn_scoped(scope, move || {
                for batch in batches {
                    let posts = batch
                        .posts
                        .iter()
                        .enumerate()
                        .map(|(i, m)| {
                            // The next post's band lookups load while this
                            // post is detected.
                            detectors.prefetch(batch.sketches.get(i + 1));
                            detectors.post(m, batch.sketches.get(i))
                        })
                        .collect();
                    let rows = detectors.take_rows();
                    let snapshot = batch.checkpoint.then(|| DetectorsSnapshot::of(Some(&detectors)));
                    if done.send((batch, Found { posts, rows, snapshot })).is_err() {
                        break;
                    }
                }
                detectors
            })
            .expect("spawning the detectors' thread");
        DetectStage {
            to: Some(to),
            from,
            thread,
            in_flight: 0,
        }
    }

    /// Hands `batch` over and, once two are out, takes the older one back.
    fn pass(&mut self, batch: Batch) -> Result<Option<(Batch, Found)>, SinkError> {
        let sent = self.to.as_ref().is_some_and(|to| to.send(batch).is_ok());
        if !sent {
            return Err(stopped());
        }
        self.in_flight += 1;
        if self.in_flight < 2 {
            return Ok(None);
        }
        self.take().map(Some)
    }

    /// The last batch, once the input has ended.
    fn drain(&mut self) -> Result<Option<(Batch, Found)>, SinkError> {
        self.to = None;
        if self.in_flight == 0 {
            return Ok(None);
        }
        self.take().map(Some)
    }

    fn take(&mut self) -> Result<(Batch, Found), SinkError> {
        let back = self.from.recv().map_err(|_| stopped())?;
        self.in_flight -= 1;
        Ok(back)
    }

    /// Stops the thread (after the batches it holds) and returns the
    /// detectors.
    fn join(mut self) -> PostDetectors {
        self.to = None;
        // Unblocks a thread waiting to hand back a batch nobody takes.
        drop(self.from);
        self.thread.join().unwrap_or_else(|p| std::panic::resume_unwind(p))
    }
}

/// Why the detectors' thread went away: it panicked (the join reports it).
fn stopped() -> SinkError {
    "the detectors' thread stopped".into()
}

/// Test posts as a run's sink sees them, for the detectors' tests.
#[cfg(test)]
pub(crate) mod testing {
    use super::MatchedPost;
    use tidewatch_core::text::{tokenize, TokenKind, TokenizedText};
    use tidewatch_core::{entities, Post};

    /// A post with its entities extracted and its content terms listed
    /// (the pipeline's rule, without redaction: test texts hold no handle
    /// a test looks at), matched by no feed.
    /// One line saying what the detectors found in a post, for logs two
    /// runs must agree on.
    pub(crate) fn describe(m: &MatchedPost, f: &crate::detectors::Detected) -> String {
        let ids = |v: &[crate::narratives::NarrativeRecord]| v.iter().map(|r| r.id.clone()).collect::<Vec<_>>();
        format!(
            "post {} {:?} {:?} {:?} {:?}",
            m.post.id,
            f.update.map(|u| (u.narrative.0, u.is_new, u.by_repost, u.size)),
            ids(&f.reported),
            ids(&f.grown),
            f.groups
                .iter()
                .map(|g| (g.id.clone(), g.accounts.clone(), g.total_weight))
                .collect::<Vec<_>>()
        )
    }

    pub(crate) fn matched(mut post: Post, tokens: &mut TokenizedText) -> MatchedPost {
        let mut spans = Vec::new();
        entities::scan_into(&post.text, &mut spans);
        post.entities = Some(entities::extract(&post.text, &spans));
        tokenize(&post.text, tokens);
        let mut terms: Vec<&str> = Vec::new();
        for (word, tok) in tokens.iter() {
            if tok.kind == TokenKind::Word && tidewatch_core::emerging::is_content_term(word) && !terms.contains(&word)
            {
                terms.push(word);
            }
        }
        let terms = terms.join(" ");
        MatchedPost {
            post,
            feeds: Vec::new(),
            version: 0,
            terms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feeds::{FeedDef, FeedSet};
    use crate::live::Compiled;
    use std::collections::HashMap;
    use tidewatch_core::pseudonym::PseudonymConfig;
    use tidewatch_gen::{vocabulary, GenConfig, Generator, Lang};

    const POSTS: u64 = 30_000;

    fn write_input(dir: &std::path::Path, seed: u64) -> PathBuf {
        let path = dir.join(format!("in-{seed}.jsonl"));
        let mut raw = Vec::new();
        for p in Generator::new(&GenConfig {
            posts: POSTS,
            seed,
            ..Default::default()
        }) {
            p.write_json(&mut raw);
        }
        std::fs::write(&path, raw).unwrap();
        path
    }

    fn config(threads: usize) -> RunConfig {
        RunConfig {
            decode: DecodeOptions {
                batch_size: 256,
                ..Default::default()
            },
            threads,
            keyring: Arc::new(Keyring::from_seed(PseudonymConfig::default(), 5)),
            enriched_upstream: false,
            public_accounts: Arc::new(PublicAccounts::default()),
            undated_time: Timestamp(0),
            window: WindowConfig::default(),
        }
    }

    /// Feeds drawn from the generator's English vocabulary: single words,
    /// OR-pairs and phrases, numbered from `from`.
    fn feed_defs(from: usize, n: usize) -> Vec<FeedDef> {
        let words = &vocabulary(Lang::En).words;
        (from..from + n)
            .map(|i| {
                let w = |k: usize| words[(k * 7 + 40) % words.len()].as_str();
                let query = match i % 3 {
                    0 => w(i).to_string(),
                    1 => format!("{} OR {}", w(i), w(i + 1)),
                    _ => format!("{} -{}", w(i), w(i + 2)),
                };
                FeedDef {
                    name: format!("feed-{i}"),
                    query,
                }
            })
            .collect()
    }

    /// Records every post's id, version and feeds, and every window; applies
    /// scheduled feed changes from the consumer thread while workers match.
    /// A feed change applied once this many posts have been seen.
    type Scheduled = (u64, Box<dyn FnOnce(&LiveFeeds) + Send>);

    struct Recorder {
        live: Arc<LiveFeeds>,
        schedule: Vec<Scheduled>,
        versions: HashMap<u64, FeedSet>,
        posts: Vec<(String, u64, Vec<u32>)>,
        windows: Vec<String>,
    }

    impl RunSink for Recorder {
        fn post(&mut self, m: &MatchedPost) {
            self.posts.push((m.post.id.clone(), m.version, m.feeds.clone()));
            let due = self.posts.len() as u64;
            while self.schedule.first().is_some_and(|(at, _)| *at <= due) {
                let (_, change) = self.schedule.remove(0);
                change(&self.live);
                let c = self.live.current();
                self.versions.insert(c.version(), c.set.clone());
            }
        }

        fn window(&mut self, w: &WindowView<'_>) {
            self.windows.push(w.row(5).to_csv_row());
        }
    }

    fn recorder(live: Arc<LiveFeeds>) -> Recorder {
        let c = live.current();
        let versions = HashMap::from([(c.version(), c.set.clone())]);
        Recorder {
            live,
            schedule: Vec::new(),
            versions,
            posts: Vec::new(),
            windows: Vec::new(),
        }
    }

    #[test]
    fn live_feed_changes_lose_and_duplicate_no_match() {
        let dir = tempfile::tempdir().unwrap();
        let input = write_input(dir.path(), 21);
        let live = Arc::new(LiveFeeds::new(&feed_defs(0, 1000)).unwrap());
        let mut rec = recorder(live.clone());
        // Add 1,000 feeds, remove 1,000, change some queries, while streaming.
        rec.schedule.push((
            3_000,
            Box::new(|l: &LiveFeeds| {
                l.update(|s| {
                    let mut next = s.clone();
                    for d in feed_defs(1000, 1000) {
                        next = next.with_upsert(&d)?.0;
                    }
                    Ok(next)
                })
                .unwrap();
            }),
        ));
        rec.schedule.push((
            12_000,
            Box::new(|l: &LiveFeeds| {
                l.update(|s| {
                    let mut next = s.clone();
                    for i in 0..1000 {
                        next = next.with_removed(&format!("feed-{i}"));
                    }
                    Ok(next)
                })
                .unwrap();
            }),
        ));
        rec.schedule.push((
            20_000,
            Box::new(|l: &LiveFeeds| {
                l.replace_all(&feed_defs(1500, 1000)).unwrap();
            }),
        ));
        let summary = run(std::slice::from_ref(&input), &config(2), &live, &mut rec, &mut |_| {}).unwrap();
        assert_eq!(summary.progress.posts, POSTS);
        assert_eq!(rec.posts.len() as u64, POSTS, "no post lost or doubled");
        assert_eq!(summary.match_stats.posts, POSTS, "every worker reported its statistics");
        let matched: u64 = summary.match_stats.feeds.values().map(|f| f.matched).sum();
        assert_eq!(matched, rec.posts.iter().map(|p| p.2.len() as u64).sum::<u64>());
        let used: std::collections::BTreeSet<u64> = rec.posts.iter().map(|p| p.1).collect();
        assert!(used.len() >= 3, "several versions were live: {used:?}");

        // Reference: every post matched alone against the fixed feed set of
        // the version it was matched with.
        let compiled: HashMap<u64, Compiled> = rec
            .versions
            .iter()
            .map(|(v, s)| (*v, Compiled::compile(s.clone())))
            .collect();
        let cfg = config(1);
        let mut proc = PostProcessor::new(&cfg);
        let mut matched = 0;
        for (post, got) in Generator::new(&GenConfig {
            posts: POSTS,
            seed: 21,
            ..Default::default()
        })
        .zip(&rec.posts)
        {
            let want = proc.process(post, &compiled[&got.1]);
            assert_eq!(want.post.id, got.0, "same post, same order");
            assert_eq!(
                want.feeds, got.2,
                "post {} matched differently under version {}",
                got.0, got.1
            );
            matched += !got.2.is_empty() as usize;
        }
        assert!(matched > 1000, "the feeds do match posts ({matched})");
    }

    /// Clusters every post into narratives, with the workers' sketches or
    /// without (the watch then sketches itself); records each post's
    /// narrative.
    struct NarrativeSink {
        watch: crate::narratives::NarrativeWatch,
        ask: bool,
        sketched: u64,
        narratives: Vec<Option<u64>>,
    }

    impl RunSink for NarrativeSink {
        fn post(&mut self, m: &MatchedPost) {
            self.watch.post(m);
            self.narratives.push(self.watch.last_narrative().map(|n| n.0));
        }

        fn narrative_sketches(&self) -> Option<NarrativeConfig> {
            self.ask.then(|| self.watch.sketch_config().clone())
        }

        fn post_sketched(&mut self, m: &MatchedPost, sketch: Option<&NarrativeSketch>) {
            self.sketched += u64::from(sketch.is_some());
            self.watch.post_sketched(m, sketch);
            self.narratives.push(self.watch.last_narrative().map(|n| n.0));
        }

        fn window(&mut self, _: &WindowView<'_>) {}
    }

    #[test]
    fn narratives_from_worker_sketches_equal_those_the_sink_makes() {
        let dir = tempfile::tempdir().unwrap();
        let input = write_input(dir.path(), 13);
        let live = LiveFeeds::new(&feed_defs(0, 50)).unwrap();
        let cluster = |ask: bool| {
            let mut sink = NarrativeSink {
                watch: crate::narratives::NarrativeWatch::new(Default::default()).unwrap(),
                ask,
                sketched: 0,
                narratives: Vec::new(),
            };
            run(std::slice::from_ref(&input), &config(2), &live, &mut sink, &mut |_| {}).unwrap();
            sink
        };
        let asked = cluster(true);
        let own = cluster(false);
        assert_eq!(asked.sketched, POSTS, "every post came with its sketch");
        assert_eq!(own.sketched, 0, "no sketch unless asked");
        assert_eq!(asked.narratives, own.narratives);
        let joined = asked.watch.narratives().stats().joined_by_text;
        assert!(joined > 100, "the input has near-duplicates ({joined})");
        assert_eq!(asked.watch.narratives().stats(), own.watch.narratives().stats());
    }

    /// Logs, in order, every closed window, every post with its findings,
    /// the detectors' rows and batch ends: lending the detectors to the run
    /// must not change a line. Fails the run at batch `fail_at` if set.
    struct DetectSink {
        detectors: Option<PostDetectors>,
        lend: bool,
        log: Vec<String>,
        batches: usize,
        fail_at: Option<usize>,
        /// Asks for a checkpoint after every this many batches.
        checkpoint_every: Option<usize>,
        /// Per checkpoint: the posts the sink had seen, and the detectors'
        /// state then (read back from the snapshot).
        checkpoints: Vec<(usize, String)>,
    }

    impl DetectSink {
        fn new(lend: bool) -> DetectSink {
            // Small narratives count, so that the log holds reports.
            let watch = crate::narratives::WatchConfig {
                min_accounts: 2,
                min_posts: 2,
                ..Default::default()
            };
            DetectSink {
                detectors: Some(PostDetectors {
                    narratives: crate::narratives::NarrativeWatch::new(watch).unwrap(),
                    coordination: Some(crate::coordination::CoordinationWatch::new(Default::default()).unwrap()),
                }),
                lend,
                log: Vec::new(),
                batches: 0,
                fail_at: None,
                checkpoint_every: None,
                checkpoints: Vec::new(),
            }
        }

        /// The figures of `d` that do not depend on its maps' capacity.
        fn figures(d: &PostDetectors) -> String {
            let mut n = d.narratives.narratives().stats();
            n.approx_bytes = 0;
            let mut c = d.coordination.as_ref().map(|c| c.stats()).unwrap_or_default();
            c.approx_bytes = 0;
            format!("{n:?} {c:?}")
        }

        fn found(&mut self, m: &MatchedPost, f: &Detected) {
            self.log.push(super::testing::describe(m, f));
        }

        fn rows(&mut self, rows: DetectedRows) {
            self.log
                .push(format!("rows {} {}", rows.narratives.len(), rows.groups.len()));
        }
    }

    impl RunSink for DetectSink {
        fn post(&mut self, _: &MatchedPost) {
            unreachable!("the detectors need the sketches");
        }

        fn narrative_sketches(&self) -> Option<NarrativeConfig> {
            self.detectors.as_ref().map(|d| d.sketch_config().clone())
        }

        fn take_detectors(&mut self) -> Option<PostDetectors> {
            if self.lend {
                self.detectors.take()
            } else {
                None
            }
        }

        fn return_detectors(&mut self, detectors: PostDetectors) {
            self.detectors = Some(detectors);
        }

        fn post_sketched(&mut self, m: &MatchedPost, sketch: Option<&NarrativeSketch>) {
            let d = self.detectors.as_mut().expect("kept when not lent");
            let f = d.post(m, sketch);
            self.found(m, &f);
        }

        fn post_detected(&mut self, m: &MatchedPost, f: &Detected) {
            self.found(m, f);
        }

        fn rows_detected(&mut self, rows: DetectedRows) {
            self.rows(rows);
        }

        fn window(&mut self, w: &WindowView<'_>) {
            self.log.push(format!(
                "window {} {:?} {} {}",
                w.feed(),
                w.resolution(),
                w.start().0,
                w.count()
            ));
        }

        fn batch_end(&mut self, _: &Position, _: &[Position]) -> Result<(), SinkError> {
            if !self.lend {
                let rows = self.detectors.as_mut().expect("kept").take_rows();
                self.rows(rows);
            }
            self.batches += 1;
            self.log.push("batch".into());
            match self.fail_at {
                Some(n) if self.batches == n => Err("full disk".into()),
                _ => Ok(()),
            }
        }

        fn checkpoint_due(&mut self) -> bool {
            self.checkpoint_every.is_some_and(|k| self.batches.is_multiple_of(k))
        }

        fn checkpoint(&mut self, taken: Option<Result<DetectorsSnapshot, StateError>>) -> Result<(), SinkError> {
            let snapshot = match taken {
                Some(taken) => taken?,
                None => DetectorsSnapshot::of(self.detectors.as_ref())?,
            };
            // Through the saved file's format, as a restarted run reads it.
            let mut file = Vec::new();
            let topics = crate::topics::TopicWatch::new(Default::default());
            crate::state::save(1, &Default::default(), &topics, &snapshot, &mut file)?;
            let mut input = file.as_slice();
            crate::state::saved_commit(&mut input)?;
            let state = crate::state::load(input)?;
            let seen = self.log.iter().filter(|l| l.starts_with("post")).count();
            let detectors = state.detectors.ok_or("a snapshot without detectors")?;
            self.checkpoints.push((seen, Self::figures(&detectors)));
            self.log.push("checkpoint".into());
            Ok(())
        }
    }

    #[test]
    fn detectors_lent_to_the_run_find_what_they_find_in_the_sink() {
        let dir = tempfile::tempdir().unwrap();
        let input = write_input(dir.path(), 13);
        let live = LiveFeeds::new(&feed_defs(0, 50)).unwrap();
        let log = |lend: bool, threads: usize| {
            let mut sink = DetectSink::new(lend);
            run(
                std::slice::from_ref(&input),
                &config(threads),
                &live,
                &mut sink,
                &mut |_| {},
            )
            .unwrap();
            let d = sink.detectors.as_ref().expect("given back");
            assert_eq!(d.narratives.narratives().stats().observed, POSTS);
            sink.log
        };
        let inline = log(false, 2);
        let reported = inline
            .iter()
            .filter(|l| l.starts_with("post") && !l.contains("[] [] []"))
            .count();
        assert!(
            reported > 10,
            "the input has reported narratives ({reported} posts with findings)"
        );
        assert!(inline.iter().any(|l| l.starts_with("window")));
        assert_eq!(inline, log(true, 2));
        assert_eq!(inline, log(true, 1));
        assert_eq!(inline, log(true, 3));
    }

    /// A checkpoint of detectors lent to the run holds exactly the posts
    /// the sink has seen when it is taken, like one of detectors the sink
    /// keeps, and taking it changes nothing the run finds.
    #[test]
    fn a_checkpoint_holds_the_detectors_as_of_its_batch() {
        let dir = tempfile::tempdir().unwrap();
        let input = write_input(dir.path(), 13);
        let live = LiveFeeds::new(&feed_defs(0, 50)).unwrap();
        let checkpoints = |lend: bool, every: Option<usize>| {
            let mut sink = DetectSink::new(lend);
            sink.checkpoint_every = every;
            run(std::slice::from_ref(&input), &config(2), &live, &mut sink, &mut |_| {}).unwrap();
            let log: Vec<String> = sink.log.into_iter().filter(|l| l != "checkpoint").collect();
            (log, sink.checkpoints)
        };
        let (plain, none) = checkpoints(true, None);
        assert!(none.is_empty());
        let (kept_log, kept) = checkpoints(false, Some(40));
        let (lent_log, lent) = checkpoints(true, Some(40));
        assert_eq!(kept_log, plain);
        assert_eq!(lent_log, plain);
        // 30,000 posts in batches of 256: 118 batches, a checkpoint asked
        // for after every 40th.
        assert_eq!(kept.len(), 2);
        assert_eq!(lent.len(), 2);
        for ((seen, figures), (kept_seen, kept_figures)) in lent.iter().zip(&kept) {
            assert!(figures.contains(&format!("observed: {seen},")), "{seen}: {figures}");
            assert!(kept_figures.contains(&format!("observed: {kept_seen},")));
            // Lent detectors are one batch ahead: their checkpoint comes a
            // batch later, at the batch the request reached them with.
            assert!(seen > kept_seen, "{seen} {kept_seen}");
        }
    }

    #[test]
    fn a_failing_sink_gets_its_lent_detectors_back() {
        let dir = tempfile::tempdir().unwrap();
        let input = write_input(dir.path(), 13);
        let live = LiveFeeds::new(&feed_defs(0, 50)).unwrap();
        let mut sink = DetectSink::new(true);
        sink.fail_at = Some(3);
        let r = run(std::slice::from_ref(&input), &config(2), &live, &mut sink, &mut |_| {});
        assert_eq!(r.map(|_| ()).map_err(|e| e.to_string()), Err("full disk".to_string()));
        assert_eq!(sink.batches, 3, "nothing after the failed batch reached the sink");
        assert!(sink.detectors.is_some());
    }

    #[test]
    fn series_do_not_depend_on_threads_or_how_the_input_is_split() {
        let dir = tempfile::tempdir().unwrap();
        let input = write_input(dir.path(), 8);
        let defs = feed_defs(0, 300);
        let series = |threads: usize, paths: &[PathBuf]| {
            let live = Arc::new(LiveFeeds::new(&defs).unwrap());
            let mut rec = recorder(live.clone());
            run(paths, &config(threads), &live, &mut rec, &mut |_| {}).unwrap();
            rec.windows
        };
        let one = series(1, std::slice::from_ref(&input));
        assert!(one.len() > 1000, "{} windows", one.len());
        assert_eq!(one, series(3, std::slice::from_ref(&input)));
        // The same stream cut into two files.
        let text = std::fs::read_to_string(&input).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let (a, b) = lines.split_at(lines.len() / 3);
        let pa = dir.path().join("a.jsonl");
        let pb = dir.path().join("b.jsonl");
        std::fs::write(&pa, a.join("\n")).unwrap();
        std::fs::write(&pb, b.join("\n")).unwrap();
        assert_eq!(one, series(2, &[pa, pb]));
    }
}
