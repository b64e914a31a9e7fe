//! `tidewatch feeds`: work with detection feeds (standing queries).

use anyhow::Result;
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
    }
}
