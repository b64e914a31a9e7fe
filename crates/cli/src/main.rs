//! `tidewatch`: watch public discourse in real time — topics, not people.
//!
//! This binary is the edge of the system: it parses arguments, opens files
//! and reports errors with context. Every subcommand lives in its own module
//! under `commands/` and calls into the library crates.

mod commands;
mod output;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

// Posts are many small strings allocated and freed on several threads.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "tidewatch",
    version,
    about = "Watch public discourse in real time: topics, not people."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate a realistic stream with planted events and run it through the pipeline.
    Demo(commands::demo::Args),
    /// Decode, pseudonymise and enrich posts from files into canonical JSON Lines.
    Ingest(commands::ingest::Args),
    /// List the alerts (feed volume spikes) recorded in a data directory.
    Alerts(commands::alerts::Args),
    /// List the emerging topics recorded in a data directory, with suggested feeds.
    Topics(commands::topics::Args),
    /// Coordinated groups of accounts (at least 5), recorded or computed over input files,
    /// as JSON, an edge list (CSV, also coordination-network-toolkit compatible) or GEXF.
    Coordination(commands::coordination::Args),
    /// Narratives: texts many posts repeat (near-duplicates and reposts), with account counts, never accounts.
    Narratives(commands::narratives::Args),
    /// Check queries and feeds files; add a topic's suggested feed.
    #[command(subcommand)]
    Feeds(commands::feeds::Feeds),
    /// Run posts through enrichment and the detection feeds, keeping per-feed series.
    Run(commands::run::Args),
    /// Generate a realistic post stream with planted, documented events.
    Gen(commands::gen::Args),
    /// Measure throughput (posts per second) against an in-process baseline.
    #[command(subcommand)]
    Bench(commands::bench::Bench),
    /// Evaluate a detector against labelled data.
    #[command(subcommand)]
    Eval(commands::eval::Eval),
    /// Search the stored posts of a data directory with the feed query language.
    Search(commands::search::SearchArgs),
    /// Stream every stored post matching a query as CSV or JSON Lines.
    Export(commands::search::ExportArgs),
    /// Check a configuration file (`tidewatch.toml`).
    #[command(subcommand)]
    Config(commands::config::ConfigCmd),
    /// Serve the JSON API and live event stream over a data directory (127.0.0.1:8080).
    Serve(commands::serve::Args),
    /// Create API tokens (roles read, admin) for `tidewatch serve`.
    #[command(subcommand)]
    Token(commands::token::TokenCmd),
    /// Decode and pseudonymise posts and publish them to a partitioned NATS JetStream stream.
    Publish(commands::publish::Args),
    /// Join a cluster: lease partitions of the NATS posts stream and keep their shards of the store.
    Worker(commands::worker::Args),
    /// Show the health of a run's live sources: events/s, lag, reconnects, errors, gaps.
    Status(commands::status::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo(a) => commands::demo::run(a),
        Command::Ingest(a) => commands::ingest::run(a),
        Command::Alerts(a) => commands::alerts::run(a),
        Command::Topics(a) => commands::topics::run(a),
        Command::Coordination(a) => commands::coordination::run(a),
        Command::Narratives(a) => commands::narratives::run(a),
        Command::Feeds(f) => commands::feeds::run(f),
        Command::Gen(a) => commands::gen::run(a),
        Command::Run(a) => commands::run::run(a),
        Command::Bench(b) => commands::bench::run(b),
        Command::Eval(e) => commands::eval::run(e),
        Command::Search(a) => commands::search::search(a),
        Command::Export(a) => commands::search::export(a),
        Command::Config(c) => commands::config::run(c),
        Command::Status(a) => commands::status::run(a),
        Command::Publish(a) => commands::publish::run(a),
        Command::Worker(a) => commands::worker::run(a),
        Command::Serve(a) => commands::serve::run(a),
        Command::Token(t) => commands::token::run(t),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("tidewatch: error: {e:#}");
            ExitCode::from(2)
        }
    }
}
