//! `tidewatch alerts`: the alerts a data directory has recorded.

use anyhow::{Context, Result};
use std::path::PathBuf;
use std::process::ExitCode;
use tidewatch_core::Timestamp;
use tidewatch_engine::alerts::current_alerts;
use tidewatch_engine::datadir::DEFAULT_DATA_DIR;
use tidewatch_store::db::Db;
use tidewatch_store::Store;

#[derive(clap::Args)]
pub struct Args {
    /// The data directory.
    #[arg(long, default_value = DEFAULT_DATA_DIR)]
    pub data: PathBuf,
    /// Only alerts whose spike started at or after this time (RFC 3339).
    #[arg(long)]
    pub since: Option<String>,
    /// `table` or `json` (one object a line).
    #[arg(long, default_value = "table")]
    pub format: String,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let since = args
        .since
        .as_deref()
        .map(|s| Timestamp::parse(s).with_context(|| format!("--since {s:?}")))
        .transpose()?;
    let path = Store::db_path(&args.data);
    if !path.exists() {
        anyhow::bail!(
            "{}: no tidewatch database here (run `tidewatch run --data {}` first)",
            path.display(),
            args.data.display()
        );
    }
    let db = Db::open(&path)?;
    let alerts = current_alerts(&db, since).with_context(|| format!("reading {}", path.display()))?;
    let shown = alerts.iter();
    match args.format.as_str() {
        "json" => {
            for a in shown {
                println!("{}", serde_json::to_string(a)?);
            }
        }
        "table" => {
            println!(
                "{:<16} {:<20} {:<20} {:<20} {:>6} {:>9} {:>7}",
                "id", "feed", "onset", "end", "peak", "expected", "x"
            );
            for a in shown {
                let s = &a.spike;
                println!(
                    "{:<16} {:<20} {:<20} {:<20} {:>6} {:>9.1} {:>7.1}",
                    a.id,
                    a.feed_name,
                    s.onset.to_string(),
                    s.end.map_or("open".to_string(), |e| e.to_string()),
                    s.peak_count,
                    s.peak_expected,
                    s.magnitude
                );
            }
        }
        other => anyhow::bail!("--format {other:?}: expected table or json"),
    }
    Ok(ExitCode::SUCCESS)
}
