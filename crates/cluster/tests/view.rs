//! One view over all shards against a real nats-server: two shard stores
//! (feeds with the same names under different ids) answer for partitions
//! 0 and 1 of a 3-partition cluster; the fanned-out search and series are
//! the union of both, feeds named, and partition 2 is reported missing.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;
use tidewatch_cluster::testing::{nats_server_available, shard_store, NatsServer};
use tidewatch_cluster::view::{self, Reply, ShardResponder, ViewError, ViewSearch, ViewSearchResult, ViewSeries};
use tidewatch_cluster::{shard_dir, Cluster, ClusterConfig};
use tidewatch_core::{Post, Sentiment, Timestamp};
use tidewatch_store::db::{FeedRow, MinuteCounts};
use tidewatch_store::Store;

const P: u32 = 3;
const TIMEOUT: Duration = Duration::from_millis(500);
/// 2026-03-02T10:00:00Z in unix minutes: the first minute of the posts.
const M0: i64 = 29_540_760;

/// A redacted, pseudonymised post `minute` minutes after [`M0`].
fn post(id: &str, minute: i64, text: &str, compound: Option<f64>) -> Post {
    Post {
        id: id.into(),
        platform: "bluesky".into(),
        created_at: Some(Timestamp((M0 + minute) * 60_000)),
        text: text.into(),
        lang: Some("en".into()),
        sentiment: compound.map(|compound| Sentiment {
            compound,
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn feed(id: u32, name: &str, query: &str) -> FeedRow {
    FeedRow {
        id,
        name: name.into(),
        query: query.into(),
        active: true,
    }
}

/// Shard 0 numbers `climate` 1 and `energy` 2; shard 1 the other way round.
/// The post `dup-1` is in both (as after a shard was copied by hand).
fn shards(data: &Path) -> (Store, Store) {
    let s0 = shard_store(
        &shard_dir(data, 0),
        vec![feed(1, "climate", "rain OR flood"), feed(2, "energy", "solar OR wind")],
        &[
            (post("s0-a", 0, "heavy rain floods the valley", Some(-0.6)), vec![1]),
            (post("s0-b", 2, "solar panels shine after rain", Some(0.7)), vec![1, 2]),
            (post("dup-1", 1, "rain and wind power the grid", None), vec![2]),
        ],
    );
    let s1 = shard_store(
        &shard_dir(data, 1),
        vec![feed(1, "energy", "solar OR wind"), feed(2, "climate", "rain OR flood")],
        &[
            (post("s1-a", 3, "more rain returns tomorrow", Some(0.0)), vec![2]),
            (post("s1-b", 1, "the wind farm expands", Some(0.3)), vec![1]),
            (post("dup-1", 1, "rain and wind power the grid", None), vec![1]),
        ],
    );
    (s0, s1)
}

fn search_req(query: &str) -> ViewSearch {
    ViewSearch {
        query: query.into(),
        from: None,
        to: None,
        feed: None,
        limit: 20,
    }
}

/// (id, minute after M0, feed names) of each hit, in order.
fn summary(r: &ViewSearchResult) -> Vec<(String, i64, Vec<String>)> {
    r.hits
        .iter()
        .map(|h| {
            let minute = h.created_at.map_or(-1, |t| t.0 / 60_000 - M0);
            (h.id.clone(), minute, h.feeds.clone())
        })
        .collect()
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

fn counts(posts: i64, negative: i64, neutral: i64, positive: i64, sentiment_sum: i64) -> MinuteCounts {
    MinuteCounts {
        posts,
        negative,
        neutral,
        positive,
        sentiment_sum,
        reposts: 0,
        replies: 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanned_out_search_and_series_merge_every_answering_shard() {
    if !nats_server_available("fanned_out_search_and_series_merge_every_answering_shard") {
        return;
    }
    let server = NatsServer::start().expect("starting nats-server");
    let mut cfg = ClusterConfig::new(server.url());
    cfg.partitions = Some(P);
    let cluster = Cluster::connect(&cfg).await.expect("connecting");
    let client = cluster.client().clone();
    let data = tempfile::tempdir().expect("a data directory");
    let _stores = shards(data.path());
    let r0 = ShardResponder::start(client.clone(), 0, shard_dir(data.path(), 0))
        .await
        .expect("responder 0");
    let r1 = ShardResponder::start(client.clone(), 1, shard_dir(data.path(), 1))
        .await
        .expect("responder 1");

    // The union, newest first, with each shard's feed ids named; the
    // duplicate once; the count is the sum of the shards' counts (3 + 2).
    let got = view::search(&client, P, &search_req("rain"), TIMEOUT)
        .await
        .expect("searching");
    assert_eq!(got.answered, [0, 1]);
    assert_eq!(got.missing, [2]);
    assert_eq!(got.result.count, 5);
    assert_eq!(
        summary(&got.result),
        [
            ("s1-a".to_string(), 3, s(&["climate"])),
            ("s0-b".to_string(), 2, s(&["climate", "energy"])),
            ("dup-1".to_string(), 1, s(&["energy"])),
            ("s0-a".to_string(), 0, s(&["climate"])),
        ]
    );
    let first = &got.result.hits[0];
    assert_eq!(
        (first.platform.as_str(), first.lang.as_deref(), first.sentiment.as_str()),
        ("bluesky", Some("en"), "neutral")
    );
    assert_eq!(first.text, "more rain returns tomorrow");

    // A feed named in the request means each shard's own id for it.
    let energy = view::search(
        &client,
        P,
        &ViewSearch {
            feed: Some("energy".into()),
            ..search_req("rain OR wind")
        },
        TIMEOUT,
    )
    .await
    .expect("searching a feed");
    assert_eq!(
        summary(&energy.result)
            .into_iter()
            .map(|(id, ..)| id)
            .collect::<Vec<_>>(),
        ["s0-b", "dup-1", "s1-b"]
    );
    assert_eq!(energy.result.count, 4, "shard 0: s0-b, dup-1; shard 1: s1-b, dup-1");

    // The limit applies to the merged hits; from/to too (to is exclusive).
    let cut = view::search(
        &client,
        P,
        &ViewSearch {
            limit: 2,
            from: Some((M0 + 1) * 60_000),
            to: Some((M0 + 3) * 60_000),
            ..search_req("rain")
        },
        TIMEOUT,
    )
    .await
    .expect("searching a time range");
    assert_eq!(
        summary(&cut.result).into_iter().map(|(id, ..)| id).collect::<Vec<_>>(),
        ["s0-b", "dup-1"]
    );
    assert_eq!(cut.result.count, 3);

    // A feed no shard knows finds nothing (not an error: a shard that has
    // not recorded a feed has no posts of it).
    let unknown = view::search(
        &client,
        P,
        &ViewSearch {
            feed: Some("transit".into()),
            ..search_req("rain")
        },
        TIMEOUT,
    )
    .await
    .expect("searching an unknown feed");
    assert_eq!(unknown.result, ViewSearchResult::default());

    // Series: summed per feed name and minute (ids differ between shards).
    let series = view::series(&client, P, &ViewSeries::default(), TIMEOUT)
        .await
        .expect("series");
    assert_eq!(series.missing, [2]);
    let mut climate = BTreeMap::new();
    climate.insert(M0, counts(1, 1, 0, 0, -6000));
    climate.insert(M0 + 2, counts(1, 0, 0, 1, 7000));
    climate.insert(M0 + 3, counts(1, 0, 1, 0, 0));
    let mut energy = BTreeMap::new();
    // dup-1 twice (once per shard: series count what each shard saw), s1-b.
    energy.insert(M0 + 1, counts(3, 0, 0, 1, 3000));
    energy.insert(M0 + 2, counts(1, 0, 0, 1, 7000));
    let mut want = BTreeMap::new();
    want.insert("climate".to_string(), climate);
    want.insert("energy".to_string(), energy.clone());
    assert_eq!(series.result, want);

    let one = view::series(
        &client,
        P,
        &ViewSeries {
            feed: Some("energy".into()),
            from: Some((M0 + 1) * 60_000 + 30_000),
            to: Some((M0 + 2) * 60_000),
        },
        TIMEOUT,
    )
    .await
    .expect("one feed's series");
    energy.remove(&(M0 + 2));
    assert_eq!(one.result, BTreeMap::from([("energy".to_string(), energy)]));

    r0.stop().await;
    r1.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_queries_slow_shards_and_empty_shards_are_reported() {
    if !nats_server_available("bad_queries_slow_shards_and_empty_shards_are_reported") {
        return;
    }
    let server = NatsServer::start().expect("starting nats-server");
    let mut cfg = ClusterConfig::new(server.url());
    cfg.partitions = Some(P);
    let cluster = Cluster::connect(&cfg).await.expect("connecting");
    let client = cluster.client().clone();
    let data = tempfile::tempdir().expect("a data directory");
    let _stores = shards(data.path());
    let r0 = ShardResponder::start(client.clone(), 0, shard_dir(data.path(), 0))
        .await
        .expect("responder 0");

    // A bad query fails before anything is sent, naming the column...
    let err = view::search(&client, P, &search_req("rain AND (wind"), TIMEOUT)
        .await
        .expect_err("a bad query");
    assert!(matches!(err, ViewError::Query(ref e) if e.column == 15), "{err}");
    assert!(err.to_string().contains("at column 15"), "{err}");
    // ...and a shard asked directly answers with the same parse error.
    let raw = client
        .request(
            view::search_subject(0),
            serde_json::to_vec(&search_req("rain AND (wind")).unwrap().into(),
        )
        .await
        .expect("asking shard 0");
    match serde_json::from_slice::<Reply<ViewSearchResult>>(&raw.payload).expect("a reply") {
        Reply::Error(message) => assert!(message.contains("at column 15"), "{message}"),
        Reply::Ok(r) => panic!("a bad query was answered: {r:?}"),
    }
    // Garbage is refused, not a crash.
    let raw = client
        .request(view::series_subject(0), "not json".into())
        .await
        .expect("asking shard 0");
    assert!(matches!(
        serde_json::from_slice::<Reply<serde_json::Value>>(&raw.payload),
        Ok(Reply::Error(m)) if m.starts_with("not a series request")
    ));

    // A partition whose holder has no store yet answers empty; one whose
    // holder never answers is missing after the timeout.
    let r2 = ShardResponder::start(client.clone(), 2, shard_dir(data.path(), 2))
        .await
        .expect("responder 2");
    let mut silent = client
        .queue_subscribe(view::search_subject(1), view::QUEUE_GROUP.to_string())
        .await
        .expect("a silent subscriber");
    client.flush().await.expect("flushing");
    let started = std::time::Instant::now();
    let got = view::search(&client, P, &search_req("rain"), TIMEOUT)
        .await
        .expect("searching");
    assert!(started.elapsed() < TIMEOUT * 3, "the requests run concurrently");
    assert_eq!(
        (got.answered.as_slice(), got.missing.as_slice()),
        (&[0, 2][..], &[1][..])
    );
    assert_eq!(got.result.count, 3);
    assert!(!shard_dir(data.path(), 2).exists(), "answering created no store");
    silent.unsubscribe().await.expect("unsubscribing");

    // A stopped responder leaves its partition missing.
    r0.stop().await;
    let got = view::search(&client, P, &search_req("rain"), TIMEOUT)
        .await
        .expect("searching");
    assert_eq!(
        (got.answered.as_slice(), got.missing.as_slice()),
        (&[2][..], &[0, 1][..])
    );
    assert_eq!(got.result, ViewSearchResult::default());
    r2.stop().await;
}

/// A reply larger than the server's max payload would be dropped by the
/// server and look like a missing shard; the shard says why instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_over_the_max_payload_is_an_error_not_a_missing_shard() {
    if !nats_server_available("a_reply_over_the_max_payload_is_an_error_not_a_missing_shard") {
        return;
    }
    let server = NatsServer::start().expect("starting nats-server");
    let mut cfg = ClusterConfig::new(server.url());
    cfg.partitions = Some(1);
    let cluster = Cluster::connect(&cfg).await.expect("connecting");
    let client = cluster.client().clone();
    let max = client.server_info().max_payload;
    let data = tempfile::tempdir().expect("a data directory");
    // Enough long posts that all of them exceed the limit, a few do not.
    let text = format!("rain {}", "drizzle ".repeat(1000));
    let n = max / text.len() + 2;
    let posts: Vec<(Post, Vec<u32>)> = (0..n)
        .map(|i| (post(&format!("long-{i:04}"), i as i64, &text, None), vec![1]))
        .collect();
    let _store = shard_store(&shard_dir(data.path(), 0), vec![feed(1, "climate", "rain")], &posts);
    let r0 = ShardResponder::start(client.clone(), 0, shard_dir(data.path(), 0))
        .await
        .expect("responder 0");

    let few = view::search(
        &client,
        1,
        &ViewSearch {
            limit: 3,
            ..search_req("rain")
        },
        TIMEOUT,
    )
    .await
    .expect("a few hits fit");
    assert_eq!(few.result.hits.len(), 3);
    assert_eq!(few.result.count, n as u64);

    let err = view::search(
        &client,
        1,
        &ViewSearch {
            limit: n,
            ..search_req("rain")
        },
        Duration::from_secs(5),
    )
    .await
    .expect_err("every hit does not fit");
    match err {
        ViewError::Shard { partition, message } => {
            assert_eq!(partition, 0);
            assert!(message.contains("max_payload"), "{message}");
        }
        other => panic!("not a shard error: {other}"),
    }
    r0.stop().await;
}
