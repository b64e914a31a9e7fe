//! The state every router shares: where the data is, the settings, the
//! event hub, the token store and a small pool of database connections.

use crate::hub::{EventHub, DEFAULT_RETAINED};
use crate::problem::Problem;
use crate::tokens::TokenStore;
use axum::body::Bytes;
use axum::response::Response;
use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tidewatch_core::coordination::MIN_K;
use tidewatch_store::db::Db;
use tidewatch_store::index::PostIndex;
use tidewatch_store::{Store, StoreError};

/// Database connections kept open between requests.
const POOL_SIZE: usize = 4;

/// How the server runs.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub addr: SocketAddr,
    /// The data directory.
    pub data: PathBuf,
    /// The feeds file the feeds API edits; `None` makes feeds read-only
    /// (listed from the database).
    pub feeds_file: Option<PathBuf>,
    /// Smallest coordinated group ever shown.
    pub k: usize,
    /// Reads without a token (refused unless `addr` is loopback).
    pub anonymous_read: bool,
    /// Larger request bodies are answered 413.
    pub max_body_bytes: usize,
    /// A request whose answer has not started by then is answered 503.
    pub request_timeout: Duration,
    /// Stream events kept for reconnecting clients.
    pub retained_events: usize,
    /// How often the poller looks for new alerts, counts and health;
    /// `None` runs no poller (a process that runs the pipeline publishes
    /// to the hub itself).
    pub poll_interval: Option<Duration>,
    /// Whether the poller publishes alerts it finds in the store. A
    /// process that runs the pipeline publishes each alert the moment it
    /// is raised instead (before its commit), and turns this off.
    pub poll_alerts: bool,
    /// Webhooks may point at loopback and private addresses (see
    /// [`crate::webhooks::address`]).
    pub allow_private_webhooks: bool,
    /// Answer search from every shard of this cluster instead of the data
    /// directory's index (`tidewatch serve --nats`).
    pub cluster: Option<ClusterTarget>,
}

/// The cluster whose shards answer search, and how long each may take.
#[derive(Clone, Debug)]
pub struct ClusterTarget {
    pub config: tidewatch_cluster::ClusterConfig,
    /// A partition that has not answered by then is listed as missing.
    pub shard_timeout: Duration,
}

/// A connected cluster (see [`AppState::connect_cluster`]).
#[derive(Clone)]
pub struct ClusterView {
    pub cluster: tidewatch_cluster::Cluster,
    pub shard_timeout: Duration,
}

impl ServerConfig {
    pub fn new(data: PathBuf, addr: SocketAddr) -> ServerConfig {
        ServerConfig {
            addr,
            data,
            feeds_file: None,
            k: MIN_K,
            anonymous_read: false,
            max_body_bytes: 1 << 20,
            request_timeout: Duration::from_secs(30),
            retained_events: DEFAULT_RETAINED,
            poll_interval: Some(Duration::from_secs(1)),
            poll_alerts: true,
            allow_private_webhooks: false,
            cluster: None,
        }
    }
}

/// Answers `POST /api/v1/ingest` (query parameters, body) in a process
/// whose pipeline has a push source: that source's own endpoint.
pub type IngestHandler =
    Arc<dyn Fn(HashMap<String, String>, Bytes) -> Pin<Box<dyn Future<Output = Response> + Send>> + Send + Sync>;

/// A run's status snapshot as rates need it: (updated_at ms, posts).
pub type Snapshot = (i64, u64);

/// Shared by every handler.
pub struct AppState {
    pub config: ServerConfig,
    pub hub: Arc<EventHub>,
    pub tokens: TokenStore,
    /// The OpenAPI document, set once the routers are assembled.
    pub openapi: OnceLock<String>,
    /// Serialises edits of the feeds file within this process.
    pub feeds_lock: tokio::sync::Mutex<()>,
    /// Push ingest, when this process runs a pipeline with a push source
    /// (`tidewatch run --serve`); without it the ingest route answers 503.
    pub ingest: OnceLock<IngestHandler>,
    /// The last two run snapshots seen, for rates.
    pub rate: Mutex<Option<(Snapshot, Snapshot)>>,
    /// The cluster search fans out to, once connected (only with
    /// [`ServerConfig::cluster`]).
    pub cluster: OnceLock<ClusterView>,
    dbs: Mutex<Vec<Db>>,
}

impl AppState {
    pub fn new(config: ServerConfig) -> Arc<AppState> {
        Arc::new(AppState {
            hub: EventHub::new(config.retained_events),
            tokens: TokenStore::new(&config.data),
            openapi: OnceLock::new(),
            ingest: OnceLock::new(),
            feeds_lock: tokio::sync::Mutex::new(()),
            rate: Mutex::new(None),
            cluster: OnceLock::new(),
            dbs: Mutex::new(Vec::new()),
            config,
        })
    }

    /// Connects to [`ServerConfig::cluster`], when set (what [`crate::serve`]
    /// does first). The connection lives on the calling runtime.
    pub async fn connect_cluster(&self) -> Result<(), tidewatch_cluster::Error> {
        let Some(target) = &self.config.cluster else {
            return Ok(());
        };
        if self.cluster.get().is_some() {
            return Ok(());
        }
        let cluster = tidewatch_cluster::Cluster::connect(&target.config).await?;
        // A concurrent caller may have connected first; either connection serves.
        let _ = self.cluster.set(ClusterView {
            cluster,
            shard_timeout: target.shard_timeout,
        });
        Ok(())
    }

    /// Runs `f` with a database connection (from the pool, or newly
    /// opened), on the calling thread: call it from the blocking pool.
    pub fn with_db<T>(&self, f: impl FnOnce(&Db) -> Result<T, StoreError>) -> Result<T, Problem> {
        let pooled = self.dbs.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let db = match pooled {
            Some(db) => db,
            None => Db::open(&Store::db_path(&self.config.data))?,
        };
        let out = f(&db);
        let mut pool = self.dbs.lock().unwrap_or_else(|p| p.into_inner());
        if pool.len() < POOL_SIZE {
            pool.push(db);
        }
        Ok(out?)
    }

    /// The post index as last committed (opened read-only per request, so
    /// it sees every commit a running `run` made).
    pub fn index(&self) -> Result<PostIndex, Problem> {
        let dir = Store::index_dir(&self.config.data);
        if !dir.exists() {
            return Err(Problem::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "no post index yet in the data directory: run `tidewatch run` first",
            ));
        }
        Ok(PostIndex::open_read_only(&dir)?)
    }
}

/// Runs blocking store work on the blocking pool.
pub async fn blocking<T: Send + 'static>(
    state: &Arc<AppState>,
    f: impl FnOnce(&AppState) -> Result<T, Problem> + Send + 'static,
) -> Result<T, Problem> {
    let state = state.clone();
    tokio::task::spawn_blocking(move || f(&state))
        .await
        .map_err(|e| Problem::internal(format!("a worker failed: {e}")))?
}
