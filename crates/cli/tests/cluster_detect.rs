//! `tidewatch run --nats`: narratives, coordinated groups, emerging topics
//! and alerts over a cluster's whole posts stream, with a real
//! `nats-server`. What it finds must have the shape of what one
//! `tidewatch run` finds over the same input (pseudonyms differ: the
//! cluster's keyring is not the single run's), its aggregates must be the
//! single run's exactly, and its data directory must hold no post.

mod common;

use common::{ok, tidewatch, Watched};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tidewatch_cluster::testing::{nats_server_available, NatsServer};
use tidewatch_store::db::{Db, MinuteCounts};
use tidewatch_store::index::PostIndex;
use tidewatch_store::Store;

/// Feeds over the generator's vocabulary, two of them over planted bursts
/// (so that spike alerts are raised).
const FEEDS: &str = r#"
[[feed]]
name = "quakes"
query = 'earthquake OR aftershock OR #earthquake OR 地震'
[[feed]]
name = "football"
query = '#football OR #matchday OR "champions cup"'
[[feed]]
name = "space-weather"
query = '"solar flare" OR aurora OR "geomagnetic storm" OR #solarflare OR #aurora'
[[feed]]
name = "gaming"
query = '"patch notes" OR speedrun OR "game awards" OR #gaming OR #indiegame'
[[feed]]
name = "reposts"
query = 'is:repost'
"#;

const POSTS: &str = "60000";

/// A generated day with planted campaigns (`truth.json`), the feeds, and
/// the reference: a single `tidewatch run --narratives --coordination`
/// into `single`.
fn prepare(dir: &Path) {
    ok(
        &[
            "gen",
            "--posts",
            POSTS,
            "--days",
            "1",
            "--seed",
            "5",
            "--out",
            "all.jsonl",
            "--truth",
            "truth.json",
        ],
        dir,
    );
    std::fs::write(dir.join("feeds.toml"), FEEDS).unwrap();
    ok(
        &[
            "run",
            "--feeds",
            "feeds.toml",
            "--data",
            "single",
            "--narratives",
            "--coordination",
            "all.jsonl",
        ],
        dir,
    );
}

/// Publishes the input into a 4-partition stream and pushes the feeds.
fn publish(dir: &Path, url: &str) {
    let summary = ok(&["publish", "--nats", url, "--partitions", "4", "all.jsonl"], dir);
    let summary: serde_json::Value = serde_json::from_str(&summary).unwrap();
    assert_eq!(summary["published"].to_string(), POSTS, "{summary}");
    ok(&["feeds", "push", "--nats", url, "feeds.toml"], dir);
}

/// The arguments of a detection run into `view`.
fn detect_args(url: &str) -> Vec<String> {
    [
        "run",
        "--nats",
        url,
        "--data",
        "view",
        "--narratives",
        "--coordination",
        "--commit-ms",
        "200",
        "--until-idle",
        "3",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// The coordinated groups of a data directory, each by its shape (what
/// does not depend on pseudonyms), sorted.
fn group_shapes(dir: &Path, data: &str) -> Vec<String> {
    let out = ok(&["coordination", "--data", data, "--format", "json"], dir);
    let mut shapes: Vec<String> = out
        .lines()
        .map(|l| {
            let g: serde_json::Value = serde_json::from_str(l).unwrap();
            let list = |k: &str| g[k].as_array().cloned().unwrap_or_default();
            let mut edges: Vec<u64> = list("edges").iter().map(|e| e["total"].as_u64().unwrap()).collect();
            edges.sort_unstable();
            // The evidence kept: how many samples of each type (which
            // pairs are sampled depends on the accounts' order, so on
            // pseudonyms).
            let mut evidence: BTreeMap<String, usize> = BTreeMap::new();
            for e in list("evidence") {
                *evidence.entry(e["type"].to_string()).or_default() += 1;
            }
            format!(
                "{} accounts, {} edges {edges:?}, weight {} {}, density {}, {} .. {}, {} narratives, evidence {evidence:?}",
                list("accounts").len(),
                list("edges").len(),
                g["total_weight"],
                g["weight_by_type"],
                g["density"],
                g["first_seen"],
                g["last_seen"],
                list("narratives").len(),
            )
        })
        .collect();
    shapes.sort();
    shapes
}

/// The narratives of at least `min_posts` posts, by shape, sorted.
/// Account counts are compared only when exact: an estimate depends on
/// the pseudonyms it hashes.
fn narrative_shapes(dir: &Path, data: &str, min_posts: u64) -> Vec<String> {
    let out = ok(
        &["narratives", "--data", data, "--format", "json", "--limit", "100000"],
        dir,
    );
    let mut shapes: Vec<String> = out
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|n| n["posts"].as_u64().unwrap() >= min_posts)
        .map(|n| {
            let accounts = if n["accounts_exact"].as_bool().unwrap() {
                n["accounts"].to_string()
            } else {
                "~".to_string()
            };
            format!(
                "{} posts, {} reposts, {accounts} accounts, {} .. {}, {} {} {:?}",
                n["posts"],
                n["reposts"],
                n["first_seen"],
                n["last_seen"],
                n["languages"],
                n["domains"],
                n["representative"].as_str().unwrap_or_default()
            )
        })
        .collect();
    shapes.sort();
    shapes
}

/// Every aggregate row of a store (feed and volume minutes), by feed name.
fn aggregates(data: &Path) -> (BTreeMap<(String, i64), MinuteCounts>, Vec<String>) {
    let db = Db::open(&Store::db_path(data)).unwrap();
    let mut feeds = BTreeMap::new();
    for feed in db.feeds().unwrap() {
        for (minute, counts) in db.feed_minutes(feed.id, i64::MIN, i64::MAX).unwrap() {
            feeds.insert((feed.name.clone(), minute), counts);
        }
    }
    let volume = db
        .aggregates_dump()
        .unwrap()
        .into_iter()
        .filter(|l| l.starts_with("v "))
        .collect();
    (feeds, volume)
}

/// Spike alerts (kind, id and the whole record), sorted. Narrative-growth
/// alerts are named after narrative ids, which depend on pseudonyms.
fn spike_alerts(data: &Path) -> Vec<(String, String, String)> {
    let db = Db::open(&Store::db_path(data)).unwrap();
    let mut out: Vec<_> = db
        .alerts(None)
        .unwrap()
        .into_iter()
        .filter(|a| a.kind != "narrative_growth")
        .map(|a| (a.kind, a.id, a.record))
        .collect();
    out.sort();
    out
}

/// The planted coordinated campaigns' account counts (the truth lists
/// their handles; only their number is read).
fn planted_campaigns(dir: &Path) -> Vec<u64> {
    let truth: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("truth.json")).unwrap()).unwrap();
    let mut sizes: Vec<u64> = truth["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| matches!(e["kind"].as_str(), Some("copy_paste" | "co_link" | "repost_ring")))
        .map(|e| e["accounts"].as_array().map_or(0, Vec::len) as u64)
        .collect();
    sizes.sort_unstable();
    sizes
}

/// The view's aggregates equal the single run's, cell for cell.
fn assert_aggregates_equal_single(dir: &Path) {
    let (want_feeds, want_volume) = aggregates(&dir.join("single"));
    let (got_feeds, got_volume) = aggregates(&dir.join("view"));
    assert!(want_feeds.len() > 500, "the reference has feed series");
    assert_eq!(got_feeds.len(), want_feeds.len(), "the same (feed, minute) cells");
    for (key, counts) in &want_feeds {
        assert_eq!(got_feeds.get(key), Some(counts), "feed {} minute {}", key.0, key.1);
    }
    assert_eq!(got_volume, want_volume, "the same volume per minute");
}

#[test]
fn detection_over_a_cluster_finds_what_a_single_run_finds() {
    let Some((tmp, _server, args)) = published("detection_over_a_cluster_finds_what_a_single_run_finds") else {
        return;
    };
    let dir = tmp.path();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = ok(&args, dir);
    assert!(
        out.contains(&format!("{} posts counted (no post index", "60,000")),
        "{out}"
    );

    // The same coordinated groups, the planted campaigns among them.
    let want = group_shapes(dir, "single");
    let got = group_shapes(dir, "view");
    assert!(!want.is_empty());
    assert_eq!(got, want);
    let sizes: Vec<u64> = got
        .iter()
        .map(|g| g.split(' ').next().unwrap().parse().unwrap())
        .collect();
    for planted in planted_campaigns(dir) {
        assert!(sizes.contains(&planted), "a group of {planted} accounts in {sizes:?}");
    }
    // The same narratives of ≥ 10 posts.
    let want = narrative_shapes(dir, "single", 10);
    let got = narrative_shapes(dir, "view", 10);
    assert!(want.len() >= 5, "{want:?}");
    assert_eq!(got.len(), want.len());
    assert_eq!(got, want);
    // The same emerging topics, by suggestion.
    let topics = |data: &str| {
        let mut lines: Vec<String> = ok(&["topics", "--data", data, "--format", "json"], dir)
            .lines()
            .map(|l| {
                let t: serde_json::Value = serde_json::from_str(l).unwrap();
                format!("{} {}", t["first_seen"], t["suggested"]["query"])
            })
            .collect();
        lines.sort();
        lines
    };
    let want = topics("single");
    assert!(!want.is_empty());
    assert_eq!(topics("view"), want);
    // The same spike alerts, explanations included.
    let want = spike_alerts(&dir.join("single"));
    assert!(!want.is_empty(), "the planted bursts raise alerts");
    assert_eq!(spike_alerts(&dir.join("view")), want);

    // Aggregates equal; no post kept.
    assert_aggregates_equal_single(dir);
    let found = |data: &str| {
        ok(
            &[
                "search",
                "--data",
                data,
                "--format",
                "json",
                "--limit",
                "100000",
                "earthquake OR #football",
            ],
            dir,
        )
    };
    assert!(found("single").lines().count() > 100);
    assert_eq!(found("view"), "", "the view indexes no post");
    let index = PostIndex::open_read_only(&Store::index_dir(&dir.join("view"))).unwrap();
    assert_eq!(index.num_docs(), 0, "no document in the view's index");
    // The live source's status, as for any live source.
    let status: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("view/status.json")).unwrap()).unwrap();
    assert_eq!(status["sources"][0]["name"], "detect");
    assert_eq!(status["sources"][0]["posts"].to_string(), POSTS);

    // A second run has nothing left to read: the stream resumes after the
    // committed checkpoint and nothing is counted again.
    ok(&args, dir);
    assert_aggregates_equal_single(dir);
}

/// A directory prepared with the single run's reference, and the input
/// published to a fresh nats-server (kept running while the guard lives);
/// returns them with the detection run's arguments. `None` when there is
/// no server and none is required (see `nats_server_available`).
fn published(test: &str) -> Option<(tempfile::TempDir, NatsServer, Vec<String>)> {
    if !nats_server_available(test) {
        return None;
    }
    let tmp = tempfile::tempdir().unwrap();
    prepare(tmp.path());
    let server = NatsServer::start().expect("starting nats-server");
    publish(tmp.path(), &server.url());
    let args = detect_args(&server.url());
    Some((tmp, server, args))
}

/// Posts the detection run's store has counted so far.
fn counted(dir: &Path) -> u64 {
    let path = Store::db_path(&dir.join("view"));
    if !path.exists() {
        return 0;
    }
    let Ok(db) = Db::open(&path) else { return 0 };
    db.aggregates_dump()
        .unwrap_or_default()
        .iter()
        .filter(|l| l.starts_with("v "))
        .map(|l| l.split(' ').nth(2).unwrap().parse::<u64>().unwrap())
        .sum()
}

/// Starts a detection run and returns it once some commits are in and
/// before the stream is done.
fn started_mid_stream(dir: &Path, args: &[String]) -> std::process::Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tidewatch"))
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while counted(dir) < 5_000 {
        assert!(Instant::now() < deadline, "no commit within 120 s");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it was stopped"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

/// Killed with SIGKILL mid-stream after a checkpoint of its detectors,
/// the detection run is started again: it goes on from the checkpoint,
/// reads the posts stream again from there to its store's commit for the
/// detectors, and ends with the aggregates, groups and narratives of a
/// single run over the whole input.
///
/// The stream is published in three parts so that the kill falls between
/// two checkpoints without racing the run: the first checkpoint comes
/// while the run waits after part one, part two is committed after it,
/// the kill comes before the next checkpoint (10 s later), and part three
/// is read by the run started again.
#[test]
fn a_killed_detection_run_goes_on_from_its_checkpoint_without_doubling() {
    let test = "a_killed_detection_run_goes_on_from_its_checkpoint_without_doubling";
    if !nats_server_available(test) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    prepare(dir);
    let all = std::fs::read_to_string(dir.join("all.jsonl")).unwrap();
    let lines: Vec<&str> = all.lines().collect();
    assert_eq!(lines.len().to_string(), POSTS);
    for (i, part) in lines.chunks(20_000).enumerate() {
        std::fs::write(dir.join(format!("part{i}.jsonl")), part.join("\n") + "\n").unwrap();
    }
    let server = NatsServer::start().expect("starting nats-server");
    let url = server.url();
    let publish_part = |i: usize| {
        let part = format!("part{i}.jsonl");
        ok(&["publish", "--nats", &url, "--partitions", "4", &part], dir);
    };
    publish_part(0);
    ok(&["feeds", "push", "--nats", &url, "feeds.toml"], dir);

    let mut args = detect_args(&url);
    let idle = args.iter().position(|a| a == "--until-idle").unwrap();
    args[idle + 1] = "600".to_string();
    args.extend(["--checkpoint-secs", "10"].map(String::from));
    let mut run = Watched::spawn(
        Command::new(env!("CARGO_BIN_EXE_tidewatch"))
            .args(&args)
            .current_dir(dir),
    );
    let first = run.next_checkpoint(Duration::from_secs(120));
    assert_eq!(counted(dir), 20_000, "part one is in by the first checkpoint");
    publish_part(1);
    let deadline = Instant::now() + Duration::from_secs(60);
    while counted(dir) < 40_000 {
        assert!(Instant::now() < deadline, "part two not committed within 60 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    let (checkpoint, seen) = run.kill();
    assert_eq!(
        checkpoint,
        Some(first),
        "no second checkpoint before the kill: {seen:?}"
    );
    let checkpoint = first;
    let store_commit = Db::open(&Store::db_path(&dir.join("view")))
        .unwrap()
        .commit_seq()
        .unwrap();
    assert!(store_commit > checkpoint, "commits after the checkpoint: {seen:?}");

    publish_part(2);
    let args = detect_args(&url);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = tidewatch(&args, dir);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains(&format!(
            "resumed from the checkpoint of commit {checkpoint}, reading again what commits {}..={store_commit} stored",
            checkpoint + 1
        )),
        "{err}"
    );
    assert!(
        err.contains("read again the 20,000 posts committed after the checkpoint"),
        "part two is read again: {err}"
    );
    assert!(!err.contains("short of the store"), "{err}");
    // Nothing doubled, nothing missed.
    assert_aggregates_equal_single(dir);
    assert_eq!(group_shapes(dir, "view"), group_shapes(dir, "single"));
    assert_eq!(narrative_shapes(dir, "view", 10), narrative_shapes(dir, "single", 10));
}

/// Stopped with Ctrl-C mid-stream, the detection run saves its detectors;
/// started again, it goes on from them and ends with the groups and
/// narratives of a single run over the whole input.
#[test]
fn a_detection_run_stopped_with_ctrl_c_goes_on_with_what_it_found() {
    let Some((tmp, _server, args)) = published("a_detection_run_stopped_with_ctrl_c_goes_on_with_what_it_found") else {
        return;
    };
    let dir = tmp.path();
    let mut child = started_mid_stream(dir, &args);
    let interrupted = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    assert!(child.wait().unwrap().success(), "a clean stop");
    let at_stop = counted(dir);
    assert!(at_stop < 60_000, "stopped mid-stream ({at_stop} posts committed)");
    assert!(dir.join("view/detectors.state").exists());

    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = tidewatch(&args, dir);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("resumed where the last run stopped"), "{err}");
    assert_aggregates_equal_single(dir);
    assert_eq!(group_shapes(dir, "view"), group_shapes(dir, "single"));
    assert_eq!(narrative_shapes(dir, "view", 10), narrative_shapes(dir, "single", 10));
}
