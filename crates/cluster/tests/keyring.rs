//! The shared keyring against a real nats-server: racing publishers agree
//! on every pseudonym, and expired epoch keys leave the bucket.

use std::time::{Duration, Instant};
use tidewatch_cluster::testing::{nats_server_available, NatsServer};
use tidewatch_cluster::{Cluster, ClusterConfig, SharedKeyring};
use tidewatch_core::pseudonym::PseudonymConfig;
use tidewatch_core::{Event, Post, Timestamp};

const DAY: i64 = Timestamp::DAY;
/// 2026-01-01T00:00:00Z, the start of epoch 20454 with daily epochs.
const T0: i64 = 1_767_225_600_000;

fn post(id: &str, author: &str, at: i64) -> Event {
    Event::Post(Post {
        id: id.into(),
        platform: "twitter".into(),
        created_at: Some(Timestamp(at)),
        author: Some(author.into()),
        reply_to: Some("100".into()),
        url: Some(format!("https://example.invalid/{author}/{id}")),
        text: "an invented text about tides".into(),
        ..Default::default()
    })
}

fn authors(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .map(|e| match e {
            Event::Post(p) => format!("{} {} {:?}", p.id, p.author.as_deref().unwrap_or(""), p.url),
            Event::Delete(d) => d.id.clone(),
        })
        .collect()
}

async fn connect(url: &str) -> Cluster {
    Cluster::connect(&ClusterConfig::new(url)).await.expect("connecting")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_racing_publishers_make_identical_pseudonyms() {
    if !nats_server_available("two_racing_publishers_make_identical_pseudonyms") {
        return;
    }
    let server = NatsServer::start().expect("starting nats-server");
    let url = server.url();
    let (a, b) = tokio::join!(connect(&url), connect(&url));
    // Both join at once: one creates the base (id key), the other reads it.
    let (ra, rb) = tokio::join!(
        SharedKeyring::open(a.keyring_bucket(), None, Timestamp(T0)),
        SharedKeyring::open(b.keyring_bucket(), None, Timestamp(T0))
    );
    let (mut ra, mut rb) = (ra.expect("keyring a"), rb.expect("keyring b"));
    // Posts over three epochs, each publisher creating epoch keys at the same time.
    let events: Vec<Event> = (0..30)
        .map(|i| {
            post(
                &i.to_string(),
                &format!("alice_example{}", i % 4),
                T0 + (i % 3) * DAY + i,
            )
        })
        .collect();
    let (mut ea, mut eb) = (events.clone(), events.clone());
    let (x, y) = tokio::join!(ra.pseudonymise(&mut ea), rb.pseudonymise(&mut eb));
    x.expect("pseudonymising on a");
    y.expect("pseudonymising on b");
    assert_eq!(authors(&ea), authors(&eb));
    let epoch = T0 / DAY;
    assert_eq!(ra.epochs(), vec![epoch, epoch + 1, epoch + 2]);
    assert_eq!(ra.epochs(), rb.epochs());
    for e in &ea {
        let Event::Post(p) = e else { continue };
        let author = p.author.as_deref().unwrap_or("");
        assert!(author.starts_with('u') && !author.contains("alice"), "{author}");
        assert_eq!(p.id.len(), 32);
        assert_eq!(p.url, None);
    }
    // A third publisher joining later agrees too.
    let mut rc = SharedKeyring::open(a.keyring_bucket(), None, Timestamp(T0))
        .await
        .expect("keyring c");
    let mut ec = events.clone();
    rc.pseudonymise(&mut ec).await.expect("pseudonymising on c");
    assert_eq!(authors(&ea), authors(&ec));
    // A publisher asking for another epoch length is refused.
    let other = PseudonymConfig {
        epoch_ms: 6 * Timestamp::HOUR,
        ..Default::default()
    };
    let err = SharedKeyring::open(a.keyring_bucket(), Some(other), Timestamp(T0))
        .await
        .err()
        .expect("a mismatched config is an error");
    assert!(err.to_string().contains("epochs of 86400000 ms"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_epoch_keys_are_deleted_cluster_wide() {
    if !nats_server_available("expired_epoch_keys_are_deleted_cluster_wide") {
        return;
    }
    let server = NatsServer::start().expect("starting nats-server");
    let cluster = connect(&server.url()).await;
    let kv = cluster.keyring_bucket();
    let e0 = T0 / DAY;
    let mut a = SharedKeyring::open(kv, None, Timestamp(T0)).await.expect("keyring a");
    let mut first = vec![post("1", "alice_example", T0), post("2", "alice_example", T0 + DAY)];
    a.pseudonymise(&mut first).await.expect("pseudonymising");
    let before = authors(&first);
    assert!(kv.get(format!("epoch.{e0}")).await.expect("get").is_some());
    assert!(kv.get(format!("epoch.{}", e0 + 1)).await.expect("get").is_some());

    // Publisher b sees day 8.5: epoch e0 ended 7.5 days ago (past the 7-day
    // window), epoch e0+1 ended 6.5 days ago (kept).
    let mut b = SharedKeyring::open(kv, None, Timestamp(T0)).await.expect("keyring b");
    let mut late = vec![post("3", "bob_example", T0 + 8 * DAY + DAY / 2)];
    b.pseudonymise(&mut late).await.expect("pseudonymising");
    assert_eq!(kv.get(format!("epoch.{e0}")).await.expect("get"), None);
    let entry = kv.entry(format!("epoch.{e0}")).await.expect("entry");
    assert!(entry.is_none_or(|e| e.value.is_empty()), "the key's bytes are purged");
    assert!(kv.get(format!("epoch.{}", e0 + 1)).await.expect("get").is_some());
    // b fetched only the key it needed.
    assert_eq!(b.epochs(), vec![e0 + 8]);

    // A late post of the deleted epoch gets an unlinkable pseudonym, and the
    // key is not re-created.
    let mut again = vec![post("1", "alice_example", T0)];
    b.pseudonymise(&mut again).await.expect("pseudonymising");
    assert_ne!(authors(&again)[0], before[0]);
    assert_eq!(kv.get(format!("epoch.{e0}")).await.expect("get"), None);

    // Publisher a learns of the deletion through its watch and forgets the key.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut again = vec![post("1", "alice_example", T0)];
        a.pseudonymise(&mut again).await.expect("pseudonymising");
        if authors(&again)[0] != before[0] {
            break;
        }
        assert!(Instant::now() < deadline, "publisher a still holds the deleted key");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(a.epochs(), vec![e0 + 1]);
    assert_eq!(kv.get(format!("epoch.{e0}")).await.expect("get"), None);
}
