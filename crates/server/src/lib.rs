//! # tidewatch-server
//!
//! The HTTP service over a data directory: a JSON API under `/api/v1`, a
//! live event stream (Server-Sent Events) and the OpenAPI 3 document of
//! both, generated from the handlers themselves.
//!
//! The idea: the server owns no state of its own. The data directory is
//! the truth: the SQLite database and the tantivy index a `tidewatch run`
//! writes, its `status.json`, and the feeds file (edited here atomically;
//! the run reloads it). Handlers read them with the store's and engine's
//! readers on the blocking pool; the live stream is fed by a poller that
//! turns what changed in the store into events.
//!
//! - [`api`]: one router per area (feeds, findings, search, system,
//!   stream), each route registered together with its OpenAPI operation,
//!   so the router and the document cannot drift.
//! - [`state`]: the shared state every router gets ([`AppState`]).
//! - [`hub`]: the ring buffer of stream events; [`poll`]: what fills it
//!   under `tidewatch serve`.
//! - [`tokens`]: bearer tokens with a role, stored hashed; [`auth`] checks
//!   them.
//! - [`problem`]: every error as an RFC 7807 problem document.
//! - [`signals`]: the signals that stop a service (Ctrl-C, SIGTERM).
//! - [`dashboard`]: the web pages (server-rendered HTML and SVG) over the
//!   same readers, mounted beside the API in [`app`].
//!
//! Later areas (webhooks, dashboard pages) add their own router to
//! [`app`], sharing the same [`AppState`].

pub mod api;
pub mod auth;
pub mod dashboard;
pub mod hub;
pub mod poll;
pub mod problem;
pub mod signals;
pub mod state;
pub mod tokens;
pub mod webhooks;

use axum::extract::DefaultBodyLimit;
use axum::Router;
use std::net::SocketAddr;
use std::sync::Arc;

pub use state::{AppState, ClusterTarget, ServerConfig};

/// The default address: loopback only.
pub const DEFAULT_ADDR: &str = "127.0.0.1:8080";

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("--anonymous-read is only allowed on a loopback address, not {0}")]
    AnonymousNotLoopback(SocketAddr),
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: SocketAddr, source: std::io::Error },
    #[error("the server failed: {0}")]
    Io(#[from] std::io::Error),
    /// `serve --nats` could not connect to the cluster.
    #[error(transparent)]
    Cluster(#[from] tidewatch_cluster::Error),
}

/// The whole application: every router with the shared layers (problem
/// documents, timeout, authentication, body limit).
pub fn app(state: Arc<AppState>) -> Router {
    let timeout = state.config.request_timeout;
    let body_limit = state.config.max_body_bytes;
    // Problem documents for the API only: the dashboard's pages answer
    // errors as HTML pages.
    api::router(state.clone())
        .layer(axum::middleware::from_fn(problem::problem_layer))
        .merge(dashboard::router())
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn_with_state(state.clone(), auth::require_role))
        .layer(axum::middleware::from_fn_with_state(timeout, auth::timeout))
        .with_state(state)
}

/// Serves `state` on `config.addr` until `shutdown` resolves; the poller
/// feeds the live stream meanwhile. Calls `ready` with the bound address
/// (the system's choice for port 0).
pub async fn serve(
    state: Arc<AppState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ready: impl FnOnce(SocketAddr),
) -> Result<(), ServeError> {
    let addr = state.config.addr;
    if state.config.anonymous_read && !addr.ip().is_loopback() {
        return Err(ServeError::AnonymousNotLoopback(addr));
    }
    state.connect_cluster().await?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Listen { addr, source })?;
    ready(listener.local_addr()?);
    let poller = state
        .config
        .poll_interval
        .map(|every| tokio::spawn(poll::run(state.clone(), every)));
    let delivery = webhooks::DeliveryOptions {
        allow_private: state.config.allow_private_webhooks,
        ..Default::default()
    };
    let _webhooks = webhooks::spawn(&state.config.data, delivery);
    let hub = state.hub.clone();
    let shutdown = async move {
        shutdown.await;
        // Event streams never end by themselves: end them, or the
        // graceful shutdown would wait for their clients forever.
        hub.close();
    };
    let result = axum::serve(listener, app(state)).with_graceful_shutdown(shutdown).await;
    if let Some(p) = poller {
        p.abort();
    }
    result.map_err(ServeError::Io)
}

/// Serves until Ctrl-C (or SIGTERM), on a runtime of its own: what
/// `tidewatch serve` calls. `ready` gets the bound address.
pub fn serve_until_signal(config: ServerConfig, ready: impl FnOnce(SocketAddr)) -> Result<(), ServeError> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let state = AppState::new(config);
        serve(state, shutdown_signal(), ready).await
    })
}

/// Serves `state` until `stop` is set, on a runtime of its own: what
/// `tidewatch run --serve` and `tidewatch demo` run beside the pipeline
/// (which owns Ctrl-C and publishes to `state.hub`). `ready` gets the
/// bound address.
pub fn serve_until_stopped(
    state: Arc<AppState>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    ready: impl FnOnce(SocketAddr),
) -> Result<(), ServeError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let stopped = async move {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        };
        serve(state, stopped, ready).await
    })
}

/// Resolves at the first Ctrl-C or SIGTERM (see [`signals`]); never,
/// when the handlers cannot be installed.
async fn shutdown_signal() {
    match signals::StopSignals::register() {
        Ok(mut s) => s.next().await,
        Err(e) => {
            eprintln!("Ctrl-C and SIGTERM will not stop the server cleanly: {e}");
            std::future::pending::<()>().await
        }
    }
}
