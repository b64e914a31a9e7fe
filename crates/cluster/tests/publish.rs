//! `publish` against a real nats-server: every post lands in the partition
//! `partition()` names, no raw handle reaches the stream, and publishing
//! the same input again stores nothing new.

use async_nats::jetstream::stream::Stream;
use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use tidewatch_cluster::publish::{publish_inputs, PublishOptions};
use tidewatch_cluster::testing::{nats_server_available, NatsServer};
use tidewatch_cluster::{partition, Cluster, ClusterConfig};
use tidewatch_core::{Post, Timestamp};
use tidewatch_gen::{GenConfig, Generator};

const POSTS: u64 = 2_000;

/// A generated stream as canonical JSON Lines, plus one malformed line and
/// one deletion of the first post. Returns the file, every raw handle and
/// how many texts mention one of them.
fn input(dir: &std::path::Path) -> (std::path::PathBuf, BTreeSet<String>, usize) {
    let path = dir.join("posts.jsonl");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path).expect("creating the input"));
    let mut handles = BTreeSet::new();
    let mut first = None;
    let mut buf = Vec::new();
    for (i, post) in Generator::new(&GenConfig {
        posts: POSTS,
        seed: 11,
        ..Default::default()
    })
    .enumerate()
    {
        handles.extend(post.author.clone());
        buf.clear();
        post.write_json(&mut buf);
        out.write_all(&buf).expect("writing");
        if i == 10 {
            out.write_all(b"{\"id\": 5, \"this line\": \"is malformed\"\n")
                .expect("writing");
        }
        first.get_or_insert(post);
    }
    let first = first.expect("a generated post");
    writeln!(
        out,
        r#"{{"delete":{{"id":"{}","platform":"{}"}}}}"#,
        first.id, first.platform
    )
    .expect("writing");
    out.flush().expect("flushing");
    let texts = std::fs::read_to_string(&path).expect("reading back");
    let mentioning = texts
        .lines()
        .filter(|l| handles.iter().any(|h| l.contains(&format!("@{h}"))))
        .count();
    (path, handles, mentioning)
}

/// Every message of the stream: (subject, payload, Nats-Msg-Id).
async fn messages(stream: &Stream, count: u64) -> Vec<(String, String, String)> {
    let mut all = Vec::new();
    for seq in 1..=count {
        let m = stream.get_raw_message(seq).await.expect("reading a message");
        let id = m
            .headers
            .get(async_nats::header::NATS_MESSAGE_ID)
            .map(|v| v.to_string())
            .unwrap_or_default();
        all.push((
            m.subject.to_string(),
            String::from_utf8(m.payload.to_vec()).expect("utf-8"),
            id,
        ));
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_each_post_to_its_partition_once_without_raw_handles() {
    if !nats_server_available("publishes_each_post_to_its_partition_once_without_raw_handles") {
        return;
    }
    let server = NatsServer::start().expect("starting nats-server");
    let dir = tempfile::tempdir().expect("tempdir");
    let (path, handles, mentioning) = input(dir.path());
    // The privacy check below means something: raw texts mention handles.
    assert!(mentioning > 100, "{mentioning} texts mention a handle");
    let mut cfg = ClusterConfig::new(server.url());
    cfg.partitions = Some(8);
    let cluster = Cluster::connect(&cfg).await.expect("connecting");
    let opts = PublishOptions {
        undated_time: Timestamp(1_767_225_600_000),
        max_pending: 256,
        ..Default::default()
    };
    let mut rejects = Vec::new();
    let summary = publish_inputs(&cluster, std::slice::from_ref(&path), &opts, &mut |r| {
        rejects.push(r.to_string())
    })
    .await
    .expect("publishing");
    assert_eq!(summary.posts, POSTS);
    assert_eq!(summary.deletions, 1);
    assert_eq!(summary.published, POSTS + 1);
    assert_eq!(summary.duplicates, 0);
    assert_eq!(summary.rejected, 1);
    assert_eq!(rejects.len(), 1);
    assert!(rejects[0].contains("posts.jsonl:12:"), "{rejects:?}");
    assert_eq!(summary.per_partition.iter().sum::<u64>(), POSTS + 1);
    assert!(
        summary.per_partition.iter().all(|n| *n > 150),
        "{:?}",
        summary.per_partition
    );

    let (total, per) = cluster.stream_counts().await.expect("counts");
    assert_eq!(total, POSTS + 1);
    assert_eq!(per, summary.per_partition);

    let stream = cluster.jetstream().get_stream("TIDEWATCH").await.expect("stream");
    let all = messages(&stream, total).await;
    let mut post_ids = HashMap::new();
    let mut deletion = None;
    for (subject, payload, msg_id) in &all {
        // Privacy grep: no raw handle anywhere in a message.
        for h in &handles {
            assert!(!payload.contains(h.as_str()), "raw handle in {subject}");
        }
        if payload.starts_with(r#"{"delete":"#) {
            let d: serde_json::Value = serde_json::from_str(&payload[..]).expect("deletion json");
            let id = d["delete"]["id"].as_str().expect("deletion id").to_string();
            assert_eq!(msg_id, &format!("delete-{id}"));
            deletion = Some((subject.clone(), id));
            continue;
        }
        let post = Post::from_json(payload.as_bytes()).expect("a canonical post");
        assert_eq!(subject, &format!("tidewatch.posts.{}", partition(&post.id, 8)));
        assert_eq!(msg_id, &post.id);
        assert_eq!(post.id.len(), 32, "pseudonymous id");
        assert!(post.author.as_deref().is_none_or(|a| a.starts_with('u')));
        assert_eq!(post.url, None);
        // Enriched from the raw text before it was masked (workers keep it).
        assert!(post.sentiment.is_some() && post.entities.is_some() && post.lang.is_some());
        assert!(
            post_ids.insert(post.id.clone(), subject.clone()).is_none(),
            "a post stored twice"
        );
    }
    assert_eq!(post_ids.len() as u64, POSTS);
    // The deletion names the first post's pseudonymous id, in that post's partition.
    let (subject, id) = deletion.expect("the deletion was published");
    assert_eq!(post_ids.get(&id), Some(&subject));

    // Again: everything is a duplicate, nothing new is stored.
    let again = publish_inputs(&cluster, std::slice::from_ref(&path), &opts, &mut |_| {})
        .await
        .expect("publishing again");
    assert_eq!(again.published, 0);
    assert_eq!(again.duplicates, POSTS + 1);
    assert_eq!(cluster.stream_counts().await.expect("counts").0, POSTS + 1);

    // A publisher asking for another partition count is refused.
    cfg.partitions = Some(4);
    let err = Cluster::connect(&cfg).await.err().expect("a different P is an error");
    assert!(err.to_string().contains("created with 8 partitions, not 4"), "{err}");
}
