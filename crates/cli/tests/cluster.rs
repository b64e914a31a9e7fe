//! The scale-out path end to end, with real `nats-server` processes and
//! `tidewatch worker` processes: what the shards hold together must equal
//! what one `tidewatch run` makes of the same input, whatever happens to
//! the workers.

mod common;

use common::ok;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tidewatch_cluster::lease::lease_key;
use tidewatch_cluster::testing::{nats_server_available, NatsCluster, NatsServer};
use tidewatch_cluster::{consumer_name, Cluster, ClusterConfig};
use tidewatch_core::query::Query;
use tidewatch_store::db::{Db, MinuteCounts};
use tidewatch_store::index::PostIndex;
use tidewatch_store::search::SearchRequest;
use tidewatch_store::Store;

/// Feeds over the generator's vocabulary. No `@handle` feed: the stream
/// carries masked texts (see `tidewatch_cluster::publish`).
const FEEDS: &str = r#"
[[feed]]
name = "quakes"
query = 'earthquake OR aftershock OR #earthquake OR 地震'
[[feed]]
name = "football-not-penalty"
query = '(#football OR #matchday OR "champions cup") -penalty'
[[feed]]
name = "tech-near"
query = '"open source" OR (chip NEAR/3 shortage) OR #ai'
[[feed]]
name = "german"
query = 'lang:de'
[[feed]]
name = "negative-transit"
query = '(metro OR train* OR bus) sentiment:negative'
[[feed]]
name = "reposts"
query = 'is:repost'
"#;

const PARTITIONS: u32 = 6;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Leases short enough that a killed worker's partitions move within
/// seconds.
const SHORT_LEASES: Duration = Duration::from_secs(2);

/// Creates the stream with P partitions and leases that live
/// `lease_timeout` unrenewed.
fn create_cluster(url: &str, replicas: usize, lease_timeout: Duration) {
    let mut cfg = ClusterConfig::new(url);
    cfg.partitions = Some(PARTITIONS);
    cfg.replicas = replicas;
    cfg.lease_timeout = lease_timeout;
    runtime()
        .block_on(Cluster::connect(&cfg))
        .expect("creating the cluster");
}

fn worker(dir: &Path, url: &str, id: &str) -> Running {
    Running(Some(
        Command::new(env!("CARGO_BIN_EXE_tidewatch"))
            .args(["worker", "--nats", url, "--data", "shards", "--worker-id", id])
            .args(["--commit-ms", "300", "--threads", "1"])
            .current_dir(dir)
            .env("RUST_BACKTRACE", "0")
            .stdout(Stdio::null())
            .stderr(log_file(dir, id))
            .spawn()
            .expect("starting a worker"),
    ))
}

/// A worker or `serve` process, killed if the test fails before it is
/// stopped (else it outlives the test and slows the next one).
struct Running(Option<Child>);

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `dir/logs/NAME.log`, appended to (a restarted worker adds to its log).
fn log_file(dir: &Path, name: &str) -> std::fs::File {
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(logs.join(format!("{name}.log")))
        .unwrap()
}

/// The last lines of every process's log, for a failure message.
fn logs(dir: &Path) -> String {
    let mut out = String::new();
    let Ok(entries) = std::fs::read_dir(dir.join("logs")) else {
        return out;
    };
    let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    paths.sort();
    for path in paths {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        out.push_str(&format!(
            "\n--- {} (last 20 of {} lines)\n",
            path.display(),
            lines.len()
        ));
        for line in &lines[lines.len().saturating_sub(20)..] {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// Ends a worker or `serve` the way a service manager does, with SIGTERM
/// (a worker then commits every shard, as on Ctrl-C), and waits.
fn stop(mut running: Running) {
    let child = running.0.as_mut().expect("a running process");
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "a worker ended with {status}");
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // Dropping `running` kills it.
    panic!("a worker did not stop within 60 s");
}

/// Waits until every partition's consumer has delivered and had
/// acknowledged (so committed) every message of the stream.
fn wait_consumed(url: &str, expected: u64) {
    let rt = runtime();
    let cluster = rt.block_on(Cluster::connect(&ClusterConfig::new(url))).unwrap();
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let done = rt.block_on(async {
            let (total, _) = cluster.stream_counts().await.unwrap();
            if total != expected {
                return false;
            }
            let stream = cluster.jetstream().get_stream(cluster.stream_name()).await.unwrap();
            for p in 0..PARTITIONS {
                match stream.consumer_info(consumer_name(p)).await {
                    Ok(info) if info.num_pending == 0 && info.num_ack_pending == 0 => {}
                    _ => return false,
                }
            }
            true
        });
        if done {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the workers did not consume the stream in 240 s"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `tidewatch serve --nats`: the one view, which also raises the cluster's
/// alerts into `view/`.
fn serve(dir: &Path, url: &str) -> Running {
    Running(Some(
        Command::new(env!("CARGO_BIN_EXE_tidewatch"))
            .args(["serve", "--nats", url, "--data", "view", "--addr", "127.0.0.1:0"])
            .current_dir(dir)
            .env("RUST_BACKTRACE", "0")
            .stdout(Stdio::null())
            .stderr(log_file(dir, "serve"))
            .spawn()
            .expect("starting serve"),
    ))
}

/// Alert events of a store: (id, kind, the whole record), sorted.
fn alerts(data: &Path) -> Vec<(String, String, serde_json::Value)> {
    let db = Db::open(&Store::db_path(data)).unwrap();
    let mut out: Vec<_> = db
        .alerts(None)
        .unwrap()
        .into_iter()
        .map(|a| (a.id, a.kind, serde_json::from_str(&a.record).unwrap()))
        .collect();
    out.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    out
}

/// Waits until every partition is leased and each of `workers` holds one.
fn wait_leased(dir: &Path, url: &str, workers: &[&str]) {
    let rt = runtime();
    let cluster = rt.block_on(Cluster::connect(&ClusterConfig::new(url))).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let holders: Vec<Option<String>> = rt.block_on(async {
            let mut out = Vec::new();
            for p in 0..PARTITIONS {
                let v = cluster.leases_bucket().get(lease_key(p)).await.unwrap();
                out.push(v.map(|b| String::from_utf8_lossy(&b).into_owned()));
            }
            out
        });
        let all = holders.iter().all(Option::is_some);
        if all && workers.iter().all(|w| holders.contains(&Some(w.to_string()))) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "partitions not shared in 60 s: {holders:?}{}",
            logs(dir)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The per-minute counts of every feed, by feed name, over some stores.
fn series(stores: &[PathBuf]) -> BTreeMap<(String, i64), MinuteCounts> {
    let mut out: BTreeMap<(String, i64), MinuteCounts> = BTreeMap::new();
    for dir in stores {
        let db = Db::open(&Store::db_path(dir)).unwrap();
        for feed in db.feeds().unwrap() {
            for (minute, counts) in db.feed_minutes(feed.id, i64::MIN, i64::MAX).unwrap() {
                out.entry((feed.name.clone(), minute)).or_default().add(&counts);
            }
        }
    }
    out
}

/// Every stored post as (time, text, language, sentiment, feed names),
/// sorted, with the number of distinct post ids.
fn posts(stores: &[PathBuf], query: &str) -> (Vec<String>, usize) {
    let mut out = Vec::new();
    let mut ids = std::collections::HashSet::new();
    for dir in stores {
        let names: BTreeMap<u32, String> = Db::open(&Store::db_path(dir))
            .unwrap()
            .feeds()
            .unwrap()
            .into_iter()
            .map(|f| (f.id, f.name))
            .collect();
        let index = PostIndex::open_read_only(&Store::index_dir(dir)).unwrap();
        let req = SearchRequest {
            query: Query::parse(query).unwrap(),
            from: None,
            to: None,
            feed: None,
            limit: usize::MAX,
        };
        index
            .export(&req, &mut |h| {
                ids.insert(h.id.clone());
                let feeds: Vec<&str> = h.feeds.iter().map(|f| names[f].as_str()).collect();
                out.push(format!(
                    "{:?} {:?} {:?} {} {:?}",
                    h.created_at.map(|t| t.0),
                    h.text,
                    h.lang,
                    h.sentiment,
                    feeds
                ));
                Ok(())
            })
            .unwrap();
    }
    out.sort();
    (out, ids.len())
}

fn shard_dirs(root: &Path) -> Vec<PathBuf> {
    (0..PARTITIONS)
        .map(|p| tidewatch_cluster::shard_dir(root, p))
        .filter(|d| d.exists())
        .collect()
}

/// The input cut in two halves, the feeds, and the reference: one
/// single-process `tidewatch run` over the whole input into `single`.
fn prepare(dir: &Path) {
    ok(
        &[
            "gen",
            "--posts",
            "40000",
            "--days",
            "1",
            "--seed",
            "11",
            "--out",
            "all.jsonl",
        ],
        dir,
    );
    let all = std::fs::read_to_string(dir.join("all.jsonl")).unwrap();
    let lines: Vec<&str> = all.lines().collect();
    let half = lines.len() / 2;
    std::fs::write(dir.join("first.jsonl"), lines[..half].join("\n") + "\n").unwrap();
    std::fs::write(dir.join("second.jsonl"), lines[half..].join("\n") + "\n").unwrap();
    std::fs::write(dir.join("feeds.toml"), FEEDS).unwrap();
    ok(&["run", "--feeds", "feeds.toml", "--data", "single", "all.jsonl"], dir);
}

/// `tidewatch publish` of `file`, started; its summary says what it stored.
fn start_publish(dir: &Path, url: &str, file: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_tidewatch"))
        .args(["publish", "--nats", url, file])
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Messages a finished `tidewatch publish` stored.
fn published(publisher: Child) -> u64 {
    let out = publisher.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "publish failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    summary["published"].as_u64().unwrap()
}

/// The shards in `dir/shards` hold together exactly what the single run
/// stored in `dir/single`: the same per-feed series, the same posts (none
/// lost, none doubled), the same search results.
fn assert_shards_equal_single(dir: &Path) {
    let single = vec![dir.join("single")];
    let shards = shard_dirs(&dir.join("shards"));
    assert_eq!(shards.len(), PARTITIONS as usize, "a shard per partition");
    let want = series(&single);
    assert!(
        want.len() > 1000,
        "the reference has feed series ({} minutes)",
        want.len()
    );
    let got = series(&shards);
    assert_eq!(got.len(), want.len(), "the same (feed, minute) cells");
    for (key, counts) in &want {
        assert_eq!(got.get(key), Some(counts), "feed {} minute {}", key.0, key.1);
    }
    let (want_posts, want_ids) = posts(&single, "-zzzqqqnothing");
    let (got_posts, got_ids) = posts(&shards, "-zzzqqqnothing");
    assert_eq!(got_ids, want_ids, "as many distinct posts");
    assert_eq!(got_posts.len(), want_posts.len(), "no post stored twice");
    assert_eq!(got_posts, want_posts);
    for query in ["earthquake OR #football", "\"open source\"", "lang:de train*"] {
        let (want, _) = posts(&single, query);
        assert!(!want.is_empty(), "{query} finds posts");
        assert_eq!(posts(&shards, query).0, want, "{query}");
    }
}

/// The cluster's alerts, raised by `serve --nats` into `dir/view` from the
/// merged counts of every partition, are the single run's alerts: the same
/// spikes (ids, onset, peak, end, magnitude). Their explanations come from
/// partial windows merged over partitions: heavy-hitter sketches merged
/// are not the single stream's sketch (they may keep a key the single one
/// dropped, and a killed worker takes its open windows with it), so the
/// explanation must name the single run's strongest driver and at least
/// half of its drivers.
fn assert_view_alerts_equal_single(dir: &Path) {
    let want = alerts(&dir.join("single"));
    assert!(!want.is_empty(), "the reference raises an alert");
    let spikes = |a: &[(String, String, serde_json::Value)]| -> Vec<String> {
        a.iter()
            .map(|(id, kind, r)| format!("{id} {kind} {}", r["spike"]))
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let got = loop {
        let view_db = dir.join("view").join("tidewatch.db");
        let got = if view_db.exists() {
            alerts(&dir.join("view"))
        } else {
            Vec::new()
        };
        if spikes(&got) == spikes(&want) {
            break got;
        }
        assert!(
            Instant::now() < deadline,
            "the cluster's alerts {got:?} differ from the single run's {want:?}{}",
            logs(dir)
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let drivers = |r: &serde_json::Value| -> Vec<String> {
        r["why"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| format!("{} {}", d["kind"], d["key"]))
            .collect()
    };
    for ((_, _, g), (_, _, w)) in got.iter().zip(&want) {
        let (g, w) = (drivers(g), drivers(w));
        let shared = w.iter().filter(|d| g.contains(d)).count();
        assert!(
            !w.is_empty() && g.contains(&w[0]) && 2 * shared >= w.len(),
            "drivers {g:?}, single run {w:?}{}",
            logs(dir)
        );
    }
}

/// Three workers over a generated stream; one is killed with SIGKILL while
/// posts are published and started again later. The shards together equal
/// the single-process run.
#[test]
fn three_workers_one_killed_equal_a_single_run() {
    if !nats_server_available("three_workers_one_killed_equal_a_single_run") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    prepare(dir);
    let server = NatsServer::start().expect("starting nats-server");
    let url = server.url();
    create_cluster(&url, 1, SHORT_LEASES);
    ok(&["feeds", "push", "--nats", &url, "feeds.toml"], dir);
    let first = published(start_publish(dir, &url, "first.jsonl"));

    let w1 = worker(dir, &url, "w1");
    let w2 = worker(dir, &url, "w2");
    let w3 = worker(dir, &url, "w3");
    // Mid-stream: the first half is being consumed, the second is being
    // published, when w2 dies without a chance to commit or give back.
    wait_leased(dir, &url, &["w1", "w2", "w3"]);
    let publisher = start_publish(dir, &url, "second.jsonl");
    drop(w2); // SIGKILL
    let second = published(publisher);
    // Later, w2 comes back and takes its share again.
    std::thread::sleep(Duration::from_secs(3));
    let w2 = worker(dir, &url, "w2");
    let view = serve(dir, &url);
    wait_consumed(&url, first + second);
    // One view while they run: a search fans out to the lease holders. A
    // partition moving back to the restarted w2 may not answer for a
    // moment (the result says so); then the search is asked again.
    let (want, _) = posts(&[dir.join("single")], "earthquake OR #football");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = ok(
            &[
                "search",
                "--nats",
                &url,
                "--format",
                "json",
                "--limit",
                "100000",
                "earthquake OR #football",
            ],
            dir,
        );
        if out.lines().count() == want.len() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "search --nats finds {} posts, the single run stores {}{}",
            out.lines().count(),
            want.len(),
            logs(dir)
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_view_alerts_equal_single(dir);
    for w in [view, w1, w2, w3] {
        stop(w);
    }
    assert_shards_equal_single(dir);
}

/// Two workers on a 3-node JetStream cluster (stream and buckets with 3
/// replicas); one NATS node is killed mid-stream. Processing goes on and
/// the shards together equal the single-process run.
#[test]
fn a_nats_node_killed_mid_stream_changes_nothing() {
    if !nats_server_available("a_nats_node_killed_mid_stream_changes_nothing") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    prepare(dir);
    let mut nats = NatsCluster::start().expect("starting a 3-node nats cluster");
    let url = nats.url();
    // No worker dies here, so the leases are the product's default: a
    // NATS leader election (several seconds on a busy machine) must not
    // make the workers give up their partitions. With 2 s leases they did,
    // and the windows they had open never reached the alerts' explanations.
    create_cluster(&url, 3, tidewatch_cluster::setup::DEFAULT_LEASE_TIMEOUT);
    ok(&["feeds", "push", "--nats", &url, "feeds.toml"], dir);
    let first = published(start_publish(dir, &url, "first.jsonl"));
    let w1 = worker(dir, &url, "w1");
    let w2 = worker(dir, &url, "w2");
    let view = serve(dir, &url);
    wait_leased(dir, &url, &["w1", "w2"]);
    nats.kill(0);
    // The publisher may meet the cluster electing new leaders and stop with
    // an error; publishing again is safe (the stream drops duplicates), as
    // the publish docs tell an operator.
    for attempt in 1.. {
        let out = start_publish(dir, &url, "second.jsonl").wait_with_output().unwrap();
        if out.status.success() {
            break;
        }
        assert!(
            attempt < 10,
            "publish failed 10 times: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    // What the stream holds now, failed attempts included, is what the
    // single run read: the comparison below checks that.
    let stored = runtime()
        .block_on(async { Cluster::connect(&ClusterConfig::new(&url)).await?.stream_counts().await })
        .unwrap()
        .0;
    assert!(stored > first);
    wait_consumed(&url, stored);
    assert_view_alerts_equal_single(dir);
    for w in [view, w1, w2] {
        stop(w);
    }
    assert_shards_equal_single(dir);
}
