//! Partition leases against a real nats-server: workers split the
//! partitions, a worker that stops renewing loses them to another within
//! the timeout plus one renewal interval, and learns it when it renews.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};
use tidewatch_cluster::testing::{nats_server_available, NatsServer};
use tidewatch_cluster::{Cluster, ClusterConfig, Leases};

const P: u32 = 8;
const TIMEOUT: Duration = Duration::from_millis(1200);

async fn cluster(url: &str) -> Cluster {
    let mut cfg = ClusterConfig::new(url);
    cfg.partitions = Some(P);
    cfg.lease_timeout = TIMEOUT;
    Cluster::connect(&cfg).await.expect("connecting")
}

/// A fresh server and two clients of it (two workers' connections).
async fn two_clients() -> (NatsServer, Cluster, Cluster) {
    let server = NatsServer::start().expect("starting nats-server");
    let url = server.url();
    let (ca, cb) = tokio::join!(cluster(&url), cluster(&url));
    (server, ca, cb)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_split_the_partitions_without_overlap() {
    if !nats_server_available("two_workers_split_the_partitions_without_overlap") {
        return;
    }
    let (_server, ca, cb) = two_clients().await;
    let mut a = Leases::new(&ca, "worker-a");
    let mut b = Leases::new(&cb, "worker-b");
    assert_eq!(a.timeout(), TIMEOUT);
    // Both ask for half at the same time.
    let (got_a, got_b) = tokio::join!(a.claim_free(4), b.claim_free(4));
    let (got_a, got_b) = (got_a.expect("claim a"), got_b.expect("claim b"));
    assert_eq!((got_a.len(), got_b.len()), (4, 4), "{got_a:?} {got_b:?}");
    let set_a: BTreeSet<u32> = a.held().into_iter().collect();
    let set_b: BTreeSet<u32> = b.held().into_iter().collect();
    assert!(set_a.is_disjoint(&set_b), "{set_a:?} {set_b:?}");
    assert_eq!(set_a.union(&set_b).count(), P as usize);
    // The bucket says who holds what.
    for p in &set_a {
        let v = ca
            .leases_bucket()
            .get(format!("p.{p}"))
            .await
            .expect("get")
            .expect("a lease");
        assert_eq!(&v[..], b"worker-a");
    }
    // Nothing is free any more.
    assert_eq!(b.claim_free(P as usize).await.expect("claim"), Vec::<u32>::new());
    // Renewing keeps them, for longer than the timeout.
    for _ in 0..5 {
        tokio::time::sleep(a.renew_interval()).await;
        assert_eq!(a.renew().await.expect("renew a"), Vec::<u32>::new());
        assert_eq!(b.renew().await.expect("renew b"), Vec::<u32>::new());
    }
    assert_eq!(a.held().len() + b.held().len(), P as usize);
    // A released partition is free at once.
    a.release().await.expect("release");
    assert!(a.held().is_empty());
    let taken: BTreeSet<u32> = b.claim_free(P as usize).await.expect("claim").into_iter().collect();
    assert_eq!(taken, set_a);
    assert_eq!(b.held().len(), P as usize);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_worker_loses_its_partitions_and_learns_it_on_renew() {
    if !nats_server_available("a_stopped_worker_loses_its_partitions_and_learns_it_on_renew") {
        return;
    }
    let (_server, ca, cb) = two_clients().await;
    let mut a = Leases::new(&ca, "worker-a");
    let mut b = Leases::new(&cb, "worker-b");
    assert_eq!(a.claim_free(P as usize).await.expect("claim a").len(), P as usize);
    a.renew().await.expect("renew a");
    // Worker a stops renewing now. Worker b polls once per renewal interval.
    let stopped = Instant::now();
    let interval = b.renew_interval();
    loop {
        b.claim_free(P as usize).await.expect("claim b");
        b.renew().await.expect("renew b");
        if b.held().len() == P as usize {
            break;
        }
        assert!(
            stopped.elapsed() <= TIMEOUT + interval,
            "b holds {:?} after {:?}",
            b.held(),
            stopped.elapsed()
        );
        tokio::time::sleep(interval).await;
    }
    let took = stopped.elapsed();
    assert!(
        took >= TIMEOUT - Duration::from_millis(100),
        "taken over too early: {took:?}"
    );
    eprintln!("takeover after {took:?} (timeout {TIMEOUT:?}, interval {interval:?})");
    // The stale worker learns it lost everything.
    let mut lost = a.renew().await.expect("renew a");
    lost.sort_unstable();
    assert_eq!(lost, (0..P).collect::<Vec<_>>());
    assert!(a.held().is_empty());
    // And its release cannot free b's partitions.
    a.release().await.expect("release a");
    assert_eq!(b.renew().await.expect("renew b"), Vec::<u32>::new());
}
