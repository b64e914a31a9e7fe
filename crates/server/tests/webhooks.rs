//! Webhooks end to end: a data directory whose store gains alert events
//! (written through the store's own commit, as a run writes them), the
//! deliverer following it, and local receivers on 127.0.0.1 that answer
//! as each test needs: retried until delivered with valid signatures and
//! the exact stored body; given up after the bound and shown failed in
//! the API; a per-feed webhook gets only its feed; a restart neither
//! re-sends nor loses; the API's roles; signature verification.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, Method, Request, StatusCode, Uri};
use axum::Router;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tidewatch_core::spike::{Spike, SpikeId};
use tidewatch_core::Timestamp;
use tidewatch_engine::alerts::{alert_id, AlertRecord};
use tidewatch_server::tokens::{create_token, Role};
use tidewatch_server::webhooks::{self, DeliveryOptions, DeliveryStatus, WebhookStore};
use tidewatch_server::{app, AppState, ServerConfig};
use tidewatch_store::db::{AlertRow, CommitDelta, Db, FeedRow};
use tidewatch_store::Store;
use tower::ServiceExt;

/// How far a receiver lets a signature's time be from its clock.
const TOLERANCE: Duration = Duration::from_secs(300);

/// A data directory with two feeds, no alerts yet, and two tokens.
struct Data {
    _dir: tempfile::TempDir,
    path: PathBuf,
    read: String,
    admin: String,
    seq: u64,
    app: Router,
}

impl Data {
    fn new() -> Data {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data");
        std::fs::create_dir_all(&path).unwrap();
        new_store(&path);
        let (read, _) = create_token(&path, Role::Read).unwrap();
        let (admin, _) = create_token(&path, Role::Admin).unwrap();
        let mut config = ServerConfig::new(path.clone(), "127.0.0.1:0".parse().unwrap());
        config.poll_interval = None;
        // The receivers of these tests listen on the loopback interface.
        config.allow_private_webhooks = true;
        let app = app(AppState::new(config));
        Data {
            _dir: dir,
            path,
            read,
            admin,
            seq: 1,
            app,
        }
    }

    /// Deletes the store and makes a new one, as `tidewatch demo --data`
    /// does before each demo.
    fn replace_store(&mut self) {
        for name in ["tidewatch.db", "tidewatch.db-wal", "tidewatch.db-shm"] {
            let _ = std::fs::remove_file(self.path.join(name));
        }
        new_store(&self.path);
        self.seq = 1;
    }

    /// Records alert event `kind` of a spike of `feed` starting at minute
    /// `onset_min`, as a run's store commit does; returns its stored JSON.
    fn alert(&mut self, feed: &str, onset_min: i64, kind: &str) -> String {
        let onset = Timestamp(1_764_201_600_000 + onset_min * Timestamp::MINUTE);
        let closed = kind == "closed";
        let rec = AlertRecord {
            id: alert_id(feed, onset),
            kind: kind.into(),
            feed_name: feed.into(),
            spike: Spike {
                id: SpikeId(onset_min as u64),
                feed: if feed == "quakes" { 1 } else { 2 },
                onset,
                detected_at: Timestamp(onset.0 + 2 * Timestamp::MINUTE),
                peak: Timestamp(onset.0 + 3 * Timestamp::MINUTE),
                peak_count: 120,
                peak_expected: 10.0,
                end: closed.then_some(Timestamp(onset.0 + 9 * Timestamp::MINUTE)),
                magnitude: 12.0,
                log10_p: -30.5,
                posts: 400,
                expected_posts: 60.0,
            },
            why: Vec::new(),
            near_duplicate_share: None,
        };
        let record = serde_json::to_string(&rec).unwrap();
        self.seq += 1;
        let delta = CommitDelta {
            alerts: vec![AlertRow {
                id: rec.id.clone(),
                kind: kind.into(),
                feed: feed.into(),
                onset_ms: onset.0,
                record: record.clone(),
            }],
            ..Default::default()
        };
        Db::open(&Store::db_path(&self.path))
            .unwrap()
            .commit(self.seq, &delta)
            .unwrap();
        record
    }

    async fn call(&self, method: Method, uri: &str, token: Option<&str>, body: Option<Value>) -> (StatusCode, Value) {
        let mut b = Request::builder().method(method).uri(uri);
        if let Some(t) = token {
            b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let req = match body {
            Some(v) => b
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(v.to_string()))
                .unwrap(),
            None => b.body(Body::empty()).unwrap(),
        };
        let res = self.app.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        let v = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
        (status, v)
    }

    /// Creates a webhook as admin; returns (id, secret).
    async fn create(&self, url: &str, feed: Option<&str>) -> (i64, String) {
        let (s, v) = self
            .call(
                Method::POST,
                "/api/v1/webhooks",
                Some(&self.admin),
                Some(json!({ "url": url, "feed": feed })),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        (v["id"].as_i64().unwrap(), v["secret"].as_str().unwrap().to_string())
    }

    async fn deliveries(&self, hook: i64, status: Option<&str>) -> Vec<Value> {
        let uri = match status {
            Some(s) => format!("/api/v1/webhooks/{hook}/deliveries?status={s}"),
            None => format!("/api/v1/webhooks/{hook}/deliveries"),
        };
        let (s, v) = self.call(Method::GET, &uri, Some(&self.read), None).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v.as_array().unwrap().clone()
    }

    /// Starts a deliverer and waits for its first look at the store (what
    /// the store holds then is history, never sent).
    async fn deliverer(&self, options: DeliveryOptions) -> Deliverer {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(webhooks::run(self.path.clone(), options, async move {
            let _ = rx.await;
        }));
        let path = self.path.clone();
        wait_for("the deliverer's first look", || {
            WebhookStore::open(&path)
                .unwrap()
                .alerts_commit_seq()
                .unwrap()
                .is_some()
        })
        .await;
        Deliverer { stop: tx, task }
    }
}

/// A store with two feeds and no alerts, at commit 1.
fn new_store(data: &Path) {
    let mut db = Db::open(&Store::db_path(data)).unwrap();
    let feed = |id, name: &str, query: &str| FeedRow {
        id,
        name: name.into(),
        query: query.into(),
        active: true,
    };
    let delta = CommitDelta {
        feeds: Some(vec![feed(1, "quakes", "earthquake"), feed(2, "tech", "gpu")]),
        ..Default::default()
    };
    db.commit(1, &delta).unwrap();
}

struct Deliverer {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), webhooks::WebhookError>>,
}

impl Deliverer {
    async fn stop(self) {
        self.stop.send(()).unwrap();
        self.task.await.unwrap().unwrap();
    }
}

/// Options at millisecond scale.
fn fast(max_attempts: u32) -> DeliveryOptions {
    DeliveryOptions {
        poll_every: Duration::from_millis(20),
        base: Duration::from_millis(20),
        factor: 2.0,
        max_attempts,
        cap: Duration::from_millis(60),
        timeout: Duration::from_secs(5),
        lease: Duration::from_secs(10),
        max_in_flight: 4,
        drain: Duration::ZERO,
        allow_private: true,
    }
}

async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..1000 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

/// One request a receiver got, and what it answered.
#[derive(Clone, Debug)]
struct Got {
    path: String,
    delivery: String,
    event: String,
    signature: String,
    body: Bytes,
    answered: StatusCode,
}

type Policy = Arc<dyn Fn(&Got, usize) -> StatusCode + Send + Sync>;

/// A local HTTP receiver; `policy` answers each request given how many
/// requests of the same delivery came before it.
#[derive(Clone)]
struct Receiver {
    got: Arc<Mutex<Vec<Got>>>,
    policy: Policy,
    addr: SocketAddr,
}

impl Receiver {
    async fn start(policy: impl Fn(&Got, usize) -> StatusCode + Send + Sync + 'static) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let r = Receiver {
            got: Arc::default(),
            policy: Arc::new(policy),
            addr: listener.local_addr().unwrap(),
        };
        let router = Router::new().fallback(receive).with_state(r.clone());
        tokio::spawn(async move { axum::serve(listener, router).await });
        r
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn got(&self) -> Vec<Got> {
        self.got.lock().unwrap().clone()
    }

    /// The bodies received, in order.
    fn bodies(&self) -> Vec<String> {
        self.got()
            .iter()
            .map(|g| String::from_utf8(g.body.to_vec()).unwrap())
            .collect()
    }

    fn answered_ok(&self) -> usize {
        self.got().iter().filter(|g| g.answered.is_success()).count()
    }
}

async fn receive(State(r): State<Receiver>, uri: Uri, headers: HeaderMap, body: Bytes) -> StatusCode {
    let h = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let mut got = Got {
        path: uri.path().to_string(),
        delivery: h("tidewatch-delivery"),
        event: h("tidewatch-event"),
        signature: h("tidewatch-signature"),
        body,
        answered: StatusCode::OK,
    };
    let mut all = r.got.lock().unwrap();
    let before = all.iter().filter(|g| g.delivery == got.delivery).count();
    got.answered = (r.policy)(&got, before);
    all.push(got.clone());
    got.answered
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_twice_then_delivered_with_valid_signatures_and_the_exact_body() {
    let mut data = Data::new();
    let receiver = Receiver::start(|_, before| {
        if before < 2 {
            StatusCode::INTERNAL_SERVER_ERROR
        } else {
            StatusCode::OK
        }
    })
    .await;
    let (hook, secret) = data.create(&receiver.url("/hook"), None).await;
    let deliverer = data.deliverer(fast(8)).await;

    let record = data.alert("quakes", 0, "opened");
    wait_for("the delivery", || receiver.answered_ok() == 1).await;
    // Nothing more arrives: settle, then count.
    tokio::time::sleep(Duration::from_millis(200)).await;
    deliverer.stop().await;

    let got = receiver.got();
    assert_eq!(got.len(), 3);
    let answered: Vec<u16> = got.iter().map(|g| g.answered.as_u16()).collect();
    assert_eq!(answered, [500, 500, 200]);
    for g in &got {
        assert_eq!(g.body.as_ref(), record.as_bytes());
        assert_eq!(g.event, "alert.opened");
        assert_eq!(g.delivery, got[0].delivery);
        assert!(
            webhooks::verify(&secret, &g.signature, &g.body, unix_now(), TOLERANCE),
            "{}",
            g.signature
        );
        assert!(!webhooks::verify(
            "whsec_wrong",
            &g.signature,
            &g.body,
            unix_now(),
            TOLERANCE
        ));
    }

    let list = data.deliveries(hook, None).await;
    assert_eq!(list.len(), 1);
    let d = &list[0];
    assert_eq!(d["id"].to_string(), got[0].delivery);
    assert_eq!(d["status"], "delivered");
    assert_eq!(d["attempts"], 3);
    assert_eq!(d["last_status"], 200);
    assert_eq!(d["last_error"], Value::Null);
    assert_eq!(d["next_attempt_at"], Value::Null);
    assert!(d["delivered_at"].is_string());
    assert_eq!(d["alert_kind"], "opened");
    assert_eq!(d["feed"], "quakes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_always_failing_receiver_ends_failed_after_the_bound() {
    let mut data = Data::new();
    let receiver = Receiver::start(|_, _| StatusCode::SERVICE_UNAVAILABLE).await;
    let (hook, _) = data.create(&receiver.url("/down"), Some("tech")).await;
    let deliverer = data.deliverer(fast(4)).await;
    data.alert("tech", 5, "opened");

    let path = data.path.clone();
    wait_for("the delivery to fail", || {
        let s = WebhookStore::open(&path).unwrap();
        s.deliveries(hook, Some(webhooks::DeliveryStatus::Failed), 10)
            .unwrap()
            .len()
            == 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    deliverer.stop().await;

    assert_eq!(receiver.got().len(), 4);
    assert!(data.deliveries(hook, Some("pending")).await.is_empty());
    assert!(data.deliveries(hook, Some("delivered")).await.is_empty());
    let failed = data.deliveries(hook, Some("failed")).await;
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["attempts"], 4);
    assert_eq!(failed[0]["last_status"], 503);
    assert_eq!(failed[0]["last_error"], "answered 503 Service Unavailable");
    assert_eq!(failed[0]["delivered_at"], Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feed_webhook_receives_only_its_feeds_alerts() {
    let mut data = Data::new();
    let receiver = Receiver::start(|_, _| StatusCode::NO_CONTENT).await;
    let (all, _) = data.create(&receiver.url("/all"), None).await;
    let (quakes, _) = data.create(&receiver.url("/quakes"), Some("quakes")).await;
    let deliverer = data.deliverer(fast(8)).await;

    let q_open = data.alert("quakes", 10, "opened");
    let t_open = data.alert("tech", 11, "opened");
    let q_close = data.alert("quakes", 10, "closed");
    wait_for("five deliveries", || receiver.answered_ok() == 5).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    deliverer.stop().await;

    let mut by_path: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for g in receiver.got() {
        by_path
            .entry(g.path)
            .or_default()
            .push(String::from_utf8(g.body.to_vec()).unwrap());
    }
    for bodies in by_path.values_mut() {
        bodies.sort();
    }
    let mut expect_all = vec![q_open.clone(), t_open, q_close.clone()];
    expect_all.sort();
    let mut expect_quakes = vec![q_open, q_close];
    expect_quakes.sort();
    assert_eq!(by_path.len(), 2);
    assert_eq!(by_path["/all"], expect_all);
    assert_eq!(by_path["/quakes"], expect_quakes);
    assert_eq!(data.deliveries(all, Some("delivered")).await.len(), 3);
    assert_eq!(data.deliveries(quakes, Some("delivered")).await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_neither_resends_nor_loses() {
    let mut data = Data::new();
    let down = Arc::new(AtomicBool::new(false));
    let d = down.clone();
    let receiver = Receiver::start(move |_, _| {
        if d.load(Ordering::SeqCst) {
            StatusCode::INTERNAL_SERVER_ERROR
        } else {
            StatusCode::OK
        }
    })
    .await;
    let (hook, _) = data.create(&receiver.url("/hook"), None).await;
    // A retry waits at least half a second: long enough to stop between
    // two attempts.
    let options = DeliveryOptions {
        base: Duration::from_secs(1),
        cap: Duration::from_secs(1),
        ..fast(10)
    };

    let first = data.deliverer(options).await;
    let a1 = data.alert("quakes", 20, "opened");
    wait_for("the first alert", || receiver.answered_ok() == 1).await;
    // The receiver goes down: the second alert's first attempt fails.
    down.store(true, Ordering::SeqCst);
    let a2 = data.alert("tech", 21, "opened");
    let path = data.path.clone();
    wait_for("a failed attempt", || {
        let s = WebhookStore::open(&path).unwrap();
        s.deliveries(hook, Some(webhooks::DeliveryStatus::Pending), 10)
            .unwrap()
            .first()
            .is_some_and(|d| d.attempts == 1)
    })
    .await;
    first.stop().await;

    // While no deliverer runs: another alert, and the receiver recovers.
    let a3 = data.alert("quakes", 20, "closed");
    down.store(false, Ordering::SeqCst);
    let second = data.deliverer(options).await;
    wait_for("all three delivered", || receiver.answered_ok() == 3).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    second.stop().await;

    let mut requests: BTreeMap<String, Vec<u16>> = BTreeMap::new();
    for g in receiver.got() {
        requests
            .entry(String::from_utf8(g.body.to_vec()).unwrap())
            .or_default()
            .push(g.answered.as_u16());
    }
    assert_eq!(requests.len(), 3);
    assert_eq!(requests[&a1], [200]);
    assert_eq!(requests[&a2], [500, 200]);
    assert_eq!(requests[&a3], [200]);
    let mut attempts: Vec<(String, i64)> = data
        .deliveries(hook, Some("delivered"))
        .await
        .iter()
        .map(|d| {
            (
                d["alert_kind"].as_str().unwrap().to_string(),
                d["attempts"].as_i64().unwrap(),
            )
        })
        .collect();
    attempts.sort();
    assert_eq!(
        attempts,
        [
            ("closed".to_string(), 1),
            ("opened".to_string(), 1),
            ("opened".to_string(), 2)
        ]
    );
}

#[tokio::test]
async fn history_before_the_first_look_is_not_sent() {
    let mut data = Data::new();
    data.alert("quakes", 30, "opened");
    let receiver = Receiver::start(|_, _| StatusCode::OK).await;
    let (hook, _) = data.create(&receiver.url("/hook"), None).await;
    let deliverer = data.deliverer(fast(3)).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    deliverer.stop().await;
    assert!(receiver.got().is_empty());
    assert!(data.deliveries(hook, None).await.is_empty());
}

#[tokio::test]
async fn the_api_checks_roles_urls_and_feeds() {
    let data = Data::new();
    let body = json!({ "url": "https://example.invalid/hook" });
    let post = |token: Option<String>, body: Value| {
        let data = &data;
        async move {
            data.call(Method::POST, "/api/v1/webhooks", token.as_deref(), Some(body))
                .await
        }
    };
    assert_eq!(post(None, body.clone()).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        post(Some(data.read.clone()), body.clone()).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        post(Some("tw_unknown".into()), body.clone()).await.0,
        StatusCode::UNAUTHORIZED
    );
    for bad in [
        json!({ "url": "ftp://example.invalid/hook" }),
        json!({ "url": "not a url" }),
        json!({ "url": "https://example.invalid/hook", "feed": "no-such-feed" }),
    ] {
        let (s, v) = post(Some(data.admin.clone()), bad.clone()).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}: {v}");
        assert_eq!(v["status"], 400);
    }

    let (s, created) = post(
        Some(data.admin.clone()),
        json!({ "url": "https://example.invalid/q", "feed": "quakes" }),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(created["url"], "https://example.invalid/q");
    assert_eq!(created["feed"], "quakes");
    let secret = created["secret"].as_str().unwrap();
    assert!(secret.starts_with("whsec_") && secret.len() == 6 + 64, "{secret}");
    let id = created["id"].as_i64().unwrap();

    // Lists need a token, and never show the secret.
    let (s, _) = data.call(Method::GET, "/api/v1/webhooks", None, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, list) = data.call(Method::GET, "/api/v1/webhooks", Some(&data.read), None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["id"], id);
    assert_eq!(list[0]["feed"], "quakes");
    assert!(list[0].get("secret").is_none());
    assert!(!list.to_string().contains(secret));

    let deliveries = format!("/api/v1/webhooks/{id}/deliveries");
    let (s, v) = data.call(Method::GET, &deliveries, Some(&data.read), None).await;
    assert_eq!((s, v), (StatusCode::OK, json!([])));
    let (s, _) = data
        .call(
            Method::GET,
            &format!("{deliveries}?status=lost"),
            Some(&data.read),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = data
        .call(Method::GET, "/api/v1/webhooks/999/deliveries", Some(&data.read), None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    let hook = format!("/api/v1/webhooks/{id}");
    assert_eq!(
        data.call(Method::DELETE, &hook, Some(&data.read), None).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        data.call(Method::DELETE, &hook, Some(&data.admin), None).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        data.call(Method::DELETE, &hook, Some(&data.admin), None).await.0,
        StatusCode::NOT_FOUND
    );
    let (_, list) = data.call(Method::GET, "/api/v1/webhooks", Some(&data.read), None).await;
    assert_eq!(list, json!([]));

    // The secrets' file is its owner's only.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(WebhookStore::path(&data.path))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[test]
fn verify_rejects_a_tampered_body_and_an_old_timestamp() {
    let secret = "whsec_0123";
    let body = br#"{"id":"abc","kind":"opened","feed_name":"quakes"}"#;
    let now = unix_now();
    let header = webhooks::sign(secret, now, body);
    assert!(webhooks::verify(secret, &header, body, now, TOLERANCE));
    assert!(!webhooks::verify(
        secret,
        &header,
        br#"{"id":"abc","kind":"closed","feed_name":"quakes"}"#,
        now,
        TOLERANCE
    ));
    let old = webhooks::sign(secret, now - 301, body);
    assert!(!webhooks::verify(secret, &old, body, now, TOLERANCE));
    assert!(webhooks::verify(secret, &old, body, now - 1, TOLERANCE));
}

/// `serve` delivers by itself, with the default options (private
/// receivers allowed, as these tests' are on the loopback interface).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_delivers_webhooks() {
    let mut data = Data::new();
    let receiver = Receiver::start(|_, _| StatusCode::OK).await;
    let (hook, secret) = data.create(&receiver.url("/hook"), Some("quakes")).await;
    let mut config = ServerConfig::new(data.path.clone(), "127.0.0.1:0".parse().unwrap());
    config.allow_private_webhooks = true;
    let state = AppState::new(config);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(tidewatch_server::serve(
        state,
        async move {
            let _ = stop_rx.await;
        },
        |_| {},
    ));
    let path = data.path.clone();
    wait_for("the first look", || {
        WebhookStore::open(&path)
            .unwrap()
            .alerts_commit_seq()
            .unwrap()
            .is_some()
    })
    .await;
    let record = data.alert("quakes", 40, "opened");
    wait_for("the delivery", || receiver.answered_ok() == 1).await;
    stop_tx.send(()).unwrap();
    server.await.unwrap().unwrap();

    let got = receiver.got();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body.as_ref(), record.as_bytes());
    assert!(webhooks::verify(
        &secret,
        &got[0].signature,
        &got[0].body,
        unix_now(),
        TOLERANCE
    ));
    assert_eq!(data.deliveries(hook, Some("delivered")).await.len(), 1);
    assert_files_private(&data.path);
}

fn assert_files_private(data: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for name in ["webhooks.db", "webhooks.db-wal"] {
            let p = data.join(name);
            if p.exists() {
                assert_eq!(
                    std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
                    0o600,
                    "{name}"
                );
            }
        }
    }
}

#[test]
fn the_openapi_document_has_the_webhook_routes_and_schemas() {
    let doc = serde_json::to_value(tidewatch_server::api::openapi()).unwrap();
    let paths = &doc["paths"];
    assert!(paths["/api/v1/webhooks"]["get"].is_object());
    assert!(paths["/api/v1/webhooks"]["post"].is_object());
    assert!(paths["/api/v1/webhooks/{id}"]["delete"].is_object());
    assert!(paths["/api/v1/webhooks/{id}/deliveries"]["get"].is_object());
    for schema in ["Webhook", "NewWebhook", "CreatedWebhook", "Delivery", "DeliveryStatus"] {
        assert!(doc["components"]["schemas"][schema].is_object(), "{schema}");
    }
    // The list's schema has no secret; only the create answer has one.
    assert!(doc["components"]["schemas"]["Webhook"]["properties"]["secret"].is_null());
    assert!(doc["components"]["schemas"]["CreatedWebhook"]["properties"]["secret"].is_object());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_deliverers_on_one_data_dir_send_each_delivery_once() {
    let mut data = Data::new();
    let receiver = Receiver::start(|_, _| StatusCode::OK).await;
    data.create(&receiver.url("/hook"), None).await;
    let a = data.deliverer(fast(8)).await;
    let b = data.deliverer(fast(8)).await;
    for minute in 0..20 {
        data.alert(if minute % 2 == 0 { "quakes" } else { "tech" }, 100 + minute, "opened");
    }
    wait_for("twenty deliveries", || receiver.answered_ok() == 20).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    a.stop().await;
    b.stop().await;
    let got = receiver.got();
    assert_eq!(got.len(), 20);
    let ids: std::collections::BTreeSet<&str> = got.iter().map(|g| g.delivery.as_str()).collect();
    assert_eq!(ids.len(), 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_made_afresh_is_followed_without_resending() {
    let mut data = Data::new();
    let receiver = Receiver::start(|_, _| StatusCode::OK).await;
    data.create(&receiver.url("/hook"), None).await;
    let deliverer = data.deliverer(fast(8)).await;
    let before = data.alert("quakes", 200, "opened");
    wait_for("the first delivery", || receiver.answered_ok() == 1).await;

    // The store is replaced: the same spike again (same id) and a new one.
    data.replace_store();
    data.alert("quakes", 200, "opened");
    let after = data.alert("tech", 201, "opened");
    wait_for("the new store's alert", || receiver.answered_ok() == 2).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    deliverer.stop().await;

    assert_eq!(receiver.bodies(), [before, after]);
}

/// A deliverer told to stop right after a commit sends that commit's
/// alerts when it drains (what `tidewatch run` does at its end), and
/// leaves them pending when it does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn draining_sends_the_last_commits_alerts_before_stopping() {
    for drain in [Duration::ZERO, Duration::from_secs(10)] {
        let mut data = Data::new();
        let receiver = Receiver::start(|_, _| StatusCode::OK).await;
        let (hook, _) = data.create(&receiver.url("/all"), None).await;
        // No second look at the store while the test runs: only the
        // drain can find the alert.
        let options = DeliveryOptions {
            poll_every: Duration::from_secs(3600),
            drain,
            ..fast(8)
        };
        let deliverer = data.deliverer(options).await;
        let opened = data.alert("quakes", 10, "opened");
        deliverer.stop().await;
        let bodies = receiver.bodies();
        if drain.is_zero() {
            assert!(bodies.is_empty(), "{bodies:?}");
            assert!(data.deliveries(hook, Some("delivered")).await.is_empty());
        } else {
            assert_eq!(bodies, vec![opened]);
            assert_eq!(data.deliveries(hook, Some("delivered")).await.len(), 1);
        }
    }
}

/// By default a webhook never reaches a loopback or private address: the
/// API refuses to register one, and a deliverer refuses to send to one
/// that is registered (here written to the webhooks file directly) or to a
/// name that resolves only to such addresses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_addresses_are_refused_unless_allowed() {
    let mut data = Data::new();
    let receiver = Receiver::start(|_, _| StatusCode::OK).await;
    let mut config = ServerConfig::new(data.path.clone(), "127.0.0.1:0".parse().unwrap());
    config.poll_interval = None;
    let strict = app(AppState::new(config));
    let loose = std::mem::replace(&mut data.app, strict);
    let (status, problem) = data
        .call(
            Method::POST,
            "/api/v1/webhooks",
            Some(&data.admin),
            Some(json!({ "url": receiver.url("/hook") })),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    assert!(problem.to_string().contains("not a public address"), "{problem}");
    data.app = loose;

    let store = WebhookStore::open(&data.path).unwrap();
    let (by_ip, _) = store.create(&receiver.url("/hook"), None, Timestamp(0)).unwrap();
    let by_name = format!("http://localhost:{}/hook", receiver.addr.port());
    let (by_name, _) = store.create(&by_name, None, Timestamp(0)).unwrap();
    drop(store);
    let options = DeliveryOptions {
        allow_private: false,
        ..fast(1)
    };
    let deliverer = data.deliverer(options).await;
    data.alert("quakes", 10, "opened");
    wait_for("both deliveries to fail", || {
        let store = WebhookStore::open(&data.path).unwrap();
        [by_ip.id, by_name.id]
            .iter()
            .all(|&h| store.deliveries(h, Some(DeliveryStatus::Failed), 10).unwrap().len() == 1)
    })
    .await;
    deliverer.stop().await;
    assert!(receiver.got().is_empty(), "nothing reached the receiver");
    let failed = data.deliveries(by_ip.id, Some("failed")).await;
    assert!(failed[0].to_string().contains("not a public address"), "{failed:?}");
}
