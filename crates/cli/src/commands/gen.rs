//! `tidewatch gen`: a deterministic, realistic post stream with planted,
//! documented events (see the `tidewatch-gen` crate doc for what is planted).

use anyhow::{Context, Result};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use tidewatch_core::Timestamp;
use tidewatch_gen::{GenConfig, Generator};

#[derive(clap::Args)]
pub struct Args {
    /// Exactly this many posts, planted ones included.
    #[arg(long)]
    pub posts: u64,
    /// Simulated span in days; the number of planted events grows with it.
    #[arg(long, default_value_t = 1)]
    pub days: u32,
    /// Random seed: the same seed gives the same bytes.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// First instant of the stream (RFC 3339); default 2026-03-02T00:00:00Z.
    #[arg(long)]
    pub start: Option<String>,
    /// Generate the organic background only, without planted events.
    #[arg(long)]
    pub no_planted: bool,
    /// Output file of canonical JSON Lines (`-` for standard output).
    #[arg(long)]
    pub out: PathBuf,
    /// Where to write the planted events as JSON.
    #[arg(long)]
    pub truth: Option<PathBuf>,
}

pub fn config(args: &Args) -> Result<GenConfig> {
    let mut cfg = GenConfig {
        posts: args.posts,
        days: args.days.max(1),
        seed: args.seed,
        planted: !args.no_planted,
        ..Default::default()
    };
    if let Some(s) = &args.start {
        cfg.start = Timestamp::parse(s).with_context(|| format!("--start {s:?}"))?;
    }
    Ok(cfg)
}

/// Writes the stream as canonical JSON Lines; returns the number of posts.
pub fn write_stream(gen: Generator, out: &mut dyn Write) -> std::io::Result<u64> {
    let mut buf = Vec::with_capacity(1 << 20);
    let mut n = 0;
    for post in gen {
        post.write_json(&mut buf);
        n += 1;
        if buf.len() >= 1 << 20 {
            out.write_all(&buf)?;
            buf.clear();
        }
    }
    out.write_all(&buf)?;
    out.flush()?;
    Ok(n)
}

pub fn run(args: Args) -> Result<ExitCode> {
    let cfg = config(&args)?;
    let gen = Generator::new(&cfg);
    if let Some(path) = &args.truth {
        let f = File::create(path).with_context(|| format!("creating {}", path.display()))?;
        serde_json::to_writer_pretty(BufWriter::new(f), &gen.truth())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let start = std::time::Instant::now();
    let n = if args.out.as_os_str() == "-" {
        write_stream(gen, &mut std::io::stdout().lock())
    } else {
        let f = File::create(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
        write_stream(gen, &mut BufWriter::new(f))
    }
    .with_context(|| format!("writing {}", args.out.display()))?;
    let secs = start.elapsed().as_secs_f64().max(1e-9);
    eprintln!(
        "generated {n} posts over {} day(s) in {secs:.2} s ({:.0} posts/s)",
        cfg.days,
        n as f64 / secs
    );
    Ok(ExitCode::SUCCESS)
}
