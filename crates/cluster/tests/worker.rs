//! `Worker`s in this process against a real nats-server: feed changes
//! written to the cluster's key-value bucket reach every worker within a
//! second and are applied between posts, never losing or doubling a match.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tidewatch_cluster::feeds::put_feeds;
use tidewatch_cluster::publish::{publish_inputs, PublishOptions};
use tidewatch_cluster::testing::{nats_server_available, NatsServer};
use tidewatch_cluster::worker::{Worker, WorkerOptions, WorkerStatus};
use tidewatch_cluster::{shard_dir, Cluster, ClusterConfig};
use tidewatch_core::{Post, Timestamp};
use tidewatch_engine::persist::CommitPolicy;
use tidewatch_store::db::Db;
use tidewatch_store::Store;

const PARTITIONS: u32 = 2;
const BATCH: usize = 400;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// `n` posts from minute `minute` on; every one says "alpha", every third
/// also "beta". Returns the file and how many say "beta".
fn posts(dir: &Path, name: &str, first: usize, n: usize) -> (PathBuf, usize) {
    let path = dir.join(name);
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path).expect("creating"));
    let mut beta = 0;
    let mut buf = Vec::new();
    for i in first..first + n {
        let with_beta = i % 3 == 0;
        beta += with_beta as usize;
        let post = Post {
            id: format!("post-{i}"),
            platform: "mastodon".into(),
            created_at: Some(Timestamp(1_767_225_600_000 + i as i64 * 1000)),
            author: Some(format!("writer_example_{}", i % 17)),
            text: format!("alpha harbour notice {i}{}", if with_beta { " with beta" } else { "" }),
            lang: Some("en".into()),
            ..Default::default()
        };
        buf.clear();
        post.write_json(&mut buf);
        out.write_all(&buf).expect("writing");
    }
    out.flush().expect("flushing");
    (path, beta)
}

fn status_until(worker: &Worker, what: &str, ok: impl Fn(&WorkerStatus) -> bool) -> WorkerStatus {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let s = worker.status();
        if ok(&s) {
            return s;
        }
        assert!(Instant::now() < deadline, "{what} not reached in 60 s: {s:?}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn wait_for(what: &str, ok: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ok() {
        assert!(Instant::now() < deadline, "{what} not reached in 60 s");
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn processed(s: &WorkerStatus) -> u64 {
    s.shards.values().map(|x| x.posts).sum()
}

/// Matches per feed name over every shard.
fn matches(data: &Path) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    for p in 0..PARTITIONS {
        let db = Db::open(&Store::db_path(&shard_dir(data, p))).expect("a shard");
        for f in db.feeds().expect("feeds") {
            let n: i64 = db
                .feed_minutes(f.id, i64::MIN, i64::MAX)
                .expect("minutes")
                .iter()
                .map(|(_, c)| c.posts)
                .sum();
            *out.entry(f.name).or_default() += n;
        }
    }
    out
}

#[test]
fn feed_changes_reach_every_worker_within_a_second_and_lose_no_match() {
    if !nats_server_available("feed_changes_reach_every_worker_within_a_second_and_lose_no_match") {
        return;
    }
    let server = NatsServer::start().expect("starting nats-server");
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = runtime();
    let mut cfg = ClusterConfig::new(server.url());
    cfg.partitions = Some(PARTITIONS);
    cfg.lease_timeout = Duration::from_secs(3);
    let cluster = rt.block_on(Cluster::connect(&cfg)).expect("connecting");
    let first_feeds = "[[feed]]\nname = \"alpha\"\nquery = 'alpha'\n";
    let r1 = rt.block_on(put_feeds(&cluster, first_feeds)).expect("feeds");
    // A feed set that does not compile is refused before it is written.
    let bad = rt.block_on(put_feeds(&cluster, "[[feed]]\nname = \"x\"\nquery = 'a AND ('\n"));
    assert!(bad.is_err());

    // Two workers, one partition each.
    let data = dir.path().join("shards");
    let start_worker = |id: &str| {
        Worker::start(
            ClusterConfig::new(server.url()),
            WorkerOptions {
                data: data.clone(),
                worker_id: id.into(),
                threads: 1,
                commit: CommitPolicy {
                    interval: Duration::from_millis(200),
                    ..Default::default()
                },
                retention_days: 0,
                max_partitions: Some(1),
            },
        )
        .expect("starting a worker")
    };
    let workers = [start_worker("w1"), start_worker("w2")];
    for w in &workers {
        status_until(w, "a partition and the feeds", |s| {
            s.shards.len() == 1 && s.feeds_revision == r1
        });
    }
    let all = |ok: &dyn Fn(&WorkerStatus) -> bool| workers.iter().all(|w| ok(&w.status()));
    let total = || workers.iter().map(|w| processed(&w.status())).sum::<u64>();

    let opts = PublishOptions::default();
    let (before, beta_before) = posts(dir.path(), "before.jsonl", 0, BATCH);
    rt.block_on(publish_inputs(&cluster, &[before], &opts, &mut |_| {}))
        .expect("publishing");
    wait_for("the first posts", || total() >= BATCH as u64);

    let start = Instant::now();
    let second_feeds = format!("{first_feeds}[[feed]]\nname = \"beta\"\nquery = 'beta'\n");
    let r2 = rt.block_on(put_feeds(&cluster, &second_feeds)).expect("feeds");
    wait_for("the new feeds on every worker", || all(&|s| s.feeds_revision == r2));
    let took = start.elapsed();
    eprintln!(
        "feed change applied by both workers {:.1} ms after it was written",
        took.as_secs_f64() * 1e3
    );
    assert!(took < Duration::from_secs(1), "took {took:?}");

    let (after, beta_after) = posts(dir.path(), "after.jsonl", BATCH, BATCH);
    rt.block_on(publish_inputs(&cluster, &[after], &opts, &mut |_| {}))
        .expect("publishing");
    wait_for("the later posts", || total() >= 2 * BATCH as u64);
    for w in workers {
        w.stop().expect("stopping");
    }

    let got = matches(&data);
    // Every post matched "alpha" once, across the change.
    assert_eq!(got.get("alpha"), Some(&(2 * BATCH as i64)));
    // "beta" matched exactly the posts that came after it.
    assert!(beta_before > 0);
    assert_eq!(got.get("beta"), Some(&(beta_after as i64)));
}
