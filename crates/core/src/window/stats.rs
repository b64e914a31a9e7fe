//! What a closed window says: counts, sentiment sums, languages and heavy
//! hitters, as mergeable data ([`WindowStats`]) and as a flat row for JSON
//! lines and CSV ([`WindowRow`]).
//!
//! Sentiment is summed in integer millionths of the VADER compound score, so
//! adding windows is exact and associative: an hour equals the sum of its
//! minutes whatever the order of addition (which matters once partial
//! aggregates from several workers are merged).

use super::sketch::HeavyHitters;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// Compound scores at or above this are positive, at or below its negation
/// negative (VADER's usual thresholds).
pub const POSITIVE_THRESHOLD: f64 = 0.05;

/// The length of a window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Resolution {
    Minute,
    Hour,
    Day,
}

impl Resolution {
    pub fn millis(self) -> i64 {
        match self {
            Resolution::Minute => Timestamp::MINUTE,
            Resolution::Hour => Timestamp::HOUR,
            Resolution::Day => Timestamp::DAY,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Resolution::Minute => "minute",
            Resolution::Hour => "hour",
            Resolution::Day => "day",
        }
    }
}

/// Aggregates of the posts of one feed in one window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WindowStats {
    /// Posts in the window.
    pub count: u64,
    /// Sum of compound scores, in millionths.
    pub compound_micros: i64,
    /// Posts with compound >= 0.05.
    pub positive: u64,
    /// Posts with compound <= -0.05.
    pub negative: u64,
    /// Posts per language (`und` when unknown).
    pub langs: HeavyHitters<String>,
    /// Posts per hashtag (a post counts once per distinct hashtag).
    pub hashtags: HeavyHitters<String>,
    /// Posts per term.
    pub terms: HeavyHitters<String>,
    /// Posts per link domain.
    pub domains: HeavyHitters<String>,
}

impl WindowStats {
    /// Empty stats with the given sketch capacities.
    pub fn new(sketch_capacity: usize, lang_capacity: usize) -> Self {
        WindowStats {
            count: 0,
            compound_micros: 0,
            positive: 0,
            negative: 0,
            langs: HeavyHitters::new(lang_capacity),
            hashtags: HeavyHitters::new(sketch_capacity),
            terms: HeavyHitters::new(sketch_capacity),
            domains: HeavyHitters::new(sketch_capacity),
        }
    }

    /// Mean compound score, 0 for an empty window.
    pub fn mean_compound(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.compound_micros as f64 / 1e6 / self.count as f64
        }
    }

    /// Share of posts that are positive, 0 for an empty window.
    pub fn share_positive(&self) -> f64 {
        share(self.positive, self.count)
    }

    /// Share of posts that are negative, 0 for an empty window.
    pub fn share_negative(&self) -> f64 {
        share(self.negative, self.count)
    }

    /// Adds `other` into `self`: counts and sums add, sketches merge.
    pub fn merge(&mut self, other: &WindowStats) {
        self.count = self.count.saturating_add(other.count);
        self.compound_micros = self.compound_micros.saturating_add(other.compound_micros);
        self.positive = self.positive.saturating_add(other.positive);
        self.negative = self.negative.saturating_add(other.negative);
        self.langs.merge(&other.langs);
        self.hashtags.merge(&other.hashtags);
        self.terms.merge(&other.terms);
        self.domains.merge(&other.domains);
    }
}

fn share(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// One feed's window, closed by the watermark and emitted exactly once.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClosedWindow {
    /// The feed's dense index.
    pub feed: u32,
    pub resolution: Resolution,
    /// Inclusive start; the window is `[start, start + resolution)`.
    pub start: Timestamp,
    pub stats: WindowStats,
}

impl ClosedWindow {
    /// Exclusive end of the window.
    pub fn end(&self) -> Timestamp {
        Timestamp(self.start.0.saturating_add(self.resolution.millis()))
    }

    /// The flat row, with the `k` top keys of each sketch.
    pub fn row(&self, k: usize) -> WindowRow {
        let s = &self.stats;
        WindowRow {
            feed: self.feed,
            resolution: self.resolution,
            start: self.start,
            count: s.count,
            mean_compound: s.mean_compound(),
            share_pos: s.share_positive(),
            share_neg: s.share_negative(),
            langs: ranked(&s.langs, k),
            top_hashtags: ranked(&s.hashtags, k),
            top_terms: ranked(&s.terms, k),
            top_domains: ranked(&s.domains, k),
        }
    }
}

fn ranked(h: &HeavyHitters<String>, k: usize) -> Vec<Ranked> {
    h.top(k).into_iter().map(|(key, count)| Ranked { key, count }).collect()
}

/// A key and its count (a lower bound; exact unless the sketch overflowed).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ranked {
    pub key: String,
    pub count: u64,
}

/// A closed window as one flat record: a JSON line or a CSV row.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WindowRow {
    pub feed: u32,
    pub resolution: Resolution,
    pub start: Timestamp,
    pub count: u64,
    pub mean_compound: f64,
    pub share_pos: f64,
    pub share_neg: f64,
    pub langs: Vec<Ranked>,
    pub top_hashtags: Vec<Ranked>,
    pub top_terms: Vec<Ranked>,
    pub top_domains: Vec<Ranked>,
}

impl WindowRow {
    /// The CSV header matching [`WindowRow::to_csv_row`] (no newline).
    pub const CSV_HEADER: &'static str = "feed,resolution,start,count,mean_compound,share_pos,\
share_neg,langs,top_hashtags,top_terms,top_domains";

    /// One CSV line (no newline). Lists are written `key:count|key:count`;
    /// fields are quoted when they contain a comma, quote or line break.
    /// Fractions have 4 decimals.
    pub fn to_csv_row(&self) -> String {
        let mut out = String::with_capacity(128);
        // Writing to a String cannot fail.
        let _ = write!(
            out,
            "{},{},{},{},{:.4},{:.4},{:.4}",
            self.feed,
            self.resolution.as_str(),
            self.start,
            self.count,
            self.mean_compound,
            self.share_pos,
            self.share_neg
        );
        for list in [&self.langs, &self.top_hashtags, &self.top_terms, &self.top_domains] {
            out.push(',');
            push_csv_field(&mut out, &join_ranked(list));
        }
        out
    }
}

fn join_ranked(list: &[Ranked]) -> String {
    let mut s = String::new();
    for (i, r) in list.iter().enumerate() {
        if i > 0 {
            s.push('|');
        }
        let _ = write!(s, "{}:{}", r.key, r.count);
    }
    s
}

/// Appends `field` to a CSV line, quoted when it holds a comma, a quote or
/// a line break.
pub fn push_csv_field(out: &mut String, field: &str) {
    if field.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&field.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(field);
    }
}
