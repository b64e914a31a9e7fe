//! The compiled matcher against hand-checked cases, and against the
//! reference evaluator on random queries and posts.

use super::*;
use crate::post::{Entities, Sentiment};
use crate::query::eval;
use crate::query::SentimentClass;
use crate::text::tokenized;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use std::cell::Cell;

fn spec(id: u32, q: &str) -> FeedSpec {
    FeedSpec {
        id,
        name: format!("feed {id}"),
        query: Query::parse(q).unwrap_or_else(|e| panic!("{q}: {e}")),
    }
}

fn post(text: &str) -> Post {
    Post {
        platform: "twitter".into(),
        text: text.into(),
        lang: Some("en".into()),
        ..Default::default()
    }
}

fn run(m: &FeedMatcher, p: &Post) -> Vec<u32> {
    let mut scratch = MatchScratch::new();
    let mut out = Vec::new();
    m.match_post(p, &tokenized(&p.text), &mut scratch, &mut out);
    out
}

#[test]
fn matches_hand_checked_feeds() {
    let m = FeedMatcher::build(vec![
        spec(10, "flood"),
        spec(3, "\"climate change\""),
        spec(7, "flood NEAR/2 river"),
        spec(8, "climat*"),
        spec(9, "c*mate"),
        spec(1, "NOT spam"),
        spec(2, "lang:de"),
        spec(4, "lang:en AND NOT flood"),
        spec(5, "#flood OR 地震"),
        spec(6, "\"the river\" -fire"),
    ]);
    assert_eq!(run(&m, &post("Flood on the river")), vec![1, 6, 7, 10]);
    assert_eq!(run(&m, &post("climate change now")), vec![1, 3, 4, 8, 9]);
    assert_eq!(run(&m, &post("buy spam, #flood")), vec![5, 10]);
    assert_eq!(run(&m, &post("今日は地震")), vec![1, 4, 5]);
    let mut de = post("Hochwasser am Fluss");
    de.lang = Some("de-AT".into());
    assert_eq!(run(&m, &de), vec![1, 2]);
    assert_eq!(m.unanchored_counts(), (1, 2));
}

#[test]
fn fields_and_gates() {
    let m = FeedMatcher::build(vec![
        spec(1, "domain:example.org"),
        spec(2, "sentiment:negative storm"),
        spec(3, "is:repost AND NOT storm"),
        spec(4, "platform:bluesky OR is:reply"),
    ]);
    let mut p = post("storm https://news.example.org/x");
    p.entities = Some(Entities {
        domains: vec!["news.example.org".into()],
        ..Default::default()
    });
    p.sentiment = Some(Sentiment {
        compound: -0.5,
        ..Default::default()
    });
    assert_eq!(run(&m, &p), vec![1, 2]);
    p.repost_of = Some("x".into());
    p.text = "calm".into();
    p.reply_to = Some("y".into());
    assert_eq!(run(&m, &p), vec![1, 3, 4]);
}

#[test]
fn duplicate_ids_are_reported_once_and_empty_matcher_matches_nothing() {
    let m = FeedMatcher::build(vec![spec(5, "a"), spec(5, "b")]);
    assert_eq!(run(&m, &post("a b")), vec![5]);
    let empty = FeedMatcher::build(Vec::new());
    assert!(run(&empty, &post("a b")).is_empty());
    assert!(empty.is_empty());
}

#[test]
fn stats_count_candidates_and_matches_and_survive_a_swap() {
    let m1 = FeedMatcher::build(vec![spec(1, "\"flood warning\""), spec(2, "NOT flood")]);
    let m2 = FeedMatcher::build(vec![spec(1, "flood")]);
    let mut scratch = MatchScratch::new();
    let mut out = Vec::new();
    for text in ["flood now", "flood warning", "calm"] {
        let p = post(text);
        m1.match_post(&p, &tokenized(text), &mut scratch, &mut out);
    }
    let p = post("flood");
    m2.match_post(&p, &tokenized("flood"), &mut scratch, &mut out);
    assert_eq!(out, vec![1]);
    let stats = scratch.take_stats();
    assert_eq!(stats.posts, 4);
    // Feed 1: verified only on the post with both words (m1), then on
    // m2's post; matched both times.
    assert_eq!(stats.feeds[&1].candidates, 2);
    assert_eq!(stats.feeds[&1].matched, 2);
    assert_eq!(stats.feeds[&2].candidates, 3);
    assert_eq!(stats.feeds[&2].matched, 1);
    let mut total = MatchStats::default();
    total.merge(&stats);
    total.merge(&stats);
    assert_eq!(total.feeds[&1].matched, 4);
    assert_eq!(scratch.take_stats().posts, 0);
    assert!(m1.memory_bytes() > 0);
}

#[test]
fn identical_queries_are_compiled_once_and_reported_for_every_feed() {
    let m = FeedMatcher::build(vec![spec(4, "flood -fire"), spec(9, "Flood NOT fire"), spec(2, "fire")]);
    assert_eq!(m.len(), 3);
    assert_eq!(m.distinct_queries(), 2);
    let mut scratch = MatchScratch::new();
    let mut out = Vec::new();
    m.match_post(&post("flood"), &tokenized("flood"), &mut scratch, &mut out);
    assert_eq!(out, vec![4, 9]);
    let stats = scratch.take_stats();
    assert_eq!(stats.feeds[&4].matched, 1);
    assert_eq!(stats.feeds[&9].matched, 1);
    assert!(!stats.feeds.contains_key(&2));
    assert_eq!(m.feeds().map(|(id, _)| id).collect::<Vec<_>>(), vec![2, 4, 9]);
}

#[test]
fn booleans_of_words_phrases_and_exclusions_are_matched_without_verification() {
    let queries = [
        "\"climate change\" -hoax",
        "\"sea level\" AND (rise OR surge) -film",
        "flood NOT \"flood warning\"",
        "river -bank*",
        "\"climate change\" OR (storm NEAR/1 coast)",
        "wom?n OR r?ver",
    ];
    let m = FeedMatcher::build((1..=6).map(|id| spec(id, queries[id as usize - 1])).collect());
    // 1 to 4 are direct (sure entries only); 5 has a sure disjunct; 6 is
    // an OR of wildcards.
    assert_eq!(m.direct_count(), 5);
    let none: &[u32] = &[];
    let cases: &[(&str, &[u32])] = &[
        ("Climate change is real", &[1, 5]),
        ("climate change hoax", &[5]),
        ("change the climate", none),
        ("the sea level will rise", &[2]),
        ("sea level surge, the film", none),
        ("level sea rise", none),
        ("flood warning issued", none),
        ("warning: flood", &[3]),
        ("the river bank", &[6]),
        ("the river banks", &[6]),
        ("a river in spring", &[4, 6]),
        ("coast storm", &[5]),
        // `?` is one character, of any length in bytes: the cheap length
        // and suffix checks before the glob must agree with it.
        ("woman", &[6]),
        ("womén", &[6]),
        ("womn wooman womans", none),
    ];
    for &(text, want) in cases {
        let p = post(text);
        assert_eq!(run(&m, &p), want, "{text}");
        let t = tokenized(text);
        let reference: Vec<u32> = (1..=6)
            .filter(|&id| eval::matches(&spec(id, queries[id as usize - 1]).query, &p, &t))
            .collect();
        assert_eq!(reference, want, "reference on {text}");
    }
}

#[test]
fn anchor_sets_skip_posts_missing_an_anchor() {
    let m = FeedMatcher::build(vec![spec(1, "\"earthquake warning\"")]);
    let mut scratch = MatchScratch::new();
    let mut out = Vec::new();
    for text in ["earthquake", "warning", "earthquake warning"] {
        m.match_post(&post(text), &tokenized(text), &mut scratch, &mut out);
    }
    let stats = scratch.take_stats();
    // Only the post with both words was verified.
    assert_eq!(stats.feeds[&1].candidates, 1);
    assert_eq!(stats.feeds[&1].matched, 1);
}

// ---- Random queries against the reference -------------------------------

/// Words of the shared vocabulary (as they appear in posts).
const POST_WORDS: &[&str] = &[
    "a",
    "b",
    "c",
    "flood",
    "river",
    "fire",
    "fires",
    "forest",
    "the",
    "#flood",
    "#fire",
    "$acme",
    "@bob_example",
    "café",
    "Ünder",
    "地",
    "震",
    "地震",
    "#東京2020",
    "東",
    "京",
    "2020",
    "e-mail",
    "wom",
    "women",
    "woman",
];

/// Exact words a query may use (folded), including tags and CJK.
const QUERY_WORDS: &[&str] = &[
    "a",
    "b",
    "c",
    "flood",
    "river",
    "fire",
    "fires",
    "forest",
    "the",
    "#flood",
    "#fire",
    "$acme",
    "@bob_example",
    "cafe",
    "under",
    "地",
    "震",
    "#東京2020",
    "東",
    "2020",
    "mail",
    "e",
    "women",
];

const WILDCARDS: &[&str] = &[
    "fl*", "f*e", "fire?", "wom?n", "#fl*", "r*r", "caf*", "f*", "#東*", "a*",
];

fn pattern() -> impl Strategy<Value = Pattern> {
    prop_oneof![
        4 => proptest::sample::select(QUERY_WORDS).prop_map(|w| Pattern::Exact(w.to_string())),
        1 => proptest::sample::select(WILDCARDS).prop_map(|w| Pattern::Wildcard(w.to_string())),
    ]
}

fn phrase() -> impl Strategy<Value = Node> {
    (
        proptest::collection::vec(pattern(), 2..4),
        prop_oneof![3 => Just(0u32), 1 => 1u32..4],
    )
        .prop_map(|(words, slop)| Node::Phrase { words, slop })
}

fn span_operand() -> impl Strategy<Value = Node> {
    prop_oneof![
        3 => pattern().prop_map(Node::Term),
        1 => phrase(),
        1 => proptest::collection::vec(prop_oneof![pattern().prop_map(Node::Term), phrase()], 2..3).prop_map(Node::or),
    ]
}

fn field() -> impl Strategy<Value = Field> {
    prop_oneof![
        proptest::sample::select(&["en", "de", "ja"][..]).prop_map(|l| Field::Lang(l.to_string())),
        proptest::sample::select(&["twitter", "bluesky"][..]).prop_map(|p| Field::Platform(p.to_string())),
        proptest::sample::select(&["example.org", "news.example.org"][..]).prop_map(|d| Field::Domain(d.to_string())),
        proptest::sample::select(
            &[
                SentimentClass::Negative,
                SentimentClass::Neutral,
                SentimentClass::Positive
            ][..]
        )
        .prop_map(Field::Sentiment),
        Just(Field::IsRepost),
        Just(Field::IsReply),
    ]
}

fn node() -> impl Strategy<Value = Node> {
    let leaf = prop_oneof![
        6 => pattern().prop_map(Node::Term),
        2 => phrase(),
        2 => (span_operand(), span_operand(), 0u32..4).prop_map(|(l, r, d)| Node::Near {
            left: Box::new(l),
            right: Box::new(r),
            distance: d,
        }),
        2 => field().prop_map(Node::Field),
    ];
    leaf.prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            2 => proptest::collection::vec(inner.clone(), 2..4).prop_map(Node::and),
            2 => proptest::collection::vec(inner.clone(), 2..4).prop_map(Node::or),
            1 => inner.prop_map(|n| Node::Not(Box::new(n))),
        ]
    })
}

fn random_post() -> impl Strategy<Value = Post> {
    (
        proptest::collection::vec(
            (
                proptest::sample::select(POST_WORDS),
                prop_oneof![4 => Just(" "), 1 => Just(""), 1 => Just(", ")],
            ),
            0..12,
        ),
        proptest::sample::select(&[None, Some("en"), Some("de-AT"), Some("ja")][..]),
        proptest::sample::select(&["twitter", "Bluesky"][..]),
        proptest::sample::select(
            &[
                None,
                Some("example.org"),
                Some("www.news.example.org"),
                Some("badexample.org"),
            ][..],
        ),
        proptest::option::of(-1.0f64..1.0),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(words, lang, platform, domain, compound, reply, repost)| {
            let mut text = String::new();
            for (w, sep) in words {
                text.push_str(w);
                text.push_str(sep);
            }
            Post {
                platform: platform.into(),
                text,
                lang: lang.map(str::to_string),
                reply_to: reply.then(|| "r".to_string()),
                repost_of: repost.then(|| "p".to_string()),
                sentiment: compound.map(|c| Sentiment {
                    compound: c,
                    ..Default::default()
                }),
                entities: domain.map(|d| Entities {
                    domains: vec![d.to_string()],
                    ..Default::default()
                }),
                ..Default::default()
            }
        })
}

#[test]
fn compiled_matcher_equals_the_reference_on_random_queries_and_posts() {
    let pairs = Cell::new(0u64);
    let hits = Cell::new(0u64);
    let cases = 200;
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = (
        proptest::collection::vec(node(), 50),
        proptest::collection::vec(random_post(), 6),
        any::<bool>(),
    );
    runner
        .run(&strategy, |(nodes, posts, use_sample)| {
            let feeds: Vec<FeedSpec> = nodes
                .iter()
                .enumerate()
                .map(|(i, n)| FeedSpec {
                    // Not in index order, to check the output is sorted by id.
                    id: (i as u32 * 37) % 101,
                    name: String::new(),
                    query: Query::from_node(n.clone()),
                })
                .collect();
            // Some users watch the same query: copies under new ids.
            let copies: Vec<FeedSpec> = feeds
                .iter()
                .take(5)
                .enumerate()
                .map(|(i, f)| FeedSpec {
                    id: 200 + i as u32,
                    ..f.clone()
                })
                .collect();
            let mut feeds = feeds;
            feeds.extend(copies);
            let tokenized_posts: Vec<TokenizedText> = posts.iter().map(|p| tokenized(&p.text)).collect();
            let stats = if use_sample {
                TermStats::from_sample(tokenized_posts.iter())
            } else {
                TermStats::none()
            };
            let m = FeedMatcher::build_with(feeds.clone(), &stats);
            let mut scratch = MatchScratch::new();
            let mut out = Vec::new();
            for (p, t) in posts.iter().zip(&tokenized_posts) {
                let mut want: Vec<u32> = feeds
                    .iter()
                    .filter(|f| eval::matches(&f.query, p, t))
                    .map(|f| f.id)
                    .collect();
                want.sort_unstable();
                m.match_post(p, t, &mut scratch, &mut out);
                pairs.set(pairs.get() + feeds.len() as u64);
                hits.set(hits.get() + want.len() as u64);
                prop_assert_eq!(&out, &want, "post {:?}", p.text);
            }
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    let (pairs, hits) = (pairs.get(), hits.get());
    assert!(pairs >= 10_000, "only {pairs} query/post pairs");
    let share = hits as f64 / pairs as f64;
    assert!((0.1..0.9).contains(&share), "match share {share}");
}

#[test]
fn sparse_ids_and_shared_queries_come_out_sorted() {
    // Ids far apart are reported through the rank table rather than used
    // as output slots directly; a query shared by feeds reports each.
    let m = FeedMatcher::build(vec![
        spec(4_000_000_000, "flood"),
        spec(7, "flood OR \"river bank\""),
        spec(3_000_000_000, "flood OR \"river bank\""),
        spec(12, "river -fire"),
        spec(5, "\"river bank\" OR lake"),
    ]);
    assert_eq!(
        run(&m, &post("flood near the river bank")),
        vec![5, 7, 12, 3_000_000_000, 4_000_000_000]
    );
    assert_eq!(run(&m, &post("river bank on fire")), vec![5, 7, 3_000_000_000]);
    assert_eq!(run(&m, &post("bank river")), vec![12]);
    assert_eq!(run(&m, &post("the lake")), vec![5]);
}
