//! `tidewatch eval narratives` on a small generated file with planted
//! copy-paste campaigns: near-duplicate pairs agree with exact Jaccard.

mod common;

use common::ok;

#[test]
fn eval_narratives_reports_agreement_with_exact_jaccard_on_generated_posts() {
    let dir = tempfile::tempdir().unwrap();
    ok(
        &[
            "gen", "--posts", "30000", "--days", "1", "--seed", "5", "--out", "d.jsonl",
        ],
        dir.path(),
    );
    let out = ok(
        &["eval", "narratives", "d.jsonl", "--sample", "2000", "--format", "json"],
        dir.path(),
    );
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    let num = |k: &str| r[k].as_f64().unwrap_or_else(|| panic!("{k} in {out}"));
    assert!(num("posts") >= 30_000.0, "{out}");
    // The planted campaigns make narratives with many text pairs.
    assert!(num("pairs") >= 1_000.0, "{out}");
    assert_eq!(num("sampled"), 2_000.0);
    assert!(num("exact_agreement") >= 0.95, "{out}");
    assert!(num("estimated_agreement") >= 0.95, "{out}");
    assert!(num("near_pairs") > 0.0 && num("recall") > 0.0, "{out}");

    assert_eq!(num("rejected"), 0.0, "{out}");

    let text = ok(&["eval", "narratives", "d.jsonl", "--sample", "100"], dir.path());
    assert!(text.contains("exact Jaccard >= 0.8:"), "{text}");

    // A line that is not a post is counted and skipped; the rest goes on.
    let mut data = std::fs::read_to_string(dir.path().join("d.jsonl")).unwrap();
    data.insert_str(0, "{\"id\": 7, \"oops\"\n");
    std::fs::write(dir.path().join("bad.jsonl"), data).unwrap();
    let out = ok(
        &["eval", "narratives", "bad.jsonl", "--sample", "100", "--format", "json"],
        dir.path(),
    );
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["rejected"], 1, "{out}");
    assert_eq!(r["posts"].as_f64(), Some(num("posts")), "{out}");
}
