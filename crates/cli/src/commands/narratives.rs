//! `tidewatch narratives`: the texts many posts repeat (near-duplicate
//! clusters with their reposts), as a data directory recorded them or
//! computed over an input file.
//!
//! Each narrative is listed with its size, its number of distinct accounts
//! (a count: accounts are never listed), its time span, languages, link
//! domains, growth, the feeds its posts matched and a member's redacted
//! text.

use crate::commands::ingest::default_threads;
use anyhow::{bail, Context, Result};
use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use tidewatch_core::narrative::{NarrativeConfig, DEFAULT_MEMORY_MIB};
use tidewatch_core::pseudonym::{Keyring, PseudonymConfig};
use tidewatch_core::redact::PublicAccounts;
use tidewatch_core::window::{WindowConfig, WindowView};
use tidewatch_core::Timestamp;
use tidewatch_engine::datadir::{DataDir, DEFAULT_DATA_DIR};
use tidewatch_engine::live::LiveFeeds;
use tidewatch_engine::narratives::{current_narratives, NarrativeRecord, NarrativeWatch, WatchConfig};
use tidewatch_engine::run::{self, MatchedPost, RunConfig, RunSink};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

/// How much memory the narrative clusterer may hold (`--narrative-memory`),
/// shared by every command that clusters.
#[derive(clap::Args, Clone, Debug)]
pub struct NarrativeMemory {
    /// Memory for narratives, in MiB: their caps (LSH entries, narratives,
    /// reposted originals) scale with it. At high rates the caps, not the
    /// 24 h window, bound how far back the first copy of a text is found:
    /// about 27 s at 2,000 posts/s with the default, twice that with twice
    /// the memory.
    #[arg(long, default_value_t = DEFAULT_MEMORY_MIB as u64, value_parser = clap::value_parser!(u64).range(1..))]
    pub narrative_memory: u64,
}

impl Default for NarrativeMemory {
    fn default() -> Self {
        NarrativeMemory {
            narrative_memory: DEFAULT_MEMORY_MIB as u64,
        }
    }
}

impl NarrativeMemory {
    /// The clusterer's configuration: the defaults with these caps.
    pub fn config(&self) -> NarrativeConfig {
        let mib = usize::try_from(self.narrative_memory).unwrap_or(usize::MAX);
        NarrativeConfig::default().with_memory_mib(mib)
    }

    /// The narrative watch's configuration: the defaults with these caps.
    pub fn watch_config(&self) -> WatchConfig {
        WatchConfig {
            narratives: self.config(),
            ..WatchConfig::default()
        }
    }
}

#[derive(clap::Args)]
pub struct Args {
    /// The data directory: lists the narratives a `tidewatch run` recorded;
    /// with --input, its keyring makes the pseudonyms.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Compute the narratives over this file (any format `run` reads)
    /// instead of reading a data directory.
    #[arg(long)]
    pub input: Option<PathBuf>,
    /// Only narratives with a post at or after this time (RFC 3339).
    #[arg(long)]
    pub since: Option<String>,
    /// Most narratives listed.
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    /// Only narratives with at least this many distinct accounts.
    #[arg(long, default_value_t = 2)]
    pub min_accounts: u64,
    /// `text` (one block per narrative) or `json` (one object a line).
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// Worker threads for --input (default: every core); results do not
    /// depend on it.
    #[arg(long)]
    pub threads: Option<usize>,
    #[command(flatten)]
    pub memory: NarrativeMemory,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let since = args
        .since
        .as_deref()
        .map(|s| Timestamp::parse(s).with_context(|| format!("--since {s:?}")))
        .transpose()?;
    let (narratives, feed_names) = match &args.input {
        Some(input) => (compute(input, &args)?, HashMap::new()),
        None => {
            let data = args.data.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
            let db = crate::commands::topics::open_db(&data)?;
            // The table is ordered by accounts: filtering by accounts after
            // the limit would drop nothing that should be listed.
            let rows = current_narratives(&db, since, usize::MAX)
                .with_context(|| format!("reading {}", db.path().display()))?;
            let names = db
                .feeds()
                .with_context(|| format!("reading {}", db.path().display()))?
                .into_iter()
                .map(|f| (f.id, f.name))
                .collect();
            (rows, names)
        }
    };
    let listed: Vec<&NarrativeRecord> = narratives
        .iter()
        .filter(|n| n.accounts >= args.min_accounts)
        .filter(|n| since.is_none_or(|s| n.last_seen >= s))
        .take(args.limit)
        .collect();
    let mut out = std::io::stdout().lock();
    write(&mut out, &listed, &feed_names, args.format)
        .map_or_else(crate::output::quiet_on_closed_pipe, |_| Ok(ExitCode::SUCCESS))
}

/// Runs the pipeline (decode, pseudonymise, enrich, redact) over `input`
/// and clusters its posts; returns the narratives of two or more posts,
/// most distinct accounts first.
fn compute(input: &std::path::Path, args: &Args) -> Result<Vec<NarrativeRecord>> {
    let keyring = match &args.data {
        Some(d) => Arc::new(DataDir::open(d)?.load_keyring(PseudonymConfig::default())?),
        None => Arc::new(Keyring::new(PseudonymConfig::default())),
    };
    let cfg = RunConfig {
        decode: Default::default(),
        threads: args.threads.unwrap_or_else(default_threads),
        keyring,
        enriched_upstream: false,
        public_accounts: Arc::new(PublicAccounts::default()),
        undated_time: Timestamp(0),
        window: WindowConfig::default(),
    };
    let live = LiveFeeds::new(&[])?;
    let mut sink = Sink {
        watch: NarrativeWatch::new(args.memory.watch_config())?,
    };
    let mut rejected = 0u64;
    let summary = run::run(&[input.to_path_buf()], &cfg, &live, &mut sink, &mut |_| rejected += 1)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    if let Some((path, e)) = summary
        .files
        .iter()
        .find_map(|f| f.error.as_ref().map(|e| (&f.path, e)))
    {
        bail!("{path}: {e}");
    }
    if rejected > 0 {
        eprintln!("{rejected} records could not be read and were skipped");
    }
    // Every live narrative; ranked like the store's listing.
    let mut all = sink.watch.top(usize::MAX);
    all.sort_by(|a, b| {
        b.accounts
            .cmp(&a.accounts)
            .then(b.posts.cmp(&a.posts))
            .then(a.id.cmp(&b.id))
    });
    Ok(all)
}

struct Sink {
    watch: NarrativeWatch,
}

impl RunSink for Sink {
    fn post(&mut self, m: &MatchedPost) {
        self.watch.post(m);
    }

    fn window(&mut self, _: &WindowView<'_>) {}
}

fn write(
    out: &mut impl Write,
    narratives: &[&NarrativeRecord],
    feed_names: &HashMap<u32, String>,
    format: Format,
) -> std::io::Result<()> {
    match format {
        Format::Json => {
            for n in narratives {
                writeln!(out, "{}", serde_json::to_string(n)?)?;
            }
        }
        Format::Text => {
            if narratives.is_empty() {
                writeln!(out, "no narratives")?;
            }
            for n in narratives {
                let pairs = |v: &[(String, u64)]| {
                    if v.is_empty() {
                        "-".to_string()
                    } else {
                        v.iter()
                            .map(|(k, c)| format!("{k} ({c})"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    }
                };
                let feeds: Vec<(String, u64)> = n
                    .feeds
                    .iter()
                    .map(|(id, c)| (feed_names.get(id).cloned().unwrap_or_else(|| format!("feed {id}")), *c))
                    .collect();
                writeln!(
                    out,
                    "{}  {} posts ({} reposts), {}{} accounts, {} – {}, growth {:.1}",
                    n.id,
                    n.posts,
                    n.reposts,
                    if n.accounts_exact { "" } else { "~" },
                    n.accounts,
                    n.first_seen,
                    n.last_seen,
                    n.growth
                )?;
                writeln!(out, "  languages: {}", pairs(&n.languages))?;
                writeln!(out, "  domains:   {}", pairs(&n.domains))?;
                writeln!(out, "  feeds:     {}", pairs(&feeds))?;
                writeln!(out, "  text:      {}", n.representative.replace('\n', " "))?;
            }
        }
    }
    Ok(())
}
