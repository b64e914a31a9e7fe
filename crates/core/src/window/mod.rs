//! Event-time windows per feed: per-minute aggregates, closed by a
//! watermark, rolled up into hours and days.
//!
//! The idea: every post, in stream order, is added to the open minute
//! window `[t, t + 60 s)` of each feed it matched, where `t` is its own
//! `created_at` floored to the minute. The **watermark** is the newest event
//! time seen so far minus an allowed lateness (default 5 minutes); a window
//! closes once the watermark reaches its end, and is then handed to a
//! [`WindowSink`] exactly once. Closing depends only on the sequence of
//! posts, never on the wall clock, so replaying a 2014 archive at full speed
//! emits the same series as watching it live, and feeding the posts in one
//! call or in many gives the same output.
//!
//! - **Late posts**: a post whose minute has already closed is counted in the
//!   global and per-feed `late` metrics and otherwise ignored; closed windows
//!   never change.
//! - **Undated posts** (no `created_at`) are counted in `undated` metrics and
//!   not windowed: placing them by arrival time would make the series depend
//!   on the wall clock. They do not move the watermark.
//! - **Roll-ups**: a closing minute is merged into its feed's open hour, a
//!   closing hour into its open day (counts and sums add, sketches merge).
//!   Hours and days close by the same watermark and are emitted too.
//! - **Order**: windows are emitted by end time, then resolution (a minute
//!   before the hour that ends with it), then feed id.
//! - **Memory**: only open windows are kept, and only for feeds that matched
//!   something in them (sparse). Open minutes lie within `lateness + 2 min`
//!   of the newest event, so a feed has at most `lateness / 1 min + 2` open
//!   minutes, one open hour and one open day. A post dated far in the future
//!   moves the watermark with it and makes everything older late; that is
//!   the price of a watermark and is visible in the `late` metric.
//! - **Exact and estimated**: count, sentiment sums, positive/negative and
//!   language counts are exact for every (feed, minute). The hashtag, term
//!   and domain sketches are exact (Misra–Gries, see [`HeavyHitters`]) for
//!   the first [`WindowConfig::exact_sketch_posts`] posts `S` of a minute
//!   window (default 32); after that the window **samples**: its `n`-th post
//!   has level `L` for `S·2^(L-1) < n <= S·2^L` (0 for `n <= S`) and
//!   updates the sketches only if a hash of
//!   (post content, feed id) has `L` leading zero bits (probability
//!   `2^-L`), with weight `2^L`. The level depends only on the position in
//!   the window and the selection only on the post and the feed, so
//!   each key's weighted count is an unbiased estimate of its true count
//!   (before Misra–Gries' lower-bound deficit), and the output depends only
//!   on the input sequence (chunked or one-shot, live or replayed in the
//!   same order). A window of `N > S` posts sketches about
//!   `S·(1 + log2(N/S)/2)` of them (128 of 2,000 for `S = 32`), so the cost
//!   per (post, feed) falls as windows grow. Accuracy: the variance of a key
//!   with true count `f = φN` is `Σ (2^L - 1)` over its posts; since
//!   `2^L <= 2n/S` the relative standard error is at most `sqrt(2/(S·φ))`,
//!   and about `sqrt(2/(3·S·φ))` for a key spread over the minute (±27%
//!   for a key in 30% of posts at `S = 32`, ±47% at 10%: ranks are
//!   reliable, counts approximate); a key with share `φ` is missed entirely with
//!   probability about `(1 - φ)^(S·(1 + log2(N/S)/2))` (< 10⁻⁵ for φ = 10%,
//!   N ≥ 2S). Keys that stay in the top ranks are therefore found; their
//!   counts, and the sketches' `total`, are estimates, not lower bounds,
//!   once a window sampled. Roll-ups merge the weighted sketches as before.
//!   Set `exact_sketch_posts = usize::MAX` to count every post exactly.
//! - **Cost**: per post, keys (hashtags, domains, terms) are interned once to
//!   `u32` ids, deduplicated, and capped ([`WindowConfig`]), and the post's
//!   content is hashed once. Per matched feed the update adds to a small
//!   inline record of the feed's open minute (count, sums, two language
//!   slots), and, when sampled, one short scan of a small id array per key
//!   ([`HeavyHitters::add_ids`]: one vector compare per 16 ids where the
//!   CPU has AVX-512, per 4 ids elsewhere), so terms dominate. A closing window is merged into its parent in time
//!   linear in the two sketches ([`HeavyHitters::merge_ids`]). Closed
//!   windows are lent to the sink as a [`WindowView`] that resolves strings
//!   only when asked. Interned strings no longer referenced by an open
//!   window are collected once the table has doubled since the last
//!   collection. To use more cores, shard feeds over
//!   several `FeedWindows` and give every shard every post (with an empty
//!   feed list where it matched none): the watermark, hence the output,
//!   stays the same.
//!
//! Feed ids are the matcher's dense `u32` indices; state grows to the
//! largest id seen. Call [`FeedWindows::observe`] for every post, including
//! those that matched no feed, so that the watermark keeps moving.

mod sketch;
mod stats;

pub use sketch::{BadSummary, Estimate, HeavyHitters};
pub use stats::{push_csv_field, ClosedWindow, Ranked, Resolution, WindowRow, WindowStats, POSITIVE_THRESHOLD};

use crate::post::Post;
use crate::prefetch::{prefetch, prefetch_value};
use crate::time::Timestamp;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};

/// The language key for posts without a language.
pub const UNKNOWN_LANG: &str = "und";

/// The fields of one post that windows aggregate.
#[derive(Clone, Copy, Debug)]
pub struct WindowInput<'a> {
    /// Event time; `None` counts as undated.
    pub created_at: Option<Timestamp>,
    /// VADER compound in [-1, 1] (clamped; NaN counts as 0).
    pub compound: f64,
    pub lang: Option<&'a str>,
    pub hashtags: &'a [String],
    pub domains: &'a [String],
    /// The post's words for "top terms", as the caller wants them counted
    /// (typically normalised, stop words removed). Only the first
    /// [`WindowConfig::max_terms_per_post`] distinct ones are used.
    pub terms: &'a [&'a str],
}

impl<'a> WindowInput<'a> {
    /// The input for an enriched post (compound 0 and no entities if the
    /// post was not enriched).
    pub fn from_post(post: &'a Post, terms: &'a [&'a str]) -> Self {
        let (hashtags, domains): (&[String], &[String]) = match &post.entities {
            Some(e) => (&e.hashtags, &e.domains),
            None => (&[], &[]),
        };
        WindowInput {
            created_at: post.created_at,
            compound: post.sentiment.map_or(0.0, |s| s.compound),
            lang: post.lang.as_deref(),
            hashtags,
            domains,
            terms,
        }
    }
}

/// Settings of [`FeedWindows`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowConfig {
    /// How far behind the newest event time the watermark trails, in ms.
    pub allowed_lateness_ms: i64,
    /// Counters per hashtag / term / domain sketch.
    pub sketch_capacity: usize,
    /// Counters of the language sketch.
    pub lang_capacity: usize,
    /// Distinct hashtags of one post that are counted (the first ones).
    pub max_hashtags_per_post: usize,
    /// Distinct link domains of one post that are counted.
    pub max_domains_per_post: usize,
    /// Distinct terms of one post that are counted. Terms dominate the cost
    /// of a sketch update, one short scan per term.
    pub max_terms_per_post: usize,
    /// Posts of a minute window whose hashtags, terms and domains are all
    /// counted; beyond that the window samples (see the module docs).
    /// `usize::MAX` counts every post exactly (the slow, exact mode).
    #[serde(default = "default_exact_sketch_posts")]
    pub exact_sketch_posts: usize,
}

fn default_exact_sketch_posts() -> usize {
    32
}

impl Default for WindowConfig {
    fn default() -> Self {
        WindowConfig {
            allowed_lateness_ms: 5 * Timestamp::MINUTE,
            sketch_capacity: 64,
            lang_capacity: 32,
            max_hashtags_per_post: 8,
            max_domains_per_post: 4,
            max_terms_per_post: 8,
            exact_sketch_posts: default_exact_sketch_posts(),
        }
    }
}

/// Receives closed windows, in emission order.
///
/// The window is lent as a [`WindowView`] over the internal state, so a
/// sink pays only for what it reads: a CSV writer resolves the top `k` keys,
/// a spike detector may read the count alone. [`WindowView::to_closed`]
/// makes an owned, serialisable [`ClosedWindow`] (the `Vec` sink does).
pub trait WindowSink {
    fn closed(&mut self, window: &WindowView<'_>);
}

impl WindowSink for Vec<ClosedWindow> {
    fn closed(&mut self, window: &WindowView<'_>) {
        self.push(window.to_closed());
    }
}

/// A sink that calls a closure.
pub struct SinkFn<F>(pub F);

impl<F: FnMut(&WindowView<'_>)> WindowSink for SinkFn<F> {
    fn closed(&mut self, window: &WindowView<'_>) {
        (self.0)(window);
    }
}

/// A closed window, lent to a [`WindowSink`]; keys are resolved to strings
/// only when asked for.
#[derive(Clone, Copy)]
pub struct WindowView<'a> {
    feed: u32,
    resolution: Resolution,
    start: Timestamp,
    stats: &'a OpenStats,
    strings: &'a [Box<str>],
}

impl<'a> WindowView<'a> {
    pub fn feed(&self) -> u32 {
        self.feed
    }

    pub fn resolution(&self) -> Resolution {
        self.resolution
    }

    /// Inclusive start.
    pub fn start(&self) -> Timestamp {
        self.start
    }

    /// Exclusive end.
    pub fn end(&self) -> Timestamp {
        Timestamp(self.start.0.saturating_add(self.resolution.millis()))
    }

    /// Posts in the window.
    pub fn count(&self) -> u64 {
        self.stats.count
    }

    /// Sum of compound scores in millionths.
    pub fn compound_micros(&self) -> i64 {
        self.stats.compound_micros
    }

    /// Posts with compound >= 0.05 and <= -0.05.
    pub fn positive_negative(&self) -> (u64, u64) {
        (self.stats.positive, self.stats.negative)
    }

    /// The `k` most frequent languages, count descending then key ascending.
    pub fn top_langs(&self, k: usize) -> Vec<(&'a str, u64)> {
        self.top(&self.stats.langs, k)
    }

    /// The `k` most frequent hashtags (lower-bound counts).
    pub fn top_hashtags(&self, k: usize) -> Vec<(&'a str, u64)> {
        self.top(&self.stats.hashtags, k)
    }

    /// The `k` most frequent terms (lower-bound counts).
    pub fn top_terms(&self, k: usize) -> Vec<(&'a str, u64)> {
        self.top(&self.stats.terms, k)
    }

    /// The `k` most frequent link domains (lower-bound counts).
    pub fn top_domains(&self, k: usize) -> Vec<(&'a str, u64)> {
        self.top(&self.stats.domains, k)
    }

    fn name(&self, id: u32) -> &'a str {
        self.strings.get(id as usize).map_or("", |s| &**s)
    }

    fn top(&self, h: &HeavyHitters<u32>, k: usize) -> Vec<(&'a str, u64)> {
        // Select the `k` first in linear time, then sort only those (the
        // order is total: keys are distinct), instead of sorting a whole
        // sketch for a top 5 or 10.
        let by_rank = |a: &(&str, u64), b: &(&str, u64)| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0));
        let mut all: Vec<(&'a str, u64)> = h.iter().map(|(id, c)| (self.name(*id), c)).collect();
        if k == 0 {
            return Vec::new();
        }
        if k < all.len() {
            all.select_nth_unstable_by(k - 1, by_rank);
            all.truncate(k);
        }
        all.sort_unstable_by(by_rank);
        all
    }

    /// The flat row with the `k` top keys of each sketch.
    pub fn row(&self, k: usize) -> WindowRow {
        let ranked = |v: Vec<(&str, u64)>| {
            v.into_iter()
                .map(|(key, count)| Ranked {
                    key: key.to_string(),
                    count,
                })
                .collect()
        };
        let (pos, neg) = self.positive_negative();
        let share = |x: u64| {
            if self.count() == 0 {
                0.0
            } else {
                x as f64 / self.count() as f64
            }
        };
        WindowRow {
            feed: self.feed,
            resolution: self.resolution,
            start: self.start,
            count: self.count(),
            mean_compound: if self.count() == 0 {
                0.0
            } else {
                self.compound_micros() as f64 / 1e6 / self.count() as f64
            },
            share_pos: share(pos),
            share_neg: share(neg),
            langs: ranked(self.top_langs(k)),
            top_hashtags: ranked(self.top_hashtags(k)),
            top_terms: ranked(self.top_terms(k)),
            top_domains: ranked(self.top_domains(k)),
        }
    }

    /// An owned copy with the full sketches, keys as strings.
    pub fn to_closed(&self) -> ClosedWindow {
        let st = self.stats;
        let name = |id: &u32| self.name(*id).to_string();
        ClosedWindow {
            feed: self.feed,
            resolution: self.resolution,
            start: self.start,
            stats: WindowStats {
                count: st.count,
                compound_micros: st.compound_micros,
                positive: st.positive,
                negative: st.negative,
                langs: st.langs.map_keys(name),
                hashtags: st.hashtags.map_keys(name),
                terms: st.terms.map_keys(name),
                domains: st.domains.map_keys(name),
            },
        }
    }
}

/// Stream-wide counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowMetrics {
    /// Posts observed (dated, undated and late).
    pub posts: u64,
    /// Posts without `created_at`.
    pub undated: u64,
    /// Posts whose minute had already closed.
    pub late: u64,
    /// Windows emitted (minutes, hours and days).
    pub emitted: u64,
    /// Minute windows currently open, over all feeds.
    pub open_minutes: u64,
}

/// Per-feed counters (matched posts only).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedMetrics {
    pub late: u64,
    pub undated: u64,
}

impl ClosedWindow {
    /// Calls `f` with a [`WindowView`] of this window, as [`FeedWindows`]
    /// would have emitted it: for consumers of views (spike alerts, their
    /// explanations) fed with windows made elsewhere, such as the merged
    /// partial windows of a cluster's partitions.
    pub fn with_view<R>(&self, f: impl FnOnce(&WindowView<'_>) -> R) -> R {
        let mut strings: Vec<Box<str>> = Vec::new();
        let mut ids: FxHashMap<String, u32> = FxHashMap::default();
        let mut intern = |h: &HeavyHitters<String>| {
            h.map_keys(|k| {
                *ids.entry(k.clone()).or_insert_with(|| {
                    strings.push(k.as_str().into());
                    (strings.len() - 1) as u32
                })
            })
        };
        let st = &self.stats;
        let stats = OpenStats {
            count: st.count,
            compound_micros: st.compound_micros,
            positive: st.positive,
            negative: st.negative,
            langs: intern(&st.langs),
            hashtags: intern(&st.hashtags),
            terms: intern(&st.terms),
            domains: intern(&st.domains),
        };
        f(&WindowView {
            feed: self.feed,
            resolution: self.resolution,
            start: self.start,
            stats: &stats,
            strings: &strings,
        })
    }
}

/// Aggregates with interned keys, while a window is open.
#[derive(Clone, Debug)]
struct OpenStats {
    count: u64,
    compound_micros: i64,
    positive: u64,
    negative: u64,
    langs: HeavyHitters<u32>,
    hashtags: HeavyHitters<u32>,
    terms: HeavyHitters<u32>,
    domains: HeavyHitters<u32>,
}

impl OpenStats {
    fn new(cfg: &WindowConfig) -> Self {
        OpenStats {
            count: 0,
            compound_micros: 0,
            positive: 0,
            negative: 0,
            langs: HeavyHitters::new(cfg.lang_capacity),
            hashtags: HeavyHitters::new(cfg.sketch_capacity),
            terms: HeavyHitters::new(cfg.sketch_capacity),
            domains: HeavyHitters::new(cfg.sketch_capacity),
        }
    }

    fn clear(&mut self) {
        self.count = 0;
        self.compound_micros = 0;
        self.positive = 0;
        self.negative = 0;
        self.langs.clear();
        self.hashtags.clear();
        self.terms.clear();
        self.domains.clear();
    }

    fn merge(&mut self, o: &OpenStats) {
        self.count = self.count.saturating_add(o.count);
        self.compound_micros = self.compound_micros.saturating_add(o.compound_micros);
        self.positive = self.positive.saturating_add(o.positive);
        self.negative = self.negative.saturating_add(o.negative);
        self.langs.merge_ids(&o.langs);
        self.hashtags.merge_ids(&o.hashtags);
        self.terms.merge_ids(&o.terms);
        self.domains.merge_ids(&o.domains);
    }

    fn sketches_mut(&mut self) -> [&mut HeavyHitters<u32>; 4] {
        [&mut self.langs, &mut self.hashtags, &mut self.terms, &mut self.domains]
    }

    fn sketches(&self) -> [&HeavyHitters<u32>; 4] {
        [&self.langs, &self.hashtags, &self.terms, &self.domains]
    }
}

/// An open window of one feed (boxed, so moving it around is cheap).
#[derive(Clone, Debug)]
struct OpenWindow {
    start: i64,
    stats: OpenStats,
}

/// An open minute of one feed. The fields every (post, feed) update
/// touches sit inline, so an update that is not sampled for the sketches
/// reads one small record; the sketches live behind `cold` and are filled
/// in with the inline fields when the minute closes.
#[derive(Debug)]
struct MinuteSlot {
    start: i64,
    count: u64,
    compound_micros: i64,
    positive: u64,
    negative: u64,
    /// The first two languages seen with their exact counts (count 0 =
    /// free); a third language goes straight to the language sketch.
    langs: [(u32, u64); 2],
    cold: Box<OpenWindow>,
}

impl MinuteSlot {
    fn add_lang(&mut self, lang: u32) {
        for slot in &mut self.langs {
            if slot.1 == 0 {
                *slot = (lang, 1);
                return;
            }
            if slot.0 == lang {
                slot.1 += 1;
                return;
            }
        }
        self.cold.stats.langs.insert(&lang);
    }

    /// The closed minute as one window with all its aggregates.
    fn into_window(self) -> Box<OpenWindow> {
        let mut w = self.cold;
        let st = &mut w.stats;
        st.count = self.count;
        st.compound_micros = self.compound_micros;
        st.positive = self.positive;
        st.negative = self.negative;
        for (id, c) in self.langs {
            st.langs.add(&id, c);
        }
        w
    }
}

/// The sampling level of the `n`-th post (1-based) of a window that counts
/// its first `exact` posts fully: 0 up to `exact`, then `L` for posts
/// `exact * 2^(L-1) < n <= exact * 2^L` (capped at 32).
fn sample_level(n: u64, exact: u64) -> u32 {
    if n <= exact {
        0
    } else {
        (64 - ((n - 1) / exact).leading_zeros()).min(32)
    }
}

/// A well-mixed 64-bit hash of (post, feed) (the SplitMix64 finaliser).
fn mix(post: u64, feed: u32) -> u64 {
    let mut z = post ^ u64::from(feed).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A hash of a post's content (time, score, language and keys), the same
/// whichever position the post has in the stream.
fn content_hash(post: &WindowInput<'_>, micros: i64) -> u64 {
    const K: u64 = 0x517C_C1B7_2722_0A95;
    let mut h: u64 = 0;
    let mut word = |w: u64| h = (h.rotate_left(5) ^ w).wrapping_mul(K);
    word(post.created_at.map_or(0, |t| t.0 as u64));
    word(micros as u64);
    let mut bytes = |s: &str| {
        for chunk in s.as_bytes().chunks(8) {
            let mut buf = [0u8; 8];
            buf[..chunk.len()].copy_from_slice(chunk);
            word(u64::from_le_bytes(buf));
        }
        word(0xFF);
    };
    bytes(post.lang.unwrap_or(UNKNOWN_LANG));
    for k in post.hashtags.iter().chain(post.domains) {
        bytes(k);
    }
    for k in post.terms {
        bytes(k);
    }
    h
}

/// One feed's open windows.
// `repr(C)`: `newest` and the deque's header come first, on the line the
// per-post loop prefetches.
#[repr(C)]
#[derive(Debug, Default)]
struct FeedState {
    /// The start of `minutes.back()` when there is one (meaningless when
    /// `minutes` is empty). Most posts fall in their feeds' newest minute;
    /// this copy lets the per-post check read the state it has already
    /// loaded instead of waiting for the deque's buffer, another cache
    /// miss per (post, feed) that the slot's prefetch could not overlap.
    newest: i64,
    /// Open minutes, sorted by start.
    minutes: VecDeque<MinuteSlot>,
    hour: Option<Box<OpenWindow>>,
    day: Option<Box<OpenWindow>>,
    metrics: FeedMetrics,
}

impl FeedState {
    /// Sets `newest` after `minutes` changed.
    fn note_newest(&mut self) {
        if let Some(w) = self.minutes.back() {
            self.newest = w.start;
        }
    }
}

/// Strings to dense ids, so open sketches hold 4-byte keys.
#[derive(Debug, Default)]
struct Interner {
    ids: FxHashMap<Box<str>, u32>,
    strings: Vec<Box<str>>,
}

impl Interner {
    fn intern(&mut self, s: &str) -> u32 {
        if let Some(&id) = self.ids.get(s) {
            return id;
        }
        let id = self.strings.len() as u32;
        self.strings.push(s.into());
        self.ids.insert(s.into(), id);
        id
    }
}

/// Collect unused interned strings once the table holds at least this many.
const MIN_GC_THRESHOLD: usize = 1 << 16;

/// Per-feed event-time windows over a stream of matched posts.
#[derive(Debug)]
pub struct FeedWindows {
    cfg: WindowConfig,
    feeds: Vec<FeedState>,
    /// Windows to close, by (end, resolution), with the feeds holding one.
    pending: BTreeMap<(i64, Resolution), Vec<u32>>,
    newest: Option<i64>,
    /// Set by `flush`: everything is closed, later posts are late.
    flushed: bool,
    metrics: WindowMetrics,
    interner: Interner,
    gc_threshold: usize,
    /// How many times unused strings were collected.
    collections: u64,
    /// Cleared stats kept for reuse, so steady state allocates little.
    // Boxed on purpose: boxes move between the pool and the open windows
    // without reallocating.
    #[allow(clippy::vec_box)]
    spare: Vec<Box<OpenWindow>>,
    // Per-post scratch: the post's interned, deduplicated keys.
    scratch_hashtags: Vec<u32>,
    scratch_domains: Vec<u32>,
    scratch_terms: Vec<u32>,
    // Per-post scratch: each matched feed's open-minute index, and the
    // (feed, index, weight) of those sampled for the sketches.
    scratch_slots: Vec<usize>,
    scratch_sampled: Vec<(u32, usize, u64)>,
}

impl Default for FeedWindows {
    fn default() -> Self {
        FeedWindows::new(WindowConfig::default())
    }
}

impl FeedWindows {
    /// Windows with the given settings (a negative lateness counts as 0).
    pub fn new(mut cfg: WindowConfig) -> Self {
        cfg.allowed_lateness_ms = cfg.allowed_lateness_ms.max(0);
        FeedWindows {
            cfg,
            feeds: Vec::new(),
            pending: BTreeMap::new(),
            newest: None,
            flushed: false,
            metrics: WindowMetrics::default(),
            interner: Interner::default(),
            gc_threshold: MIN_GC_THRESHOLD,
            collections: 0,
            spare: Vec::new(),
            scratch_hashtags: Vec::new(),
            scratch_domains: Vec::new(),
            scratch_terms: Vec::new(),
            scratch_slots: Vec::new(),
            scratch_sampled: Vec::new(),
        }
    }

    pub fn config(&self) -> &WindowConfig {
        &self.cfg
    }

    /// The current watermark: newest event time minus the allowed lateness
    /// (`None` before the first dated post).
    pub fn watermark(&self) -> Option<Timestamp> {
        if self.flushed {
            return Some(Timestamp(i64::MAX));
        }
        self.newest
            .map(|n| Timestamp(n.saturating_sub(self.cfg.allowed_lateness_ms)))
    }

    pub fn metrics(&self) -> WindowMetrics {
        self.metrics
    }

    /// Counters of one feed (zero for a feed never seen).
    pub fn feed_metrics(&self, feed: u32) -> FeedMetrics {
        self.feeds
            .get(feed as usize)
            .map_or_else(FeedMetrics::default, |f| f.metrics)
    }

    /// Adds one post that matched `feeds` (possibly none), closing and
    /// emitting the windows its event time moves the watermark past.
    /// `feeds` holds distinct ids, as the matcher reports them (a repeated id
    /// counts the post again).
    pub fn observe<S: WindowSink + ?Sized>(&mut self, post: &WindowInput<'_>, feeds: &[u32], sink: &mut S) {
        self.metrics.posts += 1;
        let Some(t) = post.created_at.map(|t| t.0) else {
            self.metrics.undated += 1;
            for &f in feeds {
                self.feed(f).metrics.undated += 1;
            }
            return;
        };
        if !self.flushed && !matches!(self.newest, Some(n) if t <= n) {
            self.newest = Some(t);
            let w = t.saturating_sub(self.cfg.allowed_lateness_ms);
            self.close_until(w, sink);
        }
        let minute = t.div_euclid(Timestamp::MINUTE) * Timestamp::MINUTE;
        let closed = self.flushed
            || self
                .watermark()
                .is_some_and(|w| minute.saturating_add(Timestamp::MINUTE) <= w.0);
        if closed {
            self.metrics.late += 1;
            for &f in feeds {
                self.feed(f).metrics.late += 1;
            }
            return;
        }
        if feeds.is_empty() {
            return;
        }
        self.intern_post(post);

        let compound = if post.compound.is_nan() {
            0.0
        } else {
            post.compound.clamp(-1.0, 1.0)
        };
        let micros = (compound * 1e6).round() as i64;
        let positive = u64::from(compound >= POSITIVE_THRESHOLD);
        let negative = u64::from(compound <= -POSITIVE_THRESHOLD);
        let lang = self.interner.intern(post.lang.unwrap_or(UNKNOWN_LANG));
        let post_hash = content_hash(post, micros);
        let exact = self.cfg.exact_sketch_posts.max(1) as u64;

        // Borrow the scratch keys apart from `self` for the loop.
        let hashtags = std::mem::take(&mut self.scratch_hashtags);
        let domains = std::mem::take(&mut self.scratch_domains);
        let terms = std::mem::take(&mut self.scratch_terms);
        let mut slots = std::mem::take(&mut self.scratch_slots);
        let mut sampled = std::mem::take(&mut self.scratch_sampled);
        let has_keys = !(hashtags.is_empty() && domains.is_empty() && terms.is_empty());

        // The per-(post, feed) work is dominated by cache misses on state
        // spread over all feeds, so it runs in passes over the post's feeds,
        // each pass prefetching what the next one reads: the misses of
        // different feeds then overlap instead of queueing one after the
        // other. The updates themselves happen in the original order.
        if let Some(&max) = feeds.iter().max() {
            self.feed(max);
        }
        for &f in feeds {
            // What the next pass reads: `newest` and the deque's header.
            let state = &self.feeds[f as usize];
            prefetch(&state.newest);
            prefetch_value(&state.minutes);
        }
        slots.clear();
        for &f in feeds {
            let idx = self.minute_index(f, minute);
            prefetch_value(&self.feeds[f as usize].minutes[idx]);
            slots.push(idx);
        }
        sampled.clear();
        for (&f, &idx) in feeds.iter().zip(&slots) {
            let slot = &mut self.feeds[f as usize].minutes[idx];
            slot.count += 1;
            slot.compound_micros = slot.compound_micros.saturating_add(micros);
            slot.positive += positive;
            slot.negative += negative;
            slot.add_lang(lang);
            if !has_keys {
                continue;
            }
            // Sketches: every post while the window is small, then a
            // deterministic sample at rate 2^-level, weighted 2^level.
            let level = sample_level(slot.count, exact);
            if level > 0 && mix(post_hash, f).leading_zeros() < level {
                continue;
            }
            prefetch_value(&*slot.cold);
            sampled.push((f, idx, 1u64 << level));
        }
        for &(f, idx, _) in &sampled {
            let stats = &self.feeds[f as usize].minutes[idx].cold.stats;
            if !hashtags.is_empty() {
                stats.hashtags.prefetch();
            }
            if !domains.is_empty() {
                stats.domains.prefetch();
            }
            if !terms.is_empty() {
                stats.terms.prefetch();
            }
        }
        for &(f, idx, weight) in &sampled {
            let stats = &mut self.feeds[f as usize].minutes[idx].cold.stats;
            stats.hashtags.add_ids(&hashtags, weight);
            stats.domains.add_ids(&domains, weight);
            stats.terms.add_ids(&terms, weight);
        }
        self.scratch_hashtags = hashtags;
        self.scratch_domains = domains;
        self.scratch_terms = terms;
        self.scratch_slots = slots;
        self.scratch_sampled = sampled;
    }

    /// Adds many posts in order; the same as calling
    /// [`observe`](Self::observe) for each.
    pub fn observe_all<'a, I, S>(&mut self, posts: I, sink: &mut S)
    where
        I: IntoIterator<Item = (WindowInput<'a>, &'a [u32])>,
        S: WindowSink + ?Sized,
    {
        for (post, feeds) in posts {
            self.observe(&post, feeds, sink);
        }
    }

    /// End of stream: closes and emits every open window. Posts observed
    /// afterwards are counted as late.
    pub fn flush<S: WindowSink + ?Sized>(&mut self, sink: &mut S) {
        self.close_until(i64::MAX, sink);
        self.flushed = true;
    }

    fn feed(&mut self, f: u32) -> &mut FeedState {
        let i = f as usize;
        if i >= self.feeds.len() {
            self.feeds.resize_with(i + 1, FeedState::default);
        }
        &mut self.feeds[i]
    }

    /// Interns the post's keys into the scratch vectors, deduplicated and
    /// capped, in first-occurrence order.
    fn intern_post(&mut self, post: &WindowInput<'_>) {
        fn fill<'s>(interner: &mut Interner, out: &mut Vec<u32>, keys: impl Iterator<Item = &'s str>, cap: usize) {
            out.clear();
            for k in keys {
                if out.len() >= cap {
                    break;
                }
                let id = interner.intern(k);
                if !out.contains(&id) {
                    out.push(id);
                }
            }
        }
        let cfg = &self.cfg;
        fill(
            &mut self.interner,
            &mut self.scratch_hashtags,
            post.hashtags.iter().map(String::as_str),
            cfg.max_hashtags_per_post,
        );
        fill(
            &mut self.interner,
            &mut self.scratch_domains,
            post.domains.iter().map(String::as_str),
            cfg.max_domains_per_post,
        );
        fill(
            &mut self.interner,
            &mut self.scratch_terms,
            post.terms.iter().copied(),
            cfg.max_terms_per_post,
        );
    }

    /// The index in `feeds[f].minutes` of feed `f`'s open minute starting at
    /// `minute`, created (and scheduled for closing) if needed. The minute
    /// is known to be open.
    #[inline]
    fn minute_index(&mut self, f: u32, minute: i64) -> usize {
        // Most posts fall in the feed's newest open minute: that check is
        // inlined into the per-feed loop, the rest is a call.
        if let Some(state) = self.feeds.get(f as usize) {
            if state.newest == minute && !state.minutes.is_empty() {
                return state.minutes.len() - 1;
            }
        }
        self.open_minute_index(f, minute)
    }

    /// [`minute_index`](Self::minute_index) off its fast path: an older
    /// open minute, or a new one.
    #[cold]
    #[inline(never)]
    fn open_minute_index(&mut self, f: u32, minute: i64) -> usize {
        let i = f as usize;
        if i >= self.feeds.len() {
            self.feeds.resize_with(i + 1, FeedState::default);
        }
        let minutes = &self.feeds[i].minutes;
        let pos = minutes.iter().rposition(|w| w.start <= minute);
        match pos {
            Some(p) if minutes[p].start == minute => p,
            _ => {
                let at = pos.map_or(0, |p| p + 1);
                let mut cold = self.spare.pop().unwrap_or_else(|| {
                    Box::new(OpenWindow {
                        start: minute,
                        stats: OpenStats::new(&self.cfg),
                    })
                });
                cold.start = minute;
                let fresh = MinuteSlot {
                    start: minute,
                    count: 0,
                    compound_micros: 0,
                    positive: 0,
                    negative: 0,
                    langs: [(0, 0); 2],
                    cold,
                };
                let state = &mut self.feeds[i];
                state.minutes.insert(at, fresh);
                state.note_newest();
                self.metrics.open_minutes += 1;
                let end = minute.saturating_add(Timestamp::MINUTE);
                self.pending.entry((end, Resolution::Minute)).or_default().push(f);
                at
            }
        }
    }

    /// Closes, in order, every window whose end is at or before `w`.
    fn close_until<S: WindowSink + ?Sized>(&mut self, w: i64, sink: &mut S) {
        let mut closed_any = false;
        while let Some(entry) = self.pending.first_entry() {
            let (end, res) = *entry.key();
            if end > w {
                break;
            }
            let mut feeds = entry.remove();
            feeds.sort_unstable();
            feeds.dedup();
            for f in feeds {
                self.close_one(f, res, end, sink);
            }
            closed_any = true;
        }
        if closed_any && self.interner.strings.len() >= self.gc_threshold {
            self.collect_strings();
        }
    }

    /// Closes feed `f`'s window of resolution `res` ending at `end`, rolls
    /// it into the next resolution, and emits it.
    fn close_one<S: WindowSink + ?Sized>(&mut self, f: u32, res: Resolution, end: i64, sink: &mut S) {
        let Some(state) = self.feeds.get_mut(f as usize) else {
            return;
        };
        let taken = match res {
            Resolution::Minute => {
                let start = end.saturating_sub(Timestamp::MINUTE);
                // By the closing order it is the front one; search anyway.
                match state.minutes.iter().position(|w| w.start == start) {
                    Some(p) => {
                        self.metrics.open_minutes = self.metrics.open_minutes.saturating_sub(1);
                        let window = state.minutes.remove(p).map(MinuteSlot::into_window);
                        state.note_newest();
                        window
                    }
                    None => None,
                }
            }
            Resolution::Hour => state.hour.take(),
            Resolution::Day => state.day.take(),
        };
        let Some(window) = taken else {
            return;
        };
        let start = window.start;
        sink.closed(&WindowView {
            feed: f,
            resolution: res,
            start: Timestamp(start),
            stats: &window.stats,
            strings: &self.interner.strings,
        });
        self.metrics.emitted += 1;

        let parent = match res {
            Resolution::Minute => Some((Resolution::Hour, Timestamp::HOUR, &mut state.hour)),
            Resolution::Hour => Some((Resolution::Day, Timestamp::DAY, &mut state.day)),
            Resolution::Day => None,
        };
        let mut recycled = Some(window);
        if let Some((pres, len, slot)) = parent {
            let pstart = start.div_euclid(len) * len;
            match slot {
                Some(p) if p.start == pstart => {
                    if let Some(w) = &recycled {
                        p.stats.merge(&w.stats);
                    }
                }
                _ => {
                    // The first child of its parent becomes the parent. (By
                    // the closing order the slot is empty here.)
                    if let Some(mut w) = recycled.take() {
                        w.start = pstart;
                        *slot = Some(w);
                    }
                    self.pending
                        .entry((pstart.saturating_add(len), pres))
                        .or_default()
                        .push(f);
                }
            }
        }
        if let Some(mut w) = recycled {
            w.stats.clear();
            // Keep a pool of cleared windows for reuse, about one event
            // minute's turnover (one per feed).
            if self.spare.len() < self.feeds.len().max(1024) {
                self.spare.push(w);
            }
        }
    }

    /// Drops interned strings no open window refers to, renumbering the
    /// rest in their old order (so output never depends on when this runs).
    fn collect_strings(&mut self) {
        let n = self.interner.strings.len();
        let mut live = vec![false; n];
        let each_open = |feeds: &[FeedState], f: &mut dyn FnMut(&OpenStats)| {
            for st in feeds {
                let minutes = st.minutes.iter().map(|m| &m.cold);
                for w in minutes.chain(st.hour.iter()).chain(st.day.iter()) {
                    f(&w.stats);
                }
            }
        };
        for st in &self.feeds {
            for m in &st.minutes {
                for (id, c) in m.langs {
                    if let Some(l) = live.get_mut(id as usize).filter(|_| c > 0) {
                        *l = true;
                    }
                }
            }
        }
        each_open(&self.feeds, &mut |s| {
            for h in s.sketches() {
                for (id, _) in h.iter() {
                    if let Some(l) = live.get_mut(*id as usize) {
                        *l = true;
                    }
                }
            }
        });
        let mut remap = vec![u32::MAX; n];
        let mut strings = Vec::new();
        for (old, s) in std::mem::take(&mut self.interner.strings).into_iter().enumerate() {
            if live[old] {
                remap[old] = strings.len() as u32;
                strings.push(s);
            }
        }
        self.interner.ids.retain(|_, id| live[*id as usize]);
        for id in self.interner.ids.values_mut() {
            *id = remap[*id as usize];
        }
        self.interner.strings = strings;
        for st in &mut self.feeds {
            for m in &mut st.minutes {
                for (id, c) in &mut m.langs {
                    if *c > 0 {
                        *id = remap.get(*id as usize).copied().unwrap_or(u32::MAX);
                    }
                }
            }
            let minutes = st.minutes.iter_mut().map(|m| &mut m.cold);
            let opens = minutes.chain(st.hour.iter_mut()).chain(st.day.iter_mut());
            for w in opens {
                for h in w.stats.sketches_mut() {
                    h.remap_keys(|id| remap.get(*id as usize).copied().unwrap_or(u32::MAX));
                }
            }
        }
        self.gc_threshold = (2 * self.interner.strings.len()).max(MIN_GC_THRESHOLD);
        self.collections += 1;
    }
}

#[cfg(test)]
mod tests;
