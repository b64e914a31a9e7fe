//! Replay servers: local stand-ins for the live services, speaking each
//! protocol faithfully enough to test the clients against, serving
//! generated events and able to misbehave on cue (drop the connection,
//! stall, send garbage, restart, forget old events).
//!
//! They are part of the library rather than of one test directory so that
//! every crate's tests (the end-to-end run of `tidewatch run`, the
//! benchmarks) can use them. They only ever listen on loopback.

pub mod jetstream;
pub mod mastodon;
pub mod rss;
