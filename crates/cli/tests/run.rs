//! `tidewatch run` end to end: the per-feed series it writes agree with the
//! reference query evaluator applied to every post on its own.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use tidewatch_core::enrich::Enricher;
use tidewatch_core::pseudonym::{Keyring, PseudonymConfig};
use tidewatch_core::query::{eval, Query};
use tidewatch_core::redact::PublicAccounts;
use tidewatch_core::{Post, Timestamp};

mod common;
use common::Watched;

const FEEDS: &[(&str, &str)] = &[
    ("quakes", "earthquake OR aftershock OR #earthquake OR 地震"),
    (
        "football-not-penalty",
        "(#football OR #matchday OR \"champions cup\") -penalty",
    ),
    ("tech-near", "\"open source\" OR (chip NEAR/3 shortage) OR #ai"),
    ("german", "lang:de"),
    ("negative-transit", "(metro OR train* OR bus) sentiment:negative"),
    ("reposts", "is:repost"),
];

fn tidewatch(args: &[&str], dir: &Path) -> std::process::Output {
    let out = Command::new(env!("CARGO_BIN_EXE_tidewatch"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "tidewatch {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn series_totals_equal_the_reference_evaluator() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    tidewatch(
        &[
            "gen",
            "--posts",
            "20000",
            "--days",
            "1",
            "--seed",
            "4",
            "--out",
            "posts.jsonl",
        ],
        dir,
    );
    let mut toml = String::new();
    for (name, query) in FEEDS {
        toml.push_str(&format!("[[feed]]\nname = \"{name}\"\nquery = '{query}'\n\n"));
    }
    std::fs::write(dir.join("feeds.toml"), toml).unwrap();
    let out = tidewatch(&["run", "--feeds", "feeds.toml", "--data", "data", "posts.jsonl"], dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("20,000 posts"), "{stdout}");

    // Totals per feed from the day series.
    let day = std::fs::read_to_string(dir.join("data/series/series-day.csv")).unwrap();
    let mut lines = day.lines();
    assert_eq!(
        lines.next().unwrap(),
        "feed_name,feed,resolution,start,count,mean_compound,share_pos,share_neg,langs,top_hashtags,top_terms,top_domains"
    );
    let mut got: HashMap<String, u64> = HashMap::new();
    for line in lines {
        let cols: Vec<&str> = line.split(',').collect();
        *got.entry(cols[0].to_string()).or_default() += cols[4].parse::<u64>().unwrap();
    }

    // The reference: every post enriched and evaluated alone.
    let ring = Arc::new(Keyring::from_seed(PseudonymConfig::default(), 1));
    let mut enricher = Enricher::new(ring, Arc::new(PublicAccounts::default()), Timestamp(0));
    let queries: Vec<(&str, Query)> = FEEDS.iter().map(|(n, q)| (*n, Query::parse(q).unwrap())).collect();
    let mut want: HashMap<String, u64> = HashMap::new();
    for line in std::fs::read_to_string(dir.join("posts.jsonl")).unwrap().lines() {
        let mut post = Post::from_json(line.as_bytes()).unwrap();
        enricher.enrich(&mut post);
        for (name, q) in &queries {
            if eval::matches_post(q, &post) {
                *want.entry(name.to_string()).or_default() += 1;
            }
        }
    }
    for (name, _) in FEEDS {
        assert!(
            want.get(*name).copied().unwrap_or(0) > 20,
            "feed {name} matches too little to test: {want:?}"
        );
        assert_eq!(got.get(*name), want.get(*name), "feed {name}");
    }
    let minute = std::fs::read_to_string(dir.join("data/series/series-minute.csv")).unwrap();
    assert!(minute.lines().count() > 1000);
    let stats = std::fs::read_to_string(dir.join("data/series/feed-stats.csv")).unwrap();
    assert_eq!(stats.lines().count(), FEEDS.len() + 1, "{stats}");
    // These feeds need verifying (NEAR, NOT, phrases), so one is named.
    assert!(stdout.contains("slowest feed to verify: "), "{stdout}");
}

#[test]
fn feeds_check_prints_the_column_of_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tidewatch"))
        .args(["feeds", "check", "climate AND (flood OR"])
        .current_dir(tmp.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("column 22"), "{err}");
    let ok = tidewatch(&["feeds", "check", "Café NEAR/2 #Klima"], tmp.path());
    let text = String::from_utf8_lossy(&ok.stdout);
    assert!(text.contains("normalised: cafe NEAR/2 #klima"), "{text}");
    assert!(text.contains("presearch:"), "{text}");
}

/// A generated day with planted bursts in `dir/posts.jsonl`, a feed per
/// generated topic in `dir/feeds.toml`; returns the ground truth.
fn generated_day(dir: &Path) -> serde_json::Value {
    tidewatch(
        &[
            "gen",
            "--posts",
            "150000",
            "--days",
            "1",
            "--seed",
            "9",
            "--out",
            "posts.jsonl",
            "--truth",
            "truth.json",
        ],
        dir,
    );
    let truth: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("truth.json")).unwrap()).unwrap();
    let mut toml = String::new();
    for t in truth["topics"].as_array().unwrap() {
        let (name, query) = (t["name"].as_str().unwrap(), t["query"].as_str().unwrap());
        toml.push_str(&format!("[[feed]]\nname = \"{name}\"\nquery = '{query}'\n\n"));
    }
    std::fs::write(dir.join("feeds.toml"), toml).unwrap();
    truth
}

#[test]
fn alerts_are_raised_for_planted_bursts_and_not_again_after_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let truth = generated_day(dir);
    let bursts: Vec<&serde_json::Value> = truth["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "burst")
        .collect();
    assert!(!bursts.is_empty());

    let first = tidewatch(&["run", "--feeds", "feeds.toml", "--data", "data", "posts.jsonl"], dir);
    let first = String::from_utf8_lossy(&first.stdout).to_string();
    let listed = tidewatch(&["alerts", "--data", "data", "--format", "json"], dir);
    let alerts: Vec<serde_json::Value> = String::from_utf8_lossy(&listed.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // Every planted burst has an alert on its topic's feed within 5 minutes of its start.
    for b in &bursts {
        let start = tidewatch_core::Timestamp::parse(b["start"].as_str().unwrap())
            .unwrap()
            .0;
        let found = alerts.iter().any(|a| {
            let onset = tidewatch_core::Timestamp::parse(a["spike"]["onset"].as_str().unwrap())
                .unwrap()
                .0;
            a["feed_name"] == b["topic"] && (onset - start).abs() <= 5 * 60_000
        });
        assert!(found, "no alert for {b}\n{first}");
    }
    assert_eq!(first.matches("ALERT ").count(), alerts.len(), "each alert printed once");

    // The same input again into the same data directory raises nothing new.
    let second = tidewatch(&["run", "--feeds", "feeds.toml", "--data", "data", "posts.jsonl"], dir);
    let second = String::from_utf8_lossy(&second.stdout);
    assert!(!second.contains("ALERT "), "{second}");
    let listed_again = tidewatch(&["alerts", "--data", "data", "--format", "json"], dir);
    assert_eq!(
        String::from_utf8_lossy(&listed_again.stdout).lines().count(),
        alerts.len()
    );
}

#[test]
fn a_run_stopped_and_resumed_raises_the_alerts_of_one_run() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let truth = generated_day(dir);
    // Each listed alert (its latest record), by id.
    let alerts = |data: &str| -> std::collections::BTreeMap<String, serde_json::Value> {
        let listed = tidewatch(&["alerts", "--data", data, "--format", "json"], dir);
        String::from_utf8_lossy(&listed.stdout)
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .map(|a| (a["id"].as_str().unwrap().to_string(), a))
            .collect()
    };
    let keys = |listed: &std::collections::BTreeMap<String, serde_json::Value>| -> Vec<String> {
        listed
            .values()
            .map(|a| format!("{} {} {}", a["id"], a["kind"], a["spike"]))
            .collect()
    };
    let run = |data: &str, inputs: &[&str]| {
        let mut args = vec!["run", "--feeds", "feeds.toml", "--data", data];
        args.extend_from_slice(inputs);
        tidewatch(&args, dir)
    };
    let text = std::fs::read_to_string(dir.join("posts.jsonl")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    // The day in two files, cut at the first post at or after `cut`.
    let split = |cut: i64, name: &str| -> [String; 2] {
        let at = lines
            .iter()
            .position(|l| {
                let p: Post = serde_json::from_str(l).unwrap();
                p.created_at.is_some_and(|t| t.0 >= cut)
            })
            .unwrap();
        let files = [format!("{name}-1.jsonl"), format!("{name}-2.jsonl")];
        for (file, part) in files.iter().zip([&lines[..at], &lines[at..]]) {
            let body: String = part.iter().map(|l| format!("{l}\n")).collect();
            std::fs::write(dir.join(file), body).unwrap();
        }
        files
    };
    let day_start = Timestamp::parse(truth["start"].as_str().unwrap()).unwrap().0;
    let burst_start = truth["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "burst")
        .map(|e| Timestamp::parse(e["start"].as_str().unwrap()).unwrap().0)
        .filter(|&t| t >= day_start + 5 * Timestamp::HOUR)
        .min()
        .expect("a burst after the fifth hour");

    // One run over the whole day (in two files, as the stopped runs read it).
    let [one, two] = split(burst_start - Timestamp::HOUR, "before");
    run("whole", &[&one, &two]);
    let whole = alerts("whole");

    // Stopped an hour before the burst (the detector's warm-up is two
    // hours), then run again over both files (the first is skipped: its
    // posts are stored): the same alerts.
    run("stopped-before", &[&one]);
    let resumed = run("stopped-before", &[&one, &two]);
    let said = String::from_utf8_lossy(&resumed.stderr);
    assert!(said.contains("spike detection resumed from"), "{said}");
    let cut = burst_start - Timestamp::HOUR;
    let after_cut: Vec<&serde_json::Value> = whole
        .values()
        .filter(|a| {
            let onset = Timestamp::parse(a["spike"]["onset"].as_str().unwrap()).unwrap().0;
            (cut..cut + 2 * Timestamp::HOUR).contains(&onset)
        })
        .collect();
    assert!(
        !after_cut.is_empty(),
        "no alert within two hours of the stop: {whole:?}"
    );
    assert_eq!(keys(&alerts("stopped-before")), keys(&whole));

    // Stopped three minutes into the burst: its alert, open across the
    // stop, closes exactly as in the one run, explanation included.
    let [one, two] = split(burst_start + 3 * Timestamp::MINUTE, "during");
    run("stopped-during", &[&one]);
    let open_at_stop = alerts("stopped-during");
    run("stopped-during", &[&one, &two]);
    let resumed = alerts("stopped-during");
    assert_eq!(keys(&resumed), keys(&whole));
    let spanning: Vec<&String> = open_at_stop
        .iter()
        .filter(|(_, a)| a["kind"] == "opened")
        .map(|(id, _)| id)
        .collect();
    assert!(!spanning.is_empty(), "no alert open at the stop: {open_at_stop:?}");
    // Representative posts are left out: each data directory has its own
    // keys, so the same post has another pseudonymous id.
    let without_posts = |a: &serde_json::Value| {
        let mut a = a.clone();
        a.as_object_mut().unwrap().remove("posts");
        a
    };
    for id in spanning {
        assert_eq!(resumed[id]["kind"], "closed");
        assert_eq!(without_posts(&resumed[id]), without_posts(&whole[id]), "alert {id}");
    }
}

/// A directory with a generated day of 20,000 posts (`in.jsonl`) and one
/// feed that matches most of them (`feeds.toml`): paced at 200x, a run
/// over it takes 7 minutes, long enough to signal or kill it mid-way.
fn paced_day() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let gen = tidewatch(&["gen", "--posts", "20000", "--out", "in.jsonl"], tmp.path());
    assert!(gen.status.success());
    std::fs::write(
        tmp.path().join("feeds.toml"),
        "[[feed]]\nname = \"all\"\nquery = \"the OR a\"\n",
    )
    .unwrap();
    tmp
}

/// A service manager stops `run` with SIGTERM: it commits what it read,
/// saves the detectors' state and exits with success. SIGHUP keeps the
/// disposition the parent gave it: under `nohup` (ignored) the run
/// outlives its terminal.
#[test]
fn sigterm_stops_a_run_cleanly_and_a_hangup_under_nohup_does_not() {
    use std::process::Stdio;
    use std::time::{Duration, Instant};
    let tmp = paced_day();
    let dir = tmp.path();
    // Paced at 200x, the generated day takes 7 minutes: it is still
    // running when the signals come.
    let mut child = Command::new("nohup")
        .arg(env!("CARGO_BIN_EXE_tidewatch"))
        .args(["run", "--feeds", "feeds.toml", "--data", "data", "--narratives"])
        .args(["--speed", "200", "in.jsonl"])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id().to_string();
    let signal = |name: &str| {
        let sent = Command::new("kill").args([name, &pid]).status().unwrap();
        assert!(sent.success());
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while !dir.join("data/tidewatch.db").exists() {
        assert!(Instant::now() < deadline, "no store within 60 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_secs(1));
    signal("-HUP");
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        child.try_wait().unwrap().is_none(),
        "a hangup under nohup stopped the run"
    );
    signal("-TERM");
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("stopping:"), "{err}");
    assert!(err.contains("detectors' state saved for the next run"), "{err}");
    assert!(dir.join("data/detectors.state").exists());
}

/// A run killed with SIGKILL cannot save its detectors' state, but its
/// last checkpoint can: the next run goes on from that checkpoint (its
/// narratives and emerging topics), saying which commits it did not see,
/// instead of starting empty.
#[test]
fn a_run_killed_after_a_checkpoint_goes_on_from_it() {
    use std::time::Duration;
    let tmp = paced_day();
    let dir = tmp.path();
    // Paced at 200x, the generated day takes 7 minutes; commits every
    // 200 ms and a checkpoint every 3 s.
    let mut run = Watched::spawn(
        Command::new(env!("CARGO_BIN_EXE_tidewatch"))
            .args(["run", "--feeds", "feeds.toml", "--data", "data", "--narratives"])
            .args([
                "--commit-ms",
                "200",
                "--checkpoint-secs",
                "3",
                "--speed",
                "200",
                "in.jsonl",
            ])
            .current_dir(dir),
    );
    let first = run.next_checkpoint(Duration::from_secs(60));
    assert!(!run.seen.iter().any(|l| l.contains("warning")), "{:?}", run.seen);
    // Commits go on after the checkpoint; the next one is 3 s away.
    std::thread::sleep(Duration::from_secs(1));
    run.kill();

    let again = tidewatch(
        &[
            "run",
            "--feeds",
            "feeds.toml",
            "--data",
            "data",
            "--narratives",
            "in.jsonl",
        ],
        dir,
    );
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(again.status.success(), "{err}");
    assert!(!err.contains("start empty"), "{err}");
    let resumed = err
        .lines()
        .find(|l| l.starts_with("resumed from the checkpoint of commit "))
        .unwrap_or_else(|| panic!("not resumed from a checkpoint: {err}"));
    let commit: u64 = resumed["resumed from the checkpoint of commit ".len()..]
        .split(',')
        .next()
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("{resumed}"));
    // That one, or a later one written as the kill came.
    assert!(commit >= first, "{commit} before {first}: {resumed}");
    assert!(resumed.contains("the last run did not stop cleanly"), "{resumed}");
    assert!(resumed.contains(" narratives"), "{resumed}");
    assert!(err.contains("detectors' state saved for the next run"), "{err}");
}
