//! The API over a small data directory made by running the pipeline
//! (decode → enrich → match → windows → alerts, topics → store) over a
//! generated stream: every endpoint's happy path, auth failures (401,
//! 403), oversize bodies (413), malformed queries (400 with the column),
//! the live stream's resume with `Last-Event-ID`, and the OpenAPI
//! document against the router.

mod common;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tidewatch_engine::feeds::load_feeds;
use tidewatch_gen::{GenConfig, Generator};
use tidewatch_server::hub::EventHub;
use tidewatch_server::tokens::{create_token, Role};
use tidewatch_server::{app, AppState, ServerConfig};
use tidewatch_store::Store;
use tower::ServiceExt;

const FEEDS: &str = r#"
[[feed]]
name = "quakes"
query = 'earthquake OR aftershock OR #earthquake OR 地震'
[[feed]]
name = "tech"
query = '"open source" OR (chip NEAR/3 shortage) OR #ai OR gpu'
"#;

struct Fixture {
    dir: PathBuf,
    read: String,
    admin: String,
}

impl Fixture {
    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }
}

/// A data directory with 30,000 generated posts run through the
/// pipeline, and two tokens; made once for every test of this file.
fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("server-api-fixture");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let posts = dir.join("posts.jsonl");
        let mut buf = Vec::new();
        for post in Generator::new(&GenConfig {
            posts: 30_000,
            days: 1,
            seed: 4,
            ..Default::default()
        }) {
            post.write_json(&mut buf);
        }
        std::fs::write(&posts, buf).unwrap();
        common::run_pipeline(&dir, &posts, FEEDS);

        let (read, _) = create_token(&dir.join("data"), Role::Read).unwrap();
        let (admin, _) = create_token(&dir.join("data"), Role::Admin).unwrap();
        Fixture { dir, read, admin }
    })
}

/// The app over the fixture; `feeds` is the feeds file it may edit.
fn app_with(feeds: Option<PathBuf>, tweak: impl FnOnce(&mut ServerConfig)) -> (Router, Arc<AppState>) {
    let f = fixture();
    let mut config = ServerConfig::new(f.data(), "127.0.0.1:0".parse().unwrap());
    config.feeds_file = feeds;
    tweak(&mut config);
    let state = AppState::new(config);
    (app(state.clone()), state)
}

fn request(method: Method, uri: &str, token: Option<&str>, body: Option<Value>) -> Request<Body> {
    let mut b = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    match body {
        Some(v) => b
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(v.to_string()))
            .unwrap(),
        None => b.body(Body::empty()).unwrap(),
    }
}

async fn send(app: &Router, req: Request<Body>) -> (StatusCode, String, Vec<u8>) {
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let ct = res
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body = res.into_body().collect().await.unwrap().to_bytes().to_vec();
    (status, ct, body)
}

async fn get_json(app: &Router, uri: &str) -> Value {
    let (status, ct, body) = send(app, request(Method::GET, uri, Some(&fixture().read), None)).await;
    assert_eq!(status, StatusCode::OK, "{uri}: {}", String::from_utf8_lossy(&body));
    assert!(ct.starts_with("application/json"), "{uri}: {ct}");
    serde_json::from_slice(&body).unwrap()
}

fn keys_in(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                out.insert(k.clone());
                keys_in(v, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|v| keys_in(v, out)),
        _ => {}
    }
}

#[tokio::test]
async fn read_endpoints_answer_from_the_pipelines_data() {
    let (app, _) = app_with(None, |_| {});

    let feeds = get_json(&app, "/api/v1/feeds").await;
    let names: Vec<&str> = feeds
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["quakes", "tech"]);
    assert_eq!(feeds[0]["id"], 0);

    let minutes = get_json(&app, "/api/v1/feeds/quakes/series").await;
    let hours = get_json(&app, "/api/v1/feeds/quakes/series?interval=hour").await;
    let days = get_json(&app, "/api/v1/feeds/quakes/series?interval=day").await;
    let total = |v: &Value| -> i64 {
        v["points"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["posts"].as_i64().unwrap())
            .sum()
    };
    assert!(total(&minutes) > 0);
    assert_eq!(total(&minutes), total(&hours));
    assert_eq!(total(&hours), total(&days));
    assert_eq!(days["points"].as_array().unwrap().len(), 1, "one generated day");
    assert!(days["points"][0]["t"]
        .as_str()
        .unwrap()
        .starts_with("2026-03-02T00:00:00"));
    // from/to select minutes: the first hour only.
    let first_hour = get_json(
        &app,
        "/api/v1/feeds/quakes/series?interval=hour&from=2026-03-02T00:00:00Z&to=2026-03-02T01:00:00Z",
    )
    .await;
    assert!(first_hour["points"].as_array().unwrap().len() <= 1);

    // Search: the count equals what export streams, and hits carry feed names.
    let found = get_json(&app, "/api/v1/search?q=earthquake&limit=5").await;
    let n = found["total"].as_u64().unwrap();
    assert!(n > 0);
    assert_eq!(found["hits"].as_array().unwrap().len(), (n as usize).min(5));
    assert!(found["hits"][0]["feeds"]
        .as_array()
        .unwrap()
        .contains(&Value::from("quakes")));
    let in_feed = get_json(&app, "/api/v1/search?q=earthquake&feed=quakes&limit=1").await;
    assert_eq!(
        in_feed["total"].as_u64().unwrap(),
        n,
        "every earthquake post matched the feed"
    );

    let (status, ct, body) = send(
        &app,
        request(Method::GET, "/api/v1/export?q=earthquake", Some(&fixture().read), None),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ct, "application/x-ndjson");
    let lines: Vec<Value> = body
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    assert_eq!(lines.len() as u64, n);
    let (status, ct, body) = send(
        &app,
        request(
            Method::GET,
            "/api/v1/export?q=earthquake&format=csv",
            Some(&fixture().read),
            None,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(ct.starts_with("text/csv"));
    let text = String::from_utf8(body).unwrap();
    assert!(text.starts_with("id,created_at,platform,lang,sentiment,feeds,url,text\n"));

    // Findings, with no account anywhere in them.
    let alerts = get_json(&app, "/api/v1/alerts").await;
    assert!(
        !alerts.as_array().unwrap().is_empty(),
        "the planted events raise alerts"
    );
    let later = get_json(&app, "/api/v1/alerts?since=2030-01-01").await;
    assert!(later.as_array().unwrap().is_empty());
    let topics = get_json(&app, "/api/v1/topics").await;
    let narratives = get_json(&app, "/api/v1/narratives?limit=5").await;
    assert!(narratives.as_array().unwrap().len() <= 5);
    let groups = get_json(&app, "/api/v1/coordination/groups").await;
    let mut keys = BTreeSet::new();
    for v in [&alerts, &topics, &narratives, &groups, &found] {
        keys_in(v, &mut keys);
    }
    for forbidden in ["author", "accounts", "handle", "pseudonym", "user"] {
        assert!(!keys.contains(forbidden), "{forbidden:?} in the API's output");
    }
    for g in groups.as_array().unwrap() {
        assert!(g["size"].as_u64().unwrap() >= 5);
    }

    let metrics = get_json(&app, "/api/v1/metrics").await;
    assert_eq!(metrics["run"], "absent", "no live run wrote status.json");
    assert!(metrics["commit_seq"].as_u64().unwrap() >= 1);
    let (status, _, body) = send(&app, request(Method::GET, "/api/v1/health", None, None)).await;
    assert_eq!(status, StatusCode::OK, "health needs no token");
    assert_eq!(serde_json::from_slice::<Value>(&body).unwrap()["status"], "ok");

    // Ingest belongs to the pipeline: serve alone says so.
    let (status, ct, _) = send(
        &app,
        request(
            Method::POST,
            "/api/v1/ingest",
            Some(&fixture().admin),
            Some(Value::Null),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(ct, "application/problem+json");
}

#[tokio::test]
async fn metrics_come_from_the_runs_status_file() {
    let f = fixture();
    let tmp = tempfile::tempdir().unwrap();
    // A data directory of its own, with the fixture's database.
    std::fs::copy(Store::db_path(&f.data()), tmp.path().join("tidewatch.db")).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let status = |t: i64, posts: u64| tidewatch_engine::sources::RunStatus {
        updated_at: t,
        started_at: now - 60_000,
        pid: 1,
        running: true,
        posts,
        matched: 10,
        rejected: 0,
        sources: vec![tidewatch_engine::sources::SourceStatus {
            name: "bluesky".into(),
            kind: "jetstream".into(),
            lag_ms: Some(1500),
            connected: true,
            ..Default::default()
        }],
    };
    let mut config = ServerConfig::new(tmp.path().to_path_buf(), "127.0.0.1:0".parse().unwrap());
    config.anonymous_read = true;
    let state = AppState::new(config);
    let app = app(state);
    status(now - 2000, 1000).write(tmp.path()).unwrap();
    let req = || request(Method::GET, "/api/v1/metrics", None, None);
    let (code, _, _) = send(&app, req()).await;
    assert_eq!(code, StatusCode::OK, "anonymous read");
    status(now, 5000).write(tmp.path()).unwrap();
    let (_, _, body) = send(&app, req()).await;
    let m: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(m["run"], "running");
    assert_eq!(m["posts_per_s"].as_f64().unwrap(), 2000.0, "4000 posts in 2 s");
    assert_eq!(m["lag_ms"], 1500);
    assert_eq!(m["sources"][0]["name"], "bluesky");
}

#[tokio::test]
async fn feeds_are_created_changed_and_deleted_in_the_feeds_file() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("feeds.toml");
    std::fs::write(&file, FEEDS).unwrap();
    let (app, _) = app_with(Some(file.clone()), |_| {});
    let admin = Some(fixture().admin.as_str());

    let (s, _, body) = send(
        &app,
        request(
            Method::POST,
            "/api/v1/feeds",
            admin,
            Some(serde_json::json!({"name": "floods", "query": "flood OR #flooding"})),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{}", String::from_utf8_lossy(&body));
    let created: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(created["id"], Value::Null, "no run has seen it yet");
    let defs = load_feeds(&file).unwrap();
    assert_eq!(
        defs.iter().map(|d| d.name.as_str()).collect::<Vec<_>>(),
        vec!["quakes", "tech", "floods"]
    );

    let (s, _, _) = send(
        &app,
        request(
            Method::POST,
            "/api/v1/feeds",
            admin,
            Some(serde_json::json!({"name": "floods", "query": "x"})),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT);

    let (s, _, _) = send(
        &app,
        request(
            Method::PUT,
            "/api/v1/feeds/floods",
            admin,
            Some(serde_json::json!({"query": "flood -drill"})),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(load_feeds(&file).unwrap()[2].query, "flood -drill");

    let (s, ct, body) = send(
        &app,
        request(
            Method::PUT,
            "/api/v1/feeds/floods",
            admin,
            Some(serde_json::json!({"query": "flood AND"})),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(ct, "application/problem+json");
    assert_eq!(serde_json::from_slice::<Value>(&body).unwrap()["column"], 10);
    assert_eq!(
        load_feeds(&file).unwrap()[2].query,
        "flood -drill",
        "a bad query changes nothing"
    );

    let (s, _, _) = send(&app, request(Method::DELETE, "/api/v1/feeds/floods", admin, None)).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _, _) = send(&app, request(Method::DELETE, "/api/v1/feeds/floods", admin, None)).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(load_feeds(&file).unwrap().len(), 2);
    let listed = get_json(&app, "/api/v1/feeds").await;
    assert_eq!(listed.as_array().unwrap().len(), 2);

    // Without a feeds file, writes are refused with a reason.
    let (ro, _) = app_with(None, |_| {});
    let (s, _, _) = send(
        &ro,
        request(
            Method::POST,
            "/api/v1/feeds",
            admin,
            Some(serde_json::json!({"name": "a", "query": "b"})),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT);
}

#[tokio::test]
async fn a_malformed_query_is_a_400_problem_with_its_column() {
    let (app, _) = app_with(None, |_| {});
    let read = Some(fixture().read.as_str());
    let (s, ct, body) = send(
        &app,
        request(
            Method::POST,
            "/api/v1/feeds/validate",
            read,
            Some(serde_json::json!({"query": "climate AND"})),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(ct, "application/problem+json");
    let p: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(p["status"], 400);
    assert_eq!(p["column"], 12);
    assert!(p["detail"].as_str().unwrap().contains("column 12"));

    let (s, _, body) = send(
        &app,
        request(
            Method::POST,
            "/api/v1/feeds/validate",
            read,
            Some(serde_json::json!({"query": "#climate OR flood"})),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(serde_json::from_slice::<Value>(&body).unwrap()["valid"], true);

    for uri in ["/api/v1/search?q=%22open", "/api/v1/export?q=(a"] {
        let (s, ct, body) = send(&app, request(Method::GET, uri, read, None)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{uri}");
        assert_eq!(ct, "application/problem+json");
        assert!(
            serde_json::from_slice::<Value>(&body).unwrap()["column"].is_u64(),
            "{uri}"
        );
    }
    // Other bad parameters are problems too.
    let (s, ct, _) = send(
        &app,
        request(Method::GET, "/api/v1/alerts?since=yesterday-ish", read, None),
    )
    .await;
    assert_eq!((s, ct.as_str()), (StatusCode::BAD_REQUEST, "application/problem+json"));
    let (s, ct, _) = send(&app, request(Method::GET, "/api/v1/search", read, None)).await;
    assert_eq!(
        (s, ct.as_str()),
        (StatusCode::BAD_REQUEST, "application/problem+json"),
        "q is required"
    );
    let (s, _, _) = send(&app, request(Method::GET, "/api/v1/feeds/nope/series", read, None)).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, ct, _) = send(&app, request(Method::GET, "/api/v1/nothing-here", read, None)).await;
    assert_eq!((s, ct.as_str()), (StatusCode::NOT_FOUND, "application/problem+json"));
}

#[tokio::test]
async fn tokens_and_roles_are_enforced() {
    let (app, _) = app_with(None, |_| {});
    let f = fixture();
    let (s, ct, body) = send(&app, request(Method::GET, "/api/v1/alerts", None, None)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(ct, "application/problem+json");
    assert_eq!(serde_json::from_slice::<Value>(&body).unwrap()["status"], 401);
    let (s, _, _) = send(&app, request(Method::GET, "/api/v1/alerts", Some("tw_wrong"), None)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _, _) = send(&app, request(Method::GET, "/api/v1/alerts", Some(&f.admin), None)).await;
    assert_eq!(s, StatusCode::OK, "admin may read");

    let body = serde_json::json!({"name": "x", "query": "y"});
    let (s, ct, _) = send(
        &app,
        request(Method::POST, "/api/v1/feeds", Some(&f.read), Some(body.clone())),
    )
    .await;
    assert_eq!((s, ct.as_str()), (StatusCode::FORBIDDEN, "application/problem+json"));
    let (s, _, _) = send(
        &app,
        request(Method::DELETE, "/api/v1/feeds/quakes", Some(&f.read), None),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _, _) = send(&app, request(Method::POST, "/api/v1/feeds", None, Some(body))).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    // Anonymous read: reads pass, writes still need admin.
    let (anon, _) = app_with(None, |c| c.anonymous_read = true);
    let (s, _, _) = send(&anon, request(Method::GET, "/api/v1/alerts", None, None)).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _, _) = send(&anon, request(Method::DELETE, "/api/v1/feeds/quakes", None, None)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn anonymous_read_is_refused_off_loopback() {
    let f = fixture();
    let mut config = ServerConfig::new(f.data(), "0.0.0.0:0".parse().unwrap());
    config.anonymous_read = true;
    let err = tidewatch_server::serve(AppState::new(config), async {}, |_| {})
        .await
        .unwrap_err();
    assert!(err.to_string().contains("loopback"), "{err}");
}

#[tokio::test]
async fn an_oversize_body_is_a_413_problem() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("feeds.toml");
    std::fs::write(&file, FEEDS).unwrap();
    let (app, _) = app_with(Some(file.clone()), |c| c.max_body_bytes = 1000);
    let big = serde_json::json!({"name": "big", "query": "a ".repeat(1000)});
    let (s, ct, body) = send(
        &app,
        request(Method::POST, "/api/v1/feeds", Some(&fixture().admin), Some(big)),
    )
    .await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{}", String::from_utf8_lossy(&body));
    assert_eq!(ct, "application/problem+json");
    assert_eq!(serde_json::from_slice::<Value>(&body).unwrap()["status"], 413);
    assert_eq!(load_feeds(&file).unwrap().len(), 2);
}

/// Reads SSE frames from a body until `n` events (frames with an `event:`) came.
async fn read_events(body: Body, n: usize) -> Vec<(Option<String>, String, String)> {
    let mut body = body;
    let mut text = String::new();
    let mut events = Vec::new();
    while events.len() < n {
        let frame = tokio::time::timeout(Duration::from_secs(10), body.frame())
            .await
            .expect("an event within 10 s")
            .expect("the stream goes on")
            .unwrap();
        if let Ok(data) = frame.into_data() {
            text.push_str(std::str::from_utf8(&data).unwrap());
        }
        while let Some(end) = text.find("\n\n") {
            let block: String = text.drain(..end + 2).collect();
            let (mut id, mut kind, mut data) = (None, String::new(), String::new());
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("id: ") {
                    id = Some(v.to_string());
                } else if let Some(v) = line.strip_prefix("event: ") {
                    kind = v.to_string();
                } else if let Some(v) = line.strip_prefix("data: ") {
                    data.push_str(v);
                }
            }
            if !kind.is_empty() {
                events.push((id, kind, data));
            }
        }
    }
    events
}

#[tokio::test]
async fn the_stream_resumes_after_last_event_id_and_reports_what_was_dropped() {
    let (app, state) = app_with(None, |c| c.retained_events = 4);
    let hub: &Arc<EventHub> = &state.hub;
    let ids: Vec<u64> = (0..6)
        .map(|i| hub.publish("counts", format!("{{\"n\":{i}}}")))
        .collect();
    let stream = |last: Option<u64>| {
        let mut req = request(Method::GET, "/api/v1/stream", Some(&fixture().read), None);
        if let Some(l) = last {
            req.headers_mut()
                .insert("last-event-id", l.to_string().parse().unwrap());
        }
        req
    };
    // Seen up to ids[3]: gets ids[4], ids[5], then a live one.
    let res = app.clone().oneshot(stream(Some(ids[3]))).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()[header::CONTENT_TYPE], "text/event-stream");
    let live = {
        let hub = hub.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            hub.publish("alert", "{\"id\":\"abc\"}".into())
        })
    };
    let got = read_events(res.into_body(), 3).await;
    let live_id = live.await.unwrap();
    assert_eq!(
        got,
        vec![
            (Some(ids[4].to_string()), "counts".into(), "{\"n\":4}".into()),
            (Some(ids[5].to_string()), "counts".into(), "{\"n\":5}".into()),
            (Some(live_id.to_string()), "alert".into(), "{\"id\":\"abc\"}".into()),
        ]
    );
    // Seen only ids[0]; ids[1] and ids[2] were dropped (4 retained): a
    // reset first, then the 4 retained events.
    let res = app.clone().oneshot(stream(Some(ids[0]))).await.unwrap();
    let got = read_events(res.into_body(), 5).await;
    assert_eq!(got[0].0, None);
    assert_eq!(got[0].1, "reset");
    let resumed: Vec<String> = got[1..].iter().map(|e| e.0.clone().unwrap()).collect();
    let expected: Vec<String> = [ids[4], ids[5], live_id].iter().map(|i| i.to_string()).collect();
    assert_eq!(&resumed[1..], &expected[..]);
    assert_eq!(resumed[0], ids[3].to_string());
}

#[tokio::test]
async fn a_new_stream_client_starts_with_the_latest_health_then_live_events() {
    let (app, state) = app_with(None, |_| {});
    state.hub.publish("health", "{\"run\":\"absent\"}".into());
    state.hub.publish("counts", "{\"old\":true}".into());
    let res = app
        .clone()
        .oneshot(request(Method::GET, "/api/v1/stream", Some(&fixture().read), None))
        .await
        .unwrap();
    let hub = state.hub.clone();
    let live = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        hub.publish("counts", "{\"new\":true}".into())
    });
    let got = read_events(res.into_body(), 2).await;
    let live_id = live.await.unwrap();
    assert_eq!(got[0].1, "health");
    assert_eq!(
        got[1],
        (Some(live_id.to_string()), "counts".into(), "{\"new\":true}".into())
    );
}

#[tokio::test]
async fn the_poller_publishes_new_alerts_and_counts() {
    let f = fixture();
    let tmp = tempfile::tempdir().unwrap();
    std::fs::copy(Store::db_path(&f.data()), tmp.path().join("tidewatch.db")).unwrap();
    let state = AppState::new(ServerConfig::new(
        tmp.path().to_path_buf(),
        "127.0.0.1:0".parse().unwrap(),
    ));
    let mut poller = tidewatch_server::poll::Poller::default();
    poller.poll(&state);
    let before = state.hub.newest_id();
    // The first look reports health only: what was stored is not news.
    let first: Vec<String> = state.hub.since(0).events.into_iter().map(|e| e.kind).collect();
    assert_eq!(first, vec!["health"]);

    // A commit with a new alert and new counts.
    let mut db = tidewatch_store::db::Db::open(&tmp.path().join("tidewatch.db")).unwrap();
    let seq = db.commit_seq().unwrap() + 1;
    let record = serde_json::json!({"id": "00000000000000ff", "kind": "opened", "feed_name": "quakes"}).to_string();
    let minute = 29_541_610_i64; // 2026-03-03T00:10Z in unix minutes, after the fixture's day
    let mut delta = tidewatch_store::db::CommitDelta::default();
    delta.alerts.push(tidewatch_store::db::AlertRow {
        id: "00000000000000ff".into(),
        kind: "opened".into(),
        feed: "quakes".into(),
        onset_ms: minute * 60_000,
        record: record.clone(),
    });
    delta.feed_minutes.insert(
        (0, minute),
        tidewatch_store::db::MinuteCounts {
            posts: 7,
            ..Default::default()
        },
    );
    db.commit(seq, &delta).unwrap();
    poller.poll(&state);
    let new = state.hub.since(before).events;
    let kinds: Vec<&str> = new.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, vec!["alert", "counts"]);
    assert_eq!(new[0].data, record);
    let counts: Value = serde_json::from_str(&new[1].data).unwrap();
    assert_eq!(counts["counts"][0]["feed"], "quakes");
    assert_eq!(counts["counts"][0]["posts"], 7);
    assert_eq!(counts["counts"][0]["minute"], "2026-03-03T00:10:00Z");
    // Nothing changed: nothing new.
    poller.poll(&state);
    assert_eq!(state.hub.since(before).events.len(), 2);
}

/// The paths of a router, from its debug form (axum lists them there).
fn router_paths<S>(router: &Router<S>) -> BTreeSet<String> {
    let debug = format!("{router:?}");
    debug
        .split('"')
        .filter(|s| s.starts_with("/api/"))
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn the_openapi_document_describes_exactly_the_routes() {
    let (app, _) = app_with(None, |c| c.anonymous_read = true);
    let doc = tidewatch_server::api::openapi();
    let json = doc.to_pretty_json().unwrap();
    let spec = oas3::from_json(&json).expect("an OpenAPI 3 document");
    assert!(spec.openapi.starts_with("3."));

    // Served, and the same as generated.
    let (s, _, body) = send(&app, request(Method::GET, "/api/v1/openapi.json", None, None)).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        serde_json::from_slice::<Value>(&body).unwrap(),
        serde_json::from_str::<Value>(&json).unwrap()
    );

    // The same paths as the router (the API part of the app).
    let (api, _) = tidewatch_server::api::documented().split_for_parts();
    let routed = router_paths(&api);
    let documented: BTreeSet<String> = doc.paths.paths.keys().cloned().collect();
    assert_eq!(routed, documented);
    assert!(documented.len() >= 14, "{documented:?}");

    // Each documented method is routed; every other method is not.
    let all = [Method::GET, Method::POST, Method::PUT, Method::DELETE, Method::PATCH];
    for (path, item) in &doc.paths.paths {
        let uri = path.replace("{name}", "quakes");
        let ops = [
            (Method::GET, item.get.is_some()),
            (Method::POST, item.post.is_some()),
            (Method::PUT, item.put.is_some()),
            (Method::DELETE, item.delete.is_some()),
            (Method::PATCH, item.patch.is_some()),
        ];
        for m in &all {
            let documented = ops.iter().any(|(om, on)| om == m && *on);
            if m == Method::GET && uri.ends_with("/stream") {
                continue; // an endless body: routed, checked in its own test
            }
            let (s, _, _) = send(&app, request(m.clone(), &uri, Some(&fixture().admin), None)).await;
            if documented {
                assert_ne!(s, StatusCode::NOT_FOUND, "{m} {uri}");
                assert_ne!(s, StatusCode::METHOD_NOT_ALLOWED, "{m} {uri}");
            } else {
                assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED, "{m} {uri} is not documented");
            }
        }
    }
}

#[tokio::test]
async fn stopping_the_server_ends_open_streams() {
    let f = fixture();
    let state = AppState::new(ServerConfig::new(f.data(), "127.0.0.1:0".parse().unwrap()));
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (addr_tx, addr_rx) = tokio::sync::oneshot::channel();
    let server = tokio::spawn(tidewatch_server::serve(
        state,
        async move {
            let _ = stop_rx.await;
        },
        move |addr| {
            let _ = addr_tx.send(addr);
        },
    ));
    let addr = addr_rx.await.unwrap();
    // A raw HTTP/1.1 client holding the stream open.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "GET /api/v1/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\r\n",
        f.read
    );
    conn.write_all(req.as_bytes()).await.unwrap();
    let mut head = [0u8; 64];
    let n = conn.read(&mut head).await.unwrap();
    assert!(String::from_utf8_lossy(&head[..n]).starts_with("HTTP/1.1 200"));
    stop_tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("the server stops although a client is still connected")
        .unwrap()
        .unwrap();
}
