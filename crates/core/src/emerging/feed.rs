//! Suggested detection feeds: a boolean query that captures an emerging
//! topic's posts, and how well a query does against known topic posts.
//!
//! The idea: a topic key is a good feed term when most of the posts it
//! finds are the topic's. The detector knows, for each key, how many of its
//! window posts the baseline from before it emerged explains
//! (`prior_expected`), so `1 − prior_expected / count` (its *excess
//! share*) estimates that precision: about 1 for a new word, low for an
//! ordinary word that merely rose. The query is an OR of
//! precise keys, chosen greedily:
//!
//! 1. keys whose excess share is at least [`MIN_PRECISION`], most posts
//!    (times precision) first; if none qualifies, the single most precise
//!    key;
//! 2. a key is added when the posts it brings beyond those already covered
//!    (its posts since it is tracked minus its largest co-occurrence with a
//!    chosen key) are at
//!    least [`MIN_GAIN`] of what is covered, so `glimmer` is added next to
//!    `glimmerchain`; a key another chosen key already finds is skipped
//!    (`#quorvex` and `"quorvex virus"` next to `quorvex`, since the plain
//!    word finds the hashtag and the phrase);
//! 3. at most [`MAX_TERMS`] keys.
//!
//! **Confounders**: when a chosen key is not pure (excess share below
//! [`PURE`]) and a tracked key outside the topic accounts for at least
//! [`CONFOUNDER_SHARE`] of its posts, but for no more than its old baseline
//! explains (so it is what the key meant before, not part of what is new),
//! while co-occurring with no other key of the topic, that key is excluded
//! with `AND NOT` (at most two).
//!
//! [`evaluate_feed`] runs a query with the reference evaluator
//! ([`crate::query::eval::matches_post`]) over posts labelled as the
//! topic's or not, and reports precision and recall.

use super::TopicTerm;
use crate::post::Post;
use crate::query::{eval, Query};
use serde::{Deserialize, Serialize};

/// Smallest excess share for a key to join the OR.
pub const MIN_PRECISION: f64 = 0.85;
/// Smallest share of new posts (over those covered) for a further key.
pub const MIN_GAIN: f64 = 0.05;
/// Most keys in the OR.
pub const MAX_TERMS: usize = 6;
/// A key with at least this excess share needs no exclusions.
pub const PURE: f64 = 0.95;
/// Share of a chosen key's posts a confounder must account for.
pub const CONFOUNDER_SHARE: f64 = 0.15;

/// A proposed detection feed for an emerging topic.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SuggestedFeed {
    /// The query, in the query language (it parses).
    pub query: String,
    /// The OR-ed keys, in query form, in the order chosen.
    pub terms: Vec<String>,
    /// Keys excluded with `AND NOT`, in query form.
    pub excluded: Vec<String>,
    /// The detector's estimate of the share of matched posts that are the
    /// topic's (from the chosen keys' excess shares).
    pub estimated_precision: f64,
}

/// Builds the feed from the topic's keys (`members`, with their candidate
/// slots), the other tracked keys, and `pair(a, b)`, the decayed
/// co-occurrence count of two slots.
pub(crate) fn suggest(
    members: &[(u32, TopicTerm)],
    others: &[(u32, TopicTerm)],
    pair: impl Fn(u32, u32) -> f64,
) -> Option<SuggestedFeed> {
    let usable = |t: &TopicTerm| Query::parse(&t.query_form()).is_ok();
    let mut ranked: Vec<&(u32, TopicTerm)> = members
        .iter()
        .filter(|(_, t)| t.excess_share() >= MIN_PRECISION && usable(t))
        .collect();
    if ranked.is_empty() {
        let best = members.iter().filter(|(_, t)| usable(t)).max_by(|a, b| {
            let key = |t: &TopicTerm| (t.excess_share(), t.count);
            let (ka, kb) = (key(&a.1), key(&b.1));
            ka.0.total_cmp(&kb.0)
                .then(ka.1.total_cmp(&kb.1))
                .then(b.1.text.cmp(&a.1.text))
        })?;
        ranked.push(best);
    }
    // A key another candidate already finds adds nothing.
    let all = ranked.clone();
    ranked.retain(|b| !all.iter().any(|a| a.0 != b.0 && subsumes(&a.1, &b.1)));
    let weight = |t: &TopicTerm| t.count * t.excess_share();
    ranked.sort_by(|a, b| weight(&b.1).total_cmp(&weight(&a.1)).then(a.1.text.cmp(&b.1.text)));

    let mut chosen: Vec<&(u32, TopicTerm)> = Vec::new();
    let mut covered = 0.0;
    let mut precise = 0.0;
    for cand in ranked {
        if chosen.len() >= MAX_TERMS {
            break;
        }
        // Co-occurrences are counted from when both keys were tracked, so
        // they are compared with the posts since then, not with `count`.
        let overlap = chosen
            .iter()
            .map(|c| pair(c.0, cand.0))
            .fold(0.0, f64::max)
            .min(cand.1.tracked);
        let gain = cand.1.tracked - overlap;
        if chosen.is_empty() || gain >= MIN_GAIN * covered {
            covered += gain;
            precise += gain * cand.1.excess_share();
            chosen.push(cand);
        }
    }

    let mut excluded: Vec<&TopicTerm> = Vec::new();
    for (slot, t) in &chosen {
        if t.excess_share() >= PURE {
            continue;
        }
        let mut confounders: Vec<(f64, &TopicTerm)> = others
            .iter()
            .filter(|(o_slot, o)| {
                let c = pair(*slot, *o_slot);
                let with_rest: f64 = members
                    .iter()
                    .filter(|(m, _)| m != slot)
                    .map(|(m, _)| pair(*m, *o_slot))
                    .sum();
                // It must explain the key's old posts, not its new ones: it
                // co-occurs no more than the old baseline accounts for.
                c >= 2.0
                    && c >= CONFOUNDER_SHARE * t.count
                    && c <= 1.5 * t.prior_expected
                    && with_rest <= 0.05 * o.count
                    && usable(o)
            })
            .map(|(o_slot, o)| (pair(*slot, *o_slot), o))
            .collect();
        confounders.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.text.cmp(&b.1.text)));
        for (_, o) in confounders {
            if excluded.len() < 2 && !excluded.iter().any(|e| e.text == o.text && e.kind == o.kind) {
                excluded.push(o);
            }
        }
    }

    let terms: Vec<String> = chosen.iter().map(|(_, t)| t.query_form()).collect();
    let excluded: Vec<String> = excluded.iter().map(|t| t.query_form()).collect();
    let mut query = if terms.len() > 1 && !excluded.is_empty() {
        format!("({})", terms.join(" OR "))
    } else {
        terms.join(" OR ")
    };
    for e in &excluded {
        query.push_str(" AND NOT ");
        query.push_str(e);
    }
    // Every part parsed alone; the whole is checked too, so the promise
    // that `query` parses always holds.
    Query::parse(&query).ok()?;
    Some(SuggestedFeed {
        query,
        terms,
        excluded,
        estimated_precision: if covered > 0.0 { precise / covered } else { 0.0 },
    })
}

/// Whether every post `b` finds is also found by `a`: the plain word
/// `x` finds the hashtag `#x` and every phrase containing `x`.
fn subsumes(a: &TopicTerm, b: &TopicTerm) -> bool {
    use super::KeyKind::{Bigram, Hashtag, Term};
    match (a.kind, b.kind) {
        (Term, Hashtag) => a.text == b.text,
        (Term, Bigram) => b.text.split(' ').any(|w| w == a.text),
        _ => a.kind == b.kind && a.text == b.text,
    }
}

/// How a query does against posts known to be a topic's or not.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FeedQuality {
    /// Posts the query matches.
    pub matched: usize,
    /// Topic posts among them.
    pub true_positives: usize,
    /// Topic posts in all.
    pub topic_posts: usize,
    /// `true_positives / matched` (0 when nothing matched).
    pub precision: f64,
    /// `true_positives / topic_posts` (0 when there are no topic posts).
    pub recall: f64,
}

/// Runs `query` over `posts` with the reference evaluator; `is_topic` says
/// which posts are the topic's (ground truth).
pub fn evaluate_feed<'a>(
    query: &Query,
    posts: impl IntoIterator<Item = &'a Post>,
    is_topic: impl Fn(&Post) -> bool,
) -> FeedQuality {
    let mut q = FeedQuality::default();
    for post in posts {
        let topic = is_topic(post);
        let hit = eval::matches_post(query, post);
        q.topic_posts += usize::from(topic);
        q.matched += usize::from(hit);
        q.true_positives += usize::from(hit && topic);
    }
    let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    q.precision = ratio(q.true_positives, q.matched);
    q.recall = ratio(q.true_positives, q.topic_posts);
    q
}
