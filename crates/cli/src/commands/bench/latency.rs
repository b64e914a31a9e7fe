//! `tidewatch bench latency`: how long after a post arrives its alert
//! reaches a client of the live stream, with `tidewatch demo` ingesting at
//! a given rate.
//!
//! The benchmark runs the demo in this process (generated stream with
//! planted bursts, replayed at the speed that gives `--rate` posts per
//! second, full pipeline, served API) with a recording replay clock, and
//! reads `/api/v1/stream` over a plain HTTP connection like any client.
//! For every alert that opens, two delays are measured from the clock's
//! release record to the moment the event is read off the socket:
//!
//! - **from the decisive post**: the first post released whose event time
//!   moved the watermark past the alert's minute (event time ≥ minute end +
//!   allowed lateness). Before it arrives the alert cannot exist; this is
//!   the system's own latency.
//! - **from the minute's last post**: the first post released after the
//!   alert's minute; this adds the allowed lateness (5 event-time minutes,
//!   divided by the replay speed) that the watermark waits for late posts.

use crate::commands::bench::http_request;
use crate::commands::demo;
use crate::output::thousands;
use anyhow::{bail, Result};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tidewatch_core::Timestamp;
use tidewatch_engine::alerts::AlertRecord;
use tidewatch_engine::replay::ReplayClock;

#[derive(clap::Args)]
pub struct Args {
    /// Posts to generate.
    #[arg(long, default_value_t = 3_000_000)]
    pub posts: u64,
    /// Simulated days they span.
    #[arg(long, default_value_t = 3)]
    pub days: u32,
    /// Posts per second to replay at (sets the replay speed).
    #[arg(long, default_value_t = 60_000.0)]
    pub rate: f64,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// An alert read off the stream, and when.
struct Received {
    at: Instant,
    alert: AlertRecord,
}

pub fn bench_latency(a: Args) -> Result<ExitCode> {
    if !a.rate.is_finite() || a.rate <= 0.0 || a.posts == 0 || a.days == 0 {
        bail!("--rate, --posts and --days must be positive");
    }
    let prepared = demo::prepare(None, a.posts, a.days, a.seed)?;
    let event_secs = a.days as f64 * 86_400.0;
    let speed = a.rate * event_secs / a.posts as f64;
    let clock = Arc::new(ReplayClock::new(speed).recording());
    let mut args = demo::run_args(&prepared, 0, clock.clone(), false);
    let served = args.served.get_or_insert_with(|| Arc::new(OnceLock::new())).clone();
    let received: Arc<Mutex<Vec<Received>>> = Arc::default();
    let listener = {
        let received = received.clone();
        std::thread::spawn(move || listen(&served, &received))
    };
    eprintln!(
        "replaying at {speed:.0}x event time to reach {} posts/s",
        thousands(a.rate as u64)
    );
    let mut stats = None;
    let code = crate::commands::run::run_with(args, &mut |persist| {
        stats = Some(persist.totals().posts);
        Ok(())
    })?;
    // The server is gone: the stream ended and the listener returns.
    let _ = listener.join();
    let received = std::mem::take(&mut *received.lock().unwrap_or_else(|p| p.into_inner()));

    let lateness = 5 * Timestamp::MINUTE;
    let mut decisive = Vec::new();
    let mut after_minute = Vec::new();
    for r in received.iter().filter(|r| r.alert.kind == "opened") {
        let minute_end = Timestamp(r.alert.spike.detected_at.0 + Timestamp::MINUTE);
        if let Some(t) = clock.released_at(Timestamp(minute_end.0 + lateness)) {
            decisive.push(r.at.saturating_duration_since(t));
        }
        if let Some(t) = clock.released_at(minute_end) {
            after_minute.push(r.at.saturating_duration_since(t));
        }
    }
    let span = clock.release_span().map(|(a, b)| b - a).unwrap_or_default();
    let posts = stats.unwrap_or(0);
    println!(
        "replayed {} posts in {:.1} s: {} posts/s (target {}), {} alerts opened on the stream",
        thousands(posts),
        span.as_secs_f64(),
        thousands((posts as f64 / span.as_secs_f64().max(1e-9)) as u64),
        thousands(a.rate as u64),
        decisive.len()
    );
    println!("alert latency on /api/v1/stream (milliseconds):");
    println!("  {:<28} {}", "from the decisive post", summary(&mut decisive));
    println!("  {:<28} {}", "from the minute's last post", summary(&mut after_minute));
    if decisive.is_empty() {
        eprintln!("no alert reached the stream: nothing was measured");
        return Ok(ExitCode::FAILURE);
    }
    Ok(code)
}

/// `p50 … p99 … max … (n)` of `v`, in milliseconds.
fn summary(v: &mut [Duration]) -> String {
    if v.is_empty() {
        return "-".into();
    }
    v.sort_unstable();
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1000.0;
    format!(
        "p50 {:.1}  p90 {:.1}  p99 {:.1}  max {:.1}  (n = {})",
        at(0.5),
        at(0.9),
        at(0.99),
        at(1.0),
        v.len()
    )
}

/// Reads the live stream of the server at `served` (once it listens) until
/// the server closes it, keeping each `alert` event with its arrival time.
fn listen(served: &OnceLock<SocketAddr>, out: &Mutex<Vec<Received>>) -> Result<()> {
    let started = Instant::now();
    let addr = loop {
        if let Some(a) = served.get() {
            break *a;
        }
        if started.elapsed() > Duration::from_secs(300) {
            bail!("the server did not start");
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let conn = http_request(addr, "/api/v1/stream")?;
    let mut kind = String::new();
    for line in BufReader::new(conn).lines() {
        let Ok(line) = line else { break };
        if let Some(k) = line.strip_prefix("event:") {
            kind = k.trim().to_string();
        } else if let Some(data) = line.strip_prefix("data:") {
            if kind == "alert" {
                let at = Instant::now();
                if let Ok(alert) = serde_json::from_str::<AlertRecord>(data.trim()) {
                    out.lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(Received { at, alert });
                }
            }
        } else if line.is_empty() {
            kind.clear();
        }
    }
    Ok(())
}
