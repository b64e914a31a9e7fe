//! `tidewatch search --nats`: the merged view of a cluster's shards, printed
//! like a local search, with the partitions that did not answer named on
//! standard error. Two shard stores answer for partitions 0 and 1 of 3
//! (from responders in this test process, as a worker runs them).

use std::process::Command;
use tidewatch_cluster::testing::{nats_server_available, weather_shard, NatsServer};
use tidewatch_cluster::view::ShardResponder;
use tidewatch_cluster::{shard_dir, Cluster, ClusterConfig};
use tidewatch_core::{Post, Timestamp};

/// 2026-03-02T10:00:00Z in unix minutes.
const M0: i64 = 29_540_760;

fn post(id: &str, minute: i64, text: &str) -> Post {
    Post {
        id: id.into(),
        platform: "mastodon".into(),
        created_at: Some(Timestamp((M0 + minute) * 60_000)),
        text: text.into(),
        ..Default::default()
    }
}

fn search(url: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tidewatch"))
        .args(["search", "--nats", url, "--timeout-ms", "500"])
        .args(args)
        .output()
        .expect("running tidewatch search");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn search_over_nats_merges_the_shards_and_names_the_missing_partitions() {
    if !nats_server_available("search_over_nats_merges_the_shards_and_names_the_missing_partitions") {
        return;
    }
    let server = NatsServer::start().expect("starting nats-server");
    let url = server.url();
    let data = tempfile::tempdir().expect("a data directory");
    weather_shard(
        &shard_dir(data.path(), 0),
        4,
        "rain",
        &[post("a1", 0, "rain at noon"), post("a2", 2, "rain again")],
    );
    weather_shard(
        &shard_dir(data.path(), 1),
        9,
        "rain",
        &[post("b1", 1, "light rain, then sun")],
    );

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let responders = rt.block_on(async {
        let mut cfg = ClusterConfig::new(&url);
        cfg.partitions = Some(3);
        let cluster = Cluster::connect(&cfg).await.expect("connecting");
        let mut responders = Vec::new();
        for p in 0..2 {
            responders.push(
                ShardResponder::start(cluster.client().clone(), p, shard_dir(data.path(), p))
                    .await
                    .expect("a responder"),
            );
        }
        responders
    });

    let (ok, stdout, stderr) = search(&url, &["rain", "--format", "json"]);
    assert!(ok, "{stderr}");
    let rows: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let got: Vec<(&str, &str, &str)> = rows
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap_or(""),
                r["created_at"].as_str().unwrap_or(""),
                r["feeds"][0].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("a2", "2026-03-02T10:02:00Z", "weather"),
            ("b1", "2026-03-02T10:01:00Z", "weather"),
            ("a1", "2026-03-02T10:00:00Z", "weather"),
        ]
    );
    assert!(stderr.contains("partitions not answering: 2 (of 3)"), "{stderr}");
    assert!(stderr.contains("3 posts match"), "{stderr}");

    // The table, with the feed filter and a limit, as a local search prints it.
    let (ok, stdout, _) = search(&url, &["rain", "--feed", "weather", "--limit", "1"]);
    assert!(ok);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "3 posts match; showing the newest 1");
    assert!(lines[2].starts_with("2026-03-02 10:02:00  mastodon"), "{stdout}");
    assert_eq!(lines.len(), 3);

    // A bad query: the parse error with its column, and a failure.
    let (ok, stdout, stderr) = search(&url, &["rain AND (sun"]);
    assert!(!ok);
    assert!(stdout.is_empty());
    assert!(stderr.contains("found end of query at column 14"), "{stderr}");

    rt.block_on(async {
        for r in responders {
            r.stop().await;
        }
    });
}
