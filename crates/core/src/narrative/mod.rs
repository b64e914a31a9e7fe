//! Narratives: streaming near-duplicate clusters of posts.
//!
//! The idea: a narrative is a set of posts saying the same thing in nearly
//! the same words (a copy-paste campaign, a viral text, a story pasted by
//! many), plus the reposts of any of them. Each post is normalised and cut
//! into shingles ([`shingle`]) and summarised by a 64-row MinHash signature
//! ([`minhash`]); LSH banding (16 bands of 4 rows) finds, among the recent
//! posts, the narratives it may belong to. The candidates are then checked
//! against their founding post's sketch (its shingle hashes: the whole set
//! for texts of up to 128 shingles, so the check is exact Jaccard there,
//! and a bottom-128 estimate beyond). The post joins the most similar
//! candidate whose founder has Jaccard ≥ `threshold` (default 0.8) with it
//! and that passes the pair check below; otherwise it founds a narrative of
//! its own. Verifying exactly removes the false joins MinHash's ±0.06
//! estimation noise causes on short texts, and anchoring on the founding
//! post keeps narratives from drifting by chains of small edits.
//!
//! - **Pair check**: every two posts of a narrative are meant to be
//!   near-duplicates (Jaccard ≥ `threshold`), but that relation is not
//!   transitive: two copies of a 12-word message, each with another word
//!   swapped, are both at 0.85 with the original and at 0.71 with each
//!   other. A narrative therefore keeps the sketches of its distinct member
//!   texts (up to 16, with their counts) and a post joins only if the
//!   members it is dissimilar to (or whose text was not kept) are at most
//!   `pair_tolerance` (default 5%) of the text members. Each join then adds
//!   at most that share of dissimilar pairs, so at least 95% of the pairs
//!   in any narrative are near-duplicates (exactly so for texts of up to
//!   128 shingles), at the price of leaving such doubly edited copies in
//!   narratives of their own.
//!
//! - **Reposts** (`repost_of` set) join the narrative of their original,
//!   found in a map from post id to narrative. A repost of an original not
//!   seen (or expired) joins or founds the narrative keyed by that
//!   original's id, so all its reposts meet there.
//! - **Window and memory**: everything lives in an event-time window
//!   (default 24 h) behind the newest post time seen, and each kind of
//!   state has a cap beyond which the least recently refreshed entries are
//!   evicted (counted in [`NarrativeStats`]). The post-id map and the
//!   narratives themselves live in maps with a time-ordered queue; entries
//!   not refreshed within the window expire (approximately by a little when
//!   posts arrive out of order: an entry expires once it reaches the
//!   queue's front). The LSH buckets (band key → narrative, last time),
//!   touched 16 times per post, live in a set-associative table (`bands`)
//!   that evicts within a set of four and expires lazily; there the bands
//!   of a narrative of several posts outlast those of one-off posts, so a
//!   narrative that pauses while many posts go by is still found by its
//!   next copy. Memory is therefore bounded by the caps, whatever the
//!   stream.
//! - **Short texts** with fewer than `min_shingles` distinct shingles ("gm",
//!   "lol this") are not clustered by text: they would merge unrelated
//!   posts. Their reposts still form narratives.
//! - **Pure and stateful parts**: everything computed from a post's text
//!   alone (normalising, shingling, the sketch, the MinHash signature and
//!   its band keys) is a [`NarrativeSketch`], made by a [`Sketcher`]. A
//!   run computes it in its worker threads
//!   ([`Narratives::observe_sketched`]), so the ordered consumer does only
//!   the lookups and updates; [`Narratives::observe`] makes it on the spot.
//! - **Ids**: a narrative's id is the hash of its founding post's id (or of
//!   the reposted original's id), stable across runs.
//! - **Privacy**: a narrative's summary ([`Narrative`]) holds counts of
//!   distinct accounts (exact to 128, then a HyperLogLog estimate), never
//!   pseudonyms; authors are kept only as hashes inside the sketch.
//!
//! The default shingle is one unit (a normalised word, tag, mention, link
//! or CJK character bigram): near-identical tweets are short, and one
//! swapped word in an 11-word message leaves 3-word shingles at Jaccard
//! 0.54, while the word sets stay at 0.85. `shingle_words` chooses longer
//! shingles for long texts.

pub mod agreement;
mod bands;
pub mod cluster;
pub mod minhash;
pub mod shingle;

#[cfg(test)]
mod eval_tests;
#[cfg(test)]
mod tests;

pub use cluster::{Narrative, NarrativeId, EXACT_ACCOUNTS};
pub use minhash::{Signature, HASHES};
pub use shingle::Shingler;

use crate::post::Post;
use crate::text::{tokenize, TokenizedText};
use bands::BandTable;
use cluster::Cluster;
use minhash::{band_keys, hash_bytes, signature, sketch, sketch_jaccard};
use serde::{Deserialize, Serialize};
use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};

const SEED_POST: u64 = 0x504F_5354;
const SEED_ACCOUNT: u64 = 0x4143_4354;
/// Distinct language tags remembered; rarer ones are not tallied.
const MAX_LANGS: usize = 256;

/// About what the default caps hold at most, in MiB: the band table 32,
/// narratives about 60 (plus up to 13 for their founders' feed ids, when
/// posts match 16 feeds or more), reposted originals about 25, and the maps' spare
/// capacity (see [`NarrativeConfig::with_memory_mib`]).
pub const DEFAULT_MEMORY_MIB: usize = 128;

/// Settings of a [`Narratives`] clusterer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NarrativeConfig {
    /// Event-time window (ms) within which posts can meet (default 24 h).
    pub window_ms: i64,
    /// Units per shingle (default 1; see the module doc).
    pub shingle_words: usize,
    /// Fewest distinct shingles for a text to be clustered (default 5).
    pub min_shingles: usize,
    /// Least Jaccard similarity with a narrative's founding post to join
    /// it, and the similarity that makes two posts near-duplicates in the
    /// pair check (default 0.8; exact for texts of up to 128 shingles).
    pub threshold: f64,
    /// Most share of a narrative's text members a joining post may be
    /// dissimilar to (default 0.05; see the module doc).
    pub pair_tolerance: f64,
    /// LSH bands: 8, 16 (default), 32 or 64; rows per band = 64 / bands.
    pub bands: usize,
    /// Most narratives kept (default 200 000, ≈ 60 MB at most, plus up to
    /// 64 bytes each for the feeds their founding post matched).
    pub max_narratives: usize,
    /// Most LSH bucket entries kept (default 1 000 000, 32 MB once full).
    pub max_buckets: usize,
    /// Most post ids remembered for reposts (default 500 000, ≈ 25 MB).
    pub max_originals: usize,
}

impl Default for NarrativeConfig {
    fn default() -> Self {
        NarrativeConfig {
            window_ms: 24 * 3600 * 1000,
            shingle_words: 1,
            min_shingles: 5,
            threshold: 0.8,
            pair_tolerance: 0.05,
            bands: 16,
            max_narratives: 200_000,
            max_buckets: 1_000_000,
            max_originals: 500_000,
        }
    }
}

/// An invalid [`NarrativeConfig`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    #[error("bands must be 8, 16, 32 or 64 (got {0})")]
    Bands(usize),
    #[error("threshold must be in (0, 1] (got {0})")]
    Threshold(f64),
    #[error("pair tolerance must be in [0, 1] (got {0})")]
    PairTolerance(f64),
    #[error("window must be positive (got {0} ms)")]
    Window(i64),
    #[error("shingle_words must be 1 to 8 (got {0})")]
    ShingleWords(usize),
    #[error("caps must be at least 1")]
    Caps,
}

impl NarrativeConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if ![8, 16, 32, 64].contains(&self.bands) {
            return Err(ConfigError::Bands(self.bands));
        }
        if !(self.threshold > 0.0 && self.threshold <= 1.0) {
            return Err(ConfigError::Threshold(self.threshold));
        }
        if !(0.0..=1.0).contains(&self.pair_tolerance) {
            return Err(ConfigError::PairTolerance(self.pair_tolerance));
        }
        if self.window_ms <= 0 {
            return Err(ConfigError::Window(self.window_ms));
        }
        if !(1..=8).contains(&self.shingle_words) {
            return Err(ConfigError::ShingleWords(self.shingle_words));
        }
        if self.max_narratives == 0 || self.max_buckets == 0 || self.max_originals == 0 {
            return Err(ConfigError::Caps);
        }
        Ok(())
    }

    /// This configuration with its three caps (`max_buckets`,
    /// `max_narratives`, `max_originals`) set to their defaults scaled
    /// from [`DEFAULT_MEMORY_MIB`] to `mib` (at least 1). At high rates the
    /// caps bound how far back a first copy is found
    /// ([`NarrativeStats::evicted_bucket_age_ms`]), and that reach grows
    /// in proportion.
    pub fn with_memory_mib(mut self, mib: usize) -> NarrativeConfig {
        let d = NarrativeConfig::default();
        let scale = |cap: usize| {
            let scaled = cap as u128 * mib.max(1) as u128 / DEFAULT_MEMORY_MIB as u128;
            usize::try_from(scaled).unwrap_or(usize::MAX).max(1)
        };
        self.max_buckets = scale(d.max_buckets);
        self.max_narratives = scale(d.max_narratives);
        self.max_originals = scale(d.max_originals);
        self
    }
}

/// What [`Narratives::observe`] did with a post.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NarrativeUpdate {
    pub narrative: NarrativeId,
    /// The post founded this narrative.
    pub is_new: bool,
    /// The post joined through `repost_of` rather than by its text.
    pub by_repost: bool,
    /// The narrative's size after this post.
    pub size: u64,
}

/// How [`Narratives::top`] ranks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rank {
    Size,
    Growth,
}

/// Counters and sizes, for metrics and memory checks.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NarrativeStats {
    pub observed: u64,
    /// Posts whose text was too short to cluster (and not reposts).
    pub too_short: u64,
    pub founded: u64,
    pub joined_by_text: u64,
    pub joined_by_repost: u64,
    pub narratives: usize,
    pub buckets: usize,
    pub originals: usize,
    pub expired_narratives: u64,
    pub evicted_narratives: u64,
    pub expired_buckets: u64,
    pub evicted_buckets: u64,
    /// How long LSH bucket entries lately lasted before `max_buckets`
    /// evicted them (ms, a running mean; 0 before any eviction). Each
    /// clusterable post writes one entry per band, so at a steady rate of
    /// new texts entries last about `max_buckets / bands / rate`: a
    /// near-duplicate of a one-post narrative older than this is not
    /// found, whatever `window_ms` says.
    pub evicted_bucket_age_ms: i64,
    pub expired_originals: u64,
    pub evicted_originals: u64,
    /// Approximate bytes held (maps at their capacity, queues, narratives'
    /// heap data).
    pub approx_bytes: usize,
}

/// The streaming near-duplicate clusterer. See the module doc.
///
/// It serialises (serde) to its whole state, so a run that stops can save
/// it and the next one go on from it; the scratch buffers are not saved.
#[derive(Serialize, Deserialize)]
pub struct Narratives {
    cfg: NarrativeConfig,
    clusters: TimedMap<Cluster>,
    buckets: BandTable,
    originals: TimedMap<Pointer>,
    langs: Vec<Box<str>>,
    lang_ids: HashMap<Box<str>, u16>,
    /// The newest event time seen (or given to [`Narratives::expire`]).
    now: Option<i64>,
    sketcher: Sketcher,
    /// The current post's sketch, when [`Narratives::observe`] makes it.
    #[serde(skip)]
    current: NarrativeSketch,
    /// Scratch tokens, for a sketch made with other settings.
    #[serde(skip)]
    tokens: TokenizedText,
    #[serde(skip)]
    candidates: Vec<u64>,
    stats: NarrativeStats,
}

/// Shingle settings a [`NarrativeSketch`] was made with: a sketch is used
/// only by a clusterer with the same.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct SketchShape {
    shingle_words: usize,
    min_shingles: usize,
    bands: usize,
}

impl SketchShape {
    fn of(cfg: &NarrativeConfig) -> SketchShape {
        SketchShape {
            shingle_words: cfg.shingle_words,
            min_shingles: cfg.min_shingles,
            bands: cfg.bands,
        }
    }
}

/// What the clusterer needs of a post's text, computed from the text alone
/// (no state): its founder sketch and, when it has at least `min_shingles`
/// shingles, the LSH band keys of its MinHash signature. Made by a
/// [`Sketcher`], typically in a run's worker threads.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NarrativeSketch {
    shape: SketchShape,
    /// The shingle set's sketch ([`minhash::sketch`]).
    sketch: Vec<u32>,
    /// The band keys; empty for a text too short to cluster.
    bands: Vec<u64>,
}

impl NarrativeSketch {
    /// Whether the text has enough shingles to be clustered by text.
    pub fn clusterable(&self) -> bool {
        !self.bands.is_empty()
    }

    /// Approximate heap bytes it holds.
    pub fn heap_bytes(&self) -> usize {
        self.sketch.capacity() * 4 + self.bands.capacity() * 8
    }
}

/// Makes [`NarrativeSketch`]es for one clusterer configuration; holds
/// reusable buffers (one per thread).
#[derive(Debug, Serialize, Deserialize)]
pub struct Sketcher {
    shape: SketchShape,
    rows: usize,
    #[serde(skip)]
    shingler: Shingler,
}

impl Sketcher {
    /// A sketcher for clusterers configured with `cfg`.
    pub fn new(cfg: &NarrativeConfig) -> Result<Sketcher, ConfigError> {
        cfg.validate()?;
        Ok(Sketcher {
            shape: SketchShape::of(cfg),
            rows: minhash::HASHES / cfg.bands,
            shingler: Shingler::new(),
        })
    }

    /// The sketch of `text`; `tokens` must be `text` tokenised by
    /// [`crate::text::tokenize`].
    pub fn sketch(&mut self, text: &str, tokens: &TokenizedText) -> NarrativeSketch {
        let mut out = NarrativeSketch::default();
        self.sketch_into(text, tokens, &mut out);
        out
    }

    /// [`Sketcher::sketch`] into `out`, reusing its buffers.
    pub fn sketch_into(&mut self, text: &str, tokens: &TokenizedText, out: &mut NarrativeSketch) {
        out.shape = self.shape;
        let shingles = self.shingler.shingles(text, tokens, self.shape.shingle_words);
        sketch(shingles, &mut out.sketch);
        out.bands.clear();
        if shingles.len() >= self.shape.min_shingles {
            band_keys(&signature(shingles), self.rows, &mut out.bands);
        }
    }
}

impl Narratives {
    pub fn new(cfg: NarrativeConfig) -> Result<Narratives, ConfigError> {
        let sketcher = Sketcher::new(&cfg)?;
        Ok(Narratives {
            clusters: TimedMap::new(cfg.max_narratives),
            buckets: BandTable::new(cfg.max_buckets),
            originals: TimedMap::new(cfg.max_originals),
            cfg,
            langs: Vec::new(),
            lang_ids: HashMap::new(),
            now: None,
            sketcher,
            current: NarrativeSketch::default(),
            tokens: TokenizedText::new(),
            candidates: Vec::new(),
            stats: NarrativeStats::default(),
        })
    }

    pub fn config(&self) -> &NarrativeConfig {
        &self.cfg
    }

    /// Counts `post` into a narrative. `tokens` must be `post.text`
    /// tokenised by [`crate::text::tokenize`]; `feeds` are the ids of the
    /// feeds it matched (ascending), tallied per narrative
    /// ([`Narrative::feeds`]). `representative` gives the
    /// text to show for the narrative (the caller's redacted text of this
    /// post); it is called only when the post makes a narrative of two.
    /// A post without a time is placed at the newest time seen.
    ///
    /// Returns `None` for a post that is not a repost and whose text is too
    /// short to cluster.
    pub fn observe(
        &mut self,
        post: &Post,
        tokens: &TokenizedText,
        feeds: &[u32],
        representative: impl FnOnce() -> String,
    ) -> Option<NarrativeUpdate> {
        let mut current = std::mem::take(&mut self.current);
        self.sketcher.sketch_into(&post.text, tokens, &mut current);
        let update = self.observe_sketched(post, &current, feeds, representative);
        self.current = current;
        update
    }

    /// [`Narratives::observe`] with the post's sketch already made (by a
    /// [`Sketcher`] of this configuration, from `post.text`). A sketch made
    /// with other shingle settings is not trusted: the text is sketched
    /// again here.
    pub fn observe_sketched(
        &mut self,
        post: &Post,
        sketch: &NarrativeSketch,
        feeds: &[u32],
        representative: impl FnOnce() -> String,
    ) -> Option<NarrativeUpdate> {
        if sketch.shape != self.sketcher.shape {
            let mut tokens = std::mem::take(&mut self.tokens);
            tokenize(&post.text, &mut tokens);
            let update = self.observe(post, &tokens, feeds, representative);
            self.tokens = tokens;
            return update;
        }
        self.stats.observed += 1;
        let t = post.created_at.map_or(self.now.unwrap_or(0), |ts| ts.0);
        let now = self.now.map_or(t, |n| n.max(t));
        self.now = Some(now);
        let cutoff = now.saturating_sub(self.cfg.window_ms);
        self.expire_before(cutoff);

        let account = post.author.as_deref().map(|a| hash_bytes(a.as_bytes(), SEED_ACCOUNT));
        let lang = post.lang.as_deref().and_then(|l| self.intern_lang(l));
        let domains: &[String] = post.entities.as_ref().map_or(&[], |e| &e.domains);
        let text = sketch.clusterable();

        let (id, is_new, by_repost) = if let Some(original) = &post.repost_of {
            let key = hash_bytes(original.as_bytes(), SEED_POST);
            let known = self
                .originals
                .map
                .get(&key)
                .filter(|p| p.last >= cutoff && self.clusters.map.contains_key(&p.cluster))
                .map(|p| p.cluster);
            let (id, is_new) = match known {
                Some(id) => (id, false),
                None => {
                    let founder = text.then_some(sketch.sketch.as_slice());
                    let domain = domains.first().map(String::as_str);
                    (key, self.found(key, founder, t, account, lang, domain, feeds))
                }
            };
            self.originals.upsert(key, Pointer { cluster: id, last: t });
            (id, is_new, true)
        } else {
            if !text {
                self.stats.too_short += 1;
                return None;
            }
            let own = hash_bytes(post.id.as_bytes(), SEED_POST);
            let (id, is_new) = match self.best_candidate(sketch, cutoff) {
                Some(id) => (id, false),
                None => {
                    let domain = domains.first().map(String::as_str);
                    (
                        own,
                        self.found(own, Some(&sketch.sketch), t, account, lang, domain, feeds),
                    )
                }
            };
            self.originals.upsert(own, Pointer { cluster: id, last: t });
            (id, is_new, false)
        };

        let mut size = 1;
        if !is_new {
            if let Some(c) = self.clusters.map.get_mut(&id) {
                c.add(t, by_repost, account, lang, domains, feeds, representative);
                if !by_repost {
                    c.add_text(&sketch.sketch);
                }
                size = c.size;
            }
            if by_repost {
                self.stats.joined_by_repost += 1;
            } else {
                self.stats.joined_by_text += 1;
            }
        }
        // Register the post's bands so later near-duplicates find this
        // narrative (reposts too, when their text is long enough).
        // The bands of a narrative of several posts are kept longer.
        for &k in &sketch.bands {
            self.buckets.upsert(k, id, t, size >= 2, cutoff);
        }
        self.enforce_caps();
        Some(NarrativeUpdate {
            narrative: NarrativeId(id),
            is_new,
            by_repost,
            size,
        })
    }

    /// Starts loading what observing a post with this sketch reads first,
    /// the band table's sets of its band keys (16 cache misses on a large
    /// table otherwise taken one after another). Called for the next post
    /// while the current one is observed; a hint only, changing no result.
    pub fn prefetch(&self, sketch: &NarrativeSketch) {
        if sketch.shape == self.sketcher.shape {
            for &k in &sketch.bands {
                self.buckets.prefetch(k);
            }
        }
    }

    /// The narrative among the LSH candidates of `sketch` whose anchor (most
    /// common text) is most similar to the current post, among those with
    /// an anchor similar enough that pass the pair check (compared by sketches: exact Jaccard
    /// for texts of up to 128 shingles).
    fn best_candidate(&mut self, sketch: &NarrativeSketch, cutoff: i64) -> Option<u64> {
        self.candidates.clear();
        for k in &sketch.bands {
            if let Some(p) = self.buckets.get(*k) {
                if p.last >= cutoff && !self.candidates.contains(&p.cluster) {
                    self.candidates.push(p.cluster);
                }
            }
        }
        let mut best: Option<(f64, u64)> = None;
        for &c in &self.candidates {
            let Some(cluster) = self.clusters.map.get(&c) else {
                continue;
            };
            let Some(anchor) = cluster.anchor() else {
                continue;
            };
            let est = sketch_jaccard(anchor, &sketch.sketch);
            if est < self.cfg.threshold || best.is_some_and(|(b, _)| est <= b) {
                continue;
            }
            let (dissimilar, members) = cluster.dissimilar(&sketch.sketch, self.cfg.threshold);
            if dissimilar as f64 <= self.cfg.pair_tolerance * members as f64 {
                best = Some((est, c));
            }
        }
        best.map(|(_, c)| c)
    }

    /// Founds narrative `id`, with the founding post's sketch when it was
    /// founded by text, unless it is live already (a post seen twice, or
    /// one more repost of an original whose narrative was founded by an
    /// earlier one): returns whether it was founded.
    #[allow(clippy::too_many_arguments)]
    fn found(
        &mut self,
        id: u64,
        founder: Option<&[u32]>,
        t: i64,
        account: Option<u64>,
        lang: Option<u16>,
        domain: Option<&str>,
        feeds: &[u32],
    ) -> bool {
        let founded = self.clusters.insert_new(id, || {
            Cluster::new(founder.map(Box::from), t, account, lang, domain, feeds)
        });
        self.stats.founded += u64::from(founded);
        founded
    }

    fn intern_lang(&mut self, tag: &str) -> Option<u16> {
        if let Some(&i) = self.lang_ids.get(tag) {
            return Some(i);
        }
        if self.langs.len() >= MAX_LANGS {
            return None;
        }
        let i = self.langs.len() as u16;
        self.langs.push(tag.into());
        self.lang_ids.insert(tag.into(), i);
        Some(i)
    }

    fn expire_before(&mut self, cutoff: i64) {
        self.clusters.expire(cutoff);
        self.buckets.expire(cutoff);
        self.originals.expire(cutoff);
    }

    fn enforce_caps(&mut self) {
        // The band table keeps its own cap (see `bands`).
        self.clusters.enforce_cap();
        self.originals.enforce_cap();
    }

    /// Moves time to at least `watermark` and drops everything not
    /// refreshed within the window before it.
    pub fn expire(&mut self, watermark: crate::Timestamp) {
        let now = self.now.map_or(watermark.0, |n| n.max(watermark.0));
        self.now = Some(now);
        self.expire_before(now.saturating_sub(self.cfg.window_ms));
    }

    /// Whether narrative `id` is live (not expired or evicted).
    pub fn contains(&self, id: NarrativeId) -> bool {
        self.clusters.map.contains_key(&id.0)
    }

    /// The summary of a live narrative.
    pub fn get(&self, id: NarrativeId) -> Option<Narrative> {
        let now = self.now.unwrap_or(0);
        self.clusters.map.get(&id.0).map(|c| c.summary(id, now, &self.langs))
    }

    /// The summary of a live narrative with its activity (`recent_10m`,
    /// `previous_60m`, `growth`) as of its last post rather than the
    /// newest post seen: a record that depends only on the narrative's own
    /// posts, whenever it is taken.
    pub fn get_at_last_post(&self, id: NarrativeId) -> Option<Narrative> {
        let c = self.clusters.map.get(&id.0)?;
        Some(c.summary(id, c.last, &self.langs))
    }

    /// The `k` largest or fastest-growing narratives of at least two posts,
    /// best first (ties by id). Scans every narrative: meant for periodic
    /// reports, not for every post.
    pub fn top(&self, k: usize, by: Rank) -> Vec<Narrative> {
        let now = self.now.unwrap_or(0);
        let mut scored: Vec<(f64, u64)> = self
            .clusters
            .map
            .iter()
            .filter(|(_, c)| c.size >= 2)
            .map(|(&id, c)| {
                let score = match by {
                    Rank::Size => c.size as f64,
                    Rank::Growth => c.growth(now),
                };
                (score, id)
            })
            .collect();
        scored.sort_unstable_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        scored.truncate(k);
        scored
            .into_iter()
            .filter_map(|(_, id)| self.get(NarrativeId(id)))
            .collect()
    }

    /// Counters and current sizes.
    pub fn stats(&self) -> NarrativeStats {
        let mut s = self.stats.clone();
        s.narratives = self.clusters.map.len();
        s.buckets = self.buckets.len();
        s.originals = self.originals.map.len();
        s.expired_narratives = self.clusters.expired;
        s.evicted_narratives = self.clusters.evicted;
        s.expired_buckets = self.buckets.expired;
        s.evicted_buckets = self.buckets.evicted;
        s.evicted_bucket_age_ms = self.buckets.evicted_age_ms();
        s.expired_originals = self.originals.expired;
        s.evicted_originals = self.originals.evicted;
        s.approx_bytes = self.clusters.bytes()
            + self.buckets.bytes()
            + self.originals.bytes()
            + self.clusters.map.values().map(Cluster::heap_bytes).sum::<usize>();
        s
    }
}

/// A map entry pointing at a narrative, refreshed at `last`.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
struct Pointer {
    cluster: u64,
    last: i64,
}

/// Something with a last-refresh time.
trait Timed {
    fn last(&self) -> i64;
    /// Takes a newer value for the same key.
    fn refresh(&mut self, newer: Self);
}

impl Timed for Pointer {
    fn last(&self) -> i64 {
        self.last
    }
    fn refresh(&mut self, newer: Self) {
        self.cluster = newer.cluster;
        self.last = self.last.max(newer.last);
    }
}

impl Timed for Cluster {
    fn last(&self) -> i64 {
        self.last
    }
    fn refresh(&mut self, newer: Self) {
        *self = newer;
    }
}

/// A map whose keys are already uniform 64-bit hashes: hashing is the
/// identity.
type FastMap<V> = HashMap<u64, V, BuildHasherDefault<IdHasher>>;

#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only u64 keys are used; fold anything else in for completeness.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// A map with expiry and a cap. Each key has exactly one entry in `queue`,
/// stamped with the key's last time when queued; an entry found stale at
/// the front (its key refreshed since) is queued again with the newer
/// time, so refreshing costs nothing until the entry reaches the front.
#[derive(Serialize, Deserialize)]
struct TimedMap<V> {
    map: FastMap<V>,
    queue: VecDeque<(i64, u64)>,
    cap: usize,
    expired: u64,
    evicted: u64,
}

impl<V: Timed> TimedMap<V> {
    fn new(cap: usize) -> Self {
        TimedMap {
            map: FastMap::default(),
            queue: VecDeque::new(),
            cap,
            expired: 0,
            evicted: 0,
        }
    }

    // Both look the key up once: most keys are new, and on a large map
    // each lookup is a cache miss.
    fn upsert(&mut self, key: u64, value: V) {
        match self.map.entry(key) {
            Entry::Occupied(mut e) => e.get_mut().refresh(value),
            Entry::Vacant(e) => {
                self.queue.push_back((value.last(), key));
                e.insert(value);
            }
        }
    }

    /// Inserts `make()` under `key` unless the key is present; returns
    /// whether it inserted.
    fn insert_new(&mut self, key: u64, make: impl FnOnce() -> V) -> bool {
        match self.map.entry(key) {
            Entry::Occupied(_) => false,
            Entry::Vacant(e) => {
                let value = e.insert(make());
                self.queue.push_back((value.last(), key));
                true
            }
        }
    }

    /// Drops entries last refreshed before `cutoff`.
    fn expire(&mut self, cutoff: i64) {
        while let Some(&(t, key)) = self.queue.front() {
            if t >= cutoff {
                break;
            }
            self.queue.pop_front();
            match self.map.get(&key).map(Timed::last) {
                Some(last) if last >= cutoff => self.queue.push_back((last, key)),
                Some(_) => {
                    self.map.remove(&key);
                    self.expired += 1;
                }
                None => {}
            }
        }
    }

    /// Evicts the least recently refreshed entries beyond the cap.
    fn enforce_cap(&mut self) {
        while self.map.len() > self.cap {
            let Some((t, key)) = self.queue.pop_front() else {
                break;
            };
            match self.map.get(&key).map(Timed::last) {
                Some(last) if last > t => self.queue.push_back((last, key)),
                Some(_) => {
                    self.map.remove(&key);
                    self.evicted += 1;
                }
                None => {}
            }
        }
    }

    fn bytes(&self) -> usize {
        // A hashbrown slot is the key, the value and one control byte.
        self.map.capacity() * (8 + std::mem::size_of::<V>() + 1) + self.queue.capacity() * 16
    }
}
