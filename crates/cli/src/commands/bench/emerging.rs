//! `tidewatch bench emerging`: does the emerging-topic state stay flat over
//! a long stream?
//!
//! Generated posts are streamed straight from the generator (nothing on
//! disk) through entity extraction and tokenisation into one
//! [`EmergingTopics`], whose ranking is taken at the end of every
//! event-time minute as a live run does. Every `--every` posts it prints
//! the process's resident memory (`VmRSS` and its peak `VmHWM` from
//! `/proc/self/status`, Linux only) next to the detector's own estimate of
//! its structures ([`EmergingTopics::memory_bytes`]). The process figure
//! also holds the generator's plan and the allocator's free lists, so it is
//! the detector's estimate that should stay flat; the process figure shows
//! that nothing else grows either.

use anyhow::Result;
use std::process::ExitCode;
use std::time::Instant;
use tidewatch_core::emerging::{EmergingConfig, EmergingTopics};
use tidewatch_core::text::{tokenize, TokenizedText};
use tidewatch_core::{entities, Timestamp};
use tidewatch_gen::{GenConfig, Generator};

/// Topics ranked at the end of each minute (as `tidewatch run` takes them).
const TOP_K: usize = 10;

/// A `kB` figure of `/proc/self/status` (`VmRSS`, `VmHWM`), in bytes.
fn proc_status_bytes(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        let kb: u64 = rest.trim().trim_end_matches("kB").trim().parse().ok()?;
        Some(kb * 1024)
    })
}

fn mib(bytes: Option<u64>) -> serde_json::Value {
    bytes.map_or(serde_json::Value::Null, |b| {
        serde_json::json!((b as f64 / (1024.0 * 1024.0) * 10.0).round() / 10.0)
    })
}

pub fn bench_emerging(posts: u64, days: u32, seed: u64, every: u64) -> Result<ExitCode> {
    let every = every.max(1);
    let gen = Generator::new(&GenConfig {
        posts,
        days: days.max(1),
        seed,
        ..Default::default()
    });
    let mut det = EmergingTopics::new(EmergingConfig::default());
    let mut tokens = TokenizedText::new();
    let mut spans = Vec::new();
    let mut minute: Option<i64> = None;
    let mut listed = 0usize;
    let mut n = 0u64;
    let start = Instant::now();
    let report = |n: u64, det: &EmergingTopics, listed: usize| {
        let secs = start.elapsed().as_secs_f64().max(1e-9);
        println!(
            "{}",
            serde_json::json!({
                "bench": "emerging",
                "posts": n,
                "event_time": det.clock().map(|t| t.to_string()),
                "rss_mib": mib(proc_status_bytes("VmRSS")),
                "peak_rss_mib": mib(proc_status_bytes("VmHWM")),
                "detector_mib": mib(Some(det.memory_bytes() as u64)),
                "tracked_keys": det.tracked(),
                "topics_listed": listed,
                "seconds": (secs * 10.0).round() / 10.0,
                "posts_per_s": (n as f64 / secs).round(),
            })
        );
    };
    report(0, &det, 0);
    for mut post in gen {
        if let Some(t) = post.created_at {
            let m = t.0.div_euclid(Timestamp::MINUTE);
            if minute.is_some_and(|prev| m > prev) {
                listed += det.top(Timestamp(m.saturating_mul(Timestamp::MINUTE)), TOP_K).len();
            }
            if minute.is_none_or(|prev| m > prev) {
                minute = Some(m);
            }
        }
        entities::scan_into(&post.text, &mut spans);
        post.entities = Some(entities::extract(&post.text, &spans));
        tokenize(&post.text, &mut tokens);
        det.observe(&post, &tokens);
        n += 1;
        if n.is_multiple_of(every) {
            report(n, &det, listed);
        }
    }
    if !n.is_multiple_of(every) {
        report(n, &det, listed);
    }
    Ok(ExitCode::SUCCESS)
}
