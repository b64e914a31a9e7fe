//! Format adapters: one module per wire format, each turning one framed
//! record (a line, or a whole document) into zero or more events.
//!
//! Every adapter implements [`Decoder`]. The reader ([`crate::read`]) frames
//! the input according to [`Format::framing`] and calls [`Decoder::decode`]
//! once per record; an `Err` is reported as `file:line: reason` and the
//! stream goes on.

pub mod canonical;
pub mod csv;
pub mod detect;
pub mod jetstream;
pub mod mastodon;
pub mod reddit;
pub mod rss;
mod twitter_common;
pub mod twitter_v1;
pub mod twitter_v2;

use std::fmt;
use tidewatch_core::Event;

/// A wire format tidewatch can read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// tidewatch's own JSON Lines (see `tidewatch_core::post`).
    Canonical,
    /// Twitter/X API v1.1: REST arrays, single statuses, streaming lines.
    TwitterV1,
    /// Twitter/X API v2: response pages (`data` + `includes`) or flattened tweets.
    TwitterV2,
    /// Bluesky Jetstream JSON events.
    Jetstream,
    /// Mastodon statuses and API responses that nest them.
    Mastodon,
    /// Reddit submissions and comments, Pushshift dump layout.
    Reddit,
    /// RSS 2.0 and Atom feeds.
    Rss,
    /// CSV with a column mapping (see [`csv::CsvMapping`]).
    Csv,
}

/// How a format's input is cut into records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// One record a line (JSON Lines, CSV rows).
    Lines,
    /// JSON values one after another; each may span lines (pretty-printed
    /// API responses, arrays). A line-delimited file also frames this way.
    JsonValues,
    /// The whole input is one record (an XML feed).
    Document,
}

impl Format {
    pub const ALL: [Format; 8] = [
        Format::Canonical,
        Format::TwitterV1,
        Format::TwitterV2,
        Format::Jetstream,
        Format::Mastodon,
        Format::Reddit,
        Format::Rss,
        Format::Csv,
    ];

    /// The name used on the command line and in summaries.
    pub fn name(self) -> &'static str {
        match self {
            Format::Canonical => "canonical",
            Format::TwitterV1 => "twitter-v1",
            Format::TwitterV2 => "twitter-v2",
            Format::Jetstream => "jetstream",
            Format::Mastodon => "mastodon",
            Format::Reddit => "reddit",
            Format::Rss => "rss",
            Format::Csv => "csv",
        }
    }

    pub fn from_name(name: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.name() == name)
    }

    pub fn framing(self) -> Framing {
        match self {
            Format::Canonical | Format::Jetstream | Format::Reddit | Format::Csv => Framing::Lines,
            Format::TwitterV1 | Format::TwitterV2 | Format::Mastodon => Framing::JsonValues,
            Format::Rss => Framing::Document,
        }
    }

    /// A fresh decoder for this format. CSV uses the given mapping.
    pub fn decoder(self, csv_mapping: Option<csv::CsvMapping>) -> Box<dyn Decoder> {
        match self {
            Format::Canonical => Box::new(canonical::CanonicalDecoder),
            Format::TwitterV1 => Box::new(twitter_v1::TwitterV1Decoder::default()),
            Format::TwitterV2 => Box::new(twitter_v2::TwitterV2Decoder::default()),
            Format::Jetstream => Box::new(jetstream::JetstreamDecoder),
            Format::Mastodon => Box::new(mastodon::MastodonDecoder::default()),
            Format::Reddit => Box::new(reddit::RedditDecoder),
            Format::Rss => Box::new(rss::RssDecoder::default()),
            Format::Csv => Box::new(csv::CsvDecoder::new(csv_mapping.unwrap_or_default())),
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where a decoder puts what it found in one record.
#[derive(Debug, Default)]
pub struct DecodeOutput {
    pub events: Vec<Event>,
    /// Records that are valid but hold no post (a Jetstream `identity`
    /// event, a like, a user object, a duplicate of a post already emitted).
    pub ignored: u64,
}

/// Why one record could not be decoded. The reader adds file and line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("invalid JSON: {0}")]
    Json(String),
    #[error("field `{field}`: {reason}")]
    Field { field: String, reason: String },
    #[error("{0}")]
    Other(String),
}

impl DecodeError {
    pub fn field(field: impl Into<String>, reason: impl Into<String>) -> Self {
        DecodeError::Field {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub fn missing(field: impl Into<String>) -> Self {
        DecodeError::field(field, "missing")
    }
}

impl From<serde_json::Error> for DecodeError {
    fn from(e: serde_json::Error) -> Self {
        DecodeError::Json(e.to_string())
    }
}

/// Turns framed records of one format into events.
///
/// A decoder is stateful only where a format needs it: de-duplication of
/// posts that a source repeats (embedded retweets, Mastodon statuses seen
/// through several timelines) and a CSV header.
pub trait Decoder: Send {
    fn format(&self) -> Format;

    /// Decodes one record. On `Err`, nothing was pushed to `out`.
    fn decode(&mut self, record: &[u8], out: &mut DecodeOutput) -> Result<(), DecodeError>;

    /// Called at the end of each input: a decoder that buffers part of a
    /// record (a CSV field spanning lines) reports what it could not finish,
    /// so nothing is lost silently.
    fn finish(&mut self, _out: &mut DecodeOutput) -> Result<(), DecodeError> {
        Ok(())
    }
}
