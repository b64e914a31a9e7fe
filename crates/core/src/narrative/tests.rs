//! Hand-checked behaviour of the clusterer, and stream properties.

use super::*;
use crate::text::tokenize;
use crate::time::Timestamp;
use proptest::prelude::*;

const MIN: i64 = 60_000;
const T0: i64 = 1_772_409_600_000;

fn post(id: &str, author: &str, t: i64, text: &str) -> Post {
    Post {
        id: id.into(),
        platform: "twitter".into(),
        created_at: Some(Timestamp(t)),
        author: Some(author.into()),
        text: text.into(),
        lang: Some("en".into()),
        ..Default::default()
    }
}

fn repost(id: &str, author: &str, t: i64, of: &str, text: &str) -> Post {
    Post {
        repost_of: Some(of.into()),
        ..post(id, author, t, text)
    }
}

/// Observes with the post's own text as the representative.
fn obs(n: &mut Narratives, p: &Post) -> Option<NarrativeUpdate> {
    let mut tokens = TokenizedText::new();
    tokenize(&p.text, &mut tokens);
    n.observe(p, &tokens, &[], || p.text.clone())
}

fn narratives() -> Narratives {
    Narratives::new(NarrativeConfig::default()).expect("default config is valid")
}

const MESSAGE: &str =
    "Waitlist rent prices in the old town doubled again this year, tell the council #rentstrike #fairhomes";

#[test]
fn near_identical_texts_land_together_and_unrelated_ones_do_not() {
    let mut n = narratives();
    let first = obs(&mut n, &post("p1", "alice_example", T0, MESSAGE)).expect("long enough");
    assert!(first.is_new);
    // MESSAGE has 15 distinct units; one substituted unit leaves Jaccard
    // 14/16 = 0.875 with it.
    let variants = [
        // an emoji
        "Waitlist rent prices in the old town doubled again this year, tell the council #rentstrike #fairhomes 😡",
        // a swapped word and case
        "WAITLIST rent prices in the old city doubled again this year, tell the council #rentstrike #fairhomes",
        // a mention in front
        "@bob_example Waitlist rent prices in the old town doubled again this year, tell the council #rentstrike #fairhomes",
        // the swapped word again
        "Waitlist rent prices in the old city doubled again this year, tell the council #rentstrike #fairhomes",
    ];
    for (i, v) in variants.iter().enumerate() {
        let u = obs(&mut n, &post(&format!("v{i}"), "bob_example", T0 + MIN, v)).expect("long enough");
        assert_eq!(u.narrative, first.narrative, "variant {i}: {v}");
        assert!(!u.is_new);
    }
    // Another trailing hashtag: 0.875 with MESSAGE but 13/17 = 0.76 with
    // the two "city" copies (2 of the 5 members, above the 5% tolerance),
    // so it is not a near-duplicate of the whole narrative.
    let other_tag =
        "Waitlist rent prices in the old town doubled again this year, tell the council!! #rentstrike #housingnow";
    let got = obs(&mut n, &post("t1", "carol_example", T0 + MIN, other_tag)).expect("long enough");
    assert!(got.is_new);
    let unrelated = [
        "The new metro line opens on Monday with free rides for the whole first week",
        "Rent prices are a problem everywhere, but the council has a plan for new homes this year",
    ];
    for (i, u) in unrelated.iter().enumerate() {
        let got = obs(&mut n, &post(&format!("u{i}"), "carol_example", T0 + 2 * MIN, u)).expect("long enough");
        assert!(got.is_new, "unrelated {i} joined");
        assert_ne!(got.narrative, first.narrative);
    }
    let summary = n.get(first.narrative).expect("alive");
    assert_eq!(summary.size, 5);
    assert_eq!(summary.distinct_accounts, 2);
    assert!(summary.accounts_exact);
    assert_eq!(summary.languages, vec![("en".to_string(), 5)]);
    assert_eq!(summary.first_seen, Timestamp(T0));
    assert_eq!(summary.last_seen, Timestamp(T0 + MIN));
    // The representative is the text of the post that made it two.
    assert_eq!(summary.representative, variants[0]);
    assert_eq!(n.stats().joined_by_text, 4);
}

#[test]
fn a_repost_joins_its_original_and_unknown_originals_gather_their_reposts() {
    let mut n = narratives();
    let orig = obs(&mut n, &post("o1", "alice_example", T0, MESSAGE)).expect("long enough");
    let rt = obs(
        &mut n,
        &repost(
            "r1",
            "bob_example",
            T0 + MIN,
            "o1",
            &format!("RT @alice_example: {MESSAGE}"),
        ),
    )
    .expect("reposts always count");
    assert_eq!(rt.narrative, orig.narrative);
    assert!(rt.by_repost && !rt.is_new);
    // A bluesky-style repost without text joins just as well.
    let bare = obs(&mut n, &repost("r2", "carol_example", T0 + MIN, "o1", "")).expect("reposts always count");
    assert_eq!(bare.narrative, orig.narrative);
    assert_eq!(n.get(orig.narrative).map(|s| (s.size, s.reposts)), Some((3, 2)));

    // Reposts of a post never seen meet in the narrative keyed by its id.
    let a = obs(&mut n, &repost("r3", "dan_example", T0, "unseen", "")).expect("repost");
    let b = obs(&mut n, &repost("r4", "erin_example", T0 + 1, "unseen", "")).expect("repost");
    assert!(a.is_new && !b.is_new);
    assert_eq!(a.narrative, b.narrative);
    assert_ne!(a.narrative, orig.narrative);
    assert_eq!(b.size, 2);
}

#[test]
fn activity_at_the_last_post_does_not_move_with_later_posts() {
    let mut n = narratives();
    // Three copies a minute apart, then an unrelated post two hours on.
    for i in 0..3 {
        obs(&mut n, &post(&format!("c{i}"), &format!("a{i}"), T0 + i * MIN, MESSAGE));
    }
    let id = NarrativeId(
        obs(&mut n, &post("c3", "a3", T0 + 3 * MIN, MESSAGE))
            .unwrap()
            .narrative
            .0,
    );
    let before = n.get(id).unwrap();
    assert_eq!((before.recent_10m, before.previous_60m), (4, 0));
    obs(
        &mut n,
        &post(
            "x",
            "b",
            T0 + 120 * MIN,
            "Ferry timetable changes for the island routes start next week",
        ),
    );
    // As of the newest post, the narrative has gone quiet; as of its own
    // last post it has not, whenever it is asked.
    let now = n.get(id).unwrap();
    assert_eq!((now.recent_10m, now.previous_60m), (0, 0));
    let at_last = n.get_at_last_post(id).unwrap();
    assert_eq!((at_last.recent_10m, at_last.previous_60m), (4, 0));
    assert_eq!(at_last.growth, before.growth);
    assert_eq!(at_last.last_seen, before.last_seen);
}

#[test]
fn short_texts_are_not_clustered_by_text() {
    let mut n = narratives();
    assert_eq!(obs(&mut n, &post("s1", "alice_example", T0, "good morning all")), None);
    assert_eq!(obs(&mut n, &post("s2", "bob_example", T0, "good morning all")), None);
    assert_eq!(n.stats().too_short, 2);
    assert_eq!(n.stats().narratives, 0);
}

#[test]
fn expiry_drops_narratives_older_than_the_window() {
    let mut n = narratives();
    let old = obs(&mut n, &post("p1", "alice_example", T0, MESSAGE)).expect("long enough");
    obs(&mut n, &post("p2", "bob_example", T0 + MIN, MESSAGE));
    assert!(n.get(old.narrative).is_some());
    // 23 h later it is still alive; after 24 h without posts it is gone.
    n.expire(Timestamp(T0 + 23 * 60 * MIN));
    assert!(n.get(old.narrative).is_some());
    n.expire(Timestamp(T0 + MIN + 24 * 60 * MIN + 1));
    assert_eq!(n.get(old.narrative), None);
    let s = n.stats();
    assert_eq!((s.narratives, s.buckets, s.originals), (0, 0, 0));
    assert_eq!(s.expired_narratives, 1);
    // The same text later founds a new narrative (its own id).
    let again = obs(&mut n, &post("p3", "carol_example", T0 + 25 * 60 * MIN, MESSAGE)).expect("long enough");
    assert!(again.is_new);
    assert_ne!(again.narrative, old.narrative);
    // A repost of the expired original founds one keyed by that original.
    let rt = obs(&mut n, &repost("r1", "dan_example", T0 + 25 * 60 * MIN, "p1", "")).expect("repost");
    assert!(rt.is_new);
}

#[test]
fn a_narrative_refreshed_within_the_window_survives() {
    let mut n = narratives();
    let first = obs(&mut n, &post("p1", "alice_example", T0, MESSAGE)).expect("long enough");
    for h in 1..=40 {
        let u = obs(
            &mut n,
            &post(&format!("p{h}x"), "bob_example", T0 + h * 60 * MIN, MESSAGE),
        )
        .expect("long enough");
        assert_eq!(u.narrative, first.narrative, "hour {h}");
    }
    assert_eq!(n.get(first.narrative).map(|s| s.size), Some(41));
}

#[test]
fn top_ranks_by_size_and_by_growth_and_skips_single_posts() {
    let mut n = narratives();
    // A steady narrative: one post every 5 minutes for two hours (25 posts).
    for k in 0..25 {
        obs(
            &mut n,
            &post(&format!("s{k}"), &format!("acct{k}"), T0 + k * 5 * MIN, MESSAGE),
        );
    }
    // A burst: 8 posts in the last 5 minutes.
    let burst = "The river bridge on the north road is closed after the storm, avoid the whole area tonight";
    for k in 0..8 {
        obs(
            &mut n,
            &post(
                &format!("b{k}"),
                &format!("acct{k}"),
                T0 + 120 * MIN + k * 30_000,
                burst,
            ),
        );
    }
    obs(
        &mut n,
        &post(
            "lone",
            "acct0",
            T0 + 121 * MIN,
            "A single unrelated post about gardening tomatoes in spring",
        ),
    );
    let by_size = n.top(5, Rank::Size);
    assert_eq!(by_size.iter().map(|s| s.size).collect::<Vec<_>>(), vec![25, 8]);
    let by_growth = n.top(5, Rank::Growth);
    assert_eq!(by_growth.iter().map(|s| s.size).collect::<Vec<_>>(), vec![8, 25]);
    let b = &by_growth[0];
    assert_eq!((b.recent_10m, b.previous_60m), (8, 0));
    assert!((b.growth - 9.0).abs() < 1e-9);
    assert_eq!(n.top(1, Rank::Size).len(), 1);
}

#[test]
fn summaries_never_hold_account_pseudonyms() {
    let mut n = narratives();
    // 200 accounts: past the exact count of 128, so estimated.
    for k in 0..200 {
        obs(
            &mut n,
            &post(
                &format!("p{k}"),
                &format!("u1_secretpseudonym{k:03}"),
                T0 + k * 1000,
                MESSAGE,
            ),
        );
    }
    let top = n.top(10, Rank::Size);
    assert_eq!(top.len(), 1);
    assert_eq!(top[0].size, 200);
    assert!(!top[0].accounts_exact);
    assert!(
        (160..=240).contains(&top[0].distinct_accounts),
        "{}",
        top[0].distinct_accounts
    );
    let json = serde_json::to_string(&top).expect("serialises");
    assert!(!json.contains("secretpseudonym"), "{json}");
    assert!(!json.contains("u1_"), "{json}");
}

#[test]
fn link_domains_are_tallied_from_entities() {
    let mut n = narratives();
    let text = "Read the full report on the flood damage before the vote tomorrow https://news.example/a?utm_source=x";
    for k in 0..3 {
        let mut p = post(&format!("p{k}"), "alice_example", T0 + k, text);
        p.entities = Some(crate::post::Entities {
            domains: vec!["news.example".into()],
            ..Default::default()
        });
        obs(&mut n, &p);
    }
    let top = n.top(1, Rank::Size);
    assert_eq!(top[0].domains, vec![("news.example".to_string(), 3)]);
}

#[test]
fn invalid_configs_are_rejected() {
    let bad = |f: fn(&mut NarrativeConfig)| {
        let mut c = NarrativeConfig::default();
        f(&mut c);
        Narratives::new(c).err()
    };
    assert_eq!(bad(|c| c.bands = 10), Some(ConfigError::Bands(10)));
    assert_eq!(bad(|c| c.threshold = 0.0), Some(ConfigError::Threshold(0.0)));
    assert_eq!(bad(|c| c.window_ms = 0), Some(ConfigError::Window(0)));
    assert_eq!(bad(|c| c.shingle_words = 0), Some(ConfigError::ShingleWords(0)));
    assert_eq!(bad(|c| c.max_buckets = 0), Some(ConfigError::Caps));
    assert!(bad(|c| c.threshold = f64::NAN).is_some());
}

#[test]
fn caps_bound_memory_and_evictions_are_counted() {
    let cfg = NarrativeConfig {
        max_narratives: 50,
        max_buckets: 400,
        max_originals: 60,
        ..NarrativeConfig::default()
    };
    let mut n = Narratives::new(cfg).expect("valid");
    for k in 0..1000i64 {
        let text = format!("a{k} b{k} c{k} d{k} e{k} f{k}");
        obs(&mut n, &post(&format!("p{k}"), "alice_example", T0 + k, &text));
    }
    let s = n.stats();
    assert!(s.narratives <= 50 && s.buckets <= 400 && s.originals <= 60, "{s:?}");
    assert_eq!(s.evicted_narratives, 1000 - 50);
    assert!(s.evicted_buckets > 0 && s.evicted_originals > 0);
}

/// Under the bucket cap, the bands of one-post texts go first: a narrative
/// of several posts that is quiet while many unrelated posts pass is still
/// found by its next copy, not founded again.
#[test]
fn a_quiet_narrative_keeps_its_buckets_while_single_posts_pass() {
    let cfg = NarrativeConfig {
        max_buckets: 400,
        ..NarrativeConfig::default()
    };
    let mut n = Narratives::new(cfg).expect("valid");
    let first = obs(&mut n, &post("c0", "a0", T0, MESSAGE)).unwrap().narrative;
    for k in 1..3 {
        obs(&mut n, &post(&format!("c{k}"), &format!("a{k}"), T0 + k, MESSAGE));
    }
    // 1,000 unrelated posts: 16 bands each, 40 times the cap.
    for k in 0..1000i64 {
        let text = format!("a{k} b{k} c{k} d{k} e{k} f{k}");
        obs(&mut n, &post(&format!("p{k}"), "bob_example", T0 + MIN + k, &text));
    }
    let s = n.stats();
    assert!(s.buckets <= 400 && s.evicted_buckets > 10_000, "{s:?}");
    let again = obs(&mut n, &post("c9", "a9", T0 + 2 * MIN, MESSAGE)).unwrap();
    assert_eq!((again.narrative, again.is_new, again.size), (first, false, 4));
}

fn arb_post() -> impl Strategy<Value = (u8, u8, i64, Option<u8>, String, bool)> {
    (
        any::<u8>(),
        any::<u8>(),
        -5_000_000i64..200_000_000,
        proptest::option::of(any::<u8>()),
        prop_oneof![
            any::<String>(),
            "(rt @[a-z]{1,5}: )?([a-z]{1,4} |#[a-z]{1,3} |@[a-z]{1,3} |https?://[a-z.]{1,8}/[a-z]{0,3} |地震 ){3,12}"
        ],
        any::<bool>(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn never_panics_and_stays_within_caps(posts in proptest::collection::vec(arb_post(), 1..300)) {
        let cfg = NarrativeConfig {
            window_ms: 3_600_000,
            max_narratives: 40,
            max_buckets: 300,
            max_originals: 50,
            ..NarrativeConfig::default()
        };
        let mut n = Narratives::new(cfg).expect("valid");
        let mut tokens = TokenizedText::new();
        for (i, (id, author, t, repost_of, text, dated)) in posts.iter().enumerate() {
            let p = Post {
                id: format!("{id}"),
                author: Some(format!("a{author}")),
                created_at: dated.then_some(Timestamp(*t)),
                repost_of: repost_of.map(|r| format!("{r}")),
                text: text.clone(),
                ..Default::default()
            };
            tokenize(&p.text, &mut tokens);
            if let Some(u) = n.observe(&p, &tokens, &[], || p.text.clone()) {
                prop_assert!(u.size >= 1);
            }
            if i % 50 == 0 {
                n.expire(Timestamp(*t));
            }
            let s = n.stats();
            prop_assert!(s.narratives <= 40 && s.buckets <= 300 && s.originals <= 50);
        }
        for s in n.top(100, Rank::Growth) {
            prop_assert!(s.size >= 2 && s.growth.is_finite() && s.growth > 0.0);
        }
    }
}

#[test]
fn the_memory_setting_scales_the_caps_and_with_them_the_reach() {
    let d = NarrativeConfig::default();
    assert_eq!(d.clone().with_memory_mib(DEFAULT_MEMORY_MIB), d);
    let big = d.clone().with_memory_mib(2 * DEFAULT_MEMORY_MIB);
    assert_eq!(
        (big.max_buckets, big.max_narratives, big.max_originals),
        (2_000_000, 400_000, 1_000_000)
    );
    assert_eq!(big.window_ms, d.window_ms);
    let tiny = d.clone().with_memory_mib(0);
    assert_eq!(
        (tiny.max_buckets, tiny.max_narratives, tiny.max_originals),
        (7_812, 1_562, 3_906)
    );
    assert!(tiny.validate().is_ok());

    // Distinct texts, 10 a second: how long band entries last before the
    // cap evicts them doubles with the memory (1M / 128 / 16 ≈ 488 posts,
    // 49 s, at 1 MiB, under a 4-way set's own eviction order).
    let reach = |mib: usize| {
        let mut n = Narratives::new(NarrativeConfig::default().with_memory_mib(mib)).expect("valid");
        for k in 0..20_000i64 {
            let text = format!("a{k} b{k} c{k} d{k} e{k} f{k}");
            obs(&mut n, &post(&format!("p{k}"), &format!("u{k}"), T0 + k * 100, &text));
        }
        n.stats().evicted_bucket_age_ms
    };
    let (one, two) = (reach(1), reach(2));
    assert!((30_000..50_000).contains(&one), "{one}");
    let ratio = two as f64 / one as f64;
    assert!((1.8..2.2).contains(&ratio), "{one} {two}");
}

#[test]
fn memory_stays_flat_over_a_long_stream() {
    // 200 000 posts of mixed near-duplicates and noise, 10 per second of
    // event time: past the caps, the byte estimate stops growing.
    let cfg = NarrativeConfig {
        max_narratives: 2_000,
        max_buckets: 20_000,
        max_originals: 5_000,
        ..NarrativeConfig::default()
    };
    let mut n = Narratives::new(cfg).expect("valid");
    let mut tokens = TokenizedText::new();
    let mut rng = 0x1234_5678u64;
    let mut peak_at_half = 0;
    for k in 0..200_000i64 {
        rng = minhash::splitmix(rng);
        let text = if rng.is_multiple_of(3) {
            format!("{MESSAGE} {}", rng % 50)
        } else {
            format!(
                "w{} w{} w{} w{} w{} w{}",
                rng % 997,
                rng % 991,
                rng % 983,
                rng % 977,
                rng % 971,
                k
            )
        };
        let p = post(&format!("p{k}"), &format!("a{}", rng % 5000), T0 + k * 100, &text);
        tokenize(&p.text, &mut tokens);
        n.observe(&p, &tokens, &[], String::new);
        if k == 100_000 {
            peak_at_half = n.stats().approx_bytes;
        }
    }
    let end = n.stats();
    assert!(end.narratives <= 2_000 && end.buckets <= 20_000 && end.originals <= 5_000);
    assert!(
        end.approx_bytes <= peak_at_half + peak_at_half / 10,
        "{} vs {}",
        end.approx_bytes,
        peak_at_half
    );
    assert!(end.approx_bytes < 4_000_000, "{}", end.approx_bytes);
}

#[test]
fn sketches_made_elsewhere_cluster_exactly_as_observe_does() {
    // Two clusterers over the same stream: one sketches on the spot, the
    // other is handed sketches made by a separate sketcher (as a run's
    // worker threads do). Every update is the same.
    let stream = [
        post("p1", "alice_example", T0, MESSAGE),
        post("p2", "bob_example", T0 + MIN, &format!("@carol_example {MESSAGE}")),
        post("p3", "carol_example", T0 + 2 * MIN, "gm"),
        repost("r1", "dan_example", T0 + 3 * MIN, "p1", ""),
        post(
            "p4",
            "erin_example",
            T0 + 4 * MIN,
            "Ferry timetable changes next week see https://ferry.example/times?utm_source=x for details",
        ),
        post("p5", "frank_example", T0 + 5 * MIN, &MESSAGE.to_uppercase()),
    ];
    let mut direct = narratives();
    let mut handed = narratives();
    let mut sketcher = Sketcher::new(&NarrativeConfig::default()).expect("valid");
    let mut tokens = TokenizedText::new();
    for p in &stream {
        tokenize(&p.text, &mut tokens);
        let sketch = sketcher.sketch(&p.text, &tokens);
        assert_eq!(
            sketch.clusterable(),
            p.text.split_whitespace().count() >= 5,
            "{}",
            p.text
        );
        let want = direct.observe(p, &tokens, &[], || p.text.clone());
        let got = handed.observe_sketched(p, &sketch, &[], || p.text.clone());
        assert_eq!(want, got, "{}", p.id);
    }
    assert_eq!(direct.stats(), handed.stats());
    assert_eq!(direct.top(5, Rank::Size), handed.top(5, Rank::Size));
    assert_eq!(handed.top(1, Rank::Size)[0].size, 4, "p1, p2, r1 and p5");

    // A sketch made with other shingle settings is not trusted: the
    // clusterer sketches the text again and agrees with itself.
    let mut other = Sketcher::new(&NarrativeConfig {
        shingle_words: 3,
        ..NarrativeConfig::default()
    })
    .expect("valid");
    let mut fresh = narratives();
    let mut again = narratives();
    for p in &stream {
        tokenize(&p.text, &mut tokens);
        let foreign = other.sketch(&p.text, &tokens);
        let want = fresh.observe(p, &tokens, &[], || p.text.clone());
        let got = again.observe_sketched(p, &foreign, &[], || p.text.clone());
        assert_eq!(want, got, "{}", p.id);
    }
}
