//! Live sources end to end: `tidewatch run --config` against the replay
//! servers, with the servers dropping connections and restarting, and
//! tidewatch itself killed with SIGKILL and started again. What ends up in
//! the store must be exactly what a run over the same records from a file
//! stores: nothing lost, nothing twice. A loss upstream must show as a gap
//! in `tidewatch status`.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tidewatch_core::pseudonym::{Keyring, PseudonymConfig};
use tidewatch_engine::datadir::DataDir;
use tidewatch_sources::replay::jetstream::{generate, generate_copies, Faults, JetstreamReplay};
use tidewatch_sources::replay::mastodon::MastodonReplay;
use tidewatch_sources::replay::rss::{Failure, RssReplay};
use tidewatch_store::db::Db;
use tidewatch_store::Store;

mod common;
use common::{index_dump, Watched};

const FEEDS: &str = r#"
[[feed]]
name = "harbour"
query = 'harbour OR pier OR lantern'
"#;

/// 2024-08-30, one event every millisecond.
const T0: u64 = 1_725_000_000_000_000;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tidewatch"))
}

fn check(out: std::process::Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A data directory with a fixed keyring, so two runs hash ids alike.
fn data_dir(path: &Path) -> PathBuf {
    let dd = DataDir::open(path).unwrap();
    dd.save_keyring(&Keyring::from_seed(PseudonymConfig::default(), 77))
        .unwrap();
    path.to_path_buf()
}

/// A config with the feeds inline, every post kept, quick commits.
fn config(dir: &Path, name: &str, data: &Path, sources: &str) -> PathBuf {
    let path = dir.join(format!("{name}.toml"));
    let text = format!(
        "data = {:?}\ncommit_ms = 200\n[privacy]\nretention_days = 0\n{FEEDS}\n{sources}",
        data.display().to_string()
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// A Jetstream source `bsky` reading `url`, reconnecting quickly, with
/// `extra` settings (TOML lines).
fn jetstream_source(url: &str, extra: &str) -> String {
    format!(
        "[[source]]\nkind = \"jetstream\"\nname = \"bsky\"\nendpoints = [{url:?}]\nbackoff_initial = \"20ms\"\n{extra}"
    )
}

fn run(config: &Path, until_idle: &str) -> Command {
    let mut c = bin();
    c.arg("run")
        .arg("--config")
        .arg(config)
        .args(["--until-idle", until_idle]);
    c
}

/// The same records stored by a plain run over a file.
fn reference(dir: &Path, lines: &[String]) -> Vec<String> {
    let input = dir.join("reference.jsonl");
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();
    let data = data_dir(&dir.join("reference"));
    let feeds = dir.join("feeds.toml");
    std::fs::write(&feeds, FEEDS).unwrap();
    check(
        bin()
            .arg("run")
            .arg("--feeds")
            .arg(&feeds)
            .arg("--data")
            .arg(&data)
            .args(["--retention-days", "0"])
            .arg(&input)
            .output()
            .unwrap(),
        "reference run",
    );
    index_dump(&data)
}

/// The committed cursor of a live source, read from the store.
fn committed(data: &Path, source: &str) -> Option<u64> {
    let path = Store::db_path(data);
    if !path.exists() {
        return None;
    }
    let db = Db::open(&path).ok()?;
    db.checkpoints().ok()?.get(&format!("source:{source}"))?.offset
}

fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn kill(mut child: Child) {
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
}

fn status_json(data: &Path) -> serde_json::Value {
    let out = check(
        bin()
            .args(["status", "--format", "json", "--data"])
            .arg(data)
            .output()
            .unwrap(),
        "status",
    );
    serde_json::from_str(&out).unwrap()
}

#[test]
fn jetstream_with_drops_a_server_restart_and_a_killed_run_stores_every_post_once() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let events = generate(6_000, T0, 1_000);
    let reference = reference(dir, &events.iter().map(|e| e.json.clone()).collect::<Vec<_>>());
    assert!(reference.len() > 3_000, "{} posts", reference.len());

    let faults = Faults {
        drop_after: vec![400, 900, 1_300, 2_200, 2_600, 3_600, 4_800],
        stall_after: vec![(1_500, Duration::from_secs(20)), (3_000, Duration::from_secs(20))],
        malformed_before: vec![100, 4_000],
        ..Faults::default()
    };
    let mut server = JetstreamReplay::start(events.clone(), faults).unwrap();
    let data = data_dir(&dir.join("live"));
    let cfg = config(
        dir,
        "jetstream",
        &data,
        &jetstream_source(&server.url(), "backoff_max = \"200ms\"\n"),
    );
    let first = run(&cfg, "60")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The server stalls after event 1500: restart it (every connection
    // is cut, the port refuses for a moment).
    let at = |i: usize| events[i].time_us;
    wait_until("event 1500 committed", Duration::from_secs(20), || {
        committed(&data, "bsky").is_some_and(|c| c >= at(1_500))
    });
    server.restart(Duration::from_millis(300)).unwrap();
    // It stalls again after event 3000: kill tidewatch there.
    wait_until("event 3000 committed", Duration::from_secs(20), || {
        committed(&data, "bsky").is_some_and(|c| c >= at(3_000))
    });
    kill(first);
    let out = check(run(&cfg, "2").output().unwrap(), "run after the kill");
    assert!(server.connections() >= 9, "{} connections", server.connections());
    assert!(!out.contains("GAP"), "{out}");

    let stored = index_dump(&data);
    assert_eq!(stored.len(), reference.len(), "posts stored\n{out}");
    assert!(stored == reference, "stored posts differ from a plain run's");
    let status = status_json(&data);
    let source = &status["sources"][0];
    assert_eq!(source["name"], "bsky");
    assert_eq!(source["gaps"].as_array().unwrap().len(), 0);
    assert_eq!(status["running"], false);
}

/// The narratives of a data directory, one JSON line each, sorted.
fn narratives(data: &Path) -> Vec<String> {
    let out = check(
        bin()
            .args(["narratives", "--format", "json", "--limit", "100000", "--data"])
            .arg(data)
            .output()
            .unwrap(),
        "narratives",
    );
    let mut lines: Vec<String> = out.lines().map(str::to_string).collect();
    lines.sort();
    lines
}

/// A run with narratives killed with SIGKILL between two checkpoints goes
/// on from the first: it reads the Jetstream server again from the
/// checkpoint's `time_us` to its store's, and ends with the narratives of
/// a plain run over the same events.
///
/// The server's stalls place the kill: the checkpoint (every 10 s) comes
/// while the server holds the stream after event 1,500; events up to
/// 3,000 are committed after it; the kill comes while the server holds
/// the stream there, before the next checkpoint.
#[test]
fn jetstream_killed_after_a_checkpoint_is_read_again_for_the_narratives() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // Copies of 40 messages: narratives that grow across the kill.
    let events = generate_copies(4_000, T0, 1_000, 40);
    let lines: Vec<String> = events.iter().map(|e| e.json.clone()).collect();
    std::fs::write(dir.join("reference.jsonl"), lines.join("\n") + "\n").unwrap();
    std::fs::write(dir.join("feeds.toml"), FEEDS).unwrap();
    let reference = data_dir(&dir.join("reference"));
    check(
        bin()
            .args([
                "run",
                "--narratives",
                "--feeds",
                "feeds.toml",
                "--retention-days",
                "0",
                "--data",
            ])
            .arg(&reference)
            .arg("reference.jsonl")
            .current_dir(dir)
            .output()
            .unwrap(),
        "reference run",
    );
    let want = narratives(&reference);
    assert_eq!(want.len(), 40, "{want:?}");

    let faults = Faults {
        stall_after: vec![(1_500, Duration::from_secs(15)), (3_000, Duration::from_secs(30))],
        ..Faults::default()
    };
    let server = JetstreamReplay::start(events.clone(), faults).unwrap();
    let data = data_dir(&dir.join("live"));
    let cfg = config(dir, "jetstream", &data, &jetstream_source(&server.url(), ""));
    let mut first = Watched::spawn(run(&cfg, "120").args(["--narratives", "--checkpoint-secs", "10"]));
    let checkpoint = first.next_checkpoint(Duration::from_secs(60));
    let at = |i: usize| events[i].time_us;
    assert!(
        committed(&data, "bsky").is_some_and(|c| c <= at(1_500)),
        "checkpointed in the first stall"
    );
    wait_until("event 3000 committed", Duration::from_secs(30), || {
        committed(&data, "bsky").is_some_and(|c| c >= at(3_000))
    });
    let (last, seen) = first.kill();
    assert_eq!(last, Some(checkpoint), "no second checkpoint before the kill: {seen:?}");

    let out = run(&cfg, "2").arg("--narratives").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    check(out, "run after the kill");
    assert!(
        err.contains(&format!(
            "resumed from the checkpoint of commit {checkpoint}, reading again"
        )),
        "{err}"
    );
    assert!(err.contains("read again the "), "{err}");
    assert!(!err.contains("blind to"), "{err}");
    assert!(!err.contains("short of the store"), "{err}");
    assert_eq!(narratives(&data), want);
}

#[test]
fn events_lost_upstream_are_reported_as_a_gap() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // 10 ms apart: events 1000..2500 span 15 s.
    let events = generate(3_000, T0, 10_000);
    let faults = Faults {
        drop_after: vec![1_000],
        expire_after: vec![(1_000, events[2_500].time_us)],
        ..Faults::default()
    };
    let server = JetstreamReplay::start(events, faults).unwrap();
    let data = data_dir(&dir.join("live"));
    let cfg = config(
        dir,
        "gap",
        &data,
        &jetstream_source(&server.url(), "gap_tolerance = \"1s\"\n"),
    );
    let out = check(run(&cfg, "1.5").output().unwrap(), "run");
    assert!(
        out.contains("GAP in bsky: jetstream replay asked from time_us"),
        "{out}"
    );
    let status = status_json(&data);
    let gaps = status["sources"][0]["gaps"].as_array().unwrap();
    assert_eq!(gaps.len(), 1, "{status}");
    assert!(gaps[0]["to"].as_u64().unwrap() >= T0 + 2_500 * 10_000);
    let text = check(bin().args(["status", "--data"]).arg(&data).output().unwrap(), "status");
    assert!(text.contains("GAP in bsky"), "{text}");
}

#[test]
fn mastodon_with_dropped_streams_a_restart_and_a_killed_run_stores_every_status_once() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut server = MastodonReplay::start(9).unwrap();
    let data = data_dir(&dir.join("live"));
    let cfg = config(
        dir,
        "mastodon",
        &data,
        &format!(
            "[[source]]\nkind = \"mastodon\"\nname = \"tides\"\ninstance = {:?}\nbackoff_initial = \"20ms\"\nbackoff_max = \"200ms\"\n",
            server.url()
        ),
    );
    let first = run(&cfg, "60")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until("the stream", Duration::from_secs(20), || {
        server.stats().stream_connections >= 1
    });
    // Every stream is cut after 25 events: 250 statuses cause many
    // reconnections, each followed by a backfill.
    server.drop_streams_after(Some(25));
    for round in 0..10 {
        server.publish(25);
        if round == 5 {
            server.send_malformed();
            server.restart().unwrap();
        }
        std::thread::sleep(Duration::from_millis(60));
    }
    let last = server.statuses().last().unwrap().id;
    wait_until("the last status committed", Duration::from_secs(20), || {
        committed(&data, "tides").is_some_and(|c| c >= last)
    });
    kill(first);
    // Published while tidewatch is down: backfilled from its checkpoint.
    server.publish(60);
    let out = check(run(&cfg, "2").output().unwrap(), "run after the kill");
    assert!(server.stats().stream_connections >= 7, "{:?}", server.stats());

    let served: Vec<String> = server.statuses().iter().map(|s| s.json.clone()).collect();
    assert_eq!(served.len(), 310);
    let reference = reference(dir, &served);
    let stored = index_dump(&data);
    assert_eq!(stored.len(), reference.len(), "{out}");
    assert!(stored == reference, "stored statuses differ from a plain run's");
    assert!(!out.contains("GAP"), "{out}");
}

#[test]
fn rss_items_are_stored_once_across_outages_polls_and_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let server = RssReplay::start().unwrap();
    server.add_items("harbour", 8);
    let data = data_dir(&dir.join("live"));
    let cfg = config(
        dir,
        "rss",
        &data,
        &format!(
            "[[source]]\nkind = \"rss\"\nname = \"notices\"\nfeeds = [{:?}]\ninterval = \"1s\"\nmin_host_delay = \"10ms\"\nrequest_timeout = \"500ms\"\n",
            server.feed_url("127.0.0.1", "harbour")
        ),
    );
    // Five outages (errors and a feed that never answers) while the run
    // polls, new items published after each.
    let child = run(&cfg, "4")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    for round in 0..5 {
        let failure = if round % 2 == 0 {
            Failure::Status(503)
        } else {
            Failure::Stall
        };
        server.set_failure("harbour", Some(failure));
        std::thread::sleep(Duration::from_millis(1300));
        server.set_failure("harbour", None);
        server.add_items("harbour", 3);
        std::thread::sleep(Duration::from_millis(1300));
    }
    check(child.wait_with_output().unwrap(), "the run through outages");
    assert_eq!(index_dump(&data).len(), 8 + 5 * 3);
    // A second run (a restart) stores only what is new.
    server.add_items("harbour", 5);
    let out = check(run(&cfg, "1.5").output().unwrap(), "second run");
    assert_eq!(index_dump(&data).len(), 8 + 5 * 3 + 5, "{out}");
    assert!(server.stats("harbour").requests >= 10);
}

#[test]
fn pushed_lines_are_acknowledged_once_committed_and_bad_lines_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let data = data_dir(&dir.join("live"));
    let cfg = config(
        dir,
        "push",
        &data,
        "[[source]]\nkind = \"push\"\nname = \"inbox\"\nlisten = \"127.0.0.1:0\"\n",
    );
    // An admin token, for pushing through the API.
    let out = bin()
        .args(["token", "create", "--role", "admin", "--data"])
        .arg(&data)
        .output()
        .unwrap();
    let token = check(out, "token create").trim().to_string();
    // The run also serves the API (`--serve`), read without a token.
    let mut child = run(&cfg, "3")
        .args(["--serve", "127.0.0.1:0", "--anonymous-read"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    let host = |line: &str| {
        let at = line.find("http://").unwrap();
        line[at + 7..].split('/').next().unwrap().to_string()
    };
    let (mut addr, mut api) = (None, None);
    while addr.is_none() || api.is_none() {
        line.clear();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "no push or API address printed"
        );
        if line.starts_with("dashboard: http://") {
            api = Some(host(&line));
        } else if line.contains("http://") {
            addr = Some(host(&line));
        }
    }
    let (addr, api) = (addr.unwrap(), api.unwrap());
    let body = "{\"id\":\"p1\",\"platform\":\"x\",\"text\":\"lantern on the pier\",\"source\":\"s\",\"created_at\":\"2026-03-01T00:00:00Z\"}\n\
                {\"id\":\"p2\",\"platform\":\"x\",\"text\":\"gulls over the harbour\",\"source\":\"s\",\"created_at\":\"2026-03-01T00:01:00Z\"}\n\
                {\"id\":\"p3\",\n";
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    write!(
        s,
        "POST /api/v1/ingest HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 202"), "{answer}");
    let json: serde_json::Value = serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(json["accepted"], 2);
    assert_eq!(json["malformed"], 1);
    assert_eq!(json["errors"][0]["line"], 3);
    assert_eq!(json["committed"], true);
    // Acknowledged means committed: already in the store, and searchable
    // through the run's API.
    assert_eq!(committed(&data, "inbox"), Some(2));
    let mut s = std::net::TcpStream::connect(&api).unwrap();
    write!(
        s,
        "GET /api/v1/search?q=lantern HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("lantern on the pier"), "{answer}");
    assert!(!answer.contains("gulls"), "{answer}");
    // The API's ingest route is the same push source, for admins only.
    let post_api = |auth: &str| {
        let body = "{\"id\":\"p4\",\"platform\":\"x\",\"text\":\"ferry horn at dusk\",\"source\":\"s\",\"created_at\":\"2026-03-01T00:02:00Z\"}\n";
        let mut s = std::net::TcpStream::connect(&api).unwrap();
        write!(
            s,
            "POST /api/v1/ingest HTTP/1.1\r\nhost: x\r\n{auth}content-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).unwrap();
        answer
    };
    let anonymous = post_api("");
    assert!(anonymous.starts_with("HTTP/1.1 401"), "{anonymous}");
    let answer = post_api(&format!("authorization: Bearer {token}\r\n"));
    assert!(answer.starts_with("HTTP/1.1 202"), "{answer}");
    assert!(answer.contains("\"accepted\":1"), "{answer}");
    assert_eq!(committed(&data, "inbox"), Some(3));
    let status = child.wait().unwrap();
    assert!(status.success());
    assert_eq!(index_dump(&data).len(), 3);
}

#[test]
fn example_configs_are_valid_and_nats_is_refused_at_run_time() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    for name in ["jetstream.toml", "mastodon.toml", "rss.toml"] {
        let out = bin()
            .args(["config", "check"])
            .arg(examples.join(name))
            .output()
            .unwrap();
        let text = check(out, name);
        assert!(text.contains("valid"), "{text}");
    }
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("bad.toml");
    std::fs::write(&bad, "[[source]]\nkind = \"jetstream\"\nendpoints = []\n").unwrap();
    let out = bin().args(["config", "check"]).arg(&bad).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("line 1: [[source]] #1 (jetstream \"jetstream\"): endpoints: is empty"));
    let nats = config(
        tmp.path(),
        "nats",
        &tmp.path().join("data"),
        "[[source]]\nkind = \"nats\"\nurl = \"nats://127.0.0.1:4222\"\nsubject = \"posts\"\n",
    );
    let out = run(&nats, "1").output().unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("`run` reads no NATS source"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
