//! Webhooks: each alert event (a spike opened, a spike closed) POSTed as
//! JSON to the URLs registered for its feed or for every feed, signed,
//! retried, and recorded, so a user can see what was delivered.
//!
//! The body is the alert record exactly as the store holds it (what
//! `GET /api/v1/alerts` lists): feed name, spike figures and the terms
//! that drove it; a narrative's growth alert adds its counts and its
//! representative text, redacted as everywhere else. No account or handle
//! is ever sent.
//!
//! Webhooks go to public addresses only unless allowed otherwise
//! ([`address`]: a URL must not make the server probe its own networks).
//!
//! - [`store`]: `DATA/webhooks.db`, a SQLite file of its own (mode 0600:
//!   it holds the HMAC keys), with the webhooks and their deliveries.
//! - [`sign`](mod@sign): the `Tidewatch-Signature` header and how a receiver
//!   checks it ([`verify`]).
//! - [`deliver`]: the deliverer that follows the store's `alerts` table,
//!   sends, retries with backoff and gives up after a bound.
//!
//! Every process that serves the API delivers ([`crate::serve`] starts
//! [`spawn`]); `tidewatch run` without `--serve` calls
//! [`run_until_stopped`] on a thread of its own. Several processes may
//! deliver from one data directory: each delivery is claimed by one of
//! them only.
//!
//! The API (`/api/v1/webhooks`) is in [`crate::api::webhooks`].

pub mod address;
pub mod deliver;
pub mod sign;
pub mod store;

pub use deliver::{run, run_until_stopped, spawn, DeliveryOptions, Running};
pub use sign::{sign, verify, DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER};
pub use store::{Delivery, DeliveryStatus, Webhook, WebhookStore};

use std::path::{Path, PathBuf};

/// What can go wrong with webhooks (an attempt that fails is not an
/// error: it is recorded on its delivery).
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("{}: {source}", path.display())]
    Db { path: PathBuf, source: rusqlite::Error },
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("the HTTP client: {0}")]
    Client(String),
    #[error("a worker thread failed: {0}")]
    Worker(String),
}

impl WebhookError {
    fn db(path: &Path, source: rusqlite::Error) -> WebhookError {
        WebhookError::Db {
            path: path.to_path_buf(),
            source,
        }
    }
}
