//! `tidewatch topics`: the emerging topics a data directory has recorded,
//! each with the detection feed suggested for it (adopt one with
//! `tidewatch feeds add --from-topic ID`).

use anyhow::{Context, Result};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use tidewatch_core::Timestamp;
use tidewatch_engine::datadir::DEFAULT_DATA_DIR;
use tidewatch_engine::feeds::parse_feeds;
use tidewatch_engine::topics::{current_topics, TopicRecord};
use tidewatch_store::db::Db;
use tidewatch_store::Store;

#[derive(clap::Args)]
pub struct Args {
    /// The data directory.
    #[arg(long, default_value = DEFAULT_DATA_DIR)]
    pub data: PathBuf,
    /// Only topics still emerging at or after this time (RFC 3339).
    #[arg(long)]
    pub since: Option<String>,
    /// `table` or `json` (one object a line).
    #[arg(long, default_value = "table")]
    pub format: String,
}

/// Opens the database of a data directory, which must exist.
pub fn open_db(data: &Path) -> Result<Db> {
    let path = Store::db_path(data);
    if !path.exists() {
        anyhow::bail!(
            "{}: no tidewatch database here (run `tidewatch run --data {}` first)",
            path.display(),
            data.display()
        );
    }
    Db::open(&path).with_context(|| format!("opening {}", path.display()))
}

/// The recorded topic with this id, or the only one whose id starts with it.
pub fn find_topic(data: &Path, id: &str) -> Result<TopicRecord> {
    let db = open_db(data)?;
    let topics = current_topics(&db, None).with_context(|| format!("reading the topics in {}", data.display()))?;
    let id = id.trim().to_ascii_lowercase();
    if let Some(t) = topics.iter().find(|t| t.id == id) {
        return Ok(t.clone());
    }
    let mut matching = topics.into_iter().filter(|t| !id.is_empty() && t.id.starts_with(&id));
    match (matching.next(), matching.next()) {
        (Some(t), None) => Ok(t),
        (Some(_), Some(_)) => anyhow::bail!("topic id {id:?} is ambiguous: give more digits"),
        _ => anyhow::bail!(
            "no topic {id:?} in {} (see `tidewatch topics --data {}`)",
            data.display(),
            data.display()
        ),
    }
}

pub fn run(args: Args) -> Result<ExitCode> {
    let since = args
        .since
        .as_deref()
        .map(|s| Timestamp::parse(s).with_context(|| format!("--since {s:?}")))
        .transpose()?;
    let db = open_db(&args.data)?;
    let topics = current_topics(&db, since).with_context(|| format!("reading {}", db.path().display()))?;
    // Written through a handle, so that a closed pipe (`| head`) ends the
    // listing with an error instead of a panic.
    let mut out = std::io::stdout().lock();
    match args.format.as_str() {
        "json" => {
            for t in &topics {
                writeln!(out, "{}", serde_json::to_string(t)?)?;
            }
        }
        "table" => {
            writeln!(
                out,
                "{:<16} {:<20} {:<20} {:>8} {:>7}  {:<40}  suggested feed",
                "id", "first seen", "last seen", "score", "posts", "terms"
            )?;
            for t in &topics {
                let mut terms = t.terms_text(6);
                if terms.chars().count() > 40 {
                    terms = terms.chars().take(39).collect::<String>() + "…";
                }
                writeln!(
                    out,
                    "{:<16} {:<20} {:<20} {:>8.1} {:>7.0}  {:<40}  {}",
                    t.id,
                    minute_text(t.first_seen),
                    minute_text(t.last_seen),
                    t.score,
                    t.posts_since_first_seen,
                    terms,
                    t.suggested_query().unwrap_or("-")
                )?;
            }
        }
        other => anyhow::bail!("--format {other:?}: expected table or json"),
    }
    Ok(ExitCode::SUCCESS)
}

/// `2026-03-02T15:38Z`: a table column needs no seconds.
fn minute_text(t: Timestamp) -> String {
    let s = Timestamp(t.0.div_euclid(Timestamp::MINUTE) * Timestamp::MINUTE).to_string();
    match s.strip_suffix(":00Z").or_else(|| s.strip_suffix(":00.000Z")) {
        Some(head) => format!("{head}Z"),
        None => s,
    }
}

/// `tidewatch feeds add --from-topic ID`: adopts a topic's suggested feed.
#[derive(clap::Args)]
pub struct AddFromTopic {
    /// The topic's id (as `tidewatch topics` lists it; a unique prefix will do).
    #[arg(long)]
    pub from_topic: String,
    /// The feeds file to append to (created if missing). A running
    /// `tidewatch run --feeds FILE` re-reads it.
    #[arg(long)]
    pub feeds: PathBuf,
    /// The new feed's name (default: `topic-` and the query's first term).
    #[arg(long)]
    pub name: Option<String>,
    /// The data directory holding the topic.
    #[arg(long, default_value = DEFAULT_DATA_DIR)]
    pub data: PathBuf,
}

/// Appends `[[feed]] name = ..., query = ...` with the topic's suggested
/// query to the feeds file, after checking that the file with it is valid
/// and has no other feed of that name. The file is replaced in one rename,
/// so a run watching it never reads half of it.
pub fn add_from_topic(args: AddFromTopic) -> Result<ExitCode> {
    let topic = find_topic(&args.data, &args.from_topic)?;
    let Some(feed) = &topic.suggested else {
        anyhow::bail!(
            "topic {} has no suggested feed (its keys were no longer tracked when it was last seen)",
            topic.id
        );
    };
    let name = args.name.clone().unwrap_or_else(|| default_feed_name(&topic));
    let origin = args.feeds.display().to_string();
    let old = match std::fs::read_to_string(&args.feeds) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("reading {origin}")),
    };
    let existing = parse_feeds(&old, &origin)?;
    if existing.iter().any(|f| f.name == name) {
        anyhow::bail!("{origin} already has a feed named {name:?} (choose another with --name)");
    }
    let mut text = old.clone();
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    if !text.is_empty() {
        text.push('\n');
    }
    text.push_str(&format!(
        "# suggested for emerging topic {} ({}), est. precision {:.2}\n[[feed]]\nname = {}\nquery = {}\n",
        topic.id,
        topic.terms_text(3),
        feed.estimated_precision,
        toml_string(&name),
        toml_string(&feed.query)
    ));
    // The whole file as a run would read it: the query parses, the name is
    // not empty, nothing else broke.
    let defs = parse_feeds(&text, &origin)?;
    if defs.len() != existing.len() + 1 {
        anyhow::bail!("{origin}: the feed was not added as expected; the file is unchanged");
    }
    replace_file(&args.feeds, &text).with_context(|| format!("writing {origin}"))?;
    println!("added feed {name:?} to {origin}: {}", feed.query);
    println!(
        "  from topic {} ({}), est. precision {:.2}; a running `tidewatch run --feeds {origin}` picks it up",
        topic.id,
        topic.terms_text(3),
        feed.estimated_precision
    );
    Ok(ExitCode::SUCCESS)
}

/// `topic-quorvex` from a first query term `quorvex`, `#quorvex`,
/// `"quorvex virus"` or `domain:quorvex.example`.
fn default_feed_name(topic: &TopicRecord) -> String {
    let first = topic
        .suggested
        .as_ref()
        .and_then(|f| f.terms.first().cloned())
        .or_else(|| topic.terms.first().map(|t| t.text.clone()))
        .unwrap_or_default();
    let bare = first.strip_prefix("domain:").unwrap_or(&first);
    let mut slug = String::new();
    for c in bare.chars() {
        if c.is_alphanumeric() {
            slug.extend(c.to_lowercase());
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let slug = slug.trim_end_matches('-');
    if slug.is_empty() {
        format!("topic-{}", topic.id)
    } else {
        format!("topic-{slug}")
    }
}

/// A TOML basic string: quotes, backslashes and control characters escaped.
fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Writes `text` to a temporary file next to `path` (keeping `path`'s
/// permissions), then renames it over `path`.
fn replace_file(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    std::io::Write::write_all(&mut tmp, text.as_bytes())?;
    tmp.as_file().sync_all()?;
    if let Ok(meta) = std::fs::metadata(path) {
        std::fs::set_permissions(tmp.path(), meta.permissions())?;
    }
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tidewatch_core::emerging::SuggestedFeed;

    #[test]
    fn toml_strings_round_trip_through_the_feeds_parser() {
        let name = "n \"x\" \\ \u{7f}\u{1}";
        for query in [
            "quorvex",
            "\"quorvex virus\" OR #quorvex",
            "glimmerchain AND NOT \"glimmer token\"",
        ] {
            let text = format!(
                "[[feed]]\nname = {}\nquery = {}\n",
                toml_string(name),
                toml_string(query)
            );
            let defs = parse_feeds(&text, "t.toml").unwrap();
            assert_eq!(defs.len(), 1);
            assert_eq!((defs[0].name.as_str(), defs[0].query.as_str()), (name, query), "{text}");
        }
    }

    #[test]
    fn the_default_name_comes_from_the_first_query_term() {
        let topic = |first: &str| TopicRecord {
            id: "00000000000000ab".into(),
            first_seen: Timestamp(0),
            last_seen: Timestamp(0),
            score: 1.0,
            posts: 1.0,
            posts_since_first_seen: 1.0,
            terms: Vec::new(),
            suggested: Some(SuggestedFeed {
                query: first.into(),
                terms: vec![first.into()],
                excluded: Vec::new(),
                estimated_precision: 1.0,
            }),
            continues: None,
        };
        assert_eq!(default_feed_name(&topic("quorvex")), "topic-quorvex");
        assert_eq!(default_feed_name(&topic("#Quorvex")), "topic-quorvex");
        assert_eq!(default_feed_name(&topic("\"quorvex virus\"")), "topic-quorvex-virus");
        assert_eq!(
            default_feed_name(&topic("domain:quorvexinfo.example")),
            "topic-quorvexinfo-example"
        );
        assert_eq!(default_feed_name(&topic("\"\"")), "topic-00000000000000ab");
    }
}
