//! One module per subcommand.

pub mod alerts;
pub mod bench;
pub mod config;
pub mod coordination;
pub mod demo;
pub mod eval;
pub mod eval_narratives;
pub mod eval_spikes;
pub mod feeds;
pub mod gen;
pub mod ingest;
pub mod narratives;
pub mod publish;
pub mod run;
pub mod search;
pub mod serve;
pub mod status;
pub mod token;
pub mod topics;
pub mod worker;
