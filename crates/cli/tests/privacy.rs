//! Topics, not people: no raw handle, display name or permalink from the
//! input may appear anywhere tidewatch writes — output, rejects file, data
//! directory, standard output or standard error.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Every identifying string planted in `tests/fixtures/`.
const PLANTED: &[&str] = &[
    // handles and account ids
    "alice_example",
    "bob_example",
    "carol_example",
    "dave_example",
    "erin_example",
    "frankexample0001",
    "graceexample0002",
    "grace-example",
    "heidi_example",
    "ivan_example",
    "judy_example",
    "kim_example",
    "mallory_example",
    "niaj_example",
    "olivia_example",
    "peggy_example",
    "quentin_example",
    "rupert_example",
    // display names
    "Alice Example",
    "Bob Example",
    "Carol Example",
    "Dave Example",
    "Erin Example",
    "Heidi Example",
    "Lee Example",
    // contact details and permalinks
    "heidi.example@example.org",
    "lee.example@example.org",
    "555-123-4567",
    "utm_source",
    "twitter.com/alice_example/status",
    "mastodon.example/@heidi_example/1101",
    "bsky.app/profile",
    "reddit.com/r/example/comments/r1",
    "/r/example/comments",
    "news.example.org/2026/river-levels",
];

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
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

fn assert_clean(what: &str, bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes).to_lowercase();
    for planted in PLANTED {
        assert!(!text.contains(&planted.to_lowercase()), "{what} contains {planted:?}");
    }
}

#[test]
fn no_raw_handle_or_permalink_is_written_anywhere() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let out = tmp.path().join("out.jsonl");
    let mut inputs: Vec<PathBuf> = std::fs::read_dir(fixtures())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    inputs.sort();
    let run = Command::new(env!("CARGO_BIN_EXE_tidewatch"))
        .arg("ingest")
        .arg("--data")
        .arg(&data)
        .arg("--out")
        .arg(&out)
        .args(&inputs)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "ingest failed: {stderr}");

    // The run did read every fixture, so the check below is not vacuous.
    let written = std::fs::read_to_string(&out).unwrap();
    let posts: Vec<serde_json::Value> = written.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let texts: Vec<&str> = posts.iter().filter_map(|p| p["text"].as_str()).collect();
    for needle in [
        "Flood warning",
        "the bridge is closed",
        "bridge news",
        "Storm over the bay",
        "the power is out",
        "Water supply notice",
        "stay safe",
        "River levels rise",
        "Vote now",
        "hello from the canonical file",
        "second post",
    ] {
        assert!(
            texts.iter().any(|t| t.contains(needle)),
            "no post with {needle:?} in {texts:#?}\n{stderr}"
        );
    }
    assert!(written.contains(r#""delete""#), "the Jetstream deletion is kept");
    let rejects = std::fs::read_to_string(tmp.path().join("out.jsonl.rejects")).unwrap();
    assert_eq!(rejects.lines().count(), 1, "{rejects}");
    assert!(rejects.contains("canonical.jsonl:2:"), "{rejects}");

    let mut files = Vec::new();
    all_files(tmp.path(), &mut files);
    assert!(files.len() >= 3, "{files:?}");
    for f in &files {
        assert_clean(&f.display().to_string(), &std::fs::read(f).unwrap());
    }
    assert_clean("stdout", &run.stdout);
    assert_clean("stderr", &run.stderr);
}
