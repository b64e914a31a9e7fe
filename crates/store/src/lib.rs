//! # tidewatch-store
//!
//! What tidewatch keeps between runs, in one data directory:
//!
//! ```text
//! DATA/
//!   index/          tantivy: every stored post (redacted, pseudonymised),
//!                   searchable with the feed query language
//!   tidewatch.db    SQLite: feeds, per-feed per-minute aggregates, alerts,
//!                   keyring epochs (metadata only) and source checkpoints
//!   keyring.json    the pseudonymisation keys (see tidewatch-engine)
//! ```
//!
//! Two stores, one commit. A batch of posts is committed to the index first,
//! with the batch's sequence number and checkpoint as the commit payload, then
//! to SQLite in one transaction (aggregate deltas, alerts, checkpoint,
//! sequence number). A crash between the two leaves the index one batch
//! ahead; on start-up [`Store::open`] deletes that batch from the index (every
//! document carries its batch number), so both stores agree on the last
//! checkpoint and the source resumes from it: exactly-once effect.
//!
//! - [`index`]: the tantivy schema, tokeniser and writer ([`index::PostIndex`]);
//! - [`search`]: the feed query language translated to tantivy queries, with
//!   histograms and streaming export;
//! - [`db`]: the SQLite schema and its transactions ([`db::Db`]);
//! - [`dedup`]: the Bloom filter that keeps a post from being stored twice;
//! - [`Store`]: both, committed together, with crash recovery.

pub mod db;
pub mod dedup;
pub mod index;
pub mod search;
mod store;

pub use store::{CommitStats, Recovery, Store, StoreConfig};

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("index at {path}: {source}")]
    Index {
        path: std::path::PathBuf,
        #[source]
        source: tantivy::TantivyError,
    },
    #[error("database {path}: {source}")]
    Db {
        path: std::path::PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("{path}: {source}")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
}
