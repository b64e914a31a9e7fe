//! Emerging topics end to end: `tidewatch gen` plants a new topic in a day
//! of posts, `tidewatch run` announces it live and stores it,
//! `tidewatch topics` lists it with a suggested feed, and
//! `tidewatch feeds add --from-topic` adopts that feed into a feeds file
//! that `tidewatch feeds validate` accepts.

use std::collections::HashSet;

mod common;
use common::{ok, tidewatch};

#[test]
fn a_planted_topic_is_announced_listed_and_adopted_as_a_feed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // A day of 300k posts holds one planted emerging topic (quorvex).
    ok(
        &[
            "gen",
            "--posts",
            "300000",
            "--days",
            "1",
            "--seed",
            "3",
            "--out",
            "posts.jsonl",
            "--truth",
            "truth.json",
        ],
        dir,
    );
    let truth: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("truth.json")).unwrap()).unwrap();
    let planted = truth["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "emerging_topic")
        .expect("a planted emerging topic");
    // Its invented keys: the first word of its name, its hashtag, its domain.
    let mut keys: Vec<String> = vec![planted["terms"][0]
        .as_str()
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .to_string()];
    for field in ["hashtags", "domains"] {
        keys.extend(
            planted[field]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_string()),
        );
    }
    let name = keys[0].clone();

    std::fs::write(
        dir.join("feeds.toml"),
        "[[feed]]\nname = \"quakes\"\nquery = \"earthquake OR #earthquake\"\n",
    )
    .unwrap();
    let run = ok(
        &[
            "run",
            "--feeds",
            "feeds.toml",
            "--data",
            "data",
            "--threads",
            "2",
            "posts.jsonl",
        ],
        dir,
    );
    let live: Vec<&str> = run.lines().filter(|l| l.starts_with("TOPIC ")).collect();
    assert!(
        live.iter().any(|l| l.contains(&name) && l.contains("suggested feed: ")),
        "{name} announced live: {live:#?}"
    );
    let ids: HashSet<&str> = live.iter().filter_map(|l| l.split([' ', ':']).nth(1)).collect();
    assert_eq!(ids.len(), live.len(), "each topic is announced once");

    // Listed from the store, one JSON object a line.
    let listed = ok(&["topics", "--data", "data", "--format", "json"], dir);
    let topics: Vec<serde_json::Value> = listed.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(topics.len() >= live.len(), "every announced topic is stored");
    let is_planted = |t: &serde_json::Value| {
        t["terms"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| keys.iter().any(|n| k["text"] == n.as_str()))
    };
    let topic = topics
        .iter()
        .filter(|t| is_planted(t) && t["suggested"]["query"].is_string())
        .max_by(|a, b| a["score"].as_f64().unwrap().total_cmp(&b["score"].as_f64().unwrap()))
        .unwrap_or_else(|| panic!("no stored topic with {keys:?}: {listed}"));
    let id = topic["id"].as_str().unwrap();
    let query = topic["suggested"]["query"].as_str().unwrap();
    assert!(keys.iter().any(|k| query.contains(k.as_str())), "{query}");
    // The table lists it too, and `--since` after the end of the day none.
    assert!(ok(&["topics", "--data", "data"], dir).contains(id));
    let later = ok(&["topics", "--data", "data", "--since", "2026-03-04T00:00:00Z"], dir);
    assert_eq!(later.lines().count(), 1, "only the header: {later}");

    // Topics are about words: no author handle of the stream is a term.
    let posts = std::fs::read_to_string(dir.join("posts.jsonl")).unwrap();
    let authors: HashSet<String> = posts
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|p| p["author"].as_str().map(str::to_lowercase))
        .collect();
    for t in &topics {
        for k in t["terms"].as_array().unwrap() {
            let text = k["text"].as_str().unwrap();
            assert!(!authors.contains(text), "a handle as a topic term: {text}");
        }
    }

    // Adopted with one command; the feeds file stays valid.
    let added = ok(
        &[
            "feeds",
            "add",
            "--from-topic",
            id,
            "--feeds",
            "feeds.toml",
            "--data",
            "data",
        ],
        dir,
    );
    let feed_name = format!("topic-{name}");
    assert!(
        added.starts_with(&format!("added feed {feed_name:?} to feeds.toml: {query}")),
        "{added}"
    );
    let validated = ok(&["feeds", "validate", "feeds.toml"], dir);
    assert_eq!(validated.trim(), "feeds.toml: 2 feeds, all valid");
    let toml = std::fs::read_to_string(dir.join("feeds.toml")).unwrap();
    assert!(toml.contains(&format!("name = \"{feed_name}\"")), "{toml}");
    // Twice under the same name is refused, and the file is unchanged.
    let again = tidewatch(
        &[
            "feeds",
            "add",
            "--from-topic",
            id,
            "--feeds",
            "feeds.toml",
            "--data",
            "data",
        ],
        dir,
    );
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already has a feed named"));
    assert_eq!(std::fs::read_to_string(dir.join("feeds.toml")).unwrap(), toml);
    // An unknown topic is an error.
    let unknown = tidewatch(
        &[
            "feeds",
            "add",
            "--from-topic",
            "ffffffffffffffff",
            "--feeds",
            "feeds.toml",
            "--data",
            "data",
        ],
        dir,
    );
    assert!(!unknown.status.success());
}
