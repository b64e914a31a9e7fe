//! A suggested detection feed for a fast-growing narrative: the AND of the
//! rarest words its copies share.
//!
//! The idea: a narrative is many near-identical copies of one text, so a
//! feed for it needs words that (a) nearly every copy carries and (b) the
//! rest of the stream rarely uses. The emerging-topic detector already
//! counts every content term and hashtag of the stream in its long
//! (6-hour) decayed baseline, so both are read from there:
//!
//! - a word of the representative text is *shared* when its baseline count
//!   is at least [`SHARED_SHARE`] of the narrative's recent text posts (a
//!   word one copy changed has about one post; the count-min sketch only
//!   over-estimates, so a shared word is never missed);
//! - among shared words, the lowest baseline count is the rarest: the
//!   narrative's own posts are in every shared word's count, so what
//!   differs is how often the rest of the stream uses it.
//!
//! The query is the AND of up to [`MAX_AND`] rarest shared words. Its
//! matches are at most the rarest word's posts, so `narrative posts /
//! rarest count` (at most 1) estimates its precision. Mentions, links,
//! e-mail addresses and the words inside them are never used: a feed is
//! about a text, not an account or a site.

use super::{key_hash, surprise, EmergingTopics, KeyKind, SuggestedFeed, TopicTerm};
use crate::entities::{self, SpanKind};
use crate::query::Query;
use crate::text::{tokenize, TokenKind, TokenizedText};
use crate::time::Timestamp;

/// Most words in the AND.
pub const MAX_AND: usize = 3;
/// Share of the narrative's recent text posts a word's baseline count must
/// reach for the word to count as shared by its copies.
pub const SHARED_SHARE: f64 = 0.6;

/// A narrative's suggested feed and its words as topic terms.
#[derive(Clone, Debug, PartialEq)]
pub struct NarrativeFeed {
    pub feed: SuggestedFeed,
    /// The AND-ed words with the detector's current figures, rarest first.
    pub terms: Vec<TopicTerm>,
}

/// A word of the representative text: its kind, folded text and position.
struct Word {
    kind: KeyKind,
    text: String,
    /// Baseline (long) and window (short) decayed counts.
    baseline: f64,
    window: f64,
}

impl EmergingTopics {
    /// A key's decayed post counts as of the detector's clock: (window,
    /// baseline). Over-estimates, never under (count-min). Zero before
    /// the first post.
    pub fn key_counts(&self, kind: KeyKind, text: &str) -> (f64, f64) {
        let Some(now) = self.clock else {
            return (0.0, 0.0);
        };
        let e = self.sketch.estimate(key_hash(kind, super::clip(text)), now);
        (e[0], e[1])
    }

    /// Suggests a feed for a narrative whose (redacted) representative text
    /// is `text` and which had about `text_posts` posts carrying its text
    /// (not reposts) in the last hour or so; see the module docs. `None`
    /// when the text has no usable word.
    pub fn suggest_narrative_feed(&self, text: &str, text_posts: f64) -> Option<NarrativeFeed> {
        let mut words = distinctive_words(text);
        if words.is_empty() {
            return None;
        }
        for w in &mut words {
            let (window, baseline) = self.key_counts(w.kind, &w.text);
            w.window = window;
            w.baseline = baseline;
        }
        let needed = SHARED_SHARE * text_posts.max(1.0);
        let mut shared: Vec<&Word> = words.iter().filter(|w| w.baseline >= needed).collect();
        let estimated_precision;
        if shared.is_empty() {
            // The detector has not seen the copies (a narrative older than
            // its baseline, or no detector data): the longest words, whose
            // rarity is a guess.
            shared = words.iter().collect();
            shared.sort_by_key(|w| std::cmp::Reverse(w.text.chars().count()));
            shared.truncate(MAX_AND);
            estimated_precision = 0.0;
        } else {
            // Stable: equal counts keep the text's order.
            shared.sort_by(|a, b| a.baseline.total_cmp(&b.baseline));
            shared.truncate(MAX_AND);
            let rarest = shared.first().map_or(0.0, |w| w.baseline);
            estimated_precision = if rarest > 0.0 {
                (text_posts / rarest).clamp(0.0, 1.0)
            } else {
                0.0
            };
        }
        let forms: Vec<String> = shared.iter().map(|w| query_form(w.kind, &w.text)).collect();
        let query = forms.join(" AND ");
        Query::parse(&query).ok()?;
        let (totals, now) = match self.clock {
            Some(now) => (self.sketch.totals(now), now),
            None => ([0.0, 0.0], 0),
        };
        let terms = shared
            .iter()
            .map(|w| {
                let expected = if totals[1] > 0.0 {
                    w.baseline / totals[1] * totals[0]
                } else {
                    0.0
                };
                TopicTerm {
                    kind: w.kind,
                    text: w.text.clone(),
                    score: surprise(w.window, expected.max(self.cfg.expected_floor)),
                    count: w.window,
                    expected,
                    prior_expected: 0.0,
                    first_seen: Timestamp(now),
                    hash: key_hash(w.kind, &w.text),
                    tracked: w.window,
                }
            })
            .collect();
        Some(NarrativeFeed {
            feed: SuggestedFeed {
                query,
                terms: forms,
                excluded: Vec::new(),
                estimated_precision,
            },
            terms,
        })
    }
}

/// `word` or `#tag`.
fn query_form(kind: KeyKind, text: &str) -> String {
    match kind {
        KeyKind::Hashtag => format!("#{text}"),
        _ => text.to_string(),
    }
}

/// The distinct content terms and hashtags of `text`, in text order,
/// leaving out anything inside a mention, link or e-mail address.
fn distinctive_words(text: &str) -> Vec<Word> {
    let mut spans = Vec::new();
    entities::scan_into(text, &mut spans);
    let excluded: Vec<std::ops::Range<usize>> = spans
        .iter()
        .filter(|s| matches!(s.kind, SpanKind::Mention | SpanKind::Link | SpanKind::Email))
        .map(|s| s.range.clone())
        .collect();
    let mut tokens = TokenizedText::new();
    tokenize(text, &mut tokens);
    let mut words: Vec<Word> = Vec::new();
    for (word, tok) in tokens.iter() {
        let at = tok.start as usize;
        if excluded.iter().any(|r| r.contains(&at)) {
            continue;
        }
        let (kind, key) = match tok.kind {
            TokenKind::Word if super::is_content_term(word) && !matches!(word, "http" | "https" | "www") => {
                (KeyKind::Term, word)
            }
            TokenKind::Hashtag => match word.strip_prefix('#') {
                Some(tag) if !tag.is_empty() => (KeyKind::Hashtag, tag),
                _ => continue,
            },
            _ => continue,
        };
        // Words the query language would read as operators are left out.
        if matches!(key, "and" | "or" | "not" | "near") {
            continue;
        }
        if !words.iter().any(|w| w.kind == kind && w.text == key) {
            words.push(Word {
                kind,
                text: key.to_string(),
                baseline: 0.0,
                window: 0.0,
            });
        }
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emerging::EmergingConfig;
    use crate::post::Post;

    const T0: i64 = 1_772_409_600_000;

    fn post(id: usize, t: i64, text: &str) -> Post {
        let mut p = Post {
            id: format!("p{id}"),
            created_at: Some(Timestamp(t)),
            text: text.into(),
            ..Default::default()
        };
        let mut spans = Vec::new();
        entities::scan_into(&p.text, &mut spans);
        p.entities = Some(entities::extract(&p.text, &spans));
        p
    }

    fn observe(d: &mut EmergingTopics, p: &Post) {
        let mut tokens = TokenizedText::new();
        tokenize(&p.text, &mut tokens);
        d.observe(p, &tokens);
    }

    #[test]
    fn the_feed_is_the_and_of_the_rarest_words_every_copy_shares() {
        let mut d = EmergingTopics::new(EmergingConfig::default());
        // Background: "harbour" and "ferry" are everyday words here.
        for i in 0..400 {
            let t = T0 + i as i64 * 6_000;
            observe(&mut d, &post(i, t, "the harbour ferry runs late again this morning"));
        }
        // Twenty copies, one with a changed word ("vanished").
        let message = "Harbour ferry tickets secretly tripled by the council, share it @crier_example https://news.example/x #ferrygate";
        for i in 0..20 {
            let text = if i == 7 {
                message.replace("tripled", "vanished")
            } else {
                message.to_string()
            };
            observe(&mut d, &post(1000 + i, T0 + 2_400_000 + i as i64 * 1_000, &text));
        }
        let f = d.suggest_narrative_feed(message, 20.0).expect("a feed");
        // Rarest shared words first; never the mention or the link's words,
        // nor "vanished" (one copy) or the everyday "harbour"/"ferry".
        assert_eq!(f.feed.terms.len(), MAX_AND);
        for t in &f.feed.terms {
            assert!(
                ["tickets", "secretly", "tripled", "council", "share", "#ferrygate"].contains(&t.as_str()),
                "{t}"
            );
        }
        assert!(!f.feed.query.contains("crier") && !f.feed.query.contains("news"));
        assert!(f.feed.estimated_precision > 0.9, "{:?}", f.feed);
        let q = Query::parse(&f.feed.query).unwrap();
        assert!(crate::query::eval::matches_post(&q, &post(0, T0, message)));
        assert!(!crate::query::eval::matches_post(
            &q,
            &post(0, T0, "the harbour ferry runs late again")
        ));
        assert_eq!(f.terms.len(), MAX_AND);
    }

    #[test]
    fn a_text_without_content_words_has_no_feed_and_unknown_words_fall_back() {
        let d = EmergingTopics::new(EmergingConfig::default());
        assert!(d
            .suggest_narrative_feed("@crier_example https://x.example/a", 5.0)
            .is_none());
        let f = d
            .suggest_narrative_feed("tiny words and remarkable statements", 5.0)
            .expect("a fallback feed");
        assert_eq!(f.feed.query, "remarkable AND statements AND words");
        assert_eq!(f.feed.estimated_precision, 0.0);
    }
}
