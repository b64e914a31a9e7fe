//! `/login`: a browser cannot send a bearer header (an `EventSource`
//! neither), so this form takes a token and sets it as the
//! `tidewatch_token` cookie: HttpOnly (no script reads it) and
//! SameSite=Strict (no other site's page sends it). The cookie is
//! accepted for reading only, whatever the token's role, so a forged
//! request could change nothing.

use super::layout::{shell, Section};
use super::{Html, COOKIE};
use crate::state::AppState;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::{html, Markup};
use serde::Deserialize;
use std::sync::Arc;

#[derive(Debug, Deserialize)]
pub struct Login {
    pub token: String,
}

fn form_page(error: Option<&str>) -> Markup {
    let body = html! {
        h1 { "Sign in" }
        p { "Paste an API token (" code { "tidewatch token create --role read" } "). The dashboard uses it to read only." }
        @if let Some(e) = error { p id="login-error" class="bad" role="alert" { (e) } }
        form id="login-form" action="/login" method="post" {
            label for="token" { "Token" }
            input id="token" name="token" type="password" autocomplete="current-password" required;
            " " button type="submit" { "Sign in" }
        }
    };
    shell("Sign in", Section::None, body)
}

/// `GET /login`.
pub async fn form() -> Html {
    Html(StatusCode::OK, form_page(None))
}

/// `POST /login`: a known token sets the cookie and goes to the overview.
pub async fn submit(State(state): State<Arc<AppState>>, Form(login): Form<Login>) -> Response {
    let token = login.token.trim();
    // Only token characters may go into a header.
    let valid = !token.is_empty()
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !valid || state.tokens.role_of(token).is_none() {
        return Html(StatusCode::UNAUTHORIZED, form_page(Some("Unknown token."))).into_response();
    }
    let cookie = format!("{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict");
    let mut res = Redirect::to("/").into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        res.headers_mut().insert(header::SET_COOKIE, v);
    }
    res
}
