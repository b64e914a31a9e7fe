//! Verification: a query compiled into a tree of cheap checks against a
//! post whose tokens have already been looked up once.
//!
//! The idea: before any feed is verified, the matcher has resolved every
//! token of the post to a term id (and every wildcard it matches), and
//! stamped those ids "present in this post". A term then costs one array
//! read; only phrases and `NEAR` look at positions, and only after all their
//! words are known to be present. `AND`/`OR` short-circuit with their
//! cheapest children first (reordering a pure boolean is safe). Fields are
//! read from the [`Post`] without allocating.
//!
//! The semantics are exactly those of the reference evaluator
//! ([`crate::query::eval`]); the property tests in `tests.rs` hold the two
//! together.

use crate::post::Post;
use crate::query::{Field, Node, Pattern};
use crate::text::Token;

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

    /// Heap bytes held by this tree (an estimate: boxes and slices).
    pub(crate) fn heap_bytes(&self) -> usize {
        let node = std::mem::size_of::<Op>();
        match self {
            Op::Word(_) => 0,
            Op::Field(f) => match f {
                Field::Lang(s) | Field::Platform(s) | Field::Domain(s) => s.capacity(),
                _ => 0,
            },
            Op::Phrase { words, .. } => std::mem::size_of_val(&**words),
            Op::Near { left, right, .. } => left
                .iter()
                .chain(right.iter())
                .map(|s| {
                    std::mem::size_of::<Spanner>()
                        + match s {
                            Spanner::Word(_) => 0,
                            Spanner::Phrase { words, .. } => std::mem::size_of_val(&**words),
                        }
                })
                .sum(),
            Op::Not(child) => node + child.heap_bytes(),
            Op::And(c) | Op::Or(c) => c.iter().map(|op| node + op.heap_bytes()).sum(),
        }
    }

    /// Whether the post described by `v` satisfies this query.
    pub(crate) fn eval(&self, v: &PostView<'_>, bufs: &mut SpanBufs) -> bool {
        match self {
            Op::Word(w) => v.has(*w),
            Op::Phrase { words, slop } => {
                words.iter().all(|&w| v.has(w)) && {
                    let mut out = bufs.take();
                    phrase_spans(words, *slop, v, bufs, &mut out);
                    let hit = !out.is_empty();
                    bufs.give(out);
                    hit
                }
            }
            Op::Near { left, right, distance } => near(left, right, *distance, v, bufs),
            Op::Field(f) => field_matches(f, v.post),
            Op::Not(child) => !child.eval(v, bufs),
            Op::And(children) => children.iter().all(|c| c.eval(v, bufs)),
            Op::Or(children) => children.iter().any(|c| c.eval(v, bufs)),
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
            words: words.iter().map(|w| r(w)).collect(),
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

/// A post as verification sees it: metadata, tokens, and which term and
/// wildcard ids are present (stamped with the current generation).
pub(crate) struct PostView<'a> {
    pub post: &'a Post,
    pub tokens: &'a [Token],
    /// The term id of each token (parallel to `tokens`), or [`NO_TERM`].
    pub token_terms: &'a [u32],
    /// `(wildcard id, token index)` for every token a wildcard matches.
    pub wild_occ: &'a [(u32, u32)],
    pub term_stamp: &'a [u32],
    pub wild_stamp: &'a [u32],
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

    /// Appends the span of every token matching `w`.
    fn word_spans(&self, w: Word, out: &mut Vec<Span>) {
        match w {
            Word::Term(id) => {
                for (t, &term) in self.tokens.iter().zip(self.token_terms) {
                    if term == id {
                        out.push((t.position, t.last_position));
                    }
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

/// Appends the occurrences of a phrase to `out` (deduplicated), by the
/// reference's dynamic programme: for each partial occurrence
/// `(first, last so far)` keep the least slop used.
fn phrase_spans(words: &[Word], slop: u32, v: &PostView<'_>, bufs: &mut SpanBufs, out: &mut Vec<Span>) {
    let Some((&first, rest)) = words.split_first() else {
        return;
    };
    let mut partial = std::mem::take(&mut bufs.partial);
    let mut next = std::mem::take(&mut bufs.next);
    let mut word = std::mem::take(&mut bufs.word);
    partial.clear();
    word.clear();
    v.word_spans(first, &mut word);
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
        v.word_spans(w, &mut word);
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

/// Appends the occurrences of a `NEAR` operand's alternatives.
fn spanner_spans(alts: &[Spanner], v: &PostView<'_>, bufs: &mut SpanBufs, out: &mut Vec<Span>) {
    for alt in alts {
        match alt {
            Spanner::Word(w) => v.word_spans(*w, out),
            Spanner::Phrase { words, slop } => {
                if words.iter().all(|&w| v.has(w)) {
                    phrase_spans(words, *slop, v, bufs, out);
                }
            }
        }
    }
}

fn spanner_present(alts: &[Spanner], v: &PostView<'_>) -> bool {
    alts.iter().any(|alt| match alt {
        Spanner::Word(w) => v.has(*w),
        Spanner::Phrase { words, .. } => words.iter().all(|&w| v.has(w)),
    })
}

fn near(left: &[Spanner], right: &[Spanner], distance: u32, v: &PostView<'_>, bufs: &mut SpanBufs) -> bool {
    if !spanner_present(left, v) || !spanner_present(right, v) {
        return false;
    }
    let mut l = bufs.take();
    let mut r = bufs.take();
    spanner_spans(left, v, bufs, &mut l);
    spanner_spans(right, v, bufs, &mut r);
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
