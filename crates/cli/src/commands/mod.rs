//! One module per subcommand.

pub mod bench;
pub mod demo;
pub mod eval;
pub mod gen;
pub mod ingest;
