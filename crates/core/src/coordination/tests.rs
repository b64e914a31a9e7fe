use super::cnt::{cnt_edges, normalise_text, CntEdge, CntRecord, CntType};
use super::*;
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, BTreeSet, HashSet};

const S: i64 = 1000;

/// A post for the coordinator, owning its strings.
#[derive(Clone, Debug, Default)]
struct P {
    author: String,
    id: String,
    t: i64,
    narrative: Option<u64>,
    links: Vec<String>,
    repost_of: Option<String>,
    reply_to: Option<String>,
    tags: Vec<String>,
}

impl P {
    fn new(author: &str, id: &str, t: i64) -> P {
        P {
            author: author.to_string(),
            id: id.to_string(),
            t,
            ..P::default()
        }
    }
    fn link(mut self, l: &str) -> P {
        self.links.push(l.to_string());
        self
    }
    fn repost(mut self, of: &str) -> P {
        self.repost_of = Some(of.to_string());
        self
    }
    fn reply(mut self, to: &str) -> P {
        self.reply_to = Some(to.to_string());
        self
    }
    fn narrative(mut self, n: u64) -> P {
        self.narrative = Some(n);
        self
    }
    fn tags(mut self, tags: &[&str]) -> P {
        self.tags = tags.iter().map(|s| s.to_string()).collect();
        self
    }
    fn view(&self) -> CoordPost<'_> {
        CoordPost {
            author: &self.author,
            id: &self.id,
            time_ms: self.t,
            narrative: self.narrative.map(NarrativeId),
            links: &self.links,
            repost_of: self.repost_of.as_deref(),
            reply_to: self.reply_to.as_deref(),
            hashtags: &self.tags,
        }
    }
}

fn run(cfg: CoordinationConfig, posts: &[P]) -> Coordinator {
    let mut c = Coordinator::new(cfg).expect("valid config");
    for p in posts {
        c.observe(&p.view());
    }
    c
}

/// The weights per type of the edge between two pseudonyms.
fn weights(c: &Coordinator, a: &str, b: &str) -> [u32; EdgeType::COUNT] {
    let (ha, hb) = (hash_str(a, 0), hash_str(b, 0));
    let key = (ha.min(hb), ha.max(hb));
    c.edges.map.get(&key).map_or([0; EdgeType::COUNT], |e| e.weights)
}

fn w(kind: EdgeType, n: u32) -> [u32; EdgeType::COUNT] {
    let mut out = [0; EdgeType::COUNT];
    out[kind.index()] = n;
    out
}

#[test]
fn k_below_five_is_refused() {
    for k in 0..MIN_K {
        let cfg = CoordinationConfig {
            k,
            ..CoordinationConfig::default()
        };
        assert_eq!(Coordinator::new(cfg).err(), Some(ConfigError::KTooSmall(k)));
    }
    let cfg = CoordinationConfig {
        k: 8,
        ..CoordinationConfig::default()
    };
    assert!(Coordinator::new(cfg).is_ok());
}

#[test]
fn hand_checked_edge_weights() {
    let posts = vec![
        // Link L1: a at 0 s, b at 30 s (pair), c at 90 s (60 s after b:
        // inclusive, pair; 90 s after a: no pair).
        P::new("alice_example", "p1", 0).link("https://news.example/a/1"),
        P::new("bob_example", "p2", 30 * S).link("https://news.example/a/1"),
        P::new("carol_example", "p3", 90 * S).link("https://news.example/a/1"),
        // Reposts of one post by a and b 10 s apart: a co-repost, and
        // the repost's link is not counted again.
        P::new("alice_example", "p4", 200 * S)
            .repost("orig")
            .link("https://news.example/a/2"),
        P::new("bob_example", "p5", 210 * S)
            .repost("orig")
            .link("https://news.example/a/2"),
        // Replies to one post by b and c, 61 s apart: too far.
        P::new("bob_example", "p6", 300 * S).reply("q"),
        P::new("carol_example", "p7", 361 * S).reply("q"),
        // b posts the same link twice near a: one coincidence, the repeat
        // within Δ adds none.
        P::new("alice_example", "p8", 400 * S).link("https://news.example/a/3"),
        P::new("bob_example", "p9", 405 * S).link("https://news.example/a/3"),
        P::new("bob_example", "p10", 406 * S).link("https://news.example/a/3"),
        // A homepage link never pairs.
        P::new("alice_example", "p11", 500 * S).link("https://news.example"),
        P::new("carol_example", "p12", 501 * S).link("https://news.example"),
    ];
    let c = run(CoordinationConfig::default(), &posts);
    let mut ab = w(EdgeType::CoLink, 2);
    ab[EdgeType::CoRepost.index()] = 1;
    assert_eq!(weights(&c, "alice_example", "bob_example"), ab);
    assert_eq!(weights(&c, "bob_example", "carol_example"), w(EdgeType::CoLink, 1));
    assert_eq!(weights(&c, "alice_example", "carol_example"), [0; EdgeType::COUNT]);
    let s = c.stats();
    assert_eq!(s.pairings, [0, 3, 1, 0, 0]);
    assert_eq!(s.edges, 2);
    assert_eq!(s.accounts, 3);

    // Evidence: the posts and times, first account's post first.
    let (ha, hb) = (hash_str("alice_example", 0), hash_str("bob_example", 0));
    let e = &c.edges.map[&(ha.min(hb), ha.max(hb))];
    let first = &e.evidence[0];
    let (pa, pb) = if ha < hb { ("p1", "p2") } else { ("p2", "p1") };
    assert_eq!(first.kind, EdgeType::CoLink);
    assert_eq!([&*first.posts[0], &*first.posts[1]], [pa, pb]);
    assert_eq!(e.evidence.len(), 3);
}

#[test]
fn rare_hashtag_sets_pair_and_perennial_tags_do_not() {
    let cfg = CoordinationConfig {
        rare_hashtag_below: 10.0,
        ..CoordinationConfig::default()
    };
    let mut posts = Vec::new();
    // "weather" becomes frequent.
    for i in 0..20 {
        posts.push(P::new(&format!("warmup_{i}"), &format!("w{i}"), i * 100).tags(&["weather", "news"]));
    }
    posts.push(P::new("alice_example", "a1", 10 * S).tags(&["weather", "news"]));
    posts.push(P::new("bob_example", "b1", 11 * S).tags(&["news", "weather"]));
    posts.push(P::new("alice_example", "a2", 20 * S).tags(&["saveTheOwls", "owlday", "weather"]));
    posts.push(P::new("bob_example", "b2", 21 * S).tags(&["owlday", "saveTheOwls"]));
    posts.push(P::new("carol_example", "c1", 22 * S).tags(&["owlday"]));
    let c = run(cfg, &posts);
    assert_eq!(weights(&c, "alice_example", "bob_example"), w(EdgeType::CoHashtag, 1));
    assert_eq!(weights(&c, "alice_example", "carol_example"), [0; EdgeType::COUNT]);
}

#[test]
fn a_key_with_more_accounts_than_the_fan_out_cap_saturates_and_pairs_no_one() {
    let cfg = CoordinationConfig {
        max_fanout: 3,
        ..CoordinationConfig::default()
    };
    // Six accounts repost within six seconds, then, after a quiet minute,
    // two more (the key is live again but quiet).
    let mut posts: Vec<P> = (0..6)
        .map(|i| P::new(&format!("acct_{i}"), &format!("p{i}"), i * S).repost("viral"))
        .collect();
    posts.push(P::new("acct_6", "p6", 70 * S).repost("viral"));
    posts.push(P::new("acct_7", "p7", 71 * S).repost("viral"));
    let c = run(cfg, &posts);
    let s = c.stats();
    // acct_1..3 pair with every earlier account (1 + 2 + 3); acct_4 sees
    // four accounts within Δ, one more than the cap: the key saturates and
    // acct_4 and acct_5 pair with no one (4 and 5 posts were within Δ).
    // A minute on, acct_6 finds the key quiet again (acct_5's post is
    // beyond Δ) and acct_7 pairs with acct_6.
    assert_eq!(s.pairings[EdgeType::CoRepost.index()], 1 + 2 + 3 + 1);
    assert_eq!((s.saturated_keys, s.saturated_posts, s.capped_pairings), (1, 2, 4 + 5));
    assert_eq!(weights(&c, "acct_3", "acct_0"), w(EdgeType::CoRepost, 1));
    assert_eq!(weights(&c, "acct_4", "acct_3"), [0; EdgeType::COUNT]);
    assert_eq!(weights(&c, "acct_5", "acct_4"), [0; EdgeType::COUNT]);
    assert_eq!(weights(&c, "acct_7", "acct_6"), w(EdgeType::CoRepost, 1));
}

/// Organic reposting: hundreds of ordinary accounts repost popular posts
/// over hours, while others share links and reply with the chance
/// coincidences of a busy stream.
fn organic_stream(seed: u64) -> Vec<P> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut posts = Vec::new();
    let mut n = 0;
    let mut id = || {
        n += 1;
        format!("post{n}")
    };
    // One very popular post: 800 distinct accounts over 3 hours, most of
    // them early (a decaying cascade).
    for i in 0..800 {
        let t = (-(1.0 - rng.gen::<f64>()).ln() * 2400.0 * S as f64) as i64;
        posts.push(P::new(&format!("fan_{i}"), &id(), t.min(3 * 3600 * S)).repost("megaviral"));
    }
    // Five more popular posts reposted by 300 accounts each, drawn from a
    // pool of 3000, over 3 hours.
    for v in 0..5 {
        for _ in 0..300 {
            let a = rng.gen_range(0..3000);
            let t = rng.gen_range(0..3 * 3600 * S);
            posts.push(P::new(&format!("user_{a}"), &id(), t).repost(&format!("viral{v}")));
        }
    }
    // Background: links from 200 news articles, replies to 300 posts.
    for _ in 0..5000 {
        let a = rng.gen_range(0..3000);
        let t = rng.gen_range(0..3 * 3600 * S);
        let p = if rng.gen_bool(0.5) {
            P::new(&format!("user_{a}"), &id(), t)
                .link(&format!("https://news.example/story/{}", rng.gen_range(0..200)))
        } else {
            P::new(&format!("user_{a}"), &id(), t).reply(&format!("thread{}", rng.gen_range(0..300)))
        };
        posts.push(p);
    }
    posts.sort_by_key(|p| p.t);
    posts
}

#[test]
fn organic_viral_reposting_forms_no_group() {
    for seed in 0..3 {
        let posts = organic_stream(seed);
        let c = run(CoordinationConfig::default(), &posts);
        assert!(c.stats().pairings[EdgeType::CoRepost.index()] > 500);
        let groups = c.groups();
        assert!(
            groups.is_empty(),
            "seed {seed}: {} groups, first {:?}",
            groups.len(),
            groups[0]
        );
    }
}

/// 20 accounts paste one message (two rare tags, same narrative) in three
/// waves of three minutes, an hour apart.
fn campaign(seed: u64) -> Vec<P> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut posts = Vec::new();
    for wave in 0..3i64 {
        for a in 0..20 {
            let t = wave * 3600 * S + rng.gen_range(0..180 * S) + 600 * S;
            posts.push(
                P::new(&format!("campaign_{a}"), &format!("c{wave}_{a}"), t)
                    .narrative(77)
                    .tags(&["owlsmatter", "saveowlsnow"]),
            );
        }
    }
    posts
}

#[test]
fn planted_copy_paste_campaign_forms_one_group_with_all_twenty() {
    let mut posts = organic_stream(5);
    posts.extend(campaign(9));
    posts.sort_by_key(|p| p.t);
    let c = run(CoordinationConfig::default(), &posts);
    let groups = c.groups();
    assert_eq!(
        groups.len(),
        1,
        "{:?}",
        groups.iter().map(|g| g.accounts.len()).collect::<Vec<_>>()
    );
    let g = &groups[0];
    let expected: Vec<String> = {
        let mut v: Vec<String> = (0..20).map(|a| format!("campaign_{a}")).collect();
        v.sort();
        v
    };
    assert_eq!(g.accounts, expected);
    assert_eq!(g.types, vec![EdgeType::CoPost, EdgeType::CoHashtag]);
    assert_eq!(g.narratives, vec![NarrativeId(77)]);
    assert!(g.density > 0.5 && g.density <= 1.0, "{}", g.density);
    assert!(g.time_compression > 0.3, "{}", g.time_compression);
    assert!(!g.evidence.is_empty());
    for e in &g.edges {
        assert!(e.a < e.b && e.b < g.accounts.len());
        assert!(e.total >= 2);
    }
}

#[test]
fn close_epoch_reports_then_forgets() {
    let mut c = Coordinator::new(CoordinationConfig::default()).expect("valid");
    let day = 24 * 3600 * S;
    for p in campaign(3) {
        c.observe(&p.view());
    }
    assert_eq!(c.close_epoch(false), None);
    // A post past the epoch's end plus the window closes epoch 0.
    let late = P::new("someone_example", "late", day + 61 * S).link("https://x.example/a/b");
    c.observe(&late.view());
    let (epoch, groups) = c.close_epoch(false).expect("epoch 0 is due");
    assert_eq!(epoch, 0);
    assert_eq!(groups.len(), 1);
    assert_eq!(c.stats().edges, 0);
    assert_eq!(c.stats().accounts, 0);
    assert_eq!(c.close_epoch(false), None);
    assert!(c.groups().is_empty());
}

fn arb_posts() -> impl Strategy<Value = Vec<P>> {
    prop::collection::vec((0..12u8, 0..600i64, 0..4u8, 0..3u8, any::<bool>()), 0..300).prop_map(|v| {
        let mut posts: Vec<P> = v
            .into_iter()
            .enumerate()
            .map(|(i, (a, t, kind, key, tags))| {
                let p = P::new(&format!("acct_{a}"), &format!("p{i}"), t * S);
                let key = format!("k{key}");
                let p = match kind {
                    0 => p.narrative(u64::from(key.as_bytes()[1])),
                    1 => p.link(&format!("https://l.example/{key}")),
                    2 => p.repost(&key),
                    _ => p.reply(&key),
                };
                if tags {
                    p.tags(&["rare_one", "rare_two"])
                } else {
                    p
                }
            })
            .collect();
        posts.sort_by_key(|p| p.t);
        posts
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// (c) No group under k accounts is ever returned.
    #[test]
    fn no_group_under_k(posts in arb_posts(), k in 5usize..8, min_weight in 1u32..3, min_degree in 0usize..3) {
        let cfg = CoordinationConfig { k, min_weight, min_degree, ..CoordinationConfig::default() };
        let mut c = Coordinator::new(cfg).expect("valid");
        let mut all = Vec::new();
        for p in &posts {
            c.observe(&p.view());
            if let Some((_, g)) = c.close_epoch(false) {
                all.extend(g);
            }
        }
        all.extend(c.groups());
        if let Some((_, g)) = c.close_epoch(true) {
            all.extend(g);
        }
        for g in &all {
            let distinct: BTreeSet<&String> = g.accounts.iter().collect();
            prop_assert!(distinct.len() >= k);
            prop_assert_eq!(distinct.len(), g.accounts.len());
        }
    }
}

// ---- coordination-network-toolkit compatibility ----

#[test]
fn cnt_text_normalisation() {
    assert_eq!(normalise_text("  Hello   @Bob_Example World\t@x\n"), "hello world");
    assert_eq!(normalise_text("RT @someone: Big NEWS"), "rt big news");
    assert_eq!(normalise_text("mail me at a@b.example now"), "mail me at a now");
    assert_eq!(normalise_text("@only"), "");
}

fn rec(author: &str, id: &str, t_s: i64, text: &str) -> CntRecord {
    CntRecord {
        id: id.to_string(),
        author: author.to_string(),
        time_ms: t_s * S,
        text: text.to_string(),
        ..CntRecord::default()
    }
}

#[test]
fn cnt_hand_checked_directed_weights() {
    let recs = vec![
        rec("alice_example", "1", 0, "Same words @bob"),
        rec("alice_example", "2", 5, "same   WORDS"),
        rec("bob_example", "3", 60, "same words"),
        rec("alice_example", "4", 200, "other text"),
        rec("bob_example", "5", 260, "Other text @z"),
        rec("bob_example", "6", 261, "other text"),
        CntRecord {
            repost_of: Some("9".into()),
            ..rec("carol_example", "7", 1, "same words")
        },
    ];
    // a→b: posts 1 (60 s from 3, inclusive), 2, 4 → 3. b→a: 3 (from 1, 2),
    // 5 (from 4), 6 is 61 s from 4 → 2. Carol's repost has no text key.
    let edges = cnt_edges(&recs, CntType::CoPost, 60 * S, 2);
    assert_eq!(
        edges,
        vec![
            CntEdge {
                source: "alice_example".into(),
                target: "bob_example".into(),
                weight: 3,
                kind: CntType::CoPost
            },
            CntEdge {
                source: "bob_example".into(),
                target: "alice_example".into(),
                weight: 2,
                kind: CntType::CoPost
            },
        ]
    );
    // Min weight 3 keeps one direction only.
    assert_eq!(cnt_edges(&recs, CntType::CoPost, 60 * S, 3).len(), 1);
}

#[test]
fn cnt_leaves_reposts_out_of_co_link_and_co_reply() {
    let with = |author: &str, id: &str, repost: Option<&str>| CntRecord {
        links: vec!["https://news.example/a".into()],
        reply_to: Some("100".into()),
        repost_of: repost.map(str::to_string),
        ..rec(author, id, 0, "x")
    };
    // Two posts each of alice and bob: weight 2 both ways when they are
    // original posts; none when bob's are reposts.
    let originals = vec![
        with("alice_example", "1", None),
        with("alice_example", "2", None),
        with("bob_example", "3", None),
        with("bob_example", "4", None),
    ];
    let mut reposts = originals.clone();
    reposts[2].repost_of = Some("50".into());
    reposts[3].repost_of = Some("51".into());
    for kind in [CntType::CoLink, CntType::CoReply] {
        assert_eq!(cnt_edges(&originals, kind, 60 * S, 2).len(), 2, "{kind:?}");
        assert!(cnt_edges(&reposts, kind, 60 * S, 1).is_empty(), "{kind:?}");
    }
}

/// The toolkit's definition, literally: every pair of records.
fn naive(records: &[CntRecord], kind: CntType, window: i64, min_weight: u32) -> Vec<CntEdge> {
    let keys = |r: &CntRecord| -> Vec<String> {
        match kind {
            CntType::CoPost if r.repost_of.is_none() => vec![normalise_text(&r.text)],
            CntType::CoPost => vec![],
            CntType::CoLink | CntType::CoReply if r.repost_of.is_some() => vec![],
            CntType::CoLink => r.links.clone(),
            CntType::CoRepost => r.repost_of.iter().cloned().collect(),
            CntType::CoReply => r.reply_to.iter().cloned().collect(),
        }
    };
    let mut matched: HashSet<(&str, &str, &str)> = HashSet::new();
    for x in records {
        for y in records {
            if x.author == y.author || (x.time_ms - y.time_ms).abs() > window {
                continue;
            }
            let ky = keys(y);
            if keys(x).iter().any(|k| ky.contains(k)) {
                matched.insert((&x.author, &x.id, &y.author));
            }
        }
    }
    let mut w: BTreeMap<(&str, &str), u32> = BTreeMap::new();
    for (u, _, v) in matched {
        *w.entry((u, v)).or_insert(0) += 1;
    }
    w.into_iter()
        .filter(|&(_, n)| n >= min_weight)
        .map(|((u, v), n)| CntEdge {
            source: u.to_string(),
            target: v.to_string(),
            weight: n,
            kind,
        })
        .collect()
}

fn arb_records() -> impl Strategy<Value = Vec<CntRecord>> {
    let words = prop::sample::select(vec!["Hi", "hi", "@x", "there", "  ", "THERE", "@y:", "\t"]);
    prop::collection::vec(
        (
            0..6u8,
            0..8u8,
            0..200i64,
            prop::collection::vec(words, 0..4),
            prop::option::of(0..3u8),
            prop::option::of(0..3u8),
            prop::collection::vec(0..3u8, 0..3),
        ),
        0..60,
    )
    .prop_map(|v| {
        v.into_iter()
            .map(|(a, id, t, words, rt, reply, links)| CntRecord {
                // Ids repeat across records on purpose (duplicates).
                id: format!("i{id}"),
                author: format!("acct_{a}"),
                time_ms: t * S,
                text: words.concat(),
                repost_of: rt.map(|r| format!("r{r}")),
                reply_to: reply.map(|r| format!("q{r}")),
                links: links.into_iter().map(|l| format!("https://l.example/{l}")).collect(),
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// (e) The two-pointer implementation equals the literal definition.
    #[test]
    fn cnt_equals_naive(records in arb_records(), window_s in 0..60i64, min_weight in 1u32..4) {
        for kind in CntType::ALL {
            let fast = cnt_edges(&records, kind, window_s * S, min_weight);
            let slow = naive(&records, kind, window_s * S, min_weight);
            prop_assert_eq!(fast, slow, "{:?}", kind);
        }
    }
}

/// A network restored from saved state holds the same edges in a map laid
/// out differently (another capacity, another insertion order). The groups
/// must not depend on that layout: their floats are summed, and their
/// evidence ranked, in an order of the members, not of the map.
#[test]
fn groups_do_not_depend_on_the_edge_maps_layout() {
    let mut posts = organic_stream(5);
    posts.extend(campaign(9));
    posts.extend(campaign(10).into_iter().map(|mut p| {
        p.author = p.author.replace("campaign", "second");
        p.id = format!("s{}", p.id);
        p
    }));
    posts.sort_by_key(|p| p.t);
    let mut c = run(CoordinationConfig::default(), &posts);
    let before = c.groups();
    assert!(!before.is_empty());
    for capacity in [0, 4 * c.edges.map.capacity(), 16 * c.edges.map.capacity()] {
        let mut entries: Vec<_> = c.edges.map.drain().collect();
        entries.reverse();
        let mut map = HashMap::with_capacity_and_hasher(capacity, Default::default());
        map.extend(entries);
        c.edges.map = map;
        let after = c.groups();
        assert_eq!(after, before, "with capacity {capacity}");
    }
}
