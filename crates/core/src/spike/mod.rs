//! Spike detection per feed: "this feed has many more posts than usual for
//! this time of day, right now".
//!
//! The idea: each feed's per-minute count is compared with what that feed
//! has had lately, corrected for the usual shape of its day, under a
//! Poisson model. The counts of the last 1 to `max_window_minutes` minutes
//! are summed and tested against the sum of their expectations; a window
//! whose upper-tail p-value is tiny (and which also clears a minimum volume
//! and a minimum ratio) opens a spike. The spike stays open until the counts
//! are back to normal, and is then closed with its peak, end and magnitude.
//!
//! ## Input
//!
//! [`SpikeDetector::observe`] takes closed minute windows, `(feed, minute
//! start, count)`, in time order, as [`crate::window::FeedWindows`] emits
//! them ([`SpikeSink`] is the [`WindowSink`] that passes on the minute
//! windows and ignores hours and days). Minutes without posts are never emitted, so the
//! detector treats every minute it has not been told about as zero posts:
//! when a window of a later minute arrives, every feed is first brought up
//! to that minute with zero counts (this is why the minute order matters
//! across feeds). [`SpikeDetector::advance_to`] does the same explicitly, for
//! when the watermark moves but no window closes. Windows older than what a
//! feed has already processed are counted in [`SpikeDetector::stale`] and
//! ignored.
//!
//! ## The baseline
//!
//! The expectation for a feed at minute `m` is `level × rhythm(hour of m)`:
//!
//! - **level**: an exponentially weighted mean of the feed's counts with a
//!   time constant of `level_minutes` (60): the feed's normal rate right
//!   now. It follows the weekly rhythm, drifts and, after a while, new
//!   levels; it lags behind the daily rhythm by about its time constant.
//! - **rhythm**: 24 exponentially weighted means, one per hour of day (UTC),
//!   of `count / level`: how a minute of this hour compares with the level
//!   just before it. It is about 1.2 in the hours when a feed usually rises,
//!   below 1 when it falls, and corrects the lag. A slot is *learned* after
//!   60 minutes in it (before that the correction is 1); it first takes the
//!   plain mean of what it saw, then forgets with a memory of
//!   `rhythm_days` days. Between the centres of two learned slots it is
//!   interpolated linearly, so hourly steps do not show up as jumps.
//!
//! The split keeps the model stable: the level carries the scale, the rhythm
//! only a ratio near 1, so a feed whose volume changes tenfold is right
//! again within hours in every hour of the day, not after days. On the first
//! day (no rhythm yet) the level's lag is absorbed by the test's `slack`: the
//! expectation is inflated by `1 + slack` in every test, which also covers
//! the mild over-dispersion of real counts (reposts come in cascades), so
//! the p-values are conservative.
//!
//! **Robust learning.** A count is winsorised at `λ + 4√λ + 2` (λ its
//! expectation) before it is learned, so the minute or two of a burst
//! before it is detected barely moves the baseline. While a spike is open
//! nothing is learned, so a burst never inflates its own baseline. A spike
//! that stays open for `adapt_hours` (3) is taken as a new level: from then
//! on the level follows the counts (capped at 16× the expectation) at its
//! usual speed, the spike closes once the expectation has caught up, and
//! the new level is the normal one. A feed that jumps tenfold and stays
//! there alerts once and closes about 4 to 5 hours later (unit-tested).
//!
//! ## Opening, closing, ids
//!
//! - **Warm-up**: no spike opens before a feed has been followed for
//!   `warmup_minutes` (default 2 hours, counted from its first window).
//! - **Open**: for each `k` in `1..=max_window_minutes` (15), the sum `S` of the
//!   last `k` counts against the sum `Λ` of their expectations (short
//!   windows catch a sharp onset in its first minute, long ones a small
//!   burst of a sparse feed a few minutes later): the window
//!   is anomalous when `S ≥ min_count`, `S ≥ min_ratio × Λ` and
//!   `log10 P(X ≥ S | Λ (1 + slack)) ≤ -open_log10_p`. The smallest p-value
//!   wins. The **onset** is the first minute of that window whose count is
//!   above its expectation. Windows never reach back before the end of the
//!   previous spike of the feed.
//! - **Close**: once the last `close_minutes` minutes (all after the onset)
//!   together are no longer above normal at the loose level `close_log10_p`
//!   (p > 0.05 by default), the spike closes; its **end** is the first of
//!   those minutes. The gap between the strict open test and this loose one
//!   is what keeps a decaying burst from flickering open and shut. The
//!   **peak** is the minute with the largest count from onset to end, the
//!   **magnitude** its count over its expectation; `log10_p` is the smallest
//!   seen while open.
//! - **Ids**: a spike's [`SpikeId`] is a hash of the feed id and the onset
//!   minute, so replaying the same series after a restart gives the same
//!   ids, and a store can drop what it has already seen. Each id is opened
//!   once and closed once.
//!
//! ## Cost
//!
//! Per feed: 24 means and minute counts, a ring of the last 16 minutes, a
//! few scalars and the open spike, if any (under 1 KB), whatever the stream
//! length. Per feed and
//! minute: a few multiplications, and Poisson tails only for windows that
//! already pass the cheap volume and ratio checks. A gap longer than
//! `max_gap_minutes` is processed as exactly that many zero minutes (the
//! older ones would no longer matter to the baseline).

pub mod explain;
mod poisson;
#[cfg(test)]
mod tests;

pub use poisson::log10_poisson_upper_tail;

use crate::time::Timestamp;
use crate::window::{Resolution, WindowSink, WindowView};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// Minutes remembered per feed for windowed tests (longest window).
const RING: usize = 16;
/// Minutes in a rhythm slot before it is trusted.
const SLOT_LEARNED: u32 = 60;
/// Largest observed-to-expected ratio learned while a spike is open.
const OPEN_RATIO_CAP: f64 = 16.0;
/// Smallest expectation per minute, so that a long-silent feed still has a
/// finite, positive rate to test against.
const MIN_RATE: f64 = 0.02;

/// Settings of [`SpikeDetector`]; the defaults are tuned on generated weeks
/// (see the evaluation in `crates/gen/tests/spike_eval.rs`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SpikeConfig {
    /// Sensitivity: a window opens a spike when its p-value is at most
    /// `10^-open_log10_p`. Higher is stricter.
    pub open_log10_p: f64,
    /// A spike closes when the last `close_minutes` minutes have a p-value
    /// above `10^-close_log10_p`.
    pub close_log10_p: f64,
    pub close_minutes: usize,
    /// Longest window tested, in minutes (1 to 16).
    pub max_window_minutes: usize,
    /// Fewest posts in a window for a spike.
    pub min_count: u64,
    /// Smallest ratio of a window's posts to its expectation for a spike.
    pub min_ratio: f64,
    /// Relative margin added to the expectation in every test.
    pub slack: f64,
    /// Minutes a feed is followed before it may alert.
    pub warmup_minutes: u32,
    /// Time constant of the level, in minutes.
    pub level_minutes: f64,
    /// Memory of the hour-of-day rhythm, in days.
    pub rhythm_days: f64,
    /// A spike open this long is a new level, which the baseline follows.
    pub adapt_hours: f64,
    /// Longest run of missing minutes processed as zeros.
    pub max_gap_minutes: u32,
}

impl Default for SpikeConfig {
    fn default() -> Self {
        SpikeConfig {
            open_log10_p: 7.0,
            close_log10_p: 1.3,
            close_minutes: 5,
            max_window_minutes: 15,
            min_count: 6,
            min_ratio: 2.0,
            slack: 0.2,
            warmup_minutes: 120,
            level_minutes: 60.0,
            rhythm_days: 3.0,
            adapt_hours: 3.0,
            max_gap_minutes: 2 * 1440,
        }
    }
}

/// A spike's stable id: a hash of its feed and onset minute.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SpikeId(pub u64);

impl SpikeId {
    pub fn new(feed: u32, onset: Timestamp) -> SpikeId {
        let mut h = blake3::Hasher::new();
        h.update(b"tidewatch-spike-v1");
        h.update(&feed.to_le_bytes());
        h.update(&onset.0.to_le_bytes());
        let bytes = h.finalize();
        let mut first = [0u8; 8];
        first.copy_from_slice(&bytes.as_bytes()[..8]);
        SpikeId(u64::from_le_bytes(first))
    }
}

impl fmt::Display for SpikeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// What is known about a spike: everything so far when it opens, the final
/// figures when it closes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Spike {
    pub id: SpikeId,
    pub feed: u32,
    /// Start of the first anomalous minute.
    pub onset: Timestamp,
    /// Start of the minute whose closing opened the spike.
    pub detected_at: Timestamp,
    /// Start of the minute with the most posts so far.
    pub peak: Timestamp,
    pub peak_count: u64,
    /// The expectation at the peak minute.
    pub peak_expected: f64,
    /// First minute back to normal (`None` while open).
    pub end: Option<Timestamp>,
    /// `peak_count / peak_expected`.
    pub magnitude: f64,
    /// Smallest log10 p-value of the tested windows while open.
    pub log10_p: f64,
    /// Posts from onset to the last minute seen (to the end, once closed).
    pub posts: u64,
    /// Their expectation.
    pub expected_posts: f64,
}

/// What the detector emits.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SpikeEvent {
    /// Sent as soon as the spike is detected (`end` is `None`).
    Opened(Spike),
    /// Sent once, with the final peak, end and magnitude.
    Closed(Spike),
}

impl SpikeEvent {
    pub fn spike(&self) -> &Spike {
        match self {
            SpikeEvent::Opened(s) | SpikeEvent::Closed(s) => s,
        }
    }
}

/// One remembered minute.
#[derive(Clone, Copy, Debug, Default)]
struct Slot {
    minute: i64,
    count: u64,
    expected: f64,
}

/// The state of an open spike.
#[derive(Clone, Debug)]
struct Open {
    spike: Spike,
}

/// Everything kept per feed.
#[derive(Clone, Debug)]
struct FeedState {
    /// The next minute (index since the epoch) to process.
    next: i64,
    /// Minutes processed.
    seen: u64,
    /// Recent level: exponentially weighted mean of the (winsorised) counts.
    level: f64,
    /// Hour-of-day correction: mean of `count / level` per hour slot.
    rhythm: [f64; 24],
    /// Minutes learned per hour slot (saturates).
    rhythm_n: [u32; 24],
    ring: [Slot; RING],
    /// Minutes since the last spike closed (or since the start), capped.
    fresh: usize,
    open: Option<Open>,
}

impl FeedState {
    fn new(minute: i64) -> Self {
        FeedState {
            next: minute,
            seen: 0,
            level: 0.0,
            rhythm: [1.0; 24],
            rhythm_n: [0; 24],
            ring: [Slot::default(); RING],
            fresh: 0,
            open: None,
        }
    }

    /// The hour-of-day correction at `minute` (minutes since the epoch): 1
    /// while its hour is not learned, interpolated between the centres of
    /// learned slots.
    fn rhythm_at(&self, minute: i64) -> f64 {
        let of_day = minute.rem_euclid(1440) as f64;
        let hour = (of_day / 60.0) as usize % 24;
        if self.rhythm_n[hour] < SLOT_LEARNED {
            return 1.0;
        }
        // Position relative to slot centres (h + 0.5 hours).
        let u = (of_day + 0.5) / 60.0 - 0.5;
        let base = u.floor();
        let w = u - base;
        let h0 = (base as i64).rem_euclid(24) as usize;
        let h1 = (h0 + 1) % 24;
        if self.rhythm_n[h0] >= SLOT_LEARNED && self.rhythm_n[h1] >= SLOT_LEARNED {
            (1.0 - w) * self.rhythm[h0] + w * self.rhythm[h1]
        } else {
            self.rhythm[hour]
        }
    }

    fn expected(&self, minute: i64) -> f64 {
        let e = self.level * self.rhythm_at(minute);
        if e.is_finite() {
            e.max(MIN_RATE)
        } else {
            MIN_RATE
        }
    }

    /// Learns one minute's count, whose expectation was `expected`.
    fn learn(&mut self, cfg: &SpikeConfig, minute: i64, count: u64, expected: f64) {
        let level_alpha = 1.0 / cfg.level_minutes.max(1.0);
        if let Some(open) = &self.open {
            // A spike is not normal: learn nothing from it, unless it has
            // lasted `adapt_hours`, in which case it is a new level that the
            // level follows at its usual speed (the rhythm stays frozen).
            let onset = open.spike.onset.0.div_euclid(Timestamp::MINUTE);
            if (minute - onset) as f64 >= cfg.adapt_hours.max(0.0) * 60.0 {
                let x = (count as f64).min(expected * OPEN_RATIO_CAP);
                self.level += level_alpha * (x - self.level);
            }
            return;
        }
        let x = (count as f64).min(expected + 4.0 * expected.sqrt() + 2.0);
        // The rhythm learns how a minute of this hour compares with the
        // level just before it (which lags behind a rising or falling day).
        if self.seen > 1 && self.level > 0.0 {
            let hour = (minute.rem_euclid(1440) / 60) as usize % 24;
            let n = self.rhythm_n[hour];
            let memory = cfg.rhythm_days.max(0.01) * 60.0;
            let alpha = (1.0 / (f64::from(n) + 1.0)).max(1.0 / memory);
            let ratio = (x / self.level.max(MIN_RATE)).min(OPEN_RATIO_CAP);
            self.rhythm[hour] += alpha * (ratio - self.rhythm[hour]);
            self.rhythm_n[hour] = n.saturating_add(1);
        }
        // The first minutes take a plain mean, then the memory is fixed.
        let alpha = (1.0 / self.seen.max(1) as f64).max(level_alpha);
        self.level += alpha * (x - self.level);
    }

    /// The last `k` remembered minutes, newest first.
    fn recent(&self, k: usize) -> impl Iterator<Item = &Slot> {
        let newest = (self.seen as usize + RING - 1) % RING;
        (0..k).map(move |i| &self.ring[(newest + RING - i) % RING])
    }
}

/// Spike detection over many feeds; see the module docs.
#[derive(Clone, Debug)]
pub struct SpikeDetector {
    cfg: SpikeConfig,
    feeds: BTreeMap<u32, FeedState>,
    /// The newest minute (index since the epoch) seen on any feed.
    clock: Option<i64>,
    stale: u64,
}

impl SpikeDetector {
    pub fn new(mut cfg: SpikeConfig) -> Self {
        cfg.max_window_minutes = cfg.max_window_minutes.clamp(1, RING);
        cfg.close_minutes = cfg.close_minutes.clamp(1, RING);
        SpikeDetector {
            cfg,
            feeds: BTreeMap::new(),
            clock: None,
            stale: 0,
        }
    }

    pub fn config(&self) -> &SpikeConfig {
        &self.cfg
    }

    /// Windows ignored because their feed had already passed their minute.
    pub fn stale(&self) -> u64 {
        self.stale
    }

    /// Feeds followed.
    pub fn feeds(&self) -> usize {
        self.feeds.len()
    }

    /// The spikes open now, by feed.
    pub fn open_spikes(&self) -> impl Iterator<Item = &Spike> {
        self.feeds.values().filter_map(|f| f.open.as_ref().map(|o| &o.spike))
    }

    /// The count of the minute starting at `minute` (floored to the minute)
    /// for `feed`. Every feed is first brought up to that minute with zero
    /// counts. Events go to `out`.
    pub fn observe(&mut self, feed: u32, minute: Timestamp, count: u64, out: &mut Vec<SpikeEvent>) {
        let m = minute.0.div_euclid(Timestamp::MINUTE);
        self.advance_minutes(m, out);
        let cfg = &self.cfg;
        let state = self.feeds.entry(feed).or_insert_with(|| FeedState::new(m));
        if m < state.next {
            self.stale += 1;
            return;
        }
        fill_zeros(cfg, feed, state, m, out);
        step(cfg, feed, state, m, count, out);
    }

    /// Declares every minute before the one containing `minute` closed:
    /// feeds not heard of since are brought up to it with zero counts.
    pub fn advance_to(&mut self, minute: Timestamp, out: &mut Vec<SpikeEvent>) {
        self.advance_minutes(minute.0.div_euclid(Timestamp::MINUTE), out);
    }

    fn advance_minutes(&mut self, m: i64, out: &mut Vec<SpikeEvent>) {
        if self.clock.is_some_and(|c| c >= m) {
            return;
        }
        self.clock = Some(m);
        let cfg = &self.cfg;
        for (&feed, state) in self.feeds.iter_mut() {
            fill_zeros(cfg, feed, state, m, out);
        }
    }
}

/// The [`WindowSink`] that feeds closed minute windows to a detector
/// (hours and days are ignored) and collects its events.
pub struct SpikeSink<'a> {
    pub detector: &'a mut SpikeDetector,
    pub events: &'a mut Vec<SpikeEvent>,
}

impl WindowSink for SpikeSink<'_> {
    fn closed(&mut self, window: &WindowView<'_>) {
        if window.resolution() == Resolution::Minute {
            self.detector
                .observe(window.feed(), window.start(), window.count(), self.events);
        }
    }
}

/// Processes the minutes of `state` before `m` that were never reported, as
/// zeros (at most `max_gap_minutes` of them).
fn fill_zeros(cfg: &SpikeConfig, feed: u32, state: &mut FeedState, m: i64, out: &mut Vec<SpikeEvent>) {
    if state.next >= m {
        return;
    }
    let gap = m.saturating_sub(state.next);
    if gap > i64::from(cfg.max_gap_minutes) {
        state.next = m - i64::from(cfg.max_gap_minutes);
    }
    while state.next < m {
        let minute = state.next;
        step(cfg, feed, state, minute, 0, out);
    }
}

/// Processes one minute of one feed: test, then learn.
fn step(cfg: &SpikeConfig, feed: u32, state: &mut FeedState, m: i64, count: u64, out: &mut Vec<SpikeEvent>) {
    let expected = state.expected(m);
    let idx = state.seen as usize % RING;
    state.ring[idx] = Slot {
        minute: m,
        count,
        expected,
    };
    state.seen += 1;
    state.fresh = (state.fresh + 1).min(RING);
    state.next = m.saturating_add(1);

    if state.open.is_some() {
        continue_open(cfg, state, m, count, expected, out);
    } else if state.seen >= u64::from(cfg.warmup_minutes) {
        try_open(cfg, feed, state, m, out);
    }
    state.learn(cfg, m, count, expected);
}

fn ts(minute: i64) -> Timestamp {
    Timestamp(minute.saturating_mul(Timestamp::MINUTE))
}

/// Tests the windows ending at the newest minute and opens a spike if one
/// is anomalous.
fn try_open(cfg: &SpikeConfig, feed: u32, state: &mut FeedState, m: i64, out: &mut Vec<SpikeEvent>) {
    let inflate = 1.0 + cfg.slack.max(0.0);
    let longest = cfg.max_window_minutes.min(state.fresh);
    let mut best: Option<(usize, f64)> = None;
    let (mut sum, mut lambda) = (0u64, 0.0f64);
    for (i, slot) in state.recent(longest).enumerate() {
        sum = sum.saturating_add(slot.count);
        lambda += slot.expected;
        if sum < cfg.min_count || (sum as f64) < cfg.min_ratio * lambda {
            continue;
        }
        let lp = log10_poisson_upper_tail(sum, lambda * inflate);
        let better = match best {
            Some((_, b)) => lp < b,
            None => true,
        };
        if lp <= -cfg.open_log10_p && better {
            best = Some((i + 1, lp));
        }
    }
    let Some((k, log10_p)) = best else { return };
    // Oldest first, so the onset is the first minute above expectation.
    let mut window: Vec<Slot> = state.recent(k).copied().collect();
    window.reverse();
    let start = window
        .iter()
        .position(|s| s.count as f64 > s.expected)
        .unwrap_or(window.len().saturating_sub(1));
    let mut spike = Spike {
        id: SpikeId::new(feed, ts(window[start].minute)),
        feed,
        onset: ts(window[start].minute),
        detected_at: ts(m),
        peak: ts(window[start].minute),
        peak_count: 0,
        peak_expected: window[start].expected,
        end: None,
        magnitude: 0.0,
        log10_p,
        posts: 0,
        expected_posts: 0.0,
    };
    for s in &window[start..] {
        absorb(&mut spike, s);
    }
    out.push(SpikeEvent::Opened(spike.clone()));
    state.open = Some(Open { spike });
}

/// Adds one minute to a spike's peak and totals.
fn absorb(spike: &mut Spike, s: &Slot) {
    spike.posts = spike.posts.saturating_add(s.count);
    spike.expected_posts += s.expected;
    if s.count > spike.peak_count {
        spike.peak = ts(s.minute);
        spike.peak_count = s.count;
        spike.peak_expected = s.expected;
        spike.magnitude = s.count as f64 / s.expected;
    }
}

/// Updates an open spike with its newest minute and closes it once the
/// trailing `close_minutes` are back to normal.
fn continue_open(
    cfg: &SpikeConfig,
    state: &mut FeedState,
    m: i64,
    count: u64,
    expected: f64,
    out: &mut Vec<SpikeEvent>,
) {
    let inflate = 1.0 + cfg.slack.max(0.0);
    let k = cfg.close_minutes;
    let (sum, lambda) = state.recent(k).fold((0u64, 0.0f64), |(s, l), slot| {
        (s.saturating_add(slot.count), l + slot.expected)
    });
    let lp = log10_poisson_upper_tail(sum, lambda * inflate);
    let minute_lp = log10_poisson_upper_tail(count, expected * inflate);
    let normal = lp > -cfg.close_log10_p;
    let Some(open) = state.open.as_mut() else { return };
    absorb(
        &mut open.spike,
        &Slot {
            minute: m,
            count,
            expected,
        },
    );
    open.spike.log10_p = open.spike.log10_p.min(minute_lp);
    let end = m - (k as i64 - 1);
    // Close only on a window that lies entirely inside the spike.
    if !normal || end <= open.spike.onset.0.div_euclid(Timestamp::MINUTE) {
        return;
    }
    // The trailing k minutes are normal: the spike ended at the first of
    // them, which leave its totals (its peak stays where it was).
    let mut spike = open.spike.clone();
    for slot in state.recent(k) {
        spike.posts = spike.posts.saturating_sub(slot.count);
        spike.expected_posts -= slot.expected;
    }
    spike.expected_posts = spike.expected_posts.max(0.0);
    spike.end = Some(ts(end));
    state.open = None;
    state.fresh = 0;
    out.push(SpikeEvent::Closed(spike));
}
