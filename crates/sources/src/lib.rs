//! # tidewatch-sources
//!
//! Live sources: clients that keep a connection to a public stream open,
//! survive its failures, and hand every record they receive to the
//! pipeline in the stream's own wire format. Decoding into [`Post`]s is
//! not done here: the pipeline decodes a source's records with the same
//! format adapters (`tidewatch_ingest::format`) it uses for files, so a
//! Jetstream event read live and the same event read from a saved file
//! become the same post.
//!
//! The contract with the pipeline:
//!
//! - A source runs on its own thread and sends [`SourceMessage`]s into a
//!   bounded channel (back-pressure: a slow pipeline slows the reading).
//! - Each [`Received`] record carries the source's **cursor** after it
//!   (Jetstream's `time_us`, a Mastodon status id), when the protocol has
//!   one. The pipeline checkpoints the cursor of the last record of each
//!   committed batch with the store; on restart the source is started
//!   from that cursor, rewinds a little and the store's de-duplication by
//!   post id drops what is seen twice.
//! - A source that knows it missed something says so with a [`Gap`]:
//!   silent holes in collected data are what users of other tools fear
//!   most.
//! - [`SourceHealth`] is shared with whoever reports status (the terminal
//!   line, `tidewatch status`, the API).
//!
//! [`Post`]: https://docs.rs/tidewatch-core

pub mod health;
pub mod jetstream;
pub mod mastodon;
pub mod nats;
pub mod push;
pub mod replay;
pub mod rss;
pub mod thread;

pub use health::{Gap, HealthSnapshot, Received, SourceHealth, SourceMessage};
