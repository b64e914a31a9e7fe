//! Fast-growing narratives in a run: a planted copy-paste burst in a quiet
//! generated background becomes one emerging topic of kind narrative, with
//! a feed that finds its posts, and one alert, not raised again after a
//! restart; a steady text and a popular post's reposts raise neither.

use super::*;
use crate::alerts::{current_alert_entries, AlertLog, NARRATIVE_GROWTH};
use crate::run::testing::matched;
use crate::topics::{current_topic_entries, TopicEntry, TopicKind, TopicWatch};
use tidewatch_core::emerging::{evaluate_feed, EmergingConfig};
use tidewatch_core::query::Query;
use tidewatch_core::text::TokenizedText;
use tidewatch_core::Post;
use tidewatch_gen::{GenConfig, Generator};
use tidewatch_store::db::CommitDelta;

const MIN: i64 = 60_000;
/// The invented message of the planted campaign (no real post).
const MESSAGE: &[&str] = &[
    "Officials",
    "quietly",
    "drained",
    "the",
    "Wendmoor",
    "reservoir",
    "overnight",
    "and",
    "nobody",
    "reported",
    "it",
    "#wendmoorwater",
];

fn post(id: String, author: String, t: i64, text: String, repost_of: Option<String>) -> Post {
    Post {
        id,
        platform: "bluesky".into(),
        created_at: Some(Timestamp(t)),
        author: Some(author),
        text,
        lang: Some("en".into()),
        repost_of,
        ..Default::default()
    }
}

/// A small deterministic generator for the copies' edits.
fn next(state: &mut u64) -> u64 {
    *state = state
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407);
    *state >> 33
}

/// `n` near-identical copies of the message from `n` accounts over
/// `spread` minutes from `start`: 40% exact, the rest with an emoji, a
/// word swapped for another, or extra exclamation marks.
fn campaign(start: i64, n: usize, spread: i64) -> Vec<Post> {
    let mut rng = 42;
    let swaps = ["silently", "emptied", "yesterday", "journalists"];
    (0..n)
        .map(|i| {
            let mut words: Vec<String> = MESSAGE.iter().map(|w| w.to_string()).collect();
            match next(&mut rng) % 5 {
                0 | 1 => {}
                2 => words.push("😡".into()),
                3 => {
                    let at = 1 + (next(&mut rng) as usize % (words.len() - 2));
                    words[at] = swaps[next(&mut rng) as usize % swaps.len()].into();
                }
                _ => {
                    if let Some(w) = words.iter_mut().rev().nth(1) {
                        w.push_str("!!");
                    }
                }
            }
            let t = start + (i as i64 * spread * MIN) / n as i64;
            post(
                format!("camp{i}"),
                format!("campaigner_{i}_example"),
                t,
                words.join(" "),
                None,
            )
        })
        .collect()
}

/// A quiet generated day (no planted events) with `extra` merged in by
/// time.
fn day_with(extra: Vec<Post>) -> Vec<Post> {
    let gen = Generator::new(&GenConfig {
        posts: 40_000,
        days: 1,
        seed: 3,
        planted: false,
        ..GenConfig::default()
    });
    let mut all: Vec<Post> = gen.collect();
    all.extend(extra);
    all.sort_by_key(|p| p.created_at.map_or(0, |t| t.0));
    all
}

/// What a run raised: new narrative topics and growth alerts, with the
/// event time each was raised at.
#[derive(Default)]
struct Raised {
    topics: Vec<(i64, TopicEntry)>,
    alerts: Vec<(i64, crate::alerts::AlertEntry)>,
}

/// Runs `posts` through the watches as a run's sink does, committing to
/// `db` every 2,000 posts and at the end.
fn run(posts: &[Post], db: &mut Db, seq: &mut u64) -> Raised {
    let mut narratives = NarrativeWatch::open(WatchConfig::default(), db).unwrap();
    let mut topics = TopicWatch::open(EmergingConfig::default(), db).unwrap();
    let mut log = AlertLog::open(db).unwrap();
    let mut tokens = TokenizedText::new();
    let mut raised = Raised::default();
    let mut commit = |db: &mut Db, topics: &mut TopicWatch, log: &mut AlertLog| {
        *seq += 1;
        let delta = CommitDelta {
            topics: topics.take_pending(),
            alerts: log.take_pending(),
            ..Default::default()
        };
        db.commit(*seq, &delta).unwrap();
    };
    for (i, p) in posts.iter().enumerate() {
        let m = matched(p.clone(), &mut tokens);
        let t = p.created_at.map_or(0, |t| t.0);
        narratives.post(&m);
        topics.post(&m);
        for n in narratives.take_grown() {
            if let Some(e) = topics.narrative(&n) {
                raised.topics.push((t, e));
            }
            if let Some(a) = log.record_narrative(&n, None) {
                raised.alerts.push((t, a));
            }
        }
        if i % 2_000 == 0 {
            commit(db, &mut topics, &mut log);
        }
    }
    narratives.finish();
    commit(db, &mut topics, &mut log);
    raised
}

#[test]
fn a_planted_burst_becomes_one_narrative_topic_with_a_precise_feed_and_one_alert() {
    let start = T0_DAY + 13 * 60 * MIN;
    let planted = campaign(start, 40, 12);
    let posts = day_with(planted.clone());
    let dir = tempfile::tempdir().unwrap();
    let mut db = Db::open(&dir.path().join("t.db")).unwrap();
    let mut seq = 0;
    let raised = run(&posts, &mut db, &mut seq);

    assert_eq!(raised.topics.len(), 1, "{:?}", raised.topics);
    assert_eq!(raised.alerts.len(), 1);
    let (at, topic) = &raised.topics[0];
    assert!(
        *at - start <= 15 * MIN,
        "raised {} min after the start",
        (*at - start) / MIN
    );
    assert_eq!(topic.kind, TopicKind::Narrative);
    let narrative = topic.narrative.as_ref().unwrap();
    assert_eq!(narrative.id, topic.record.id);
    assert!(
        narrative.representative.contains("Wendmoor"),
        "{}",
        narrative.representative
    );
    assert!(narrative.accounts >= 10);

    // The suggested feed, run over the whole day, finds the campaign.
    let feed = topic.record.suggested.as_ref().expect("a suggested feed");
    let query = Query::parse(&feed.query).expect("parses");
    let ids: std::collections::HashSet<&str> = planted.iter().map(|p| p.id.as_str()).collect();
    let q = evaluate_feed(&query, &posts, |p| ids.contains(p.id.as_str()));
    println!(
        "feed {}: {q:?} (est. precision {:.2})",
        feed.query, feed.estimated_precision
    );
    assert!(q.recall >= 0.8 && q.precision >= 0.8, "{}: {q:?}", feed.query);
    assert!(feed.estimated_precision >= 0.8, "{feed:?}");

    let (_, alert) = &raised.alerts[0];
    assert_eq!(alert.alert.kind, NARRATIVE_GROWTH);
    assert_eq!(alert.alert.near_duplicate_share, Some(1.0));
    let facts = alert.narrative.as_ref().unwrap();
    assert_eq!(facts.id, narrative.id);
    assert!(facts.growth >= 8.0 && facts.recent_10m >= 10, "{facts:?}");
    assert!(alert.summary().contains("Wendmoor"));
    assert!(!serde_json::to_string(alert).unwrap().contains("_example"));

    // Stored: the topic lists with its kind, the alert with its narrative,
    // and both still read as the older record types.
    let stored = current_topic_entries(&db, None).unwrap();
    assert_eq!(stored.iter().filter(|e| e.kind == TopicKind::Narrative).count(), 1);
    assert!(stored
        .iter()
        .filter(|e| e.kind == TopicKind::Terms)
        .all(|e| e.narrative.is_none()));
    let topic_ids: Vec<String> = crate::topics::current_topics(&db, None)
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert!(topic_ids.contains(&topic.record.id));
    let alerts = current_alert_entries(&db, None).unwrap();
    assert_eq!(alerts.len(), 1);
    assert_eq!(&alerts[0], alert);
    assert_eq!(crate::alerts::current_alerts(&db, None).unwrap()[0], alert.alert);

    // A restart from the same store replays the day: nothing new.
    let again = run(&posts, &mut db, &mut seq);
    assert!(again.topics.is_empty() && again.alerts.is_empty());
    assert_eq!(current_alert_entries(&db, None).unwrap().len(), 1);
}

/// Midnight of the generator's default start day.
const T0_DAY: i64 = 1_772_409_600_000;

#[test]
fn a_steady_text_and_a_popular_posts_reposts_raise_no_alert() {
    // The same text every 2 minutes all day, from 50 accounts in turn.
    let text = MESSAGE.join(" ");
    let steady: Vec<Post> = (0..720)
        .map(|i| {
            post(
                format!("steady{i}"),
                format!("regular_{}_example", i % 50),
                T0_DAY + i * 2 * MIN,
                text.clone(),
                None,
            )
        })
        .collect();
    // One post reposted by 300 accounts within ten minutes at noon.
    let noon = T0_DAY + 12 * 60 * MIN;
    let mut viral = vec![post(
        "popular".into(),
        "famous_example".into(),
        noon,
        "A remarkable photograph of the harbour lighthouse under the northern lights tonight".into(),
        None,
    )];
    viral.extend((0..300).map(|i| {
        post(
            format!("rp{i}"),
            format!("fan_{i}_example"),
            noon + MIN + i * 2_000,
            String::new(),
            Some("popular".into()),
        )
    }));
    let mut posts = steady;
    posts.extend(viral);
    posts.sort_by_key(|p| p.created_at.map_or(0, |t| t.0));

    let dir = tempfile::tempdir().unwrap();
    let mut db = Db::open(&dir.path().join("t.db")).unwrap();
    let raised = run(&posts, &mut db, &mut 0);
    assert!(raised.topics.is_empty(), "{:?}", raised.topics);
    assert!(raised.alerts.is_empty());

    // Both are narratives all the same (the steady one reported by size).
    let mut watch = NarrativeWatch::new(WatchConfig::default()).unwrap();
    let mut tokens = TokenizedText::new();
    let mut reported = Vec::new();
    for p in &posts {
        reported.extend(watch.post(&matched(p.clone(), &mut tokens)));
    }
    assert_eq!(reported.len(), 1, "{reported:?}");
    assert!(reported[0].growth < 8.0);
    assert!(watch.take_grown().is_empty());
}
