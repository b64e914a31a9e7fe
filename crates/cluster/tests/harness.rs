//! The nats-server test harness itself: a single server and a 3-node
//! cluster start, accept JetStream clients, and a killed node stops.

use async_nats::jetstream::consumer::{pull, AckPolicy};
use futures_util::TryStreamExt;
use std::time::Duration;
use tidewatch_cluster::testing::{nats_server_available, NatsCluster, NatsServer};
use tidewatch_cluster::{Cluster, ClusterConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_server_accepts_jetstream_clients_and_stops_on_drop() {
    if !nats_server_available("single_server_accepts_jetstream_clients_and_stops_on_drop") {
        return;
    }
    let server = NatsServer::start().expect("starting nats-server");
    let url = server.url();
    let cluster = Cluster::connect(&ClusterConfig::new(&url)).await.expect("connecting");
    assert_eq!(cluster.partitions(), 16);
    assert_eq!(cluster.stream_name(), "TIDEWATCH");

    // What a worker will do: a durable pull consumer on one partition
    // (this client version must understand this server's replies).
    let js = cluster.jetstream();
    for i in 0..3 {
        js.publish(tidewatch_cluster::subject(i % 2), format!("m{i}").into())
            .await
            .expect("publishing")
            .await
            .expect("ack");
    }
    let stream = js.get_stream(cluster.stream_name()).await.expect("stream");
    let consumer = stream
        .get_or_create_consumer(
            &tidewatch_cluster::consumer_name(0),
            pull::Config {
                durable_name: Some(tidewatch_cluster::consumer_name(0)),
                filter_subject: tidewatch_cluster::subject(0),
                ack_policy: AckPolicy::Explicit,
                ..Default::default()
            },
        )
        .await
        .expect("consumer");
    let mut batch = consumer
        .fetch()
        .max_messages(10)
        .expires(Duration::from_millis(500))
        .messages()
        .await
        .expect("fetch");
    let mut got = Vec::new();
    while let Some(m) = batch.try_next().await.expect("message") {
        got.push(String::from_utf8_lossy(&m.payload).to_string());
        m.ack().await.expect("ack");
    }
    assert_eq!(got, ["m0", "m2"]);
    drop(cluster);
    drop(server);
    let addr = url.trim_start_matches("nats://").to_string();
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "the server is gone after drop"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_node_cluster_keeps_a_replicated_stream_when_a_node_dies() {
    if !nats_server_available("three_node_cluster_keeps_a_replicated_stream_when_a_node_dies") {
        return;
    }
    let mut nodes = NatsCluster::start().expect("starting a 3-node cluster");
    let mut cfg = ClusterConfig::new(nodes.url());
    cfg.replicas = 3;
    cfg.partitions = Some(4);
    let cluster = Cluster::connect(&cfg).await.expect("connecting");
    let js = cluster.jetstream();
    for i in 0..10u32 {
        js.publish(tidewatch_cluster::subject(i % 4), format!("m{i}").into())
            .await
            .expect("publishing")
            .await
            .expect("ack");
    }
    let info = js.get_stream("TIDEWATCH").await.expect("stream").cached_info().clone();
    assert_eq!(info.config.num_replicas, 3);

    nodes.kill(0);
    // The survivors elect new leaders; the client reconnects to one of them.
    // A retried publish carries the same message id, so it is stored once.
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(async_nats::header::NATS_MESSAGE_ID, "after");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let acked = match js
            .publish_with_headers(tidewatch_cluster::subject(1), headers.clone(), "after".into())
            .await
        {
            Ok(ack) => ack.await.is_ok(),
            Err(_) => false,
        };
        if acked {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no ack within 20 s of losing a node"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (total, per) = cluster.stream_counts().await.expect("counts");
    assert_eq!(total, 11);
    // 0..10 round-robin over 4 partitions, plus one more in partition 1.
    assert_eq!(per, vec![3, 4, 2, 2]);
}

/// Posts leave the stream after the retention, as they leave a store: the
/// stream gets the configured max age, and a later connection with another
/// retention changes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_keeps_posts_for_the_retention_only() {
    if !nats_server_available("the_stream_keeps_posts_for_the_retention_only") {
        return;
    }
    let server = NatsServer::start().expect("starting nats-server");
    let mut cfg = ClusterConfig::new(server.url());
    let max_age = |c: &Cluster| {
        let js = c.jetstream().clone();
        let name = c.stream_name().to_string();
        async move {
            let mut s = js.get_stream(&name).await.expect("stream");
            s.info().await.expect("info").config.max_age
        }
    };
    let cluster = Cluster::connect(&cfg).await.expect("connecting");
    assert_eq!(max_age(&cluster).await, Duration::from_secs(30 * 86_400));
    cfg.max_age = Some(Duration::from_secs(2 * 86_400));
    let cluster = Cluster::connect(&cfg).await.expect("connecting again");
    assert_eq!(max_age(&cluster).await, Duration::from_secs(2 * 86_400));
    // A worker or reader that sets none leaves the retention alone.
    let cluster = Cluster::connect(&ClusterConfig::new(server.url()))
        .await
        .expect("connecting as a worker");
    assert_eq!(max_age(&cluster).await, Duration::from_secs(2 * 86_400));
}
