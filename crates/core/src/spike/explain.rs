//! Why a feed spiked: the terms, hashtags, link domains and languages that
//! are over-represented in the spike's minutes compared with the feed's
//! usual posts.
//!
//! The idea: every closed minute window of a feed carries the top keys of
//! its heavy-hitter sketches. The explainer keeps the last
//! [`RECENT_MINUTES`] of them as they are, and folds older ones into a
//! per-feed baseline of exponentially decayed counts. A minute enters the
//! baseline only once it is that old, so a spike being explained is never
//! part of its own baseline. To explain a spike, the keys of its minutes
//! (onset to detection) are compared with the baseline by Dunning's
//! log-likelihood ratio (G²), the usual test for "more frequent here than
//! there" on counts; keys that are rarer in the spike, or seen fewer than
//! [`MIN_COUNT`] times, are left out.
//!
//! Memory is bounded: at most [`MAX_BASELINE_KEYS`] keys per feed (the
//! smallest decayed counts are dropped), and only feeds with windows have
//! state at all.
//!
//! Cost: this runs for every closed minute window of every feed, on the
//! run's ordered stage, so a minute's keys are copied into one reused text
//! buffer (no allocation per key) and the baseline allocates only for keys
//! it has not seen.

use crate::window::WindowView;
use crate::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};

/// Minutes kept as they are (the longest spike window explained).
pub const RECENT_MINUTES: usize = 15;
/// Keys of each kind taken from each minute window.
const TOP_PER_WINDOW: usize = 10;
/// A driver must occur at least this often in the spike's minutes.
pub const MIN_COUNT: u64 = 3;
/// Keys remembered per feed in its baseline.
const MAX_BASELINE_KEYS: usize = 160;
/// The baseline forgets with this half-life (event time).
const HALF_LIFE_MINUTES: f64 = 360.0;
/// Absorbed minutes kept for reuse.
const SPARE_MINUTES: usize = 64;
/// Drivers reported per spike.
const MAX_DRIVERS: usize = 8;

/// What kind of key a driver is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DriverKind {
    Term,
    Hashtag,
    Domain,
    Lang,
}

/// One over-represented key of a spike.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Driver {
    pub kind: DriverKind,
    pub key: String,
    /// Posts with the key in the spike's minutes (a lower bound).
    pub count: u64,
    /// Its share of the spike's posts.
    pub share: f64,
    /// Its share of the feed's usual posts (0 when never seen before).
    pub baseline_share: f64,
    /// Dunning's log-likelihood ratio; larger is more surprising.
    pub llr: f64,
}

impl Driver {
    /// `#tag`, `domain.org`, `lang:de` or the term, for a one-line summary.
    pub fn label(&self) -> String {
        match self.kind {
            DriverKind::Term => self.key.clone(),
            DriverKind::Hashtag if self.key.starts_with('#') => self.key.clone(),
            DriverKind::Hashtag => format!("#{}", self.key),
            DriverKind::Domain => self.key.clone(),
            DriverKind::Lang => format!("lang:{}", self.key),
        }
    }
}

impl DriverKind {
    const ALL: [DriverKind; 4] = [
        DriverKind::Term,
        DriverKind::Hashtag,
        DriverKind::Domain,
        DriverKind::Lang,
    ];

    fn index(self) -> usize {
        self as usize
    }
}

/// The top keys of one minute window: each key is a range of `text`.
#[derive(Clone, Debug, Default)]
struct Minute {
    start: i64,
    posts: u64,
    text: String,
    keys: Vec<(DriverKind, std::ops::Range<usize>, u64)>,
}

impl Minute {
    fn keys(&self) -> impl Iterator<Item = (DriverKind, &str, u64)> {
        self.keys
            .iter()
            .map(|(kind, r, c)| (*kind, self.text.get(r.clone()).unwrap_or(""), *c))
    }
}

#[derive(Debug, Default)]
struct Profile {
    recent: VecDeque<Minute>,
    /// Decayed posts, and decayed counts per key (one map per
    /// [`DriverKind`], by its index), as of `at` (minutes).
    posts: f64,
    keys: [HashMap<Box<str>, f64>; 4],
    at: i64,
}

impl Profile {
    fn decay_to(&mut self, minute: i64) {
        if minute <= self.at {
            return;
        }
        let f = 0.5f64.powf((minute - self.at) as f64 / HALF_LIFE_MINUTES);
        self.posts *= f;
        for v in self.keys.iter_mut().flat_map(|m| m.values_mut()) {
            *v *= f;
        }
        self.at = minute;
    }

    fn absorb(&mut self, m: &Minute) {
        self.decay_to(m.start);
        self.posts += m.posts as f64;
        for (kind, key, count) in m.keys() {
            let map = &mut self.keys[kind.index()];
            match map.get_mut(key) {
                Some(v) => *v += count as f64,
                None => {
                    map.insert(key.into(), count as f64);
                }
            }
        }
        if self.baseline_len() > 2 * MAX_BASELINE_KEYS {
            // Keep the largest, ties by (kind, key).
            let mut all: Vec<(DriverKind, Box<str>, f64)> = Vec::with_capacity(self.baseline_len());
            for kind in DriverKind::ALL {
                all.extend(self.keys[kind.index()].drain().map(|(k, v)| (kind, k, v)));
            }
            all.sort_by(|a, b| b.2.total_cmp(&a.2).then_with(|| (a.0, &a.1).cmp(&(b.0, &b.1))));
            all.truncate(MAX_BASELINE_KEYS);
            for (kind, key, v) in all {
                self.keys[kind.index()].insert(key, v);
            }
        }
    }

    fn baseline_len(&self) -> usize {
        self.keys.iter().map(HashMap::len).sum()
    }
}

/// Per-feed recent minutes and baselines; see the module doc.
#[derive(Debug, Default)]
pub struct SpikeExplainer {
    feeds: HashMap<u32, Profile>,
    /// Minutes absorbed into a baseline, kept for their buffers.
    spare: Vec<Minute>,
}

impl SpikeExplainer {
    pub fn new() -> Self {
        SpikeExplainer::default()
    }

    /// Takes a closed minute window (other resolutions are ignored).
    pub fn observe(&mut self, w: &WindowView<'_>) {
        if w.resolution() != crate::window::Resolution::Minute {
            return;
        }
        let start = w.start().0.div_euclid(Timestamp::MINUTE);
        let mut minute = self.spare.pop().unwrap_or_default();
        minute.start = start;
        minute.posts = w.count();
        minute.text.clear();
        minute.keys.clear();
        for (kind, top) in [
            (DriverKind::Term, w.top_terms(TOP_PER_WINDOW)),
            (DriverKind::Hashtag, w.top_hashtags(TOP_PER_WINDOW)),
            (DriverKind::Domain, w.top_domains(TOP_PER_WINDOW)),
            (DriverKind::Lang, w.top_langs(TOP_PER_WINDOW)),
        ] {
            for (k, c) in top {
                let at = minute.text.len();
                minute.text.push_str(k);
                minute.keys.push((kind, at..minute.text.len(), c));
            }
        }
        let p = self.feeds.entry(w.feed()).or_default();
        p.recent.push_back(minute);
        while p
            .recent
            .front()
            .is_some_and(|m| m.start <= start - RECENT_MINUTES as i64)
        {
            if let Some(old) = p.recent.pop_front() {
                p.absorb(&old);
                if self.spare.len() < SPARE_MINUTES {
                    self.spare.push(old);
                }
            }
        }
    }

    /// The drivers of feed `feed`'s spike from `onset` to `last` (minute
    /// starts, inclusive), strongest first.
    pub fn explain(&self, feed: u32, onset: Timestamp, last: Timestamp) -> Vec<Driver> {
        let Some(p) = self.feeds.get(&feed) else {
            return Vec::new();
        };
        let (from, to) = (
            onset.0.div_euclid(Timestamp::MINUTE),
            last.0.div_euclid(Timestamp::MINUTE),
        );
        let mut posts = 0u64;
        let mut counts: HashMap<(DriverKind, &str), u64> = HashMap::new();
        for m in p.recent.iter().filter(|m| m.start >= from && m.start <= to) {
            posts += m.posts;
            for (kind, key, c) in m.keys() {
                *counts.entry((kind, key)).or_insert(0) += c;
            }
        }
        if posts == 0 {
            return Vec::new();
        }
        let base_posts = p.posts;
        let mut drivers: Vec<Driver> = counts
            .into_iter()
            .filter(|(_, a)| *a >= MIN_COUNT)
            .filter_map(|((kind, key), a)| {
                let c = p.keys[kind.index()].get(key).copied().unwrap_or(0.0);
                let share = a as f64 / posts as f64;
                let baseline_share = if base_posts > 0.0 { c / base_posts } else { 0.0 };
                if share <= baseline_share {
                    return None;
                }
                Some(Driver {
                    kind,
                    key: key.to_string(),
                    count: a,
                    share,
                    baseline_share,
                    llr: log_likelihood_ratio(a as f64, posts as f64, c, base_posts),
                })
            })
            .collect();
        drivers.sort_by(|a, b| b.llr.total_cmp(&a.llr).then_with(|| a.key.cmp(&b.key)));
        drivers.truncate(MAX_DRIVERS);
        drivers
    }

    /// Approximate heap bytes held.
    pub fn memory_bytes(&self) -> usize {
        self.feeds
            .values()
            .map(|p| {
                p.keys.iter().map(|m| m.capacity() * 40).sum::<usize>()
                    + p.recent
                        .iter()
                        .map(|m| m.keys.capacity() * 40 + m.text.capacity())
                        .sum::<usize>()
            })
            .sum::<usize>()
            + self
                .spare
                .iter()
                .map(|m| m.keys.capacity() * 40 + m.text.capacity())
                .sum::<usize>()
    }
}

/// Dunning's G² for a key seen `a` times in `n1` posts here and `c` times
/// in `n2` posts there.
fn log_likelihood_ratio(a: f64, n1: f64, c: f64, n2: f64) -> f64 {
    let total = a + c;
    let e1 = n1 * total / (n1 + n2);
    let e2 = n2 * total / (n1 + n2);
    let term = |x: f64, e: f64| if x > 0.0 && e > 0.0 { x * (x / e).ln() } else { 0.0 };
    2.0 * (term(a, e1) + term(c, e2))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::window::{FeedWindows, SinkFn, WindowConfig, WindowInput};
    use crate::Post;

    fn post(minute: i64, text: &str, tags: &[&str]) -> Post {
        Post {
            id: format!("{minute}-{text}"),
            platform: "x".into(),
            created_at: Some(Timestamp(minute * Timestamp::MINUTE + 1)),
            text: text.into(),
            lang: Some("en".into()),
            entities: Some(crate::post::Entities {
                hashtags: tags.iter().map(|t| t.to_string()).collect(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn the_new_term_of_a_spike_is_its_first_driver_and_usual_ones_are_not() {
        let mut windows = FeedWindows::new(WindowConfig::default());
        let mut ex = SpikeExplainer::new();
        let feed = |p: &Post, terms: &[&str], ex: &mut SpikeExplainer, w: &mut FeedWindows| {
            w.observe(
                &WindowInput::from_post(p, terms),
                &[7],
                &mut SinkFn(|v: &WindowView<'_>| ex.observe(v)),
            );
        };
        // Two hours of the usual: "train" and "delay", #commute.
        for m in 0..120 {
            for i in 0..4 {
                let p = post(m, "train delay", &["commute"]);
                let terms = if i % 2 == 0 {
                    vec!["train", "delay"]
                } else {
                    vec!["train"]
                };
                feed(&p, &terms, &mut ex, &mut windows);
            }
        }
        // A spike: many posts about a bridge collapse, with the usual words too.
        for m in 120..125 {
            for _ in 0..30 {
                let p = post(m, "bridge collapse train", &["bridgecollapse"]);
                feed(&p, &["bridge", "collapse", "train"], &mut ex, &mut windows);
            }
        }
        // Close the spike's minutes.
        let p = post(140, "train", &[]);
        feed(&p, &["train"], &mut ex, &mut windows);

        let why = ex.explain(
            7,
            Timestamp(120 * Timestamp::MINUTE),
            Timestamp(124 * Timestamp::MINUTE),
        );
        let labels: Vec<String> = why.iter().map(Driver::label).collect();
        assert!(labels.len() >= 3, "{why:#?}");
        let top3: Vec<&str> = labels.iter().take(3).map(String::as_str).collect();
        for want in ["bridge", "collapse", "#bridgecollapse"] {
            assert!(top3.contains(&want), "{want} in {labels:?}");
        }
        assert!(!labels.iter().any(|l| l == "delay" || l == "#commute"), "{labels:?}");
        let bridge = why.iter().find(|d| d.key == "bridge").unwrap();
        assert_eq!(bridge.count, 150);
        assert_eq!(bridge.baseline_share, 0.0);
        assert!((bridge.share - 1.0).abs() < 1e-9);
        // Unknown feed, or minutes without windows: nothing to say.
        assert!(ex.explain(8, Timestamp(0), Timestamp(1)).is_empty());
    }

    #[test]
    fn dunning_llr_is_zero_for_equal_rates_and_grows_with_the_difference() {
        assert!(log_likelihood_ratio(10.0, 100.0, 100.0, 1000.0).abs() < 1e-9);
        let small = log_likelihood_ratio(20.0, 100.0, 100.0, 1000.0);
        let large = log_likelihood_ratio(50.0, 100.0, 100.0, 1000.0);
        assert!(small > 0.0 && large > small);
        // Hand-computed: a=30 of 100, c=0 of 900: 2·30·ln(30/3) = 138.155...
        assert!((log_likelihood_ratio(30.0, 100.0, 0.0, 900.0) - 60.0 * 10f64.ln()).abs() < 1e-9);
    }

    #[test]
    fn baselines_stay_bounded() {
        let mut windows = FeedWindows::new(WindowConfig::default());
        let mut ex = SpikeExplainer::new();
        for m in 0..3000i64 {
            let word = format!("word{m}");
            let p = post(m, &word, &[]);
            let terms = [word.as_str()];
            windows.observe(
                &WindowInput::from_post(&p, &terms),
                &[1],
                &mut SinkFn(|v: &WindowView<'_>| ex.observe(v)),
            );
        }
        let p = &ex.feeds[&1];
        assert!(p.baseline_len() <= 2 * MAX_BASELINE_KEYS, "{}", p.baseline_len());
        assert!(p.recent.len() <= RECENT_MINUTES);
        assert!(ex.memory_bytes() < 200_000, "{}", ex.memory_bytes());
    }
}
