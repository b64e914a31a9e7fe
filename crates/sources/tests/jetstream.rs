//! The Jetstream client against the local replay server: what arrives in
//! the pipeline's channel is exactly what the server served, through
//! disconnections, a restart, garbage and failover; and events truly lost
//! upstream are reported as a gap.

use crossbeam_channel::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tidewatch_ingest::format::jetstream::JetstreamDecoder;
use tidewatch_ingest::{DecodeOutput, Decoder, Format};
use tidewatch_sources::jetstream::{self, JetstreamConfig, JetstreamHandle, DEFAULT_COLLECTIONS};
use tidewatch_sources::replay::jetstream::{generate, Faults, JetstreamReplay, ReplayEvent};
use tidewatch_sources::{Gap, Received, SourceHealth, SourceMessage};

/// 2024-09-01, in µs; events are 10 ms apart, so the 1 s rewind re-reads
/// about 100 events.
const T0: u64 = 1_725_148_800_000_000;
const STEP: u64 = 10_000;

fn config(endpoints: Vec<String>) -> JetstreamConfig {
    let mut config = JetstreamConfig::new("bluesky", endpoints);
    config.backoff_initial = Duration::from_millis(5);
    config.backoff_max = Duration::from_millis(100);
    config.connect_timeout = Duration::from_secs(2);
    config.gap_tolerance_us = 2_000_000;
    config
}

fn start(
    config: JetstreamConfig,
    resume: Option<u64>,
) -> (JetstreamHandle, Receiver<SourceMessage>, Arc<SourceHealth>) {
    let (tx, rx) = crossbeam_channel::bounded(1024);
    let health = Arc::new(SourceHealth::default());
    let handle = jetstream::start(config, resume, tx, Arc::clone(&health)).expect("source starts");
    (handle, rx, health)
}

/// What a subscriber to posts and reposts receives, in order.
fn wanted(events: &[ReplayEvent]) -> Vec<&ReplayEvent> {
    events.iter().filter(|e| e.wanted_by(&DEFAULT_COLLECTIONS)).collect()
}

/// Records and gaps in arrival order.
#[derive(Default)]
struct Seen {
    records: Vec<Received>,
    gaps: Vec<Gap>,
}

impl Seen {
    /// Reads until a record with cursor `last` arrived (or the deadline).
    fn read_until(&mut self, rx: &Receiver<SourceMessage>, last: u64, deadline: Duration) {
        let until = Instant::now() + deadline;
        while self.records.last().and_then(|r| r.cursor) != Some(last) {
            let left = until.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(SourceMessage::Record(r)) => self.records.push(r),
                Ok(SourceMessage::Gap(g)) => self.gaps.push(g),
                Err(RecvTimeoutError::Timeout) => panic!(
                    "timed out waiting for cursor {last}; last seen {:?}",
                    self.records.last().and_then(|r| r.cursor)
                ),
                Err(RecvTimeoutError::Disconnected) => panic!("source ended early"),
            }
        }
    }
}

fn assert_same_events(records: &[Received], expected: &[&ReplayEvent]) {
    assert_eq!(records.len(), expected.len(), "record count");
    for (r, e) in records.iter().zip(expected) {
        assert_eq!(r.cursor, Some(e.time_us));
        assert_eq!(r.format, Format::Jetstream);
        assert_eq!(r.source, "bluesky");
        assert!(r.bytes == e.json.as_bytes(), "bytes of the event at {}", e.time_us);
    }
}

#[test]
fn a_bounded_read_sends_what_lies_between_its_cursors_then_ends() {
    let events = generate(600, T0, STEP);
    // A drop midway: the bounded read reconnects and still ends where asked.
    let faults = Faults {
        drop_after: vec![300],
        ..Faults::default()
    };
    let server = JetstreamReplay::start(events.clone(), faults).expect("server");
    let expected = wanted(&events);
    let (from, until) = (expected[100].time_us, expected[400].time_us);
    let mut cfg = config(vec![server.url()]);
    cfg.until_us = Some(until);
    let (handle, rx, _health) = start(cfg, Some(from));
    let mut records = Vec::new();
    loop {
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(SourceMessage::Record(r)) => records.push(r),
            Ok(SourceMessage::Gap(g)) => panic!("unexpected gap {g:?}"),
            // The source ended by itself.
            Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Timeout) => panic!("the bounded read did not end; {} records", records.len()),
        }
    }
    handle.stop();
    assert_same_events(&records, &expected[101..=400]);

    // Nothing left between the cursors: it ends without a record.
    let mut cfg = config(vec![server.url()]);
    cfg.until_us = Some(until);
    let (handle, rx, _health) = start(cfg, Some(until));
    assert!(matches!(
        rx.recv_timeout(Duration::from_secs(10)),
        Err(RecvTimeoutError::Disconnected)
    ));
    handle.stop();
}

#[test]
fn disconnects_and_a_restart_lose_and_repeat_nothing() {
    let events = generate(3000, T0, STEP);
    let faults = Faults {
        drop_after: vec![250, 600, 1100, 1400, 2200, 2700],
        // Hold the stream here so the restart surely happens mid-stream.
        stall_after: vec![(1800, Duration::from_secs(30))],
        ..Faults::default()
    };
    let mut server = JetstreamReplay::start(events.clone(), faults).expect("server");
    let (handle, rx, health) = start(config(vec![server.url()]), None);

    let mut seen = Seen::default();
    seen.read_until(&rx, events[1800].time_us, Duration::from_secs(10));
    server.restart(Duration::from_millis(200)).expect("restart");
    let expected = wanted(&events);
    let last = expected.last().expect("events").time_us;
    seen.read_until(&rx, last, Duration::from_secs(10));
    handle.stop();
    while let Ok(message) = rx.try_recv() {
        match message {
            SourceMessage::Record(r) => seen.records.push(r),
            SourceMessage::Gap(g) => seen.gaps.push(g),
        }
    }

    assert_same_events(&seen.records, &expected);
    assert!(seen.gaps.is_empty(), "{:?}", seen.gaps);
    let h = health.snapshot();
    assert!(h.gaps.is_empty());
    assert_eq!(h.malformed, 0);
    assert_eq!(h.events, expected.len() as u64);
    // Six drops and one restart: seven reconnections at least (more if a
    // connection attempt hit the restarted server while it was down).
    assert!(h.reconnects >= 7, "{h:?}");
    assert!(server.connections() >= 8);
    // Every reconnection resumed from the last event it had handed on,
    // rewound by one second.
    let cursors = server.cursors();
    assert_eq!(cursors[0], None);
    assert_eq!(cursors[1], Some(events[250].time_us - 1_000_000));
    // The rewind made the server re-send events the client then dropped.
    assert!(server.sent() > expected.len() as u64);

    // The records decode into posts and deletions like a file would.
    let mut decoder = JetstreamDecoder;
    let mut out = DecodeOutput::default();
    for r in &seen.records {
        decoder.decode(&r.bytes, &mut out).expect("valid event");
    }
    // 3000 events: 1800 posts + 300 reposts, 300 slots of deletions less
    // the 60 identity events standing in some of them.
    assert_eq!(out.events.len(), 1800 + 300 + 240);
}

#[test]
fn a_resume_cursor_older_than_the_servers_history_is_a_gap() {
    let events = generate(1000, T0, STEP);
    let server = JetstreamReplay::start(events.clone(), Faults::default()).expect("server");
    server.set_retention(events[400].time_us);
    let resume = events[100].time_us;
    let (handle, rx, health) = start(config(vec![server.url()]), Some(resume));

    let expected: Vec<&ReplayEvent> = wanted(&events[400..]);
    let mut seen = Seen::default();
    seen.read_until(&rx, expected.last().expect("events").time_us, Duration::from_secs(10));
    handle.stop();

    assert_same_events(&seen.records, &expected);
    assert_eq!(seen.gaps.len(), 1);
    let gap = &seen.gaps[0];
    assert_eq!((gap.from, gap.to), (Some(resume), Some(events[400].time_us)));
    assert_eq!(gap.source, "bluesky");
    assert_eq!(health.snapshot().gaps, seen.gaps);
    assert_eq!(server.cursors(), vec![Some(resume - 1_000_000)]);
}

#[test]
fn events_expired_while_disconnected_are_a_gap() {
    let events = generate(1000, T0, STEP);
    let faults = Faults {
        drop_after: vec![200],
        // While the client is away, the server forgets up to event 600.
        expire_after: vec![(200, events[600].time_us)],
        ..Faults::default()
    };
    let server = JetstreamReplay::start(events.clone(), faults).expect("server");
    let (handle, rx, health) = start(config(vec![server.url()]), None);

    let mut seen = Seen::default();
    let last = wanted(&events).last().expect("events").time_us;
    seen.read_until(&rx, last, Duration::from_secs(10));
    handle.stop();

    let expected: Vec<&ReplayEvent> = wanted(&events[..=200])
        .into_iter()
        .chain(wanted(&events[600..]))
        .collect();
    assert_same_events(&seen.records, &expected);
    assert_eq!(seen.gaps.len(), 1);
    assert_eq!(
        (seen.gaps[0].from, seen.gaps[0].to),
        (Some(events[200].time_us), Some(events[600].time_us))
    );
    assert_eq!(health.snapshot().gaps.len(), 1);
}

#[test]
fn resuming_within_the_servers_history_repeats_nothing() {
    let events = generate(500, T0, STEP);
    let server = JetstreamReplay::start(events.clone(), Faults::default()).expect("server");
    let resume = events[300].time_us;
    let (handle, rx, health) = start(config(vec![server.url()]), Some(resume));

    let expected = wanted(&events[301..]);
    let mut seen = Seen::default();
    seen.read_until(&rx, expected.last().expect("events").time_us, Duration::from_secs(10));
    handle.stop();

    assert_same_events(&seen.records, &expected);
    assert!(seen.gaps.is_empty());
    assert!(health.snapshot().gaps.is_empty());
}

#[test]
fn malformed_frames_are_counted_and_skipped_on_the_same_connection() {
    let events = generate(400, T0, STEP);
    let faults = Faults {
        malformed_before: vec![10, 20, 30, 40],
        ..Faults::default()
    };
    let server = JetstreamReplay::start(events.clone(), faults).expect("server");
    let (handle, rx, health) = start(config(vec![server.url()]), None);

    let expected = wanted(&events);
    let mut seen = Seen::default();
    seen.read_until(&rx, expected.last().expect("events").time_us, Duration::from_secs(10));
    handle.stop();

    assert_same_events(&seen.records, &expected);
    let h = health.snapshot();
    assert_eq!(h.malformed, 4);
    assert_eq!(h.reconnects, 0);
    assert_eq!(server.connections(), 1);
}

#[test]
fn a_refusing_endpoint_fails_over_to_the_next() {
    // A port that was just free: nothing listens there, connections are
    // refused.
    let refusing = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("probe");
        format!("ws://{}/subscribe", probe.local_addr().expect("addr"))
    };
    let events = generate(300, T0, STEP);
    let server = JetstreamReplay::start(events.clone(), Faults::default()).expect("server");
    let (handle, rx, health) = start(config(vec![refusing, server.url()]), None);

    let expected = wanted(&events);
    let mut seen = Seen::default();
    seen.read_until(&rx, expected.last().expect("events").time_us, Duration::from_secs(10));
    handle.stop();

    assert_same_events(&seen.records, &expected);
    let h = health.snapshot();
    assert!(h.errors >= 1);
    assert!(h.last_error.is_some());
    assert_eq!(server.connections(), 1);
}

#[test]
fn a_stalled_server_is_left_for_a_fresh_connection() {
    let events = generate(300, T0, STEP);
    let faults = Faults {
        stall_after: vec![(100, Duration::from_secs(30))],
        ..Faults::default()
    };
    let server = JetstreamReplay::start(events.clone(), faults).expect("server");
    let mut config = config(vec![server.url()]);
    config.idle_timeout = Duration::from_millis(300);
    let (handle, rx, health) = start(config, None);

    let expected = wanted(&events);
    let mut seen = Seen::default();
    seen.read_until(&rx, expected.last().expect("events").time_us, Duration::from_secs(10));
    handle.stop();

    assert_same_events(&seen.records, &expected);
    assert_eq!(health.snapshot().reconnects, 1);
    assert_eq!(server.cursors()[1], Some(events[100].time_us - 1_000_000));
}

#[test]
fn stop_returns_even_when_nobody_reads() {
    let events = generate(2000, T0, STEP);
    let server = JetstreamReplay::start(events, Faults::default()).expect("server");
    let (tx, rx) = crossbeam_channel::bounded(1);
    let handle = jetstream::start(config(vec![server.url()]), None, tx, Arc::default()).expect("start");
    // Wait until the source is blocked on the full channel.
    let until = Instant::now() + Duration::from_secs(5);
    while !rx.is_full() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(5));
    }
    let stopping = Instant::now();
    handle.stop();
    assert!(stopping.elapsed() < Duration::from_secs(1));
    drop(rx);
}
