//! Emerging topics without any feed: "these words were rare until a few
//! minutes ago, and now they come up together in many posts".
//!
//! The idea: every post is cut into *keys* (content terms, bigrams of
//! adjacent content terms, hashtags and link domains), each counted in a
//! fixed-size count-min sketch at two time scales: a short decayed window
//! (5 minutes by default) and a long decayed baseline (6 hours). A key's
//! expectation in the window is its baseline share times the window's
//! volume, so the daily rhythm cancels out; its score is the Poisson
//! log-likelihood ratio of what was seen against that expectation. What is
//! always frequent (stop words, perennial hashtags) scores about zero; what
//! is new scores high once it has a few posts. Keys that score high are
//! tracked exactly in a small candidate table, with the decayed counts of
//! their co-occurrences in the same posts; emerging keys that share many
//! posts are grouped into one [`Topic`].
//!
//! ## Input
//!
//! [`EmergingTopics::observe`] takes a post and its tokens (from
//! [`crate::text::tokenize`]) in roughly event-time order; the detector's
//! clock is the latest `created_at` seen (a post without one counts at the
//! clock). Keys are:
//!
//! - **terms**: word tokens of at least 3 characters, not all digits, not
//!   stop words ([`crate::stopwords`]) — the same content terms the pipeline
//!   collects; the plain words of mentions are left out (topics, not
//!   people);
//! - **bigrams**: two such terms at adjacent positions (`skarnett bridge`),
//!   so a new combination of old words can emerge too;
//! - **hashtags**: `#tag` tokens;
//! - **domains**: `post.entities.domains` (present once the post is
//!   enriched).
//!
//! Each distinct key counts once per post, so counts are post counts.
//! Reposts are skipped unless `count_reposts` is set: a viral post's
//! cascade is not a new topic.
//! [`EmergingTopics::observe_terms`] does the same from the engine's list
//! of content terms (no bigrams, hashtags from the entities).
//!
//! ## Scoring
//!
//! For a key with window count `S` and baseline count `L` (both decayed, in
//! posts), and window and baseline volumes `S_tot`, `L_tot`:
//!
//! ```text
//! E = max(L / L_tot × S_tot, expected_floor)
//! score = S ln(S / E) − (S − E)        when S > E, else 0
//! ```
//!
//! A key is *emerging* when `S ≥ min_count`, `S ≥ min_ratio × E` and
//! `score ≥ min_score`. The baseline includes the window, so on its own a
//! new key would soon be measured against its own first hour; a tracked
//! key is therefore also held against its baseline share from when it
//! started emerging (the lower expectation wins) for `baseline_hours`.
//! After that it is the norm, and stops emerging.
//!
//! ## Grouping and ids
//!
//! Two emerging keys are linked when their decayed co-occurrence count is at
//! least `link_share` of the smaller of their window counts (and at least
//! `min_count / 2`): most posts of the rarer one also carry the other.
//! Topics are the connected components; a topic's score is the sum of its
//! keys' scores. A topic's [`TopicId`] is the hash of its *founder*, the key
//! that has been emerging the longest (ties: the smaller hash), so the id
//! stays the same while the topic grows, and replaying a stream gives the
//! same ids. `first_seen` is when the founder started emerging.
//!
//! ## Memory
//!
//! The sketch (`depth × 2^width_log2 × 16` bytes, 1 MiB by default), at
//! most `candidates` tracked keys (texts cut to 64 bytes) and at most
//! `16 × candidates` co-occurrence pairs: flat however long the stream and
//! however many distinct keys it has ([`EmergingTopics::memory_bytes`]).
//!
//! ## Suggested feeds
//!
//! [`EmergingTopics::suggest_feed`] turns a topic into a boolean query of
//! the query language (see [`feed`]), and [`evaluate_feed`] measures a
//! query's precision and recall against posts known to be the topic's.

pub mod feed;
pub mod narrative;
mod sketch;
#[cfg(test)]
mod tests;

pub use feed::{evaluate_feed, FeedQuality, SuggestedFeed};
pub use narrative::NarrativeFeed;

use crate::post::Post;
use crate::stopwords;
use crate::text::{TokenKind, TokenizedText};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use sketch::DecayedSketch;
use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};

/// Longest key text kept (bytes); longer keys are cut at a char boundary.
const MAX_KEY_BYTES: usize = 64;
/// Most candidate keys of one post whose co-occurrences are counted.
const MAX_HOT_PER_POST: usize = 16;
/// Co-occurrence pairs kept per candidate slot, at most.
const PAIRS_PER_CANDIDATE: usize = 16;
/// Event time between two clean-ups of the candidate table.
const MAINTENANCE_MS: i64 = 60_000;

/// Settings of [`EmergingTopics`]; the defaults are tuned on generated
/// streams (see `crates/gen/tests/emerging_eval.rs`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EmergingConfig {
    /// Time constant of the current window, in minutes.
    pub window_minutes: f64,
    /// Time constant of the baseline, in hours.
    pub baseline_hours: f64,
    /// The sketch has `2^sketch_width_log2` cells per row.
    pub sketch_width_log2: u32,
    /// Rows of the sketch.
    pub sketch_depth: usize,
    /// Most keys tracked exactly at once.
    pub candidates: usize,
    /// Fewest posts (decayed) in the window for a key to emerge.
    pub min_count: f64,
    /// Smallest ratio of window count to expectation for a key to emerge.
    pub min_ratio: f64,
    /// Smallest score for a key to emerge.
    pub min_score: f64,
    /// Smallest expectation used in the score, in posts: a brand-new key
    /// must still gather a few posts.
    pub expected_floor: f64,
    /// Two keys are linked when their co-occurrences reach this share of
    /// the smaller window count.
    pub link_share: f64,
    /// Most keys listed per topic (the highest scores).
    pub max_terms_per_topic: usize,
    /// Most keys taken from one post.
    pub max_keys_per_post: usize,
    /// Whether reposts count. A repost repeats another post's words, so
    /// counting them makes every viral post a "topic" of its own; how far
    /// a topic spreads is what the per-feed spike detection measures.
    pub count_reposts: bool,
}

impl Default for EmergingConfig {
    fn default() -> Self {
        EmergingConfig {
            window_minutes: 5.0,
            baseline_hours: 6.0,
            sketch_width_log2: 14,
            sketch_depth: 4,
            candidates: 512,
            min_count: 4.0,
            min_ratio: 4.0,
            min_score: 6.0,
            expected_floor: 0.5,
            link_share: 0.3,
            max_terms_per_topic: 12,
            max_keys_per_post: 64,
            count_reposts: false,
        }
    }
}

/// What a key is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyKind {
    /// A content term (folded).
    Term,
    /// Two content terms at adjacent positions, separated by a space.
    Bigram,
    /// A hashtag, without its `#`.
    Hashtag,
    /// A link's domain.
    Domain,
}

impl KeyKind {
    fn tag(self) -> u8 {
        match self {
            KeyKind::Term => 1,
            KeyKind::Bigram => 2,
            KeyKind::Hashtag => 3,
            KeyKind::Domain => 4,
        }
    }
}

/// A topic's stable id: the hash of its founding key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TopicId(pub u64);

impl fmt::Display for TopicId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// One emerging key of a topic.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TopicTerm {
    pub kind: KeyKind,
    /// The folded term, `w1 w2` for a bigram, the tag without `#`, or the
    /// domain.
    pub text: String,
    pub score: f64,
    /// Posts carrying it in the current window (decayed).
    pub count: f64,
    /// What the baseline expects in the window (before the floor).
    pub expected: f64,
    /// What the baseline as it was when the key started emerging expects
    /// in the window: the share of its posts that are not the new topic's,
    /// even after the topic has become part of the baseline.
    pub prior_expected: f64,
    /// When it started emerging.
    pub first_seen: Timestamp,
    #[serde(skip)]
    hash: u64,
    /// Its posts since it started emerging, decayed like `count`: what its
    /// co-occurrence counts compare with.
    #[serde(skip)]
    tracked: f64,
}

impl TopicTerm {
    /// The term as the query language writes it: `term`, `"w1 w2"`,
    /// `#tag`, `domain:example.org`.
    pub fn query_form(&self) -> String {
        match self.kind {
            KeyKind::Term => self.text.clone(),
            KeyKind::Bigram => format!("\"{}\"", self.text),
            KeyKind::Hashtag => format!("#{}", self.text),
            KeyKind::Domain => format!("domain:{}", self.text),
        }
    }

    /// The share of its window posts the baseline from before it emerged
    /// does not explain: an estimate of how many of the posts it finds are
    /// the new topic's.
    pub fn excess_share(&self) -> f64 {
        if self.count <= 0.0 {
            0.0
        } else {
            ((self.count - self.prior_expected) / self.count).clamp(0.0, 1.0)
        }
    }
}

impl fmt::Display for TopicTerm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.query_form())
    }
}

/// An emerging topic: co-occurring emerging keys.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Topic {
    pub id: TopicId,
    /// Its keys, highest score first (at most `max_terms_per_topic`).
    pub terms: Vec<TopicTerm>,
    /// Sum of the scores of all its keys.
    pub score: f64,
    /// When its founder started emerging.
    pub first_seen: Timestamp,
    /// Estimated posts in the current window (its most frequent key's
    /// decayed count).
    pub posts: f64,
    /// Estimated posts since it was first seen (its most frequent key's
    /// count since that key started emerging).
    pub posts_since_first_seen: f64,
}

/// A key tracked exactly.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Candidate {
    hash: u64,
    kind: KeyKind,
    text: String,
    /// When it was admitted (started emerging).
    first_seen: i64,
    last_seen: i64,
    /// Posts seen since admission.
    posts: f64,
    /// Its share of the baseline's posts when it was admitted.
    prior_share: f64,
    /// Its posts since admission, with the short forward-decay weight
    /// (like the pair counts).
    tracked: f64,
    /// Bumped whenever the slot is reused, so stale pairs are recognised.
    generation: u32,
}

/// A decayed co-occurrence count of two candidate slots.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
struct PairCount {
    /// Stored with the short forward-decay weight (see `sketch`).
    value: f64,
    generations: (u32, u32),
}

/// A key of the post being observed: its hash, kind and text range in the
/// scratch buffer.
#[derive(Clone, Copy, Debug)]
struct PostKey {
    hash: u64,
    kind: KeyKind,
    start: usize,
    end: usize,
}

/// A pass-through hasher for keys that are already well-mixed hashes.
#[derive(Default)]
struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8 | u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<IdentityHasher>>;

/// The hash of a key: FNV-1a over the kind tag and the text, then a
/// SplitMix64 finaliser so that every bit is usable.
pub(crate) fn key_hash(kind: KeyKind, text: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in std::iter::once(&kind.tag()).chain(text.as_bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// Whether a folded word is a content term (the pipeline's rule).
pub fn is_content_term(word: &str) -> bool {
    word.chars().count() >= 3 && !word.bytes().all(|b| b.is_ascii_digit()) && !stopwords::is_stop_word(word)
}

/// `text` cut to at most [`MAX_KEY_BYTES`] at a char boundary.
fn clip(text: &str) -> &str {
    if text.len() <= MAX_KEY_BYTES {
        return text;
    }
    let mut end = MAX_KEY_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The Poisson log-likelihood ratio of `s` observed against `e` expected,
/// one-sided (0 when `s <= e`).
pub fn surprise(s: f64, e: f64) -> f64 {
    if s <= e || e <= 0.0 {
        0.0
    } else {
        s * (s / e).ln() - (s - e)
    }
}

/// A candidate's figures at some instant.
#[derive(Clone, Copy, Debug)]
struct Figures {
    count: f64,
    expected: f64,
    score: f64,
    emerging: bool,
}

/// The streaming detector; see the module docs.
///
/// It serialises (serde) to its whole state, so a run that stops can save
/// it and the next one go on from it; the scratch buffers are not saved.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EmergingTopics {
    cfg: EmergingConfig,
    sketch: DecayedSketch,
    /// The latest event time seen (ms).
    clock: Option<i64>,
    next_maintenance: Option<i64>,
    slots: Vec<Option<Candidate>>,
    free: Vec<u32>,
    index: FastMap<u64, u32>,
    pairs: FastMap<(u32, u32), PairCount>,
    next_generation: u32,
    // Scratch buffers reused across posts.
    #[serde(skip)]
    keys: Vec<PostKey>,
    #[serde(skip)]
    text: String,
    #[serde(skip)]
    bigram: String,
    #[serde(skip)]
    hot: Vec<u32>,
}

impl EmergingTopics {
    pub fn new(cfg: EmergingConfig) -> Self {
        let minute = 60_000.0;
        let sketch = DecayedSketch::new(
            cfg.sketch_width_log2,
            cfg.sketch_depth,
            cfg.window_minutes * minute,
            cfg.baseline_hours * 60.0 * minute,
            0,
        );
        let candidates = cfg.candidates.max(1);
        EmergingTopics {
            cfg,
            sketch,
            clock: None,
            next_maintenance: None,
            slots: Vec::with_capacity(candidates),
            free: Vec::new(),
            index: FastMap::default(),
            pairs: FastMap::default(),
            next_generation: 0,
            keys: Vec::new(),
            text: String::new(),
            bigram: String::new(),
            hot: Vec::new(),
        }
    }

    pub fn config(&self) -> &EmergingConfig {
        &self.cfg
    }

    /// The latest event time seen.
    pub fn clock(&self) -> Option<Timestamp> {
        self.clock.map(Timestamp)
    }

    /// Keys currently tracked exactly (emerging now or recently).
    pub fn tracked(&self) -> usize {
        self.index.len()
    }

    /// Bytes held by the detector's structures (allocated capacity). Bounded
    /// by the configuration, whatever the stream.
    pub fn memory_bytes(&self) -> usize {
        use std::mem::size_of;
        let texts: usize = self.slots.iter().flatten().map(|c| c.text.capacity()).sum();
        // A hash map holds its entries plus a control byte per bucket.
        let index = self.index.capacity() * (size_of::<(u64, u32)>() + 1);
        let pairs = self.pairs.capacity() * (size_of::<((u32, u32), PairCount)>() + 1);
        self.sketch.memory_bytes()
            + self.slots.capacity() * size_of::<Option<Candidate>>()
            + texts
            + self.free.capacity() * size_of::<u32>()
            + index
            + pairs
            + self.keys.capacity() * size_of::<PostKey>()
            + self.text.capacity()
            + self.bigram.capacity()
            + self.hot.capacity() * size_of::<u32>()
    }

    /// Observes one post whose text was tokenised into `tokens`.
    pub fn observe(&mut self, post: &Post, tokens: &TokenizedText) {
        if post.is_repost() && !self.cfg.count_reposts {
            return;
        }
        self.keys.clear();
        self.text.clear();
        // The plain word of a mention shares the mention's position.
        let mut mention_at: Option<u32> = None;
        // The last word token: its position and, if it is a content term,
        // its range in the scratch text.
        let mut last_word: Option<(u32, Option<(usize, usize)>)> = None;
        for (word, tok) in tokens.iter() {
            match tok.kind {
                TokenKind::Mention => mention_at = Some(tok.position),
                TokenKind::Hashtag => {
                    let tag = word.strip_prefix('#').unwrap_or(word);
                    self.push_key(KeyKind::Hashtag, &[tag]);
                }
                TokenKind::Word if mention_at != Some(tok.position) => {
                    if is_content_term(word) {
                        let range = self.push_key(KeyKind::Term, &[word]);
                        if let (Some((p, Some((s, e)))), Some(_)) = (last_word, range) {
                            if tok.position.checked_sub(1) == Some(p) {
                                let mut pair = std::mem::take(&mut self.bigram);
                                pair.clear();
                                pair.push_str(&self.text[s..e]);
                                pair.push(' ');
                                pair.push_str(word);
                                self.push_key(KeyKind::Bigram, &[&pair]);
                                self.bigram = pair;
                            }
                        }
                        last_word = Some((tok.position, range));
                    } else {
                        last_word = Some((tok.position, None));
                    }
                }
                TokenKind::Word | TokenKind::Cjk | TokenKind::Cashtag => last_word = None,
            }
        }
        self.push_domains(post);
        self.count_post(post);
    }

    /// Observes one post given its content terms in text order (the
    /// engine's per-post term list): terms, hashtags and domains from
    /// `post.entities`, no bigrams.
    pub fn observe_terms<'a>(&mut self, post: &Post, terms: impl IntoIterator<Item = &'a str>) {
        if post.is_repost() && !self.cfg.count_reposts {
            return;
        }
        self.keys.clear();
        self.text.clear();
        for t in terms {
            if is_content_term(t) {
                self.push_key(KeyKind::Term, &[t]);
            }
        }
        if let Some(e) = &post.entities {
            for tag in &e.hashtags {
                self.push_key(KeyKind::Hashtag, &[tag.as_str()]);
            }
        }
        self.push_domains(post);
        self.count_post(post);
    }

    fn push_domains(&mut self, post: &Post) {
        if let Some(e) = &post.entities {
            for d in &e.domains {
                self.push_key(KeyKind::Domain, &[d.as_str()]);
            }
        }
    }

    /// Appends a key (the concatenation of `parts`) unless the post already
    /// has it or is at its key limit; returns its range in the scratch text.
    fn push_key(&mut self, kind: KeyKind, parts: &[&str]) -> Option<(usize, usize)> {
        if self.keys.len() >= self.cfg.max_keys_per_post {
            return None;
        }
        let start = self.text.len();
        for p in parts {
            self.text.push_str(p);
        }
        let clipped = clip(&self.text[start..]).len();
        self.text.truncate(start + clipped);
        let end = self.text.len();
        if end == start {
            return None;
        }
        let hash = key_hash(kind, &self.text[start..end]);
        if self.keys.iter().any(|k| k.hash == hash) {
            // Already counted for this post; keep the text for a bigram.
            return self.keys.iter().find(|k| k.hash == hash).map(|k| (k.start, k.end));
        }
        self.keys.push(PostKey { hash, kind, start, end });
        Some((start, end))
    }

    /// Counts the keys gathered in the scratch buffers as one post.
    fn count_post(&mut self, post: &Post) {
        let t = match (post.created_at, self.clock) {
            (Some(t), _) => t.0,
            (None, Some(c)) => c,
            (None, None) => 0,
        };
        let clock = match self.clock {
            Some(c) if c >= t => c,
            _ => {
                self.clock = Some(t);
                t
            }
        };
        match self.next_maintenance {
            None => {
                // The first post: the sketch is empty, its origin moves here.
                self.next_maintenance = Some(clock.saturating_add(MAINTENANCE_MS));
                self.sketch.maybe_rescale(clock);
            }
            Some(due) if clock >= due => {
                self.maintain(clock);
                self.next_maintenance = Some(clock.saturating_add(MAINTENANCE_MS));
            }
            Some(_) => {}
        }
        // A post far behind the clock counts at its own (decayed) time;
        // one far ahead would have moved the clock.
        let w = self.sketch.weights(t.min(clock));
        self.sketch.add_total(w);
        let totals = self.sketch.totals(clock);
        let now_w = self.sketch.weights(clock);
        // Cheap tests first: most keys are rare or common, and fail them.
        let min_admit = self.cfg.min_count * 0.75;
        let share_to_window = if totals[1] > 0.0 { totals[0] / totals[1] } else { 0.0 };
        self.hot.clear();
        for i in 0..self.keys.len() {
            let key = self.keys[i];
            let stored = self.sketch.add(key.hash, w);
            if let Some(&slot) = self.index.get(&key.hash) {
                if let Some(c) = self.slots[slot as usize].as_mut() {
                    c.last_seen = clock;
                    c.posts += 1.0;
                    c.tracked += w[0];
                }
                if self.hot.len() < MAX_HOT_PER_POST {
                    self.hot.push(slot);
                }
                continue;
            }
            let counts = [stored[0] / now_w[0], stored[1] / now_w[1]];
            if counts[0] < min_admit
                || counts[0] < self.cfg.min_ratio * (counts[1] * share_to_window).max(self.cfg.expected_floor)
            {
                continue;
            }
            // Admit a little before it is reported, so that its
            // co-occurrences are known by then.
            if self.figures(counts, totals).score >= self.cfg.min_score * 0.5 {
                let text = self.text[key.start..key.end].to_owned();
                let prior_share = if totals[1] > 0.0 { counts[1] / totals[1] } else { 0.0 };
                if let Some(slot) = self.admit(key.hash, key.kind, text, prior_share, w[0], clock) {
                    if self.hot.len() < MAX_HOT_PER_POST {
                        self.hot.push(slot);
                    }
                }
            }
        }
        self.count_pairs(w[0]);
    }

    /// Adds this post's co-occurrences of candidate slots.
    fn count_pairs(&mut self, w: f64) {
        if self.hot.len() < 2 {
            return;
        }
        self.hot.sort_unstable();
        self.hot.dedup();
        let max_pairs = self.max_pairs();
        for i in 0..self.hot.len() {
            for j in i + 1..self.hot.len() {
                let (a, b) = (self.hot[i], self.hot[j]);
                let gens = (self.generation(a), self.generation(b));
                let full = self.pairs.len() >= max_pairs;
                match self.pairs.get_mut(&(a, b)) {
                    Some(p) if p.generations == gens => p.value += w,
                    Some(p) => {
                        *p = PairCount {
                            value: w,
                            generations: gens,
                        }
                    }
                    None if !full => {
                        self.pairs.insert(
                            (a, b),
                            PairCount {
                                value: w,
                                generations: gens,
                            },
                        );
                    }
                    None => {}
                }
            }
        }
    }

    fn max_pairs(&self) -> usize {
        self.cfg.candidates.max(1) * PAIRS_PER_CANDIDATE
    }

    fn generation(&self, slot: u32) -> u32 {
        self.slots
            .get(slot as usize)
            .and_then(|c| c.as_ref())
            .map_or(u32::MAX, |c| c.generation)
    }

    /// A key's figures from its decayed counts and the totals.
    fn figures(&self, counts: [f64; 2], totals: [f64; 2]) -> Figures {
        let [s, l] = counts;
        let expected = if totals[1] > 0.0 {
            l / totals[1] * totals[0]
        } else {
            0.0
        };
        let e = expected.max(self.cfg.expected_floor);
        let score = surprise(s, e);
        Figures {
            count: s,
            expected,
            score,
            emerging: s >= self.cfg.min_count && s >= self.cfg.min_ratio * e && score >= self.cfg.min_score,
        }
    }

    /// A candidate's figures as of `now`. For `baseline_hours` after it
    /// started emerging, it is also held against the baseline from before
    /// (the lower expectation wins), so that a new topic is not measured
    /// against its own first hours.
    fn figures_of(&self, c: &Candidate, now: i64) -> Figures {
        let now = self.clock.map_or(now, |clock| now.max(clock));
        let totals = self.sketch.totals(now);
        let mut f = self.figures(self.sketch.estimate(c.hash, now), totals);
        let young = (now.saturating_sub(c.first_seen) as f64) < self.cfg.baseline_hours * 3_600_000.0;
        let prior = c.prior_share * totals[0];
        if young && prior < f.expected {
            f = self.figures([f.count, prior], [1.0, 1.0]);
        }
        f
    }

    /// Starts tracking a key; makes room first when the table is full.
    fn admit(&mut self, hash: u64, kind: KeyKind, text: String, prior_share: f64, w: f64, now: i64) -> Option<u32> {
        let capacity = self.cfg.candidates.max(1);
        if self.index.len() >= capacity {
            self.evict(now, capacity - capacity / 4);
        }
        if self.index.len() >= capacity {
            return None;
        }
        self.next_generation = self.next_generation.wrapping_add(1);
        let cand = Candidate {
            hash,
            kind,
            text,
            first_seen: now,
            last_seen: now,
            posts: 1.0,
            prior_share,
            tracked: w,
            generation: self.next_generation,
        };
        let slot = match self.free.pop() {
            Some(s) => {
                self.slots[s as usize] = Some(cand);
                s
            }
            None => {
                self.slots.push(Some(cand));
                (self.slots.len() - 1) as u32
            }
        };
        self.index.insert(hash, slot);
        Some(slot)
    }

    /// Drops the lowest-scoring candidates until at most `keep` remain.
    fn evict(&mut self, now: i64, keep: usize) {
        let mut scored: Vec<(f64, u32)> = self
            .index
            .values()
            .filter_map(|&s| {
                let c = self.slots[s as usize].as_ref()?;
                Some((self.figures_of(c, now).score, s))
            })
            .collect();
        if scored.len() <= keep {
            return;
        }
        scored.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let drop = scored.len() - keep;
        for &(_, s) in &scored[..drop] {
            self.release(s);
        }
    }

    fn release(&mut self, slot: u32) {
        if let Some(c) = self.slots.get_mut(slot as usize).and_then(Option::take) {
            self.index.remove(&c.hash);
            self.free.push(slot);
        }
    }

    /// Periodic clean-up: forget keys that stopped emerging, prune pairs,
    /// move the sketch's origin.
    fn maintain(&mut self, now: i64) {
        let stale_ms = (3.0 * self.cfg.window_minutes * 60_000.0) as i64;
        let mut faded: Vec<u32> = self
            .index
            .values()
            .copied()
            .filter(|&s| {
                self.slots[s as usize].as_ref().is_some_and(|c| {
                    let f = self.figures_of(c, now);
                    f.count < self.cfg.min_count * 0.5
                        || (f.score < self.cfg.min_score * 0.25 && now.saturating_sub(c.last_seen) > stale_ms)
                })
            })
            .collect();
        // Freed in slot order, not the map's: slots are reused from the
        // free list, and which key gets which slot must not depend on how
        // the map happens to be laid out (a detector loaded from saved
        // state has the same keys in another layout).
        faded.sort_unstable();
        for s in faded {
            self.release(s);
        }
        // Pairs of freed or reused slots, and pairs decayed to nothing.
        let w = self.sketch.weights(now)[0];
        let floor = 0.25 * w;
        let slots = &self.slots;
        let live = |s: u32, g: u32| {
            slots
                .get(s as usize)
                .and_then(|c| c.as_ref())
                .is_some_and(|c| c.generation == g)
        };
        self.pairs
            .retain(|&(a, b), p| p.value >= floor && live(a, p.generations.0) && live(b, p.generations.1));
        if let Some(divisor) = self.sketch.maybe_rescale(now) {
            for p in self.pairs.values_mut() {
                p.value /= divisor;
            }
            for c in self.slots.iter_mut().flatten() {
                c.tracked /= divisor;
            }
        }
    }

    /// The decayed co-occurrence count of two slots as of `now`.
    fn pair_count(&self, a: u32, b: u32, now: i64) -> f64 {
        let key = if a < b { (a, b) } else { (b, a) };
        let Some(p) = self.pairs.get(&key) else { return 0.0 };
        if p.generations != (self.generation(key.0), self.generation(key.1)) {
            return 0.0;
        }
        p.value / self.sketch.weights(now)[0]
    }

    /// The `k` highest-scoring emerging topics as of `now` (event time; the
    /// detector's clock if later).
    pub fn top(&self, now: Timestamp, k: usize) -> Vec<Topic> {
        let mut topics = self.topics(now.0);
        topics.truncate(k);
        topics
    }

    /// Every emerging topic as of `now`, best first.
    fn topics(&self, now: i64) -> Vec<Topic> {
        let now = self.clock.map_or(now, |c| now.max(c));
        // The emerging candidates, by slot.
        let mut active: Vec<(u32, Figures)> = Vec::new();
        for &slot in self.index.values() {
            if let Some(c) = &self.slots[slot as usize] {
                let f = self.figures_of(c, now);
                if f.emerging {
                    active.push((slot, f));
                }
            }
        }
        active.sort_unstable_by_key(|&(s, _)| s);
        let pos = |slot: u32| active.binary_search_by_key(&slot, |&(s, _)| s).ok();
        // Union-find over the links.
        let mut parent: Vec<usize> = (0..active.len()).collect();
        fn root(parent: &mut [usize], mut i: usize) -> usize {
            while parent[i] != i {
                parent[i] = parent[parent[i]];
                i = parent[i];
            }
            i
        }
        let w = self.sketch.weights(now)[0];
        for (&(a, b), p) in &self.pairs {
            let (Some(ia), Some(ib)) = (pos(a), pos(b)) else {
                continue;
            };
            if p.generations != (self.generation(a), self.generation(b)) {
                continue;
            }
            let c = p.value / w;
            let smaller = active[ia].1.count.min(active[ib].1.count);
            if c >= self.cfg.min_count * 0.5 && c >= self.cfg.link_share * smaller {
                let (ra, rb) = (root(&mut parent, ia), root(&mut parent, ib));
                if ra != rb {
                    parent[ra.max(rb)] = ra.min(rb);
                }
            }
        }
        let mut groups: HashMap<usize, Vec<usize>> = HashMap::new();
        for i in 0..active.len() {
            let r = root(&mut parent, i);
            groups.entry(r).or_default().push(i);
        }
        let mut topics: Vec<Topic> = groups
            .into_values()
            .filter_map(|members| self.topic_of(&members, &active, now))
            .collect();
        topics.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.id.cmp(&b.id)));
        topics
    }

    /// Builds a topic from members (indices into `active`).
    fn topic_of(&self, members: &[usize], active: &[(u32, Figures)], now: i64) -> Option<Topic> {
        let mut terms: Vec<TopicTerm> = Vec::with_capacity(members.len());
        let mut posts_total: f64 = 0.0;
        let mut best_count = -1.0;
        for &i in members {
            let (slot, f) = active[i];
            let c = self.slots[slot as usize].as_ref()?;
            if f.count > best_count {
                best_count = f.count;
                posts_total = c.posts;
            }
            terms.push(self.term_of(c, f, now));
        }
        let founder = terms
            .iter()
            .min_by(|a, b| a.first_seen.cmp(&b.first_seen).then(a.hash.cmp(&b.hash)))?;
        let id = TopicId(founder.hash);
        let first_seen = founder.first_seen;
        let score = terms.iter().map(|t| t.score).sum();
        terms.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.text.cmp(&b.text)));
        terms.truncate(self.cfg.max_terms_per_topic.max(1));
        Some(Topic {
            id,
            terms,
            score,
            first_seen,
            posts: best_count.max(0.0),
            posts_since_first_seen: posts_total,
        })
    }

    /// A candidate's figures as a [`TopicTerm`].
    fn term_of(&self, c: &Candidate, f: Figures, now: i64) -> TopicTerm {
        TopicTerm {
            kind: c.kind,
            text: c.text.clone(),
            score: f.score,
            count: f.count,
            expected: f.expected,
            prior_expected: c.prior_share * self.sketch.totals(now)[0],
            first_seen: Timestamp(c.first_seen),
            hash: c.hash,
            tracked: c.tracked / self.sketch.weights(now)[0],
        }
    }

    /// Suggests a detection feed for `topic` (as returned by [`Self::top`]
    /// at about `now`); see [`feed`]. `None` when none of its keys is
    /// tracked any more.
    pub fn suggest_feed(&self, topic: &Topic, now: Timestamp) -> Option<SuggestedFeed> {
        let now = self.clock.map_or(now.0, |c| now.0.max(c));
        let slot_of = |hash: u64| self.index.get(&hash).copied();
        // Fresh figures for the topic's keys that are still tracked.
        let members: Vec<(u32, TopicTerm)> = topic
            .terms
            .iter()
            .filter_map(|t| {
                let slot = slot_of(t.hash)?;
                let c = self.slots[slot as usize].as_ref()?;
                Some((slot, self.term_of(c, self.figures_of(c, now), now)))
            })
            .collect();
        // Every other tracked key: those linked to the topic's keys join it
        // (a key of the topic may dip below the emerging bar for a minute
        // and still be its best feed term); the rest are candidates for NOT.
        let pair = |a: u32, b: u32| self.pair_count(a, b, now);
        let member_slots: Vec<u32> = members.iter().map(|m| m.0).collect();
        let mut members = members;
        let mut others: Vec<(u32, TopicTerm)> = Vec::new();
        let mut rest: Vec<u32> = self
            .index
            .values()
            .copied()
            .filter(|s| !member_slots.contains(s))
            .collect();
        rest.sort_unstable();
        for slot in rest {
            let Some(c) = self.slots[slot as usize].as_ref() else {
                continue;
            };
            let term = self.term_of(c, self.figures_of(c, now), now);
            let linked = member_slots.iter().zip(&members).any(|(&m, (_, mt))| {
                let co = pair(m, slot);
                co >= self.cfg.min_count * 0.5 && co >= self.cfg.link_share * mt.tracked.min(term.tracked)
            });
            if linked {
                members.push((slot, term));
            } else {
                others.push((slot, term));
            }
        }
        feed::suggest(&members, &others, pair)
    }
}
