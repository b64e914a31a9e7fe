//! Feed series on a server over a cluster (`tidewatch serve --nats`): the
//! API's `/feeds/{name}/series`, the feeds list and the dashboard's feed
//! pages read the cluster's feed set and every shard's minute counts,
//! summed by feed name and minute, and say which partitions did not
//! answer. Two shard stores answer for partitions 0 and 1 of 3; the
//! server's own directory holds no posts.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use std::time::Duration;
use tidewatch_cluster::feeds::put_feeds;
use tidewatch_cluster::testing::{nats_server_available, weather_shard, NatsServer};
use tidewatch_cluster::view::ShardResponder;
use tidewatch_cluster::{shard_dir, Cluster, ClusterConfig};
use tidewatch_core::post::Sentiment;
use tidewatch_core::{Post, Timestamp};
use tidewatch_engine::feeds::{feeds_toml, FeedDef};
use tidewatch_server::{app, AppState, ClusterTarget, ServerConfig};
use tower::ServiceExt;

/// 2026-03-02T10:00:00Z in unix minutes.
const M0: i64 = 29_540_760;

/// A post at minute `M0 + minute` with the given compound sentiment.
fn post(id: &str, minute: i64, text: &str, compound: f64) -> Post {
    Post {
        id: id.into(),
        platform: "rss".into(),
        created_at: Some(Timestamp((M0 + minute) * 60_000)),
        text: text.into(),
        sentiment: Some(Sentiment {
            compound,
            pos: 0.0,
            neu: 0.0,
            neg: 0.0,
        }),
        ..Default::default()
    }
}

async fn get(app: &axum::Router, uri: &str) -> (StatusCode, String) {
    let req = Request::builder().uri(uri).body(Body::empty()).expect("a request");
    let res = app.clone().oneshot(req).await.expect("a response");
    let status = res.status();
    let body = res.into_body().collect().await.expect("a body").to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

async fn api(app: &axum::Router, uri: &str) -> Value {
    let (status, body) = get(app, uri).await;
    assert_eq!(status, StatusCode::OK, "{uri}: {body}");
    serde_json::from_str(&body).expect("JSON")
}

/// `GET uri` until its `missing_partitions` is `missing` (at most 5 s),
/// asserted. `ShardResponder::start` returns once its subscriptions are
/// written, not once the server has them (async-nats 0.38's flush is no
/// round trip), so a responder just started may not be heard at once.
async fn heard(app: &axum::Router, uri: &str, missing: Value) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let v = api(app, uri).await;
        if v["missing_partitions"] == missing || std::time::Instant::now() > deadline {
            assert_eq!(v["missing_partitions"], missing, "{uri}");
            return v;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn point(minute: i64, posts: i64, neg: i64, neu: i64, pos: i64, mean: f64) -> Value {
    let t = Timestamp((M0 + minute) * 60_000).to_rfc3339();
    json!({
        "t": t, "posts": posts, "negative": neg, "neutral": neu, "positive": pos,
        "sentiment_mean": mean, "reposts": 0, "replies": 0
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn series_over_a_cluster_sum_the_shards_by_minute_and_list_missing_partitions() {
    if !nats_server_available("series_over_a_cluster_sum_the_shards_by_minute_and_list_missing_partitions") {
        return;
    }
    let server = NatsServer::start().expect("starting nats-server");
    let mut cluster = ClusterConfig::new(server.url());
    cluster.partitions = Some(3);
    let shards = Cluster::connect(&cluster).await.expect("connecting");
    let defs = [
        FeedDef {
            name: "weather".into(),
            query: "rain OR snow".into(),
        },
        FeedDef {
            name: "calm".into(),
            query: "breeze".into(),
        },
    ];
    put_feeds(&shards, &feeds_toml(&defs))
        .await
        .expect("writing the cluster's feeds");
    let data = tempfile::tempdir().expect("a data directory");
    weather_shard(
        &shard_dir(data.path(), 0),
        1,
        "rain OR snow",
        &[
            post("a1", 0, "rain at noon", 0.6),
            post("a2", 2, "snow by night", -0.5),
            post("a3", 2, "rain again", 0.0),
        ],
    );
    weather_shard(
        &shard_dir(data.path(), 1),
        5,
        "rain OR snow",
        &[post("b1", 0, "rain, then sun", 0.4), post("b2", 1, "light snow", 0.0)],
    );
    let mut responders = Vec::new();
    for p in 0..2 {
        responders.push(
            ShardResponder::start(shards.client().clone(), p, shard_dir(data.path(), p))
                .await
                .expect("a responder"),
        );
    }

    let own = tempfile::tempdir().expect("the server's directory");
    let mut config = ServerConfig::new(own.path().to_path_buf(), "127.0.0.1:0".parse().expect("an address"));
    config.anonymous_read = true;
    config.poll_interval = None;
    config.cluster = Some(ClusterTarget {
        config: ClusterConfig::new(server.url()),
        // Generous: a partition without a responder is reported at once
        // (no responders), and a slow first read must not look missing.
        shard_timeout: Duration::from_secs(5),
    });
    let state = AppState::new(config);
    state.connect_cluster().await.expect("the server connects");
    let app = app(state);

    // Per minute, the sum over both shards; no id (each shard has its own);
    // partition 2 has no responder.
    let v = heard(&app, "/api/v1/feeds/weather/series", json!([2])).await;
    assert_eq!(
        v,
        json!({
            "feed": "weather",
            "interval": "minute",
            "points": [
                point(0, 2, 0, 0, 2, 0.5),
                point(1, 1, 0, 1, 0, 0.0),
                point(2, 2, 1, 1, 0, -0.25),
            ],
            "missing_partitions": [2],
        })
    );
    // The same from/to as without a cluster: the minute `from` falls in counts.
    let v = api(
        &app,
        "/api/v1/feeds/weather/series?from=2026-03-02T10:01:30Z&to=2026-03-02T10:02:00Z",
    )
    .await;
    assert_eq!(v["points"], json!([point(1, 1, 0, 1, 0, 0.0)]));
    let v = api(&app, "/api/v1/feeds/weather/series?interval=hour").await;
    assert_eq!(v["points"], json!([point(0, 5, 1, 2, 2, 0.1)]));
    // A feed of the cluster's set that no shard counted: empty, not 404.
    let v = api(&app, "/api/v1/feeds/calm/series").await;
    assert_eq!(v["points"], json!([]));
    let (status, _) = get(&app, "/api/v1/feeds/nope/series").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The feeds list is the cluster's feed set.
    let v = api(&app, "/api/v1/feeds").await;
    assert_eq!(
        v,
        json!([
            {"id": null, "name": "weather", "query": "rain OR snow", "active": true},
            {"id": null, "name": "calm", "query": "breeze", "active": true},
        ])
    );

    // The dashboard's feeds list: the cluster's sums, and a partial note.
    let (status, page) = get(&app, "/feeds").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(
        page.contains(
            "<p id=\"missing-partitions\" class=\"bad\" role=\"alert\">Partial data: partitions 2 did not \
             answer in time; the sparklines lack their posts.</p>"
        ),
        "{page}"
    );
    assert!(
        page.contains("aria-label=\"weather: 5 posts in the 24 hours to 2026-03-02 10:03\""),
        "{page}"
    );
    assert!(page.contains("<a href=\"/feeds/calm\">calm</a>"), "{page}");
    assert!(page.contains("no data yet"), "{page}");

    // One feed's page: volume, sentiment and posts from every shard.
    let (status, page) = get(&app, "/feeds/weather?range=all").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    for expected in [
        "Partial data: partitions 2 did not answer in time",
        "<p>Query: <code>rain OR snow</code></p>",
        "Volume (posts per minute)",
        "5 posts from 2026-03-02 10:00 to 2026-03-02 10:03 UTC, at most 2 per bucket; 0 spike(s) shaded.",
        "<li>negative: 1 (20%)</li><li>neutral: 2 (40%)</li><li>positive: 2 (40%)</li>",
        "unknown — 5 (100%)",
        "<blockquote>light snow</blockquote>",
        "<blockquote>snow by night</blockquote>",
    ] {
        assert!(page.contains(expected), "{expected} in {page}");
    }
    let (status, _) = get(&app, "/feeds/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Every partition answers (partition 2 holds nothing yet): complete.
    responders.push(
        ShardResponder::start(shards.client().clone(), 2, shard_dir(data.path(), 2))
            .await
            .expect("a responder"),
    );
    let v = heard(&app, "/api/v1/feeds/weather/series?interval=hour", json!([])).await;
    assert_eq!(v["points"], json!([point(0, 5, 1, 2, 2, 0.1)]));
    for uri in ["/feeds", "/feeds/weather"] {
        let (status, page) = get(&app, uri).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert!(!page.contains("missing-partitions"), "{uri}: {page}");
    }

    for r in responders {
        r.stop().await;
    }
}
