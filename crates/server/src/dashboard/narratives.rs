//! `/narratives`: texts many posts repeat (near-duplicates and reposts),
//! most distinct accounts first, as `/api/v1/narratives` lists them:
//! counts, span, languages, domains and one redacted representative text.

use super::layout::{shell, Section};
use super::{short_time, Html, PageResult};
use crate::state::{blocking, AppState};
use axum::extract::State;
use axum::http::StatusCode;
use maud::html;
use std::sync::Arc;
use tidewatch_engine::narratives::current_narratives;

/// Narratives listed.
const SHOWN: usize = 100;

fn pairs(v: &[(String, u64)]) -> String {
    v.iter()
        .take(3)
        .map(|(k, n)| format!("{k} ({n})"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `GET /narratives`.
pub async fn page(State(state): State<Arc<AppState>>) -> PageResult {
    let narratives = blocking(&state, |s| s.with_db(|db| current_narratives(db, None, SHOWN))).await?;
    let body = html! {
        h1 { "Narratives" }
        @if narratives.is_empty() {
            p { "No narrative yet: none has been detected in this data directory (or the run does not detect narratives)." }
        } @else {
            table id="narratives" {
                caption class="muted" { "Texts repeated by many accounts, most accounts first (at most " (SHOWN) ")" }
                thead { tr {
                    th scope="col" class="num" { "Posts" } th scope="col" class="num" { "Accounts" }
                    th scope="col" { "Span" } th scope="col" { "Languages" } th scope="col" { "Domains" }
                    th scope="col" { "Representative text (redacted)" }
                } }
                tbody {
                    @for n in &narratives {
                        tr {
                            td class="num" { (n.posts) }
                            td class="num" { @if !n.accounts_exact { "≈" } (n.accounts) }
                            td { (short_time(n.first_seen)) " – " (short_time(n.last_seen)) }
                            td { (pairs(&n.languages)) }
                            td { (pairs(&n.domains)) }
                            td { (n.representative) }
                        }
                    }
                }
            }
        }
    };
    Ok(Html(StatusCode::OK, shell("Narratives", Section::Narratives, body)))
}
