//! `tidewatch feeds`: work with detection feeds (standing queries).

use anyhow::{Context, Result};
use std::path::PathBuf;
use std::process::ExitCode;
use tidewatch_core::query::{Anchors, Query};
use tidewatch_engine::feeds::load_feeds;

#[derive(clap::Subcommand)]
pub enum Feeds {
    /// Check a query: print its normalised form and the terms the presearcher
    /// indexes it by, or the parse error with its column.
    Check {
        /// The query, e.g. '"climate change" OR #climate -hoax'.
        query: String,
    },
    /// Validate a feeds file (TOML, `[[feed]] name = ..., query = ...`).
    Validate { path: PathBuf },
    /// Append the suggested feed of an emerging topic to a feeds file.
    Add(crate::commands::topics::AddFromTopic),
    /// Make a feeds file the feed set of a cluster: every worker applies it
    /// while the posts flow.
    Push {
        /// The feeds file (TOML), checked before it is sent.
        path: PathBuf,
        /// NATS server URL(s), comma-separated.
        #[arg(long)]
        nats: String,
        /// The cluster's posts stream.
        #[arg(long, default_value = tidewatch_cluster::DEFAULT_STREAM)]
        stream: String,
    },
}

pub fn run(f: Feeds) -> Result<ExitCode> {
    match f {
        Feeds::Check { query } => match Query::parse(&query) {
            Ok(q) => {
                println!("normalised: {}", q.normalized());
                match q.anchors() {
                    Anchors::Unanchored => println!("presearch:  none (verified against every post)"),
                    a => println!("presearch:  {a}"),
                }
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                eprintln!("{e}");
                Ok(ExitCode::FAILURE)
            }
        },
        Feeds::Validate { path } => {
            let feeds = load_feeds(&path)?;
            println!("{}: {} feeds, all valid", path.display(), feeds.len());
            Ok(ExitCode::SUCCESS)
        }
        Feeds::Add(args) => crate::commands::topics::add_from_topic(args),
        Feeds::Push { path, nats, stream } => {
            let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
            let n = tidewatch_engine::feeds::parse_feeds(&text, &path.display().to_string())?.len();
            let mut cfg = tidewatch_cluster::ClusterConfig::new(&nats);
            cfg.stream = stream;
            let revision = tidewatch_cluster::feeds::put_feeds_blocking(&cfg, &text)
                .with_context(|| format!("publishing the feeds to {nats}"))?;
            println!(
                "{}: {n} feeds are the cluster's feed set (revision {revision})",
                path.display()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
