//! # tidewatch-engine
//!
//! The runtime that moves posts between stages. The stages themselves are
//! pure functions in `tidewatch-core`; this crate only supplies threads,
//! bounded channels (back-pressure: a slow sink slows the reader, memory
//! stays bounded) and ordering (output leaves in input order, whatever the
//! number of threads).
//!
//! - [`ordered`]: a parallel map over batches that hands results to a
//!   single consumer in the order the batches were produced.
//! - [`decode`]: the decode stage: inputs → framed records → events, with
//!   format detection, per-file counts and rejects (`file:line: reason`).
//! - [`ingest`]: decode → pseudonymise → enrich → redact → canonical JSON
//!   Lines, as run by `tidewatch ingest`.
//! - [`feeds`], [`live`]: feed sets with stable ids, compiled and swapped in
//!   while a run goes on.
//! - [`run`]: decode → enrich → match → event-time windows, as run by
//!   `tidewatch run`; [`series`] writes the windows as CSV and JSON Lines;
//!   [`alerts`] tests them for spikes and records each alert once;
//!   [`topics`] finds emerging topics over the whole stream;
//!   [`narratives`] clusters near-duplicate posts and their reposts;
//!   [`detectors`] holds it with the coordination network so that a run
//!   drives both on a thread of their own.
//! - [`evaluate`]: alerts and emerging topics scored against planted or
//!   labelled truth, as `tidewatch eval spikes` reports them.
//! - [`coordination`]: coordinated groups of accounts (≥ 5) over the
//!   whole stream, with their evidence, recorded in the store.
//! - [`sources`]: the decode stage for live sources (Jetstream, Mastodon,
//!   RSS, HTTP push): per-source batches with resume cursors, and the
//!   `status.json` a run writes; [`config`]: the `tidewatch.toml` file that
//!   declares them.
//! - [`datadir`]: the data directory (today: the keyring).

pub mod alerts;
pub mod config;
pub mod coordination;
pub mod datadir;
pub mod decode;
pub mod detectors;
pub mod evaluate;
pub mod feeds;
pub mod ingest;
pub mod live;
pub mod narratives;
pub mod ordered;
pub mod persist;
pub mod repeats;
pub mod replay;
pub mod run;
pub mod series;
pub mod sources;
pub mod state;
pub mod topics;
