//! Narratives end to end: a copy-paste campaign planted in a generated
//! organic stream is the top narrative of `tidewatch narratives --input`,
//! with every campaign account counted, and the output names no account.

use std::path::Path;

mod common;
use common::{ok, tidewatch};

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
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write_posts(dir);
    std::fs::write(
        dir.join("feeds.toml"),
        "[[feed]]\nname = \"rent\"\nquery = \"rents OR petition\"\n",
    )
    .unwrap();
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

#[test]
fn the_pseudonym_check_recognises_pseudonyms() {
    assert!(has_pseudonym("by u20514-0123456789abcdef0123"));
    assert!(!has_pseudonym("uses u-turns and u2"));
}
