//! The NATS partition source against a real `nats-server` (see
//! [`super::testing`]: under `CI=true` a missing server fails the test).

use super::testing::{nats_server_available, NatsServer};
use super::*;
use crossbeam_channel::Receiver;
use std::sync::atomic::AtomicU64;

const WAIT: Duration = Duration::from_secs(10);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// A canonical post line with invented content, numbered `i`.
fn post(i: u32) -> String {
    format!(r#"{{"id":"post-{i}","platform":"x","text":"harbour lantern number {i}","source":"s"}}"#)
}

/// Creates stream `name` over `t.posts.*`, keeping at most `max_messages`
/// (-1: no limit), and returns a JetStream context on it.
async fn stream(url: &str, name: &str, max_messages: i64) -> jetstream::Context {
    let client = async_nats::connect(url).await.expect("connect");
    let js = jetstream::new(client);
    js.create_stream(jetstream::stream::Config {
        name: name.to_string(),
        subjects: vec!["t.posts.*".to_string()],
        max_messages,
        ..Default::default()
    })
    .await
    .expect("create stream");
    js
}

/// Publishes `text` to `subject` and waits for the stream to store it.
async fn publish(js: &jetstream::Context, subject: &str, text: String) {
    js.publish(subject.to_string(), text.into_bytes().into())
        .await
        .expect("publish")
        .await
        .expect("stored");
}

/// Publishes post `i` to `subject` with its id as message id, trying again
/// while a cluster is electing leaders (the stream de-duplicates retries).
async fn publish_retrying(js: &jetstream::Context, subject: &str, i: u32) {
    let mut last = String::new();
    for _ in 0..100 {
        let message = jetstream::context::Publish::build()
            .payload(post(i).into_bytes().into())
            .message_id(format!("post-{i}"));
        match js.send_publish(subject.to_string(), message).await {
            Ok(ack) => match ack.await {
                Ok(_) => return,
                Err(e) => last = e.to_string(),
            },
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("post {i} was not stored: {last}");
}

async fn ack_floor(js: &jetstream::Context, stream: &str, consumer: &str) -> u64 {
    let s = js.get_stream(stream).await.expect("stream");
    s.consumer_info(consumer)
        .await
        .expect("consumer info")
        .ack_floor
        .stream_sequence
}

/// The next `n` messages, failing after [`WAIT`].
fn receive(rx: &Receiver<SourceMessage>, n: usize) -> Vec<SourceMessage> {
    (0..n)
        .map(|i| {
            rx.recv_timeout(WAIT)
                .unwrap_or_else(|e| panic!("message {i} of {n} did not come: {e}"))
        })
        .collect()
}

/// Records as (cursor, text); panics on a gap.
fn records(messages: Vec<SourceMessage>) -> Vec<(u64, String)> {
    messages
        .into_iter()
        .map(|m| match m {
            SourceMessage::Record(r) => {
                assert_eq!(r.format, Format::Canonical);
                assert_eq!(r.source, "nats-p0");
                (r.cursor.expect("a cursor"), String::from_utf8(r.bytes).expect("utf-8"))
            }
            SourceMessage::Gap(g) => panic!("unexpected gap {g:?}"),
        })
        .collect()
}

/// Asserts that nothing more arrives for a while.
fn assert_quiet(rx: &Receiver<SourceMessage>) {
    if let Ok(m) = rx.recv_timeout(Duration::from_millis(700)) {
        panic!("unexpected message {m:?}");
    }
}

fn config(url: &str, stream: &str) -> NatsPartitionConfig {
    NatsPartitionConfig::new("nats-p0", url, stream, "t.posts.0", "tw-p0")
}

#[test]
fn reads_a_partition_in_order_and_acknowledges_only_what_is_committed() {
    if !nats_server_available("reads_a_partition_in_order_and_acknowledges_only_what_is_committed") {
        return;
    }
    let server = NatsServer::start().expect("nats-server");
    let rt = runtime();
    let js = rt.block_on(async {
        let js = stream(&server.url(), "T1", -1).await;
        for i in 1..=10 {
            publish(&js, "t.posts.0", post(i)).await;
        }
        js
    });
    let committed: CommittedCursor = Arc::new(|| Some(6));
    let health = Arc::new(SourceHealth::default());
    let (tx, rx) = crossbeam_channel::bounded(4);
    let handle = start(
        config(&server.url(), "T1"),
        None,
        tx,
        health.clone(),
        Some(committed.clone()),
    )
    .expect("start");
    let got = records(receive(&rx, 10));
    let expected: Vec<(u64, String)> = (1..=10).map(|i| (u64::from(i), post(i))).collect();
    assert_eq!(got, expected);
    assert_quiet(&rx);
    let h = health.snapshot();
    assert_eq!((h.events, h.connected, h.errors), (10, true, 0), "{h:?}");
    assert!(h.lag_ms.is_some());
    handle.stop();
    assert!(!health.snapshot().connected);
    assert_eq!(rt.block_on(ack_floor(&js, "T1", "tw-p0")), 6);

    // The shard committed 6: a new start reads 7..10 and nothing else.
    let (tx, rx) = crossbeam_channel::bounded(16);
    let handle = start(
        config(&server.url(), "T1"),
        Some(6),
        tx,
        Arc::default(),
        Some(committed),
    )
    .expect("restart");
    let got = records(receive(&rx, 4));
    assert_eq!(got, expected[6..].to_vec());
    assert_quiet(&rx);
    handle.stop();
}

#[test]
fn other_partitions_never_arrive_and_without_a_commit_watch_what_is_sent_is_acknowledged() {
    if !nats_server_available("other_partitions_never_arrive") {
        return;
    }
    let server = NatsServer::start().expect("nats-server");
    let rt = runtime();
    let js = rt.block_on(async {
        let js = stream(&server.url(), "T2", -1).await;
        for i in 1..=5 {
            publish(&js, "t.posts.0", post(i)).await;
            publish(&js, "t.posts.1", post(100 + i)).await;
        }
        js
    });
    let (tx, rx) = crossbeam_channel::bounded(16);
    let handle = start(config(&server.url(), "T2"), None, tx, Arc::default(), None).expect("start");
    let got = records(receive(&rx, 5));
    // Partition 0's messages are stream sequences 1, 3, 5, 7, 9.
    let expected: Vec<(u64, String)> = (1..=5).map(|i| (u64::from(2 * i - 1), post(i))).collect();
    assert_eq!(got, expected);
    assert_quiet(&rx);
    handle.stop();
    assert_eq!(rt.block_on(ack_floor(&js, "T2", "tw-p0")), 9);
}

#[test]
fn a_bounded_read_sends_what_lies_between_its_start_and_end_then_ends() {
    if !nats_server_available("a_bounded_read_sends_what_lies_between_its_start_and_end_then_ends") {
        return;
    }
    let server = NatsServer::start().expect("nats-server");
    let rt = runtime();
    let js = rt.block_on(async {
        let js = stream(&server.url(), "T6", -1).await;
        for i in 1..=6 {
            publish(&js, "t.posts.0", post(i)).await;
            publish(&js, "t.posts.1", post(100 + i)).await;
        }
        js
    });
    // After sequence 3, up to sequence 9: partition 0's sequences 5, 7, 9.
    let mut cfg = config(&server.url(), "T6");
    cfg.consumer = "tw-p0-again".to_string();
    cfg.until = Some(9);
    let (tx, rx) = crossbeam_channel::bounded(16);
    let handle = start(cfg, Some(3), tx, Arc::default(), None).expect("start");
    let got = records(receive(&rx, 3));
    assert_eq!(got, vec![(5, post(3)), (7, post(4)), (9, post(5))]);
    // It ends by itself: the channel is closed once its thread is done.
    match rx.recv_timeout(WAIT) {
        Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {}
        other => panic!("expected the end of the read, got {other:?}"),
    }
    handle.stop();
    // Its consumer is gone.
    let consumers = rt.block_on(async {
        let mut s = js.get_stream("T6").await.expect("stream");
        s.info().await.expect("info").state.consumer_count
    });
    assert_eq!(consumers, 0);
    // A bounded read with nothing left to read ends at once.
    let mut cfg = config(&server.url(), "T6");
    cfg.until = Some(9);
    let (tx, rx) = crossbeam_channel::bounded(16);
    let _handle = start(cfg, Some(9), tx, Arc::default(), None).expect("start");
    assert!(matches!(
        rx.recv_timeout(WAIT),
        Err(crossbeam_channel::RecvTimeoutError::Disconnected)
    ));
}

#[test]
fn messages_the_stream_dropped_before_they_were_read_are_a_gap() {
    if !nats_server_available("messages_the_stream_dropped_before_they_were_read_are_a_gap") {
        return;
    }
    let server = NatsServer::start().expect("nats-server");
    let rt = runtime();
    let _js = rt.block_on(async {
        let js = stream(&server.url(), "T3", 3).await;
        for i in 1..=6 {
            publish(&js, "t.posts.0", post(i)).await;
        }
        js
    });
    let health = Arc::new(SourceHealth::default());
    let (tx, rx) = crossbeam_channel::bounded(16);
    let handle = start(config(&server.url(), "T3"), None, tx, health.clone(), None).expect("start");
    let mut messages = receive(&rx, 4);
    let SourceMessage::Gap(gap) = messages.remove(0) else {
        panic!("the first message is not a gap");
    };
    assert_eq!((gap.source.as_str(), gap.from, gap.to), ("nats-p0", Some(1), Some(3)));
    assert!(
        gap.what.starts_with("stream sequences 1 to 3 of T3 expired"),
        "{}",
        gap.what
    );
    let expected: Vec<(u64, String)> = (4..=6).map(|i| (u64::from(i), post(i))).collect();
    assert_eq!(records(messages), expected);
    assert_quiet(&rx);
    assert_eq!(health.snapshot().gaps, vec![gap]);
    handle.stop();
}

#[test]
fn a_consumer_deleted_under_the_source_is_recreated_after_the_last_sequence_sent() {
    if !nats_server_available("a_consumer_deleted_under_the_source_is_recreated") {
        return;
    }
    let server = NatsServer::start().expect("nats-server");
    let rt = runtime();
    let js = rt.block_on(async {
        let js = stream(&server.url(), "T4", -1).await;
        for i in 1..=5 {
            publish(&js, "t.posts.0", post(i)).await;
        }
        js
    });
    let committed = Arc::new(AtomicU64::new(0));
    let seen = committed.clone();
    let watch: CommittedCursor = Arc::new(move || Some(seen.load(Ordering::Relaxed)));
    let health = Arc::new(SourceHealth::default());
    let (tx, rx) = crossbeam_channel::bounded(16);
    let handle = start(config(&server.url(), "T4"), None, tx, health.clone(), Some(watch)).expect("start");
    let first = records(receive(&rx, 5));
    assert_eq!(first.last().map(|r| r.0), Some(5));
    committed.store(5, Ordering::Relaxed);
    rt.block_on(async {
        let s = js.get_stream("T4").await.expect("stream");
        s.delete_consumer("tw-p0").await.expect("delete consumer");
        for i in 6..=8 {
            publish(&js, "t.posts.0", post(i)).await;
        }
    });
    let expected: Vec<(u64, String)> = (6..=8).map(|i| (u64::from(i), post(i))).collect();
    assert_eq!(records(receive(&rx, 3)), expected);
    assert_quiet(&rx);
    assert!(health.snapshot().errors >= 1, "the lost consumer is reported");
    committed.store(8, Ordering::Relaxed);
    handle.stop();
    assert_eq!(rt.block_on(ack_floor(&js, "T4", "tw-p0")), 8);
}

#[test]
fn stop_returns_while_the_pipeline_is_full() {
    if !nats_server_available("stop_returns_while_the_pipeline_is_full") {
        return;
    }
    let server = NatsServer::start().expect("nats-server");
    let rt = runtime();
    let _js = rt.block_on(async {
        let js = stream(&server.url(), "T5", -1).await;
        for i in 1..=5 {
            publish(&js, "t.posts.0", post(i)).await;
        }
        js
    });
    let (tx, rx) = crossbeam_channel::bounded(1);
    let handle = start(config(&server.url(), "T5"), None, tx, Arc::default(), None).expect("start");
    // The first record fills the channel; the source then waits to send the second.
    let first = rx.recv_timeout(WAIT).expect("a first record");
    assert!(matches!(first, SourceMessage::Record(ref r) if r.cursor == Some(1)));
    let deadline = Instant::now() + WAIT;
    while !rx.is_full() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let stopping = Instant::now();
    handle.stop();
    assert!(stopping.elapsed() < Duration::from_secs(2), "{:?}", stopping.elapsed());
    // What was sent stays sent; nothing follows.
    assert!(matches!(rx.try_recv(), Ok(SourceMessage::Record(r)) if r.cursor == Some(2)));
    assert!(rx.try_recv().is_err());
}

#[test]
fn a_killed_server_of_a_three_node_cluster_loses_and_doubles_nothing() {
    if !nats_server_available("a_killed_server_of_a_three_node_cluster_loses_and_doubles_nothing") {
        return;
    }
    let mut cluster = super::testing::NatsCluster::start().expect("nats-server cluster");
    let rt = runtime();
    // The test's own client talks to node 2, which stays up.
    let publisher_url = cluster.node_url(2).expect("node 2");
    let js = rt.block_on(async {
        let client = async_nats::connect(publisher_url.as_str()).await.expect("connect");
        let js = jetstream::new(client);
        js.create_stream(jetstream::stream::Config {
            name: "T6".to_string(),
            subjects: vec!["t.posts.*".to_string()],
            num_replicas: 3,
            ..Default::default()
        })
        .await
        .expect("create stream");
        for i in 1..=200 {
            publish_retrying(&js, "t.posts.0", i).await;
        }
        js
    });
    let committed = Arc::new(AtomicU64::new(0));
    let seen = committed.clone();
    let watch: CommittedCursor = Arc::new(move || Some(seen.load(Ordering::Relaxed)));
    // The source knows only node 0, the one killed: it must go on through
    // the nodes the server told it about.
    let health = Arc::new(SourceHealth::default());
    let (tx, rx) = crossbeam_channel::bounded(64);
    let source_url = cluster.node_url(0).expect("node 0");
    let handle = start(config(&source_url, "T6"), None, tx, health.clone(), Some(watch)).expect("start");
    let mut got = records(receive(&rx, 100));
    cluster.kill(0);
    rt.block_on(async {
        for i in 201..=400 {
            publish_retrying(&js, "t.posts.0", i).await;
        }
    });
    // Re-electing the consumer's leader takes a few seconds.
    for _ in 0..300 {
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(m) => got.extend(records(vec![m])),
            Err(_) => panic!("stalled after {:?}: {:?}", got.last(), health.snapshot()),
        }
    }
    committed.store(400, Ordering::Relaxed);
    let expected: Vec<(u64, String)> = (1..=400).map(|i| (u64::from(i), post(i))).collect();
    assert_eq!(got, expected);
    assert_quiet(&rx);
    let h = health.snapshot();
    assert!(h.reconnects >= 1, "{h:?}");
    handle.stop();
}
