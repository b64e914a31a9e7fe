//! `tidewatch search` and `tidewatch export`: the stored posts of a data
//! directory, selected with the feed query language.
//!
//! The idea: both commands open the index read-only (so they work while a
//! `tidewatch run` keeps writing to it, and see its last commit), translate
//! the same arguments into one [`SearchRequest`], and print what may be
//! shown of a post: time, platform, language, sentiment, the feeds it
//! matched, and its redacted text. There is no author to print: none is
//! stored.
//!
//! - `search` prints the total number of matches and the newest hits (or,
//!   with `--histogram`, the number of matches per time bucket);
//! - with `--nats`, `search` asks every shard of a cluster instead
//!   (`tidewatch_cluster::view`) and prints the merged result the same
//!   way, saying on standard error which partitions did not answer;
//! - `export` streams every match, one at a time through a buffered writer,
//!   so memory stays constant however many posts match; a reader that
//!   closes the pipe early (`| head`) simply ends it.

use crate::output::quiet_on_closed_pipe;
use crate::output::thousands;
use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::collections::HashMap;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use tidewatch_cluster::view::{self, ViewHit, ViewSearch};
use tidewatch_cluster::ClusterConfig;
use tidewatch_core::query::Query;
use tidewatch_core::Timestamp;
use tidewatch_engine::datadir::DEFAULT_DATA_DIR;
use tidewatch_store::db::Db;
use tidewatch_store::index::PostIndex;
use tidewatch_store::search::{Hit, SearchRequest};
use tidewatch_store::{Store, StoreError};

/// Characters of text shown per row of the table (the full text is in
/// json and csv).
const TABLE_TEXT_CHARS: usize = 80;
/// Characters of feed names shown per row of the table.
const TABLE_FEEDS_CHARS: usize = 24;
/// Width of the longest bar of a histogram table.
const BAR_WIDTH: u64 = 40;
/// Known feed names listed when `--feed` names none of them.
const FEEDS_LISTED: usize = 10;

/// What to search: the query and the filters both commands share.
#[derive(clap::Args)]
pub struct Target {
    /// The query, in the feed query language (see `tidewatch feeds check`);
    /// it may start with `-` (`-spam lang:en`).
    #[arg(allow_hyphen_values = true)]
    pub query: String,
    /// The data directory `tidewatch run` wrote.
    #[arg(long, default_value = DEFAULT_DATA_DIR)]
    pub data: PathBuf,
    /// Only posts at or after this time (RFC 3339, a date, unix seconds...).
    #[arg(long)]
    pub from: Option<String>,
    /// Only posts before this time.
    #[arg(long)]
    pub to: Option<String>,
    /// Only posts that matched the feed of this name.
    #[arg(long)]
    pub feed: Option<String>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SearchFormat {
    Table,
    /// One JSON object a line.
    Json,
    Csv,
}

#[derive(clap::Args)]
pub struct SearchArgs {
    #[command(flatten)]
    pub target: Target,
    /// Show at most this many hits, newest first.
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    #[arg(long, value_enum, default_value_t = SearchFormat::Table)]
    pub format: SearchFormat,
    /// Instead of hits, the number of matches per time bucket of this
    /// width: `30s`, `1m`, `15m`, `1h`, `1d`, `1w`.
    #[arg(long)]
    pub histogram: Option<String>,
    /// Search every shard of a cluster instead of a data directory: NATS
    /// server URL(s), comma-separated (`--data` is then not read).
    #[arg(long, conflicts_with = "histogram")]
    pub nats: Option<String>,
    /// The cluster's posts stream (with `--nats`).
    #[arg(long, default_value = tidewatch_cluster::DEFAULT_STREAM, requires = "nats")]
    pub stream: String,
    /// How long each partition has to answer, in milliseconds (with `--nats`).
    #[arg(long, default_value_t = 5000, requires = "nats")]
    pub timeout_ms: u64,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportFormat {
    Csv,
    /// One JSON object a line.
    Jsonl,
}

#[derive(clap::Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub target: Target,
    #[arg(long, value_enum, default_value_t = ExportFormat::Jsonl)]
    pub format: ExportFormat,
    /// Write here instead of standard output.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// An opened data directory and a request against it.
struct Opened {
    index: PostIndex,
    req: SearchRequest,
    /// Feed names by id.
    names: HashMap<u32, String>,
}

/// Opens the data directory and builds the request; `Ok(None)` when the
/// query does not parse (the error, with its column, is already printed).
fn open(t: &Target, limit: usize) -> Result<Option<Opened>> {
    let query = match Query::parse(&t.query) {
        Ok(q) => q,
        Err(e) => {
            eprintln!("{e}");
            return Ok(None);
        }
    };
    let from = parse_time("--from", &t.from)?;
    let to = parse_time("--to", &t.to)?;
    if !t.data.is_dir() {
        bail!(
            "{}: no data directory here (`tidewatch run --data {}` creates one)",
            t.data.display(),
            t.data.display()
        );
    }
    let index_dir = Store::index_dir(&t.data);
    if !index_dir.join("meta.json").is_file() {
        bail!(
            "{}: no post index here (`tidewatch run --data {}` writes one)",
            index_dir.display(),
            t.data.display()
        );
    }
    let index = PostIndex::open_read_only(&index_dir)?;
    let db_path = Store::db_path(&t.data);
    let feeds = if db_path.is_file() {
        Db::open(&db_path)?.feeds()?
    } else {
        Vec::new()
    };
    let feed = match &t.feed {
        None => None,
        Some(name) => match feeds.iter().find(|f| &f.name == name) {
            Some(f) => Some(f.id),
            None => {
                let known: Vec<&str> = feeds.iter().take(FEEDS_LISTED).map(|f| f.name.as_str()).collect();
                let more = feeds.len().saturating_sub(FEEDS_LISTED);
                bail!(
                    "--feed {name:?}: no feed of that name in {}; known feeds: {}{}",
                    t.data.display(),
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    },
                    if more > 0 {
                        format!(" and {more} more")
                    } else {
                        String::new()
                    }
                );
            }
        },
    };
    Ok(Some(Opened {
        index,
        req: SearchRequest {
            query,
            from,
            to,
            feed,
            limit,
        },
        names: feeds.into_iter().map(|f| (f.id, f.name)).collect(),
    }))
}

/// The time a `--from` or `--to` flag names.
fn parse_time(flag: &str, v: &Option<String>) -> Result<Option<Timestamp>> {
    v.as_deref()
        .map(|s| Timestamp::parse(s).with_context(|| format!("{flag} {s:?}: not a time")))
        .transpose()
}

/// A histogram bucket width: a positive number and a unit (`s`, `m`, `h`,
/// `d`, `w`), in milliseconds.
fn parse_bucket(s: &str) -> Result<i64> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let unit_ms = match unit {
        "s" => 1_000,
        "m" => Timestamp::MINUTE,
        "h" => Timestamp::HOUR,
        "d" => Timestamp::DAY,
        "w" => 7 * Timestamp::DAY,
        _ => bail!("--histogram {s:?}: expected a number and a unit (s, m, h, d, w), like 15m or 1h"),
    };
    let n: i64 = n
        .parse()
        .ok()
        .filter(|&n| n > 0)
        .with_context(|| format!("--histogram {s:?}: the width must be a positive whole number"))?;
    n.checked_mul(unit_ms)
        .with_context(|| format!("--histogram {s:?}: too wide"))
}

/// One output row: what may be shown of a post, with feed names.
#[derive(Serialize)]
struct Row<'a> {
    id: &'a str,
    created_at: Option<Timestamp>,
    platform: &'a str,
    lang: Option<&'a str>,
    sentiment: Option<&'a str>,
    feeds: Vec<&'a str>,
    url: Option<&'a str>,
    text: &'a str,
}

/// The CSV header of [`write_csv`].
const CSV_HEADER: &str = "id,created_at,platform,lang,sentiment,feeds,url,text";

fn row<'a>(hit: &'a Hit, names: &'a HashMap<u32, String>, unknown: &'a [String]) -> Row<'a> {
    Row {
        id: &hit.id,
        created_at: hit.created_at,
        platform: &hit.platform,
        lang: hit.lang.as_deref(),
        sentiment: (!hit.sentiment.is_empty()).then_some(hit.sentiment.as_str()),
        feeds: hit
            .feeds
            .iter()
            .zip(unknown)
            .map(|(id, fallback)| names.get(id).map_or(fallback.as_str(), String::as_str))
            .collect(),
        url: hit.url.as_deref(),
        text: &hit.text,
    }
}

/// The row of a hit from a cluster (its feeds already named).
fn view_row(hit: &ViewHit) -> Row<'_> {
    Row {
        id: &hit.id,
        created_at: hit.created_at,
        platform: &hit.platform,
        lang: hit.lang.as_deref(),
        sentiment: (!hit.sentiment.is_empty()).then_some(hit.sentiment.as_str()),
        feeds: hit.feeds.iter().map(String::as_str).collect(),
        url: hit.url.as_deref(),
        text: &hit.text,
    }
}

/// Names for feed ids the database does not know (`#7`), one per feed of
/// the hit, so that [`row`] can borrow them.
fn fallbacks(hit: &Hit) -> Vec<String> {
    hit.feeds.iter().map(|id| format!("#{id}")).collect()
}

fn write_json(w: &mut dyn Write, r: &Row<'_>) -> std::io::Result<()> {
    serde_json::to_writer(&mut *w, r)?;
    w.write_all(b"\n")
}

fn write_csv(w: &mut dyn Write, r: &Row<'_>) -> std::io::Result<()> {
    let time = r.created_at.map(|t| t.to_string()).unwrap_or_default();
    let fields = [
        r.id,
        &time,
        r.platform,
        r.lang.unwrap_or(""),
        r.sentiment.unwrap_or(""),
        &r.feeds.join(";"),
        r.url.unwrap_or(""),
        r.text,
    ];
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            w.write_all(b",")?;
        }
        w.write_all(csv_field(f).as_bytes())?;
    }
    w.write_all(b"\n")
}

/// A CSV field, quoted when it holds a comma, a quote or a line break.
fn csv_field(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\"")).into()
    } else {
        s.into()
    }
}

/// At most `n` characters of `s` on one line, `…` when cut.
fn shorten(s: &str, n: usize) -> String {
    let one_line: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= n {
        return one_line;
    }
    let mut out: String = one_line.chars().take(n.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// `2026-03-02 14:05:09`, or `-` for a post without a time.
fn table_time(t: Option<Timestamp>) -> String {
    t.map_or("-".to_string(), |t| {
        let s = t.to_string();
        s.get(..19).map_or(s.clone(), |d| d.replace('T', " "))
    })
}

pub fn search(args: SearchArgs) -> Result<ExitCode> {
    if let Some(url) = &args.nats {
        return search_cluster(&args, url);
    }
    let bucket_ms = args.histogram.as_deref().map(parse_bucket).transpose()?;
    let Some(opened) = open(&args.target, args.limit)? else {
        return Ok(ExitCode::FAILURE);
    };
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let written = match bucket_ms {
        Some(bucket_ms) => {
            let buckets = opened.index.histogram(&opened.req, bucket_ms)?;
            print_histogram(&mut out, &buckets, args.format)
        }
        None => {
            let total = opened.index.count(&opened.req)?;
            let hits = opened.index.search(&opened.req)?;
            let unknown: Vec<Vec<String>> = hits.iter().map(fallbacks).collect();
            let rows: Vec<Row<'_>> = hits
                .iter()
                .zip(&unknown)
                .map(|(hit, unknown)| row(hit, &opened.names, unknown))
                .collect();
            print_hits(&mut out, &rows, total, args.format)
        }
    };
    match written.and_then(|()| out.flush()) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) => quiet_on_closed_pipe(e),
    }
}

/// `search --nats`: the same request asked of every partition of the
/// cluster, merged (see `tidewatch_cluster::view`).
fn search_cluster(args: &SearchArgs, url: &str) -> Result<ExitCode> {
    let t = &args.target;
    // Parsed here too, so that a bad query is reported exactly as without --nats.
    if let Err(e) = Query::parse(&t.query) {
        eprintln!("{e}");
        return Ok(ExitCode::FAILURE);
    }
    let req = ViewSearch {
        query: t.query.clone(),
        from: parse_time("--from", &t.from)?.map(|t| t.0),
        to: parse_time("--to", &t.to)?.map(|t| t.0),
        feed: t.feed.clone(),
        limit: args.limit,
    };
    let mut cfg = ClusterConfig::new(url);
    cfg.stream = args.stream.clone();
    let got = view::search_blocking(&cfg, &req, Duration::from_millis(args.timeout_ms))
        .with_context(|| format!("searching the cluster at {url}"))?;
    if !got.missing.is_empty() {
        let list: Vec<String> = got.missing.iter().map(u32::to_string).collect();
        eprintln!(
            "partitions not answering: {} (of {}); their posts are not in these results",
            list.join(", "),
            got.answered.len() + got.missing.len()
        );
    }
    let rows: Vec<Row<'_>> = got.result.hits.iter().map(view_row).collect();
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    match print_hits(&mut out, &rows, got.result.count, args.format).and_then(|()| out.flush()) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) => quiet_on_closed_pipe(e),
    }
}

/// "N posts match; showing the newest M": on standard output above a
/// table, on standard error for json and csv (which stay pure data).
fn summary(total: u64, shown: usize) -> String {
    let posts = if total == 1 { "post matches" } else { "posts match" };
    if total == 0 {
        format!("0 {posts}")
    } else if shown as u64 >= total {
        format!("{} {posts}", thousands(total))
    } else {
        format!(
            "{} {posts}; showing the newest {}",
            thousands(total),
            thousands(shown as u64)
        )
    }
}

fn print_hits(out: &mut dyn Write, rows: &[Row<'_>], total: u64, format: SearchFormat) -> std::io::Result<()> {
    let line = summary(total, rows.len());
    match format {
        SearchFormat::Table => {
            writeln!(out, "{line}")?;
            if rows.is_empty() {
                return Ok(());
            }
            writeln!(
                out,
                "{:<19}  {:<9}  {:<5}  {:<8}  {:<w$}  text",
                "time",
                "platform",
                "lang",
                "sentim.",
                "feeds",
                w = TABLE_FEEDS_CHARS
            )?;
            for r in rows {
                writeln!(
                    out,
                    "{:<19}  {:<9}  {:<5}  {:<8}  {:<w$}  {}",
                    table_time(r.created_at),
                    shorten(r.platform, 9),
                    r.lang.unwrap_or("-"),
                    r.sentiment.unwrap_or("-"),
                    shorten(&r.feeds.join(","), TABLE_FEEDS_CHARS),
                    shorten(r.text, TABLE_TEXT_CHARS),
                    w = TABLE_FEEDS_CHARS
                )?;
            }
        }
        SearchFormat::Json | SearchFormat::Csv => {
            eprintln!("{line}");
            if format == SearchFormat::Csv {
                writeln!(out, "{CSV_HEADER}")?;
            }
            for r in rows {
                if format == SearchFormat::Json {
                    write_json(out, r)?;
                } else {
                    write_csv(out, r)?;
                }
            }
        }
    }
    Ok(())
}

fn print_histogram(out: &mut dyn Write, buckets: &[(Timestamp, u64)], format: SearchFormat) -> std::io::Result<()> {
    let total: u64 = buckets.iter().map(|(_, n)| n).sum();
    let line = format!(
        "{} dated posts match, in {} buckets",
        thousands(total),
        thousands(buckets.len() as u64)
    );
    match format {
        SearchFormat::Table => {
            writeln!(out, "{line}")?;
            let max = buckets.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1);
            for (start, n) in buckets {
                // Any non-empty bucket gets at least one mark.
                let len = (n * BAR_WIDTH).div_ceil(max) as usize;
                writeln!(out, "{:<19}  {:>10}  {}", table_time(Some(*start)), n, "#".repeat(len))?;
            }
        }
        SearchFormat::Json => {
            eprintln!("{line}");
            for (start, n) in buckets {
                writeln!(out, "{}", serde_json::json!({ "start": start, "count": n }))?;
            }
        }
        SearchFormat::Csv => {
            eprintln!("{line}");
            writeln!(out, "start,count")?;
            for (start, n) in buckets {
                writeln!(out, "{start},{n}")?;
            }
        }
    }
    Ok(())
}

pub fn export(args: ExportArgs) -> Result<ExitCode> {
    let Some(opened) = open(&args.target, usize::MAX)? else {
        return Ok(ExitCode::FAILURE);
    };
    let (sink, name): (Box<dyn Write>, String) = match &args.out {
        Some(path) => (
            Box::new(std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?),
            path.display().to_string(),
        ),
        None => (Box::new(std::io::stdout().lock()), "standard output".to_string()),
    };
    let mut out = BufWriter::with_capacity(1 << 16, sink);
    let result = export_to(&mut out, &opened, args.format).and_then(|n| {
        out.flush()?;
        Ok(n)
    });
    match result {
        Ok(n) => {
            eprintln!("{} posts exported to {name}", thousands(n));
            Ok(ExitCode::SUCCESS)
        }
        Err(ExportError::Write(e)) => match quiet_on_closed_pipe(e) {
            Ok(code) => Ok(code),
            Err(e) => Err(e.context(format!("exporting to {name}"))),
        },
        Err(ExportError::Store(e)) => Err(anyhow::Error::new(e).context("reading the index")),
    }
}

enum ExportError {
    Write(std::io::Error),
    Store(StoreError),
}

impl From<std::io::Error> for ExportError {
    fn from(e: std::io::Error) -> Self {
        ExportError::Write(e)
    }
}

/// Writes every hit as it comes; returns how many.
fn export_to(out: &mut dyn Write, o: &Opened, format: ExportFormat) -> Result<u64, ExportError> {
    if format == ExportFormat::Csv {
        writeln!(out, "{CSV_HEADER}")?;
    }
    // A write error stops the export; it is kept here because the export
    // callback can only return the store's error type.
    let mut write_error: Option<std::io::Error> = None;
    let result = o.index.export(&o.req, &mut |hit| {
        let unknown = fallbacks(hit);
        let r = row(hit, &o.names, &unknown);
        let written = match format {
            ExportFormat::Jsonl => write_json(out, &r),
            ExportFormat::Csv => write_csv(out, &r),
        };
        written.map_err(|e| {
            write_error = Some(e);
            StoreError::Invalid("export stopped: the output failed".into())
        })
    });
    match (result, write_error) {
        (_, Some(e)) => Err(ExportError::Write(e)),
        (Ok(n), None) => Ok(n),
        (Err(e), None) => Err(ExportError::Store(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_widths() {
        assert_eq!(parse_bucket("1h").unwrap(), 3_600_000);
        assert_eq!(parse_bucket("15m").unwrap(), 900_000);
        assert_eq!(parse_bucket("30s").unwrap(), 30_000);
        assert_eq!(parse_bucket("1d").unwrap(), 86_400_000);
        assert_eq!(parse_bucket("2w").unwrap(), 14 * 86_400_000);
        for bad in ["", "h", "0h", "1x", "-1h", "1.5h", "99999999999999999999d"] {
            assert!(parse_bucket(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn csv_fields_are_quoted_only_when_needed() {
        assert_eq!(csv_field("plain text"), "plain text");
        assert_eq!(csv_field("a, b"), "\"a, b\"");
        assert_eq!(csv_field("say \"hi\"\nthere"), "\"say \"\"hi\"\"\nthere\"");
    }

    #[test]
    fn table_text_is_one_line_and_cut() {
        assert_eq!(shorten("two\nlines  here", 20), "two lines here");
        assert_eq!(shorten("abcdefghij", 5), "abcd…");
        assert_eq!(shorten("東京東京東京", 4), "東京東…");
    }

    #[test]
    fn summary_lines() {
        assert_eq!(summary(0, 0), "0 posts match");
        assert_eq!(summary(1, 1), "1 post matches");
        assert_eq!(summary(1234, 20), "1,234 posts match; showing the newest 20");
        assert_eq!(summary(5, 5), "5 posts match");
    }
}
