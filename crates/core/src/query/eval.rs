//! The reference evaluator: a query tree against one post, by plain loops.
//!
//! This is the oracle the compiled matcher is tested against, so it is
//! written to be obviously right rather than fast: every term scans the
//! whole token list, phrases enumerate their occurrences, nothing is cached
//! or indexed. It reads the tokens only through [`TokenizedText::iter`]
//! (text, position, last position), never the tokeniser's internals.
//!
//! An occurrence is a span of positions `(first, last)`: a token covers
//! `position..=last_position`, a phrase from its first word's first
//! position to its last word's last position.

use super::ast::{Node, Pattern};
use super::Query;
use crate::post::Post;
use crate::text::{tokenized, TokenizedText};
use std::collections::BTreeMap;

/// A span of positions, both ends included.
type Span = (u32, u32);

/// Whether `post`, whose text was tokenised into `tokens`, matches `query`.
///
/// `tokens` must be `crate::text::tokenize(&post.text)`; fields are read
/// from `post` (language, platform, `entities.domains`, `sentiment`,
/// `reply_to`, `repost_of`).
pub fn matches(query: &Query, post: &Post, tokens: &TokenizedText) -> bool {
    eval(query.root(), post, tokens)
}

/// [`matches()`], tokenising `post.text` itself.
pub fn matches_post(query: &Query, post: &Post) -> bool {
    matches(query, post, &tokenized(&post.text))
}

fn eval(node: &Node, post: &Post, tokens: &TokenizedText) -> bool {
    match node {
        Node::Term(pattern) => tokens.iter().any(|(text, _)| pattern.matches(text)),
        Node::Phrase { .. } | Node::Near { .. } => !spans(node, tokens).is_empty(),
        Node::Field(field) => field.matches(post),
        Node::Not(child) => !eval(child, post, tokens),
        Node::And(children) => children.iter().all(|c| eval(c, post, tokens)),
        Node::Or(children) => children.iter().any(|c| eval(c, post, tokens)),
    }
}

/// Every occurrence of a term, phrase, OR of those, or NEAR.
fn spans(node: &Node, tokens: &TokenizedText) -> Vec<Span> {
    match node {
        Node::Term(pattern) => term_spans(pattern, tokens),
        Node::Phrase { words, slop } => phrase_spans(words, *slop, tokens),
        Node::Or(children) => children.iter().flat_map(|c| spans(c, tokens)).collect(),
        Node::Near { left, right, distance } => {
            let (left, right) = (spans(left, tokens), spans(right, tokens));
            let mut out = Vec::new();
            for &a in &left {
                for &b in &right {
                    if let Some(gap) = gap_between(a, b).or_else(|| gap_between(b, a)) {
                        if gap <= *distance {
                            out.push((a.0.min(b.0), a.1.max(b.1)));
                        }
                    }
                }
            }
            out
        }
        // The parser never puts anything else where a span is needed.
        _ => Vec::new(),
    }
}

/// The number of positions strictly between `a` and a later `b`; `None`
/// unless `a` ends before `b` starts.
fn gap_between(a: Span, b: Span) -> Option<u32> {
    (a.1 < b.0).then(|| b.0 - a.1 - 1)
}

fn term_spans(pattern: &Pattern, tokens: &TokenizedText) -> Vec<Span> {
    tokens
        .iter()
        .filter(|(text, _)| pattern.matches(text))
        .map(|(_, t)| (t.position, t.last_position))
        .collect()
}

/// Occurrences of a phrase: words in order, each starting after the
/// previous one ends, the gaps between consecutive words summing to at most
/// `slop`.
///
/// Dynamic programming over the words: for each partial occurrence
/// `(first position, last position so far)` keep the least slop used.
fn phrase_spans(words: &[Pattern], slop: u32, tokens: &TokenizedText) -> Vec<Span> {
    let Some((first, rest)) = words.split_first() else {
        return Vec::new();
    };
    let mut partial: BTreeMap<Span, u32> = term_spans(first, tokens).into_iter().map(|span| (span, 0)).collect();
    for word in rest {
        let next_spans = term_spans(word, tokens);
        let mut next: BTreeMap<Span, u32> = BTreeMap::new();
        for (&(start, end), &used) in &partial {
            for &span in &next_spans {
                let Some(gap) = gap_between((start, end), span) else {
                    continue;
                };
                let total = used.saturating_add(gap);
                if total <= slop {
                    let entry = next.entry((start, span.1)).or_insert(total);
                    *entry = (*entry).min(total);
                }
            }
        }
        partial = next;
    }
    partial.into_keys().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::post::{Entities, Sentiment};

    fn post(text: &str) -> Post {
        Post {
            platform: "twitter".into(),
            text: text.into(),
            lang: Some("en".into()),
            ..Default::default()
        }
    }

    fn hit(query: &str, p: &Post) -> bool {
        let q = Query::parse(query).unwrap_or_else(|e| panic!("{e}"));
        matches_post(&q, p)
    }

    fn hits(query: &str, text: &str) -> bool {
        hit(query, &post(text))
    }

    #[test]
    fn terms_ignore_case_and_diacritics() {
        assert!(hits("cafe", "Meet me at the Café!"));
        assert!(hits("CAFÉ", "meet me at the cafe"));
        assert!(hits("uberschwemmung", "Überschwemmung in der Stadt"));
        assert!(!hits("cafe", "cafeteria"));
    }

    #[test]
    fn boolean_operators() {
        let t = "flood warning for the river";
        assert!(hits("flood AND river", t));
        assert!(hits("flood river", t));
        assert!(!hits("flood AND fire", t));
        assert!(hits("fire OR river", t));
        assert!(hits("flood NOT fire", t));
        assert!(!hits("flood -river", t));
        assert!(hits("(fire OR flood) AND (warning OR alert)", t));
        // NOT binds tighter than AND, AND tighter than OR.
        assert!(hits("fire AND flood OR river", t));
        assert!(!hits("NOT flood OR fire", t));
    }

    #[test]
    fn pure_negation_matches_posts_without_the_term() {
        assert!(hits("NOT spam", "a fine post"));
        assert!(!hits("NOT spam", "buy spam now"));
        assert!(hits("-spam -scam", "a fine post"));
    }

    #[test]
    fn phrases_are_adjacent_and_in_order() {
        assert!(hits("\"climate change\"", "Climate change is real"));
        assert!(!hits("\"climate change\"", "change climate"));
        assert!(!hits("\"climate change\"", "climate policy change"));
        // A hyphenated term is the phrase of its words.
        assert!(hits("e-mail", "send an e mail"));
    }

    #[test]
    fn phrase_slop_counts_words_inserted_in_order() {
        let t = "climate policy and change";
        assert!(!hits("\"climate change\"~1", t));
        assert!(hits("\"climate change\"~2", t));
        assert!(!hits("\"change climate\"~5", t));
        // The slop is a total over all gaps.
        assert!(hits("\"a b c\"~2", "a x b y c"));
        assert!(!hits("\"a b c\"~1", "a x b y c"));
    }

    #[test]
    fn near_works_in_either_order() {
        assert!(hits("flood NEAR/2 river", "the river may flood"));
        assert!(hits("flood NEAR/2 river", "flood on the river"));
        assert!(!hits("flood NEAR/1 river", "flood on the river"));
        assert!(hits("flood NEAR/0 river", "river flood"));
        assert!(hits("(flood OR fire) NEAR/1 \"the river\"", "fire near the river"));
        assert!(!hits("(flood OR fire) NEAR/1 \"the river\"", "fire is near the river"));
        // The operands must be distinct occurrences.
        assert!(!hits("climate NEAR/3 #climate", "#climate"));
        assert!(hits("climate NEAR/3 #climate", "climate #climate"));
    }

    #[test]
    fn wildcards() {
        assert!(hits("climat*", "Climatology"));
        assert!(hits("climat*", "the climate"));
        assert!(!hits("climat*", "clima"));
        assert!(hits("c*mate", "CLIMATE"));
        assert!(hits("wom?n", "women"));
        assert!(!hits("wom?n", "womn wooman"));
        assert!(hits("#clim*", "#ClimateStrike"));
        assert!(!hits("#clim*", "climate strike"));
        assert!(hits("\"climat* change\"", "climatic change"));
        // Inside quotes `?` is punctuation unless the word has a `*`.
        assert!(hits("\"is it true?\"", "Is it TRUE? yes"));
        assert!(hits("\"tr?e*\"", "trees"));
        assert!(hits("\"a~b\"", "a b"));
    }

    #[test]
    fn hashtags_mentions_cashtags_versus_words() {
        assert!(hits("climate", "join #Climate"));
        assert!(hits("#climate", "join #Climate"));
        assert!(!hits("#climate", "the climate"));
        assert!(hits("$tsla", "$TSLA up"));
        assert!(!hits("$tsla", "tsla up"));
        assert!(hits("@alice_example", "hi @Alice_Example"));
        assert!(hits("\"#climate strike\"", "#climate strike today"));
    }

    #[test]
    fn cjk_is_matched_inside_sentences() {
        assert!(hits("地震", "今日は大きな地震がありました"));
        assert!(!hits("地震", "地面が震えた"));
        assert!(hits("서울", "서울에서 만나요"));
        assert!(hits("#東京2020", "応援 #東京2020 速報"));
        assert!(hits("\"#東京2020 速報\"", "応援 #東京2020 速報"));
    }

    #[test]
    fn fields() {
        let mut p = post("storm warning https://news.example.org/a");
        p.entities = Some(Entities {
            domains: vec!["news.example.org".into()],
            ..Default::default()
        });
        p.sentiment = Some(Sentiment {
            compound: 0.6,
            ..Default::default()
        });
        p.repost_of = Some("x".into());
        assert!(hit("storm domain:example.org", &p));
        assert!(!hit("domain:other.org", &p));
        assert!(hit("lang:en platform:twitter", &p));
        assert!(!hit("lang:de", &p));
        assert!(hit("sentiment:positive is:repost", &p));
        assert!(!hit("sentiment:negative OR is:reply", &p));
        assert!(hit("NOT lang:de", &p));
    }
}
