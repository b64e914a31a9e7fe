//! Evaluation of the emerging-topic detector (`tidewatch_core::emerging`)
//! on generated days, against the targets: each planted emerging
//! topic is in the top 10 within 15 minutes (event time) of its start, no
//! stop word is ever in the top 10, and each topic's suggested feed has
//! precision and recall ≥ 0.8 over the posts from the topic's start to its
//! end (ground truth: the truth file's post ids).
//!
//! The detector sees each post and its tokens only (entities extracted as
//! the enrichment stage would); labels and truth are read here alone. The
//! top 10 is taken at the end of every event-time minute. A planted topic
//! counts as found when a listed topic has one of its invented keys (the
//! name, its hashtag or its link domain). Two feeds are evaluated over the
//! whole planted span: the one suggested at that moment, and the one
//! suggested an hour later (the topic has more keys by then).
//!
//! `EMERGING_EVAL_SEEDS=1,2,3` and `EMERGING_EVAL_POSTS=1000000` change the
//! seeds (default 42) and the posts per run (default 1M over 3 days).
//! Run with `cargo test -p tidewatch-gen --test emerging_eval -- --nocapture`
//! to see the figures.

use std::collections::HashSet;
use std::time::{Duration, Instant};
use tidewatch_core::emerging::{evaluate_feed, EmergingConfig, EmergingTopics, KeyKind, SuggestedFeed, Topic, TopicId};
use tidewatch_core::query::Query;
use tidewatch_core::stopwords::is_stop_word;
use tidewatch_core::text::{tokenize, TokenizedText};
use tidewatch_core::{entities, Post, Timestamp};
use tidewatch_gen::{EventKind, GenConfig, Generator, PlantedEvent};

const POSTS: u64 = 1_000_000;
const DAYS: u32 = 3;
const TOP: usize = 10;
/// The bound on the delay from planted start to top 10.
const MAX_DELAY_MINUTES: f64 = 15.0;

fn posts() -> u64 {
    std::env::var("EMERGING_EVAL_POSTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(POSTS)
}

fn seeds() -> Vec<u64> {
    std::env::var("EMERGING_EVAL_SEEDS")
        .ok()
        .map(|v| v.split(',').filter_map(|s| s.trim().parse().ok()).collect::<Vec<u64>>())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| vec![42])
}

/// Minutes after the first detection at which a second feed is suggested
/// (the topic has more keys by then); if the topic is not listed at that
/// minute, the next minutes are tried, for as long again.
const LATER_MINUTES: i64 = 60;

/// A suggested feed and its running figures.
struct FeedRun {
    feed: SuggestedFeed,
    query: Query,
    /// Matched, true positives, topic posts.
    counts: (usize, usize, usize),
}

impl FeedRun {
    fn new(feed: SuggestedFeed) -> Option<FeedRun> {
        let query = Query::parse(&feed.query).ok()?;
        Some(FeedRun {
            feed,
            query,
            counts: (0, 0, 0),
        })
    }

    fn score(&mut self, post: &Post, topic: bool) {
        let q = evaluate_feed(&self.query, [post], |_| topic);
        self.counts.0 += q.matched;
        self.counts.1 += q.true_positives;
        self.counts.2 += q.topic_posts;
    }

    fn precision_recall(&self) -> (f64, f64) {
        let (matched, tp, total) = self.counts;
        let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        (ratio(tp, matched), ratio(tp, total))
    }
}

/// One planted emerging topic and what happened to it.
struct Planted {
    id: String,
    start: i64,
    end: i64,
    /// Its invented name, hashtag and domain.
    names: Vec<String>,
    post_ids: HashSet<String>,
    /// Minute-end time, rank and topic when first in the top 10.
    found: Option<(i64, usize, Topic)>,
    /// The whole top 10 at that moment, one line per topic.
    top_then: Vec<String>,
    /// The feed suggested on detection, then the one `LATER_MINUTES` later.
    feeds: Vec<FeedRun>,
    /// Whether no further feed will be suggested.
    feeds_done: bool,
    /// Posts of the planted span seen before the last feed existed.
    pending: Vec<Post>,
}

impl Planted {
    fn new(e: &PlantedEvent) -> Planted {
        let mut names: Vec<String> = e
            .terms
            .first()
            .and_then(|t| t.split(' ').next())
            .map(|w| vec![w.to_string()])
            .unwrap_or_default();
        names.extend(e.hashtags.iter().cloned());
        names.extend(e.domains.iter().cloned());
        Planted {
            id: format!("{} ({})", e.id, e.topic.as_deref().unwrap_or("?")),
            start: e.start.0,
            end: e.end.0,
            names,
            post_ids: e.post_ids.iter().cloned().collect(),
            found: None,
            top_then: Vec::new(),
            feeds: Vec::new(),
            feeds_done: false,
            pending: Vec::new(),
        }
    }

    /// Whether a listed topic is this one.
    fn is(&self, topic: &Topic) -> bool {
        topic.terms.iter().any(|t| {
            self.names.iter().any(|n| match t.kind {
                KeyKind::Bigram => t.text.split(' ').any(|w| w == n),
                _ => &t.text == n,
            })
        })
    }

    /// A post of the planted span: scored now, or kept until every feed
    /// exists.
    fn see(&mut self, post: &Post) {
        if self.feeds_done {
            let topic = self.post_ids.contains(&post.id);
            for f in &mut self.feeds {
                f.score(post, topic);
            }
        } else {
            self.pending.push(post.clone());
        }
    }

    /// No more feeds: scores what was kept.
    fn finish_feeds(&mut self) {
        self.feeds_done = true;
        for post in std::mem::take(&mut self.pending) {
            self.see(&post);
        }
    }
}

struct Outcome {
    planted: Vec<Planted>,
    /// Stop words seen in a top 10 (should stay empty).
    stop_words: Vec<String>,
    detector_time: Duration,
    posts: u64,
    /// Distinct topic ids ever listed in a top 10, and minutes with a
    /// non-empty top 10 (context for the ranks: what else emerges).
    listed: HashSet<TopicId>,
    busy_minutes: usize,
    max_memory: usize,
}

fn run(seed: u64) -> Outcome {
    let gen = Generator::new(&GenConfig {
        posts: posts(),
        days: DAYS,
        seed,
        ..GenConfig::default()
    });
    let truth = gen.truth();
    let mut planted: Vec<Planted> = truth
        .events
        .iter()
        .filter(|e| e.kind == EventKind::EmergingTopic)
        .map(Planted::new)
        .collect();
    let mut det = EmergingTopics::new(EmergingConfig::default());
    let mut tokens = TokenizedText::new();
    let mut spans = Vec::new();
    let mut stop_words = Vec::new();
    let mut listed = HashSet::new();
    let mut busy_minutes = 0;
    let mut detector_time = Duration::ZERO;
    let mut max_memory = 0;
    let mut minute: Option<i64> = None;
    let mut n = 0u64;
    for mut post in gen {
        let Some(t) = post.created_at else { continue };
        let m = t.0.div_euclid(Timestamp::MINUTE);
        if minute.is_some_and(|prev| prev != m) {
            let end = m * Timestamp::MINUTE;
            let top = det.top(Timestamp(end), TOP);
            check_stop_words(&top, &mut stop_words);
            listed.extend(top.iter().map(|t| t.id));
            busy_minutes += usize::from(!top.is_empty());
            for p in planted
                .iter_mut()
                .filter(|p| !p.feeds_done && end > p.start && end <= p.end)
            {
                match &p.found {
                    None => {
                        if let Some(rank) = top.iter().position(|topic| p.is(topic)) {
                            p.feeds
                                .extend(det.suggest_feed(&top[rank], Timestamp(end)).and_then(FeedRun::new));
                            p.found = Some((end, rank + 1, top[rank].clone()));
                            p.top_then = top.iter().map(describe).collect();
                        }
                    }
                    Some((at, _, _)) if end >= at + LATER_MINUTES * Timestamp::MINUTE => {
                        let all = det.top(Timestamp(end), usize::MAX);
                        if let Some(topic) = all.iter().find(|topic| p.is(topic)) {
                            p.feeds
                                .extend(det.suggest_feed(topic, Timestamp(end)).and_then(FeedRun::new));
                            p.finish_feeds();
                        } else if end >= at + 2 * LATER_MINUTES * Timestamp::MINUTE {
                            p.finish_feeds();
                        }
                    }
                    Some(_) => {}
                }
            }
            max_memory = max_memory.max(det.memory_bytes());
        }
        minute = Some(m);
        entities::scan_into(&post.text, &mut spans);
        post.entities = Some(entities::extract(&post.text, &spans));
        tokenize(&post.text, &mut tokens);
        let started = Instant::now();
        det.observe(&post, &tokens);
        detector_time += started.elapsed();
        n += 1;
        for p in planted.iter_mut().filter(|p| t.0 >= p.start && t.0 < p.end) {
            p.see(&post);
        }
    }
    for p in &mut planted {
        p.finish_feeds();
    }
    Outcome {
        planted,
        stop_words,
        detector_time,
        posts: n,
        listed,
        busy_minutes,
        max_memory,
    }
}

/// A topic in one line: score, post estimate and its first keys.
fn describe(topic: &Topic) -> String {
    let terms: Vec<String> = topic.terms.iter().take(5).map(|t| t.to_string()).collect();
    format!("{:7.1} {:5.1} posts  {}", topic.score, topic.posts, terms.join(", "))
}

/// Collects the words of listed terms and bigrams that are stop words. A
/// hashtag is a tag, not a word: `#ai` (a background topic's tag) is fine
/// even though Italian `ai` is a stop word.
fn check_stop_words(top: &[Topic], found: &mut Vec<String>) {
    for topic in top {
        for t in topic
            .terms
            .iter()
            .filter(|t| matches!(t.kind, KeyKind::Term | KeyKind::Bigram))
        {
            if t.text.split(' ').any(is_stop_word) {
                found.push(t.text.clone());
            }
        }
    }
}

#[test]
fn planted_topics_rise_fast_with_precise_feeds() {
    for seed in seeds() {
        evaluate(seed);
    }
}

fn evaluate(seed: u64) {
    let started = Instant::now();
    let out = run(seed);
    println!(
        "seed {seed}, {} posts, {DAYS} days: {} planted emerging topics; {} distinct topics listed, \
         top {TOP} non-empty in {} minutes; detector {:.2} s = {:.0} posts/s; memory ≤ {} KiB ({:.1} s in all)",
        out.posts,
        out.planted.len(),
        out.listed.len(),
        out.busy_minutes,
        out.detector_time.as_secs_f64(),
        out.posts as f64 / out.detector_time.as_secs_f64().max(1e-9),
        out.max_memory / 1024,
        started.elapsed().as_secs_f64()
    );
    let mut failures = Vec::new();
    for p in &out.planted {
        let Some((at, rank, topic)) = &p.found else {
            println!("{}: never in the top {TOP}", p.id);
            failures.push(format!("{} not found", p.id));
            continue;
        };
        let delay = (at - p.start) as f64 / Timestamp::MINUTE as f64;
        let terms: Vec<String> = topic.terms.iter().map(|t| format!("{t}")).collect();
        println!(
            "{}: rank {rank} after {delay:.0} min, topic {} [{}]",
            p.id,
            topic.id,
            terms.join(", ")
        );
        for (i, line) in p.top_then.iter().enumerate() {
            println!("  {:2}. {line}", i + 1);
        }
        if delay > MAX_DELAY_MINUTES {
            failures.push(format!("{} found after {delay} min", p.id));
        }
        if p.feeds.is_empty() {
            failures.push(format!("{}: no feed", p.id));
        }
        for (f, when) in p.feeds.iter().zip(["on detection", "an hour later"]) {
            let (precision, recall) = f.precision_recall();
            let (matched, tp, total) = f.counts;
            println!(
                "  feed {when}: `{}` (est. precision {:.2}): precision {precision:.3} recall {recall:.3} \
                 ({tp} of {total} posts, {matched} matched)",
                f.feed.query, f.feed.estimated_precision,
            );
            if precision < 0.8 || recall < 0.8 {
                failures.push(format!(
                    "{} feed {when}: precision {precision:.3} recall {recall:.3}",
                    p.id
                ));
            }
        }
    }
    assert!(!out.planted.is_empty(), "nothing planted");
    assert!(
        out.stop_words.is_empty(),
        "stop words in a top {TOP}: {:?}",
        out.stop_words
    );
    assert!(failures.is_empty(), "seed {seed}: {failures:?}");
}
