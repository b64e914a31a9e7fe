//! The compiled feed matcher: every standing query against every post, by
//! verifying each post only against the feeds it could possibly match.
//!
//! The idea, after Lucene Monitor / Luwak: a query can only match a post
//! that contains certain tokens (its presearch [`Anchors`]: one of several
//! sets of required tokens). [`FeedMatcher::build`] indexes every feed under
//! the rarest anchor of each of its sets. Per post, the matcher
//!
//! 1. walks the post's tokens once, looking each up in one term table (a
//!    single hash of its bytes; the same running hash also probes the prefix
//!    table at the prefix lengths wildcards use, see [`table`]), and stamps
//!    the terms, prefixes and wildcards present;
//! 2. collects candidates: the feeds indexed under a present term or prefix
//!    whose whole anchor set is present, plus the unanchored feeds that
//!    must see every post (see below);
//! 3. verifies each candidate with its compiled query ([`verify`]), which
//!    reads the stamps instead of scanning tokens.
//!
//! Unanchored queries (`NOT spam`, `lang:de`, `lang:ja NOT #news`) have no
//! required token. When such a query is a field, or an `AND` with a field
//! child, it is gated by that field (domain, then language, repost, reply,
//! platform, sentiment): the field is evaluated once per post for all the
//! feeds sharing it, and only if it holds are they verified. The rest are
//! verified against every post.
//!
//! A [`FeedMatcher`] is immutable once built and `Send + Sync`: threads share
//! it behind an `Arc`, each with its own [`MatchScratch`]. Live feed changes
//! build a new matcher and swap it in; a scratch notices the swap and
//! re-binds itself (flushing its statistics first).
//!
//! Statistics per feed ([`FeedStats`]): posts matched, times verified (the
//! candidate count), and verification time sampled on one verification in
//! [`TIMING_SAMPLE`], so a slow feed can be found at negligible cost.

mod rarity;
mod table;
mod verify;

#[cfg(test)]
mod tests;

pub use rarity::TermStats;

use crate::post::Post;
use crate::query::{Anchor, Anchors, Field, Node, Pattern, Query};
use crate::text::TokenizedText;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;
use table::{hash_start, hash_step, StrTable};
use verify::{glob, Op, PostView, Resolve, SpanBufs, Word, NO_TERM};

/// One verification in this many is timed.
pub const TIMING_SAMPLE: u32 = 64;

/// Wildcard prefixes longer than this (in bytes) are indexed by their first
/// bytes only (a shorter prefix is a weaker but still sound filter).
const MAX_PREFIX: usize = 63;

/// An anchor in a set: a term id, or a prefix id with this bit set.
const PREFIX_BIT: u32 = 1 << 31;

/// A feed to compile: the caller's stable id, a name, and its query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedSpec {
    pub id: u32,
    pub name: String,
    pub query: Query,
}

/// A wildcard pattern, checked on every token that starts with its prefix.
#[derive(Clone, Debug)]
struct Wildcard {
    pattern: Box<[u8]>,
}

/// An index entry: `feed` becomes a candidate when the entry's anchor is
/// present and so are the other anchors of its set,
/// `rest[rest_start..rest_start + rest_len]`.
#[derive(Clone, Copy, Debug)]
struct Posting {
    feed: u32,
    rest_start: u32,
    rest_len: u32,
}

/// Lists indexed by a dense id, in one flat vector.
#[derive(Clone, Debug, Default)]
struct Lists<T> {
    offsets: Vec<u32>,
    items: Vec<T>,
}

impl<T: Copy> Lists<T> {
    fn from_buckets(buckets: Vec<Vec<T>>) -> Lists<T> {
        let mut offsets = Vec::with_capacity(buckets.len() + 1);
        let mut items = Vec::with_capacity(buckets.iter().map(Vec::len).sum());
        offsets.push(0);
        for b in buckets {
            items.extend(b);
            offsets.push(items.len() as u32);
        }
        Lists { offsets, items }
    }

    #[inline]
    fn get(&self, id: u32) -> &[T] {
        let id = id as usize;
        match (self.offsets.get(id), self.offsets.get(id + 1)) {
            (Some(&a), Some(&b)) => &self.items[a as usize..b as usize],
            _ => &[],
        }
    }

    fn memory_bytes(&self) -> usize {
        self.offsets.capacity() * 4 + self.items.capacity() * std::mem::size_of::<T>()
    }
}

/// Every feed's query, compiled and indexed. See the module doc.
#[derive(Debug)]
pub struct FeedMatcher {
    /// Distinguishes matchers, so a scratch knows when it must re-bind.
    instance: u64,
    /// Feed ids by dense index, ascending.
    ids: Arc<[u32]>,
    names: Vec<String>,
    progs: Vec<Op>,
    /// Every exact word of every query.
    terms: StrTable,
    term_postings: Lists<Posting>,
    /// Literal prefixes of wildcards and prefix anchors.
    prefixes: StrTable,
    /// Bit `L` set when some prefix is `L` bytes long.
    prefix_lens: u64,
    prefix_postings: Lists<Posting>,
    prefix_wilds: Lists<u32>,
    wilds: Vec<Wildcard>,
    /// The other anchors of indexed sets (term ids, or prefix ids with
    /// [`PREFIX_BIT`]).
    rest: Vec<u32>,
    /// Unanchored feeds gated by a field.
    gates: Vec<(Field, Vec<u32>)>,
    /// Unanchored feeds verified against every post.
    always: Vec<u32>,
}

static INSTANCES: AtomicU64 = AtomicU64::new(1);

/// Builds the term and wildcard tables while queries compile.
struct Builder {
    terms: StrTable,
    prefixes: StrTable,
    wilds: Vec<Wildcard>,
    wild_ids: HashMap<String, u32>,
    /// Wildcard ids per prefix id.
    prefix_wilds: Vec<Vec<u32>>,
}

impl Builder {
    fn prefix_id(&mut self, prefix: &str) -> u32 {
        let id = self.prefixes.intern(truncate(prefix).as_bytes());
        if id as usize >= self.prefix_wilds.len() {
            self.prefix_wilds.push(Vec::new());
        }
        id
    }

    fn anchor_id(&mut self, a: &Anchor) -> u32 {
        match a {
            Anchor::Token(t) => self.terms.intern(t.as_bytes()),
            Anchor::Prefix(p) => self.prefix_id(p) | PREFIX_BIT,
        }
    }
}

impl Resolve for Builder {
    fn word(&mut self, pattern: &Pattern) -> Word {
        match pattern {
            Pattern::Exact(w) => Word::Term(self.terms.intern(w.as_bytes())),
            Pattern::Wildcard(p) => {
                if let Some(&id) = self.wild_ids.get(p) {
                    return Word::Wild(id);
                }
                let id = self.wilds.len() as u32;
                self.wilds.push(Wildcard {
                    pattern: p.as_bytes().into(),
                });
                self.wild_ids.insert(p.clone(), id);
                let prefix = self.prefix_id(pattern.literal_prefix());
                self.prefix_wilds[prefix as usize].push(id);
                Word::Wild(id)
            }
        }
    }
}

/// The longest prefix of `s` of at most [`MAX_PREFIX`] bytes ending on a
/// character boundary.
fn truncate(s: &str) -> &str {
    if s.len() <= MAX_PREFIX {
        return s;
    }
    let mut end = MAX_PREFIX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The field an unanchored query can be gated by: the query itself if it
/// is a field, or a field child of a top-level `AND` (rarest kind first).
fn gate_of(node: &Node) -> Option<&Field> {
    let rank = |f: &Field| match f {
        Field::Domain(_) => 0,
        Field::Lang(_) => 1,
        Field::IsRepost => 2,
        Field::IsReply => 3,
        Field::Platform(_) => 4,
        Field::Sentiment(_) => 5,
    };
    match node {
        Node::Field(f) => Some(f),
        Node::And(children) => children
            .iter()
            .filter_map(|c| match c {
                Node::Field(f) => Some(f),
                _ => None,
            })
            .min_by_key(|f| rank(f)),
        _ => None,
    }
}

impl FeedMatcher {
    /// Compiles the feeds, choosing anchors by the heuristic rarity of
    /// [`TermStats::none`].
    pub fn build(feeds: Vec<FeedSpec>) -> FeedMatcher {
        FeedMatcher::build_with(feeds, &TermStats::none())
    }

    /// Compiles the feeds, choosing each anchor set's rarest anchor by
    /// `stats` (e.g. [`TermStats::from_sample`] over a few thousand recent
    /// posts).
    pub fn build_with(mut feeds: Vec<FeedSpec>, stats: &TermStats) -> FeedMatcher {
        feeds.sort_by_key(|f| f.id);
        let mut b = Builder {
            terms: StrTable::new(),
            prefixes: StrTable::new(),
            wilds: Vec::new(),
            wild_ids: HashMap::new(),
            prefix_wilds: Vec::new(),
        };
        let mut progs = Vec::with_capacity(feeds.len());
        let mut term_buckets: Vec<Vec<Posting>> = Vec::new();
        let mut prefix_buckets: Vec<Vec<Posting>> = Vec::new();
        let mut rest: Vec<u32> = Vec::new();
        let mut gates: BTreeMap<Field, Vec<u32>> = BTreeMap::new();
        let mut always = Vec::new();
        let mut cost_cache: HashMap<Anchor, f64> = HashMap::new();
        for (index, feed) in feeds.iter().enumerate() {
            let index = index as u32;
            progs.push(Op::compile(feed.query.root(), &mut b));
            match feed.query.anchors() {
                Anchors::Unanchored => match gate_of(feed.query.root()) {
                    Some(field) => gates.entry(field.clone()).or_default().push(index),
                    None => always.push(index),
                },
                Anchors::AnyOf(sets) => {
                    for set in sets {
                        let mut best = 0;
                        let mut best_cost = f64::INFINITY;
                        for (i, a) in set.iter().enumerate() {
                            let cost = *cost_cache.entry(a.clone()).or_insert_with(|| stats.cost(a));
                            if cost < best_cost {
                                best = i;
                                best_cost = cost;
                            }
                        }
                        let rest_start = rest.len() as u32;
                        for (i, a) in set.iter().enumerate() {
                            if i != best {
                                let id = b.anchor_id(a);
                                rest.push(id);
                            }
                        }
                        let posting = Posting {
                            feed: index,
                            rest_start,
                            rest_len: rest.len() as u32 - rest_start,
                        };
                        let id = b.anchor_id(&set[best]);
                        let (buckets, slot) = if id & PREFIX_BIT != 0 {
                            (&mut prefix_buckets, id & !PREFIX_BIT)
                        } else {
                            (&mut term_buckets, id)
                        };
                        if buckets.len() <= slot as usize {
                            buckets.resize_with(slot as usize + 1, Vec::new);
                        }
                        buckets[slot as usize].push(posting);
                    }
                }
            }
        }
        term_buckets.resize_with(b.terms.len(), Vec::new);
        prefix_buckets.resize_with(b.prefixes.len(), Vec::new);
        let mut prefix_lens = 0u64;
        for id in 0..b.prefixes.len() as u32 {
            prefix_lens |= 1 << b.prefixes.key(id).len();
        }
        let (ids, names): (Vec<u32>, Vec<String>) = feeds.into_iter().map(|f| (f.id, f.name)).unzip();
        FeedMatcher {
            instance: INSTANCES.fetch_add(1, Ordering::Relaxed),
            ids: ids.into(),
            names,
            progs,
            terms: b.terms,
            term_postings: Lists::from_buckets(term_buckets),
            prefixes: b.prefixes,
            prefix_lens,
            prefix_postings: Lists::from_buckets(prefix_buckets),
            prefix_wilds: Lists::from_buckets(b.prefix_wilds),
            wilds: b.wilds,
            rest,
            gates: gates.into_iter().collect(),
            always,
        }
    }

    /// The number of feeds.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// `(id, name)` of every feed, by ascending id.
    pub fn feeds(&self) -> impl Iterator<Item = (u32, &str)> + '_ {
        self.ids.iter().copied().zip(self.names.iter().map(String::as_str))
    }

    /// How many feeds are verified against every post (unanchored and not
    /// gated by a field), and how many are gated by a field.
    pub fn unanchored_counts(&self) -> (usize, usize) {
        (self.always.len(), self.gates.iter().map(|(_, f)| f.len()).sum())
    }

    /// An estimate of the heap memory the compiled matcher holds, in bytes.
    pub fn memory_bytes(&self) -> usize {
        let op = std::mem::size_of::<Op>();
        self.ids.len() * 4
            + self
                .names
                .iter()
                .map(|n| n.capacity() + std::mem::size_of::<String>())
                .sum::<usize>()
            + self.progs.iter().map(|p| op + p.heap_bytes()).sum::<usize>()
            + self.terms.memory_bytes()
            + self.term_postings.memory_bytes()
            + self.prefixes.memory_bytes()
            + self.prefix_postings.memory_bytes()
            + self.prefix_wilds.memory_bytes()
            + self
                .wilds
                .iter()
                .map(|w| w.pattern.len() + std::mem::size_of::<Wildcard>())
                .sum::<usize>()
            + self.rest.capacity() * 4
            + self
                .gates
                .iter()
                .map(|(_, f)| std::mem::size_of::<(Field, Vec<u32>)>() + f.capacity() * 4)
                .sum::<usize>()
            + self.always.capacity() * 4
    }

    /// Puts into `out` (cleared first) the ids of every feed whose query
    /// matches `post`, ascending, without duplicates. `tokens` must be
    /// [`crate::text::tokenize`] of `post.text`.
    pub fn match_post(&self, post: &Post, tokens: &TokenizedText, scratch: &mut MatchScratch, out: &mut Vec<u32>) {
        out.clear();
        scratch.bind(self);
        let gen = scratch.next_generation();
        scratch.posts += 1;
        let s = &mut *scratch;
        s.candidates.clear();
        s.present_terms.clear();
        s.present_prefixes.clear();
        s.wild_occ.clear();
        s.token_terms.clear();

        // 1. Look every token up once.
        let folded = tokens.folded().as_bytes();
        for (i, tok) in tokens.tokens().iter().enumerate() {
            let bytes = folded.get(tok.start as usize..tok.end as usize).unwrap_or(&[]);
            let mut h = hash_start();
            if self.prefix_lens == 0 {
                for &byte in bytes {
                    h = hash_step(h, byte);
                }
            } else {
                for (l, &byte) in bytes.iter().enumerate() {
                    h = hash_step(h, byte);
                    let len = l + 1;
                    if len <= MAX_PREFIX && self.prefix_lens & (1 << len) != 0 {
                        if let Some(pid) = self.prefixes.get_hashed(h, &bytes[..len]) {
                            self.on_prefix(s, pid, i as u32, bytes, gen);
                        }
                    }
                }
            }
            let term = self.terms.get_hashed(h, bytes).unwrap_or(NO_TERM);
            s.token_terms.push(term);
            if term != NO_TERM && s.term_stamp[term as usize] != gen {
                s.term_stamp[term as usize] = gen;
                s.present_terms.push(term);
            }
        }

        // 2. Candidates.
        for &t in &s.present_terms {
            for p in self.term_postings.get(t) {
                self.consider(
                    p,
                    &s.term_stamp,
                    &s.prefix_stamp,
                    &mut s.feed_stamp,
                    &mut s.candidates,
                    gen,
                );
            }
        }
        for &pid in &s.present_prefixes {
            for p in self.prefix_postings.get(pid) {
                self.consider(
                    p,
                    &s.term_stamp,
                    &s.prefix_stamp,
                    &mut s.feed_stamp,
                    &mut s.candidates,
                    gen,
                );
            }
        }
        for (field, feeds) in &self.gates {
            if verify::field_matches(field, post) {
                for &f in feeds {
                    if s.feed_stamp[f as usize] != gen {
                        s.feed_stamp[f as usize] = gen;
                        s.candidates.push(f);
                    }
                }
            }
        }
        for &f in &self.always {
            if s.feed_stamp[f as usize] != gen {
                s.feed_stamp[f as usize] = gen;
                s.candidates.push(f);
            }
        }

        // 3. Verify, in feed order (so ids come out sorted).
        s.candidates.sort_unstable();
        let view = PostView {
            post,
            tokens: tokens.tokens(),
            token_terms: &s.token_terms,
            wild_occ: &s.wild_occ,
            term_stamp: &s.term_stamp,
            wild_stamp: &s.wild_stamp,
            gen,
        };
        for &f in &s.candidates {
            let prog = &self.progs[f as usize];
            s.verify_counter = s.verify_counter.wrapping_add(1);
            let stat = &mut s.stats[f as usize];
            stat.candidates += 1;
            let hit = if s.verify_counter % TIMING_SAMPLE == 0 {
                let start = Instant::now();
                let hit = prog.eval(&view, &mut s.bufs);
                stat.timed += 1;
                stat.timed_nanos += start.elapsed().as_nanos() as u64;
                hit
            } else {
                prog.eval(&view, &mut s.bufs)
            };
            if hit {
                stat.matched += 1;
                out.push(self.ids[f as usize]);
            }
        }
        out.dedup();
    }

    /// A token starting with prefix `pid`: stamps the prefix, and checks
    /// the wildcards that start with it.
    #[inline]
    fn on_prefix(&self, s: &mut MatchScratch, pid: u32, token: u32, bytes: &[u8], gen: u32) {
        if s.prefix_stamp[pid as usize] != gen {
            s.prefix_stamp[pid as usize] = gen;
            s.present_prefixes.push(pid);
        }
        for &w in self.prefix_wilds.get(pid) {
            if glob(&self.wilds[w as usize].pattern, bytes) {
                s.wild_stamp[w as usize] = gen;
                s.wild_occ.push((w, token));
            }
        }
    }

    #[inline]
    fn consider(
        &self,
        p: &Posting,
        term_stamp: &[u32],
        prefix_stamp: &[u32],
        feed_stamp: &mut [u32],
        candidates: &mut Vec<u32>,
        gen: u32,
    ) {
        let f = p.feed as usize;
        if feed_stamp[f] == gen {
            return;
        }
        let rest = &self.rest[p.rest_start as usize..(p.rest_start + p.rest_len) as usize];
        let complete = rest.iter().all(|&a| {
            if a & PREFIX_BIT != 0 {
                prefix_stamp[(a & !PREFIX_BIT) as usize] == gen
            } else {
                term_stamp[a as usize] == gen
            }
        });
        if complete {
            feed_stamp[f] = gen;
            candidates.push(p.feed);
        }
    }
}

/// Per-feed counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FeedStats {
    /// Posts the feed matched.
    pub matched: u64,
    /// Posts the feed was verified against (its candidate count).
    pub candidates: u64,
    /// Verifications that were timed (one in [`TIMING_SAMPLE`]).
    pub timed: u64,
    /// Total time of the timed verifications, in nanoseconds.
    pub timed_nanos: u64,
}

impl FeedStats {
    /// The mean verification time, in nanoseconds (0 when none was timed).
    pub fn mean_verify_nanos(&self) -> f64 {
        if self.timed == 0 {
            0.0
        } else {
            self.timed_nanos as f64 / self.timed as f64
        }
    }

    /// The estimated total verification time, in nanoseconds.
    pub fn est_verify_nanos(&self) -> f64 {
        self.mean_verify_nanos() * self.candidates as f64
    }

    fn add(&mut self, o: &FeedStats) {
        self.matched += o.matched;
        self.candidates += o.candidates;
        self.timed += o.timed;
        self.timed_nanos += o.timed_nanos;
    }
}

/// Statistics of one or more threads, keyed by feed id (stable across
/// matcher swaps).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MatchStats {
    /// Posts matched against (all feeds).
    pub posts: u64,
    /// Counters of every feed that was verified at least once.
    pub feeds: BTreeMap<u32, FeedStats>,
}

impl MatchStats {
    /// Adds another thread's (or period's) counters.
    pub fn merge(&mut self, other: &MatchStats) {
        self.posts += other.posts;
        for (id, s) in &other.feeds {
            self.feeds.entry(*id).or_default().add(s);
        }
    }

    /// The `n` feeds with the most estimated verification time, slowest
    /// first.
    pub fn slowest(&self, n: usize) -> Vec<(u32, FeedStats)> {
        let mut all: Vec<(u32, FeedStats)> = self.feeds.iter().map(|(&id, &s)| (id, s)).collect();
        all.sort_by(|a, b| b.1.est_verify_nanos().total_cmp(&a.1.est_verify_nanos()));
        all.truncate(n);
        all
    }
}

/// Per-thread reusable state of [`FeedMatcher::match_post`]: generation
/// stamps (so nothing is cleared per post), token lookups, candidate list,
/// span buffers, and this thread's statistics.
#[derive(Debug, Default)]
pub struct MatchScratch {
    /// The matcher this scratch is sized for, and its feed ids.
    bound: u64,
    ids: Option<Arc<[u32]>>,
    gen: u32,
    term_stamp: Vec<u32>,
    prefix_stamp: Vec<u32>,
    wild_stamp: Vec<u32>,
    feed_stamp: Vec<u32>,
    token_terms: Vec<u32>,
    wild_occ: Vec<(u32, u32)>,
    present_terms: Vec<u32>,
    present_prefixes: Vec<u32>,
    candidates: Vec<u32>,
    bufs: SpanBufs,
    stats: Vec<FeedStats>,
    posts: u64,
    verify_counter: u32,
    /// Statistics flushed from earlier matchers (or not yet taken).
    pending: MatchStats,
}

impl MatchScratch {
    pub fn new() -> MatchScratch {
        MatchScratch::default()
    }

    /// Takes the statistics gathered since the last call.
    pub fn take_stats(&mut self) -> MatchStats {
        self.flush_stats();
        std::mem::take(&mut self.pending)
    }

    fn flush_stats(&mut self) {
        self.pending.posts += std::mem::take(&mut self.posts);
        if let Some(ids) = &self.ids {
            for (i, s) in self.stats.iter_mut().enumerate() {
                if s.candidates > 0 {
                    if let Some(&id) = ids.get(i) {
                        self.pending.feeds.entry(id).or_default().add(s);
                    }
                    *s = FeedStats::default();
                }
            }
        }
    }

    /// Sizes the buffers for `m` (once per matcher).
    fn bind(&mut self, m: &FeedMatcher) {
        if self.bound == m.instance {
            return;
        }
        self.flush_stats();
        self.bound = m.instance;
        self.ids = Some(m.ids.clone());
        // Fresh stamps: ids of the old matcher mean nothing here.
        self.gen = 0;
        reset(&mut self.term_stamp, m.terms.len());
        reset(&mut self.prefix_stamp, m.prefixes.len());
        reset(&mut self.wild_stamp, m.wilds.len());
        reset(&mut self.feed_stamp, m.ids.len());
        self.stats.clear();
        self.stats.resize(m.ids.len(), FeedStats::default());
    }

    fn next_generation(&mut self) -> u32 {
        self.gen = self.gen.wrapping_add(1);
        if self.gen == 0 {
            // Wrapped: clear the stamps once every 4 billion posts.
            for v in [
                &mut self.term_stamp,
                &mut self.prefix_stamp,
                &mut self.wild_stamp,
                &mut self.feed_stamp,
            ] {
                v.fill(0);
            }
            self.gen = 1;
        }
        self.gen
    }
}

fn reset(v: &mut Vec<u32>, len: usize) {
    v.clear();
    v.resize(len, 0);
}
