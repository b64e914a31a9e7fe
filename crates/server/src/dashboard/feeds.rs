//! `/feeds`: every feed with a sparkline of its last day of data (hourly,
//! anchored at the feed's newest minute: the demo's time is simulated, so
//! the wall clock would show nothing) and its open alerts.

use super::layout::{shell, Section};
use super::overview::alert_item;
use super::{encode_segment, short_time, svg, Html, PageResult};
use crate::api::feeds::{bucket, list, Interval};
use crate::state::{blocking, AppState};
use axum::extract::State;
use axum::http::StatusCode;
use maud::html;
use std::sync::Arc;
use tidewatch_core::Timestamp;
use tidewatch_engine::alerts::{current_alerts, AlertRecord};

/// Hours in a sparkline.
const SPARK_HOURS: i64 = 24;

/// A feed as the list shows it.
struct Row {
    name: String,
    query: String,
    active: bool,
    /// Posts per hour over the last day of its data, oldest first.
    hourly: Vec<i64>,
    /// The end of that day (its newest minute), if it has data.
    newest: Option<Timestamp>,
    open: Vec<AlertRecord>,
}

/// `GET /feeds`.
pub async fn page(State(state): State<Arc<AppState>>) -> PageResult {
    let rows = blocking(&state, |s| {
        let feeds = list(s)?;
        let alerts = s.with_db(|db| current_alerts(db, None))?;
        let mut rows = Vec::with_capacity(feeds.len());
        for f in feeds {
            let (hourly, newest) = match f.id {
                Some(id) => last_day(s, id)?,
                None => (Vec::new(), None),
            };
            let open = alerts
                .iter()
                .filter(|a| a.feed_name == f.name && a.kind == "opened")
                .cloned()
                .collect();
            rows.push(Row {
                name: f.name,
                query: f.query,
                active: f.active,
                hourly,
                newest,
                open,
            });
        }
        Ok(rows)
    })
    .await?;
    let body = html! {
        h1 { "Feeds" }
        @if rows.is_empty() {
            p { "No feed yet: add one to the feeds file (or with POST /api/v1/feeds)." }
        } @else {
            table {
                caption class="muted" { "Each feed's posts per hour over the last day of its data, and its open alerts" }
                thead { tr {
                    th scope="col" { "Feed" } th scope="col" { "Query" }
                    th scope="col" { "Last day (per hour)" } th scope="col" { "Open alerts" }
                } }
                tbody {
                    @for r in &rows {
                        tr {
                            td {
                                a href=(format!("/feeds/{}", encode_segment(&r.name))) { (r.name) }
                                @if !r.active { " " span class="badge" { "removed" } }
                            }
                            td { code { (r.query) } }
                            td {
                                @if let Some(newest) = r.newest {
                                    (svg::sparkline(&r.hourly, &format!(
                                        "{}: {} posts in the 24 hours to {}",
                                        r.name, r.hourly.iter().sum::<i64>(), short_time(newest))))
                                } @else {
                                    span class="muted" { "no data yet" }
                                }
                            }
                            td {
                                @if r.open.is_empty() { span class="muted" { "none" } } @else {
                                    ul class="plain" { @for a in &r.open { (alert_item(a)) } }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(Html(StatusCode::OK, shell("Feeds", Section::Feeds, body)))
}

/// The feed's posts per hour over the 24 hours that end with its newest
/// minute, and that minute's end.
fn last_day(s: &AppState, id: u32) -> Result<(Vec<i64>, Option<Timestamp>), crate::problem::Problem> {
    let minutes = s.with_db(|db| db.feed_minutes(id, i64::MIN, i64::MAX))?;
    let Some(&(newest, _)) = minutes.last() else {
        return Ok((Vec::new(), None));
    };
    let end_hour = newest.div_euclid(60) * 60 + 60;
    let start = end_hour - SPARK_HOURS * 60;
    let recent: Vec<_> = minutes.into_iter().filter(|(m, _)| *m >= start).collect();
    let mut hourly = vec![0i64; SPARK_HOURS as usize];
    for p in bucket(recent, Interval::Hour)? {
        let i = (p.t.0.div_euclid(Timestamp::MINUTE) - start) / 60;
        if let Some(slot) = usize::try_from(i).ok().and_then(|i| hourly.get_mut(i)) {
            *slot = p.posts;
        }
    }
    Ok((hourly, Some(Timestamp((newest + 1) * Timestamp::MINUTE))))
}
