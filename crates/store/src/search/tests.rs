use super::*;
use std::collections::BTreeSet;
use tidewatch_core::post::{Entities, Sentiment};

const HEAP: usize = 20_000_000;

/// Invented posts covering the constructs whose translation is subtle.
fn posts() -> Vec<Post> {
    let texts = [
        "the river may flood tonight",
        "flood on the river bank",
        "climate policy and change",
        "Climate change is real #Climate",
        "応援 #東京2020 速報",
        "東京 2020 速報",
        "今日は大きな地震がありました",
        "Café au lait at the #cafe",
        "women and woman rights",
        "nothing relevant here",
        "fire near the river",
        "fire is near the river",
        "$TSLA up again, tsla fans",
        "climate NEAR climate #climate",
    ];
    texts
        .iter()
        .enumerate()
        .map(|(i, text)| Post {
            id: format!("p{i:02}"),
            platform: if i % 3 == 0 { "Bluesky" } else { "twitter" }.into(),
            created_at: Some(Timestamp(1_000 + 10 * i as i64)),
            text: text.to_string(),
            lang: Some(if i % 4 == 0 { "pt-BR" } else { "en" }.into()),
            repost_of: (i % 5 == 0).then(|| "x".into()),
            reply_to: (i % 2 == 0).then(|| "y".into()),
            sentiment: (i != 9).then(|| Sentiment {
                compound: (i as f64 - 6.0) / 6.0,
                ..Default::default()
            }),
            entities: Some(Entities {
                domains: if i % 2 == 0 {
                    vec!["www.News.example.org".into()]
                } else {
                    vec!["badexample.org".into()]
                },
                ..Default::default()
            }),
            ..Default::default()
        })
        .collect()
}

fn index_of(posts: &[Post]) -> (tempfile::TempDir, PostIndex) {
    let dir = tempfile::tempdir().unwrap();
    let mut index = PostIndex::open(dir.path(), HEAP).unwrap();
    for (i, p) in posts.iter().enumerate() {
        index.add(p, &[i as u32 % 3, 10], 1).unwrap();
    }
    index.commit("").unwrap();
    (dir, index)
}

fn request(query: &str) -> SearchRequest {
    SearchRequest {
        query: Query::parse(query).unwrap_or_else(|e| panic!("{query}: {e}")),
        from: None,
        to: None,
        feed: None,
        limit: 1000,
    }
}

#[test]
fn every_construct_selects_what_the_evaluator_selects() {
    let posts = posts();
    let (_dir, index) = index_of(&posts);
    let queries = [
        "flood",
        "flood river",
        "flood OR fire",
        "\"climate change\"",
        "\"climate change\"~2",
        "\"climate change\"~1",
        "flood NEAR/2 river",
        "flood NEAR/1 river",
        "(flood OR fire) NEAR/1 \"the river\"",
        "climate NEAR/3 #climate",
        "climat*",
        "c*mate",
        "wom?n",
        "#clim*",
        "\"climat* change\"",
        "#climate",
        "#東京2020",
        "\"#東京2020 速報\"",
        "\"2020 速報\"",
        "地震",
        "cafe",
        "$tsla",
        "tsla",
        "NOT flood",
        "-flood -fire",
        "NOT (flood NEAR/1 river)",
        "river -\"the river\"",
        "lang:pt",
        "lang:pt-br",
        "lang:p",
        "platform:bluesky",
        "domain:example.org",
        "domain:news.example.org",
        "domain:badexample.org",
        "sentiment:negative",
        "sentiment:neutral",
        "sentiment:positive",
        "is:repost",
        "is:reply",
        "is:reply OR is:repost -river",
        "(climate OR flood) NOT lang:en",
        "river NOT (fire NEAR/0 near)",
    ];
    for q in queries {
        let req = request(q);
        let want: BTreeSet<String> = posts
            .iter()
            .filter(|p| matches_post(&req.query, p))
            .map(|p| p.id.clone())
            .collect();
        let got: BTreeSet<String> = index.search(&req).unwrap().into_iter().map(|h| h.id).collect();
        assert_eq!(got, want, "{q}");
        assert_eq!(index.count(&req).unwrap(), want.len() as u64, "{q}");
        let mut exported = BTreeSet::new();
        index
            .export(&req, &mut |h| {
                exported.insert(h.id.clone());
                Ok(())
            })
            .unwrap();
        assert_eq!(exported, want, "{q}");
    }
}

#[test]
fn hits_come_newest_first_up_to_the_limit_with_their_fields() {
    let posts = posts();
    let (_dir, index) = index_of(&posts);
    let mut req = request("river");
    req.limit = 2;
    let hits = index.search(&req).unwrap();
    assert_eq!(hits.len(), 2);
    assert_eq!(hits[0].id, "p11");
    assert_eq!(hits[1].id, "p10");
    assert_eq!(
        hits[1],
        Hit {
            id: "p10".into(),
            created_at: Some(Timestamp(1100)),
            platform: "twitter".into(),
            lang: Some("en".into()),
            sentiment: "positive".into(),
            text: "fire near the river".into(),
            url: None,
            feeds: vec![1, 10],
        }
    );
    // The verified path keeps the order too.
    let mut req = request("river NEAR/5 the");
    req.limit = 3;
    let got: Vec<String> = index.search(&req).unwrap().into_iter().map(|h| h.id).collect();
    assert_eq!(got, vec!["p11", "p10", "p01"]);
}

#[test]
fn time_bounds_feed_filter_and_histogram() {
    let posts = posts();
    let (_dir, index) = index_of(&posts);
    let mut req = request("river");
    req.from = Some(Timestamp(1010));
    req.to = Some(Timestamp(1100));
    let got: BTreeSet<String> = index.search(&req).unwrap().into_iter().map(|h| h.id).collect();
    assert_eq!(got, BTreeSet::from(["p01".to_string()]));
    let mut req = request("NOT nothing");
    req.feed = Some(2);
    let got: BTreeSet<String> = index.search(&req).unwrap().into_iter().map(|h| h.id).collect();
    assert_eq!(
        got,
        ["p02", "p05", "p08", "p11"].iter().map(|s| s.to_string()).collect()
    );
    // river: p00 (t=1000), p01 (1010), p10 (1100), p11 (1110); 50 ms buckets.
    let h = index.histogram(&request("river"), 50).unwrap();
    assert_eq!(
        h,
        vec![(Timestamp(1000), 2), (Timestamp(1050), 0), (Timestamp(1100), 2)]
    );
    let h = index.histogram(&request("river NEAR/0 bank"), 50).unwrap();
    assert_eq!(h, vec![(Timestamp(1000), 1)]);
    assert!(index.histogram(&request("river"), 0).is_err());
    assert_eq!(index.histogram(&request("zzz"), 10).unwrap(), vec![]);
}

#[test]
fn export_visits_each_of_many_hits_once_and_stops_on_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut index = PostIndex::open(dir.path(), HEAP).unwrap();
    let n = 50_000u32;
    for i in 0..n {
        let text = if i % 2 == 0 {
            "storm over the bay"
        } else {
            "bay calm, storm later"
        };
        let p = Post {
            id: format!("{i:08x}"),
            platform: "twitter".into(),
            created_at: Some(Timestamp(i64::from(i))),
            text: text.into(),
            ..Default::default()
        };
        index.add(&p, &[], u64::from(i / 10_000)).unwrap();
        if i % 20_000 == 0 {
            index.commit("").unwrap();
        }
    }
    index.commit("").unwrap();
    for (query, want) in [("storm", n), ("\"storm bay\"~3", n / 2), ("storm NEAR/2 bay", n)] {
        let mut seen = vec![false; n as usize];
        let visited = index
            .export(&request(query), &mut |h| {
                let i = usize::from_str_radix(&h.id, 16).unwrap();
                assert!(!seen[i], "{query}: {i} twice");
                seen[i] = true;
                Ok(())
            })
            .unwrap();
        assert_eq!(visited, u64::from(want), "{query}");
        assert_eq!(seen.iter().filter(|&&s| s).count(), want as usize, "{query}");
    }
    let mut calls = 0;
    let err = index.export(&request("storm"), &mut |_| {
        calls += 1;
        Err(StoreError::Invalid("disk full".into()))
    });
    assert!(matches!(err, Err(StoreError::Invalid(m)) if m == "disk full"));
    assert_eq!(calls, 1);
}

#[test]
fn near_between_two_words_is_exact_at_its_boundaries() {
    // Gaps between `fire` and `river`, both orders; a tag shares the
    // position of its plain word.
    let texts = [
        "fire river",              // gap 0
        "river fire",              // gap 0, reversed
        "fire a b river",          // gap 2
        "river a b fire",          // gap 2, reversed
        "fire a b c river",        // gap 3
        "fire #river",             // the tag's plain word counts
        "fire fire a b c d river", // the nearer fire is 4 away
        "river",
    ];
    let posts: Vec<Post> = texts
        .iter()
        .enumerate()
        .map(|(i, text)| Post {
            id: format!("n{i}"),
            platform: "bluesky".into(),
            created_at: Some(Timestamp(i as i64)),
            text: text.to_string(),
            ..Default::default()
        })
        .collect();
    let (_dir, index) = index_of(&posts);
    let ids = |q: &str| -> BTreeSet<String> {
        let req = request(q);
        let plan = index.plan(&req).unwrap();
        assert!(plan.exact, "{q} translates exactly");
        let found: BTreeSet<String> = index.search(&req).unwrap().into_iter().map(|h| h.id).collect();
        assert_eq!(index.count(&req).unwrap(), found.len() as u64, "{q}");
        found
    };
    let set = |v: &[&str]| -> BTreeSet<String> { v.iter().map(|s| s.to_string()).collect() };
    assert_eq!(ids("fire NEAR/0 river"), set(&["n0", "n1", "n5"]));
    assert_eq!(ids("river NEAR/2 fire"), set(&["n0", "n1", "n2", "n3", "n5"]));
    assert_eq!(ids("fire NEAR/3 river"), set(&["n0", "n1", "n2", "n3", "n4", "n5"]));
    assert_eq!(
        ids("fire NEAR/4 river"),
        set(&["n0", "n1", "n2", "n3", "n4", "n5", "n6"])
    );
    // Each agrees with the evaluator.
    for q in [
        "fire NEAR/0 river",
        "river NEAR/2 fire",
        "fire NEAR/3 river",
        "fire NEAR/4 river",
    ] {
        let query = Query::parse(q).unwrap();
        let want: BTreeSet<String> = posts
            .iter()
            .filter(|p| matches_post(&query, p))
            .map(|p| p.id.clone())
            .collect();
        assert_eq!(ids(q), want, "{q}");
    }
    // A tag or a repeated word keeps the verified translation.
    assert!(!index.plan(&request("fire NEAR/2 #river")).unwrap().exact);
    assert!(!index.plan(&request("fire NEAR/2 fire")).unwrap().exact);
}
