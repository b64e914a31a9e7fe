//! Privacy of `tidewatch coordination` and `tidewatch eval coordination`:
//! no group of fewer than k = 5 accounts is ever output, in any format or
//! mode.
//!
//! The input: a random organic background (random authors and words, one
//! post reposted by hundreds of accounts within minutes, as a viral post
//! is), plus small clusters of 2, 3, 4 and 4 accounts that post the same
//! text with the same link and repost the same post together, round after
//! round — coordinated, but too few to show — and one such cluster of 6.
//! Every output must show the cluster of 6 and nothing else.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use tidewatch_core::{Post, Timestamp};

mod common;
use common::{ok, tidewatch};

const START: i64 = 1_772_409_600_000; // 2026-03-02T00:00:00Z
const WORDS: [&str; 24] = [
    "river", "market", "storm", "garden", "ticket", "engine", "harbor", "lantern", "meadow", "signal", "copper",
    "violet", "thunder", "pepper", "canyon", "marble", "orbit", "willow", "ember", "falcon", "glacier", "nectar",
    "quartz", "saddle",
];

fn post(id: String, author: String, t_ms: i64, text: String, repost_of: Option<String>) -> Post {
    Post {
        id,
        platform: "twitter".into(),
        author: Some(author),
        created_at: Some(Timestamp(START + t_ms)),
        text,
        repost_of,
        ..Default::default()
    }
}

/// The input described in the module doc, in time order.
fn input(seed: u64) -> Vec<Post> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut posts = Vec::new();
    // Organic background over three hours.
    for i in 0..6000 {
        let n = rng.gen_range(6..14);
        let text: Vec<&str> = (0..n).map(|_| WORDS[rng.gen_range(0..WORDS.len())]).collect();
        posts.push(post(
            format!("org{i}"),
            format!("organic_example_{}", rng.gen_range(0..800)),
            rng.gen_range(0..3 * 3_600_000),
            text.join(" "),
            None,
        ));
    }
    // A viral post reposted by 300 distinct accounts within ten minutes.
    for i in 0..300 {
        posts.push(post(
            format!("viral{i}"),
            format!("fan_example_{i}"),
            3_600_000 + rng.gen_range(0..600_000),
            String::new(),
            Some("org0".into()),
        ));
    }
    // Coordinated clusters: each round, every member posts the cluster's
    // text and link within seconds and reposts the round's post.
    for (c, size) in [2usize, 3, 4, 4, 6].into_iter().enumerate() {
        for round in 0..5i64 {
            let t0 = 600_000 + c as i64 * 97_000 + round * 1_800_000;
            for m in 0..size {
                let author = format!("cluster{c}_member{m}_example");
                let t = t0 + m as i64 * 1500 + rng.gen_range(0..500);
                posts.push(post(
                    format!("c{c}r{round}m{m}"),
                    author.clone(),
                    t,
                    format!(
                        "cluster {c} says the {} {} {} is rigged, round {round} https://campaign{c}.example/story/{round}",
                        WORDS[c], WORDS[c + 5], WORDS[c + 10]
                    ),
                    None,
                ));
                posts.push(post(
                    format!("c{c}r{round}m{m}rp"),
                    author,
                    t + 2000,
                    String::new(),
                    Some(format!("org{}", 100 + c as i64 * 10 + round)),
                ));
            }
        }
    }
    posts.sort_by_key(|p| p.created_at);
    posts
}

fn write_input(dir: &Path, seed: u64) {
    let mut raw = Vec::new();
    for p in input(seed) {
        p.write_json(&mut raw);
    }
    std::fs::write(dir.join("in.jsonl"), raw).unwrap();
}

/// Union–find components of an undirected edge list, by account.
fn components(edges: &[(String, String)]) -> Vec<BTreeSet<String>> {
    let mut parent: HashMap<String, String> = HashMap::new();
    fn find(p: &mut HashMap<String, String>, x: &str) -> String {
        let mut x = x.to_string();
        loop {
            let up = p.entry(x.clone()).or_insert_with(|| x.clone()).clone();
            if up == x {
                return x;
            }
            x = up;
        }
    }
    for (a, b) in edges {
        let (ra, rb) = (find(&mut parent, a), find(&mut parent, b));
        if ra != rb {
            parent.insert(ra, rb);
        }
    }
    let keys: Vec<String> = parent.keys().cloned().collect();
    let mut by_root: HashMap<String, BTreeSet<String>> = HashMap::new();
    for k in keys {
        let r = find(&mut parent, &k);
        by_root.entry(r).or_default().insert(k);
    }
    by_root.into_values().collect()
}

/// The (source, target) pairs of a `source,target,weight,type` CSV.
fn csv_edges(text: &str) -> Vec<(String, String)> {
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("source,target,weight,type"));
    lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            assert_eq!(f.len(), 4, "{l}");
            assert!(f[2].parse::<u32>().unwrap() >= 2, "{l}");
            (f[0].to_string(), f[1].to_string())
        })
        .collect()
}

/// Accounts by group.
type Groups = HashMap<String, BTreeSet<String>>;

/// Nodes of a GEXF graph by the group attribute, and its edges.
fn gexf(text: &str) -> (Groups, Vec<(String, String)>) {
    assert!(text.starts_with("<?xml"));
    assert!(text.contains(r#"version="1.3""#));
    let attr = |line: &str, name: &str| -> String {
        let key = format!("{name}=\"");
        let start = line.find(&key).unwrap() + key.len();
        line[start..start + line[start..].find('"').unwrap()].to_string()
    };
    let mut groups: HashMap<String, BTreeSet<String>> = HashMap::new();
    let mut edges = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with("<node ") {
            groups.entry(attr(line, "value")).or_default().insert(attr(line, "id"));
        } else if line.starts_with("<edge ") {
            edges.push((attr(line, "source"), attr(line, "target")));
        }
    }
    (groups, edges)
}

/// Checks that an output's accounts are the one cluster of 6: `sets` are
/// the output's groups or components.
fn only_the_big_cluster(what: &str, sets: &[BTreeSet<String>]) {
    assert!(!sets.is_empty(), "{what}: the cluster of 6 is shown");
    for s in sets {
        assert!(s.len() >= 5, "{what}: a group of {} accounts", s.len());
    }
    let all: BTreeSet<&String> = sets.iter().flatten().collect();
    assert_eq!(all.len(), 6, "{what}: only the cluster of 6 ({} accounts)", all.len());
}

#[test]
fn no_group_under_k_accounts_is_output_in_any_format() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write_input(dir, 11);

    // Native, JSON: group records.
    let out = ok(&["coordination", "--input", "in.jsonl", "--format", "json"], dir);
    let groups: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let sets: Vec<BTreeSet<String>> = groups
        .iter()
        .map(|g| {
            g["accounts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap().to_string())
                .collect()
        })
        .collect();
    only_the_big_cluster("json", &sets);
    assert!(!out.contains("_example"), "no handle in the output");
    for g in &groups {
        let ev = g["evidence"].as_array().unwrap();
        assert!(!ev.is_empty(), "a group keeps its evidence");
        assert!(ev.iter().all(|e| e["posts"].as_array().unwrap().len() == 2));
    }

    // Native, CSV and GEXF.
    let out = ok(&["coordination", "--input", "in.jsonl", "--format", "csv"], dir);
    only_the_big_cluster("csv", &components(&csv_edges(&out)));
    let out = ok(&["coordination", "--input", "in.jsonl", "--format", "gexf"], dir);
    let (by_group, edges) = gexf(&out);
    only_the_big_cluster("gexf groups", &by_group.into_values().collect::<Vec<_>>());
    only_the_big_cluster("gexf edges", &components(&edges));

    // Toolkit-compatible edges: the small clusters do have edges of weight
    // ≥ 2 there (the toolkit would list them), and none is output.
    let out = ok(
        &[
            "coordination",
            "--input",
            "in.jsonl",
            "--compat",
            "cnt",
            "--format",
            "csv",
        ],
        dir,
    );
    let edges = csv_edges(&out);
    only_the_big_cluster("compat csv", &components(&edges));
    assert_eq!(
        edges.len(),
        6 * 5 * 3,
        "co-post, co-link, co-repost: every ordered pair of 6"
    );
    let out = ok(
        &[
            "coordination",
            "--input",
            "in.jsonl",
            "--compat",
            "cnt",
            "--format",
            "gexf",
        ],
        dir,
    );
    only_the_big_cluster("compat gexf", &components(&gexf(&out).1));
    let out = ok(
        &[
            "coordination",
            "--input",
            "in.jsonl",
            "--compat",
            "cnt",
            "--format",
            "json",
        ],
        dir,
    );
    let edges: Vec<(String, String)> = out
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["source"].as_str().unwrap().into(),
                v["target"].as_str().unwrap().into(),
            )
        })
        .collect();
    only_the_big_cluster("compat json", &components(&edges));

    // Raising k hides the cluster of 6 too; lowering it is refused.
    let out = ok(&["coordination", "--input", "in.jsonl", "--k", "7"], dir);
    assert!(out.trim().is_empty(), "{out}");
    for k in ["4", "1", "0"] {
        for extra in [&[][..], &["--compat", "cnt"][..]] {
            let mut args = vec!["coordination", "--input", "in.jsonl", "--k", k];
            args.extend_from_slice(extra);
            let out = tidewatch(&args, dir);
            assert!(!out.status.success(), "--k {k} {extra:?} accepted");
            assert!(out.stdout.is_empty());
            assert!(String::from_utf8_lossy(&out.stderr).contains("never shown"));
        }
    }
}

#[test]
fn the_data_directory_listing_shows_only_groups_of_k_accounts() {
    use tidewatch_store::db::{CommitDelta, CoordinationGroupRow, Db};
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let record = |id: &str, n: usize| {
        let accounts: Vec<String> = (0..n).map(|i| format!("u20514-{id}{i:02}")).collect();
        let edges: Vec<serde_json::Value> = (1..n)
            .map(|b| serde_json::json!({"a": 0, "b": b, "weights": {"co-link": 3}, "total": 3}))
            .collect();
        serde_json::json!({
            "id": id, "epoch": 20514, "first_seen": "2026-03-02T01:00:00Z", "last_seen": "2026-03-02T02:00:00Z",
            "accounts": accounts, "edges": edges, "density": 1.0, "total_weight": 3 * (n - 1),
            "weight_by_type": {"co-link": 3 * (n - 1)}, "types": ["co-link"], "time_compression": 0.9,
            "score": 5.0, "narratives": [], "evidence": []
        })
        .to_string()
    };
    let row = |id: &str, claimed: i64, n: usize| CoordinationGroupRow {
        id: id.into(),
        epoch: 20514,
        first_seen_ms: START + 3_600_000,
        last_seen_ms: START + 7_200_000,
        accounts: claimed,
        score: 5.0,
        types: "co-link".into(),
        record: record(id, n),
    };
    let mut db = Db::open(&tidewatch_store::Store::db_path(&data)).unwrap();
    // A row claiming 5 accounts whose record holds 4 (a damaged or
    // hand-edited row) must not come out either.
    db.commit(
        1,
        &CommitDelta {
            coordination_groups: vec![row("aaaa", 6, 6), row("bbbb", 5, 4)],
            ..Default::default()
        },
    )
    .unwrap();
    // The table itself refuses a row under 5 accounts.
    assert!(db
        .commit(
            2,
            &CommitDelta {
                coordination_groups: vec![row("cccc", 4, 4)],
                ..Default::default()
            },
        )
        .is_err());
    drop(db);

    let d = data.to_str().unwrap();
    let out = ok(&["coordination", "--data", d, "--format", "json"], tmp.path());
    let ids: Vec<String> = out
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(ids, vec!["aaaa".to_string()]);
    let out = ok(&["coordination", "--data", d, "--format", "csv"], tmp.path());
    let comps = components(&csv_edges(&out));
    assert_eq!(comps.len(), 1);
    assert_eq!(comps[0].len(), 6);
    let out = ok(&["coordination", "--data", d, "--format", "gexf"], tmp.path());
    let (groups, _) = gexf(&out);
    assert_eq!(groups.len(), 1);
    assert_eq!(groups["aaaa"].len(), 6);
    let out = ok(&["coordination", "--data", d, "--k", "7"], tmp.path());
    assert!(out.trim().is_empty());
    assert!(!tidewatch(&["coordination", "--data", d, "--k", "4"], tmp.path())
        .status
        .success());
}

#[test]
fn the_evaluation_names_no_account_and_counts_no_small_group() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    ok(
        &[
            "gen", "--posts", "120000", "--days", "1", "--seed", "3", "--out", "d.jsonl", "--truth", "t.json",
        ],
        dir,
    );
    let out = ok(
        &[
            "eval",
            "coordination",
            "--truth",
            "t.json",
            "d.jsonl",
            "--format",
            "json",
        ],
        dir,
    );
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["posts"], 120_000);
    assert!(v["smallest_group"].as_u64().unwrap() >= 5, "{v}");
    assert_eq!(v["recall"], 1.0, "{v}");
    assert!(v["precision"].as_f64().unwrap() >= 0.95, "{v}");
    // Figures only: no pseudonym (`u<epoch>-<hex>`) and no handle.
    assert!(!out.contains("\"u2"), "{out}");
    let text = ok(&["eval", "coordination", "--truth", "t.json", "d.jsonl"], dir);
    assert!(text.contains("recall 1.0000"), "{text}");
    assert!(!text.contains("u20"), "{text}");
}
