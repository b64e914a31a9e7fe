//! The `tidewatch.toml` configuration file: one file that says what a
//! run reads (files and live sources), which feeds it watches, its privacy
//! settings and where it keeps its data.
//!
//! ```toml
//! data = "tidewatch-data"          # the data directory
//! commit_ms = 5000                 # at most this long between commits
//! checkpoint_secs = 600            # between checkpoints of the detectors' state (0: none)
//!
//! [feeds]
//! path = "feeds.toml"              # or inline [[feed]] tables
//!
//! [privacy]
//! epoch_hours = 24                 # one pseudonym key per epoch
//! linkage_days = 7                 # keys are deleted this long after their epoch
//! k = 5                            # smallest group ever shown (at least 5)
//! retention_days = 30              # posts kept in the index (0: all)
//! public_accounts = "public.txt"   # handles whose mentions stay visible
//!
//! [server]
//! listen = "127.0.0.1:7878"        # push sources listen here unless they say otherwise
//!
//! [[source]]
//! kind = "jetstream"               # jetstream | mastodon | rss | file | push | nats
//! name = "bluesky"
//! ```
//!
//! Reading is in two steps. `toml` + serde read the file's shape (an
//! unknown key or a wrong type is reported with its line and column); each
//! `[[source]]` table is then read by its `kind`, and semantic checks
//! follow (empty endpoint lists, URLs that are not ws/http URLs, duplicate
//! source names, `k` below 5). Every error names the key, and for a source
//! its line and position: `line 14: [[source]] #2 (jetstream "bluesky"):
//! endpoints: "http://x" must start with ws:// or wss://`.
//!
//! Relative paths (data, feeds, lists, files) are taken from the
//! directory of the configuration file, so a config works from anywhere.

use crate::feeds::FeedDef;
use crate::sources::SourceSpec;
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use std::collections::HashSet;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tidewatch_core::coordination::MIN_K;
use tidewatch_ingest::format::Format;
use tidewatch_sources::jetstream::{JetstreamConfig, DEFAULT_ENDPOINTS};
use tidewatch_sources::mastodon::{MastodonConfig, Timeline};
use tidewatch_sources::push::PushConfig;
use tidewatch_sources::rss::{load_feed_list, parse_feed_list, RssConfig};

/// Where push sources listen when neither they nor `[server]` say.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7878";

/// A configuration read and checked.
#[derive(Clone, Debug)]
pub struct Config {
    /// The file it was read from.
    pub path: PathBuf,
    pub data: Option<PathBuf>,
    pub commit_ms: Option<u64>,
    /// Seconds between checkpoints of the detectors' state (see
    /// [`crate::state`]); 0 takes none.
    pub checkpoint_secs: Option<u64>,
    pub feeds: Feeds,
    pub privacy: Privacy,
    pub server: Server,
    /// `kind = "file"` sources, in order: read first, to their end.
    pub files: Vec<FileSource>,
    /// Live sources, in order.
    pub sources: Vec<SourceSpec>,
    /// `kind = "nats"` sources: checked, not run by `tidewatch run`.
    pub nats: Vec<NatsSource>,
}

/// Where the feeds come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Feeds {
    /// No feeds: posts are stored and counted, nothing is matched.
    None,
    /// A feeds file, re-read when it changes.
    File(PathBuf),
    /// `[[feed]]` tables in the config itself.
    Inline(Vec<FeedDef>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Privacy {
    pub epoch_hours: i64,
    pub linkage_days: i64,
    pub k: usize,
    pub retention_days: u32,
    pub public_accounts: Option<PathBuf>,
}

impl Default for Privacy {
    fn default() -> Self {
        Privacy {
            epoch_hours: 24,
            linkage_days: 7,
            k: MIN_K,
            retention_days: 30,
            public_accounts: None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Server {
    pub listen: SocketAddr,
}

/// Files read by a run before its live sources.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileSource {
    pub name: String,
    pub paths: Vec<PathBuf>,
    /// `None`: detected from each file's content.
    pub format: Option<Format>,
}

/// A NATS subscription: refused by `run`; a cluster's posts stream is read
/// by `tidewatch worker`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NatsSource {
    pub name: String,
    pub url: String,
    pub subject: String,
}

/// Why a configuration is refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The file's shape: the message carries line and column.
    #[error("{path}: {message}")]
    Syntax { path: String, message: String },
    #[error("{path}: {at}{key}: {reason}")]
    Invalid {
        path: String,
        /// Where: `line 14: [[source]] #2 (jetstream "bluesky"): `, or empty.
        at: String,
        key: String,
        reason: String,
    },
}

/// A duration written `250ms`, `10s`, `15m`, `1h`, or a whole number of
/// seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dur(pub Duration);

/// Parses `250ms`, `10s`, `15m`, `2h`, or `30` (seconds).
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let at = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(at);
    let n: u64 = digits.parse().ok()?;
    match unit.trim() {
        "ms" => Some(Duration::from_millis(n)),
        "" | "s" => Some(Duration::from_secs(n)),
        "m" => n.checked_mul(60).map(Duration::from_secs),
        "h" => n.checked_mul(3600).map(Duration::from_secs),
        _ => None,
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Dur, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Dur;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration such as \"250ms\", \"10s\", \"15m\", \"1h\" or a number of seconds")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Dur, E> {
                u64::try_from(v)
                    .map(|s| Dur(Duration::from_secs(s)))
                    .map_err(|_| E::custom("a duration cannot be negative"))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Dur, E> {
                Ok(Dur(Duration::from_secs(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Dur, E> {
                parse_duration(v)
                    .map(Dur)
                    .ok_or_else(|| E::custom(format!("{v:?} is not a duration (250ms, 10s, 15m, 1h)")))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    data: Option<PathBuf>,
    commit_ms: Option<u64>,
    checkpoint_secs: Option<u64>,
    feeds: Option<RawFeeds>,
    #[serde(default)]
    feed: Vec<FeedDef>,
    #[serde(default)]
    privacy: RawPrivacy,
    #[serde(default)]
    server: RawServer,
    #[serde(default)]
    source: Vec<toml::Spanned<toml::Table>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFeeds {
    path: PathBuf,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawPrivacy {
    epoch_hours: Option<i64>,
    linkage_days: Option<i64>,
    k: Option<i64>,
    retention_days: Option<u32>,
    public_accounts: Option<PathBuf>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawServer {
    listen: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JetstreamOpts {
    endpoints: Option<Vec<String>>,
    collections: Option<Vec<String>>,
    rewind: Option<Dur>,
    gap_tolerance: Option<Dur>,
    backoff_initial: Option<Dur>,
    backoff_max: Option<Dur>,
    connect_timeout: Option<Dur>,
    idle_timeout: Option<Dur>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MastodonOpts {
    instance: String,
    timeline: Option<String>,
    tag: Option<String>,
    local: Option<bool>,
    access_token: Option<String>,
    access_token_env: Option<String>,
    backoff_initial: Option<Dur>,
    backoff_max: Option<Dur>,
    idle_timeout: Option<Dur>,
    request_timeout: Option<Dur>,
    page_limit: Option<u32>,
    max_backfill_pages: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RssOpts {
    feeds: Option<Vec<String>>,
    feeds_file: Option<PathBuf>,
    interval: Option<Dur>,
    min_host_delay: Option<Dur>,
    request_timeout: Option<Dur>,
    outage_intervals: Option<u32>,
    max_body_bytes: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileOpts {
    path: Option<PathBuf>,
    paths: Option<Vec<PathBuf>>,
    format: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PushOpts {
    listen: Option<String>,
    format: Option<String>,
    max_body_bytes: Option<usize>,
    ack_timeout: Option<Dur>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NatsOpts {
    url: String,
    subject: String,
}

/// The source kinds a config may name.
pub const KINDS: [&str; 6] = ["jetstream", "mastodon", "rss", "file", "push", "nats"];

impl Config {
    /// Reads and checks a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Config::parse(&text, path)
    }

    /// Checks a configuration's text; `path` names it in errors and
    /// anchors its relative paths.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let shown = path.display().to_string();
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let resolve = |p: &Path| if p.is_relative() { base.join(p) } else { p.to_path_buf() };
        let invalid = |at: String, key: &str, reason: String| ConfigError::Invalid {
            path: shown.clone(),
            at,
            key: key.to_string(),
            reason,
        };
        let raw: Raw = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            path: shown.clone(),
            message: e.to_string().trim_end().to_string(),
        })?;

        let feeds = match (raw.feeds, raw.feed.is_empty()) {
            (Some(_), false) => {
                return Err(invalid(
                    String::new(),
                    "feeds",
                    "give either [feeds] path or inline [[feed]] tables, not both".into(),
                ))
            }
            (Some(f), true) => Feeds::File(resolve(&f.path)),
            (None, false) => Feeds::Inline(raw.feed),
            (None, true) => Feeds::None,
        };

        let p = raw.privacy;
        let default = Privacy::default();
        let k = p.k.unwrap_or(MIN_K as i64);
        if k < MIN_K as i64 {
            return Err(invalid(
                String::new(),
                "privacy.k",
                format!("must be at least {MIN_K} (got {k}): smaller groups are never shown"),
            ));
        }
        let epoch_hours = p.epoch_hours.unwrap_or(default.epoch_hours);
        if epoch_hours < 1 {
            return Err(invalid(
                String::new(),
                "privacy.epoch_hours",
                "must be at least 1".into(),
            ));
        }
        let linkage_days = p.linkage_days.unwrap_or(default.linkage_days);
        if linkage_days < 0 {
            return Err(invalid(
                String::new(),
                "privacy.linkage_days",
                "cannot be negative".into(),
            ));
        }
        let privacy = Privacy {
            epoch_hours,
            linkage_days,
            k: k as usize,
            retention_days: p.retention_days.unwrap_or(default.retention_days),
            public_accounts: p.public_accounts.as_deref().map(resolve),
        };
        let listen_text = raw.server.listen.unwrap_or_else(|| DEFAULT_LISTEN.to_string());
        let server = Server {
            listen: parse_addr(&listen_text).map_err(|r| invalid(String::new(), "server.listen", r))?,
        };

        let mut config = Config {
            path: path.to_path_buf(),
            data: raw.data.as_deref().map(resolve),
            commit_ms: raw.commit_ms,
            checkpoint_secs: raw.checkpoint_secs,
            feeds,
            privacy,
            server,
            files: Vec::new(),
            sources: Vec::new(),
            nats: Vec::new(),
        };
        let mut names = HashSet::new();
        for (i, spanned) in raw.source.into_iter().enumerate() {
            let line = text[..spanned.span().start.min(text.len())].matches('\n').count() + 1;
            let mut table = spanned.into_inner();
            let kind = match table.remove("kind") {
                Some(toml::Value::String(k)) => k,
                Some(other) => {
                    return Err(invalid(
                        format!("line {line}: [[source]] #{}: ", i + 1),
                        "kind",
                        format!("must be a string, not {}", other.type_str()),
                    ))
                }
                None => {
                    return Err(invalid(
                        format!("line {line}: [[source]] #{}: ", i + 1),
                        "kind",
                        format!("missing; one of {}", KINDS.join(", ")),
                    ))
                }
            };
            let name = match table.remove("name") {
                Some(toml::Value::String(n)) => n,
                Some(other) => {
                    return Err(invalid(
                        format!("line {line}: [[source]] #{}: ", i + 1),
                        "name",
                        format!("must be a string, not {}", other.type_str()),
                    ))
                }
                None => kind.clone(),
            };
            let at = format!("line {line}: [[source]] #{} ({kind} {name:?}): ", i + 1);
            let err = |key: &str, reason: String| invalid(at.clone(), key, reason);
            let read = |what: &'static str| {
                let shown = &shown;
                move |e: toml::de::Error| ConfigError::Invalid {
                    path: shown.clone(),
                    at: format!("line {line}: [[source]] #{} ({what}): ", i + 1),
                    key: "options".into(),
                    reason: e.message().to_string(),
                }
            };
            if name.trim().is_empty() {
                return Err(err("name", "must not be empty".into()));
            }
            if !names.insert(name.clone()) {
                return Err(err(
                    "name",
                    format!("{name:?} is used by an earlier source; give each source its own `name`"),
                ));
            }
            let value = toml::Value::Table(table);
            match kind.as_str() {
                "jetstream" => {
                    let o: JetstreamOpts = value.try_into().map_err(read("jetstream"))?;
                    let endpoints = o
                        .endpoints
                        .unwrap_or_else(|| DEFAULT_ENDPOINTS.iter().map(|e| e.to_string()).collect());
                    if endpoints.is_empty() {
                        return Err(err(
                            "endpoints",
                            "is empty: give at least one ws:// or wss:// URL".into(),
                        ));
                    }
                    for e in &endpoints {
                        check_url(e, &["ws", "wss"]).map_err(|r| err("endpoints", r))?;
                    }
                    let mut c = JetstreamConfig::new(name, endpoints);
                    if let Some(cols) = o.collections {
                        if cols.iter().any(|c| c.trim().is_empty()) {
                            return Err(err("collections", "holds an empty name".into()));
                        }
                        c.wanted_collections = cols;
                    }
                    if let Some(Dur(d)) = o.rewind {
                        c.rewind_us = d.as_micros().min(u64::MAX as u128) as u64;
                    }
                    if let Some(Dur(d)) = o.gap_tolerance {
                        c.gap_tolerance_us = d.as_micros().min(u64::MAX as u128) as u64;
                    }
                    set(&mut c.backoff_initial, o.backoff_initial);
                    set(&mut c.backoff_max, o.backoff_max);
                    set(&mut c.connect_timeout, o.connect_timeout);
                    set(&mut c.idle_timeout, o.idle_timeout);
                    positive(&[
                        ("backoff_initial", c.backoff_initial),
                        ("connect_timeout", c.connect_timeout),
                        ("idle_timeout", c.idle_timeout),
                    ])
                    .map_err(|k| err(k, "must be more than 0".into()))?;
                    config.sources.push(SourceSpec::Jetstream(c));
                }
                "mastodon" => {
                    let o: MastodonOpts = value.try_into().map_err(read("mastodon"))?;
                    check_url(&o.instance, &["http", "https"]).map_err(|r| err("instance", r))?;
                    let local = o.local.unwrap_or(false);
                    let timeline = match (o.timeline.as_deref().unwrap_or("public"), o.tag) {
                        ("public", None) => Timeline::Public { local },
                        ("local", None) => Timeline::Public { local: true },
                        ("hashtag", Some(tag)) => {
                            let tag = tag.trim().trim_start_matches('#').to_string();
                            if tag.is_empty() {
                                return Err(err("tag", "is empty".into()));
                            }
                            Timeline::Hashtag { tag, local }
                        }
                        ("hashtag", None) => return Err(err("tag", "missing: a hashtag timeline needs `tag`".into())),
                        ("public" | "local", Some(_)) => {
                            return Err(err("tag", "only a `timeline = \"hashtag\"` source takes a tag".into()))
                        }
                        (other, _) => {
                            return Err(err(
                                "timeline",
                                format!("{other:?} is not one of \"public\", \"local\", \"hashtag\""),
                            ))
                        }
                    };
                    let mut c = MastodonConfig::new(name, o.instance, timeline);
                    c.access_token =
                        match (o.access_token, o.access_token_env) {
                            (Some(_), Some(_)) => {
                                return Err(err(
                                    "access_token",
                                    "give `access_token` or `access_token_env`, not both".into(),
                                ))
                            }
                            (Some(t), None) => Some(t),
                            (None, Some(var)) => Some(std::env::var(&var).map_err(|_| {
                                err("access_token_env", format!("environment variable {var} is not set"))
                            })?),
                            (None, None) => None,
                        };
                    set(&mut c.backoff_initial, o.backoff_initial);
                    set(&mut c.backoff_max, o.backoff_max);
                    set(&mut c.idle_timeout, o.idle_timeout);
                    set(&mut c.request_timeout, o.request_timeout);
                    if let Some(n) = o.page_limit {
                        if !(1..=40).contains(&n) {
                            return Err(err("page_limit", "must be between 1 and 40".into()));
                        }
                        c.page_limit = n;
                    }
                    if let Some(n) = o.max_backfill_pages {
                        c.max_backfill_pages = n;
                    }
                    positive(&[
                        ("backoff_initial", c.backoff_initial),
                        ("idle_timeout", c.idle_timeout),
                        ("request_timeout", c.request_timeout),
                    ])
                    .map_err(|k| err(k, "must be more than 0".into()))?;
                    config.sources.push(SourceSpec::Mastodon(c));
                }
                "rss" => {
                    let o: RssOpts = value.try_into().map_err(read("rss"))?;
                    let mut feeds = Vec::new();
                    for (j, url) in o.feeds.unwrap_or_default().iter().enumerate() {
                        let key = format!("feeds[{j}]");
                        let mut parsed = parse_feed_list(url).map_err(|e| err(&key, e.to_string()))?;
                        if parsed.len() != 1 {
                            return Err(err(&key, format!("{url:?} is not one feed URL")));
                        }
                        feeds.append(&mut parsed);
                    }
                    if let Some(file) = &o.feeds_file {
                        let file = resolve(file);
                        let mut listed = load_feed_list(&file).map_err(|e| err("feeds_file", e.to_string()))?;
                        feeds.append(&mut listed);
                    }
                    if feeds.is_empty() {
                        return Err(err("feeds", "no feed: give `feeds` URLs or a `feeds_file`".into()));
                    }
                    let mut c = RssConfig::new(name, feeds);
                    set(&mut c.default_interval, o.interval);
                    set(&mut c.min_host_delay, o.min_host_delay);
                    set(&mut c.request_timeout, o.request_timeout);
                    if let Some(n) = o.outage_intervals {
                        c.outage_intervals = n.max(1);
                    }
                    if let Some(n) = o.max_body_bytes {
                        c.max_body_bytes = n;
                    }
                    positive(&[("interval", c.default_interval), ("request_timeout", c.request_timeout)])
                        .map_err(|k| err(k, "must be more than 0".into()))?;
                    config.sources.push(SourceSpec::Rss(c));
                }
                "file" => {
                    let o: FileOpts = value.try_into().map_err(read("file"))?;
                    let mut paths: Vec<PathBuf> = o.path.into_iter().chain(o.paths.unwrap_or_default()).collect();
                    if paths.is_empty() {
                        return Err(err("path", "missing: give `path` or `paths`".into()));
                    }
                    for p in &mut paths {
                        if p.as_os_str() != "-" {
                            *p = resolve(p);
                        }
                    }
                    let format = parse_format(o.format.as_deref()).map_err(|r| err("format", r))?;
                    if let Some(earlier) = config.files.iter().find(|f| f.format != format) {
                        return Err(err(
                            "format",
                            format!(
                                "file sources must agree on one format (source {:?} reads {}); use \"auto\"",
                                earlier.name,
                                earlier.format.map_or("auto", Format::name)
                            ),
                        ));
                    }
                    config.files.push(FileSource { name, paths, format });
                }
                "push" => {
                    let o: PushOpts = value.try_into().map_err(read("push"))?;
                    let listen = match o.listen {
                        Some(l) => parse_addr(&l).map_err(|r| err("listen", r))?,
                        None => config.server.listen,
                    };
                    let mut c = PushConfig::new(name, listen);
                    c.format = parse_format(o.format.as_deref()).map_err(|r| err("format", r))?;
                    if c.format == Some(Format::Csv) {
                        return Err(err("format", "CSV cannot be pushed line by line".into()));
                    }
                    if let Some(n) = o.max_body_bytes {
                        c.max_body_bytes = n;
                    }
                    set(&mut c.ack_timeout, o.ack_timeout);
                    if config
                        .sources
                        .iter()
                        .any(|s| matches!(s, SourceSpec::Push(p) if p.listen == listen && listen.port() != 0))
                    {
                        return Err(err(
                            "listen",
                            format!("{listen} is already used by another push source"),
                        ));
                    }
                    config.sources.push(SourceSpec::Push(c));
                }
                "nats" => {
                    let o: NatsOpts = value.try_into().map_err(read("nats"))?;
                    if !(o.url.starts_with("nats://") || o.url.starts_with("tls://")) {
                        return Err(err("url", format!("{:?} must start with nats:// or tls://", o.url)));
                    }
                    check_url(&o.url, &["nats", "tls"]).map_err(|r| err("url", r))?;
                    if o.subject.trim().is_empty() {
                        return Err(err("subject", "is empty".into()));
                    }
                    config.nats.push(NatsSource {
                        name,
                        url: o.url,
                        subject: o.subject,
                    });
                }
                other => {
                    return Err(err(
                        "kind",
                        format!("unknown kind {other:?}; one of {}", KINDS.join(", ")),
                    ))
                }
            }
        }
        Ok(config)
    }

    /// Every file of the `file` sources, in order.
    pub fn file_paths(&self) -> Vec<PathBuf> {
        self.files.iter().flat_map(|f| f.paths.iter().cloned()).collect()
    }

    /// The format of the file sources (`None`: detected).
    pub fn file_format(&self) -> Option<Format> {
        self.files.first().and_then(|f| f.format)
    }
}

fn set(target: &mut Duration, value: Option<Dur>) {
    if let Some(Dur(d)) = value {
        *target = d;
    }
}

fn positive(values: &[(&'static str, Duration)]) -> Result<(), &'static str> {
    match values.iter().find(|(_, d)| d.is_zero()) {
        Some((key, _)) => Err(key),
        None => Ok(()),
    }
}

fn parse_format(name: Option<&str>) -> Result<Option<Format>, String> {
    match name {
        None | Some("auto") => Ok(None),
        Some(n) => Format::from_name(n).map(Some).ok_or_else(|| {
            let names: Vec<&str> = Format::ALL.iter().map(|f| f.name()).collect();
            format!("unknown format {n:?}; auto or one of {}", names.join(", "))
        }),
    }
}

fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    s.parse()
        .map_err(|_| format!("{s:?} is not an address with a port, such as \"127.0.0.1:7878\""))
}

/// Checks `scheme://host[:port][/path]` with one of `schemes`.
fn check_url(url: &str, schemes: &[&str]) -> Result<(), String> {
    let wanted = || {
        schemes
            .iter()
            .map(|s| format!("{s}://"))
            .collect::<Vec<_>>()
            .join(" or ")
    };
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(format!("{url:?} is not a URL: it must start with {}", wanted()));
    };
    if !schemes.contains(&scheme) {
        return Err(format!("{url:?} must start with {}", wanted()));
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = match host.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || host.starts_with('[') => (h, Some(p)),
        _ => (host, None),
    };
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(format!("{url:?} has no host"));
    }
    if let Some(p) = port {
        if p.parse::<u16>().is_err() {
            return Err(format!("{url:?} has a bad port {p:?}"));
        }
    }
    if url.contains(char::is_whitespace) {
        return Err(format!("{url:?} contains a space"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, String> {
        Config::parse(text, Path::new("/etc/tw/tidewatch.toml")).map_err(|e| e.to_string())
    }

    #[test]
    fn a_full_config_maps_onto_the_clients() {
        let c = parse(
            r##"
data = "data"
commit_ms = 1000
checkpoint_secs = 120
[[feed]]
name = "tides"
query = "tide"
[privacy]
k = 7
retention_days = 0
public_accounts = "/srv/public.txt"
[server]
listen = "127.0.0.1:9000"

[[source]]
kind = "file"
paths = ["a.jsonl", "/abs/b.jsonl"]

[[source]]
kind = "jetstream"
name = "bsky"
endpoints = ["ws://127.0.0.1:6008/subscribe"]
rewind = "2s"
backoff_initial = "50ms"
idle_timeout = 30

[[source]]
kind = "mastodon"
name = "tides-tag"
instance = "https://social.example"
timeline = "hashtag"
tag = "#tides"

[[source]]
kind = "rss"
feeds = ["https://news.example/feed.xml"]
interval = "5m"

[[source]]
kind = "push"
"##,
        )
        .unwrap();
        assert_eq!(c.data, Some(PathBuf::from("/etc/tw/data")));
        assert_eq!((c.commit_ms, c.checkpoint_secs), (Some(1000), Some(120)));
        assert_eq!(c.privacy.k, 7);
        assert_eq!(c.privacy.retention_days, 0);
        assert!(matches!(&c.feeds, Feeds::Inline(f) if f.len() == 1));
        assert_eq!(
            c.file_paths(),
            vec![PathBuf::from("/etc/tw/a.jsonl"), PathBuf::from("/abs/b.jsonl")]
        );
        assert_eq!(c.sources.len(), 4);
        let SourceSpec::Jetstream(j) = &c.sources[0] else {
            panic!()
        };
        assert_eq!(j.rewind_us, 2_000_000);
        assert_eq!(j.backoff_initial, Duration::from_millis(50));
        assert_eq!(j.idle_timeout, Duration::from_secs(30));
        let SourceSpec::Mastodon(m) = &c.sources[1] else {
            panic!()
        };
        assert_eq!(
            m.timeline,
            Timeline::Hashtag {
                tag: "tides".into(),
                local: false
            }
        );
        let SourceSpec::Rss(r) = &c.sources[2] else { panic!() };
        assert_eq!((r.name.as_str(), r.default_interval), ("rss", Duration::from_secs(300)));
        let SourceSpec::Push(p) = &c.sources[3] else { panic!() };
        assert_eq!(p.listen, "127.0.0.1:9000".parse().unwrap());
    }

    #[test]
    fn errors_name_the_key_and_the_line() {
        let e = parse("[[source]]\nkind = \"jetstream\"\nendpoints = []\n").unwrap_err();
        assert_eq!(
            e,
            "/etc/tw/tidewatch.toml: line 1: [[source]] #1 (jetstream \"jetstream\"): endpoints: is empty: give at least one ws:// or wss:// URL"
        );
        let e = parse("[[source]]\nkind = \"jetstream\"\n\n[[source]]\nkind = \"jetstream\"\nendpoints = [\"https://x/subscribe\"]\n").unwrap_err();
        assert!(
            e.contains("line 4: [[source]] #2 (jetstream \"jetstream\"): name: \"jetstream\" is used"),
            "{e}"
        );
        let e = parse("[[source]]\nkind = \"jetstream\"\nname = \"b\"\nendpoints = [\"https://x/subscribe\"]\n")
            .unwrap_err();
        assert!(
            e.ends_with("endpoints: \"https://x/subscribe\" must start with ws:// or wss://"),
            "{e}"
        );
        let e = parse("[[source]]\nkind = \"kafka\"\n").unwrap_err();
        assert!(
            e.contains("kind: unknown kind \"kafka\"; one of jetstream, mastodon"),
            "{e}"
        );
        let e = parse("[privacy]\nk = 3\n").unwrap_err();
        assert!(e.contains("privacy.k: must be at least 5 (got 3)"), "{e}");
        let e = parse("[[source]]\nkind = \"jetstream\"\nendpont = []\n").unwrap_err();
        assert!(
            e.contains("(jetstream): options: unknown field `endpont`, expected one of"),
            "{e}"
        );
        let e = parse("dta = \"x\"\n").unwrap_err();
        assert!(
            e.contains("line 1, column 1") && e.contains("unknown field `dta`"),
            "{e}"
        );
        let e = parse("[[source]]\nkind = \"mastodon\"\ninstance = \"social.example\"\n").unwrap_err();
        assert!(e.contains("instance: \"social.example\" is not a URL"), "{e}");
        let e = parse("[[source]]\nkind = \"rss\"\n").unwrap_err();
        assert!(e.contains("feeds: no feed"), "{e}");
        let e = parse("[[source]]\nkind = \"jetstream\"\nrewind = \"soon\"\n").unwrap_err();
        assert!(e.contains("\"soon\" is not a duration"), "{e}");
        let e = parse("[[source]]\nkind = \"nats\"\nurl = \"http://x\"\nsubject = \"posts\"\n").unwrap_err();
        assert!(e.contains("url: \"http://x\" must start with nats://"), "{e}");
        assert_eq!(
            parse("[[source]]\nkind = \"nats\"\nurl = \"nats://127.0.0.1:4222\"\nsubject = \"posts\"\n")
                .unwrap()
                .nats
                .len(),
            1
        );
    }

    #[test]
    fn durations_read_with_units() {
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("90"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("15m"), Some(Duration::from_secs(900)));
        assert_eq!(parse_duration("2h"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_duration("2d"), None);
        assert_eq!(parse_duration(""), None);
    }
}
