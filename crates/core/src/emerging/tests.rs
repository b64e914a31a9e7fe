use super::*;
use crate::entities;
use crate::query::Query;
use crate::text::tokenized;
use proptest::prelude::*;
use std::collections::BTreeSet;

const MIN: i64 = 60_000;
/// 2026-03-02T00:00:00Z.
const T0: i64 = 1_772_409_600_000;

/// Invented everyday sentences: a steady background in which every word
/// is common (`bridge` and `collapse` included, separately).
const BACKGROUND: &[&str] = &[
    "The morning train was late again",
    "Lovely weather for a walk by the river",
    "The old bridge looks great at sunset",
    "Markets collapse rumours are everywhere again",
    "Coffee first then emails",
    "Weekend plans: garden, river walk, coffee #news",
];

fn post_at(t: i64, text: &str) -> Post {
    let mut p = Post {
        id: format!("p{t}"),
        platform: "test".into(),
        created_at: Some(Timestamp(t)),
        text: text.into(),
        ..Default::default()
    };
    p.entities = Some(entities::extract(text, &entities::scan(text)));
    p
}

fn observe(det: &mut EmergingTopics, t: i64, text: &str) {
    det.observe(&post_at(t, text), &tokenized(text));
}

/// `minutes` of background, 20 posts a minute, starting at `T0 + from`.
fn background(det: &mut EmergingTopics, from: i64, minutes: i64) {
    for i in 0..minutes * 20 {
        let t = T0 + from + i * 3_000;
        observe(det, t, BACKGROUND[i as usize % BACKGROUND.len()]);
    }
}

/// Background with `extra` posts interleaved, `per_minute` of them a minute.
fn burst(det: &mut EmergingTopics, from: i64, minutes: i64, extra: &[&str], per_minute: i64) {
    let mut k = 0;
    for i in 0..minutes * 20 {
        let t = T0 + from + i * 3_000;
        observe(det, t, BACKGROUND[i as usize % BACKGROUND.len()]);
        if i % (20 / per_minute) == 0 {
            observe(det, t + 1_000, extra[k % extra.len()]);
            k += 1;
        }
    }
}

fn texts(topic: &Topic) -> BTreeSet<String> {
    topic.terms.iter().map(|t| t.to_string()).collect()
}

#[test]
fn a_new_name_emerges_as_one_topic_with_a_stable_id() {
    let mut det = EmergingTopics::new(EmergingConfig::default());
    background(&mut det, 0, 60);
    assert!(det.top(Timestamp(T0 + 60 * MIN), 10).is_empty());
    burst(&mut det, 60 * MIN, 5, &["Skarnett bridge is closed #skarnett"], 4);
    let now = Timestamp(T0 + 65 * MIN);
    let top = det.top(now, 10);
    assert_eq!(top.len(), 1, "{top:#?}");
    // `closed` is new too; `bridge` is common and rises by less than
    // `min_ratio`; `is` is a stop word, so there is no `"bridge closed"`,
    // but the hashtag's plain word follows `closed`.
    let expected: BTreeSet<String> = [
        "skarnett",
        "\"skarnett bridge\"",
        "#skarnett",
        "closed",
        "\"closed skarnett\"",
    ]
    .map(String::from)
    .into();
    assert_eq!(texts(&top[0]), expected);
    let founder = top[0].terms.iter().map(|t| t.hash).min().unwrap_or_default();
    assert_eq!(
        top[0].id,
        TopicId(founder),
        "all started together: the smallest hash founds"
    );
    assert_eq!(top[0].first_seen, top[0].terms[0].first_seen);
    assert!(top[0].posts > 10.0 && top[0].posts < 20.0, "{}", top[0].posts);

    // Two minutes later, still going: same id, more posts since first seen.
    burst(&mut det, 65 * MIN, 2, &["Skarnett bridge is closed #skarnett"], 4);
    let later = det.top(Timestamp(T0 + 67 * MIN), 10);
    assert_eq!(later[0].id, top[0].id);
    assert!(later[0].posts_since_first_seen > top[0].posts_since_first_seen);

    // The feed: `skarnett` finds the hashtag and both phrases, and
    // `closed` only ever comes with it: one of the two words is enough.
    let feed = det.suggest_feed(&later[0], Timestamp(T0 + 67 * MIN)).expect("a feed");
    assert_eq!(feed.terms.len(), 1, "{feed:?}");
    assert!(feed.excluded.is_empty());
    assert!(["skarnett", "closed"].contains(&feed.query.as_str()), "{feed:?}");

    // An hour of background alone: it fades out of the list.
    background(&mut det, 67 * MIN, 60);
    assert!(det.top(Timestamp(T0 + 127 * MIN), 10).is_empty());
}

#[test]
fn stop_words_and_steady_words_never_emerge() {
    let mut det = EmergingTopics::new(EmergingConfig::default());
    background(&mut det, 0, 60);
    // A flood of function words in many languages, and a tripled
    // perennial hashtag: nothing to report.
    burst(
        &mut det,
        60 * MIN,
        10,
        &[
            "the and of to in it is was",
            "und der die das",
            "de la que el en",
            "more #news",
        ],
        10,
    );
    let top = det.top(Timestamp(T0 + 70 * MIN), 10);
    assert!(top.is_empty(), "{top:#?}");
    let mut only_stop = EmergingTopics::new(EmergingConfig::default());
    for i in 0..500 {
        observe(
            &mut only_stop,
            T0 + i * 1_000,
            "The and of to in it is was RT @alice_example",
        );
    }
    assert_eq!(only_stop.tracked(), 0);
}

#[test]
fn a_new_pair_of_old_words_emerges_as_a_bigram() {
    let mut det = EmergingTopics::new(EmergingConfig::default());
    background(&mut det, 0, 60);
    burst(
        &mut det,
        60 * MIN,
        5,
        &["Bridge collapse downtown", "Huge bridge collapse downtown"],
        4,
    );
    let top = det.top(Timestamp(T0 + 65 * MIN), 10);
    assert_eq!(top.len(), 1, "{top:#?}");
    // `bridge` and `collapse` alone are common and rise too little;
    // `huge` is in half the posts, which is still enough.
    let expected: BTreeSet<String> = [
        "\"bridge collapse\"",
        "\"collapse downtown\"",
        "downtown",
        "huge",
        "\"huge bridge\"",
    ]
    .map(String::from)
    .into();
    assert_eq!(texts(&top[0]), expected);
    // One of the keys in every post (`huge` is in only half of them);
    // `downtown` finds `"collapse downtown"`.
    let feed = det.suggest_feed(&top[0], Timestamp(T0 + 65 * MIN)).expect("a feed");
    assert!(
        ["downtown", "\"bridge collapse\""].contains(&feed.terms[0].as_str()),
        "{feed:?}"
    );
    assert!(!feed.terms.contains(&"\"collapse downtown\"".to_string()), "{feed:?}");
}

#[test]
fn unrelated_new_topics_stay_apart() {
    let mut det = EmergingTopics::new(EmergingConfig::default());
    background(&mut det, 0, 60);
    burst(
        &mut det,
        60 * MIN,
        5,
        &["Quorvex cases reported #quorvex", "Thundrel lineup announced"],
        10,
    );
    let top = det.top(Timestamp(T0 + 65 * MIN), 10);
    let sets: BTreeSet<BTreeSet<String>> = top.iter().map(texts).collect();
    let quorvex: BTreeSet<String> = [
        "quorvex",
        "#quorvex",
        "cases",
        "reported",
        "\"quorvex cases\"",
        "\"cases reported\"",
        "\"reported quorvex\"",
    ]
    .map(String::from)
    .into();
    let thundrel: BTreeSet<String> = [
        "thundrel",
        "lineup",
        "announced",
        "\"thundrel lineup\"",
        "\"lineup announced\"",
    ]
    .map(String::from)
    .into();
    assert_eq!(sets, [quorvex, thundrel].into());
    assert_ne!(top[0].id, top[1].id);
}

#[test]
fn domains_are_keys() {
    let mut det = EmergingTopics::new(EmergingConfig::default());
    background(&mut det, 0, 60);
    burst(
        &mut det,
        60 * MIN,
        5,
        &[
            "Read this https://brindlewatch.example/live/123",
            "Brindlemoth swarm https://brindlewatch.example/p/9",
        ],
        6,
    );
    let top = det.top(Timestamp(T0 + 65 * MIN), 10);
    assert_eq!(top.len(), 1, "{top:#?}");
    assert!(texts(&top[0]).contains("domain:brindlewatch.example"), "{top:#?}");
}

fn term(kind: KeyKind, text: &str, count: f64, prior_expected: f64) -> TopicTerm {
    TopicTerm {
        kind,
        text: text.into(),
        score: surprise(count, prior_expected.max(0.5)),
        count,
        expected: prior_expected,
        prior_expected,
        first_seen: Timestamp(0),
        hash: key_hash(kind, text),
        tracked: count,
    }
}

#[test]
fn feed_ors_the_precise_keys_that_add_posts() {
    // glimmerchain in 60 posts, glimmer in 25 (10 of them with
    // glimmerchain), the hashtag always with the word, `wallet` common.
    let members = vec![
        (0, term(KeyKind::Term, "glimmerchain", 60.0, 0.0)),
        (1, term(KeyKind::Term, "glimmer", 25.0, 0.2)),
        (2, term(KeyKind::Hashtag, "glimmerchain", 30.0, 0.0)),
        (3, term(KeyKind::Term, "wallet", 30.0, 15.0)),
        (4, term(KeyKind::Bigram, "glimmer token", 20.0, 0.0)),
    ];
    let pair = |a: u32, b: u32| match (a.min(b), a.max(b)) {
        (0, 1) => 10.0,
        (0, 2) => 30.0,
        (1, 4) => 20.0,
        _ => 0.0,
    };
    let feed = feed::suggest(&members, &[], pair).expect("a feed");
    assert_eq!(feed.query, "glimmerchain OR glimmer");
    assert_eq!(feed.terms, ["glimmerchain", "glimmer"]);
    assert!(Query::parse(&feed.query).is_ok());
}

#[test]
fn feed_excludes_a_confounder_of_an_impure_key() {
    // `quake` rose, but a quarter of its posts are about a video game
    // (`quakecon`), which never comes with the topic's other key.
    let members = vec![
        (0, term(KeyKind::Term, "quake", 40.0, 10.0)),
        (1, term(KeyKind::Term, "aftershock", 8.0, 3.0)),
    ];
    let others = vec![(7, term(KeyKind::Term, "quakecon", 12.0, 0.0))];
    let pair = |a: u32, b: u32| match (a.min(b), a.max(b)) {
        (0, 7) => 10.0,
        (0, 1) => 6.0,
        _ => 0.0,
    };
    let feed = feed::suggest(&members, &others, pair).expect("a feed");
    assert_eq!(feed.query, "quake AND NOT quakecon");
    assert_eq!(feed.excluded, ["quakecon"]);
    assert!(Query::parse(&feed.query).is_ok());
}

#[test]
fn feed_quality_counts_exactly() {
    let posts: Vec<Post> = [
        "Quorvex cases rising",
        "quorvex again #quorvex",
        "new virus? no, quorvex",
        "nothing to see",
        "the virus spreads",
    ]
    .iter()
    .enumerate()
    .map(|(i, t)| post_at(T0 + i as i64, t))
    .collect();
    // Posts 0, 1, 2 and 4 are the topic's.
    let topic = |p: &Post| p.id != format!("p{}", T0 + 3);
    let q = Query::parse("quorvex").expect("parses");
    let r = evaluate_feed(&q, &posts, topic);
    assert_eq!((r.matched, r.true_positives, r.topic_posts), (3, 3, 4));
    assert_eq!((r.precision, r.recall), (1.0, 0.75));
    let q = Query::parse("virus OR nothing").expect("parses");
    let r = evaluate_feed(&q, &posts, topic);
    assert_eq!((r.matched, r.true_positives, r.topic_posts), (3, 2, 4));
    let none = evaluate_feed(&q, &[], topic);
    assert_eq!((none.precision, none.recall), (0.0, 0.0));
}

#[test]
fn memory_stays_flat_on_a_long_stream_of_ever_new_words() {
    let cfg = EmergingConfig {
        sketch_width_log2: 12,
        candidates: 64,
        ..EmergingConfig::default()
    };
    let mut det = EmergingTopics::new(cfg);
    let mut text = String::new();
    let mut checkpoints = Vec::new();
    // 400k posts, 100 a minute (~2.8 days): every post has four words
    // never seen before, a common word, and a word from a slowly rotating
    // pool, so new topics keep emerging and fading.
    for i in 0..400_000u64 {
        text.clear();
        for j in 0..4 {
            text.push_str(&format!("w{:x}z{j} ", i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 20));
        }
        text.push_str(&format!(
            "common pool{}x{} #tag{}",
            (i / 3_000) % 50,
            i % 7,
            (i / 5_000) % 40
        ));
        observe(&mut det, T0 + (i as i64) * 600, &text);
        if i % 100_000 == 99_999 {
            checkpoints.push(det.memory_bytes());
        }
    }
    assert!(det.tracked() <= 64);
    let (first, last) = (checkpoints[0], checkpoints[checkpoints.len() - 1]);
    assert!(last <= first + first / 20, "memory grew: {checkpoints:?}");
    // The sketch dominates: 4 rows × 4096 cells × 16 bytes = 256 KiB.
    assert!(last < 600 * 1024, "{checkpoints:?}");
}

proptest! {
    #[test]
    fn never_panics_and_scores_stay_finite(
        posts in proptest::collection::vec(
            (any::<Option<i64>>(), "\\PC{0,60}"), 1..60),
        now in any::<i64>(),
    ) {
        let mut det = EmergingTopics::new(EmergingConfig {
            sketch_width_log2: 8,
            candidates: 8,
            min_count: 1.0,
            min_ratio: 1.0,
            min_score: 0.0,
            ..EmergingConfig::default()
        });
        for (t, text) in &posts {
            let mut p = post_at(0, text);
            p.created_at = t.map(Timestamp);
            let tokens = tokenized(text);
            det.observe(&p, &tokens);
            let words = tokens.iter().filter(|(_, t)| t.kind == crate::text::TokenKind::Word).map(|(w, _)| w);
            det.observe_terms(&p, words);
        }
        for topic in det.top(Timestamp(now), 5) {
            prop_assert!(topic.score.is_finite());
            for t in &topic.terms {
                prop_assert!(t.score.is_finite() && t.count.is_finite());
                // Words, not tags: `#e` is a hashtag even if `e` is a stop word.
                if matches!(t.kind, KeyKind::Term | KeyKind::Bigram) {
                    prop_assert!(!t.text.split(' ').any(stopwords::is_stop_word), "{}", t.text);
                }
            }
            if let Some(feed) = det.suggest_feed(&topic, Timestamp(now)) {
                prop_assert!(Query::parse(&feed.query).is_ok(), "{}", feed.query);
            }
        }
        prop_assert!(det.tracked() <= 8);
    }
}
