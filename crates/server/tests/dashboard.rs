//! The dashboard's pages over a small data directory made by running the
//! pipeline over a generated stream (as `tests/api.rs` does), plus one
//! post and one feed whose text and name carry `<script>`, and a
//! narrative and two coordinated groups written to the store directly.
//!
//! Checks: every page answers 200 with the element ids the browser test
//! relies on; the planted burst is a shaded spike with its reasons; a bad
//! search query shows its column; groups below k stay hidden; the login
//! cookie reads and never writes; an unauthenticated page goes to
//! `/login`; markup in data comes out escaped; and no page contains any
//! handle of the input.

mod common;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::OnceLock;
use tidewatch_core::{Post, Timestamp};
use tidewatch_engine::coordination::{GroupRecord, RecordEdge, RecordEvidence};
use tidewatch_engine::narratives::NarrativeRecord;
use tidewatch_gen::{GenConfig, Generator};
use tidewatch_server::tokens::{create_token, Role};
use tidewatch_server::{app, AppState, ServerConfig};
use tidewatch_store::db::{CommitDelta, CoordinationGroupRow, Db, NarrativeRow};
use tidewatch_store::Store;
use tower::ServiceExt;

/// A feed name that is markup.
const XSS_FEED: &str = "<script>alert(\"feed\")</script>";
/// Text of the planted post that is markup; `xsswitness` matches the feed.
const XSS_TEXT: &str = "<script>alert(\"post\")</script> xsswitness here";

fn feeds_file() -> String {
    format!(
        r#"
[[feed]]
name = "quakes"
query = 'earthquake OR aftershock OR #earthquake OR 地震'
[[feed]]
name = "tech"
query = '"open source" OR (chip NEAR/3 shortage) OR #ai OR gpu'
[[feed]]
name = '{XSS_FEED}'
query = 'xsswitness'
"#
    )
}

struct Fixture {
    data: PathBuf,
    read: String,
    admin: String,
    /// Every author handle of the input, and each one's mention part.
    handles: HashSet<String>,
    /// Pseudonyms written into the group records.
    pseudonyms: Vec<String>,
    big_group: String,
    small_group: String,
}

/// A group of `n` members with pseudonyms `prefix0..`, a ring of edges.
fn group(id: &str, n: usize, prefix: &str, t0: i64) -> (GroupRecord, CoordinationGroupRow) {
    let accounts: Vec<String> = (0..n).map(|i| format!("{prefix}{i}")).collect();
    let edges: Vec<RecordEdge> = (0..n)
        .map(|i| RecordEdge {
            a: i,
            b: (i + 1) % n,
            weights: BTreeMap::from([("co-post".to_string(), (i + 1) as u32)]),
            total: (i + 1) as u32,
        })
        .collect();
    let rec = GroupRecord {
        id: id.into(),
        epoch: 0,
        first_seen: Timestamp(t0),
        last_seen: Timestamp(t0 + 60_000),
        accounts,
        edges,
        density: 0.4,
        total_weight: 15,
        weight_by_type: BTreeMap::from([("co-post".to_string(), 15)]),
        types: vec!["co-post".into()],
        time_compression: 3.0,
        score: n as f64,
        narratives: vec!["00000000000000aa".into()],
        evidence: vec![RecordEvidence {
            kind: "co-post".into(),
            posts: [format!("{id}-post-a"), format!("{id}-post-b")],
            times: [Timestamp(t0), Timestamp(t0 + 2_000)],
        }],
    };
    let row = CoordinationGroupRow {
        id: id.into(),
        epoch: 0,
        first_seen_ms: t0,
        last_seen_ms: t0 + 60_000,
        accounts: n as i64,
        score: rec.score,
        types: "co-post".into(),
        record: serde_json::to_string(&rec).unwrap(),
    };
    (rec, row)
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("server-dashboard-fixture");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let posts = dir.join("posts.jsonl");
        let mut buf = Vec::new();
        let mut handles = HashSet::new();
        let mut planted = false;
        for post in Generator::new(&GenConfig {
            posts: 30_000,
            days: 1,
            seed: 4,
            ..Default::default()
        }) {
            if let Some(a) = &post.author {
                handles.insert(a.to_lowercase());
                handles.insert(a.split('@').next().unwrap_or(a).to_lowercase());
            }
            let t = post.created_at;
            post.write_json(&mut buf);
            // The markup post, in time order, halfway through the day.
            if !planted && t.is_some_and(|t| t.0 >= GenConfig::default().start.0 + 12 * 3_600_000) {
                planted = true;
                let xss = Post {
                    id: "t:xss-1".into(),
                    platform: "twitter".into(),
                    created_at: t,
                    author: Some("xss_author_example".into()),
                    text: XSS_TEXT.into(),
                    lang: Some("en".into()),
                    source: "test".into(),
                    ..Default::default()
                };
                handles.insert("xss_author_example".into());
                xss.write_json(&mut buf);
            }
        }
        assert!(planted);
        std::fs::write(&posts, buf).unwrap();
        common::run_pipeline(&dir, &posts, &feeds_file());

        // A narrative and two groups (6 and 5 members), written as a run
        // that detects them would.
        let t0 = GenConfig::default().start.0 + 3_600_000;
        let (big, big_row) = group("00000000000000b6", 6, "pseud_big_", t0);
        let (small, small_row) = group("00000000000000a5", 5, "pseud_small_", t0);
        let narrative = NarrativeRecord {
            id: "00000000000000aa".into(),
            posts: 40,
            reposts: 12,
            accounts: 17,
            accounts_exact: true,
            first_seen: Timestamp(t0),
            last_seen: Timestamp(t0 + 1_800_000),
            languages: vec![("en".into(), 30), ("de".into(), 10)],
            domains: vec![("news.example.org".into(), 25)],
            representative: "the harbor bridge is closing <b>tonight</b>".into(),
            recent_10m: 3,
            previous_60m: 20,
            growth: 0.9,
            feeds: vec![],
        };
        let mut db = Db::open(&Store::db_path(&dir.join("data"))).unwrap();
        let seq = db.commit_seq().unwrap();
        let delta = CommitDelta {
            coordination_groups: vec![big_row, small_row],
            narratives: vec![NarrativeRow {
                id: narrative.id.clone(),
                first_seen_ms: t0,
                last_seen_ms: t0 + 1_800_000,
                posts: 40,
                accounts: 17,
                growth: 0.9,
                representative: narrative.representative.clone(),
                record: serde_json::to_string(&narrative).unwrap(),
            }],
            ..Default::default()
        };
        db.commit(seq, &delta).unwrap();
        drop(db);

        let (read, _) = create_token(&dir.join("data"), Role::Read).unwrap();
        let (admin, _) = create_token(&dir.join("data"), Role::Admin).unwrap();
        let pseudonyms = big.accounts.iter().chain(&small.accounts).cloned().collect();
        Fixture {
            data: dir.join("data"),
            read,
            admin,
            handles,
            pseudonyms,
            big_group: big.id,
            small_group: small.id,
        }
    })
}

fn app_with(tweak: impl FnOnce(&mut ServerConfig)) -> Router {
    let mut config = ServerConfig::new(fixture().data.clone(), "127.0.0.1:0".parse().unwrap());
    tweak(&mut config);
    app(AppState::new(config))
}

struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

async fn send(app: &Router, req: Request<Body>) -> Answer {
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let body = res.into_body().collect().await.unwrap().to_bytes().to_vec();
    Answer {
        status,
        headers,
        body: String::from_utf8(body).unwrap(),
    }
}

fn get(uri: &str, token: Option<&str>) -> Request<Body> {
    let mut b = Request::builder().method(Method::GET).uri(uri);
    if let Some(t) = token {
        b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    b.body(Body::empty()).unwrap()
}

/// A page read with the read token: 200 and HTML.
async fn page(app: &Router, uri: &str) -> String {
    let a = send(app, get(uri, Some(&fixture().read))).await;
    assert_eq!(a.status, StatusCode::OK, "{uri}: {}", a.body);
    assert_eq!(a.headers[header::CONTENT_TYPE], "text/html; charset=utf-8", "{uri}");
    a.body
}

async fn api(app: &Router, uri: &str) -> Value {
    let a = send(app, get(uri, Some(&fixture().read))).await;
    assert_eq!(a.status, StatusCode::OK, "{uri}: {}", a.body);
    serde_json::from_str(&a.body).unwrap()
}

fn encode(s: &str) -> String {
    tidewatch_server::dashboard::encode_segment(s)
}

/// The alert count per feed, from the API.
async fn alerts_by_feed(app: &Router) -> BTreeMap<String, Vec<Value>> {
    let mut by: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for a in api(app, "/api/v1/alerts").await.as_array().unwrap() {
        by.entry(a["feed_name"].as_str().unwrap().to_string())
            .or_default()
            .push(a.clone());
    }
    by
}

/// Every page of the dashboard (feed pages over all their data).
async fn every_page(app: &Router) -> Vec<(String, String)> {
    let mut uris = vec![
        "/".to_string(),
        "/feeds".into(),
        "/narratives".into(),
        "/groups".into(),
        "/search?q=earthquake".into(),
        "/search?q=%23ai%20OR%20gpu".into(),
        "/search?q=xsswitness".into(),
        "/search".into(),
    ];
    for name in ["quakes", "tech", XSS_FEED] {
        uris.push(format!("/feeds/{}", encode(name)));
        uris.push(format!("/feeds/{}?range=all", encode(name)));
    }
    uris.push(format!("/groups/{}", fixture().big_group));
    uris.push(format!("/groups/{}", fixture().small_group));
    let mut out = Vec::new();
    for uri in uris {
        let html = page(app, &uri).await;
        out.push((uri, html));
    }
    out
}

#[tokio::test]
async fn every_page_answers_with_the_ids_the_browser_test_uses() {
    let app = app_with(|_| {});
    let alerts = api(&app, "/api/v1/alerts").await;
    let alerts = alerts.as_array().unwrap();
    assert!(!alerts.is_empty(), "the planted events raise alerts");

    let home = page(&app, "/").await;
    assert!(home.contains("<title>Overview · tidewatch</title>"));
    assert!(home.contains("<ol id=\"live-alerts\""));
    assert!(home.contains("id=\"ingest-rate\""));
    assert!(home.contains("id=\"emerging-topics\""));
    assert!(home.contains("<script src=\"/assets/live.js\" defer></script>"));
    assert_eq!(home.matches("<li class=\"alert\"").count(), alerts.len().min(50));
    for a in alerts.iter().take(50) {
        let item = format!(
            "<li class=\"alert\" data-alert-id=\"{}\"><a href=\"/feeds/{}\">",
            a["id"].as_str().unwrap(),
            encode(a["feed_name"].as_str().unwrap())
        );
        assert!(home.contains(&item), "{item}");
    }
    for (href, label) in [
        ("/", "Overview"),
        ("/feeds", "Feeds"),
        ("/narratives", "Narratives"),
        ("/groups", "Coordinated groups"),
        ("/search", "Search"),
    ] {
        assert!(home.contains(&format!("<a href=\"{href}\"")), "{href}");
        assert!(home.contains(&format!(">{label}</a>")), "{label}");
    }
    assert!(home.contains("<nav aria-label=\"Main\">"));
    assert!(home.contains("<main id=\"main\">"));

    let feeds = page(&app, "/feeds").await;
    for name in ["quakes", "tech"] {
        assert!(
            feeds.contains(&format!("<a href=\"/feeds/{name}\">{name}</a>")),
            "{name}"
        );
    }
    assert_eq!(
        feeds.matches("<svg class=\"sparkline\"").count(),
        3,
        "three feeds with data"
    );

    let quakes = page(&app, "/feeds/quakes").await;
    for id in [
        "<svg id=\"volume-chart\"",
        "<ul id=\"reasons\">",
        "id=\"sentiment\"",
        "id=\"languages\"",
        "id=\"top-terms\"",
        "id=\"top-domains\"",
        "id=\"representative-posts\"",
    ] {
        assert!(quakes.contains(id), "{id}");
    }

    let narratives = page(&app, "/narratives").await;
    assert!(narratives.contains("<td class=\"num\">40</td><td class=\"num\">17</td>"));
    assert!(narratives.contains("en (30), de (10)"));
    assert!(narratives.contains("news.example.org (25)"));

    let search = page(&app, "/search?q=earthquake").await;
    let found = api(&app, "/api/v1/search?q=earthquake&limit=50").await;
    let total = found["total"].as_u64().unwrap();
    assert!(total > 0);
    assert!(search.contains("<form id=\"search-form\" action=\"/search\""));
    assert!(search.contains("<input id=\"q\" name=\"q\" type=\"search\" value=\"earthquake\""));
    assert!(search.contains("<label for=\"q\">"));
    assert!(search.contains(&format!("<p id=\"result-count\">{total} matching posts")));
    assert!(search.contains("<ol id=\"results\""));
    assert_eq!(
        search.matches("<li class=\"hit\">").count(),
        found["hits"].as_array().unwrap().len()
    );
    let empty = page(&app, "/search").await;
    assert!(empty.contains("<form id=\"search-form\""));
    assert!(!empty.contains("id=\"results\""));

    let js = send(&app, get("/assets/live.js", None)).await;
    assert_eq!(js.status, StatusCode::OK);
    assert!(js.body.contains("new EventSource(\"/api/v1/stream\")"));
}

#[tokio::test]
async fn the_feed_page_shades_each_planted_spike_and_lists_its_reasons() {
    let app = app_with(|_| {});
    let by_feed = alerts_by_feed(&app).await;
    let (name, alerts) = by_feed
        .iter()
        .find(|(n, _)| n.as_str() != XSS_FEED)
        .expect("a planted burst raised an alert");
    let html = page(&app, &format!("/feeds/{}?range=all", encode(name))).await;
    assert_eq!(html.matches("<rect class=\"spike\"").count(), alerts.len(), "{name}");
    let newest = alerts
        .iter()
        .max_by_key(|a| a["spike"]["onset"].as_str().unwrap().to_string())
        .unwrap();
    let reasons = html.split("<ul id=\"reasons\">").nth(1).unwrap();
    let reasons = &reasons[..reasons.find("</ul>").unwrap()];
    let why = newest["why"].as_array().unwrap();
    assert_eq!(reasons.matches("<li>").count(), why.len());
    if let Some(first) = why.first() {
        let key = first["key"].as_str().unwrap();
        assert!(reasons.contains(key), "{key} in {reasons}");
    }
    // Minute resolution on a short range, hour on all of a day.
    assert!(html.contains("Volume (posts per hour)"));
    let short = page(&app, &format!("/feeds/{}?range=6h", encode(name))).await;
    assert!(short.contains("Volume (posts per minute)"));
    let bad = send(&app, get("/feeds/quakes?range=1y", Some(&fixture().read))).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(
        bad.body
            .contains("range=&quot;1y&quot;: use one of 6h, 24h, 3d, 7d, all"),
        "{}",
        bad.body
    );
    let missing = send(&app, get("/feeds/nope", Some(&fixture().read))).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(missing.headers[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(missing.body.contains("no feed named &quot;nope&quot; in the database"));
}

#[tokio::test]
async fn a_bad_query_shows_the_parsers_message_with_its_column() {
    let app = app_with(|_| {});
    let problem = send(&app, get("/api/v1/search?q=earthquake%20AND", Some(&fixture().read))).await;
    let problem: Value = serde_json::from_str(&problem.body).unwrap();
    let column = problem["column"].as_u64().unwrap();
    assert_eq!(column, 15);
    let a = send(&app, get("/search?q=earthquake%20AND", Some(&fixture().read))).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.body.contains("<p id=\"query-error\" class=\"bad\" role=\"alert\">"));
    assert!(a.body.contains(&format!("at column {column}")), "{}", a.body);
    assert!(a.body.contains("value=\"earthquake AND\""), "the form keeps the query");
    let by_author = send(&app, get("/search?q=from%3Aalice_example", Some(&fixture().read))).await;
    assert_eq!(by_author.status, StatusCode::BAD_REQUEST);
    assert!(by_author.body.contains("at column 1"), "{}", by_author.body);
}

#[tokio::test]
async fn groups_below_k_are_never_shown() {
    let f = fixture();
    let app = app_with(|_| {});
    let list = page(&app, "/groups").await;
    assert!(list.contains(&format!("<a href=\"/groups/{}\">", f.big_group)));
    assert!(list.contains(&format!("<a href=\"/groups/{}\">", f.small_group)));

    let app = app_with(|c| c.k = 6);
    let list = page(&app, "/groups").await;
    assert!(list.contains(&format!("<a href=\"/groups/{}\">", f.big_group)));
    assert!(!list.contains(&f.small_group));
    let hidden = send(&app, get(&format!("/groups/{}", f.small_group), Some(&f.read))).await;
    assert_eq!(hidden.status, StatusCode::NOT_FOUND);
    assert!(!hidden.body.contains("pseud_"));
    let detail = page(&app, &format!("/groups/{}", f.big_group)).await;
    assert!(detail.contains("<svg id=\"group-network\""));
    assert_eq!(detail.matches("<g class=\"node\">").count(), 6);
    assert_eq!(detail.matches("<line class=\"edge\"").count(), 6);
    assert!(detail.contains("<title>Member 6</title>"));
    assert!(detail.contains("Members 6 and 1: 6 coincidences (co-post 6)"));
    assert!(detail.contains("<code>00000000000000b6-post-a</code>"));

    let app = app_with(|c| c.k = 7);
    assert!(page(&app, "/groups").await.contains("No coordinated group yet."));
}

fn form_post(uri: &str, body: &str) -> Request<Body> {
    Request::builder()
        .method(Method::POST)
        .uri(uri)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(body.to_string()))
        .unwrap()
}

#[tokio::test]
async fn the_login_cookie_reads_and_never_writes() {
    let f = fixture();
    let app = app_with(|_| {});
    let form = send(&app, get("/login", None)).await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.body.contains("<label for=\"token\">Token</label>"));

    let wrong = send(&app, form_post("/login", "token=tw_0000")).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.headers.get(header::SET_COOKIE).is_none());
    assert!(wrong.body.contains("Unknown token."));

    // Even an admin token's cookie only reads.
    let ok = send(&app, form_post("/login", &format!("token={}", f.admin))).await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
    assert_eq!(ok.headers[header::LOCATION], "/");
    let cookie = ok.headers[header::SET_COOKIE].to_str().unwrap().to_string();
    assert_eq!(
        cookie,
        format!("tidewatch_token={}; Path=/; HttpOnly; SameSite=Strict", f.admin)
    );
    let with_cookie = |method: Method, uri: &str, body: Body| {
        Request::builder()
            .method(method)
            .uri(uri)
            .header(header::COOKIE, format!("theme=dark; tidewatch_token={}", f.admin))
            .header(header::CONTENT_TYPE, "application/json")
            .body(body)
            .unwrap()
    };
    let home = send(&app, with_cookie(Method::GET, "/", Body::empty())).await;
    assert_eq!(home.status, StatusCode::OK);
    let feeds = send(&app, with_cookie(Method::GET, "/api/v1/feeds", Body::empty())).await;
    assert_eq!(feeds.status, StatusCode::OK);
    let write = send(
        &app,
        with_cookie(Method::POST, "/api/v1/feeds", Body::from(r#"{"name":"x","query":"y"}"#)),
    )
    .await;
    assert_eq!(write.status, StatusCode::FORBIDDEN);
    assert!(
        write.body.contains("this needs the admin role; the token has read"),
        "{}",
        write.body
    );

    // An unknown cookie is no sign-in.
    let stale = Request::builder()
        .uri("/")
        .header(header::COOKIE, "tidewatch_token=tw_unknown")
        .body(Body::empty())
        .unwrap();
    let stale = send(&app, stale).await;
    assert_eq!(stale.status, StatusCode::SEE_OTHER);
    assert_eq!(stale.headers[header::LOCATION], "/login");
}

#[tokio::test]
async fn an_unauthenticated_page_goes_to_login_and_the_api_answers_401() {
    let app = app_with(|_| {});
    for uri in ["/", "/feeds", "/feeds/quakes", "/search?q=x", "/groups", "/narratives"] {
        let a = send(&app, get(uri, None)).await;
        assert_eq!(a.status, StatusCode::SEE_OTHER, "{uri}");
        assert_eq!(a.headers[header::LOCATION], "/login", "{uri}");
    }
    let a = send(&app, get("/api/v1/alerts", None)).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(a.headers[header::CONTENT_TYPE], "application/problem+json");
    // With anonymous reads, pages just work.
    let anon = app_with(|c| c.anonymous_read = true);
    assert_eq!(send(&anon, get("/", None)).await.status, StatusCode::OK);
}

#[tokio::test]
async fn markup_in_a_feed_name_or_a_post_comes_out_escaped() {
    let app = app_with(|_| {});
    let escaped_feed = "&lt;script&gt;alert(&quot;feed&quot;)&lt;/script&gt;";
    let escaped_post = "&lt;script&gt;alert(&quot;post&quot;)&lt;/script&gt; xsswitness here";
    let feeds = page(&app, "/feeds").await;
    assert!(feeds.contains(&format!("<a href=\"/feeds/{}\">{escaped_feed}</a>", encode(XSS_FEED))));
    let feed = page(&app, &format!("/feeds/{}?range=all", encode(XSS_FEED))).await;
    assert!(feed.contains(&format!("<h1>Feed {escaped_feed}</h1>")));
    assert!(
        feed.contains(&format!("<blockquote>{escaped_post}</blockquote>")),
        "{feed}"
    );
    let search = page(&app, "/search?q=xsswitness").await;
    assert!(search.contains("<p id=\"result-count\">1 matching posts"));
    assert!(search.contains(&format!("<blockquote>{escaped_post}</blockquote>")));
    assert!(search.contains(&format!("feeds: {escaped_feed}")));
    let narratives = page(&app, "/narratives").await;
    assert!(narratives.contains("closing &lt;b&gt;tonight&lt;/b&gt;"));
    for (uri, html) in every_page(&app).await {
        assert!(!html.contains("<script>"), "{uri}");
        assert!(!html.contains("<b>"), "{uri}");
    }
}

/// The words of a page that could be a handle: runs of letters, digits
/// and `_ . @ -`, lower case.
fn words(html: &str) -> impl Iterator<Item = String> + '_ {
    html.split(|c: char| !(c.is_alphanumeric() || "_.@-".contains(c)))
        .filter(|w| !w.is_empty())
        .flat_map(|w| {
            let w = w.to_lowercase();
            let trimmed = w.trim_matches(|c| c == '.' || c == '-' || c == '@').to_string();
            [w, trimmed]
        })
}

#[tokio::test]
async fn no_page_shows_a_handle_or_a_pseudonym() {
    let f = fixture();
    assert!(f.handles.len() > 1000, "{} handles", f.handles.len());
    let app = app_with(|_| {});
    let pages = every_page(&app).await;
    assert!(pages.len() >= 16);
    for (uri, html) in &pages {
        for w in words(html) {
            assert!(!f.handles.contains(&w), "{uri} shows a handle");
        }
        for p in &f.pseudonyms {
            assert!(!html.contains(p.as_str()), "{uri} shows a pseudonym");
        }
    }
    // The check itself finds a handle where there is one.
    let some = f.handles.iter().next().unwrap();
    assert!(words(&format!("<td>{some}</td>")).any(|w| &w == some));
}
