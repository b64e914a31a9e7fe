//! Webhooks: register a URL for a feed's alerts (or every feed's), list
//! and delete them, and see each delivery's attempts and outcome.
//!
//! Writes need the admin role, and so does the one answer that holds a
//! secret (the create call, the only time the secret is shown); lists
//! carry no secret and need the read role. The roles follow the methods
//! (see [`crate::auth`]). How deliveries are signed and retried:
//! [`crate::webhooks`].

use crate::api::feeds::cluster_feeds;
use crate::problem::{no_content, Problem};
use crate::state::{blocking, AppState};
use crate::webhooks::deliver::now;
use crate::webhooks::{Delivery, DeliveryStatus, Webhook, WebhookError, WebhookStore};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::sync::Arc;
use tidewatch_engine::feeds::parse_feeds;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The longest URL accepted.
const MAX_URL: usize = 2048;
/// Deliveries listed when the request says no `limit`.
const DEFAULT_DELIVERIES: usize = 100;
/// The most deliveries one request may ask for.
const MAX_DELIVERIES: usize = 10_000;

pub fn router() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(list_webhooks, create_webhook))
        .routes(routes!(delete_webhook))
        .routes(routes!(list_deliveries))
}

impl From<WebhookError> for Problem {
    fn from(e: WebhookError) -> Problem {
        Problem::internal(e)
    }
}

/// A webhook to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    /// Where alerts are POSTed: an `http` or `https` URL.
    pub url: String,
    /// Only this feed's alerts; every feed's when absent.
    pub feed: Option<String>,
}

/// A webhook just created, with its secret: shown this once only.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedWebhook {
    pub id: i64,
    pub url: String,
    pub feed: Option<String>,
    /// The HMAC-SHA256 key of its `Tidewatch-Signature` headers.
    pub secret: String,
}

fn check_url(url: &str, allow_private: bool) -> Result<(), Problem> {
    if url.len() > MAX_URL {
        return Err(Problem::bad_request(format!("the url is longer than {MAX_URL} bytes")));
    }
    let parsed = reqwest::Url::parse(url).map_err(|e| Problem::bad_request(format!("url: not a URL ({e})")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(Problem::bad_request(format!(
            "url: the scheme must be http or https, not {:?}",
            parsed.scheme()
        )));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(Problem::bad_request("url: no host"));
    }
    if !allow_private {
        if let Some(why) = crate::webhooks::address::private_literal(&parsed) {
            return Err(Problem::bad_request(format!(
                "url: {why}; webhooks go to public addresses unless the server runs with --allow-private-webhooks"
            )));
        }
    }
    Ok(())
}

/// The feed names known without a cluster: those the store has seen and,
/// when the server edits a feeds file, those in it (a feed added but not
/// yet run).
fn known_feeds(state: &AppState) -> Result<HashSet<String>, Problem> {
    let mut names: HashSet<String> = state.with_db(|db| db.feeds())?.into_iter().map(|f| f.name).collect();
    if let Some(path) = &state.config.feeds_file {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                if let Ok(defs) = parse_feeds(&text, &path.display().to_string()) {
                    names.extend(defs.into_iter().map(|d| d.name));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Problem::internal(format!("{}: {e}", path.display()))),
        }
    }
    Ok(names)
}

/// List the webhooks (never their secrets).
#[utoipa::path(get, path = "/api/v1/webhooks", tag = "webhooks",
    responses((status = 200, description = "The active webhooks, oldest first", body = [Webhook])))]
async fn list_webhooks(State(state): State<Arc<AppState>>) -> Result<Json<Vec<Webhook>>, Problem> {
    blocking(&state, |s| Ok(WebhookStore::open(&s.config.data)?.list()?))
        .await
        .map(Json)
}

/// Register a webhook; the answer holds its secret, shown only here.
#[utoipa::path(post, path = "/api/v1/webhooks", tag = "webhooks", request_body = NewWebhook,
    responses(
        (status = 201, description = "Created, with the secret", body = CreatedWebhook),
        (status = 400, description = "Not an http(s) URL, a private address (unless allowed), or an unknown feed (over a cluster: not in the cluster's feed set)", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "Over a cluster: its feed set could not be read", body = Problem, content_type = "application/problem+json")))]
async fn create_webhook(State(state): State<Arc<AppState>>, Json(new): Json<NewWebhook>) -> Result<Response, Problem> {
    check_url(&new.url, state.config.allow_private_webhooks)?;
    // Over a cluster the feeds are the cluster's feed set (its alerts are
    // raised for those names); else those of the data directory.
    let cluster_names = match (state.cluster.get(), &new.feed) {
        (Some(c), Some(_)) => Some(cluster_feeds(c).await?.into_iter().map(|d| d.name).collect()),
        _ => None,
    };
    let created = blocking(&state, move |s| {
        if let Some(feed) = &new.feed {
            let known = match cluster_names {
                Some(names) => names,
                None => known_feeds(s)?,
            };
            if !known.contains(feed) {
                return Err(Problem::bad_request(format!("feed: no feed named {feed:?}")));
            }
        }
        let (hook, secret) = WebhookStore::open(&s.config.data)?.create(&new.url, new.feed.as_deref(), now())?;
        Ok(CreatedWebhook {
            id: hook.id,
            url: hook.url,
            feed: hook.feed,
            secret,
        })
    })
    .await?;
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

/// Delete a webhook: it receives nothing more; its pending deliveries fail.
#[utoipa::path(delete, path = "/api/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = i64, Path, description = "The webhook's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such webhook", body = Problem, content_type = "application/problem+json")))]
async fn delete_webhook(State(state): State<Arc<AppState>>, Path(id): Path<i64>) -> Result<Response, Problem> {
    let deleted = blocking(&state, move |s| Ok(WebhookStore::open(&s.config.data)?.delete(id)?)).await?;
    if !deleted {
        return Err(Problem::not_found(format!("no webhook {id}")));
    }
    Ok(no_content())
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveryParams {
    /// Only deliveries in this state: `pending`, `delivered` or `failed`.
    pub status: Option<String>,
    /// At most this many, newest first (default 100).
    pub limit: Option<usize>,
}

/// A webhook's deliveries, newest first: attempts, status, last answer
/// and error, and times.
#[utoipa::path(get, path = "/api/v1/webhooks/{id}/deliveries", tag = "webhooks",
    params(("id" = i64, Path, description = "The webhook's id"), DeliveryParams),
    responses(
        (status = 200, description = "Its deliveries", body = [Delivery]),
        (status = 400, description = "Bad `status`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such webhook", body = Problem, content_type = "application/problem+json")))]
async fn list_deliveries(
    State(state): State<Arc<AppState>>,
    Path(id): Path<i64>,
    Query(p): Query<DeliveryParams>,
) -> Result<Json<Vec<Delivery>>, Problem> {
    let status = match p.status.as_deref() {
        None | Some("") => None,
        Some(s) => Some(
            s.parse::<DeliveryStatus>()
                .map_err(|e| Problem::bad_request(format!("status: {e}")))?,
        ),
    };
    let limit = p.limit.unwrap_or(DEFAULT_DELIVERIES).min(MAX_DELIVERIES);
    blocking(&state, move |s| {
        let store = WebhookStore::open(&s.config.data)?;
        if !store.is_active(id)? {
            return Err(Problem::not_found(format!("no webhook {id}")));
        }
        Ok(store.deliveries(id, status, limit)?)
    })
    .await
    .map(Json)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        for ok in ["http://127.0.0.1:9000/hook", "https://example.invalid/a?b=c"] {
            assert!(check_url(ok, true).is_ok(), "{ok}");
        }
        assert!(check_url("https://example.invalid/a?b=c", false).is_ok());
        for private in [
            "http://127.0.0.1:9000/hook",
            "http://[::1]/",
            "http://169.254.169.254/",
            "http://localhost/",
        ] {
            assert_eq!(check_url(private, false).unwrap_err().status, 400, "{private}");
        }
        for bad in [
            "",
            "example.invalid/hook",
            "ftp://example.invalid/",
            "file:///etc/passwd",
            "http://",
        ] {
            assert_eq!(check_url(bad, true).unwrap_err().status, 400, "{bad:?}");
        }
        assert_eq!(
            check_url(&format!("https://example.invalid/{}", "a".repeat(MAX_URL)), true)
                .unwrap_err()
                .status,
            400
        );
    }
}
