//! Verification: a query compiled into a flat program of cheap checks
//! against a post whose tokens have already been looked up once.
//!
//! The idea: before any feed is verified, the matcher has resolved every
//! token of the post to a term id (and every wildcard it matches), and
//! stamped those ids "present in this post". A term then costs one array
//! read; only phrases and `NEAR` look at positions, and only after all their
//! words are known to be present. `AND`/`OR` short-circuit with their
//! cheapest children first (reordering a pure boolean is safe). Fields are
//! read from the [`Post`] without allocating. An exact phrase (the most
//! common phrase, and shared by many feeds) is looked up once per post by
//! the matcher, like a term, before any feed is verified: here it is one
//! stamp read too.
//!
//! The semantics are exactly those of the reference evaluator
//! ([`crate::query::eval`]); the property tests in `tests.rs` hold the two
//! together.

use crate::post::Post;
use crate::query::{Field, Node, Pattern};
use crate::text::Token;
use std::collections::HashMap;

/// A term id that no token has: marks a token that is no known term.
pub(crate) const NO_TERM: u32 = u32::MAX;

/// A single-token pattern, resolved at build time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Word {
    /// An exact word: its id in the matcher's term table.
    Term(u32),
    /// A wildcard: its index in the matcher's wildcard list.
    Wild(u32),
}

/// One alternative of a `NEAR` operand.
#[derive(Clone, Debug)]
pub(crate) enum Spanner {
    Word(Word),
    Phrase { words: Box<[Word]>, slop: u32 },
}

/// A compiled query.
#[derive(Clone, Debug)]
pub(crate) enum Op {
    Word(Word),
    Phrase {
        words: Box<[Word]>,
        slop: u32,
    },
    /// Each side is a list of alternatives (an operand `(a OR "b c")`).
    Near {
        left: Box<[Spanner]>,
        right: Box<[Spanner]>,
        distance: u32,
    },
    Field(Field),
    Not(Box<Op>),
    And(Box<[Op]>),
    Or(Box<[Op]>),
}

/// Resolves patterns to [`Word`]s while compiling (implemented by the
/// matcher's builder, which owns the term table and the wildcard list).
pub(crate) trait Resolve {
    fn word(&mut self, pattern: &Pattern) -> Word;
}

impl Op {
    /// Compiles a query tree.
    pub(crate) fn compile(node: &Node, r: &mut impl Resolve) -> Op {
        match node {
            Node::Term(p) => Op::Word(r.word(p)),
            Node::Phrase { words, slop } => Op::Phrase {
                words: words.iter().map(|w| r.word(w)).collect(),
                slop: *slop,
            },
            Node::Near { left, right, distance } => Op::Near {
                left: spanners(left, r),
                right: spanners(right, r),
                distance: *distance,
            },
            Node::Field(f) => Op::Field(f.clone()),
            Node::Not(child) => Op::Not(Box::new(Op::compile(child, r))),
            Node::And(children) => Op::And(ordered(children, r)),
            Node::Or(children) => Op::Or(ordered(children, r)),
        }
    }

    /// A rough cost, to evaluate cheap children first.
    fn cost(&self) -> u32 {
        match self {
            Op::Word(_) => 1,
            Op::Field(_) => 2,
            Op::Phrase { words, .. } => 8 + words.len() as u32,
            Op::Near { left, right, .. } => 16 + (left.len() + right.len()) as u32 * 4,
            Op::Not(child) => child.cost(),
            Op::And(c) | Op::Or(c) => c.iter().map(Op::cost).sum(),
        }
    }
}

fn ordered(children: &[Node], r: &mut impl Resolve) -> Box<[Op]> {
    let mut ops: Vec<Op> = children.iter().map(|c| Op::compile(c, r)).collect();
    ops.sort_by_key(Op::cost);
    ops.into_boxed_slice()
}

/// The alternatives of a `NEAR` operand. Anything but a term, a phrase or
/// an `OR` of those (which the parser never produces) has no occurrence,
/// as in the reference evaluator.
fn spanners(node: &Node, r: &mut impl Resolve) -> Box<[Spanner]> {
    let one = |n: &Node, r: &mut dyn FnMut(&Pattern) -> Word| match n {
        Node::Term(p) => Some(Spanner::Word(r(p))),
        Node::Phrase { words, slop } => Some(Spanner::Phrase {
            words: words.iter().map(&mut *r).collect(),
            slop: *slop,
        }),
        _ => None,
    };
    let mut resolve = |p: &Pattern| r.word(p);
    match node {
        Node::Or(children) => children.iter().filter_map(|c| one(c, &mut resolve)).collect(),
        other => one(other, &mut resolve).into_iter().collect(),
    }
}

/// Node kinds of [`Code`].
const K_TERM: u32 = 0;
const K_WILD: u32 = 1;
const K_PHRASE: u32 = 2;
const K_NEAR: u32 = 3;
const K_FIELD: u32 = 4;
const K_NOT: u32 = 5;
const K_AND: u32 = 6;
const K_OR: u32 = 7;
/// A phrase of exact words with no slop (the common phrase), checked
/// without the general dynamic programme, and at most once per post: the
/// same phrase (a topic's name) is in thousands of feeds, so its result
/// is kept by phrase id for the rest of the post.
const K_EXACT: u32 = 8;

/// A node header is `kind | len << KIND_BITS`.
const KIND_BITS: u32 = 4;
const KIND_MASK: u32 = (1 << KIND_BITS) - 1;

/// A phrase word that is a wildcard id rather than a term id.
const WILD_BIT: u32 = 1 << 31;

/// Every feed's compiled query, flattened into one array of `u32`s.
///
/// Why flat: with 100k feeds, a tree of boxes costs a cache miss per node;
/// here a feed's program is a few contiguous words, and feeds are verified
/// in index order, so verification walks the array forwards. A node is a
/// header `kind | len << KIND_BITS` (`len` counts the node's words, header
/// included) followed by its payload:
///
/// - term / wildcard: the id;
/// - phrase: slop, then the words (term ids, or wildcard ids with
///   [`WILD_BIT`]); an exact phrase (no slop, no wildcard): its id among
///   exact phrases, then the term ids;
/// - `NEAR`: distance, the number of left alternatives, then the left and
///   the right alternatives as term, wildcard or phrase nodes;
/// - field: an index into `fields`;
/// - `NOT`, `AND`, `OR`: the child nodes.
#[derive(Clone, Debug, Default)]
pub(crate) struct Code {
    code: Vec<u32>,
    fields: Vec<Field>,
    /// Exact phrases (their term ids) by id, while building.
    exact_ids: HashMap<Box<[u32]>, u32>,
}

impl Code {
    /// Appends a program; returns where it starts.
    pub(crate) fn push(&mut self, op: &Op) -> u32 {
        let at = self.code.len() as u32;
        self.emit(op);
        at
    }

    fn emit(&mut self, op: &Op) {
        let at = self.code.len();
        self.code.push(0);
        let kind = match op {
            Op::Word(w) => self.word_node(*w),
            Op::Phrase { words, slop } if *slop == 0 && words.iter().all(|w| matches!(w, Word::Term(_))) => {
                let terms: Box<[u32]> = words
                    .iter()
                    .filter_map(|w| match w {
                        Word::Term(id) => Some(*id),
                        Word::Wild(_) => None,
                    })
                    .collect();
                let id = self.exact_phrase_id(&terms);
                self.code.push(id);
                self.code.extend_from_slice(&terms);
                K_EXACT
            }
            Op::Phrase { words, slop } => {
                self.phrase_payload(words, *slop);
                K_PHRASE
            }
            Op::Near { left, right, distance } => {
                self.code.push(*distance);
                self.code.push(left.len() as u32);
                for alt in left.iter().chain(right.iter()) {
                    let start = self.code.len();
                    self.code.push(0);
                    let kind = match alt {
                        Spanner::Word(w) => self.word_node(*w),
                        Spanner::Phrase { words, slop } => {
                            self.phrase_payload(words, *slop);
                            K_PHRASE
                        }
                    };
                    self.code[start] = kind | ((self.code.len() - start) as u32) << KIND_BITS;
                }
                K_NEAR
            }
            Op::Field(f) => {
                let i = match self.fields.iter().position(|g| g == f) {
                    Some(i) => i,
                    None => {
                        self.fields.push(f.clone());
                        self.fields.len() - 1
                    }
                };
                self.code.push(i as u32);
                K_FIELD
            }
            Op::Not(child) => {
                self.emit(child);
                K_NOT
            }
            Op::And(children) | Op::Or(children) => {
                for c in children.iter() {
                    self.emit(c);
                }
                if matches!(op, Op::And(_)) {
                    K_AND
                } else {
                    K_OR
                }
            }
        };
        self.code[at] = kind | ((self.code.len() - at) as u32) << KIND_BITS;
    }

    fn word_node(&mut self, w: Word) -> u32 {
        match w {
            Word::Term(id) => {
                self.code.push(id);
                K_TERM
            }
            Word::Wild(id) => {
                self.code.push(id);
                K_WILD
            }
        }
    }

    fn phrase_payload(&mut self, words: &[Word], slop: u32) {
        self.code.push(slop);
        for w in words {
            self.code.push(match *w {
                Word::Term(id) => id,
                Word::Wild(id) => id | WILD_BIT,
            });
        }
    }

    /// The id of an exact phrase (its term ids), interned: the matcher
    /// indexes sure entries under phrases by the same ids.
    pub(crate) fn exact_phrase_id(&mut self, terms: &[u32]) -> u32 {
        let next = self.exact_ids.len() as u32;
        *self.exact_ids.entry(terms.into()).or_insert(next)
    }

    /// The term ids of every exact phrase, by phrase id.
    pub(crate) fn exact_phrase_terms(&self) -> Vec<Box<[u32]>> {
        let mut all = vec![Box::default(); self.exact_ids.len()];
        for (terms, &id) in &self.exact_ids {
            if let Some(slot) = all.get_mut(id as usize) {
                *slot = terms.clone();
            }
        }
        all
    }

    /// Heap bytes held.
    pub(crate) fn memory_bytes(&self) -> usize {
        self.code.capacity() * 4
            + self.fields.capacity() * std::mem::size_of::<Field>()
            + self
                .exact_ids
                .keys()
                .map(|k| k.len() * 4 + std::mem::size_of::<(Box<[u32]>, u32)>())
                .sum::<usize>()
    }

    #[inline]
    fn len_at(&self, at: usize) -> usize {
        (self.code[at] >> KIND_BITS) as usize
    }

    /// Whether the post described by `v` satisfies the program at `at`.
    pub(crate) fn eval(&self, at: usize, v: &PostView<'_>, bufs: &mut SpanBufs) -> bool {
        let header = self.code[at];
        let end = at + (header >> KIND_BITS) as usize;
        match header & KIND_MASK {
            K_AND => {
                let mut p = at + 1;
                while p < end {
                    if !self.node(p, v, bufs) {
                        return false;
                    }
                    p += self.len_at(p);
                }
                true
            }
            K_OR => {
                let mut p = at + 1;
                while p < end {
                    if self.node(p, v, bufs) {
                        return true;
                    }
                    p += self.len_at(p);
                }
                false
            }
            _ => self.node(at, v, bufs),
        }
    }

    /// One node. Leaves are checked here, inlined into the `AND`/`OR`
    /// loops of [`Code::eval`]: most children are terms and phrases, and a
    /// recursive call per child cost more than the check itself.
    #[inline(always)]
    fn node(&self, at: usize, v: &PostView<'_>, bufs: &mut SpanBufs) -> bool {
        let header = self.code[at];
        let end = at + (header >> KIND_BITS) as usize;
        match header & KIND_MASK {
            K_TERM => v.has(Word::Term(self.code[at + 1])),
            K_WILD => v.has(Word::Wild(self.code[at + 1])),
            // Found (or not) before verification began: see `exact_phrase_hit`.
            K_EXACT => v.phrase_stamp.get(self.code[at + 1] as usize) == Some(&v.gen),
            K_PHRASE => self.phrase(at + 1, end, v, bufs),
            K_NEAR => self.near(at, end, v, bufs),
            K_FIELD => self
                .fields
                .get(self.code[at + 1] as usize)
                .is_some_and(|f| field_matches(f, v.post)),
            K_NOT => {
                // `NOT word` (the usual exclusion) without a call.
                let child = at + 1;
                match self.code.get(child..child + 2) {
                    Some(&[h, id]) if h & KIND_MASK == K_TERM => !v.has(Word::Term(id)),
                    _ => !self.eval(child, v, bufs),
                }
            }
            _ => self.eval(at, v, bufs),
        }
    }

    /// A general phrase (kept out of line, as are the other rare paths
    /// below, so that the hot loop stays small).
    #[inline(never)]
    fn phrase(&self, from: usize, end: usize, v: &PostView<'_>, bufs: &mut SpanBufs) -> bool {
        let payload = &self.code[from..end];
        phrase_present(payload, v) && phrase_hit(payload, v, bufs)
    }

    /// The alternatives of a `NEAR` node: `(left range, right range)` of
    /// node positions, as `(start, count)`.
    #[inline(never)]
    fn near(&self, at: usize, end: usize, v: &PostView<'_>, bufs: &mut SpanBufs) -> bool {
        let distance = self.code[at + 1];
        let n_left = self.code[at + 2] as usize;
        let first = at + 3;
        // Where the right alternatives start.
        let mut mid = first;
        for _ in 0..n_left {
            mid += self.len_at(mid);
        }
        if !self.any_present(first, mid, v) || !self.any_present(mid, end, v) {
            return false;
        }
        let mut l = bufs.take();
        let mut r = bufs.take();
        self.spans(first, mid, v, bufs, &mut l);
        self.spans(mid, end, v, bufs, &mut r);
        let hit = l.iter().any(|&a| {
            r.iter().any(|&b| {
                gap_between(a, b)
                    .or_else(|| gap_between(b, a))
                    .is_some_and(|gap| gap <= distance)
            })
        });
        bufs.give(l);
        bufs.give(r);
        hit
    }

    /// Whether some alternative node in `from..to` has all its words.
    fn any_present(&self, from: usize, to: usize, v: &PostView<'_>) -> bool {
        let mut p = from;
        while p < to {
            let h = self.code[p];
            let end = p + (h >> KIND_BITS) as usize;
            let present = match h & KIND_MASK {
                K_TERM => v.has(Word::Term(self.code[p + 1])),
                K_WILD => v.has(Word::Wild(self.code[p + 1])),
                _ => phrase_present(&self.code[p + 1..end], v),
            };
            if present {
                return true;
            }
            p = end;
        }
        false
    }

    /// Appends the occurrences of the alternative nodes in `from..to`.
    fn spans(&self, from: usize, to: usize, v: &PostView<'_>, bufs: &mut SpanBufs, out: &mut Vec<Span>) {
        let mut p = from;
        while p < to {
            let h = self.code[p];
            let end = p + (h >> KIND_BITS) as usize;
            match h & KIND_MASK {
                K_TERM => v.word_spans(Word::Term(self.code[p + 1]), out),
                K_WILD => v.word_spans(Word::Wild(self.code[p + 1]), out),
                _ => {
                    let payload = &self.code[p + 1..end];
                    if phrase_present(payload, v) {
                        phrase_spans(payload, v, bufs, out);
                    }
                }
            }
            p = end;
        }
    }
}

/// A phrase word of [`Code`].
#[inline]
fn decode(w: u32) -> Word {
    if w & WILD_BIT != 0 {
        Word::Wild(w & !WILD_BIT)
    } else {
        Word::Term(w)
    }
}

/// Whether every word of a phrase payload (`slop, words…`) is present.
#[inline]
fn phrase_present(payload: &[u32], v: &PostView<'_>) -> bool {
    payload.iter().skip(1).all(|&w| v.has(decode(w)))
}

fn phrase_hit(payload: &[u32], v: &PostView<'_>, bufs: &mut SpanBufs) -> bool {
    let mut out = bufs.take();
    phrase_spans(payload, v, bufs, &mut out);
    let hit = !out.is_empty();
    bufs.give(out);
    hit
}

/// The common case of a phrase, exact words with no slop, without the
/// dynamic programme: each word must start right after the previous one
/// ends, and a term occurs at most once per position, so every occurrence
/// of the first word extends in at most one way. The matcher calls this
/// once per post for each exact phrase whose words are all present, before
/// verification, and stamps the phrases found ([`PostView::phrase_stamp`]).
pub(crate) fn exact_phrase_hit(words: &[u32], v: &PostView<'_>) -> bool {
    let Some((&first, rest)) = words.split_first() else {
        return false;
    };
    let mut i = v.first_occ[first as usize];
    while let Some(t) = v.tokens.get(i as usize) {
        let mut end = t.last_position;
        let whole = rest.iter().all(|&w| match v.occurrence_at(w, end + 1) {
            Some(last) => {
                end = last;
                true
            }
            None => false,
        });
        if whole {
            return true;
        }
        i = v.next_occ[i as usize];
    }
    false
}

/// A post as verification sees it: metadata, tokens, and which term and
/// wildcard ids are present (stamped with the current generation).
pub(crate) struct PostView<'a> {
    pub post: &'a Post,
    pub tokens: &'a [Token],
    /// Per term id: the first token with that term (valid for present
    /// terms); per token: the next token with the same term, or
    /// [`NO_TERM`]. Together, each present term's occurrences as a chain.
    pub first_occ: &'a [u32],
    pub next_occ: &'a [u32],
    /// `(wildcard id, token index)` for every token a wildcard matches.
    pub wild_occ: &'a [(u32, u32)],
    pub term_stamp: &'a [u32],
    pub wild_stamp: &'a [u32],
    /// Per exact phrase id: stamped when the phrase occurs.
    pub phrase_stamp: &'a [u32],
    pub gen: u32,
}

impl PostView<'_> {
    #[inline]
    fn has(&self, w: Word) -> bool {
        match w {
            Word::Term(id) => self.term_stamp[id as usize] == self.gen,
            Word::Wild(id) => self.wild_stamp[id as usize] == self.gen,
        }
    }

    /// The last position of the occurrence of present term `term` that
    /// starts at `position`, if any.
    #[inline]
    fn occurrence_at(&self, term: u32, position: u32) -> Option<u32> {
        let mut i = self.first_occ[term as usize];
        while let Some(t) = self.tokens.get(i as usize) {
            if t.position == position {
                return Some(t.last_position);
            }
            if t.position > position {
                return None;
            }
            i = self.next_occ[i as usize];
        }
        None
    }

    /// Appends the span of every token matching `w`.
    fn word_spans(&self, w: Word, out: &mut Vec<Span>) {
        match w {
            Word::Term(id) => {
                if !self.has(w) {
                    return;
                }
                let mut i = self.first_occ[id as usize];
                while let Some(t) = self.tokens.get(i as usize) {
                    out.push((t.position, t.last_position));
                    i = self.next_occ[i as usize];
                }
            }
            Word::Wild(id) => {
                for &(wild, i) in self.wild_occ {
                    if wild == id {
                        if let Some(t) = self.tokens.get(i as usize) {
                            out.push((t.position, t.last_position));
                        }
                    }
                }
            }
        }
    }
}

/// A span of positions, both ends included.
pub(crate) type Span = (u32, u32);

/// Reused buffers for positional checks (no allocation per post once
/// warm).
#[derive(Debug, Default)]
pub(crate) struct SpanBufs {
    pool: Vec<Vec<Span>>,
    partial: Vec<(u32, u32, u32)>,
    next: Vec<(u32, u32, u32)>,
    word: Vec<Span>,
}

impl SpanBufs {
    fn take(&mut self) -> Vec<Span> {
        self.pool.pop().unwrap_or_default()
    }

    fn give(&mut self, mut v: Vec<Span>) {
        v.clear();
        self.pool.push(v);
    }
}

/// The number of positions strictly between `a` and a later `b`; `None`
/// unless `a` ends before `b` starts.
#[inline]
fn gap_between(a: Span, b: Span) -> Option<u32> {
    (a.1 < b.0).then(|| b.0 - a.1 - 1)
}

/// Appends the occurrences of a phrase payload (`slop, words…`) to `out`
/// (deduplicated), by the reference's dynamic programme: for each partial
/// occurrence `(first, last so far)` keep the least slop used.
fn phrase_spans(payload: &[u32], v: &PostView<'_>, bufs: &mut SpanBufs, out: &mut Vec<Span>) {
    let Some((&slop, words)) = payload.split_first() else {
        return;
    };
    let Some((&first, rest)) = words.split_first() else {
        return;
    };
    let mut partial = std::mem::take(&mut bufs.partial);
    let mut next = std::mem::take(&mut bufs.next);
    let mut word = std::mem::take(&mut bufs.word);
    partial.clear();
    word.clear();
    v.word_spans(decode(first), &mut word);
    for &(s, e) in &word {
        if !partial.iter().any(|&(ps, pe, _)| ps == s && pe == e) {
            partial.push((s, e, 0));
        }
    }
    for &w in rest {
        if partial.is_empty() {
            break;
        }
        word.clear();
        v.word_spans(decode(w), &mut word);
        next.clear();
        for &(start, end, used) in &partial {
            for &span in &word {
                let Some(gap) = gap_between((start, end), span) else {
                    continue;
                };
                let total = used.saturating_add(gap);
                if total > slop {
                    continue;
                }
                match next.iter_mut().find(|(s, e, _)| *s == start && *e == span.1) {
                    Some(entry) => entry.2 = entry.2.min(total),
                    None => next.push((start, span.1, total)),
                }
            }
        }
        std::mem::swap(&mut partial, &mut next);
    }
    out.extend(partial.iter().map(|&(s, e, _)| (s, e)));
    bufs.partial = partial;
    bufs.next = next;
    bufs.word = word;
}

/// [`Field::matches`], without the allocation its domain check makes for
/// ASCII domains (the common case).
#[inline]
pub(crate) fn field_matches(field: &Field, post: &Post) -> bool {
    match field {
        Field::Domain(want) => post.entities.as_ref().is_some_and(|e| {
            e.domains.iter().any(|domain| {
                if domain.is_ascii() {
                    ascii_domain_matches(domain, want)
                } else {
                    Field::Domain(want.clone()).matches(&Post {
                        entities: Some(crate::post::Entities {
                            domains: vec![domain.clone()],
                            ..Default::default()
                        }),
                        ..Default::default()
                    })
                }
            })
        }),
        other => other.matches(post),
    }
}

/// `news.example.org` and `example.org` match `example.org` (any case, a
/// leading `www.` ignored); `badexample.org` does not.
fn ascii_domain_matches(domain: &str, want: &str) -> bool {
    let d = domain.as_bytes();
    let d = if d.len() >= 4 && d[..4].eq_ignore_ascii_case(b"www.") {
        &d[4..]
    } else {
        d
    };
    let w = want.as_bytes();
    if d.len() < w.len() || !d[d.len() - w.len()..].eq_ignore_ascii_case(w) {
        return false;
    }
    d.len() == w.len() || d[d.len() - w.len() - 1] == b'.'
}

/// Glob matching of a folded token against a wildcard pattern, on bytes:
/// `*` matches any run of characters, `?` exactly one character. The
/// classic two-pointer algorithm (backtracking only to the last `*`), with
/// the token side always advanced by whole UTF-8 characters, so it agrees
/// with the reference's matching over `char`s.
pub(crate) fn glob(p: &[u8], t: &[u8]) -> bool {
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some(b'*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(b'?') => {
                pi += 1;
                ti += char_len(t[ti]);
            }
            Some(&c) if c == t[ti] => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    let next = st + char_len(t[st]);
                    pi = sp + 1;
                    ti = next;
                    star = Some((sp, next));
                }
                None => return false,
            },
        }
    }
    ti == t.len() && p[pi..].iter().all(|&c| c == b'*')
}

/// The length of the UTF-8 character starting with `lead`.
#[inline]
fn char_len(lead: u8) -> usize {
    match lead {
        0x00..=0x7f => 1,
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        _ => 4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_agrees_with_the_reference_on_multibyte_text() {
        let cases = [
            ("c*mate", "climate", true),
            ("wom?n", "women", true),
            ("wom?n", "woman", true),
            ("wom?n", "womn", false),
            ("?", "é", true),
            ("??", "é", false),
            ("a*é", "aéé", true),
            ("a?c", "a地c", true),
            ("地*", "地震", true),
            ("é*", "ê", false),
            ("ab*", "ab", true),
            ("a*b*c", "aXbYbc", true),
            ("a*b*c", "aXbYb", false),
        ];
        for (p, t, want) in cases {
            assert_eq!(glob(p.as_bytes(), t.as_bytes()), want, "{p} vs {t}");
            assert_eq!(Pattern::Wildcard(p.into()).matches(t), want, "reference: {p} vs {t}");
        }
    }

    #[test]
    fn ascii_domains_match_like_the_reference() {
        assert!(ascii_domain_matches("news.example.org", "example.org"));
        assert!(ascii_domain_matches("WWW.Example.org", "example.org"));
        assert!(ascii_domain_matches("example.org", "example.org"));
        assert!(!ascii_domain_matches("badexample.org", "example.org"));
        assert!(!ascii_domain_matches("org", "example.org"));
    }
}
