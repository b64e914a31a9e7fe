//! `/feeds/{name}`: one feed. Its volume over a range of its data with
//! the spikes shaded, what drove each spike, the sentiment split, the
//! languages, top terms and domains of its posts, and a few
//! representative posts.
//!
//! Ranges are anchored at the feed's newest minute, not the wall clock:
//! the demo replays simulated days, and a run over an archive has no
//! "now". A span up to 12 hours is drawn per minute, longer ones per hour
//! (per day beyond 60 days). Sentiment comes from the minute counts, so it
//! covers every post in range; languages, terms and domains come from the
//! newest [`SAMPLE`] posts in range, read from the index (redacted text).
//!
//! Over a cluster (`tidewatch serve --nats`) the feed is looked up in the
//! cluster's feed set, its minutes come from every shard summed, and the
//! sampled and representative posts from every shard's index; partitions
//! that did not answer are named in a note under the title. The alerts
//! come from the data directory either way.

use super::layout::{shell, Section};
use super::svg::{self, Band, Part};
use super::{encode_segment, percent, short_time, Html, PageResult};
use crate::api::feeds::{bucket, cluster_feeds, cluster_minutes, feed_row, Interval, SeriesPoint};
use crate::api::search::{cluster_feed_posts, feed_posts, HitView};
use crate::problem::Problem;
use crate::state::{blocking, AppState, ClusterView};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use maud::{html, Markup};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use tidewatch_core::entities::{self, SpanKind};
use tidewatch_core::stopwords::is_stop_word;
use tidewatch_core::text::{tokenized, TokenKind};
use tidewatch_core::Timestamp;
use tidewatch_engine::alerts::{current_alerts, AlertRecord, NARRATIVE_GROWTH};
use tidewatch_store::db::MinuteCounts;

/// Posts read from the index for the language, term and domain splits.
pub const SAMPLE: usize = 300;
/// Representative posts shown.
const REPRESENTATIVE: usize = 5;
/// Terms and domains listed.
const TOP: usize = 12;

/// The ranges offered: (parameter, label, minutes; 0 for all the data).
const RANGES: &[(&str, &str, i64)] = &[
    ("6h", "6 hours", 360),
    ("24h", "24 hours", 1440),
    ("3d", "3 days", 3 * 1440),
    ("7d", "7 days", 7 * 1440),
    ("all", "all", 0),
];
const DEFAULT_RANGE: &str = "24h";

#[derive(Debug, Default, Deserialize)]
pub struct Params {
    pub range: Option<String>,
}

/// What the page shows, read on the blocking pool.
struct FeedData {
    /// `None`: over a cluster, a feed no longer in its feed set (its
    /// series stays in the shards).
    query: Option<String>,
    /// `[from, to)` in unix ms and the bucket width, if the feed has data.
    span: Option<(i64, i64, Interval)>,
    points: Vec<SeriesPoint>,
    /// The feed's alerts, newest onset first.
    alerts: Vec<AlertRecord>,
    /// The end of the feed's newest minute.
    newest: Option<Timestamp>,
    sample: Result<Vec<HitView>, Problem>,
    representative: Result<(Vec<HitView>, bool), Problem>,
    /// Over a cluster: the partitions that did not answer, ascending.
    missing: Vec<u32>,
}

/// The range a page shows, in unix minutes.
struct Span {
    /// `[start, end)`, whole buckets.
    start: i64,
    end: i64,
    interval: Interval,
    /// The feed's newest minute.
    last: i64,
}

impl Span {
    /// The range `range_minutes` long (0: all) that ends with the newest
    /// of `minutes` (ascending), widened to whole buckets; `None` without
    /// minutes.
    fn of(minutes: &[(i64, MinuteCounts)], range_minutes: i64) -> Option<Span> {
        let (Some(&(first, _)), Some(&(last, _))) = (minutes.first(), minutes.last()) else {
            return None;
        };
        let end = last + 1;
        let start = if range_minutes == 0 { first } else { end - range_minutes };
        let interval = match end - start {
            m if m <= 12 * 60 => Interval::Minute,
            m if m <= 60 * 1440 => Interval::Hour,
            _ => Interval::Day,
        };
        let width = interval.minutes();
        Some(Span {
            start: start.div_euclid(width) * width,
            end: (end + width - 1).div_euclid(width) * width,
            interval,
            last,
        })
    }

    /// The points of `minutes` in the range.
    fn points(&self, minutes: Vec<(i64, MinuteCounts)>) -> Result<Vec<SeriesPoint>, Problem> {
        let in_range: Vec<_> = minutes
            .into_iter()
            .filter(|(m, _)| *m >= self.start && *m < self.end)
            .collect();
        bucket(in_range, self.interval)
    }

    fn from(&self) -> Timestamp {
        Timestamp(self.start * Timestamp::MINUTE)
    }

    fn to(&self) -> Timestamp {
        Timestamp(self.end * Timestamp::MINUTE)
    }
}

/// The feed's alerts (no narrative growth: those belong to the narratives
/// page), newest onset first.
fn feed_alerts(s: &AppState, name: &str) -> Result<Vec<AlertRecord>, Problem> {
    let mut alerts: Vec<AlertRecord> = s
        .with_db(|db| current_alerts(db, None))?
        .into_iter()
        .filter(|a| a.feed_name == name && a.kind != NARRATIVE_GROWTH)
        .collect();
    alerts.sort_by_key(|a| std::cmp::Reverse(a.spike.onset));
    Ok(alerts)
}

/// `GET /feeds/{name}?range=`.
pub async fn page(State(state): State<Arc<AppState>>, Path(name): Path<String>, Query(p): Query<Params>) -> PageResult {
    let range = p.range.as_deref().unwrap_or(DEFAULT_RANGE).to_string();
    let Some(&(range_key, _, range_minutes)) = RANGES.iter().find(|r| r.0 == range) else {
        return Err(Problem::bad_request(format!(
            "range={range:?}: use one of {}",
            RANGES.iter().map(|r| r.0).collect::<Vec<_>>().join(", ")
        ))
        .into());
    };
    let data = match state.cluster.get() {
        Some(c) => cluster_read(&state, c, &name, range_minutes).await?,
        None => {
            let feed = name.clone();
            blocking(&state, move |s| read(s, &feed, range_minutes)).await?
        }
    };
    Ok(Html(
        StatusCode::OK,
        shell(&name, Section::Feeds, render(&name, range_key, &data)),
    ))
}

fn read(s: &AppState, name: &str, range_minutes: i64) -> Result<FeedData, Problem> {
    let row = feed_row(s, name)?;
    let minutes = s.with_db(|db| db.feed_minutes(row.id, i64::MIN, i64::MAX))?;
    let alerts = feed_alerts(s, name)?;
    let Some(span) = Span::of(&minutes, range_minutes) else {
        return Ok(no_data(Some(row.query), alerts, Vec::new()));
    };
    let points = span.points(minutes)?;
    let (from, to) = (span.from(), span.to());
    let sample = feed_posts(s, row.id, Some(from), Some(to), SAMPLE);
    // The newest spike's posts, else the newest posts.
    let representative = (|| {
        if let Some(a) = alerts.first() {
            let hits = feed_posts(s, row.id, Some(a.spike.onset), a.spike.end, REPRESENTATIVE)?;
            if !hits.is_empty() {
                return Ok((hits, true));
            }
        }
        Ok((feed_posts(s, row.id, None, None, REPRESENTATIVE)?, false))
    })();
    Ok(FeedData {
        query: Some(row.query),
        span: Some((from.0, to.0, span.interval)),
        points,
        alerts,
        newest: Some(Timestamp((span.last + 1) * Timestamp::MINUTE)),
        sample,
        representative,
        missing: Vec::new(),
    })
}

/// A feed without data (yet).
fn no_data(query: Option<String>, alerts: Vec<AlertRecord>, missing: Vec<u32>) -> FeedData {
    FeedData {
        query,
        span: None,
        points: Vec::new(),
        alerts,
        newest: None,
        sample: Ok(Vec::new()),
        representative: Ok((Vec::new(), false)),
        missing,
    }
}

/// [`read`] over a cluster. The feed is known when it is in the cluster's
/// feed set or some shard has counts for it (404 otherwise).
async fn cluster_read(
    state: &Arc<AppState>,
    c: &ClusterView,
    name: &str,
    range_minutes: i64,
) -> Result<FeedData, Problem> {
    let (defs, got) = tokio::join!(cluster_feeds(c), cluster_minutes(c, Some(name), None, None));
    let (defs, mut got) = (defs?, got?);
    let minutes = got.result.remove(name);
    let query = defs.into_iter().find(|d| d.name == name).map(|d| d.query);
    if query.is_none() && minutes.is_none() {
        return Err(Problem::not_found(format!("no feed named {name:?} in the cluster")));
    }
    let minutes: Vec<(i64, MinuteCounts)> = minutes.unwrap_or_default().into_iter().collect();
    let feed = name.to_string();
    let alerts = blocking(state, move |s| feed_alerts(s, &feed)).await?;
    let mut missing = got.missing;
    let Some(span) = Span::of(&minutes, range_minutes) else {
        return Ok(no_data(query, alerts, missing));
    };
    let points = span.points(minutes)?;
    let (from, to) = (span.from(), span.to());
    let sample = cluster_feed_posts(c, name, Some(from), Some(to), SAMPLE)
        .await
        .map(|(hits, m)| {
            missing.extend(m);
            hits
        });
    // The newest spike's posts, else the newest posts.
    let mut representative = Ok((Vec::new(), false));
    if let Some(a) = alerts.first() {
        representative = cluster_feed_posts(c, name, Some(a.spike.onset), a.spike.end, REPRESENTATIVE)
            .await
            .map(|(hits, m)| {
                missing.extend(m);
                (hits, true)
            });
    }
    if matches!(&representative, Ok((hits, _)) if hits.is_empty()) {
        representative = cluster_feed_posts(c, name, None, None, REPRESENTATIVE)
            .await
            .map(|(hits, m)| {
                missing.extend(m);
                (hits, false)
            });
    }
    missing.sort_unstable();
    missing.dedup();
    Ok(FeedData {
        query,
        span: Some((from.0, to.0, span.interval)),
        points,
        alerts,
        newest: Some(Timestamp((span.last + 1) * Timestamp::MINUTE)),
        sample,
        representative,
        missing,
    })
}

/// The note that the page lacks some partitions' data (nothing when it
/// lacks none).
fn missing_note(missing: &[u32]) -> Markup {
    html! {
        @if !missing.is_empty() {
            p id="missing-partitions" class="bad" role="alert" {
                "Partial data: partitions "
                (missing.iter().map(u32::to_string).collect::<Vec<_>>().join(", "))
                " did not answer in time; the counts and posts shown lack their posts."
            }
        }
    }
}

/// The feed's query line.
fn query_line(query: Option<&str>) -> Markup {
    html! {
        @match query {
            Some(q) => p { "Query: " code { (q) } },
            None => p class="muted" { "No longer in the cluster's feeds; its data stays." },
        }
    }
}

/// A spike in words (its band's title and its heading).
fn spike_label(a: &AlertRecord) -> String {
    let end = a.spike.end.map_or_else(|| "ongoing".to_string(), short_time);
    format!(
        "Spike {} to {}: peak {} posts/min (×{:.1} the expected), {} posts",
        short_time(a.spike.onset),
        end,
        a.spike.peak_count,
        a.spike.magnitude,
        a.spike.posts
    )
}

fn reasons(a: &AlertRecord) -> Markup {
    html! {
        @for d in &a.why {
            li {
                strong { (d.label()) } " — " (d.count) " posts, "
                (format!("{:.0}", d.share * 100.0)) "% of the spike vs "
                (format!("{:.1}", d.baseline_share * 100.0)) "% usually"
            }
        }
    }
}

/// Top keys by the number of sampled posts carrying them.
fn top(counts: HashMap<String, u64>) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = counts.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v.truncate(TOP);
    v
}

/// Languages, terms and domains of the sampled posts, each counted once
/// per post.
type Splits = (Vec<(String, u64)>, Vec<(String, u64)>, Vec<(String, u64)>);

fn splits(posts: &[HitView]) -> Splits {
    let mut langs: BTreeMap<String, u64> = BTreeMap::new();
    let mut terms: HashMap<String, u64> = HashMap::new();
    let mut domains: HashMap<String, u64> = HashMap::new();
    for p in posts {
        *langs
            .entry(p.lang.clone().unwrap_or_else(|| "unknown".into()))
            .or_default() += 1;
        let spans = entities::scan(&p.text);
        // Terms of the words only: a link's pieces (`https`, `org`) are no terms.
        let mut words = p.text.clone();
        for span in spans.iter().filter(|s| s.kind == SpanKind::Link) {
            // Same length, so later spans' ranges stay valid.
            if let Some(len) = words.get(span.range.clone()).map(str::len) {
                words.replace_range(span.range.clone(), &" ".repeat(len));
            }
        }
        let mut seen = HashSet::new();
        for (text, token) in tokenized(&words).iter() {
            let keep = match token.kind {
                TokenKind::Word => {
                    text.chars().count() >= 3 && !is_stop_word(text) && !text.chars().all(|c| c.is_ascii_digit())
                }
                TokenKind::Hashtag => true,
                // Mentions are people (redacted or not): never counted.
                TokenKind::Cjk | TokenKind::Cashtag | TokenKind::Mention => false,
            };
            if keep && seen.insert(text.to_string()) {
                *terms.entry(text.to_string()).or_default() += 1;
            }
        }
        let found = entities::extract(&p.text, &spans);
        for d in found.domains {
            *domains.entry(d).or_default() += 1;
        }
    }
    let mut langs: Vec<(String, u64)> = langs.into_iter().collect();
    langs.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    (langs, top(terms), top(domains))
}

fn counted_list(id: &str, title: &str, items: &[(String, u64)], total: u64, empty: &str) -> Markup {
    html! {
        section id=(id) aria-labelledby=(format!("h-{id}")) {
            h2 id=(format!("h-{id}")) { (title) }
            @if items.is_empty() { p class="muted" { (empty) } } @else {
                ol class="plain" {
                    @for (k, n) in items {
                        li { (k) " — " (n) " (" (percent(*n, total)) "%)" }
                    }
                }
            }
        }
    }
}

fn post_item(h: &HitView) -> Markup {
    html! {
        li {
            blockquote { (h.text) }
            span class="muted" {
                @if let Some(t) = h.created_at { time datetime=(t.to_rfc3339()) { (short_time(t)) } " · " }
                (h.lang.as_deref().unwrap_or("unknown language")) " · " (h.platform)
                @if !h.sentiment.is_empty() { " · " (h.sentiment) }
            }
        }
    }
}

fn render(name: &str, range_key: &str, d: &FeedData) -> Markup {
    let Some((from, to, interval)) = d.span else {
        return html! {
            h1 { "Feed " (name) }
            (missing_note(&d.missing))
            (query_line(d.query.as_deref()))
            p { "No post has matched this feed yet." }
        };
    };
    let step = interval.minutes() * Timestamp::MINUTE;
    let pts: Vec<(i64, i64)> = d.points.iter().map(|p| (p.t.0, p.posts)).collect();
    let newest_end = d.newest.map_or(to, |t| t.0);
    let bands: Vec<Band> = d
        .alerts
        .iter()
        .map(|a| Band {
            from_ms: a.spike.onset.0,
            to_ms: a.spike.end.map_or(newest_end, |t| t.0),
            label: spike_label(a),
        })
        .collect();
    let unit = match interval {
        Interval::Minute => "minute",
        Interval::Hour => "hour",
        Interval::Day => "day",
    };
    let (neg, neu, pos) = d.points.iter().fold((0u64, 0u64, 0u64), |acc, p| {
        (
            acc.0 + p.negative.max(0) as u64,
            acc.1 + p.neutral.max(0) as u64,
            acc.2 + p.positive.max(0) as u64,
        )
    });
    let total_sent = neg + neu + pos;
    let enc = encode_segment(name);
    html! {
        h1 { "Feed " (name) }
        (missing_note(&d.missing))
        (query_line(d.query.as_deref()))
        nav class="ranges" aria-label="Range" {
            "Range (to the newest minute of the feed's data): "
            @for (key, label, _) in RANGES {
                @if *key == range_key {
                    a href=(format!("/feeds/{enc}?range={key}")) aria-current="true" { (label) }
                } @else {
                    a href=(format!("/feeds/{enc}?range={key}")) { (label) }
                }
            }
        }
        section aria-labelledby="h-volume" {
            h2 id="h-volume" { "Volume (posts per " (unit) ")" }
            (svg::volume_chart("volume-chart", &format!("Posts per {unit} of feed {name}, spikes shaded"), from, to, step, &pts, &bands))
        }
        section aria-labelledby="h-reasons" {
            h2 id="h-reasons" { "Why it spiked" }
            @match d.alerts.first() {
                None => {
                    p class="muted" { "No spike detected in this feed." }
                    ul id="reasons" {}
                }
                Some(newest) => {
                    h3 { (spike_label(newest)) }
                    @if newest.spike.end.map_or(newest_end, |t| t.0) <= from || newest.spike.onset.0 >= to {
                        p class="muted" {
                            "This spike is outside the range shown: "
                            a href=(format!("/feeds/{enc}?range=all")) { "show all the data" } "."
                        }
                    }
                    ul id="reasons" { (reasons(newest)) }
                    @if newest.why.is_empty() { p class="muted" { "No over-represented term was found for this spike." } }
                    @if let Some(share) = newest.near_duplicate_share {
                        p id="near-duplicates" {
                            strong { (format!("{:.0}%", share * 100.0)) }
                            " of the spike's posts repeat an earlier post's text (near-duplicates and reposts)."
                        }
                    }
                    @if d.alerts.len() > 1 {
                        h3 { "Earlier spikes" }
                        @for a in d.alerts.iter().skip(1) {
                            h4 { (spike_label(a)) }
                            ul class="reasons-older" { (reasons(a)) }
                        }
                    }
                }
            }
        }
        div class="grid" {
            section id="sentiment" aria-labelledby="h-sentiment" {
                h2 id="h-sentiment" { "Sentiment" }
                (svg::split_bar("Sentiment of the posts in range", &[
                    Part { label: "negative", count: neg, color: "#b2182b" },
                    Part { label: "neutral", count: neu, color: "#6b6b6b" },
                    Part { label: "positive", count: pos, color: "#1a7f37" },
                ]))
                ul class="plain" {
                    li { "negative: " (neg) " (" (percent(neg, total_sent)) "%)" }
                    li { "neutral: " (neu) " (" (percent(neu, total_sent)) "%)" }
                    li { "positive: " (pos) " (" (percent(pos, total_sent)) "%)" }
                }
            }
            @match &d.sample {
                Ok(sample) => {
                    @let (langs, terms, domains) = splits(sample);
                    @let n = sample.len() as u64;
                    (counted_list("languages", "Languages", &langs, n, "No post in range."))
                    (counted_list("top-terms", "Top terms", &terms, n, "No post in range."))
                    (counted_list("top-domains", "Top domains", &domains, n, "No link in these posts."))
                }
                Err(e) => {
                    section id="languages" { h2 { "Languages" } p role="alert" { (e.detail) } }
                    section id="top-terms" { h2 { "Top terms" } p role="alert" { (e.detail) } }
                    section id="top-domains" { h2 { "Top domains" } p role="alert" { (e.detail) } }
                }
            }
        }
        @if let Ok(sample) = &d.sample {
            p class="muted" { "Languages, terms and domains: the newest " (sample.len()) " posts in range (at most " (SAMPLE) "); a post counts once per key." }
        }
        section id="representative-posts" aria-labelledby="h-posts" {
            h2 id="h-posts" { "Representative posts" }
            @match &d.representative {
                Ok((posts, in_spike)) => {
                    p class="muted" { (if *in_spike { "From the newest spike (redacted text)." } else { "The newest posts (redacted text)." }) }
                    @if posts.is_empty() { p { "No post stored." } } @else {
                        ol class="plain" { @for h in posts { (post_item(h)) } }
                    }
                }
                Err(e) => { p role="alert" { (e.detail) } }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(text: &str, lang: &str) -> HitView {
        HitView {
            id: "p".into(),
            created_at: None,
            platform: "x".into(),
            lang: Some(lang.into()),
            sentiment: String::new(),
            feeds: Vec::new(),
            text: text.into(),
            url: None,
        }
    }

    #[test]
    fn splits_count_each_key_once_per_post_and_skip_mentions_and_stop_words() {
        let posts = [
            hit("Gravel gravel and the #harbor https://news.example.org/a @user", "en"),
            hit("gravel trucks at http://www.news.example.org/b", "en"),
            hit("kies und steine", "de"),
        ];
        let (langs, terms, domains) = splits(&posts);
        assert_eq!(langs, vec![("en".to_string(), 2), ("de".to_string(), 1)]);
        assert_eq!(terms.first(), Some(&("gravel".to_string(), 2)));
        assert!(terms.iter().any(|(t, n)| t == "#harbor" && *n == 1));
        assert!(!terms.iter().any(|(t, _)| t == "the" || t.starts_with('@')));
        assert_eq!(domains, vec![("news.example.org".to_string(), 2)]);
    }
}
