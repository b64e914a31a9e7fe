//! Helpers shared by the CLI's end-to-end tests: running the binary and
//! reading back what a run stored. Each test file uses only some of them.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};
use tidewatch_core::query::Query;
use tidewatch_store::index::PostIndex;
use tidewatch_store::search::SearchRequest;
use tidewatch_store::Store;

/// Runs `tidewatch ARGS` in `dir`.
pub fn tidewatch(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tidewatch"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

/// Runs `tidewatch ARGS` in `dir`, which must succeed; returns its stdout.
pub fn ok(args: &[&str], dir: &Path) -> String {
    let out = tidewatch(args, dir);
    assert!(
        out.status.success(),
        "tidewatch {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Every post stored in the data directory `data`, as sorted JSON lines:
/// what two runs must agree on.
pub fn index_dump(data: &Path) -> Vec<String> {
    let index = PostIndex::open(&Store::index_dir(data), 32 << 20).unwrap();
    let req = SearchRequest {
        query: Query::parse("-zzzqqqnothing").unwrap(),
        from: None,
        to: None,
        feed: None,
        limit: usize::MAX,
    };
    let mut out = Vec::new();
    index
        .export(&req, &mut |h| {
            out.push(serde_json::to_string(h).unwrap());
            Ok(())
        })
        .unwrap();
    out.sort();
    out
}
