//! `tidewatch alerts`: the alerts a data directory has recorded.

use crate::commands::topics::open_db;
use crate::output::quiet_on_closed_pipe;
use anyhow::{Context, Result};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use tidewatch_core::query::Query;
use tidewatch_core::spike::explain::DriverKind;
use tidewatch_core::Timestamp;
use tidewatch_engine::alerts::{current_alerts, AlertRecord};
use tidewatch_engine::datadir::DEFAULT_DATA_DIR;
use tidewatch_store::index::PostIndex;
use tidewatch_store::search::{Hit, SearchRequest};
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
    /// Under each alert, up to 5 representative posts (redacted) from the
    /// index: the spike's posts carrying its strongest drivers. Always
    /// included in json.
    #[arg(long)]
    pub posts: bool,
}

/// Up to 5 posts of the spike's feed and minutes, preferring those with its
/// strongest term and hashtag drivers; none when the index is not there.
fn representative_posts(index: Option<&PostIndex>, a: &AlertRecord) -> Vec<Hit> {
    let Some(index) = index else {
        return Vec::new();
    };
    let s = &a.spike;
    let to = Timestamp(s.end.unwrap_or(s.detected_at).0 + Timestamp::MINUTE);
    let keys: Vec<String> = a
        .why
        .iter()
        .filter_map(|d| match d.kind {
            DriverKind::Term => Some(format!("\"{}\"", d.key.replace('"', ""))),
            DriverKind::Hashtag => Some(format!("#{}", d.key.trim_start_matches('#'))),
            _ => None,
        })
        .take(3)
        .collect();
    let mut queries = Vec::new();
    if !keys.is_empty() {
        queries.push(keys.join(" OR "));
    }
    queries.push("-zzzqqqnothing".to_string());
    for q in queries {
        let Ok(query) = Query::parse(&q) else { continue };
        let req = SearchRequest {
            query,
            from: Some(s.onset),
            to: Some(to),
            feed: Some(s.feed),
            limit: 5,
        };
        if let Ok(hits) = index.search(&req) {
            if !hits.is_empty() {
                return hits;
            }
        }
    }
    Vec::new()
}

pub fn run(args: Args) -> Result<ExitCode> {
    let since = args
        .since
        .as_deref()
        .map(|s| Timestamp::parse(s).with_context(|| format!("--since {s:?}")))
        .transpose()?;
    let db = open_db(&args.data)?;
    let alerts = current_alerts(&db, since).with_context(|| format!("reading {}", db.path().display()))?;
    let index_dir = Store::index_dir(&args.data);
    let index = (args.posts || args.format == "json")
        .then(|| PostIndex::open_read_only(&index_dir).ok())
        .flatten();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    if !matches!(args.format.as_str(), "json" | "table") {
        anyhow::bail!("--format {:?}: expected table or json", args.format);
    }
    let written = (|| -> std::io::Result<()> {
        match args.format.as_str() {
            "json" => {
                for a in &alerts {
                    let mut v = serde_json::to_value(a)?;
                    v["posts"] = serde_json::to_value(representative_posts(index.as_ref(), a))?;
                    writeln!(out, "{v}")?;
                }
            }
            "table" => {
                writeln!(
                    out,
                    "{:<16} {:<20} {:<20} {:<20} {:>6} {:>9} {:>7}  why",
                    "id", "feed", "onset", "end", "peak", "expected", "x"
                )?;
                for a in &alerts {
                    let s = &a.spike;
                    let why: Vec<String> = a.why.iter().take(5).map(|d| d.label()).collect();
                    writeln!(
                        out,
                        "{:<16} {:<20} {:<20} {:<20} {:>6} {:>9.1} {:>7.1}  {}",
                        a.id,
                        a.feed_name,
                        s.onset.to_string(),
                        s.end.map_or("open".to_string(), |e| e.to_string()),
                        s.peak_count,
                        s.peak_expected,
                        s.magnitude,
                        why.join(", ")
                    )?;
                    if args.posts {
                        for h in representative_posts(index.as_ref(), a) {
                            let text: String = h.text.chars().take(140).collect();
                            writeln!(
                                out,
                                "    {} {} {}",
                                h.created_at.map_or("-".to_string(), |t| t.to_string()),
                                h.platform,
                                text.replace('\n', " ")
                            )?;
                        }
                    }
                }
            }
            _ => {}
        }
        out.flush()
    })();
    match written {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) => quiet_on_closed_pipe(e),
    }
}
