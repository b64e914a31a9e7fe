//! `/feeds`: every feed with a sparkline of its last day of data (hourly,
//! anchored at the feed's newest minute: the demo's time is simulated, so
//! the wall clock would show nothing) and its open alerts.
//!
//! Over a cluster (`tidewatch serve --nats`) the feeds are the cluster's
//! feed set and the sparklines come from every shard, summed (one series
//! request for all feeds); a partition that did not answer is named in a
//! note above the table. Open alerts come from the data directory either way.

use super::layout::{shell, Section};
use super::overview::alert_item;
use super::{encode_segment, short_time, svg, Html, PageResult};
use crate::api::feeds::{bucket, cluster_minutes, list, list_any, FeedView, Interval};
use crate::problem::Problem;
use crate::state::{blocking, AppState, ClusterView};
use axum::extract::State;
use axum::http::StatusCode;
use maud::html;
use std::sync::Arc;
use tidewatch_core::Timestamp;
use tidewatch_engine::alerts::{current_alerts, AlertRecord};
use tidewatch_store::db::MinuteCounts;

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

impl Row {
    fn new(f: FeedView, (hourly, newest): (Vec<i64>, Option<Timestamp>), alerts: &[AlertRecord]) -> Row {
        let open = alerts
            .iter()
            .filter(|a| a.feed_name == f.name && a.kind == "opened")
            .cloned()
            .collect();
        Row {
            name: f.name,
            query: f.query,
            active: f.active,
            hourly,
            newest,
            open,
        }
    }
}

/// `GET /feeds`.
pub async fn page(State(state): State<Arc<AppState>>) -> PageResult {
    let (rows, missing) = match state.cluster.get() {
        Some(c) => cluster_rows(&state, c).await?,
        None => {
            let rows = blocking(&state, |s| {
                let feeds = list(s)?;
                let alerts = s.with_db(|db| current_alerts(db, None))?;
                let mut rows = Vec::with_capacity(feeds.len());
                for f in feeds {
                    let day = match f.id {
                        Some(id) => last_day(s, id)?,
                        None => (Vec::new(), None),
                    };
                    rows.push(Row::new(f, day, &alerts));
                }
                Ok(rows)
            })
            .await?;
            (rows, Vec::new())
        }
    };
    let body = html! {
        h1 { "Feeds" }
        @if !missing.is_empty() {
            p id="missing-partitions" class="bad" role="alert" {
                "Partial data: partitions "
                (missing.iter().map(u32::to_string).collect::<Vec<_>>().join(", "))
                " did not answer in time; the sparklines lack their posts."
            }
        }
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

/// The rows over a cluster: its feed set, every feed's minutes from every
/// shard in one request, the alerts of the data directory; and the
/// partitions that did not answer.
async fn cluster_rows(state: &Arc<AppState>, c: &ClusterView) -> Result<(Vec<Row>, Vec<u32>), Problem> {
    let feeds = list_any(state).await?;
    let mut series = cluster_minutes(c, None, None, None).await?;
    let alerts = blocking(state, |s| s.with_db(|db| current_alerts(db, None))).await?;
    let mut rows = Vec::with_capacity(feeds.len());
    for f in feeds {
        let minutes = series.result.remove(&f.name).unwrap_or_default();
        let day = hours_to_newest(minutes.into_iter().collect())?;
        rows.push(Row::new(f, day, &alerts));
    }
    Ok((rows, series.missing))
}

/// The feed's posts per hour over the 24 hours that end with its newest
/// minute, and that minute's end.
fn last_day(s: &AppState, id: u32) -> Result<(Vec<i64>, Option<Timestamp>), Problem> {
    let minutes = s.with_db(|db| db.feed_minutes(id, i64::MIN, i64::MAX))?;
    hours_to_newest(minutes)
}

/// Posts per hour over the 24 hours that end with the newest of
/// `minutes` (ascending unix minutes), and that minute's end.
fn hours_to_newest(minutes: Vec<(i64, MinuteCounts)>) -> Result<(Vec<i64>, Option<Timestamp>), Problem> {
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
