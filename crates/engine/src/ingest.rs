//! `tidewatch ingest`: decode → pseudonymise → enrich → redact → canonical
//! JSON Lines, in input order, on every core.
//!
//! The calling thread decodes (decoders are stateful: de-duplication, CSV
//! headers); worker threads enrich and serialise batches; the consumer
//! writes them in the order they were read.

use crate::decode::{decode_inputs_expiring_keys, DecodeOptions, Decoded, FileReport, Reject};
use crate::ordered;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tidewatch_core::enrich::Enricher;
use tidewatch_core::pseudonym::Keyring;
use tidewatch_core::redact::PublicAccounts;
use tidewatch_core::{Event, Timestamp};

/// Everything `ingest` needs besides its inputs and outputs.
pub struct IngestConfig {
    pub decode: DecodeOptions,
    /// Worker threads for enrichment (the decoder runs on the caller's).
    pub threads: usize,
    pub keyring: Arc<Keyring>,
    pub public_accounts: Arc<PublicAccounts>,
    /// Chooses the pseudonym epoch of posts without a timestamp.
    pub undated_time: Timestamp,
}

/// Running totals, for a progress display.
#[derive(Clone, Copy, Debug, Default)]
pub struct Progress {
    pub posts: u64,
    pub deletions: u64,
    pub rejected: u64,
    pub elapsed: Duration,
}

/// What an ingest run did.
#[derive(Clone, Debug, Default)]
pub struct IngestSummary {
    pub files: Vec<FileReport>,
    pub posts: u64,
    pub deletions: u64,
    pub rejected: u64,
    pub elapsed: Duration,
}

struct Chunk {
    bytes: Vec<u8>,
    posts: u64,
    deletions: u64,
}

/// Runs the ingest pipeline. `rejects` receives one `file:line: reason` line
/// per bad record; `progress` is called after every written batch.
pub fn run(
    paths: &[PathBuf],
    cfg: &IngestConfig,
    out: &mut (dyn Write + Send),
    rejects: &mut (dyn Write + Send),
    progress: &(dyn Fn(&Progress) + Sync),
) -> io::Result<IngestSummary> {
    pipeline(paths, cfg, Some(out), rejects, progress)
}

/// The same pipeline without the last step, serialisation: what
/// `tidewatch bench ingest` reports as decode + enrich throughput.
pub fn run_without_output(paths: &[PathBuf], cfg: &IngestConfig) -> io::Result<IngestSummary> {
    pipeline(paths, cfg, None, &mut io::sink(), &|_| {})
}

fn pipeline(
    paths: &[PathBuf],
    cfg: &IngestConfig,
    mut out: Option<&mut (dyn Write + Send)>,
    rejects: &mut (dyn Write + Send),
    progress: &(dyn Fn(&Progress) + Sync),
) -> io::Result<IngestSummary> {
    let serialise = out.is_some();
    let start = Instant::now();
    let mut totals = Progress::default();
    let mut reject_err: Option<io::Error> = None;
    let rejected = AtomicU64::new(0);
    let files = ordered::run(
        cfg.threads,
        || {
            let mut enricher = Enricher::new(cfg.keyring.clone(), cfg.public_accounts.clone(), cfg.undated_time);
            move |decoded: Decoded| {
                let mut events = decoded.events;
                let mut chunk = Chunk {
                    bytes: Vec::with_capacity(events.len() * 400),
                    posts: 0,
                    deletions: 0,
                };
                for ev in events.iter_mut() {
                    enricher.finish(ev);
                    match ev {
                        Event::Post(p) => {
                            if serialise {
                                p.write_json(&mut chunk.bytes);
                            }
                            chunk.posts += 1;
                        }
                        Event::Delete(d) => {
                            if serialise {
                                d.write_json(&mut chunk.bytes);
                            }
                            chunk.deletions += 1;
                        }
                    }
                }
                chunk
            }
        },
        |emit| {
            decode_inputs_expiring_keys(paths, &cfg.decode, &cfg.keyring, emit, &mut |r: &Reject| {
                rejected.fetch_add(1, Ordering::Relaxed);
                if reject_err.is_none() {
                    if let Err(e) = writeln!(rejects, "{r}") {
                        reject_err = Some(e);
                    }
                }
            })
        },
        |chunk: Chunk| {
            if let Some(out) = out.as_mut() {
                out.write_all(&chunk.bytes)?;
            }
            totals.posts += chunk.posts;
            totals.deletions += chunk.deletions;
            totals.rejected = rejected.load(Ordering::Relaxed);
            totals.elapsed = start.elapsed();
            progress(&totals);
            Ok::<_, io::Error>(())
        },
    )?;
    if let Some(e) = reject_err {
        return Err(e);
    }
    if let Some(out) = out {
        out.flush()?;
    }
    rejects.flush()?;
    Ok(IngestSummary {
        files,
        posts: totals.posts,
        deletions: totals.deletions,
        rejected: rejected.into_inner(),
        elapsed: start.elapsed(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tidewatch_core::pseudonym::PseudonymConfig;
    use tidewatch_gen::{GenConfig, Generator};

    fn ingest_with(threads: usize, input: &std::path::Path) -> Vec<u8> {
        let cfg = IngestConfig {
            decode: DecodeOptions {
                batch_size: 97,
                ..Default::default()
            },
            threads,
            keyring: Arc::new(Keyring::from_seed(PseudonymConfig::default(), 11)),
            public_accounts: Arc::new(PublicAccounts::default()),
            undated_time: Timestamp(0),
        };
        let mut out = Vec::new();
        let s = run(&[input.to_path_buf()], &cfg, &mut out, &mut io::sink(), &|_| {}).unwrap();
        assert_eq!(s.posts, 5_000);
        out
    }

    #[test]
    fn output_is_in_input_order_whatever_the_thread_count() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.jsonl");
        let mut raw = Vec::new();
        for p in Generator::new(&GenConfig {
            posts: 5_000,
            seed: 3,
            ..Default::default()
        }) {
            p.write_json(&mut raw);
        }
        std::fs::write(&input, &raw).unwrap();
        let one = ingest_with(1, &input);
        let three = ingest_with(3, &input);
        assert!(one == three, "1 and 3 threads differ");
        // Same order as the input: compare event times line by line.
        let times = |b: &[u8]| -> Vec<Option<Timestamp>> {
            b.split(|&c| c == b'\n')
                .filter(|l| !l.is_empty())
                .map(|l| tidewatch_core::Post::from_json(l).unwrap().created_at)
                .collect()
        };
        assert_eq!(times(&one), times(&raw));
    }
}
