//! Editing feeds on a server over a cluster (`tidewatch serve --nats`):
//! the feeds API's create, update and delete change the cluster's feed
//! set (one key-value entry every worker watches) with the checks and
//! answers of a server over a feeds file, and concurrent edits, from one
//! server or from two, all land (compare-and-set on the entry's revision).
//! Webhooks name feeds of the cluster's set. The live stream's `counts`
//! events come from every shard's minute counts.

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use tidewatch_cluster::feeds::{current_feeds, feeds_toml, put_feeds};
use tidewatch_cluster::testing::{nats_server_available, weather_shard, NatsServer};
use tidewatch_cluster::view::{self, ShardResponder};
use tidewatch_cluster::{shard_dir, Cluster, ClusterConfig};
use tidewatch_core::{Post, Timestamp};
use tidewatch_engine::feeds::FeedDef;
use tidewatch_server::poll::ClusterCounts;
use tidewatch_server::tokens::{create_token, Role};
use tidewatch_server::{app, AppState, ClusterTarget, ServerConfig};
use tower::ServiceExt;

/// 2026-03-02T10:00:00Z in unix minutes.
const M0: i64 = 29_540_760;

/// A server over the cluster at `url`, with its own empty directory and
/// an admin token.
struct Server {
    app: axum::Router,
    state: Arc<AppState>,
    admin: String,
    _dir: tempfile::TempDir,
}

async fn server(url: &str) -> Server {
    let dir = tempfile::tempdir().expect("the server's directory");
    let (admin, _) = create_token(dir.path(), Role::Admin).expect("an admin token");
    let mut config = ServerConfig::new(dir.path().to_path_buf(), "127.0.0.1:0".parse().expect("an address"));
    config.poll_interval = None;
    config.cluster = Some(ClusterTarget {
        config: ClusterConfig::new(url),
        shard_timeout: Duration::from_millis(300),
    });
    let state = AppState::new(config);
    state.connect_cluster().await.expect("the server connects");
    Server {
        app: app(state.clone()),
        state,
        admin,
        _dir: dir,
    }
}

impl Server {
    async fn call(&self, method: Method, uri: &str, body: Option<Value>) -> (StatusCode, Value) {
        let b = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::AUTHORIZATION, format!("Bearer {}", self.admin));
        let req = match body {
            Some(v) => b
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(v.to_string())),
            None => b.body(Body::empty()),
        }
        .expect("a request");
        let res = self.app.clone().oneshot(req).await.expect("a response");
        let status = res.status();
        let bytes = res.into_body().collect().await.expect("a body").to_bytes();
        let v = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).expect("JSON")
        };
        (status, v)
    }
}

async fn cluster(url: &str, partitions: u32) -> Cluster {
    let mut cfg = ClusterConfig::new(url);
    cfg.partitions = Some(partitions);
    Cluster::connect(&cfg).await.expect("connecting")
}

fn def(name: &str, query: &str) -> FeedDef {
    FeedDef {
        name: name.into(),
        query: query.into(),
    }
}

/// The cluster's feed set now and its revision.
async fn feeds_now(c: &Cluster) -> (Vec<FeedDef>, Option<u64>) {
    match current_feeds(c).await.expect("reading the feeds") {
        Some(v) => (v.defs, Some(v.revision)),
        None => (Vec::new(), None),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_feeds_api_edits_the_clusters_feed_set() {
    if !nats_server_available("the_feeds_api_edits_the_clusters_feed_set") {
        return;
    }
    let nats = NatsServer::start().expect("starting nats-server");
    let c = cluster(&nats.url(), 2).await;
    put_feeds(&c, &feeds_toml(&[def("weather", "rain OR snow")]))
        .await
        .expect("a first feed set");
    let s = server(&nats.url()).await;

    // Create: added to the set; no id over a cluster.
    let (status, v) = s
        .call(
            Method::POST,
            "/api/v1/feeds",
            Some(json!({"name": "l'été \"chaud\"", "query": "canicule OR #heatwave"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert_eq!(
        v,
        json!({"id": null, "name": "l'été \"chaud\"", "query": "canicule OR #heatwave", "active": true})
    );
    assert_eq!(
        feeds_now(&c).await.0,
        [
            def("weather", "rain OR snow"),
            def("l'été \"chaud\"", "canicule OR #heatwave")
        ]
    );

    // A query that does not parse: 400 with its column, and nothing written.
    let (_, before) = feeds_now(&c).await;
    let (status, v) = s
        .call(
            Method::POST,
            "/api/v1/feeds",
            Some(json!({"name": "broken", "query": "rain AND (snow"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["column"], 15);
    let (status, v) = s
        .call(Method::PUT, "/api/v1/feeds/weather", Some(json!({"query": "rain OR"})))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    assert!(v["column"].is_u64(), "{v}");
    assert_eq!(feeds_now(&c).await.1, before);

    // A name taken: 409; an unknown feed: 404; nothing written either.
    let (status, v) = s
        .call(
            Method::POST,
            "/api/v1/feeds",
            Some(json!({"name": "weather", "query": "hail"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{v}");
    let (status, _) = s
        .call(Method::PUT, "/api/v1/feeds/nowhere", Some(json!({"query": "hail"})))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = s.call(Method::DELETE, "/api/v1/feeds/nowhere", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(feeds_now(&c).await.1, before);

    // Update, then delete.
    let (status, v) = s
        .call(
            Method::PUT,
            "/api/v1/feeds/weather",
            Some(json!({"query": "rain OR snow OR hail"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["query"], "rain OR snow OR hail");
    assert_eq!(
        feeds_now(&c).await.0,
        [
            def("weather", "rain OR snow OR hail"),
            def("l'été \"chaud\"", "canicule OR #heatwave")
        ]
    );
    let (status, _) = s
        .call(Method::DELETE, "/api/v1/feeds/l'%C3%A9t%C3%A9%20%22chaud%22", None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(feeds_now(&c).await.0, [def("weather", "rain OR snow OR hail")]);

    // The list shows the cluster's set.
    let (status, v) = s.call(Method::GET, "/api/v1/feeds", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        v,
        json!([{"id": null, "name": "weather", "query": "rain OR snow OR hail", "active": true}])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_from_two_servers_all_land() {
    if !nats_server_available("concurrent_creates_from_two_servers_all_land") {
        return;
    }
    let nats = NatsServer::start().expect("starting nats-server");
    let c = cluster(&nats.url(), 2).await;
    // No feed set yet: the first writers race to create the entry.
    let (a, b) = (server(&nats.url()).await, server(&nats.url()).await);
    let mut tasks = Vec::new();
    for i in 0..6 {
        for (tag, s) in [("a", &a), ("b", &b)] {
            let app = s.app.clone();
            let admin = s.admin.clone();
            let name = format!("{tag}{i}");
            tasks.push(tokio::spawn(async move {
                let req = Request::builder()
                    .method(Method::POST)
                    .uri("/api/v1/feeds")
                    .header(header::AUTHORIZATION, format!("Bearer {admin}"))
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(Body::from(json!({"name": name, "query": "rain"}).to_string()))
                    .expect("a request");
                app.oneshot(req).await.expect("a response").status()
            }));
        }
    }
    for t in tasks {
        assert_eq!(t.await.expect("a task"), StatusCode::CREATED);
    }
    let mut names: Vec<String> = feeds_now(&c).await.0.into_iter().map(|d| d.name).collect();
    names.sort();
    let mut want: Vec<String> = (0..6).flat_map(|i| [format!("a{i}"), format!("b{i}")]).collect();
    want.sort();
    assert_eq!(names, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_name_feeds_of_the_clusters_set() {
    if !nats_server_available("webhooks_name_feeds_of_the_clusters_set") {
        return;
    }
    let nats = NatsServer::start().expect("starting nats-server");
    let c = cluster(&nats.url(), 2).await;
    put_feeds(&c, &feeds_toml(&[def("weather", "rain OR snow")]))
        .await
        .expect("a feed set");
    let s = server(&nats.url()).await;
    let url = "https://hooks.example.org/tidewatch";

    let (status, v) = s
        .call(
            Method::POST,
            "/api/v1/webhooks",
            Some(json!({"url": url, "feed": "weather"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert_eq!(v["feed"], "weather");

    let (status, v) = s
        .call(
            Method::POST,
            "/api/v1/webhooks",
            Some(json!({"url": url, "feed": "quakes"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["detail"], "feed: no feed named \"quakes\"");

    // A feed added through the API is known at once.
    let (status, _) = s
        .call(
            Method::POST,
            "/api/v1/feeds",
            Some(json!({"name": "quakes", "query": "earthquake"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, v) = s
        .call(
            Method::POST,
            "/api/v1/webhooks",
            Some(json!({"url": url, "feed": "quakes"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
}

fn post(id: &str, minute: i64, text: &str) -> Post {
    Post {
        id: id.into(),
        platform: "rss".into(),
        created_at: Some(Timestamp((M0 + minute) * 60_000)),
        text: text.into(),
        ..Default::default()
    }
}

/// Waits (at most 5 s) until exactly `partitions` answer: a responder
/// just started may not be heard at once.
async fn answering(c: &Cluster, partitions: &[u32]) {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let got = view::progress(c.client(), c.partitions(), Duration::from_millis(300))
            .await
            .expect("asking for progress");
        if got.answered == partitions || std::time::Instant::now() > deadline {
            assert_eq!(got.answered, partitions);
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One `counts` entry of the weather feed (the posts have no sentiment).
fn minute_count(minute: i64, posts: i64) -> Value {
    json!({
        "feed": "weather",
        "minute": Timestamp((M0 + minute) * 60_000).to_rfc3339(),
        "posts": posts, "negative": 0, "neutral": 0, "positive": 0
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_events_over_a_cluster_sum_the_shards_news() {
    if !nats_server_available("counts_events_over_a_cluster_sum_the_shards_news") {
        return;
    }
    let nats = NatsServer::start().expect("starting nats-server");
    let c = cluster(&nats.url(), 3).await;
    let data = tempfile::tempdir().expect("the shards' directory");
    weather_shard(
        &shard_dir(data.path(), 0),
        1,
        "rain OR snow",
        &[post("a1", 0, "rain at noon"), post("a2", 2, "snow by night")],
    );
    weather_shard(
        &shard_dir(data.path(), 1),
        5,
        "rain OR snow",
        &[post("b1", 1, "rain, then sun")],
    );
    let mut responders = Vec::new();
    for p in 0..2 {
        responders.push(
            ShardResponder::start(c.client().clone(), p, shard_dir(data.path(), p))
                .await
                .expect("a responder"),
        );
    }
    answering(&c, &[0, 1]).await;
    let s = server(&nats.url()).await;
    let hub = &s.state.hub;
    let mut counts = ClusterCounts::default();

    // The first look notes where news starts and publishes nothing.
    counts.poll(&s.state).await;
    assert!(hub.latest("counts").is_none());
    counts.poll(&s.state).await;
    assert!(hub.latest("counts").is_none(), "nothing changed");

    // Partition 2's shard comes up with posts in the newest minute and the next.
    weather_shard(
        &shard_dir(data.path(), 2),
        3,
        "rain OR snow",
        &[post("c1", 2, "more snow"), post("c2", 3, "rain again")],
    );
    responders.push(
        ShardResponder::start(c.client().clone(), 2, shard_dir(data.path(), 2))
            .await
            .expect("a responder"),
    );
    answering(&c, &[0, 1, 2]).await;
    counts.poll(&s.state).await;
    let event = hub.latest("counts").expect("a counts event");
    let v: Value = serde_json::from_str(&event.data).expect("JSON");
    assert_eq!(
        v,
        json!({"counts": [minute_count(2, 2), minute_count(3, 1)], "missing_partitions": []})
    );

    // Partition 2 falls silent: its share missing is not news.
    let newest = hub.newest_id();
    if let Some(r) = responders.pop() {
        r.stop().await;
    }
    answering(&c, &[0, 1]).await;
    counts.poll(&s.state).await;
    assert_eq!(hub.newest_id(), newest);

    for r in responders {
        r.stop().await;
    }
}
