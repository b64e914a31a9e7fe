//! `GET /api/v1/search` on a server over a cluster (`tidewatch serve
//! --nats`): answered by every shard, merged, with the partitions that did
//! not answer in `missing_partitions`; the dashboard's search page says so
//! too. Two shard stores answer for partitions 0 and 1 of 3.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use std::time::Duration;
use tidewatch_cluster::testing::{nats_server_available, weather_shard, NatsServer};
use tidewatch_cluster::view::ShardResponder;
use tidewatch_cluster::{shard_dir, Cluster, ClusterConfig};
use tidewatch_core::{Post, Timestamp};
use tidewatch_server::{app, AppState, ClusterTarget, ServerConfig};
use tower::ServiceExt;

/// 2026-03-02T10:00:00Z in unix minutes.
const M0: i64 = 29_540_760;

fn post(id: &str, minute: i64, text: &str) -> Post {
    Post {
        id: id.into(),
        platform: "rss".into(),
        created_at: Some(Timestamp((M0 + minute) * 60_000)),
        text: text.into(),
        ..Default::default()
    }
}

async fn get(app: &axum::Router, uri: &str) -> (StatusCode, Vec<u8>) {
    let req = Request::builder().uri(uri).body(Body::empty()).expect("a request");
    let res = app.clone().oneshot(req).await.expect("a response");
    let status = res.status();
    (
        status,
        res.into_body().collect().await.expect("a body").to_bytes().to_vec(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_over_a_cluster_merges_the_shards_and_lists_missing_partitions() {
    if !nats_server_available("search_over_a_cluster_merges_the_shards_and_lists_missing_partitions") {
        return;
    }
    let server = NatsServer::start().expect("starting nats-server");
    let mut cluster = ClusterConfig::new(server.url());
    cluster.partitions = Some(3);
    let shards = Cluster::connect(&cluster).await.expect("connecting");
    let data = tempfile::tempdir().expect("a data directory");
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
            ShardResponder::start(shards.client().clone(), p, shard_dir(data.path(), p))
                .await
                .expect("a responder"),
        );
    }

    // The server's own directory holds no store at all.
    let own = tempfile::tempdir().expect("the server's directory");
    let mut config = ServerConfig::new(own.path().to_path_buf(), "127.0.0.1:0".parse().expect("an address"));
    config.anonymous_read = true;
    config.poll_interval = None;
    config.cluster = Some(ClusterTarget {
        config: ClusterConfig::new(server.url()),
        shard_timeout: Duration::from_millis(500),
    });
    let state = AppState::new(config);
    state.connect_cluster().await.expect("the server connects");
    let app = app(state);

    let (status, body) = get(&app, "/api/v1/search?q=rain%20OR%20snow&limit=2").await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let v: Value = serde_json::from_slice(&body).expect("JSON");
    assert_eq!(v["total"], 3);
    assert_eq!(v["missing_partitions"], json!([2]));
    let hits: Vec<(&str, &str, &Value)> = v["hits"]
        .as_array()
        .expect("hits")
        .iter()
        .map(|h| {
            (
                h["id"].as_str().unwrap_or(""),
                h["created_at"].as_str().unwrap_or(""),
                &h["feeds"],
            )
        })
        .collect();
    assert_eq!(
        hits,
        [
            ("a2", "2026-03-02T10:02:00Z", &json!(["weather"])),
            ("b1", "2026-03-02T10:01:00Z", &json!(["weather"])),
        ]
    );

    // A query that does not parse: 400 with the column, as without a cluster.
    let (status, body) = get(&app, "/api/v1/search?q=rain%20AND%20(snow").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let v: Value = serde_json::from_slice(&body).expect("a problem document");
    assert_eq!(v["column"], 15);

    // The dashboard's search page warns that the results are partial.
    let (status, body) = get(&app, "/search?q=rain").await;
    assert_eq!(status, StatusCode::OK);
    let page = String::from_utf8_lossy(&body);
    assert!(
        page.contains("Partial results: partitions 2 did not answer in time."),
        "{page}"
    );
    assert!(page.contains("rain, then sun"), "{page}");

    for r in responders {
        r.stop().await;
    }
}
