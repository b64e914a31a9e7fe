//! Real `nats-server` processes for tests (one JetStream server, or a
//! 3-node JetStream cluster, on loopback). The harness lives in
//! `tidewatch_sources::nats::testing`, where the NATS partition source's
//! own tests use it too; it is re-exported here for the cluster's tests.

pub use tidewatch_sources::nats::testing::*;
