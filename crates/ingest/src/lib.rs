//! # tidewatch-ingest
//!
//! Bytes in, [`Event`](tidewatch_core::Event)s out. This crate holds the
//! *format adapters*, one module per wire format under [`format`], and the
//! *reader* that opens files (transparently decompressing `.gz` and `.zst`),
//! frames them into records, and tells every malformed record apart by file
//! and line so the rest of the stream goes on.
//!
//! Adapters do no enrichment and no pseudonymisation: they turn a platform's
//! JSON, XML or CSV into the canonical [`Post`](tidewatch_core::Post) and
//! nothing more. Raw handles leave this crate only towards
//! `tidewatch_core::pseudonym`, which is the next stage of every pipeline.

pub mod format;
pub mod read;

pub use format::{DecodeError, DecodeOutput, Decoder, Format};
