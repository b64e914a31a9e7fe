//! `tidewatch search` and `tidewatch export` over a data directory that
//! `tidewatch run` wrote from generated posts: both give the same posts
//! for the same query, counts and histograms agree with them, `--feed`
//! selects what the feed matched, and nothing printed names an author.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

const FEEDS: &str = r#"
[[feed]]
name = "quakes"
query = 'earthquake OR aftershock OR #earthquake OR 地震'
[[feed]]
name = "tech"
query = '"open source" OR (chip NEAR/3 shortage) OR #ai OR gpu'
[[feed]]
name = "german"
query = 'lang:de'
"#;

/// Queries of every kind of translation: exact terms and phrases, a
/// verified NEAR, wildcards, fields and a pure negative.
const QUERIES: &[&str] = &[
    "earthquake OR #earthquake",
    "chip NEAR/3 shortage",
    "\"open source\" OR #ai",
    "climat* -summit",
    "lang:de sentiment:negative",
    "-penalty -football platform:bluesky",
];

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tidewatch"))
}

/// A data directory with 20,000 generated posts, made once for every test
/// of this file (under the target directory, replaced on each run).
fn data() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("search-fixture");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let posts = dir.join("posts.jsonl");
        ok(bin()
            .args(["gen", "--posts", "20000", "--days", "1", "--seed", "4", "--out"])
            .arg(&posts)
            .output()
            .unwrap());
        std::fs::write(dir.join("feeds.toml"), FEEDS).unwrap();
        ok(bin()
            .arg("run")
            .arg("--feeds")
            .arg(dir.join("feeds.toml"))
            .arg("--data")
            .arg(dir.join("data"))
            .arg(&posts)
            .output()
            .unwrap());
        dir
    })
}

fn ok(out: Output) -> Output {
    assert!(out.status.success(), "failed: {}", String::from_utf8_lossy(&out.stderr));
    out
}

/// Runs `tidewatch CMD QUERY --data DATA ARGS...`.
fn tw(cmd: &str, query: &str, args: &[&str]) -> Output {
    bin()
        .arg(cmd)
        .arg(query)
        .arg("--data")
        .arg(data().join("data"))
        .args(args)
        .output()
        .unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn json_lines(out: &Output) -> Vec<serde_json::Value> {
    stdout(out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// The count in "N posts match", printed on standard error for json.
fn matched(out: &Output) -> u64 {
    let err = String::from_utf8_lossy(&out.stderr);
    let first = err.split_whitespace().next().unwrap_or_default().replace(',', "");
    first.parse().unwrap_or_else(|_| panic!("no count in {err:?}"))
}

fn ids(rows: &[serde_json::Value]) -> BTreeSet<String> {
    rows.iter().map(|r| r["id"].as_str().unwrap().to_string()).collect()
}

#[test]
fn search_and_export_give_the_same_posts_and_counts() {
    for q in QUERIES {
        let found = ok(tw("search", q, &["--format", "json", "--limit", "100000"]));
        let rows = json_lines(&found);
        assert!(rows.len() > 5, "{q}: too few posts to test ({})", rows.len());
        assert_eq!(matched(&found), rows.len() as u64, "{q}: count");
        let times: Vec<&str> = rows.iter().map(|r| r["created_at"].as_str().unwrap()).collect();
        assert!(times.windows(2).all(|w| w[0] >= w[1]), "{q}: newest first");
        let exported = ok(tw("export", q, &["--format", "jsonl"]));
        let exported = json_lines(&exported);
        assert_eq!(exported.len(), rows.len(), "{q}: export count");
        assert_eq!(ids(&exported), ids(&rows), "{q}: the same posts");

        // The default limit shows the newest 20 and still counts them all.
        let table = ok(tw("search", q, &[]));
        let text = stdout(&table);
        let first = text.lines().next().unwrap();
        let shown = rows.len().min(20);
        let want = if rows.len() > 20 {
            format!("{} posts match; showing the newest 20", thousands(rows.len()))
        } else {
            format!("{} posts match", rows.len())
        };
        assert_eq!(first, want, "{q}");
        assert_eq!(text.lines().count(), 2 + shown, "summary, header, rows: {text}");
    }
}

fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[test]
fn feed_filters_select_what_the_feed_matched() {
    let by_feed = json_lines(&ok(tw(
        "search",
        "sentiment:negative",
        &["--feed", "quakes", "--format", "json", "--limit", "100000"],
    )));
    assert!(by_feed.len() > 5, "{}", by_feed.len());
    for r in &by_feed {
        assert!(r["feeds"].as_array().unwrap().iter().any(|f| f == "quakes"), "{r}");
        assert_eq!(r["sentiment"], "negative");
    }
    // The same posts as the feed's query with the condition added.
    let by_query = json_lines(&ok(tw(
        "export",
        "(earthquake OR aftershock OR #earthquake OR 地震) sentiment:negative",
        &[],
    )));
    assert_eq!(ids(&by_feed), ids(&by_query));

    let unknown = tw("search", "quake", &["--feed", "no-such-feed"]);
    assert!(!unknown.status.success());
    let err = String::from_utf8_lossy(&unknown.stderr);
    assert!(
        err.contains("no-such-feed") && err.contains("known feeds: quakes, tech, german"),
        "{err}"
    );
}

#[test]
fn histogram_buckets_add_up_to_the_count() {
    let q = "\"open source\" OR #ai OR lang:de";
    let count = matched(&ok(tw("search", q, &["--format", "json", "--limit", "0"])));
    let out = ok(tw("search", q, &["--histogram", "1h", "--format", "json"]));
    let buckets = json_lines(&out);
    assert!(buckets.len() >= 20, "a day in hours: {}", buckets.len());
    let total: u64 = buckets.iter().map(|b| b["count"].as_u64().unwrap()).sum();
    assert_eq!(total, count);
    let starts: Vec<&str> = buckets.iter().map(|b| b["start"].as_str().unwrap()).collect();
    assert!(starts.iter().all(|s| s.contains(":00:00")), "{starts:?}");
    assert!(starts.windows(2).all(|w| w[0] < w[1]));

    let table = stdout(&ok(tw("search", q, &["--histogram", "15m"])));
    assert!(
        table.starts_with(&format!("{} dated posts match", thousands(count as usize))),
        "{table}"
    );
    assert!(
        table
            .lines()
            .skip(1)
            .all(|l| l.contains(" #") || l.trim_end().ends_with(" 0")),
        "{table}"
    );

    let bad = tw("search", q, &["--histogram", "1x"]);
    assert!(!bad.status.success());
}

#[test]
fn export_writes_csv_with_a_header_and_one_record_per_post() {
    let q = "earthquake OR aftershock";
    let want = ids(&json_lines(&ok(tw("export", q, &[]))));
    let file = data().join("quakes.csv");
    ok(tw("export", q, &["--format", "csv", "--out", file.to_str().unwrap()]));
    let csv = std::fs::read_to_string(&file).unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next().unwrap(),
        "id,created_at,platform,lang,sentiment,feeds,url,text"
    );
    // Every record starts with its id; quoted texts may span lines.
    let got: BTreeSet<String> = lines
        .filter_map(|l| l.split(',').next())
        .filter(|id| want.contains(*id))
        .map(str::to_string)
        .collect();
    assert_eq!(got, want);
    assert!(
        csv.contains(",quakes,") || csv.contains(",quakes;"),
        "feed names in the csv"
    );
}

#[test]
fn a_query_error_names_its_column() {
    for cmd in ["search", "export"] {
        let out = tw(cmd, "climate AND (flood OR", &[]);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("column 22"), "{cmd}: {err}");
        assert!(out.stdout.is_empty());
    }
    let out = tw("search", "flood", &["--from", "yesterday-ish"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--from"));
}

#[test]
fn a_missing_data_directory_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let out = bin()
        .args(["search", "flood", "--data"])
        .arg(tmp.path().join("nowhere"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no data directory"), "{err}");
    assert!(!tmp.path().join("nowhere").exists(), "not created by a search");
    let out = bin()
        .args(["export", "flood", "--data"])
        .arg(tmp.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("no post index"), "{err}");
}

#[test]
fn no_author_is_ever_printed() {
    let mut handles = BTreeSet::new();
    for line in std::fs::read_to_string(data().join("posts.jsonl")).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        if let Some(a) = v["author"].as_str() {
            handles.insert(a.to_lowercase());
        }
    }
    assert!(handles.len() > 100);
    let finder = aho_corasick::AhoCorasick::builder()
        .ascii_case_insensitive(true)
        .build(&handles)
        .unwrap();
    let everything = "-zzzzqx";
    let outputs = [
        tw("search", everything, &["--format", "json", "--limit", "100000"]),
        tw("search", everything, &["--format", "csv", "--limit", "100000"]),
        tw("search", everything, &["--limit", "100000"]),
        tw("export", everything, &["--format", "jsonl"]),
        tw("export", everything, &["--format", "csv"]),
    ];
    for out in &outputs {
        let out = ok(out.clone());
        let text = stdout(&out);
        assert!(text.len() > 1_000_000, "every post: {} bytes", text.len());
        assert!(!text.contains("\"author\""));
        if let Some(m) = finder.find(&text) {
            panic!("a handle in the output: {:?}", &text[m.start()..m.end()]);
        }
    }
    let json = json_lines(&outputs[0]);
    assert_eq!(json.len(), 20_000);
    let keys: BTreeSet<&str> = json[0].as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "created_at",
            "feeds",
            "id",
            "lang",
            "platform",
            "sentiment",
            "text",
            "url"
        ]
        .into()
    );
}

#[test]
fn export_into_a_closed_pipe_ends_quietly() {
    let mut child = bin()
        .args(["export", "-zzzzqx", "--data"])
        .arg(data().join("data"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read a little, as `head` does, then close the pipe.
    let mut first = [0u8; 4096];
    child.stdout.take().unwrap().read_exact(&mut first).unwrap();
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(first.starts_with(b"{\"id\":"));
}
