//! `/groups` and `/groups/{id}`: coordinated groups (accounts acting in
//! concert), as `/api/v1/coordination/groups` shows them: sizes, scores
//! and evidence, never members. The detail page draws the group as a
//! network of anonymous numbered members (member numbers are the indices
//! of the stored record's edges, not accounts) on a circle, a layout that
//! depends on nothing but the member count. Groups smaller than the
//! configured k are never shown, not even by id.

use super::layout::{shell, Section};
use super::svg::{self, Edge};
use super::{encode_segment, short_time, Html, PageResult};
use crate::api::findings::GroupView;
use crate::problem::Problem;
use crate::state::{blocking, AppState};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use maud::html;
use std::sync::Arc;
use tidewatch_engine::coordination::current_groups;

/// The groups of at least k members, highest score first.
fn shown(s: &AppState) -> Result<Vec<GroupView>, Problem> {
    let k = s.config.k;
    let mut groups: Vec<GroupView> = s
        .with_db(|db| current_groups(db, None))?
        .into_iter()
        .filter(|g| g.accounts.len() >= k)
        .map(GroupView::of)
        .collect();
    groups.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.id.cmp(&b.id)));
    Ok(groups)
}

/// `GET /groups`.
pub async fn list(State(state): State<Arc<AppState>>) -> PageResult {
    let k = state.config.k;
    let groups = blocking(&state, shown).await?;
    let body = html! {
        h1 { "Coordinated groups" }
        p class="muted" { "Groups of at least " (k) " accounts that posted the same things within seconds of each other. Members are never named." }
        @if groups.is_empty() {
            p { "No coordinated group yet." }
        } @else {
            table id="groups" {
                caption class="muted" { "Highest score first" }
                thead { tr {
                    th scope="col" { "Group" } th scope="col" class="num" { "Members" } th scope="col" class="num" { "Score" }
                    th scope="col" { "Types" } th scope="col" class="num" { "Density" } th scope="col" { "Span" }
                    th scope="col" class="num" { "Evidence" }
                } }
                tbody {
                    @for g in &groups {
                        tr {
                            td { a href=(format!("/groups/{}", encode_segment(&g.id))) { (g.id) } }
                            td class="num" { (g.size) }
                            td class="num" { (format!("{:.2}", g.score)) }
                            td { (g.types.join(", ")) }
                            td class="num" { (format!("{:.2}", g.density)) }
                            td { (short_time(g.first_seen)) " – " (short_time(g.last_seen)) }
                            td class="num" { (g.evidence.len()) }
                        }
                    }
                }
            }
        }
    };
    Ok(Html(StatusCode::OK, shell("Coordinated groups", Section::Groups, body)))
}

/// `GET /groups/{id}`.
pub async fn detail(State(state): State<Arc<AppState>>, Path(id): Path<String>) -> PageResult {
    let groups = blocking(&state, shown).await?;
    let Some(g) = groups.into_iter().find(|g| g.id == id) else {
        return Err(Problem::not_found(format!(
            "no coordinated group {id:?} (of at least {} members)",
            state.config.k
        ))
        .into());
    };
    let edges: Vec<Edge> = g
        .edges
        .iter()
        .map(|e| {
            let kinds = e
                .weights
                .iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect::<Vec<_>>()
                .join(", ");
            Edge {
                a: e.a,
                b: e.b,
                weight: u64::from(e.total),
                label: format!(
                    "Members {} and {}: {} coincidences ({kinds})",
                    e.a + 1,
                    e.b + 1,
                    e.total
                ),
            }
        })
        .collect();
    let title = format!("Group {}", g.id);
    let body = html! {
        h1 { (title) }
        p {
            (g.size) " members · score " (format!("{:.2}", g.score)) " · density " (format!("{:.2}", g.density))
            " · " (g.total_weight) " coincidences (" (g.weight_by_type.iter().map(|(k, n)| format!("{k} {n}")).collect::<Vec<_>>().join(", ")) ")"
            " · " (short_time(g.first_seen)) " – " (short_time(g.last_seen))
        }
        div class="grid" {
            section aria-labelledby="h-network" {
                h2 id="h-network" { "Network" }
                (svg::network("group-network", &format!("Group {}: members as numbered nodes, ties as lines", g.id), g.size, &edges))
            }
            section aria-labelledby="h-narr" {
                h2 id="h-narr" { "Narratives co-posted" }
                @if g.narratives.is_empty() { p class="muted" { "None recorded." } } @else {
                    ul class="plain" { @for n in &g.narratives { li { code { (n) } } } }
                }
            }
        }
        section aria-labelledby="h-evidence" {
            h2 id="h-evidence" { "Evidence" }
            @if g.evidence.is_empty() { p class="muted" { "No coincidence sampled." } } @else {
                table id="evidence" {
                    caption class="muted" { "Pairs of posts that tie two members (post ids are keyed hashes), heaviest ties first" }
                    thead { tr { th scope="col" { "Type" } th scope="col" { "First post" } th scope="col" { "Second post" } } }
                    tbody {
                        @for e in &g.evidence {
                            tr {
                                td { (e.kind) }
                                td { code { (e.posts[0]) } br; time datetime=(e.times[0].to_rfc3339()) { (e.times[0].to_rfc3339()) } }
                                td { code { (e.posts[1]) } br; time datetime=(e.times[1].to_rfc3339()) { (e.times[1].to_rfc3339()) } }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(Html(StatusCode::OK, shell(&title, Section::Groups, body)))
}
