//! Throughput of the Jetstream client alone: the local replay server sends
//! generated events over loopback as fast as it can, the client reads,
//! checks and de-duplicates them and hands them to a channel, and a
//! consumer thread only counts. Nothing is decoded into posts here (the
//! full pipeline is measured elsewhere).
//!
//! ```text
//! cargo run --release -p tidewatch-sources --example jetstream_replay_bench [EVENTS]
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};
use tidewatch_sources::jetstream::{self, JetstreamConfig, DEFAULT_COLLECTIONS};
use tidewatch_sources::replay::jetstream::{generate, Faults, JetstreamReplay};
use tidewatch_sources::{SourceHealth, SourceMessage};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let generated: usize = match std::env::args().nth(1) {
        Some(n) => n.parse()?,
        None => 1_000_000,
    };
    let events = generate(generated, 1_725_148_800_000_000, 1_000);
    let expected = events.iter().filter(|e| e.wanted_by(&DEFAULT_COLLECTIONS)).count();
    let bytes: usize = events
        .iter()
        .filter(|e| e.wanted_by(&DEFAULT_COLLECTIONS))
        .map(|e| e.json.len())
        .sum();
    let server = JetstreamReplay::start(events, Faults::default())?;

    let (tx, rx) = crossbeam_channel::bounded(8192);
    let health = Arc::new(SourceHealth::default());
    let started = Instant::now();
    let handle = jetstream::start(
        JetstreamConfig::new("bench", vec![server.url()]),
        None,
        tx,
        Arc::clone(&health),
    )?;
    let mut received = 0usize;
    while received < expected {
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(SourceMessage::Record(_)) => received += 1,
            Ok(SourceMessage::Gap(_)) => {}
            Err(e) => return Err(format!("after {received} of {expected} events: {e}").into()),
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    handle.stop();

    println!(
        "{received} events ({:.1} MB of JSON) in {elapsed:.3} s: {:.0} events/s, {:.1} MB/s; malformed {}, reconnects {}",
        bytes as f64 / 1e6,
        received as f64 / elapsed,
        bytes as f64 / 1e6 / elapsed,
        health.snapshot().malformed,
        health.snapshot().reconnects,
    );
    Ok(())
}
