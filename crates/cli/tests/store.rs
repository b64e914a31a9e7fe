//! The store end to end: `tidewatch run` killed with SIGKILL at random
//! moments and restarted ends with the same index and aggregates as an
//! uninterrupted run, and nothing under the data directory holds a raw
//! handle or permalink.

use rand::{Rng, SeedableRng};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tidewatch_core::pseudonym::{Keyring, PseudonymConfig};
use tidewatch_core::query::Query;
use tidewatch_engine::datadir::DataDir;
use tidewatch_store::db::Db;
use tidewatch_store::index::PostIndex;
use tidewatch_store::search::SearchRequest;
use tidewatch_store::Store;

mod common;
use common::index_dump;

const FEEDS: &str = r#"
[[feed]]
name = "quakes"
query = 'earthquake OR aftershock OR #earthquake OR 地震'
[[feed]]
name = "football"
query = '(#football OR #matchday OR "champions cup") -penalty'
[[feed]]
name = "tech"
query = '"open source" OR (chip NEAR/3 shortage) OR #ai OR gpu'
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

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tidewatch"))
}

fn check(out: std::process::Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Generated posts in two files (so checkpoints cross a file boundary).
fn inputs(dir: &Path, posts: u64, seed: u64) -> Vec<PathBuf> {
    let all = dir.join("all.jsonl");
    check(
        bin()
            .args([
                "gen",
                "--posts",
                &posts.to_string(),
                "--days",
                "2",
                "--seed",
                &seed.to_string(),
                "--out",
            ])
            .arg(&all)
            .output()
            .unwrap(),
        "gen",
    );
    let text = std::fs::read_to_string(&all).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let (a, b) = lines.split_at(lines.len() * 2 / 5);
    let pa = dir.join("a.jsonl");
    let pb = dir.join("b.jsonl");
    std::fs::write(&pa, a.join("\n") + "\n").unwrap();
    std::fs::write(&pb, b.join("\n") + "\n").unwrap();
    vec![pa, pb]
}

/// A data directory with a fixed keyring, so two runs hash ids alike.
fn data_dir(path: &Path) -> PathBuf {
    let dd = DataDir::open(path).unwrap();
    dd.save_keyring(&Keyring::from_seed(PseudonymConfig::default(), 77))
        .unwrap();
    path.to_path_buf()
}

fn run_args(data: &Path, feeds: &Path, inputs: &[PathBuf], commit_ms: u32) -> Command {
    let mut c = bin();
    c.arg("run")
        .arg("--feeds")
        .arg(feeds)
        .arg("--data")
        .arg(data)
        .args(["--commit-ms", &commit_ms.to_string(), "--retention-days", "0"])
        .args(inputs);
    c
}

#[test]
fn killed_and_restarted_runs_end_with_the_same_index_and_aggregates() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let inputs = inputs(dir, 30_000, 12);
    let feeds = dir.join("feeds.toml");
    std::fs::write(&feeds, FEEDS).unwrap();

    let reference = data_dir(&dir.join("reference"));
    let started = Instant::now();
    check(
        run_args(&reference, &feeds, &inputs, 200).output().unwrap(),
        "reference run",
    );
    let full = started.elapsed();

    let killed = data_dir(&dir.join("killed"));
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2026);
    let mut seqs = Vec::new();
    for _ in 0..20 {
        let mut child = run_args(&killed, &feeds, &inputs, 20)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Anywhere from start-up to the end of a whole run.
        let wait = rng.gen_range(0..full.as_millis().max(50) as u64);
        std::thread::sleep(Duration::from_millis(wait));
        child.kill().unwrap();
        child.wait().unwrap();
        if Store::db_path(&killed).exists() {
            seqs.push(Db::open(&Store::db_path(&killed)).unwrap().commit_seq().unwrap());
        }
    }
    let last = check(
        run_args(&killed, &feeds, &inputs, 20).output().unwrap(),
        "run after the kills",
    );
    // The kills landed mid-run: commits were made between them.
    let distinct: BTreeSet<u64> = seqs.iter().copied().collect();
    assert!(distinct.len() >= 5, "commit seqs after each kill: {seqs:?}\n{last}");

    let (ref_db, killed_db) = (
        Db::open(&Store::db_path(&reference)).unwrap(),
        Db::open(&Store::db_path(&killed)).unwrap(),
    );
    let want = ref_db.aggregates_dump().unwrap();
    assert!(want.len() > 1000, "{} aggregate rows", want.len());
    let got = killed_db.aggregates_dump().unwrap();
    if let Some(i) = (0..want.len().max(got.len())).find(|&i| want.get(i) != got.get(i)) {
        panic!(
            "aggregates differ at row {i}: {:?} after the kills, {:?} uninterrupted\n{last}",
            got.get(i),
            want.get(i)
        );
    }
    assert_eq!(killed_db.checkpoints().unwrap().len(), 2);
    assert!(killed_db.checkpoints().unwrap().values().all(|c| c.done));

    // Spike detection resumed from the store each time: the same alerts,
    // with the same onsets, peaks, ends and expectations. (Their
    // explanations may differ: a resumed run relearns which terms are
    // usual.)
    let spikes = |data: &Path| -> Vec<String> {
        let listed = check(
            bin()
                .args(["alerts", "--format", "json", "--data"])
                .arg(data)
                .output()
                .unwrap(),
            "alerts",
        );
        let mut out: Vec<String> = listed
            .lines()
            .map(|l| {
                let a: serde_json::Value = serde_json::from_str(l).unwrap();
                format!("{} {} {} {}", a["id"], a["kind"], a["feed_name"], a["spike"])
            })
            .collect();
        out.sort();
        out
    };
    let want = spikes(&reference);
    assert!(want.len() >= 3, "{want:?}");
    assert_eq!(spikes(&killed), want, "{last}");

    let want = index_dump(&reference);
    assert_eq!(want.len(), 30_000);
    let got = index_dump(&killed);
    assert_eq!(got.len(), want.len(), "posts in the index");
    assert!(got == want, "index contents differ");

    // Topics, not people: no handle or permalink of the input anywhere
    // under the data directory (index, database, its WAL, keyring), in
    // the stored posts (the index compresses them, so also read back) or
    // in the index's terms.
    let mut handles = BTreeSet::new();
    let mut permalinks = BTreeSet::new();
    for path in &inputs {
        for line in std::fs::read_to_string(path).unwrap().lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            if let Some(a) = v["author"].as_str() {
                handles.insert(a.to_lowercase());
            }
            if let Some(u) = v["url"].as_str() {
                permalinks.insert(u.to_lowercase());
            }
        }
    }
    assert!(handles.len() > 1000 && permalinks.len() > 1000);
    let mut files = Vec::new();
    all_files(&killed, &mut files);
    assert!(files.iter().any(|f| f.to_string_lossy().contains("-wal")) || files.len() > 5);
    let needles: Vec<&String> = handles.iter().chain(&permalinks).collect();
    let finder = aho_corasick::AhoCorasick::builder()
        .ascii_case_insensitive(true)
        .build(&needles)
        .unwrap();
    for f in files {
        let bytes = std::fs::read(&f).unwrap();
        if let Some(m) = finder.find(&bytes) {
            panic!("{} holds {:?}", f.display(), needles[m.pattern().as_usize()]);
        }
    }
    let stored = got.join("\n");
    if let Some(m) = finder.find(stored.as_bytes()) {
        panic!("a stored post holds {:?}", needles[m.pattern().as_usize()]);
    }
    let index = PostIndex::open(&Store::index_dir(&killed), 32 << 20).unwrap();
    for h in handles.iter().step_by(handles.len() / 100) {
        let word = h.split('@').next().unwrap();
        let req = SearchRequest {
            query: Query::parse(&format!("\"{word}\"")).unwrap(),
            from: None,
            to: None,
            feed: None,
            limit: 1,
        };
        assert_eq!(
            index.count(&req).unwrap(),
            0,
            "the handle {word} is a term of the index"
        );
    }
}

#[test]
fn an_input_that_grew_after_a_run_is_read_on_where_that_run_ended() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let parts = inputs(dir, 6_000, 31);
    let feeds = dir.join("feeds.toml");
    std::fs::write(&feeds, FEEDS).unwrap();
    let whole_text = parts
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect::<String>();
    let whole = dir.join("whole.jsonl");
    std::fs::write(&whole, &whole_text).unwrap();

    let reference = data_dir(&dir.join("reference"));
    check(
        run_args(&reference, &feeds, std::slice::from_ref(&whole), 200)
            .output()
            .unwrap(),
        "reference run",
    );

    // The same path, first holding the first part only, then appended to
    // (an export still being written).
    let growing = dir.join("growing");
    let grown = data_dir(&dir.join("grown"));
    let input = std::slice::from_ref(&growing);
    std::fs::write(&growing, std::fs::read_to_string(&parts[0]).unwrap()).unwrap();
    check(run_args(&grown, &feeds, input, 200).output().unwrap(), "first run");
    let mut file = std::fs::OpenOptions::new().append(true).open(&growing).unwrap();
    std::io::Write::write_all(&mut file, std::fs::read_to_string(&parts[1]).unwrap().as_bytes()).unwrap();
    drop(file);
    check(
        run_args(&grown, &feeds, input, 200).output().unwrap(),
        "run after the append",
    );
    // Nothing new: read to the end again, nothing stored twice.
    check(
        run_args(&grown, &feeds, input, 200).output().unwrap(),
        "run without changes",
    );

    let (want, got) = (index_dump(&reference), index_dump(&grown));
    assert_eq!(want.len(), 6_000);
    assert_eq!(got.len(), want.len(), "posts in the index");
    assert!(got == want, "index contents differ");
    let aggregates = |data: &Path| Db::open(&Store::db_path(data)).unwrap().aggregates_dump().unwrap();
    assert_eq!(aggregates(&grown), aggregates(&reference));
}

fn all_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            all_files(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// Twelve days of posts with a three-day retention: the index keeps the
/// last three days, the aggregates keep all twelve, epoch keys older than
/// the seven-day linkage window are gone from the keyring (and listed in
/// the database), and an upstream deletion removes its post.
#[test]
fn retention_key_expiry_and_upstream_deletions() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let posts = dir.join("posts.jsonl");
    check(
        bin()
            // 5,000 posts a day: the decode stage runs at most a few days
            // ahead of enrichment, so every expired epoch had its key.
            .args(["gen", "--posts", "60000", "--days", "12", "--seed", "5", "--out"])
            .arg(&posts)
            .output()
            .unwrap(),
        "gen",
    );
    // A deletion notice for the newest post (kept by retention), in a
    // second input.
    let text = std::fs::read_to_string(&posts).unwrap();
    let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let time_of = |v: &serde_json::Value| tidewatch_core::Timestamp::parse(v["created_at"].as_str().unwrap()).unwrap();
    let mut by_time: Vec<&serde_json::Value> = lines.iter().collect();
    by_time.sort_by_key(|v| time_of(v));
    let (first, other) = (by_time[by_time.len() - 1], by_time[by_time.len() - 2]);
    let deletions = dir.join("deletions.jsonl");
    std::fs::write(
        &deletions,
        format!(
            "{{\"delete\":{{\"id\":{},\"platform\":{},\"deleted_at\":null,\"source\":\"test\"}}}}\n",
            first["id"], first["platform"]
        ),
    )
    .unwrap();
    let feeds = dir.join("feeds.toml");
    std::fs::write(&feeds, FEEDS).unwrap();
    let data = dir.join("data");
    let out = check(
        bin()
            .arg("run")
            .arg("--feeds")
            .arg(&feeds)
            .arg("--data")
            .arg(&data)
            .args(["--retention-days", "3"])
            .arg(&posts)
            .arg(&deletions)
            .output()
            .unwrap(),
        "run",
    );

    let db = Db::open(&Store::db_path(&data)).unwrap();
    let minutes: Vec<i64> = db
        .aggregates_dump()
        .unwrap()
        .iter()
        .filter(|l| l.starts_with("v "))
        .map(|l| l.split(' ').nth(1).unwrap().parse().unwrap())
        .collect();
    let (oldest, newest) = (minutes[0], *minutes.last().unwrap());
    assert!(
        newest - oldest > 11 * 1440,
        "aggregates span the 12 days: {oldest}..{newest}"
    );
    let total: i64 = db
        .aggregates_dump()
        .unwrap()
        .iter()
        .filter(|l| l.starts_with("v "))
        .map(|l| l.split(' ').nth(2).unwrap().parse::<i64>().unwrap())
        .sum();
    assert_eq!(total, 60_000, "every post counted, expired or not");

    let index = PostIndex::open(&Store::index_dir(&data), 32 << 20).unwrap();
    let all = |from: Option<i64>, to: Option<i64>| {
        index
            .count(&SearchRequest {
                query: Query::parse("-zzzqqqnothing").unwrap(),
                from: from.map(tidewatch_core::Timestamp),
                to: to.map(tidewatch_core::Timestamp),
                feed: None,
                limit: 1,
            })
            .unwrap()
    };
    // Retention runs in steps of an hour of event time.
    let cutoff = (newest + 1 - 3 * 1440) * 60_000;
    assert_eq!(
        all(None, Some(cutoff - 3_600_000)),
        0,
        "posts older than 3 days left the index\n{out}"
    );
    let kept = all(None, None);
    assert!(kept > 10_000 && kept < 20_000, "about 3 of 12 days kept: {kept}");

    // Keys: none older than 7 days behind the newest post remains.
    let ring: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(data.join("keyring.json")).unwrap()).unwrap();
    let epochs: Vec<i64> = ring["epoch_keys"]
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.parse().unwrap())
        .collect();
    let newest_epoch = newest / 1440;
    assert!(!epochs.is_empty());
    assert!(
        epochs.iter().all(|e| newest_epoch - e <= 8),
        "epochs {epochs:?}, newest {newest_epoch}"
    );
    let deleted = db.deleted_epochs().unwrap();
    let oldest_epoch = oldest / 1440;
    assert_eq!(
        deleted,
        (oldest_epoch..newest_epoch - 7).collect::<Vec<i64>>(),
        "every epoch older than the linkage window is recorded as deleted"
    );

    // The deleted post is gone; its neighbour in time is not.
    let at = |v: &serde_json::Value| {
        let t = time_of(v).0;
        all(Some(t), Some(t + 1))
    };
    assert_eq!(at(other), 1, "the newest post but one is in the index");
    assert_eq!(at(first), 0, "the deleted post left the index");
}
