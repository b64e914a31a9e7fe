//! Scores canonical JSONL posts read on stdin with tidewatch's VADER scorer,
//! writing one line per input line: `compound<TAB>pos<TAB>neu<TAB>neg`.
//! A line that is not a JSON object with a string `text` gives `nan` scores,
//! so output lines stay aligned with input lines.
//!
//! The time spent scoring (without reading and parsing) is reported on
//! stderr as posts per second, for throughput measurements:
//!
//! ```text
//! cargo run --release -q -p tidewatch-core --example sentiment_scores < posts.jsonl
//! ```

use std::io::{self, BufRead, BufWriter, Write};
use std::time::Instant;

use tidewatch_core::sentiment::score;

/// How many times the scoring pass is repeated for the timing (the output
/// comes from the first pass).
const TIMING_ROUNDS: usize = 5;

fn main() -> io::Result<()> {
    let texts: Vec<Option<String>> = io::stdin()
        .lock()
        .lines()
        .map(|line| line.map(|l| text_of(&l)))
        .collect::<io::Result<_>>()?;

    let scored: Vec<_> = texts.iter().map(|t| t.as_deref().map(score)).collect();

    let start = Instant::now();
    let mut checksum = 0.0;
    for _ in 0..TIMING_ROUNDS {
        for text in texts.iter().flatten() {
            checksum += score(text).compound;
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let posts = texts.iter().flatten().count() * TIMING_ROUNDS;
    if elapsed > 0.0 {
        eprintln!(
            "scored {posts} posts in {elapsed:.3} s: {:.0} posts/s on one thread (checksum {checksum:.1})",
            posts as f64 / elapsed
        );
    }

    let mut out = BufWriter::new(io::stdout().lock());
    for s in scored {
        match s {
            Some(s) => writeln!(out, "{}\t{}\t{}\t{}", s.compound, s.pos, s.neu, s.neg)?,
            None => writeln!(out, "nan\tnan\tnan\tnan")?,
        }
    }
    out.flush()
}

fn text_of(line: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(line).ok()?;
    Some(value.get("text")?.as_str()?.to_owned())
}
