//! The Mastodon client against the replay instance: disconnects, a
//! restart, a stall, lost statuses, malformed events, resume from a cursor.

use crossbeam_channel::{bounded, Receiver};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tidewatch_core::Event;
use tidewatch_ingest::format::{DecodeOutput, Format};
use tidewatch_sources::mastodon::{self, MastodonConfig, Timeline};
use tidewatch_sources::replay::mastodon::MastodonReplay;
use tidewatch_sources::{Gap, Received, SourceHealth, SourceMessage};

fn config(server: &MastodonReplay) -> MastodonConfig {
    let mut c = MastodonConfig::new("masto-test", server.url(), Timeline::Public { local: false });
    c.backoff_initial = Duration::from_millis(20);
    c.backoff_max = Duration::from_millis(100);
    c.idle_timeout = Duration::from_millis(400);
    c.request_timeout = Duration::from_secs(2);
    // Small pages, so that a backfill takes several.
    c.page_limit = 7;
    c
}

/// Records and gaps received, in order.
#[derive(Default)]
struct Got {
    records: Vec<Received>,
    gaps: Vec<Gap>,
}

impl Got {
    /// Status ids of `update` records (deletes carry no `id` field).
    fn ids(&self) -> Vec<u64> {
        self.records
            .iter()
            .filter_map(|r| {
                let v: serde_json::Value = serde_json::from_slice(&r.bytes).ok()?;
                v.get("id")?.as_str()?.parse().ok()
            })
            .collect()
    }
}

/// Reads until `done` holds or `limit` passes.
fn collect(rx: &Receiver<SourceMessage>, got: &mut Got, limit: Duration, done: impl Fn(&Got) -> bool) {
    let end = Instant::now() + limit;
    while !done(got) && Instant::now() < end {
        match rx.recv_timeout(Duration::from_millis(20)) {
            Ok(SourceMessage::Record(r)) => got.records.push(r),
            Ok(SourceMessage::Gap(g)) => got.gaps.push(g),
            Err(_) => {}
        }
    }
}

fn wait_for(limit: Duration, what: impl Fn() -> bool) {
    let end = Instant::now() + limit;
    while !what() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(what(), "timed out");
}

#[test]
fn five_disconnects_a_stall_and_a_restart_lose_and_repeat_nothing() {
    let mut server = MastodonReplay::start(7).unwrap();
    server.drop_streams_after(Some(25));
    let (tx, rx) = bounded(10_000);
    let health = Arc::new(SourceHealth::default());
    let mut c = config(&server);
    // Shorter than the time left after the stall, so that it is noticed.
    c.idle_timeout = Duration::from_millis(150);
    let handle = mastodon::start(c, None, tx, health.clone()).unwrap();
    wait_for(Duration::from_secs(3), || server.stats().stream_connections == 1);

    let mut published = Vec::new();
    for round in 0..30 {
        published.extend(server.publish(10));
        std::thread::sleep(Duration::from_millis(15));
        if round == 3 {
            server.stall_next_streams(1);
        }
        if round == 20 {
            server.restart().unwrap();
        }
    }
    let mut got = Got::default();
    collect(&rx, &mut got, Duration::from_secs(8), |g| {
        g.records.len() >= published.len()
    });
    // Anything extra would arrive soon after: give it a moment.
    collect(&rx, &mut got, Duration::from_millis(200), |_| false);
    handle.stop();

    let ids = got.ids();
    let unique: HashSet<u64> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "a status was handed on twice");
    assert_eq!(unique, published.iter().copied().collect::<HashSet<u64>>());
    assert!(got.gaps.is_empty(), "{:?}", got.gaps);
    let h = health.snapshot();
    assert!(h.gaps.is_empty());
    assert!(h.reconnects >= 6, "only {} reconnects", h.reconnects);
    assert_eq!(h.events, published.len() as u64);
    assert_eq!(h.malformed, 0);
    assert!(server.stats().stream_connections >= 7);
    // The cursor only grows, and ends at the newest status.
    let cursors: Vec<u64> = got.records.iter().filter_map(|r| r.cursor).collect();
    assert!(cursors.windows(2).all(|w| w[0] <= w[1]));
    assert_eq!(cursors.last(), published.iter().max());

    // Through the pipeline's adapter: every status is one post.
    let mut decoder = Format::Mastodon.decoder(None);
    let mut out = DecodeOutput::default();
    for r in &got.records {
        decoder.decode(&r.bytes, &mut out).unwrap();
    }
    assert_eq!(out.events.len(), published.len());
    assert_eq!(out.ignored, 0);
}

#[test]
fn statuses_lost_upstream_are_reported_as_a_gap() {
    let mut server = MastodonReplay::start(11).unwrap();
    let (tx, rx) = bounded(10_000);
    let health = Arc::new(SourceHealth::default());
    let handle = mastodon::start(config(&server), None, tx, health.clone()).unwrap();
    wait_for(Duration::from_secs(3), || server.stats().stream_connections == 1);

    let before = server.publish(20);
    let mut got = Got::default();
    collect(&rx, &mut got, Duration::from_secs(3), |g| g.records.len() >= 20);
    server.down();
    let during = server.publish(50);
    // The instance now serves only the 30 newest: 20 of those posted
    // while the client was away are gone for good.
    server.keep_newest(Some(30));
    server.up().unwrap();
    collect(&rx, &mut got, Duration::from_secs(4), |g| g.records.len() >= 50);
    collect(&rx, &mut got, Duration::from_millis(200), |_| false);
    handle.stop();

    let want: Vec<u64> = before.iter().chain(&during[20..]).copied().collect();
    assert_eq!(got.ids(), want);
    assert_eq!(got.gaps.len(), 1, "{:?}", got.gaps);
    let gap = &got.gaps[0];
    assert_eq!((gap.from, gap.to), (Some(before[19]), Some(during[20])));
    assert_eq!(gap.source, "masto-test");
    assert_eq!(health.snapshot().gaps, got.gaps);
}

#[test]
fn malformed_events_are_counted_and_skipped_and_deletes_pass() {
    let server = MastodonReplay::start(3).unwrap();
    let (tx, rx) = bounded(1_000);
    let health = Arc::new(SourceHealth::default());
    let handle = mastodon::start(config(&server), None, tx, health.clone()).unwrap();
    wait_for(Duration::from_secs(3), || server.stats().stream_connections == 1);

    let first = server.publish(3);
    server.send_malformed();
    let second = server.publish(3);
    server.delete(first[0]);
    server.edit(second[0]);
    let mut got = Got::default();
    collect(&rx, &mut got, Duration::from_secs(3), |g| g.records.len() >= 8);
    handle.stop();

    let h = health.snapshot();
    assert_eq!(h.malformed, 1);
    assert_eq!(h.reconnects, 0, "the connection goes on");
    let ids = got.ids();
    // Six updates, then the edit of the fourth status.
    let want: Vec<u64> = first.iter().chain(&second).chain([&second[0]]).copied().collect();
    assert_eq!(ids, want);
    let delete = got.records.iter().find(|r| r.bytes.starts_with(b"{\"event\""));
    let delete: serde_json::Value = serde_json::from_slice(&delete.unwrap().bytes).unwrap();
    assert_eq!(
        delete,
        serde_json::json!({"event": "delete", "payload": first[0].to_string()})
    );

    // The adapter reads the delete record as a deletion of the status it
    // decoded earlier, named by its URI as the post is.
    let mut out = DecodeOutput::default();
    let mut decoder = Format::Mastodon.decoder(None);
    for r in &got.records {
        decoder.decode(&r.bytes, &mut out).unwrap();
    }
    let deletions: Vec<&str> = out
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Delete(d) => Some(d.id.as_str()),
            Event::Post(_) => None,
        })
        .collect();
    let first_post = out.events.iter().find_map(|e| match e {
        Event::Post(p) => Some(p.id.as_str()),
        Event::Delete(_) => None,
    });
    let first_post = first_post.expect("the statuses decode to posts");
    assert!(first_post.ends_with(&format!("/{}", first[0])), "{first_post}");
    assert_eq!(deletions, [first_post]);
}

#[test]
fn a_resumed_source_backfills_from_its_cursor_on_a_hashtag_timeline() {
    let server = MastodonReplay::start(5).unwrap();
    let all = server.publish(60);
    let tagged: Vec<u64> = server
        .statuses()
        .iter()
        .filter(|s| s.tags.iter().any(|t| t == "tides"))
        .map(|s| s.id)
        .collect();
    assert!(tagged.len() > 10, "the generator spreads tags");
    let resume = tagged[3];
    let (tx, rx) = bounded(1_000);
    let health = Arc::new(SourceHealth::default());
    let mut c = config(&server);
    c.timeline = Timeline::Hashtag {
        tag: "tides".into(),
        local: false,
    };
    let handle = mastodon::start(c, Some(resume), tx, health.clone()).unwrap();
    let mut got = Got::default();
    collect(&rx, &mut got, Duration::from_secs(3), |g| {
        g.records.len() >= tagged.len() - 4
    });
    collect(&rx, &mut got, Duration::from_millis(100), |_| false);
    handle.stop();

    assert_eq!(got.ids(), tagged[4..]);
    assert!(got.gaps.is_empty());
    assert!(all.len() > tagged.len());
}
