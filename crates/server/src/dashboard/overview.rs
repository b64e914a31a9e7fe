//! `/`: the overview. How fast posts arrive and how far behind the run
//! is, each source's health and gaps (from `status.json`, as
//! `/api/v1/metrics` reads it), the alerts newest first (the live script
//! prepends new ones from the event stream), and the emerging topics.

use super::layout::{shell_with_script, Section};
use super::{duration, encode_segment, short_time, Html, PageResult};
use crate::api::system::{metrics_now, Metrics, RunState};
use crate::state::{blocking, AppState};
use axum::extract::State;
use axum::http::StatusCode;
use maud::{html, Markup};
use std::sync::Arc;
use tidewatch_engine::alerts::{current_alerts, AlertRecord, NARRATIVE_GROWTH};
use tidewatch_engine::topics::{current_topics, TopicRecord};

/// Alerts listed on first load (newer ones arrive live).
const ALERTS_SHOWN: usize = 50;
/// Emerging topics listed.
const TOPICS_SHOWN: usize = 15;

/// One alert as a list item: the shape the live script builds too
/// (`layout::LIVE_JS`); the browser test relies on it.
pub fn alert_item(a: &AlertRecord) -> Markup {
    let why: Vec<String> = a.why.iter().take(3).map(|d| d.label()).collect();
    html! {
        li class="alert" data-alert-id=(a.id) {
            @if a.kind == NARRATIVE_GROWTH {
                // A narrative's burst: its page is the narratives list.
                a href="/narratives" { "narrative" @if !a.feed_name.is_empty() { " in " (a.feed_name) } }
            } @else {
                a href=(format!("/feeds/{}", encode_segment(&a.feed_name))) { (a.feed_name) }
            }
            " " span class=(format!("badge {}", a.kind)) { (a.kind) }
            " " time datetime=(a.spike.onset.to_rfc3339()) { (short_time(a.spike.onset)) }
            " " span class="magnitude" { "×" (format!("{:.1}", a.spike.magnitude)) }
            @if !why.is_empty() {
                " " span class="why" { (why.join(", ")) }
            }
        }
    }
}

fn run_state(m: &Metrics) -> (&'static str, &'static str) {
    match m.run {
        RunState::Running => ("running", "ok"),
        RunState::Stale => ("stale: the run has not reported for a while", "bad"),
        RunState::Ended => ("ended", "muted"),
        RunState::Absent => ("no run has reported to this data directory", "muted"),
    }
}

fn topic_label(t: &TopicRecord) -> String {
    let terms: Vec<&str> = t.terms.iter().take(4).map(|k| k.text.as_str()).collect();
    terms.join(" · ")
}

/// `GET /`.
pub async fn page(State(state): State<Arc<AppState>>) -> PageResult {
    let (metrics, mut alerts, mut topics) = blocking(&state, |s| {
        let metrics = metrics_now(s)?;
        let alerts = s.with_db(|db| current_alerts(db, None))?;
        let topics = s.with_db(|db| current_topics(db, None))?;
        Ok((metrics, alerts, topics))
    })
    .await?;
    alerts.sort_by(|a, b| {
        b.spike
            .detected_at
            .cmp(&a.spike.detected_at)
            .then_with(|| a.id.cmp(&b.id))
    });
    alerts.truncate(ALERTS_SHOWN);
    topics.sort_by(|a, b| b.last_seen.cmp(&a.last_seen).then_with(|| b.score.total_cmp(&a.score)));
    topics.truncate(TOPICS_SHOWN);
    let (run_text, run_class) = run_state(&metrics);
    let rate = metrics
        .posts_per_s
        .map_or_else(|| "—".to_string(), |r| format!("{r:.0} posts/s"));
    let lag = metrics.lag_ms.map_or_else(|| "—".to_string(), duration);
    let body = html! {
        h1 { "Overview" }
        div class="grid" {
            section class="card" aria-labelledby="h-ingest" {
                h2 id="h-ingest" { "Ingest rate" }
                p class="stat" id="ingest-rate" { (rate) }
                p class="muted" { (metrics.posts) " posts, " (metrics.matched) " matched a feed, " (metrics.rejected) " rejected" }
            }
            section class="card" aria-labelledby="h-lag" {
                h2 id="h-lag" { "Lag" }
                p class="stat" id="lag" { (lag) }
                p class=(run_class) { "Run: " (run_text) }
            }
        }
        section aria-labelledby="h-sources" {
            h2 id="h-sources" { "Sources" }
            @if metrics.sources.is_empty() {
                p class="muted" { "No live source has reported (a run over files, or no run yet)." }
            } @else {
                table {
                    caption class="muted" { "Per source, from the run's status" }
                    thead { tr {
                        th scope="col" { "Source" } th scope="col" { "Kind" } th scope="col" { "Connected" }
                        th scope="col" class="num" { "Events/s" } th scope="col" class="num" { "Posts" }
                        th scope="col" class="num" { "Lag" } th scope="col" class="num" { "Errors" }
                        th scope="col" { "Gaps" }
                    } }
                    tbody {
                        @for src in &metrics.sources {
                            tr {
                                td { (src.name) } td { (src.kind) }
                                td class=(if src.connected { "ok" } else { "bad" }) { (if src.connected { "yes" } else { "no" }) }
                                td class="num" { (format!("{:.0}", src.events_per_s)) }
                                td class="num" { (src.posts) }
                                td class="num" { (src.lag_ms.map_or_else(|| "—".to_string(), duration)) }
                                td class="num" { (src.errors) }
                                td {
                                    @if src.gaps.is_empty() { "none" } @else {
                                        ul class="plain" {
                                            @for g in &src.gaps {
                                                li { (short_time(tidewatch_core::Timestamp(g.detected_at))) ": " (g.what) }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        div class="grid" {
            section aria-labelledby="h-alerts" {
                h2 id="h-alerts" { "Alerts" }
                p class="muted" { "Newest first; new alerts appear here as they are raised." }
                @if alerts.is_empty() {
                    p id="no-alerts" class="muted" { "No alert yet." }
                }
                ol id="live-alerts" class="plain" aria-live="polite" {
                    @for a in &alerts { (alert_item(a)) }
                }
            }
            section id="emerging-topics" aria-labelledby="h-topics" {
                h2 id="h-topics" { "Emerging topics" }
                @if topics.is_empty() {
                    p class="muted" { "No emerging topic yet." }
                } @else {
                    ol class="plain" {
                        @for t in &topics {
                            li {
                                strong { (topic_label(t)) }
                                " " span class="muted" { "≈" (format!("{:.0}", t.posts_since_first_seen)) " posts since " (short_time(t.first_seen)) }
                                @if let Some(s) = &t.suggested {
                                    br; span class="muted" { "Suggested feed: " } code { (s.query) }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(Html(
        StatusCode::OK,
        shell_with_script("Overview", Section::Overview, body, true),
    ))
}
