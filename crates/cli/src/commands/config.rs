//! `tidewatch config check FILE`: reads a configuration file the way
//! `tidewatch run --config` does, without starting anything, and says what
//! a run would read.

use anyhow::Result;
use std::path::PathBuf;
use std::process::ExitCode;
use tidewatch_engine::config::{Config, Feeds};

#[derive(clap::Subcommand)]
pub enum ConfigCmd {
    /// Validate a configuration file (`tidewatch.toml`) without running it.
    Check {
        /// The configuration file.
        file: PathBuf,
    },
}

pub fn run(cmd: ConfigCmd) -> Result<ExitCode> {
    match cmd {
        ConfigCmd::Check { file } => check(&file),
    }
}

fn check(file: &std::path::Path) -> Result<ExitCode> {
    let config = Config::load(file)?;
    println!("{}: valid", file.display());
    if let Some(data) = &config.data {
        println!("  data directory: {}", data.display());
    }
    match &config.feeds {
        Feeds::None => println!("  feeds: none (posts are stored and counted, nothing is matched)"),
        Feeds::File(p) => println!("  feeds: {}", p.display()),
        Feeds::Inline(defs) => println!("  feeds: {} inline", defs.len()),
    }
    let p = &config.privacy;
    println!(
        "  privacy: {} h epochs, keys kept {} days after, k = {}, posts kept {}",
        p.epoch_hours,
        p.linkage_days,
        p.k,
        if p.retention_days == 0 {
            "forever".to_string()
        } else {
            format!("{} days", p.retention_days)
        }
    );
    for f in &config.files {
        println!(
            "  source {:?} (file): {} file(s), format {}",
            f.name,
            f.paths.len(),
            f.format.map_or("auto", |f| f.name())
        );
    }
    for s in &config.sources {
        println!("  source {:?} ({})", s.name(), s.kind());
    }
    for n in &config.nats {
        println!(
            "  source {:?} (nats): valid, but `run` reads no NATS source (a cluster is read by `tidewatch worker`): `run` refuses it",
            n.name
        );
    }
    Ok(ExitCode::SUCCESS)
}
