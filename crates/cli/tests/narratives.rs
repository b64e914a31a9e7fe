//! Narratives end to end: a copy-paste campaign planted in a generated
//! organic stream is the top narrative of `tidewatch narratives --input`,
//! with every campaign account counted, and the output names no account.

use std::path::Path;

mod common;
use common::{ok, tidewatch, Watched};

/// Whether `s` holds an epoch pseudonym: `u`, digits, `-`.
fn has_pseudonym(s: &str) -> bool {
    let b = s.as_bytes();
    (0..b.len()).any(|i| {
        let digits = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
        b[i] == b'u' && digits > 0 && b.get(i + 1 + digits) == Some(&b'-')
    })
}

const MESSAGE: &str = "Rents in the harbour district doubled while the council looked away, sign and share the petition today #rentfreeze #harbourhomes";
const ACCOUNTS: usize = 60;
const REPOSTERS: usize = 6;

/// The campaign: 60 accounts post the message in 3 waves an hour apart,
/// with the variation copy-paste campaigns show and normalisation removes
/// (a mention in front, case, an emoji, a link with tracking parameters);
/// 6 other accounts repost the first copy (66 accounts in all, more than
/// any organic repost cascade of this stream; counted exactly up to 128).
fn campaign_lines() -> Vec<String> {
    let mut lines = Vec::new();
    let post = |id: String, author: String, minute: usize, second: usize, text: String, repost_of: Option<&str>| {
        serde_json::json!({
            "id": id,
            "platform": "twitter",
            "created_at": format!("2026-03-02T{:02}:{:02}:{:02}.000Z", 10 + minute / 60, minute % 60, second),
            "author": author,
            "text": text,
            "lang": "en",
            "reply_to": null,
            "repost_of": repost_of,
            "url": null,
            "labels": {},
            "source": "test"
        })
        .to_string()
    };
    for wave in 0..3 {
        for a in 0..ACCOUNTS {
            let text = match (a + wave) % 4 {
                0 => MESSAGE.to_string(),
                1 => format!("@desk_{a}_example {MESSAGE}"),
                2 => format!("{} 😡", MESSAGE.to_uppercase()),
                _ => format!("{MESSAGE} https://petition.example/rent?utm_source=acct{a}"),
            };
            let id = format!("9{wave}{a:03}");
            lines.push(post(
                id,
                format!("campaign_{a}_example"),
                wave * 60 + a / 6,
                (a % 6) * 10,
                text,
                None,
            ));
        }
    }
    for r in 0..REPOSTERS {
        let id = format!("8{r:03}");
        lines.push(post(
            id,
            format!("reposter_{r}_example"),
            5,
            r * 3,
            format!("RT @campaign_0_example: {MESSAGE}"),
            Some("90000"),
        ));
    }
    lines
}

/// Writes `posts.jsonl` into `dir`: a generated organic stream with the
/// campaign mixed in, in event-time order.
fn write_posts(dir: &Path) {
    ok(
        &[
            "gen",
            "--posts",
            "20000",
            "--seed",
            "4",
            "--no-planted",
            "--out",
            "organic.jsonl",
        ],
        dir,
    );
    let organic = std::fs::read_to_string(dir.join("organic.jsonl")).unwrap();
    let mut lines: Vec<String> = organic.lines().map(str::to_owned).collect();
    lines.extend(campaign_lines());
    // In event-time order, as a stream arrives (the times share one format).
    let time = |l: &String| {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        v["created_at"].as_str().unwrap_or_default().to_owned()
    };
    lines.sort_by_cached_key(time);
    std::fs::write(dir.join("posts.jsonl"), lines.join("\n") + "\n").unwrap();
}

/// A directory with `posts.jsonl` and `feeds.toml`, one feed on the
/// campaign's words.
fn with_posts_and_feeds() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    write_posts(tmp.path());
    std::fs::write(
        tmp.path().join("feeds.toml"),
        "[[feed]]\nname = \"rent\"\nquery = \"rents OR petition\"\n",
    )
    .unwrap();
    tmp
}

#[test]
fn a_planted_campaign_is_the_top_narrative_with_its_accounts_counted() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write_posts(dir);

    let json = ok(
        &[
            "narratives",
            "--input",
            "posts.jsonl",
            "--format",
            "json",
            "--limit",
            "5",
        ],
        dir,
    );
    let narratives: Vec<serde_json::Value> = json.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(!narratives.is_empty(), "{json}");
    let top = &narratives[0];
    // Every campaign account and every reposter, counted exactly.
    assert_eq!(top["accounts"], (ACCOUNTS + REPOSTERS) as u64, "{top}");
    assert!(top["accounts_exact"].as_bool().unwrap());
    assert_eq!(top["posts"], (3 * ACCOUNTS + REPOSTERS) as u64, "{top}");
    assert_eq!(top["reposts"], REPOSTERS as u64);
    let text = top["representative"].as_str().unwrap().to_lowercase();
    assert!(text.contains("rents in the harbour district doubled"), "{text}");
    // Ranked by accounts: nothing after it has more.
    for n in &narratives[1..] {
        assert!(n["accounts"].as_u64() <= top["accounts"].as_u64());
    }
    // Counts only: no pseudonym and no handle anywhere in the output.
    assert!(!has_pseudonym(&json), "{json}");
    assert!(!json.contains("_example"), "{json}");

    // The text listing shows the same narrative first (under another id:
    // without --data, each run pseudonymises post ids with a fresh key).
    let text = ok(&["narratives", "--input", "posts.jsonl", "--limit", "1"], dir);
    let head = format!(
        "  {} posts ({REPOSTERS} reposts), 66 accounts",
        3 * ACCOUNTS + REPOSTERS
    );
    assert_eq!(text.get(16..16 + head.len()), Some(head.as_str()), "{text}");
    assert!(!has_pseudonym(&text) && !text.contains("_example"), "{text}");

    // Twice the default memory finds the same campaign; no memory at all
    // is refused, naming the flag.
    let big = ok(
        &[
            "narratives",
            "--input",
            "posts.jsonl",
            "--limit",
            "1",
            "--narrative-memory",
            "256",
        ],
        dir,
    );
    assert_eq!(big.get(16..16 + head.len()), Some(head.as_str()), "{big}");
    let zero = tidewatch(
        &["narratives", "--input", "posts.jsonl", "--narrative-memory", "0"],
        dir,
    );
    assert!(!zero.status.success());
    let err = String::from_utf8_lossy(&zero.stderr);
    assert!(err.contains("--narrative-memory"), "{err}");

    // --min-accounts above every narrative lists none.
    let none = ok(
        &[
            "narratives",
            "--input",
            "posts.jsonl",
            "--format",
            "json",
            "--min-accounts",
            "1000",
        ],
        dir,
    );
    assert_eq!(none, "");
}

/// `tidewatch run --coordination` keeps the campaign's narrative and its
/// coordinated group in the data directory, where `narratives` and
/// `coordination` list them.
#[test]
fn run_with_coordination_records_the_campaigns_narrative_and_group() {
    let tmp = with_posts_and_feeds();
    let dir = tmp.path();
    ok(
        &[
            "run",
            "--coordination",
            "--feeds",
            "feeds.toml",
            "--data",
            "data",
            "posts.jsonl",
        ],
        dir,
    );
    let json = ok(
        &["narratives", "--data", "data", "--format", "json", "--limit", "1"],
        dir,
    );
    let top: serde_json::Value = serde_json::from_str(json.lines().next().unwrap_or("null")).unwrap();
    assert_eq!(top["accounts"], (ACCOUNTS + REPOSTERS) as u64, "{json}");
    assert!(!has_pseudonym(&json) && !json.contains("_example"), "{json}");

    let groups = ok(&["coordination", "--data", "data", "--format", "json"], dir);
    let groups: Vec<serde_json::Value> = groups.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let largest = groups
        .iter()
        .filter_map(|g| g["accounts"].as_array().map(Vec::len))
        .max();
    assert!(largest.is_some_and(|n| n >= 30), "{groups:?}");

    // The campaign's waves spike the feed, and its alert says they are
    // mostly copies of earlier text.
    let alerts = ok(&["alerts", "--data", "data", "--format", "json"], dir);
    let shares: Vec<f64> = alerts
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|a| a["feed_name"] == "rent")
        .filter_map(|a| a["near_duplicate_share"].as_f64())
        .collect();
    assert!(!shares.is_empty(), "{alerts}");
    assert!(shares.iter().all(|s| (0.8..=1.0).contains(s)), "{shares:?}");
}

/// Narratives as `tidewatch narratives --data` lists them, groups as
/// `coordination --data` does and emerging topics as `topics --data` does,
/// each sorted: what a stopped and resumed run must agree on with an
/// uninterrupted one. Left out: a narrative's recent
/// activity (`recent_10m`, `previous_60m`, `growth`), which is as of the
/// end of the batch that stored it, and batches fall elsewhere in a resumed
/// run; and the id and epoch a group was first recorded under.
fn findings(dir: &Path, data: &str) -> (Vec<String>, Vec<String>, Vec<String>) {
    let without = |line: &str, fields: &[&str]| {
        let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
        let object = v.as_object_mut().unwrap();
        for f in fields {
            assert!(object.remove(*f).is_some(), "{f} in {line}");
        }
        serde_json::to_string(object).unwrap()
    };
    let mut narratives: Vec<String> = ok(
        &["narratives", "--data", data, "--format", "json", "--limit", "100000"],
        dir,
    )
    .lines()
    .map(str::to_owned)
    .collect();
    narratives.sort();
    let mut groups: Vec<String> = ok(&["coordination", "--data", data, "--format", "json"], dir)
        .lines()
        .map(|l| without(l, &["id", "epoch"]))
        .collect();
    groups.sort();
    let mut topics: Vec<String> = ok(&["topics", "--data", data, "--format", "json"], dir)
        .lines()
        .map(str::to_owned)
        .collect();
    topics.sort();
    (narratives, groups, topics)
}

/// A run stopped in the middle of the campaign (its input ends there) and
/// run again once the input has grown goes on with the emerging topics,
/// narratives and coordination network it had: it stores what one run over
/// the whole input stores. Without the saved state the second run would found the
/// campaign's narrative again under another id and count its edges from
/// zero.
#[test]
fn a_stopped_run_goes_on_with_its_narratives_and_groups() {
    let tmp = with_posts_and_feeds();
    let dir = tmp.path();
    let run = |data: &str, input: &str| {
        let out = tidewatch(
            &["run", "--coordination", "--feeds", "feeds.toml", "--data", data, input],
            dir,
        );
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    run("whole", "posts.jsonl");

    // The same keys, so that both stores hold the same pseudonyms and ids.
    std::fs::create_dir_all(dir.join("parts")).unwrap();
    std::fs::copy(dir.join("whole/keyring.json"), dir.join("parts/keyring.json")).unwrap();
    let all = std::fs::read_to_string(dir.join("posts.jsonl")).unwrap();
    let lines: Vec<&str> = all.lines().collect();
    // Stop halfway through the campaign's second wave.
    let stop = lines.iter().position(|l| l.contains("\"id\":\"91030\"")).unwrap();
    std::fs::write(dir.join("growing.jsonl"), lines[..stop].join("\n") + "\n").unwrap();
    let first = run("parts", "growing.jsonl");
    assert!(!first.contains("resumed"), "{first}");
    // The saved state holds pseudonyms and redacted text, never a handle.
    let state = std::fs::read(dir.join("parts/detectors.state")).unwrap();
    let mut input = state.as_slice();
    tidewatch_engine::state::saved_commit(&mut input).unwrap();
    let state = String::from_utf8_lossy(&zstd::decode_all(input).unwrap()).into_owned();
    assert!(has_pseudonym(&state) && state.contains("Rents in the harbour district"));
    assert!(!state.contains("_example"), "a handle in the saved state");
    std::fs::write(dir.join("growing.jsonl"), all).unwrap();
    let second = run("parts", "growing.jsonl");
    assert!(second.contains("resumed where the last run stopped"), "{second}");

    let (narratives, groups, topics) = findings(dir, "parts");
    let (whole_narratives, whole_groups, whole_topics) = findings(dir, "whole");
    assert!(narratives
        .iter()
        .any(|n| n.contains(&format!("\"accounts\":{}", ACCOUNTS + REPOSTERS))));
    let differ = |a: &[String], b: &[String]| {
        let only: Vec<&String> = a.iter().filter(|x| !b.contains(x)).take(3).collect();
        let missing: Vec<&String> = b.iter().filter(|x| !a.contains(x)).take(3).collect();
        format!(
            "{} against {}; only here: {only:?}; missing: {missing:?}",
            a.len(),
            b.len()
        )
    };
    assert!(
        narratives == whole_narratives,
        "narratives: {}",
        differ(&narratives, &whole_narratives)
    );
    assert!(!groups.is_empty());
    assert!(groups == whole_groups, "groups: {}", differ(&groups, &whole_groups));
    assert!(topics == whole_topics, "topics: {}", differ(&topics, &whole_topics));
}

/// A run killed with SIGKILL after a checkpoint cannot save its state;
/// the next run goes on from the checkpoint and reads the input again from
/// there to where the store stands, for the detectors only: it stores what
/// one uninterrupted run stores.
#[test]
fn a_killed_run_goes_on_from_its_checkpoint_with_nothing_missed() {
    use std::process::Command;
    use std::time::Duration;
    let tmp = with_posts_and_feeds();
    let dir = tmp.path();
    let whole = tidewatch(
        &[
            "run",
            "--coordination",
            "--feeds",
            "feeds.toml",
            "--data",
            "whole",
            "posts.jsonl",
        ],
        dir,
    );
    assert!(whole.status.success(), "{}", String::from_utf8_lossy(&whole.stderr));
    std::fs::create_dir_all(dir.join("killed")).unwrap();
    std::fs::copy(dir.join("whole/keyring.json"), dir.join("killed/keyring.json")).unwrap();

    // Paced at 200x the day takes 7 minutes: commits every 200 ms, a
    // checkpoint every 2 s, killed a second after the second one.
    let mut run = Watched::spawn(
        Command::new(env!("CARGO_BIN_EXE_tidewatch"))
            .args(["run", "--coordination", "--feeds", "feeds.toml", "--data", "killed"])
            .args([
                "--commit-ms",
                "200",
                "--checkpoint-secs",
                "2",
                "--speed",
                "200",
                "posts.jsonl",
            ])
            .current_dir(dir),
    );
    run.next_checkpoint(Duration::from_secs(60));
    run.next_checkpoint(Duration::from_secs(60));
    assert!(!run.seen.iter().any(|l| l.contains("warning")), "{:?}", run.seen);
    std::thread::sleep(Duration::from_secs(1));
    run.kill();

    let again = tidewatch(
        &[
            "run",
            "--coordination",
            "--feeds",
            "feeds.toml",
            "--data",
            "killed",
            "posts.jsonl",
        ],
        dir,
    );
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(again.status.success(), "{err}");
    assert!(err.contains("resumed from the checkpoint of commit"), "{err}");
    assert!(err.contains("reading again what commits"), "{err}");
    assert!(
        err.contains("committed after the checkpoint, for the detectors"),
        "{err}"
    );

    let (narratives, groups, topics) = findings(dir, "killed");
    let (whole_narratives, whole_groups, whole_topics) = findings(dir, "whole");
    assert!(!groups.is_empty());
    assert_eq!(narratives.len(), whole_narratives.len());
    assert!(narratives == whole_narratives, "narratives differ");
    assert_eq!(groups, whole_groups);
    assert_eq!(topics, whole_topics);
}

#[test]
fn the_pseudonym_check_recognises_pseudonyms() {
    assert!(has_pseudonym("by u20514-0123456789abcdef0123"));
    assert!(!has_pseudonym("uses u-turns and u2"));
}
