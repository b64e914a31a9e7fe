//! `tidewatch status`: the health of the live sources of the run using a
//! data directory, as that run last wrote it to `DATA/status.json`
//! (every two seconds, and once more when it ends).

use crate::output::thousands;
use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use std::process::ExitCode;
use tidewatch_engine::datadir::DEFAULT_DATA_DIR;
use tidewatch_engine::sources::{RunStatus, STATUS_FILE};

#[derive(clap::Args)]
pub struct Args {
    /// The data directory of the run.
    #[arg(long, default_value = DEFAULT_DATA_DIR)]
    pub data: PathBuf,
    /// `text` (a table) or `json` (the status file as written).
    #[arg(long, default_value = "text")]
    pub format: String,
}

/// A running run's status older than this is stale: the run was killed
/// or is stuck.
const STALE_MS: i64 = 10_000;

pub fn run(args: Args) -> Result<ExitCode> {
    let status = RunStatus::read(&args.data).with_context(|| {
        format!(
            "reading {} (is a `tidewatch run` using this data directory?)",
            args.data.join(STATUS_FILE).display()
        )
    })?;
    match args.format.as_str() {
        "json" => println!("{}", serde_json::to_string_pretty(&status)?),
        "text" => print_text(&status),
        other => bail!("unknown format {other:?}; expected text or json"),
    }
    Ok(ExitCode::SUCCESS)
}

fn print_text(s: &RunStatus) {
    let now = chrono::Utc::now().timestamp_millis();
    let age = now - s.updated_at;
    let state = if !s.running {
        "ended".to_string()
    } else if age > STALE_MS {
        format!(
            "not updated for {} s: the run (pid {}) was probably killed",
            age / 1000,
            s.pid
        )
    } else {
        format!("running (pid {})", s.pid)
    };
    println!(
        "run: {state}; {} posts, {} matched, {} rejected; updated {:.1} s ago",
        thousands(s.posts),
        thousands(s.matched),
        thousands(s.rejected),
        age as f64 / 1000.0
    );
    if s.sources.is_empty() {
        println!("no live sources");
        return;
    }
    println!(
        "{:<16} {:<9} {:>10} {:>9} {:>9} {:>10} {:>8} {:>8} {:>9} {:>5}",
        "source", "kind", "events", "events/s", "lag", "reconnects", "errors", "rejected", "malformed", "gaps"
    );
    for src in &s.sources {
        let lag = src
            .lag_ms
            .map_or("-".to_string(), |l| format!("{:.1}s", l as f64 / 1000.0));
        println!(
            "{:<16} {:<9} {:>10} {:>9.0} {:>9} {:>10} {:>8} {:>8} {:>9} {:>5}",
            src.name,
            src.kind,
            thousands(src.events),
            src.events_per_s,
            lag,
            src.reconnects,
            src.errors,
            src.rejected,
            src.malformed,
            src.gaps.len()
        );
        if let Some(e) = &src.last_error {
            println!("  last error: {e}");
        }
    }
    for (name, g) in s.gaps() {
        let when = chrono::DateTime::from_timestamp_millis(g.detected_at)
            .map_or_else(|| g.detected_at.to_string(), |t| t.to_rfc3339());
        println!("GAP in {name} (detected {when}): {}", g.what);
    }
}
