//! The RSS poller against the replay feed host: conditional GETs, new
//! items exactly once, politeness per host, outages reported as gaps.

use crossbeam_channel::{bounded, Receiver};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tidewatch_core::Event;
use tidewatch_ingest::format::{DecodeOutput, Format};
use tidewatch_sources::replay::rss::{Failure, RssReplay};
use tidewatch_sources::rss::{self, FeedSpec, RssConfig};
use tidewatch_sources::{Gap, Received, SourceHealth, SourceMessage};

fn config(feeds: Vec<String>, interval_ms: u64) -> RssConfig {
    let feeds = feeds.into_iter().map(|url| FeedSpec { url, interval: None }).collect();
    let mut c = RssConfig::new("rss-test", feeds);
    c.default_interval = Duration::from_millis(interval_ms);
    c.min_host_delay = Duration::from_millis(5);
    c.request_timeout = Duration::from_millis(300);
    c
}

/// Reads everything sent during `span`.
fn drain(rx: &Receiver<SourceMessage>, span: Duration) -> (Vec<Received>, Vec<Gap>) {
    let end = Instant::now() + span;
    let (mut records, mut gaps) = (Vec::new(), Vec::new());
    while Instant::now() < end {
        match rx.recv_timeout(Duration::from_millis(10)) {
            Ok(SourceMessage::Record(r)) => records.push(r),
            Ok(SourceMessage::Gap(g)) => gaps.push(g),
            Err(_) => {}
        }
    }
    (records, gaps)
}

/// The post ids the pipeline gets out of the records, in order, with one
/// adapter as the pipeline uses.
fn decode_ids(records: &[Received]) -> Vec<String> {
    let mut decoder = Format::Rss.decoder(None);
    let mut out = DecodeOutput::default();
    for r in records {
        assert_eq!(r.format, Format::Rss);
        decoder.decode(&r.bytes, &mut out).unwrap();
    }
    out.events
        .iter()
        .filter_map(|e| match e {
            Event::Post(p) => Some(p.id.clone()),
            Event::Delete(_) => None,
        })
        .collect()
}

#[test]
fn conditional_gets_new_items_once_and_one_request_per_host_at_a_time() {
    let server = RssReplay::start().unwrap();
    // Answers take a while, so that overlapping requests to a host would
    // be seen by the server.
    server.set_latency(Duration::from_millis(15));
    let mut served = Vec::new();
    let mut urls = Vec::new();
    for (host, name) in [
        ("127.0.0.1", "a"),
        ("127.0.0.1", "b"),
        ("127.0.0.1", "c"),
        ("localhost", "d"),
        ("localhost", "e"),
    ] {
        served.extend(server.add_items(name, 3));
        urls.push(server.feed_url(host, name));
    }
    let (tx, rx) = bounded(1_000);
    let health = Arc::new(SourceHealth::default());
    let handle = rss::start(config(urls, 120), tx, health.clone()).unwrap();

    let (mut records, gaps) = drain(&rx, Duration::from_millis(400));
    served.extend(server.add_items("a", 2));
    let (more, more_gaps) = drain(&rx, Duration::from_millis(300));
    records.extend(more);
    served.extend(server.add_items("d", 1));
    let (more, last_gaps) = drain(&rx, Duration::from_millis(300));
    records.extend(more);
    let feeds = handle.feeds();
    handle.stop();

    assert!(gaps.is_empty() && more_gaps.is_empty() && last_gaps.is_empty());
    // One document per feed at first, then one for each feed that grew.
    assert_eq!(records.len(), 5 + 2);
    let ids = decode_ids(&records);
    assert_eq!(ids.len(), served.len(), "each item exactly once");
    assert_eq!(
        ids.iter().collect::<HashSet<_>>(),
        served.iter().collect::<HashSet<_>>()
    );
    // The poller's count of new items is what the adapter emits.
    assert_eq!(health.snapshot().events, served.len() as u64);

    for name in ["a", "b", "c", "d", "e"] {
        let stats = server.stats(name);
        assert!(stats.not_modified >= 2, "{name}: {stats:?}");
        assert_eq!(stats.requests, stats.not_modified + stats.full, "{name}");
    }
    assert_eq!(server.stats("a").full, 2);
    assert_eq!(server.stats("b").full, 1);
    assert_eq!(server.max_in_flight("127.0.0.1"), 1);
    assert_eq!(server.max_in_flight("localhost"), 1);
    assert_eq!(feeds[0].new_items, 5);
    assert_eq!(feeds[1].last_status, Some(304));
    assert!(feeds.iter().all(|f| f.consecutive_failures == 0 && !f.in_outage));
}

#[test]
fn an_unreachable_feed_reports_one_gap_per_outage() {
    let server = RssReplay::start().unwrap();
    server.add_items("up", 2);
    server.add_items("down", 2);
    server.add_items("slow", 1);
    server.set_failure("down", Some(Failure::Status(500)));
    server.set_failure("slow", Some(Failure::Stall));
    let urls = vec![
        server.feed_url("127.0.0.1", "up"),
        server.feed_url("127.0.0.1", "down"),
        server.feed_url("localhost", "slow"),
    ];
    let (tx, rx) = bounded(1_000);
    let health = Arc::new(SourceHealth::default());
    let handle = rss::start(config(urls, 100), tx, health.clone()).unwrap();

    // Failing for well over two intervals: one gap each, not one a poll.
    let (records, gaps) = drain(&rx, Duration::from_millis(900));
    let feeds = handle.feeds();
    assert_eq!(records.len(), 1, "only the healthy feed yields");
    let mut what: Vec<&str> = gaps.iter().map(|g| g.what.as_str()).collect();
    what.sort();
    assert_eq!(gaps.len(), 2, "{what:?}");
    assert!(
        what[0].contains("/feeds/down.xml") && what[0].contains("HTTP 500"),
        "{}",
        what[0]
    );
    assert!(
        what[1].contains("/feeds/slow.xml") && what[1].contains("timed out"),
        "{}",
        what[1]
    );
    assert_eq!(feeds[1].last_status, Some(500));
    assert!(feeds[1].consecutive_failures >= 3, "{:?}", feeds[1]);
    assert!(feeds[1].in_outage && feeds[2].in_outage && !feeds[0].in_outage);
    assert_eq!(feeds[2].last_status, None);

    // Recovery ends the outage; a new outage is a new gap.
    server.set_failure("down", None);
    let (records, gaps) = drain(&rx, Duration::from_millis(250));
    assert_eq!((records.len(), gaps.len()), (1, 0));
    assert!(!handle.feeds()[1].in_outage);
    server.set_failure("down", Some(Failure::Status(503)));
    let (_, gaps) = drain(&rx, Duration::from_millis(450));
    handle.stop();
    assert_eq!(gaps.len(), 1, "{gaps:?}");
    assert!(gaps[0].what.contains("HTTP 503"));
    assert_eq!(health.snapshot().gaps.len(), 3);
}
