//! `/search`: the stored posts in the feed query language, newest first,
//! as `/api/v1/search` answers (redacted text, time, language, feeds). A
//! query that does not parse is shown with the parser's message and
//! column, and the form keeps it for correcting.

use super::layout::{shell, Section};
use super::{short_time, Html, PageResult};
use crate::api::search::{search_any, SearchParams};
use crate::state::AppState;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use maud::html;
use serde::Deserialize;
use std::sync::Arc;

/// Hits shown.
const LIMIT: usize = 50;

#[derive(Debug, Default, Deserialize)]
pub struct Params {
    #[serde(default)]
    pub q: String,
    pub feed: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
}

/// `GET /search?q=&feed=&from=&to=`.
pub async fn page(State(state): State<Arc<AppState>>, Query(p): Query<Params>) -> PageResult {
    let q = p.q.trim().to_string();
    let outcome = if q.is_empty() {
        None
    } else {
        let params = SearchParams {
            q: q.clone(),
            from: p.from.clone(),
            to: p.to.clone(),
            feed: p.feed.clone(),
            limit: Some(LIMIT),
        };
        Some(search_any(&state, params, LIMIT).await)
    };
    let status = match &outcome {
        Some(Err(e)) => StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST),
        _ => StatusCode::OK,
    };
    let body = html! {
        h1 { "Search" }
        form id="search-form" action="/search" method="get" role="search" class="inline" {
            div {
                label for="q" { "Query (feed query language, e.g. " code { "earthquake OR #quake" } ")" }
                input id="q" name="q" type="search" value=(q) required;
            }
            div {
                label for="feed" { "Feed (optional)" }
                input id="feed" name="feed" type="text" value=(p.feed.as_deref().unwrap_or(""));
            }
            div {
                label for="from" { "From (optional)" }
                input id="from" name="from" type="text" placeholder="2026-03-02" value=(p.from.as_deref().unwrap_or(""));
            }
            div {
                label for="to" { "To (optional)" }
                input id="to" name="to" type="text" placeholder="2026-03-03T12:00:00Z" value=(p.to.as_deref().unwrap_or(""));
            }
            button type="submit" { "Search" }
        }
        @match &outcome {
            None => { p class="muted" { "Terms, phrases, wildcards, #tags, lang:, domain:, sentiment:, AND/OR/NOT, NEAR/n. There is no way to search by account." } }
            Some(Err(e)) => {
                p id="query-error" class="bad" role="alert" { (e.title) ": " (e.detail) }
            }
            Some(Ok(r)) => {
                @if let Some(missing) = r.missing_partitions.as_ref().filter(|m| !m.is_empty()) {
                    p id="missing-partitions" class="bad" role="alert" {
                        "Partial results: partitions "
                        (missing.iter().map(u32::to_string).collect::<Vec<_>>().join(", "))
                        " did not answer in time."
                    }
                }
                p id="result-count" { (r.total) " matching posts" @if r.total > r.hits.len() as u64 { ", the newest " (r.hits.len()) " shown" } }
                ol id="results" class="plain" {
                    @for h in &r.hits {
                        li class="hit" {
                            blockquote { (h.text) }
                            span class="muted" {
                                @if let Some(t) = h.created_at { time datetime=(t.to_rfc3339()) { (short_time(t)) } " · " }
                                (h.lang.as_deref().unwrap_or("unknown language"))
                                @if !h.feeds.is_empty() { " · feeds: " (h.feeds.join(", ")) }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(Html(status, shell("Search", Section::Search, body)))
}
