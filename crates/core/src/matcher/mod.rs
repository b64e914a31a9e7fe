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
//!    the terms, prefixes and wildcards present; then checks each exact
//!    phrase of any query (`"climate change"`) whose rarest word is
//!    present, once, and stamps those found: a phrase is then as cheap to
//!    test, and to index under, as a term;
//! 2. collects candidates into a bitset over the feeds: the feeds indexed
//!    under a present term, prefix, wildcard or phrase whose entry is
//!    complete, plus the unanchored feeds that must see every post (see
//!    below);
//! 3. walks the bitset in index order: a candidate that a *sure* entry
//!    proved (see below) is a match; the others are verified with their
//!    compiled query ([`verify`]), which reads the stamps instead of
//!    scanning tokens. Matches are set in a second bitset, by output slot
//!    (the feed id itself when ids are dense, else its rank among the
//!    ids), so the ids come out sorted without a sort. Both bitsets have a
//!    summary level, so walking a few hundred set bits among 100k costs
//!    per set word, not per word.
//!
//! Feeds are numbered internally so that feeds indexed under the same
//! anchor are neighbours: a post's candidates then form a few runs, and
//! their programs and counters are read from memory in sequence instead
//! of one cache miss each (with 100k feeds, this is most of the cost). For
//! the same reason, what the verify stage needs per candidate (program
//! start, output slot) is packed in one 8-byte [`Unit`].
//!
//! **Direct feeds** skip verification. A *literal* is an exact word, a
//! wildcard or an exact phrase: the matcher stamps each one present. A
//! query that is a boolean of literals with `NOT` only on literals
//! (`climate`, `#aurora OR corvex`, `flood warning`, `"climate change"
//! -hoax`, `"sea level" AND (rise OR surge) -film`) is multiplied out into
//! an `OR` of disjuncts, each some literals present and some absent (at
//! most [`MAX_DISJUNCTS`]), and indexed by this module itself: one entry
//! per disjunct, under its rarest present literal, with the other
//! literals to require and those to forbid as the rest of the entry. Such
//! an entry is *sure*: when it is complete, the feed matches. An `OR` with
//! only some such disjuncts (`"climate change" OR (corvex NEAR/2 bird)`)
//! gets sure entries for those and ordinary entries (anchor sets) for the
//! others, so a post with the phrase skips verification too.
//!
//! Identical queries (many users watching the same brand) are compiled,
//! indexed and verified once; a match is reported for every feed with it.
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
use verify::{glob, Code, Op, PostView, Resolve, SpanBufs, Word, NO_TERM};

/// One verification in this many is timed (a power of two).
pub const TIMING_SAMPLE: u32 = 64;

/// A timed verification counts for at most this long: a longer sample is
/// almost always the thread being descheduled mid-measurement, and one such
/// sample would otherwise dominate a feed's mean.
const MAX_TIMED_NANOS: u64 = 100_000;

/// Wildcard prefixes longer than this (in bytes) are indexed by their first
/// bytes only (a shorter prefix is a weaker but still sound filter).
const MAX_PREFIX: usize = 63;

/// The size of the prefix filter, in bits (2 KiB).
const PREFIX_FILTER_BITS: usize = 1 << 14;

/// The filter bit of a prefix hash.
#[inline]
fn filter_bit(h: u64) -> usize {
    (h >> 40) as usize & (PREFIX_FILTER_BITS - 1)
}

/// An item of an index entry (its key, the other anchors of its set, the
/// literals of a sure disjunct): an id tagged with its kind in the top two
/// bits, so that one list holds every kind and one stamp read checks one.
const TAG_SHIFT: u32 = 30;
const ID_MASK: u32 = (1 << TAG_SHIFT) - 1;
const TAG_TERM: u32 = 0;
const TAG_PREFIX: u32 = 1 << TAG_SHIFT;
const TAG_WILD: u32 = 2 << TAG_SHIFT;
const TAG_PHRASE: u32 = 3 << TAG_SHIFT;

/// Marks an index entry whose complete set proves a match (see the module
/// doc): set on the entry's unit index.
const SURE_BIT: u32 = 1 << 31;

/// Marks [`Unit::out`] as an index into [`FeedMatcher::shared`].
const SHARED_BIT: u32 = 1 << 31;

/// A candidate, and a match, in a unit's packed counters
/// (`MatchScratch::counts`).
const ONE_CANDIDATE: u64 = 1;
const ONE_MATCH: u64 = 1 << 32;

/// Feed ids are used as output slots directly when the largest is below
/// this many times the number of feeds (plus a little): the output bitset
/// stays small, and reporting a match needs no lookup.
const DENSE_FACTOR: u64 = 4;

/// What the verify stage reads per candidate, packed in 8 bytes so that
/// neighbouring units (candidates come in anchor clusters) share a cache
/// line: with 100k feeds, separate arrays meant a cache miss each.
#[derive(Clone, Copy, Debug)]
struct Unit {
    /// Where the unit's program starts in [`FeedMatcher::code`].
    prog: u32,
    /// The output slot of its feed; with [`SHARED_BIT`], the index of its
    /// feeds' slots in [`FeedMatcher::shared`] (a query several feeds
    /// share, the rare case).
    out: u32,
}

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
    /// The pattern is its indexed prefix and one final `*` (`climat*`, the
    /// common wildcard): every token with the prefix matches, no glob.
    any_suffix: bool,
    /// Cheap necessary conditions checked before the glob (most tokens
    /// sharing a short prefix like `re` fail them): the token's length in
    /// bytes is within `min_len..=max_len`, and it ends with the pattern's
    /// bytes from `tail` (its literal end, after the last `*` or `?`).
    min_len: usize,
    max_len: usize,
    tail: usize,
}

impl Wildcard {
    fn new(pattern: &str, any_suffix: bool) -> Wildcard {
        let bytes = pattern.as_bytes();
        let stars = bytes.iter().filter(|&&b| b == b'*').count();
        let singles = bytes.iter().filter(|&&b| b == b'?').count();
        // Each `?` is one character: 1 to 4 bytes.
        let literal = bytes.len() - stars - singles;
        Wildcard {
            pattern: bytes.into(),
            any_suffix,
            min_len: literal + singles,
            max_len: if stars > 0 { usize::MAX } else { literal + 4 * singles },
            tail: bytes.iter().rposition(|&b| b == b'*' || b == b'?').map_or(0, |i| i + 1),
        }
    }

    /// Whether a folded token matches the pattern.
    #[inline]
    fn matches(&self, token: &[u8]) -> bool {
        self.any_suffix
            || ((self.min_len..=self.max_len).contains(&token.len())
                && ends_with(token, &self.pattern[self.tail..])
                && glob(&self.pattern, token))
    }
}

/// `a.ends_with(b)` for short `b`, inline (no `memcmp` call).
#[inline]
fn ends_with(a: &[u8], b: &[u8]) -> bool {
    a.len() >= b.len() && a.iter().rev().zip(b.iter().rev()).all(|(x, y)| x == y)
}

/// An index entry: `feed` becomes a candidate when the entry's key is
/// present, and so are the `need` items from `rest[rest_start]` (the other
/// anchors of its set, or literals of its disjunct), and none of the
/// `forbid` items after them is (negated literals, sure entries only).
#[derive(Clone, Copy, Debug)]
struct Posting {
    feed: u32,
    rest_start: u32,
    need: u16,
    forbid: u16,
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

    /// The number of lists.
    fn len(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    fn memory_bytes(&self) -> usize {
        self.offsets.capacity() * 4 + self.items.capacity() * std::mem::size_of::<T>()
    }
}

/// Index lists under one kind of key (term, prefix or wildcard id): feeds
/// that become candidates on the key alone, and entries with more anchors
/// to check.
#[derive(Clone, Debug)]
struct Index {
    plain: Lists<u32>,
    sets: Lists<Posting>,
}

impl Index {
    fn memory_bytes(&self) -> usize {
        self.plain.memory_bytes() + self.sets.memory_bytes()
    }
}

/// [`Index`] under construction.
#[derive(Default)]
struct IndexBuilder {
    plain: Vec<Vec<u32>>,
    sets: Vec<Vec<Posting>>,
}

impl IndexBuilder {
    fn add(&mut self, key: u32, p: Posting) {
        let k = key as usize;
        if p.need == 0 && p.forbid == 0 {
            if self.plain.len() <= k {
                self.plain.resize_with(k + 1, Vec::new);
            }
            self.plain[k].push(p.feed);
        } else {
            if self.sets.len() <= k {
                self.sets.resize_with(k + 1, Vec::new);
            }
            self.sets[k].push(p);
        }
    }

    fn finish(self) -> Index {
        Index {
            plain: Lists::from_buckets(self.plain),
            sets: Lists::from_buckets(self.sets),
        }
    }
}

/// Every feed's query, compiled and indexed. See the module doc.
#[derive(Debug)]
pub struct FeedMatcher {
    /// Distinguishes matchers, so a scratch knows when it must re-bind.
    instance: u64,
    /// Per internal index (a distinct query; clustered by anchor): the ids
    /// of the feeds with that query (for statistics only).
    unit_ids: Arc<Lists<u32>>,
    /// Per internal index: what verifying and reporting it needs.
    units: Vec<Unit>,
    /// The output slots of units shared by several feeds.
    shared: Lists<u32>,
    /// Feed ids by output slot, or empty when a slot *is* the id.
    slot_ids: Vec<u32>,
    /// The number of output slots.
    n_slots: usize,
    /// Feed ids in ascending order, and their names.
    sorted_ids: Vec<u32>,
    names: Vec<String>,
    /// Every feed's compiled query.
    code: Code,
    /// Bit per unit: the query is direct (see the module doc; at match
    /// time, its entries being sure is what skips verification).
    direct: Vec<u64>,
    /// Every exact word of every query.
    terms: StrTable,
    by_term: Index,
    /// Literal prefixes of wildcards and prefix anchors.
    prefixes: StrTable,
    /// Bit `L` set when some prefix is `L` bytes long.
    prefix_lens: u64,
    /// A one-hash Bloom filter of the terms' hashes (about 16 bits a term,
    /// at least 8 KiB): tokens that are no query's word (most stop words)
    /// skip the term table, which is larger than L1 cache.
    term_filter: Vec<u64>,
    term_filter_mask: usize,
    /// A one-hash Bloom filter of the prefixes' hashes: most probes of a
    /// token's prefixes stop here, in L1 cache, before the table.
    prefix_filter: Vec<u64>,
    by_prefix: Index,
    /// Wildcard ids per prefix id.
    prefix_wilds: Lists<u32>,
    wilds: Vec<Wildcard>,
    by_wild: Index,
    /// Exact phrases (the term ids of each, by phrase id), and the phrases
    /// to check when a term is present: each under its rarest word.
    phrase_words: Lists<u32>,
    phrases_by_term: Lists<u32>,
    by_phrase: Index,
    /// The other items of index entries (tagged ids, see [`TAG_SHIFT`]).
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
            Anchor::Prefix(p) => self.prefix_id(p) | TAG_PREFIX,
        }
    }

    /// The tagged id of a literal of a sure disjunct.
    fn lit_item(&mut self, code: &mut Code, l: Lit<'_>) -> u32 {
        match l {
            Lit::Word(p) => match self.word(p) {
                Word::Term(id) => id | TAG_TERM,
                Word::Wild(id) => id | TAG_WILD,
            },
            Lit::Phrase(words) => {
                let terms: Vec<u32> = words.iter().map(|w| self.terms.intern(w.as_str().as_bytes())).collect();
                code.exact_phrase_id(&terms) | TAG_PHRASE
            }
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
                let literal = pattern.literal_prefix();
                let indexed = truncate(literal);
                self.wilds
                    .push(Wildcard::new(p, indexed.len() + 1 == p.len() && p.ends_with('*')));
                self.wild_ids.insert(p.clone(), id);
                let prefix = self.prefix_id(literal);
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

/// At most this many sure disjuncts per query (an `AND` of `OR`s is
/// multiplied out; beyond this, the query is verified instead).
const MAX_DISJUNCTS: usize = 16;

/// At most this many literals in one sure disjunct.
const MAX_LITERALS: usize = 64;

/// A literal of a sure disjunct: something the matcher stamps per post.
#[derive(Clone, Copy, Debug)]
enum Lit<'a> {
    /// An exact word or a wildcard (some token matches it).
    Word(&'a Pattern),
    /// An exact phrase: exact words, no slop (looked up once per post).
    Phrase(&'a [Pattern]),
}

/// A sure disjunct: every literal of `pos` present and none of `neg`.
#[derive(Clone, Debug, Default)]
struct Conj<'a> {
    pos: Vec<Lit<'a>>,
    neg: Vec<Lit<'a>>,
}

impl<'a> Conj<'a> {
    /// Both conjunctions at once.
    fn and(&self, other: &Conj<'a>) -> Conj<'a> {
        Conj {
            pos: self.pos.iter().chain(&other.pos).copied().collect(),
            neg: self.neg.iter().chain(&other.neg).copied().collect(),
        }
    }
}

/// The literal a node is, if it is one.
fn lit(node: &Node) -> Option<Lit<'_>> {
    match node {
        Node::Term(p) => Some(Lit::Word(p)),
        Node::Phrase { words, slop: 0 } if words.iter().all(|w| matches!(w, Pattern::Exact(_))) => {
            Some(Lit::Phrase(words))
        }
        _ => None,
    }
}

/// A node as an `OR` of conjunctions of literals and negated literals
/// (an `AND` over an `OR` multiplied out: `a (b OR c) -d` is
/// `(a b -d) OR (a c -d)`), if it is a boolean of literals small enough.
fn conjunctions(node: &Node) -> Option<Vec<Conj<'_>>> {
    let out = match node {
        Node::Not(child) => vec![Conj {
            pos: Vec::new(),
            neg: vec![lit(child)?],
        }],
        Node::Or(children) => {
            let mut all = Vec::new();
            for c in children {
                all.extend(conjunctions(c)?);
                if all.len() > MAX_DISJUNCTS {
                    return None;
                }
            }
            all
        }
        Node::And(children) => {
            let mut acc = vec![Conj::default()];
            for c in children {
                let alts = conjunctions(c)?;
                if acc.len() * alts.len() > MAX_DISJUNCTS {
                    return None;
                }
                acc = acc.iter().flat_map(|a| alts.iter().map(move |b| a.and(b))).collect();
            }
            acc
        }
        other => vec![Conj {
            pos: vec![lit(other)?],
            neg: Vec::new(),
        }],
    };
    if out.iter().any(|c| c.pos.len() + c.neg.len() > MAX_LITERALS) {
        return None;
    }
    Some(out)
}

/// The disjuncts of a direct query (see the module doc): such a query
/// matches exactly when one disjunct's positive literals are all present
/// and none of its negated ones is. Each disjunct needs a positive literal
/// to be indexed under.
fn direct_disjuncts(node: &Node) -> Option<Vec<Conj<'_>>> {
    conjunctions(node).filter(|all| all.iter().all(|c| !c.pos.is_empty()))
}

/// A disjunct of an `OR` that is not direct as a whole.
enum Part<'a> {
    /// Present means matched.
    Sure(Vec<Conj<'a>>),
    /// Needs verification; present only if one of these sets is.
    Verify(Vec<Vec<Anchor>>),
}

/// The disjuncts of an `OR` with at least one direct disjunct and every
/// disjunct anchored (`"climate change" OR (corvex NEAR/2 bird)`): a post
/// with the phrase needs no verification.
fn partly_direct(node: &Node) -> Option<Vec<Part<'_>>> {
    let Node::Or(children) = node else {
        return None;
    };
    let mut any_sure = false;
    let parts = children
        .iter()
        .map(|c| match direct_disjuncts(c) {
            Some(d) => {
                any_sure = true;
                Some(Part::Sure(d))
            }
            None => match Anchors::of(c) {
                Anchors::AnyOf(sets) => Some(Part::Verify(sets)),
                Anchors::Unanchored => None,
            },
        })
        .collect::<Option<Vec<_>>>()?;
    any_sure.then_some(parts)
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

/// Index entries under construction, and the rarity costs seen so far.
struct Indexer<'s> {
    stats: &'s TermStats,
    costs: HashMap<Anchor, f64>,
    by_term: IndexBuilder,
    by_prefix: IndexBuilder,
    by_wild: IndexBuilder,
    by_phrase: IndexBuilder,
    rest: Vec<u32>,
}

impl Indexer<'_> {
    /// The anchor a feed is (mostly) indexed under, to number feeds
    /// sharing it consecutively.
    fn cluster_key(&mut self, node: &Node) -> String {
        if let Some(disjuncts) = direct_disjuncts(node) {
            return match disjuncts.first().and_then(|c| self.key_of(c)) {
                Some(Lit::Word(p)) => p.as_str().to_string(),
                Some(Lit::Phrase(words)) => {
                    let words: Vec<&str> = words.iter().map(Pattern::as_str).collect();
                    format!("\"{}\"", words.join(" "))
                }
                None => String::new(),
            };
        }
        match Anchors::of(node) {
            Anchors::AnyOf(sets) => sets
                .first()
                .and_then(|set| {
                    set.iter()
                        .map(|a| (self.cost(a), a))
                        .min_by(|x, y| x.0.total_cmp(&y.0))
                        .map(|(_, a)| a.to_string())
                })
                .unwrap_or_default(),
            Anchors::Unanchored => String::new(),
        }
    }

    fn cost(&mut self, a: &Anchor) -> f64 {
        let stats = self.stats;
        *self.costs.entry(a.clone()).or_insert_with(|| stats.cost(a))
    }

    /// A literal's rarity: its word's, a wildcard's prefix's, or for a
    /// phrase, half its rarest word's (a phrase is rarer than its words).
    fn lit_cost(&mut self, l: Lit<'_>) -> f64 {
        let anchor = |p: &Pattern| match p {
            Pattern::Exact(w) => Anchor::Token(w.clone()),
            Pattern::Wildcard(_) => Anchor::Prefix(p.literal_prefix().to_string()),
        };
        match l {
            Lit::Word(p) => self.cost(&anchor(p)),
            Lit::Phrase(words) => {
                words
                    .iter()
                    .map(|w| self.cost(&anchor(w)))
                    .fold(f64::INFINITY, f64::min)
                    * 0.5
            }
        }
    }

    /// The rarest positive literal of a disjunct: the one to index it
    /// under.
    fn key_of<'a>(&mut self, c: &Conj<'a>) -> Option<Lit<'a>> {
        let mut best = None;
        let mut best_cost = f64::INFINITY;
        for &l in &c.pos {
            let cost = self.lit_cost(l);
            if best.is_none() || cost < best_cost {
                best = Some(l);
                best_cost = cost;
            }
        }
        best
    }

    /// Indexes a disjunct of `feed` whose presence proves a match, under
    /// its rarest positive literal.
    fn add_sure(&mut self, b: &mut Builder, code: &mut Code, feed: u32, c: &Conj<'_>) {
        let Some(key) = self.key_of(c) else {
            return;
        };
        let rest_start = self.rest.len() as u32;
        let mut key_seen = false;
        for &l in &c.pos {
            // The key once (a literal may be repeated: `a AND a`).
            if !key_seen && same_lit(l, key) {
                key_seen = true;
                continue;
            }
            let item = b.lit_item(code, l);
            self.rest.push(item);
        }
        for &l in &c.neg {
            let item = b.lit_item(code, l);
            self.rest.push(item);
        }
        // `conjunctions` keeps disjuncts below `MAX_LITERALS`.
        let posting = Posting {
            feed: feed | SURE_BIT,
            rest_start,
            need: (c.pos.len() - 1) as u16,
            forbid: c.neg.len() as u16,
        };
        let key = b.lit_item(code, key);
        self.add(key, posting);
    }

    /// Indexes `feed` under the rarest anchor of `set`, the others as the
    /// rest of the entry.
    fn add_set(&mut self, b: &mut Builder, feed: u32, set: &[Anchor]) {
        let mut best = 0;
        let mut best_cost = f64::INFINITY;
        for (i, a) in set.iter().enumerate() {
            let cost = self.cost(a);
            if cost < best_cost {
                best = i;
                best_cost = cost;
            }
        }
        let rest_start = self.rest.len() as u32;
        for (i, a) in set.iter().enumerate() {
            // A filter may require fewer anchors than it could (sound,
            // only weaker): the entry's count is a `u16`.
            if i != best && self.rest.len() - (rest_start as usize) < u16::MAX as usize {
                let id = b.anchor_id(a);
                self.rest.push(id);
            }
        }
        let Some(anchor) = set.get(best) else {
            return;
        };
        let posting = Posting {
            feed,
            rest_start,
            need: (self.rest.len() - rest_start as usize) as u16,
            forbid: 0,
        };
        let key = b.anchor_id(anchor);
        self.add(key, posting);
    }

    /// Adds an entry under a tagged key.
    fn add(&mut self, key: u32, posting: Posting) {
        let id = key & ID_MASK;
        match key & !ID_MASK {
            TAG_TERM => self.by_term.add(id, posting),
            TAG_PREFIX => self.by_prefix.add(id, posting),
            TAG_WILD => self.by_wild.add(id, posting),
            _ => self.by_phrase.add(id, posting),
        }
    }
}

/// Whether two literals are the same pattern or phrase.
fn same_lit(a: Lit<'_>, b: Lit<'_>) -> bool {
    match (a, b) {
        (Lit::Word(x), Lit::Word(y)) => x == y,
        (Lit::Phrase(x), Lit::Phrase(y)) => x == y,
        _ => false,
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
        let sorted_ids: Vec<u32> = feeds.iter().map(|f| f.id).collect();
        let mut b = Builder {
            terms: StrTable::new(),
            prefixes: StrTable::new(),
            wilds: Vec::new(),
            wild_ids: HashMap::new(),
            prefix_wilds: Vec::new(),
        };
        let mut ix = Indexer {
            stats,
            costs: HashMap::new(),
            by_term: IndexBuilder::default(),
            by_prefix: IndexBuilder::default(),
            by_wild: IndexBuilder::default(),
            by_phrase: IndexBuilder::default(),
            rest: Vec::new(),
        };
        // Identical queries (common when many users watch the same brand)
        // are compiled and verified once: a unit per distinct query.
        let mut unit_of: HashMap<&Query, usize> = HashMap::new();
        let mut units: Vec<(&Query, Vec<u32>)> = Vec::new();
        for (rank, f) in feeds.iter().enumerate() {
            let u = *unit_of.entry(&f.query).or_insert_with(|| {
                units.push((&f.query, Vec::new()));
                units.len() - 1
            });
            units[u].1.push(rank as u32);
        }
        // Cluster: order units by the anchor they will be indexed under.
        let mut order: Vec<(String, u32, usize)> = units
            .iter()
            .enumerate()
            .map(|(u, (q, ranks))| (ix.cluster_key(q.root()), ranks[0], u))
            .collect();
        order.sort_unstable();
        let mut queries: Vec<&Query> = Vec::with_capacity(order.len());
        let mut rank_lists = Vec::with_capacity(order.len());
        let mut id_lists = Vec::with_capacity(order.len());
        for &(_, _, u) in &order {
            let (q, ranks) = &units[u];
            queries.push(q);
            id_lists.push(ranks.iter().map(|&r| feeds[r as usize].id).collect::<Vec<u32>>());
            rank_lists.push(ranks.clone());
        }
        // Output slots: the ids themselves when they are dense enough
        // (the usual case: ids handed out in sequence), else ranks.
        let max_id = sorted_ids.last().map_or(0, |&id| id as u64);
        let dense = max_id < DENSE_FACTOR * sorted_ids.len() as u64 + 4096;
        let slot = |rank: u32| if dense { sorted_ids[rank as usize] } else { rank };
        let n_slots = if dense {
            sorted_ids.last().map_or(0, |&id| id as usize + 1)
        } else {
            sorted_ids.len()
        };
        let mut shared_lists: Vec<Vec<u32>> = Vec::new();
        let mut units_out: Vec<u32> = Vec::with_capacity(rank_lists.len());
        for ranks in &rank_lists {
            let slots: Vec<u32> = ranks.iter().map(|&r| slot(r)).collect();
            match slots[..] {
                [one] if one & SHARED_BIT == 0 => units_out.push(one),
                _ => {
                    units_out.push(shared_lists.len() as u32 | SHARED_BIT);
                    shared_lists.push(slots);
                }
            }
        }
        let mut code = Code::default();
        let mut starts = Vec::with_capacity(queries.len());
        let mut direct = vec![0u64; queries.len().div_ceil(64)];
        let mut gates: BTreeMap<Field, Vec<u32>> = BTreeMap::new();
        let mut always = Vec::new();
        for (index, query) in queries.iter().enumerate() {
            let index = index as u32;
            starts.push(code.push(&Op::compile(query.root(), &mut b)));
            if let Some(disjuncts) = direct_disjuncts(query.root()) {
                direct[index as usize / 64] |= 1 << (index % 64);
                for d in &disjuncts {
                    ix.add_sure(&mut b, &mut code, index, d);
                }
                continue;
            }
            if let Some(parts) = partly_direct(query.root()) {
                // Each disjunct indexed on its own: the direct ones as
                // sure entries, the others by their anchors.
                for part in parts {
                    match part {
                        Part::Sure(disjuncts) => {
                            for d in &disjuncts {
                                ix.add_sure(&mut b, &mut code, index, d);
                            }
                        }
                        Part::Verify(sets) => {
                            for set in sets {
                                ix.add_set(&mut b, index, &set);
                            }
                        }
                    }
                }
                continue;
            }
            match query.anchors() {
                Anchors::Unanchored => match gate_of(query.root()) {
                    Some(field) => gates.entry(field.clone()).or_default().push(index),
                    None => always.push(index),
                },
                Anchors::AnyOf(sets) => {
                    for set in sets {
                        ix.add_set(&mut b, index, &set);
                    }
                }
            }
        }
        let mut prefix_lens = 0u64;
        let mut prefix_filter = vec![0u64; PREFIX_FILTER_BITS / 64];
        for id in 0..b.prefixes.len() as u32 {
            let key = b.prefixes.key(id);
            prefix_lens |= 1 << key.len();
            let bit = filter_bit(table::hash_bytes(key));
            prefix_filter[bit / 64] |= 1 << (bit % 64);
        }
        let term_filter_bits = (b.terms.len() * 16).next_power_of_two().max(1 << 16);
        let mut term_filter = vec![0u64; term_filter_bits / 64];
        for id in 0..b.terms.len() as u32 {
            let bit = (table::hash_bytes(b.terms.key(id)) >> 32) as usize & (term_filter_bits - 1);
            term_filter[bit / 64] |= 1 << (bit % 64);
        }
        // Each exact phrase is checked per post under its rarest word.
        let phrase_words = code.exact_phrase_terms();
        let mut phrases_by_term: Vec<Vec<u32>> = vec![Vec::new(); b.terms.len()];
        for (id, words) in phrase_words.iter().enumerate() {
            let rarest = words.iter().copied().min_by(|&x, &y| {
                let cost = |ix: &mut Indexer<'_>, t: u32| {
                    let word = String::from_utf8_lossy(b.terms.key(t)).into_owned();
                    ix.cost(&Anchor::Token(word))
                };
                cost(&mut ix, x).total_cmp(&cost(&mut ix, y))
            });
            if let Some(list) = rarest.and_then(|t| phrases_by_term.get_mut(t as usize)) {
                list.push(id as u32);
            }
        }
        let names: Vec<String> = feeds.into_iter().map(|f| f.name).collect();
        FeedMatcher {
            instance: INSTANCES.fetch_add(1, Ordering::Relaxed),
            unit_ids: Arc::new(Lists::from_buckets(id_lists)),
            units: starts
                .iter()
                .zip(&units_out)
                .map(|(&prog, &out)| Unit { prog, out })
                .collect(),
            shared: Lists::from_buckets(shared_lists),
            slot_ids: if dense { Vec::new() } else { sorted_ids.clone() },
            n_slots,
            sorted_ids,
            names,
            code,
            direct,
            terms: b.terms,
            by_term: ix.by_term.finish(),
            prefixes: b.prefixes,
            prefix_lens,
            prefix_filter,
            term_filter,
            term_filter_mask: term_filter_bits - 1,
            by_prefix: ix.by_prefix.finish(),
            prefix_wilds: Lists::from_buckets(b.prefix_wilds),
            wilds: b.wilds,
            by_wild: ix.by_wild.finish(),
            phrase_words: Lists::from_buckets(phrase_words.into_iter().map(Vec::from).collect()),
            phrases_by_term: Lists::from_buckets(phrases_by_term),
            by_phrase: ix.by_phrase.finish(),
            rest: ix.rest,
            gates: gates.into_iter().collect(),
            always,
        }
    }

    /// The number of feeds.
    pub fn len(&self) -> usize {
        self.sorted_ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sorted_ids.is_empty()
    }

    /// The number of distinct queries (each compiled and verified once).
    pub fn distinct_queries(&self) -> usize {
        self.units.len()
    }

    /// `(id, name)` of every feed, by ascending id.
    pub fn feeds(&self) -> impl Iterator<Item = (u32, &str)> + '_ {
        self.sorted_ids
            .iter()
            .copied()
            .zip(self.names.iter().map(String::as_str))
    }

    /// How many distinct queries are verified against every post
    /// (unanchored and not gated by a field), and how many are gated by a
    /// field.
    pub fn unanchored_counts(&self) -> (usize, usize) {
        (self.always.len(), self.gates.iter().map(|(_, f)| f.len()).sum())
    }

    /// How many distinct queries are direct (a candidate is a match, no
    /// verification).
    pub fn direct_count(&self) -> usize {
        self.direct.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// An estimate of the heap memory the compiled matcher holds, in bytes.
    pub fn memory_bytes(&self) -> usize {
        self.unit_ids.memory_bytes()
            + self.units.capacity() * std::mem::size_of::<Unit>()
            + self.shared.memory_bytes()
            + self.slot_ids.capacity() * 4
            + self.sorted_ids.capacity() * 4
            + self
                .names
                .iter()
                .map(|n| n.capacity() + std::mem::size_of::<String>())
                .sum::<usize>()
            + self.code.memory_bytes()
            + self.direct.capacity() * 8
            + self.terms.memory_bytes()
            + self.by_term.memory_bytes()
            + self.prefixes.memory_bytes()
            + self.by_prefix.memory_bytes()
            + self.prefix_wilds.memory_bytes()
            + self
                .wilds
                .iter()
                .map(|w| w.pattern.len() + std::mem::size_of::<Wildcard>())
                .sum::<usize>()
            + self.by_wild.memory_bytes()
            + self.phrase_words.memory_bytes()
            + self.phrases_by_term.memory_bytes()
            + self.by_phrase.memory_bytes()
            + self.rest.capacity() * 4
            + self.prefix_filter.capacity() * 8
            + self.term_filter.capacity() * 8
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
        let s = &mut *scratch;
        s.present_terms.clear();
        s.present_prefixes.clear();
        s.present_wilds.clear();
        s.present_phrases.clear();
        s.wild_occ.clear();
        s.next_occ.clear();

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
                    if len <= MAX_PREFIX && self.prefix_lens & (1 << len) != 0 && self.may_be_prefix(h) {
                        if let Some(pid) = self.prefixes.get_hashed(h, &bytes[..len]) {
                            self.on_prefix(s, pid, i as u32, bytes, gen);
                        }
                    }
                }
            }
            let term = if self.may_be_term(h) {
                self.terms.get_hashed(h, bytes).unwrap_or(NO_TERM)
            } else {
                NO_TERM
            };
            s.next_occ.push(NO_TERM);
            if term != NO_TERM {
                let t = term as usize;
                if s.term_stamp[t] != gen {
                    s.term_stamp[t] = gen;
                    s.first_occ[t] = i as u32;
                    s.present_terms.push(term);
                } else {
                    // Chain this occurrence after the term's previous one.
                    let last = s.last_occ[t] as usize;
                    s.next_occ[last] = i as u32;
                }
                s.last_occ[t] = i as u32;
            }
        }

        // 1b. The exact phrases present, each checked once, when its
        // rarest word is present. (This view reads no phrase stamp: they
        // are what this step fills in.)
        let view = PostView {
            post,
            tokens: tokens.tokens(),
            first_occ: &s.first_occ,
            next_occ: &s.next_occ,
            wild_occ: &s.wild_occ,
            term_stamp: &s.term_stamp,
            wild_stamp: &s.wild_stamp,
            phrase_stamp: &[],
            gen,
        };
        for &t in &s.present_terms {
            for &ph in self.phrases_by_term.get(t) {
                let words = self.phrase_words.get(ph);
                let all_present = words.iter().all(|&w| s.term_stamp.get(w as usize) == Some(&gen));
                if all_present && verify::exact_phrase_hit(words, &view) {
                    s.present_phrases.push(ph);
                }
            }
        }
        for &ph in &s.present_phrases {
            if let Some(stamp) = s.phrase_stamp.get_mut(ph as usize) {
                *stamp = gen;
            }
        }

        // 2. Candidates, as bits.
        let (cands, sure) = (&mut s.cands, &mut s.sure[..]);
        let present = Present {
            // By tag (see `TAG_SHIFT`).
            stamps: [&s.term_stamp, &s.prefix_stamp, &s.wild_stamp, &s.phrase_stamp],
            gen,
        };
        for &t in &s.present_terms {
            self.collect(&self.by_term, t, cands, sure, &present);
        }
        for &p in &s.present_phrases {
            self.collect(&self.by_phrase, p, cands, sure, &present);
        }
        for &p in &s.present_prefixes {
            self.collect(&self.by_prefix, p, cands, sure, &present);
        }
        for &w in &s.present_wilds {
            self.collect(&self.by_wild, w, cands, sure, &present);
        }
        for (field, feeds) in &self.gates {
            if verify::field_matches(field, post) {
                for &f in feeds {
                    cands.set(f);
                }
            }
        }
        for &f in &self.always {
            cands.set(f);
        }

        // 3. Verify, in index order.
        let view = PostView {
            post,
            tokens: tokens.tokens(),
            first_occ: &s.first_occ,
            next_occ: &s.next_occ,
            wild_occ: &s.wild_occ,
            term_stamp: &s.term_stamp,
            wild_stamp: &s.wild_stamp,
            phrase_stamp: &s.phrase_stamp,
            gen,
        };
        // Matches go into a bitset by output slot (so ids come out sorted
        // without a sort); `bound` counts the bits set, to size `out` once.
        let mut bound = 0;
        for si in 0..s.cands.summary.len() {
            let mut summary = std::mem::take(&mut s.cands.summary[si]);
            while summary != 0 {
                let w = si * 64 + summary.trailing_zeros() as usize;
                summary &= summary - 1;
                let Some(word) = s.cands.words.get_mut(w) else {
                    continue;
                };
                let cands = std::mem::take(word);
                // Candidates a sure entry proved matched (every candidate of
                // a direct query) need no program: taken apart from the
                // others, a whole word at a time, without a branch per bit.
                let sure = s.sure.get_mut(w).map_or(0, std::mem::take);
                let mut proven = cands & sure;
                while proven != 0 {
                    let f = w * 64 + proven.trailing_zeros() as usize;
                    proven &= proven - 1;
                    if let (Some(unit), Some(c)) = (self.units.get(f), s.counts.get_mut(f)) {
                        *c += ONE_CANDIDATE | ONE_MATCH;
                        bound += self.report(unit, &mut s.out);
                    }
                }
                let mut verify = cands & !sure;
                while verify != 0 {
                    let f = w * 64 + verify.trailing_zeros() as usize;
                    verify &= verify - 1;
                    let Some(unit) = self.units.get(f) else {
                        continue;
                    };
                    s.verify_counter = s.verify_counter.wrapping_add(1);
                    let prog = unit.prog as usize;
                    let hit = if s.verify_counter & (TIMING_SAMPLE - 1) == 0 {
                        let start = Instant::now();
                        let hit = self.code.eval(prog, &view, &mut s.bufs);
                        let t = &mut s.timing[f];
                        t.0 += 1;
                        t.1 += (start.elapsed().as_nanos() as u64).min(MAX_TIMED_NANOS);
                        hit
                    } else {
                        self.code.eval(prog, &view, &mut s.bufs)
                    };
                    if let Some(c) = s.counts.get_mut(f) {
                        *c += ONE_CANDIDATE | if hit { ONE_MATCH } else { 0 };
                    }
                    if hit {
                        bound += self.report(unit, &mut s.out);
                    }
                }
            }
        }

        // 4. The matches by slot: ascending ids.
        self.emit(&mut s.out, bound, out);
        s.posts += 1;
        if s.posts >= u32::MAX as u64 - 1 {
            // The per-feed counters are u32 (compact, fewer cache misses):
            // flush them long before they could overflow.
            s.flush_stats();
        }
    }

    /// Sets the output slots of a matched unit; returns how many.
    #[inline]
    fn report(&self, unit: &Unit, out: &mut Bits) -> usize {
        if unit.out & SHARED_BIT == 0 {
            out.set(unit.out);
            1
        } else {
            let slots = self.shared.get(unit.out & !SHARED_BIT);
            for &slot in slots {
                out.set(slot);
            }
            slots.len()
        }
    }

    #[inline]
    fn may_be_term(&self, h: u64) -> bool {
        let bit = (h >> 32) as usize & self.term_filter_mask;
        self.term_filter[bit / 64] & (1 << (bit % 64)) != 0
    }

    #[inline]
    fn may_be_prefix(&self, h: u64) -> bool {
        let bit = filter_bit(h);
        self.prefix_filter[bit / 64] & (1 << (bit % 64)) != 0
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
            if self.wilds[w as usize].matches(bytes) {
                if s.wild_stamp[w as usize] != gen {
                    s.wild_stamp[w as usize] = gen;
                    s.present_wilds.push(w);
                }
                s.wild_occ.push((w, token));
            }
        }
    }

    /// Marks the feeds indexed under `key` whose entries are complete.
    #[inline]
    fn collect(&self, index: &Index, key: u32, cands: &mut Bits, sure: &mut [u64], present: &Present<'_>) {
        for &f in index.plain.get(key) {
            cands.set_entry(f, sure);
        }
        for p in index.sets.get(key) {
            // Already a candidate (through another entry): nothing to add
            // but, for a sure entry, the proof (then it is verified).
            if cands.has(p.feed & !SURE_BIT) {
                continue;
            }
            let start = p.rest_start as usize;
            let mid = start + p.need as usize;
            let end = mid + p.forbid as usize;
            let (Some(need), Some(forbid)) = (self.rest.get(start..mid), self.rest.get(mid..end)) else {
                continue;
            };
            if need.iter().all(|&a| present.has(a)) && !forbid.iter().any(|&a| present.has(a)) {
                cands.set_entry(p.feed, sure);
            }
        }
    }
}

/// The terms, prefixes, wildcards and phrases present in the current
/// post: those stamped with its generation.
struct Present<'a> {
    /// Stamps by item tag: terms, prefixes, wildcards, phrases.
    stamps: [&'a [u32]; 4],
    gen: u32,
}

impl Present<'_> {
    /// Whether a tagged item is present.
    #[inline]
    fn has(&self, item: u32) -> bool {
        self.stamps[(item >> TAG_SHIFT) as usize].get((item & ID_MASK) as usize) == Some(&self.gen)
    }
}

/// A bitset with a summary level: bit `w` of the summary says that word
/// `w` is non-zero. Setting a bit is branch-free, and walking the set bits
/// in order costs per set word rather than per word (a post sets a few
/// hundred bits among 100k), without sorting a list of touched words.
#[derive(Debug, Default)]
struct Bits {
    words: Vec<u64>,
    summary: Vec<u64>,
}

impl Bits {
    /// All clear, with room for `n` bits.
    fn reset(&mut self, n: usize) {
        let words = n.div_ceil(64);
        self.words.clear();
        self.words.resize(words, 0);
        self.summary.clear();
        self.summary.resize(words.div_ceil(64), 0);
    }

    #[inline]
    fn set(&mut self, i: u32) {
        let w = (i / 64) as usize;
        if let (Some(word), Some(sum)) = (self.words.get_mut(w), self.summary.get_mut(w / 64)) {
            *word |= 1 << (i % 64);
            *sum |= 1 << (w % 64);
        }
    }

    /// Sets the bit of an index entry's unit, and its bit in `sure` if the
    /// entry is (branch-free: whether it is is unpredictable).
    #[inline]
    fn set_entry(&mut self, entry: u32, sure: &mut [u64]) {
        let i = entry & !SURE_BIT;
        self.set(i);
        if let Some(word) = sure.get_mut((i / 64) as usize) {
            *word |= u64::from(entry >> 31) << (i % 64);
        }
    }

    #[inline]
    fn has(&self, i: u32) -> bool {
        self.words
            .get((i / 64) as usize)
            .is_some_and(|w| w & (1 << (i % 64)) != 0)
    }
}

impl FeedMatcher {
    /// Puts the ids of the output slots set into `out` (ascending) and
    /// clears the bitset. `bound` is at least the number of bits set.
    fn emit(&self, bits: &mut Bits, bound: usize, out: &mut Vec<u32>) {
        // Written by index into a sized vector: pushing would re-check the
        // capacity and store the length on every match.
        out.resize(bound, 0);
        let mut k = 0;
        for si in 0..bits.summary.len() {
            let mut summary = std::mem::take(&mut bits.summary[si]);
            while summary != 0 {
                let w = si * 64 + summary.trailing_zeros() as usize;
                summary &= summary - 1;
                let Some(word) = bits.words.get_mut(w) else {
                    continue;
                };
                let mut word = std::mem::take(word);
                while word != 0 {
                    let slot = w * 64 + word.trailing_zeros() as usize;
                    word &= word - 1;
                    let id = if self.slot_ids.is_empty() {
                        Some(slot as u32)
                    } else {
                        self.slot_ids.get(slot).copied()
                    };
                    if let (Some(id), Some(o)) = (id, out.get_mut(k)) {
                        *o = id;
                        k += 1;
                    }
                }
            }
        }
        out.truncate(k);
        if !self.slot_ids.is_empty() {
            // Several feeds given the same id: reported once.
            out.dedup();
        }
    }
}

/// Per-feed counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FeedStats {
    /// Posts the feed matched.
    pub matched: u64,
    /// Posts the feed was verified against (its candidate count; for a
    /// direct feed, the posts that contained one of its disjuncts).
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
    /// Counters of every feed that was a candidate at least once.
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
/// stamps (so nothing is cleared per post), token lookups, the candidate
/// bitset, span buffers, and this thread's statistics.
#[derive(Debug, Default)]
pub struct MatchScratch {
    /// The matcher this scratch is sized for, and its feed ids.
    bound: u64,
    ids: Option<Arc<Lists<u32>>>,
    gen: u32,
    term_stamp: Vec<u32>,
    /// Per term: its first and last token in this post (valid when
    /// stamped).
    first_occ: Vec<u32>,
    last_occ: Vec<u32>,
    prefix_stamp: Vec<u32>,
    wild_stamp: Vec<u32>,
    /// Per token: the next token with the same term.
    next_occ: Vec<u32>,
    wild_occ: Vec<(u32, u32)>,
    present_terms: Vec<u32>,
    present_prefixes: Vec<u32>,
    present_wilds: Vec<u32>,
    /// Per exact phrase: stamped when it occurs in the post; those that do.
    phrase_stamp: Vec<u32>,
    present_phrases: Vec<u32>,
    /// Candidate units of the current post (all zero between posts), and
    /// those a sure entry proved matched.
    cands: Bits,
    sure: Vec<u64>,
    /// Matches of the current post by output slot (all zero between
    /// posts).
    out: Bits,
    bufs: SpanBufs,
    /// Per unit: candidates (low 32 bits) and matches (high 32 bits)
    /// since the last flush, one add per candidate.
    counts: Vec<u64>,
    /// Per feed: timed verifications and their nanoseconds.
    timing: Vec<(u32, u64)>,
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
            for (i, (c, t)) in self.counts.iter_mut().zip(self.timing.iter_mut()).enumerate() {
                if *c > 0 || t.0 > 0 {
                    let stats = FeedStats {
                        candidates: *c & u64::from(u32::MAX),
                        matched: *c >> 32,
                        timed: t.0 as u64,
                        timed_nanos: t.1,
                    };
                    *c = 0;
                    *t = (0, 0);
                    // Feeds sharing a query share its counters.
                    for &id in ids.get(i as u32) {
                        self.pending.feeds.entry(id).or_default().add(&stats);
                    }
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
        self.ids = Some(m.unit_ids.clone());
        // Fresh stamps: ids of the old matcher mean nothing here.
        self.gen = 0;
        reset(&mut self.term_stamp, m.terms.len());
        reset(&mut self.first_occ, m.terms.len());
        reset(&mut self.last_occ, m.terms.len());
        reset(&mut self.prefix_stamp, m.prefixes.len());
        reset(&mut self.wild_stamp, m.wilds.len());
        let units = m.units.len();
        self.cands.reset(units);
        reset(&mut self.phrase_stamp, m.phrase_words.len());
        self.sure.clear();
        self.sure.resize(units.div_ceil(64), 0);
        self.out.reset(m.n_slots);
        self.counts.clear();
        self.counts.resize(units, 0);
        self.timing.clear();
        self.timing.resize(units, (0, 0));
    }

    fn next_generation(&mut self) -> u32 {
        self.gen = self.gen.wrapping_add(1);
        if self.gen == 0 {
            // Wrapped: clear the stamps once every 4 billion posts.
            for v in [
                &mut self.term_stamp,
                &mut self.prefix_stamp,
                &mut self.wild_stamp,
                &mut self.phrase_stamp,
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
