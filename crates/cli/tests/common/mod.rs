//! Helpers shared by the CLI's end-to-end tests: running the binary and
//! reading back what a run stored. Each test file uses only some of them.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread::JoinHandle;
use std::time::Duration;
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

/// A tidewatch process whose stderr is read line by line as it comes, for
/// tests that act at a moment the run reports (a checkpoint) and then
/// kill it.
pub struct Watched {
    child: Child,
    lines: Receiver<String>,
    reader: JoinHandle<()>,
    /// Every stderr line read so far.
    pub seen: Vec<String>,
}

impl Watched {
    /// Starts `command` (its stdout discarded, its stderr watched).
    pub fn spawn(command: &mut Command) -> Watched {
        let mut child = command.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Watched {
            child,
            lines,
            reader,
            seen: Vec::new(),
        }
    }

    /// Waits for the next "detectors' state checkpointed with commit N"
    /// line and returns N; fails after `within`.
    pub fn next_checkpoint(&mut self, within: Duration) -> u64 {
        loop {
            let line = self
                .lines
                .recv_timeout(within)
                .unwrap_or_else(|_| panic!("no checkpoint within {within:?}: {:?}", self.seen));
            self.seen.push(line.clone());
            if let Some(commit) = checkpointed(&line) {
                return commit;
            }
        }
    }

    /// Kills the process with SIGKILL and returns the commit of its last
    /// checkpoint, reading what it wrote to stderr up to then.
    pub fn kill(mut self) -> (Option<u64>, Vec<String>) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        self.reader.join().unwrap();
        self.seen.extend(self.lines.try_iter());
        let last = self.seen.iter().filter_map(|l| checkpointed(l)).max();
        (last, self.seen)
    }
}

/// The commit of a "checkpointed with commit N" stderr line.
pub fn checkpointed(line: &str) -> Option<u64> {
    let rest = line.split("checkpointed with commit ").nth(1)?;
    rest.split(' ').next()?.parse().ok()
}
