//! The feed query language translated to tantivy queries.
//!
//! The idea: every query node becomes a tantivy query that matches a
//! *superset* of the posts the node matches, plus a flag saying whether
//! the superset is in fact *exact*. When the whole tree is exact, tantivy's
//! answer is the answer; otherwise each candidate is checked with the
//! reference evaluator ([`tidewatch_core::query::eval::matches_post`]) on
//! the post rebuilt from its stored fields.
//!
//! | construct | tantivy query | exact? |
//! |---|---|---|
//! | term, `#tag`, `$cash`, `@mention` | term on `text` | yes |
//! | wildcard `climat*`, `c*mate`, `wom?n` | the set of `text` terms matching the pattern (read from each segment's term dictionary) | yes |
//! | `"exact phrase"` | phrase query, each word offset by the positions the previous words span (a tag such as `#東京2020` spans several) | yes |
//! | `"phrase"~n`, phrase with a wildcard word | AND of its words | no: verified |
//! | `a NEAR/n b`, two different plain words | the phrases `a b` and `b a`, each with slop n | yes |
//! | other `NEAR/n` | AND of both operands | no: verified |
//! | `lang:`, `platform:`, `domain:`, `sentiment:`, `is:` | one term on an exact key field (see [`crate::index`]) | yes |
//! | `AND`, `OR` | boolean query | if every child is |
//! | `NOT x`, `-x` | must-not `x` (next to "all" when nothing else is required) | if `x` is; else "all", verified |

use crate::index::{Fields, IS_REPLY, IS_REPOST};
use std::collections::BTreeSet;
use tantivy::query::{AllQuery, BooleanQuery, EmptyQuery, Occur, PhraseQuery, Query, TermQuery, TermSetQuery};
use tantivy::schema::{Field as IndexField, IndexRecordOption};
use tantivy::{Searcher, Term};
use tidewatch_core::query::{Field, Node, Pattern};
use tidewatch_core::text::{tokenized, TokenKind};

/// A tantivy query matching a superset of a node's posts.
pub(crate) struct Translated {
    pub query: Box<dyn Query>,
    /// Whether the query matches exactly the node's posts.
    pub exact: bool,
}

impl Translated {
    fn exact(query: Box<dyn Query>) -> Translated {
        Translated { query, exact: true }
    }
}

/// Translates a query tree; wildcards are expanded against `searcher`'s
/// term dictionaries.
pub(crate) fn translate(node: &Node, searcher: &Searcher, fields: &Fields) -> tantivy::Result<Translated> {
    Ok(match node {
        Node::Term(pattern) => Translated::exact(pattern_query(pattern, searcher, fields.text)?),
        Node::Phrase { words, slop } => match phrase_offsets(words, *slop) {
            Some(offsets) => {
                let terms = offsets
                    .into_iter()
                    .zip(words)
                    .map(|(offset, w)| (offset, Term::from_field_text(fields.text, w.as_str())))
                    .collect();
                Translated::exact(Box::new(PhraseQuery::new_with_offset(terms)))
            }
            None => {
                let mut clauses = Vec::with_capacity(words.len());
                for w in words {
                    clauses.push((Occur::Must, pattern_query(w, searcher, fields.text)?));
                }
                Translated {
                    query: Box::new(BooleanQuery::new(clauses)),
                    exact: false,
                }
            }
        },
        Node::Near { left, right, distance } => {
            if let Some(query) = near_words(left, right, *distance, fields.text) {
                return Ok(Translated::exact(query));
            }
            let left = translate(left, searcher, fields)?;
            let right = translate(right, searcher, fields)?;
            Translated {
                query: Box::new(BooleanQuery::new(vec![
                    (Occur::Must, left.query),
                    (Occur::Must, right.query),
                ])),
                exact: false,
            }
        }
        Node::Field(field) => Translated::exact(field_query(field, fields)),
        Node::Not(child) => {
            let child = translate(child, searcher, fields)?;
            if child.exact {
                Translated::exact(Box::new(BooleanQuery::new(vec![
                    (Occur::Must, Box::new(AllQuery)),
                    (Occur::MustNot, child.query),
                ])))
            } else {
                // The complement of a superset is a subset: no use. Every
                // post is a candidate.
                Translated {
                    query: Box::new(AllQuery),
                    exact: false,
                }
            }
        }
        Node::And(children) => {
            let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::with_capacity(children.len());
            let mut exact = true;
            for child in children {
                // An exact `NOT x` inside an AND is a must-not clause of
                // the AND itself, cheaper than "all but x".
                if let Node::Not(inner) = child {
                    let inner = translate(inner, searcher, fields)?;
                    if inner.exact {
                        clauses.push((Occur::MustNot, inner.query));
                    } else {
                        exact = false;
                    }
                    continue;
                }
                let t = translate(child, searcher, fields)?;
                exact &= t.exact;
                clauses.push((Occur::Must, t.query));
            }
            if !clauses.iter().any(|(occur, _)| *occur == Occur::Must) {
                clauses.push((Occur::Must, Box::new(AllQuery)));
            }
            Translated {
                query: Box::new(BooleanQuery::new(clauses)),
                exact,
            }
        }
        Node::Or(children) => {
            let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::with_capacity(children.len());
            let mut exact = true;
            for child in children {
                let t = translate(child, searcher, fields)?;
                exact &= t.exact;
                clauses.push((Occur::Should, t.query));
            }
            Translated {
                query: Box::new(BooleanQuery::new(clauses)),
                exact,
            }
        }
    })
}

/// The offset of each word of an exact phrase, when tantivy's phrase query
/// is exact for it: no slop (tantivy's slop is not the query language's),
/// no wildcard, and every word's span known from its text. A tag spans the
/// positions of its body (`#東京2020`: three), which the tokeniser derives
/// from the tag's text alone, so re-tokenising the word gives it.
fn phrase_offsets(words: &[Pattern], slop: u32) -> Option<Vec<usize>> {
    if slop != 0 || words.len() < 2 {
        return None;
    }
    let mut offsets = Vec::with_capacity(words.len());
    let mut next = 0usize;
    for word in words {
        let Pattern::Exact(w) = word else { return None };
        offsets.push(next);
        next += span_of(w)?;
    }
    Some(offsets)
}

/// `a NEAR/n b` for two different words that each cover one position:
/// the phrase `a b` or the phrase `b a`, each with slop `n`.
///
/// Why this is exact: tantivy's two-word phrase with slop `n` matches when
/// `|pos(a) - (pos(b) - 1)| <= n`. With `d = pos(b) - pos(a)`, the two
/// phrases together accept `|d - 1| <= n` or `|d + 1| <= n`, which for
/// `d != 0` is exactly NEAR's `|d| - 1 <= n` (at most `n` positions
/// between). `d` is never 0: the tokeniser gives every plain word its own
/// position (only a tag shares its position, and a tag is not a plain
/// word). Without slop (`NEAR/0`) tantivy requires adjacency, `d = ±1`,
/// which is again exactly NEAR/0.
fn near_words(left: &Node, right: &Node, distance: u32, text: IndexField) -> Option<Box<dyn Query>> {
    let (Node::Term(Pattern::Exact(a)), Node::Term(Pattern::Exact(b))) = (left, right) else {
        return None;
    };
    if a == b || !is_plain_word(a) || !is_plain_word(b) {
        return None;
    }
    let phrase = |x: &str, y: &str| -> (Occur, Box<dyn Query>) {
        let mut q = PhraseQuery::new(vec![Term::from_field_text(text, x), Term::from_field_text(text, y)]);
        q.set_slop(distance);
        (Occur::Should, Box::new(q))
    };
    Some(Box::new(BooleanQuery::new(vec![phrase(a, b), phrase(b, a)])))
}

/// Whether `word` is one plain token covering one position (a word or a
/// CJK character, no tag).
fn is_plain_word(word: &str) -> bool {
    let t = tokenized(word);
    match t.tokens() {
        [only] => {
            matches!(only.kind, TokenKind::Word | TokenKind::Cjk)
                && only.position == 0
                && only.last_position == 0
                && t.text(only) == word
        }
        _ => false,
    }
}

/// The number of positions a token with this text covers.
fn span_of(word: &str) -> Option<usize> {
    if !word.starts_with(['#', '$', '@']) {
        return Some(1);
    }
    let t = tokenized(word);
    let first = t.tokens().first()?;
    let is_tag = matches!(first.kind, TokenKind::Hashtag | TokenKind::Cashtag | TokenKind::Mention);
    (is_tag && first.position == 0 && t.text(first) == word).then(|| first.last_position as usize + 1)
}

/// A query for the tokens matching one pattern.
fn pattern_query(pattern: &Pattern, searcher: &Searcher, text: IndexField) -> tantivy::Result<Box<dyn Query>> {
    Ok(match pattern {
        Pattern::Exact(w) => Box::new(TermQuery::new(
            Term::from_field_text(text, w),
            IndexRecordOption::WithFreqsAndPositions,
        )),
        Pattern::Wildcard(_) => {
            let terms = expand(pattern, searcher, text)?;
            if terms.is_empty() {
                Box::new(EmptyQuery)
            } else {
                Box::new(TermSetQuery::new(terms.iter().map(|t| Term::from_field_text(text, t))))
            }
        }
    })
}

/// Every indexed token matching a wildcard pattern: the terms of each
/// segment that start with the pattern's literal prefix, filtered by the
/// pattern itself (so `?` and `*` mean exactly what they mean to feeds).
fn expand(pattern: &Pattern, searcher: &Searcher, text: IndexField) -> tantivy::Result<BTreeSet<String>> {
    let prefix = pattern.literal_prefix();
    let mut out = BTreeSet::new();
    for segment in searcher.segment_readers() {
        let inverted = segment.inverted_index(text)?;
        let mut stream = inverted.terms().range().ge(prefix.as_bytes()).into_stream()?;
        while stream.advance() {
            let key = stream.key();
            if !key.starts_with(prefix.as_bytes()) {
                break;
            }
            if let Ok(token) = std::str::from_utf8(key) {
                if pattern.matches(token) && !out.contains(token) {
                    out.insert(token.to_string());
                }
            }
        }
    }
    Ok(out)
}

/// The exact query of a metadata condition.
fn field_query(field: &Field, f: &Fields) -> Box<dyn Query> {
    let term = |field: IndexField, value: &str| -> Box<dyn Query> {
        Box::new(TermQuery::new(
            Term::from_field_text(field, value),
            IndexRecordOption::Basic,
        ))
    };
    match field {
        Field::Lang(want) => term(f.lang_key, &want.to_ascii_lowercase()),
        Field::Platform(want) => term(f.platform, &want.to_ascii_lowercase()),
        Field::Domain(want) => term(f.domain_key, want),
        Field::Sentiment(class) => term(f.sentiment, class.as_str()),
        Field::IsRepost => term(f.is, IS_REPOST),
        Field::IsReply => term(f.is, IS_REPLY),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_span_the_positions_of_their_body() {
        assert_eq!(span_of("climate"), Some(1));
        assert_eq!(span_of("#climate"), Some(1));
        assert_eq!(span_of("#東京2020"), Some(3));
        assert_eq!(span_of("$tsla"), Some(1));
    }

    #[test]
    fn only_exact_phrases_without_slop_get_offsets() {
        let exact = |w: &str| Pattern::Exact(w.into());
        assert_eq!(
            phrase_offsets(&[exact("#東京2020"), exact("速"), exact("報")], 0),
            Some(vec![0, 3, 4])
        );
        assert_eq!(phrase_offsets(&[exact("a"), exact("b")], 1), None);
        assert_eq!(phrase_offsets(&[exact("a"), Pattern::Wildcard("b*".into())], 0), None);
    }
}
