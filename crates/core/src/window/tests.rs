//! Tests of the event-time windows: hand-checked aggregates, lateness,
//! closing order, roll-ups, determinism and bounded state.

use super::*;
use proptest::prelude::*;

const T0: i64 = 1_400_000_040_000; // 2014-05-13T16:54:00Z, a minute boundary
const MIN: i64 = Timestamp::MINUTE;

/// An owned post for tests (WindowInput borrows).
#[derive(Clone, Debug)]
struct P {
    at: Option<i64>,
    compound: f64,
    lang: Option<String>,
    hashtags: Vec<String>,
    domains: Vec<String>,
    terms: Vec<String>,
    feeds: Vec<u32>,
}

fn p(at: i64, compound: f64, lang: &str, tags: &[&str], terms: &[&str], feeds: &[u32]) -> P {
    P {
        at: Some(at),
        compound,
        lang: (!lang.is_empty()).then(|| lang.to_string()),
        hashtags: tags.iter().map(|s| s.to_string()).collect(),
        domains: Vec::new(),
        terms: terms.iter().map(|s| s.to_string()).collect(),
        feeds: feeds.to_vec(),
    }
}

fn feed_in(w: &mut FeedWindows, posts: &[P], out: &mut Vec<ClosedWindow>) {
    for post in posts {
        let terms: Vec<&str> = post.terms.iter().map(String::as_str).collect();
        let input = WindowInput {
            created_at: post.at.map(Timestamp),
            compound: post.compound,
            lang: post.lang.as_deref(),
            hashtags: &post.hashtags,
            domains: &post.domains,
            terms: &terms,
        };
        w.observe(&input, &post.feeds, out);
    }
}

fn run(posts: &[P]) -> Vec<ClosedWindow> {
    let mut w = FeedWindows::default();
    let mut out = Vec::new();
    feed_in(&mut w, posts, &mut out);
    w.flush(&mut out);
    out
}

fn ranked(pairs: &[(&str, u64)]) -> Vec<Ranked> {
    pairs
        .iter()
        .map(|(k, c)| Ranked {
            key: k.to_string(),
            count: *c,
        })
        .collect()
}

#[test]
fn hand_checked_minute() {
    let posts = vec![
        p(T0 + 1_000, 0.5, "en", &["flood"], &["river", "rising"], &[0, 2]),
        p(T0 + 2_000, -0.6, "en", &["flood", "help"], &["river"], &[0]),
        p(T0 + 3_000, 0.0, "de", &[], &["pegel", "river", "river"], &[0]),
        p(T0 + 59_999, 0.05, "", &["Help"], &[], &[0]),
    ];
    let out = run(&posts);
    let minutes: Vec<_> = out.iter().filter(|w| w.resolution == Resolution::Minute).collect();
    assert_eq!(minutes.len(), 2);
    let row = minutes[0].row(10);
    assert_eq!(row.feed, 0);
    assert_eq!(row.start, Timestamp(T0));
    assert_eq!(row.count, 4);
    // (0.5 - 0.6 + 0 + 0.05) / 4
    assert!((row.mean_compound - (-0.0125)).abs() < 1e-12);
    assert_eq!(row.share_pos, 0.5); // 0.5 and 0.05 (threshold inclusive)
    assert_eq!(row.share_neg, 0.25);
    assert_eq!(row.langs, ranked(&[("en", 2), ("de", 1), ("und", 1)]));
    // Keys are counted as given (case folding is the enricher's job).
    assert_eq!(row.top_hashtags, ranked(&[("flood", 2), ("Help", 1), ("help", 1)]));
    // "river" twice in one post counts once.
    assert_eq!(row.top_terms, ranked(&[("river", 3), ("pegel", 1), ("rising", 1)]));
    assert_eq!(row.top_domains, vec![]);

    let other = minutes[1].row(1);
    assert_eq!((other.feed, other.count), (2, 1));
    // Tie at count 1: key order decides.
    assert_eq!(other.top_terms, ranked(&[("rising", 1)]));
    assert_eq!(
        other.to_csv_row(),
        "2,minute,2014-05-13T16:54:00Z,1,0.5000,1.0000,0.0000,en:1,flood:1,rising:1,"
    );
}

#[test]
fn lent_view_matches_owned_window() {
    let posts = stream(3, 2_000);
    let mut w = FeedWindows::new(WindowConfig {
        sketch_capacity: 6,
        ..WindowConfig::default()
    });
    let mut checked = 0;
    let mut sink = SinkFn(|v: &WindowView<'_>| {
        let owned = v.to_closed();
        assert_eq!(v.row(4), owned.row(4));
        assert_eq!(v.end(), owned.end());
        // And back: a view of the owned window is the view it came from.
        owned.with_view(|again| {
            assert_eq!(again.row(64), v.row(64));
            assert_eq!(again.to_closed(), owned);
            assert_eq!((again.feed(), again.resolution()), (v.feed(), v.resolution()));
        });
        checked += 1;
    });
    for post in &posts {
        let terms: Vec<&str> = post.terms.iter().map(String::as_str).collect();
        let input = WindowInput {
            created_at: post.at.map(Timestamp),
            compound: post.compound,
            lang: post.lang.as_deref(),
            hashtags: &post.hashtags,
            domains: &post.domains,
            terms: &terms,
        };
        w.observe(&input, &post.feeds, &mut sink);
    }
    w.flush(&mut sink);
    assert!(checked > 100);
}

#[test]
fn input_from_an_enriched_post() {
    let post = Post {
        created_at: Some(Timestamp(T0)),
        lang: Some("fr".into()),
        sentiment: Some(crate::post::Sentiment {
            compound: -0.4,
            ..Default::default()
        }),
        entities: Some(crate::post::Entities {
            hashtags: vec!["orage".into()],
            domains: vec!["meteo.example".into()],
            ..Default::default()
        }),
        ..Default::default()
    };
    let terms = ["pluie"];
    let mut w = FeedWindows::default();
    let mut out = Vec::new();
    w.observe(&WindowInput::from_post(&post, &terms), &[0], &mut out);
    w.flush(&mut out);
    let row = out[0].row(3);
    assert_eq!((row.count, row.share_neg), (1, 1.0));
    assert_eq!(row.langs, ranked(&[("fr", 1)]));
    assert_eq!(row.top_hashtags, ranked(&[("orage", 1)]));
    assert_eq!(row.top_domains, ranked(&[("meteo.example", 1)]));
    assert_eq!(row.top_terms, ranked(&[("pluie", 1)]));
}

#[test]
fn csv_quotes_awkward_keys() {
    let out = run(&[p(T0, 0.0, "en", &["a,b", "say \"hi\""], &[], &[7])]);
    assert_eq!(
        out[0].row(5).to_csv_row(),
        "7,minute,2014-05-13T16:54:00Z,1,0.0000,0.0000,0.0000,en:1,\
         \"a,b:1|say \"\"hi\"\":1\",,"
    );
    assert_eq!(WindowRow::CSV_HEADER.split(',').count(), 11);
}

#[test]
fn watermark_closes_in_time_order() {
    let mut w = FeedWindows::default();
    let mut out = Vec::new();
    feed_in(
        &mut w,
        &[
            p(T0, 0.0, "en", &[], &[], &[3]),
            p(T0 + 10_000, 0.0, "en", &[], &[], &[1]),
            p(T0 + MIN, 0.0, "en", &[], &[], &[1]),
            // Watermark = T0 + 6 min - 5 min = T0 + 1 min: minute T0 closes.
            p(T0 + 6 * MIN, 0.0, "en", &[], &[], &[]),
        ],
        &mut out,
    );
    let seen: Vec<(u32, i64)> = out.iter().map(|c| (c.feed, c.start.0 - T0)).collect();
    assert_eq!(seen, vec![(1, 0), (3, 0)]);
    assert_eq!(w.watermark(), Some(Timestamp(T0 + MIN)));
    // Minute T0+1 is still open: a post for it is not late.
    feed_in(&mut w, &[p(T0 + MIN + 5, 0.0, "en", &[], &[], &[1])], &mut out);
    assert_eq!(w.metrics().late, 0);
    out.clear();
    w.flush(&mut out);
    let seen: Vec<(Resolution, u32, i64, u64)> = out
        .iter()
        .map(|c| (c.resolution, c.feed, c.start.0, c.stats.count))
        .collect();
    let hour = T0.div_euclid(Timestamp::HOUR) * Timestamp::HOUR;
    let day = T0.div_euclid(Timestamp::DAY) * Timestamp::DAY;
    assert_eq!(
        seen,
        vec![
            (Resolution::Minute, 1, T0 + MIN, 2),
            (Resolution::Hour, 1, hour, 3),
            (Resolution::Hour, 3, hour, 1),
            (Resolution::Day, 1, day, 3),
            (Resolution::Day, 3, day, 1),
        ]
    );
}

#[test]
fn late_and_undated_posts_are_counted() {
    let mut w = FeedWindows::default();
    let mut out = Vec::new();
    let mut undated = p(0, 0.9, "en", &["x"], &[], &[4]);
    undated.at = None;
    feed_in(
        &mut w,
        &[
            p(T0, 0.0, "en", &[], &[], &[4]),
            p(T0 + 10 * MIN, 0.0, "en", &[], &[], &[]),
            // Minute T0 closed when the watermark reached T0 + 5 min.
            p(T0 + 30_000, 0.0, "en", &[], &[], &[4, 5]),
            p(T0 + 30_000, 0.0, "en", &[], &[], &[]),
            undated,
        ],
        &mut out,
    );
    let m = w.metrics();
    assert_eq!((m.posts, m.late, m.undated), (5, 2, 1));
    assert_eq!(w.feed_metrics(4), FeedMetrics { late: 1, undated: 1 });
    assert_eq!(w.feed_metrics(5), FeedMetrics { late: 1, undated: 0 });
    assert_eq!(w.feed_metrics(99), FeedMetrics::default());
    // The closed window was emitted once, with the on-time post only.
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].stats.count, 1);
    w.flush(&mut out);
    // After the flush everything is late.
    feed_in(&mut w, &[p(T0 + 20 * MIN, 0.0, "en", &[], &[], &[4])], &mut out);
    assert_eq!(w.metrics().late, 3);
}

#[test]
fn open_state_is_bounded_and_sparse() {
    let mut w = FeedWindows::default();
    let mut out = Vec::new();
    let mut posts = Vec::new();
    for i in 0..3_000i64 {
        // Ten posts a minute over 300 minutes, each matching 2 of 50 feeds,
        // with a little disorder.
        let jitter = (i * 7919) % 90_000;
        let feeds = [(i % 50) as u32, ((i * 13) % 50) as u32];
        posts.push(p(T0 + i * 6_000 + jitter, 0.1, "en", &[], &["w"], &feeds));
    }
    for chunk in posts.chunks(100) {
        feed_in(&mut w, chunk, &mut out);
        // lateness 5 min → at most 5 + 2 open minutes per feed, 50 feeds.
        assert!(w.metrics().open_minutes <= 50 * 7);
    }
    assert_eq!(w.metrics().late, 0);
}

/// A deterministic pseudo-random stream: disorder, undated posts, a
/// vocabulary large enough to overflow the sketches, sparse feeds.
fn stream(seed: u64, n: usize) -> Vec<P> {
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut t = T0;
    (0..n)
        .map(|_| {
            t += (next() % 20_000) as i64;
            let skew = (next() % 400_000) as i64; // up to 6.7 min behind
            let r = next();
            let nfeeds = r % 4;
            let mut feeds: Vec<u32> = (0..nfeeds).map(|k| ((r >> (8 * k + 8)) % 6) as u32).collect();
            // The matcher reports each feed once.
            feeds.sort_unstable();
            feeds.dedup();
            let words: Vec<String> = (0..(next() % 6)).map(|_| format!("w{}", next() % 200)).collect();
            P {
                at: (r % 37 != 0).then_some(t - skew),
                compound: ((next() % 2001) as f64 - 1000.0) / 1000.0,
                lang: ["en", "de", "ja", ""][(next() % 4) as usize].to_string().into(),
                hashtags: vec![format!("h{}", next() % 90)],
                domains: (next() % 3 == 0)
                    .then(|| format!("d{}.example", next() % 5))
                    .into_iter()
                    .collect(),
                terms: words,
                feeds,
            }
        })
        .collect()
}

fn json(out: &[ClosedWindow]) -> String {
    serde_json::to_string(out).unwrap()
}

#[test]
fn rollups_equal_sum_of_minutes() {
    let mut w = FeedWindows::new(WindowConfig {
        // Small sketches force overflow and merge reductions.
        sketch_capacity: 8,
        ..WindowConfig::default()
    });
    let mut out = Vec::new();
    feed_in(&mut w, &stream(7, 4_000), &mut out);
    w.flush(&mut out);
    let mut hours = 0;
    for parent in out.iter().filter(|c| c.resolution != Resolution::Minute) {
        let child_res = match parent.resolution {
            Resolution::Day => Resolution::Hour,
            _ => Resolution::Minute,
        };
        let mut sum: Option<WindowStats> = None;
        for c in out.iter().filter(|c| {
            c.feed == parent.feed && c.resolution == child_res && c.start >= parent.start && c.end() <= parent.end()
        }) {
            match &mut sum {
                None => sum = Some(c.stats.clone()),
                Some(s) => s.merge(&c.stats),
            }
        }
        assert_eq!(sum.as_ref(), Some(&parent.stats));
        hours += 1;
    }
    assert!(hours > 20, "the stream spans several hours and days");
}

#[test]
fn string_collection_does_not_change_output() {
    let posts = stream(11, 3_000);
    let mut plain = FeedWindows::default();
    let mut a = Vec::new();
    feed_in(&mut plain, &posts, &mut a);
    plain.flush(&mut a);

    let mut gc = FeedWindows::default();
    let mut b = Vec::new();
    for post in &posts {
        // Collect at every closing, renumbering ids all the time.
        gc.gc_threshold = 1;
        feed_in(&mut gc, std::slice::from_ref(post), &mut b);
    }
    gc.flush(&mut b);
    assert!(gc.collections > 100, "{}", gc.collections);
    assert_eq!(plain.collections, 0);
    assert_eq!(json(&a), json(&b));
}

/// A minute with many posts is sampled for its key sketches, yet counts,
/// sentiment and languages stay exact, the heavy hitter is found with an
/// estimate near its true count, and sketch totals estimate the number of
/// key occurrences.
#[test]
fn dense_window_sampling_keeps_heavy_hitters() {
    let n = 6_000i64;
    let posts: Vec<P> = (0..n)
        .map(|i| {
            // "flood" in 30% of posts, the rest spread over 400 terms.
            let mut terms = vec![format!("w{}", (i * 7_919) % 400)];
            if i % 10 < 3 {
                terms.push("flood".to_string());
            }
            let terms: Vec<&str> = terms.iter().map(String::as_str).collect();
            let lang = if i % 4 == 0 { "de" } else { "en" };
            p(T0 + i * 59_000 / n, 0.5, lang, &[], &terms, &[3])
        })
        .collect();
    let minutes: Vec<ClosedWindow> = run(&posts)
        .into_iter()
        .filter(|c| c.resolution == Resolution::Minute)
        .collect();
    assert_eq!(minutes.len(), 1);
    let row = minutes[0].row(2);
    assert_eq!(row.count, 6_000);
    assert_eq!(row.share_pos, 1.0);
    assert_eq!(row.langs, ranked(&[("en", 4_500), ("de", 1_500)]));
    assert_eq!(row.top_terms[0].key, "flood");
    let est = row.top_terms[0].count as f64;
    // The relative standard error here is about 28% (see the module docs).
    assert!((est - 1_800.0).abs() < 0.75 * 1_800.0, "estimate {est}");
    // Far fewer updates than posts reached the sketch, but their weights
    // add up to about the 7,800 term occurrences.
    let total = minutes[0].stats.terms.total() as f64;
    assert!((total - 7_800.0).abs() < 0.5 * 7_800.0, "total {total}");
}

/// With `exact_sketch_posts` at its maximum nothing is sampled: a Zipf-free
/// stream under capacity gives exact key counts.
#[test]
fn exact_mode_counts_every_post() {
    let posts: Vec<P> = (0..500i64)
        .map(|i| {
            let t = format!("w{}", i % 5);
            p(T0 + i * 100, 0.0, "en", &[], &[t.as_str()], &[0])
        })
        .collect();
    let mut w = FeedWindows::new(WindowConfig {
        exact_sketch_posts: usize::MAX,
        ..WindowConfig::default()
    });
    let mut out = Vec::new();
    feed_in(&mut w, &posts, &mut out);
    w.flush(&mut out);
    let row = out[0].row(5);
    let expected: Vec<(&str, u64)> = (0..5).map(|k| (["w0", "w1", "w2", "w3", "w4"][k], 100)).collect();
    assert_eq!(row.top_terms, ranked(&expected));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Sampling depends only on the posts, never on how they were chunked:
    /// a tiny exact prefix makes nearly every window sample.
    #[test]
    fn sampled_chunked_equals_one_shot(seed in any::<u64>(), n in 0usize..1_500, cut in 1usize..300) {
        let cfg = WindowConfig { exact_sketch_posts: 1, ..WindowConfig::default() };
        let mut posts = stream(seed, n);
        // Squeeze the stream into few minutes so windows hold many posts.
        for p in &mut posts {
            p.at = p.at.map(|t| T0 + (t - T0) / 40);
        }
        let mut one = Vec::new();
        let mut w = FeedWindows::new(cfg.clone());
        feed_in(&mut w, &posts, &mut one);
        w.flush(&mut one);

        let mut chunked = Vec::new();
        let mut w = FeedWindows::new(cfg);
        for part in posts.chunks(cut) {
            feed_in(&mut w, part, &mut chunked);
        }
        w.flush(&mut chunked);
        prop_assert_eq!(json(&one), json(&chunked));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Replaying in one go, or in arbitrary chunks with output collected
    /// between calls, gives the same series.
    #[test]
    fn chunked_equals_one_shot(seed in any::<u64>(), n in 0usize..1_500, cuts in proptest::collection::vec(1usize..200, 1..20)) {
        let posts = stream(seed, n);
        let one = run(&posts);

        let mut w = FeedWindows::default();
        let mut out = Vec::new();
        let mut rest = &posts[..];
        let mut i = 0;
        while !rest.is_empty() {
            let k = cuts[i % cuts.len()].min(rest.len());
            let mut part = Vec::new();
            feed_in(&mut w, &rest[..k], &mut part);
            out.extend(part);
            rest = &rest[k..];
            i += 1;
        }
        w.flush(&mut out);
        prop_assert_eq!(json(&one), json(&out));
    }

    /// Every matched dated post lands in exactly one minute window or in
    /// the late metric; windows come out in end order.
    #[test]
    fn conservation_and_order(seed in any::<u64>(), n in 0usize..1_500) {
        let posts = stream(seed, n);
        let mut w = FeedWindows::default();
        let mut out = Vec::new();
        feed_in(&mut w, &posts, &mut out);
        w.flush(&mut out);
        for f in 0..6u32 {
            let matched = posts.iter().filter(|p| p.at.is_some() && p.feeds.contains(&f)).count() as u64;
            let windowed: u64 = out.iter()
                .filter(|c| c.feed == f && c.resolution == Resolution::Minute)
                .map(|c| c.stats.count)
                .sum();
            prop_assert_eq!(windowed + w.feed_metrics(f).late, matched);
        }
        for pair in out.windows(2) {
            let a = (pair[0].end(), pair[0].resolution, pair[0].feed);
            let b = (pair[1].end(), pair[1].resolution, pair[1].feed);
            prop_assert!(a < b, "{:?} before {:?}", a, b);
        }
    }

    #[test]
    fn never_panics_on_extreme_times(ts in proptest::collection::vec(any::<i64>(), 0..50), c in any::<f64>()) {
        let mut w = FeedWindows::default();
        let mut out = Vec::new();
        for t in ts {
            let input = WindowInput {
                created_at: Some(Timestamp(t)),
                compound: c,
                lang: None,
                hashtags: &[],
                domains: &[],
                terms: &["x"],
            };
            w.observe(&input, &[0, 1], &mut out);
        }
        w.flush(&mut out);
        for c in &out {
            prop_assert!(c.stats.mean_compound().abs() <= 1.0);
        }
    }
}
