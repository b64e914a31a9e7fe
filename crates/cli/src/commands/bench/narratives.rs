//! `tidewatch bench narratives`: what the narrative watch costs per post.
//!
//! Generated posts (entities extracted, as the pipeline hands them to a
//! run's sink) are made in chunks of 100 000 outside the clock; then each
//! chunk goes through [`NarrativeWatch::post`] with the store rows taken
//! every 10 000 posts, as a run's commits would. The baseline is the
//! tokenisation the watch does for each post, timed over the same chunk, so
//! the difference is the clustering itself. One thread: the watch runs in
//! the run's single consumer.

use anyhow::Result;
use std::process::ExitCode;
use std::time::{Duration, Instant};
use tidewatch_core::entities;
use tidewatch_core::text::{tokenize, TokenizedText};
use tidewatch_engine::narratives::{NarrativeWatch, WatchConfig};
use tidewatch_engine::run::MatchedPost;
use tidewatch_gen::{GenConfig, Generator};

const CHUNK: usize = 100_000;

#[derive(clap::Args)]
pub struct Args {
    /// Posts to generate.
    #[arg(long, default_value_t = 1_000_000)]
    pub posts: u64,
    /// Simulated days the posts span.
    #[arg(long, default_value_t = 1)]
    pub days: u32,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

pub fn bench_narratives(args: Args) -> Result<ExitCode> {
    let mut gen = Generator::new(&GenConfig {
        posts: args.posts,
        days: args.days.max(1),
        seed: args.seed,
        ..Default::default()
    });
    let mut watch = NarrativeWatch::new(WatchConfig::default())?;
    let mut tokens = TokenizedText::new();
    let mut spans = Vec::new();
    let (mut watch_time, mut token_time) = (Duration::ZERO, Duration::ZERO);
    let (mut n, mut reported, mut rows) = (0u64, 0usize, 0usize);
    let mut chunk: Vec<MatchedPost> = Vec::with_capacity(CHUNK);
    loop {
        chunk.clear();
        for mut post in gen.by_ref().take(CHUNK) {
            entities::scan_into(&post.text, &mut spans);
            post.entities = Some(entities::extract(&post.text, &spans));
            chunk.push(MatchedPost {
                post,
                feeds: Vec::new(),
                version: 0,
                terms: String::new(),
            });
        }
        if chunk.is_empty() {
            break;
        }
        let start = Instant::now();
        for m in &chunk {
            tokenize(&m.post.text, &mut tokens);
        }
        token_time += start.elapsed();
        let start = Instant::now();
        for m in &chunk {
            reported += watch.post(m).len();
            n += 1;
            if n.is_multiple_of(10_000) {
                rows += watch.take_pending().len();
            }
        }
        watch_time += start.elapsed();
    }
    let start = Instant::now();
    reported += watch.finish().len();
    rows += watch.take_pending().len();
    watch_time += start.elapsed();
    let stats = watch.narratives().stats();
    let per_s = |d: Duration| (n as f64 / d.as_secs_f64().max(1e-9)).round();
    println!(
        "{}",
        serde_json::json!({
            "bench": "narratives",
            "posts": n,
            "narrative_watch_posts_per_s": per_s(watch_time),
            "baseline_tokenize_posts_per_s": per_s(token_time),
            "watch_seconds": (watch_time.as_secs_f64() * 100.0).round() / 100.0,
            "reported": reported,
            "rows_for_store": rows,
            "narratives_live": stats.narratives,
            "joined_by_text": stats.joined_by_text,
            "joined_by_repost": stats.joined_by_repost,
            "evicted_bucket_age_s": stats.evicted_bucket_age_ms as f64 / 1000.0,
            "approx_mib": ((stats.approx_bytes as f64 / 1048576.0) * 10.0).round() / 10.0,
        })
    );
    Ok(ExitCode::SUCCESS)
}
