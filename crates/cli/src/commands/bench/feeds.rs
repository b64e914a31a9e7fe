//! `tidewatch bench feeds --feeds N`: the match stage alone, N standing
//! queries against generated posts, next to an Aho-Corasick baseline.
//!
//! The idea: realistic feeds are drawn from the generator's own vocabulary
//! (content words by frequency rank, topic terms and hashtags, brand names,
//! other languages), so their match rates look like real monitoring: most
//! feeds match a small fraction of a percent of posts, none matches most of
//! them. Posts are generated and enriched (language, sentiment, entities)
//! before timing; the timed stage starts from a decoded, enriched post and
//! includes tokenisation, which is shared by all feeds.
//!
//! The baseline, in the same run and on the same threads: one Aho-Corasick
//! automaton over every literal string of every feed (each word of each
//! term and phrase, each wildcard's literal prefix), counting the matches
//! in each post's folded text. It answers "which strings occur", not
//! "which feeds match", so it is a floor on the work any matcher must do,
//! not an equivalent.

use aho_corasick::AhoCorasick;
use anyhow::{Context, Result};
use std::collections::BTreeSet;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;
use tidewatch_core::enrich::Enricher;
use tidewatch_core::matcher::{FeedMatcher, FeedSpec, MatchScratch, MatchStats, TermStats};
use tidewatch_core::pseudonym::{Keyring, PseudonymConfig};
use tidewatch_core::query::{Node, Pattern, Query};
use tidewatch_core::redact::PublicAccounts;
use tidewatch_core::text::{tokenize, TokenizedText};
use tidewatch_core::{Post, Timestamp};
use tidewatch_gen::{vocabulary, GenConfig, Generator, Lang, BRANDS, PERENNIAL_HASHTAGS, TOPICS};

/// A small deterministic generator (SplitMix64): the feed set must be the
/// same for a seed whatever `rand`'s version.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }

    fn topic(&mut self) -> &'static tidewatch_gen::TopicDef {
        &TOPICS[self.below(TOPICS.len())]
    }

    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 > 1.0 - p
    }

    /// A rank, log-uniform in `lo..hi`: many mid-frequency words, some
    /// frequent ones, a long tail.
    fn rank(&mut self, lo: usize, hi: usize) -> usize {
        let u = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        let (l, h) = ((lo.max(1)) as f64, hi.max(lo + 1) as f64);
        ((l.ln() + u * (h.ln() - l.ln())).exp() as usize).clamp(lo, hi - 1)
    }
}

/// Quotes a multi-word term as a phrase.
fn term(t: &str) -> String {
    if t.contains(' ') {
        format!("\"{t}\"")
    } else {
        t.to_string()
    }
}

/// A content word of `lang`, the kind a feed would name: not among the 300
/// most frequent words, and not one of the background topics' own words
/// (those are in a large share of posts; topic feeds use them through
/// [`topic_term`]).
fn word(rng: &mut Rng, lang: Lang) -> String {
    let words = &vocabulary(lang).words;
    loop {
        let w = &words[rng.rank(300, words.len())];
        if !is_topic_word(w) {
            return w.clone();
        }
    }
}

fn is_topic_word(w: &str) -> bool {
    TOPICS.iter().any(|t| {
        t.words.contains(&w) || t.hashtags.contains(&w) || t.terms.iter().any(|term| term.split(' ').any(|x| x == w))
    }) || PERENNIAL_HASHTAGS.contains(&w)
        // Every generated link is on an `.example` domain.
        || w == "example"
}

fn topic_term(rng: &mut Rng) -> String {
    let t = rng.topic();
    if rng.chance(0.3) && !t.hashtags.is_empty() {
        format!("#{}", rng.pick(t.hashtags))
    } else {
        term(rng.pick(t.terms))
    }
}

/// `n` feeds `(name, query)`, deterministic for a seed. The mix: single
/// words, phrases, OR-lists of brands and topic terms, AND/NOT
/// combinations, NEAR, wildcards, hashtags, language filters and a few
/// field-only feeds.
pub fn generate_feeds(n: usize, seed: u64) -> Vec<(String, String)> {
    let mut rng = Rng(seed ^ 0x6665_6564_7321);
    let mut out = Vec::with_capacity(n);
    let other_langs = [Lang::De, Lang::Es, Lang::Fr, Lang::Pt, Lang::It, Lang::Ja];
    while out.len() < n {
        let kind = rng.below(100);
        let (label, query) = match kind {
            0..=21 => ("word", word(&mut rng, Lang::En)),
            22..=33 => {
                let q = if rng.chance(0.5) {
                    let t = rng.topic();
                    term(rng.pick(t.terms))
                } else {
                    let slop = rng.below(4);
                    format!("\"{} {}\"~{slop}", word(&mut rng, Lang::En), word(&mut rng, Lang::En))
                };
                ("phrase", q)
            }
            34..=47 => {
                let k = 2 + rng.below(3);
                let items: Vec<String> = (0..k)
                    .map(|_| {
                        if rng.chance(0.7) {
                            term(rng.pick(BRANDS))
                        } else {
                            topic_term(&mut rng)
                        }
                    })
                    .collect();
                ("or-list", items.join(" OR "))
            }
            48..=63 => {
                let q = match rng.below(3) {
                    0 => format!(
                        "{} AND ({} OR {}) -{}",
                        topic_term(&mut rng),
                        word(&mut rng, Lang::En),
                        word(&mut rng, Lang::En),
                        word(&mut rng, Lang::En)
                    ),
                    1 => format!("{} {}", word(&mut rng, Lang::En), word(&mut rng, Lang::En)),
                    _ => format!("({}) NOT {}", topic_term(&mut rng), word(&mut rng, Lang::En)),
                };
                ("and-not", q)
            }
            64..=71 => {
                let d = rng.below(5);
                (
                    "near",
                    format!("{} NEAR/{d} {}", topic_term(&mut rng), word(&mut rng, Lang::En)),
                )
            }
            72..=79 => {
                let w = word(&mut rng, Lang::En);
                let chars: Vec<char> = w.chars().collect();
                if chars.len() < 6 || !w.chars().all(char::is_alphanumeric) {
                    continue;
                }
                let q = if rng.chance(0.75) {
                    let keep = 5 + rng.below(chars.len() - 5);
                    format!("{}*", chars[..keep].iter().collect::<String>())
                } else {
                    let at = 2 + rng.below(chars.len() - 3);
                    let mut c = chars.clone();
                    c[at] = '?';
                    c.iter().collect()
                };
                ("wildcard", q)
            }
            80..=89 => {
                let q = match rng.below(10) {
                    0 => format!("#{}", rng.pick(PERENNIAL_HASHTAGS)),
                    1..=4 => {
                        let tags = rng_topic(&mut rng).hashtags;
                        format!("#{}", rng.pick(tags))
                    }
                    _ => format!("#{}", word(&mut rng, Lang::En)),
                };
                if q == "#" {
                    continue;
                }
                ("hashtag", q)
            }
            90..=97 => {
                let lang = rng.pick(&other_langs[..]);
                let q = format!(
                    "lang:{} AND ({} OR {})",
                    lang.code(),
                    word(&mut rng, lang),
                    word(&mut rng, lang)
                );
                ("lang", q)
            }
            _ => {
                let t = rng_topic(&mut rng);
                let q = match rng.below(3) {
                    0 if !t.domains.is_empty() => format!("domain:{}", rng.pick(t.domains)),
                    1 => format!("lang:{} sentiment:negative is:reply", rng.pick(&other_langs[..]).code()),
                    _ => format!(
                        "lang:{} AND NOT {}",
                        rng.pick(&other_langs[..]).code(),
                        word(&mut rng, Lang::En)
                    ),
                };
                ("fields", q)
            }
        };
        if Query::parse(&query).is_err() {
            continue;
        }
        out.push((format!("{label}-{}", out.len()), query));
    }
    out
}

fn rng_topic(rng: &mut Rng) -> &'static tidewatch_gen::TopicDef {
    // Topics always have hashtags; fall back to the first topic otherwise.
    let t = rng.topic();
    if t.hashtags.is_empty() {
        &TOPICS[0]
    } else {
        t
    }
}

/// Every literal string of a query tree, for the baseline automaton.
fn literals(node: &Node, out: &mut BTreeSet<String>) {
    let mut add = |p: &Pattern| {
        let lit = p.literal_prefix();
        if !lit.is_empty() {
            out.insert(lit.to_string());
        }
    };
    match node {
        Node::Term(p) => add(p),
        Node::Phrase { words, .. } => words.iter().for_each(add),
        Node::Near { left, right, .. } => {
            literals(left, out);
            literals(right, out);
        }
        Node::Field(_) => {}
        Node::Not(c) => literals(c, out),
        Node::And(cs) | Node::Or(cs) => cs.iter().for_each(|c| literals(c, out)),
    }
}

/// Process CPU time (user + system) in seconds, from `/proc/self/stat`
/// (Linux, 100 ticks a second); `None` elsewhere.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// What one timed pass over the posts found.
#[derive(Default)]
struct Pass {
    matches: u64,
    posts_with_match: u64,
    stats: MatchStats,
}

fn match_pass(matcher: &FeedMatcher, posts: &[Post], threads: usize) -> Pass {
    let chunk = posts.len().div_ceil(threads.max(1)).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = posts
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || {
                    let mut scratch = MatchScratch::new();
                    let mut tokens = TokenizedText::new();
                    let mut out = Vec::new();
                    let mut pass = Pass::default();
                    for p in part {
                        tokenize(&p.text, &mut tokens);
                        matcher.match_post(p, &tokens, &mut scratch, &mut out);
                        pass.matches += out.len() as u64;
                        pass.posts_with_match += !out.is_empty() as u64;
                    }
                    pass.stats = scratch.take_stats();
                    pass
                })
            })
            .collect();
        let mut total = Pass::default();
        for h in handles {
            if let Ok(p) = h.join() {
                total.matches += p.matches;
                total.posts_with_match += p.posts_with_match;
                total.stats.merge(&p.stats);
            }
        }
        total
    })
}

fn baseline_pass(ac: &AhoCorasick, folded: &[String], threads: usize) -> u64 {
    let chunk = folded.len().div_ceil(threads.max(1)).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = folded
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || {
                    part.iter()
                        .map(|t| ac.find_iter(t.as_str()).count() as u64)
                        .sum::<u64>()
                })
            })
            .collect();
        handles.into_iter().filter_map(|h| h.join().ok()).sum()
    })
}

/// Times `f` over `rounds` runs; returns the best wall time, the CPU time
/// of that run, and its result.
fn best_of<T>(rounds: usize, mut f: impl FnMut() -> T) -> (f64, Option<f64>, T) {
    let mut timed = || {
        let cpu0 = cpu_seconds();
        let start = Instant::now();
        let r = f();
        let wall = start.elapsed().as_secs_f64();
        (wall, cpu0.and_then(|c0| cpu_seconds().map(|c1| c1 - c0)), r)
    };
    let mut best = timed();
    for _ in 1..rounds {
        let run = timed();
        if run.0 < best.0 {
            best = run;
        }
    }
    best
}

pub fn bench_feeds(feeds: usize, posts: u64, threads: usize, seed: u64, rounds: usize) -> Result<ExitCode> {
    // Untimed preparation: posts generated and enriched.
    let mut enricher = Enricher::new(
        Arc::new(Keyring::new(PseudonymConfig::default())),
        Arc::new(PublicAccounts::default()),
        Timestamp(0),
    );
    let mut all: Vec<Post> = Generator::new(&GenConfig {
        posts,
        days: 1,
        seed,
        ..Default::default()
    })
    .collect();
    for p in &mut all {
        enricher.enrich(p);
    }
    let mut tokens = TokenizedText::new();
    let folded: Vec<String> = all
        .iter()
        .map(|p| {
            tokenize(&p.text, &mut tokens);
            tokens.folded().to_string()
        })
        .collect();
    let specs: Vec<FeedSpec> = generate_feeds(feeds, seed)
        .into_iter()
        .enumerate()
        .map(|(i, (name, q))| {
            let query = Query::parse(&q).with_context(|| format!("generated query {q:?}"))?;
            Ok(FeedSpec {
                id: i as u32,
                name,
                query,
            })
        })
        .collect::<Result<_>>()?;

    // Rarity from a sample of posts (a running system would use recent
    // posts), then the build, timed.
    let stats_start = Instant::now();
    let sample: Vec<TokenizedText> = all
        .iter()
        .take(5000)
        .map(|p| {
            let mut t = TokenizedText::new();
            tokenize(&p.text, &mut t);
            t
        })
        .collect();
    let term_stats = TermStats::from_sample(sample.iter());
    let stats_s = stats_start.elapsed().as_secs_f64();
    let mut lits = BTreeSet::new();
    for f in &specs {
        literals(f.query.root(), &mut lits);
    }
    let distinct = specs
        .iter()
        .map(|f| &f.query)
        .collect::<std::collections::HashSet<_>>()
        .len();
    let build_start = Instant::now();
    let matcher = FeedMatcher::build_with(specs, &term_stats);
    let build_s = build_start.elapsed().as_secs_f64();
    let (always, gated) = matcher.unanchored_counts();

    let (wall, cpu, pass) = best_of(rounds, || match_pass(&matcher, &all, threads));
    let n = all.len() as f64;
    let rate = n / wall;
    let candidates: u64 = pass.stats.feeds.values().map(|s| s.candidates).sum();
    let slowest: Vec<serde_json::Value> = pass
        .stats
        .slowest(3)
        .into_iter()
        .map(|(id, s)| {
            let name = matcher.feeds().find(|&(i, _)| i == id).map_or("", |(_, n)| n);
            serde_json::json!({"feed": name, "candidates": s.candidates, "mean_verify_ns": s.mean_verify_nanos().round()})
        })
        .collect();

    // Match rates per kind of feed: (feeds, matches, highest feed rate).
    let mut kinds: std::collections::BTreeMap<&str, (u64, u64, f64)> = Default::default();
    for (id, name) in matcher.feeds() {
        let kind = name.rsplit_once('-').map_or(name, |(k, _)| k);
        let matched = pass.stats.feeds.get(&id).map_or(0, |s| s.matched);
        let e = kinds.entry(kind).or_default();
        e.0 += 1;
        e.1 += matched;
        e.2 = e.2.max(matched as f64 / n);
    }
    let by_kind: serde_json::Map<String, serde_json::Value> = kinds
        .into_iter()
        .map(|(k, (feeds, matches, max))| {
            let mean = matches as f64 / (feeds as f64 * n);
            (
                k.to_string(),
                serde_json::json!({"feeds": feeds, "mean_rate": mean, "max_rate": max}),
            )
        })
        .collect();

    let ac_start = Instant::now();
    let ac = AhoCorasick::new(lits.iter()).context("building the baseline automaton")?;
    let ac_build_s = ac_start.elapsed().as_secs_f64();
    let (bwall, bcpu, bmatches) = best_of(rounds, || baseline_pass(&ac, &folded, threads));
    let brate = n / bwall;

    println!(
        "{}",
        serde_json::json!({
            "bench": "feeds",
            "feeds": feeds,
            "distinct_queries": distinct,
            "posts": all.len(),
            "threads": threads,
            "rounds": rounds,
            "includes_tokenize": true,
            "posts_per_s": rate.round(),
            "seconds": wall,
            "cpu_s": cpu,
            // Throughput per CPU-second of the timed pass (the machine is
            // shared: wall time includes other processes' time slices).
            "posts_per_cpu_s": cpu.map(|c| (n / c).round()),
            "matcher_bytes": matcher.memory_bytes(),
            "build_s": build_s,
            "term_stats_s": stats_s,
            "match_rate": pass.matches as f64 / (n * feeds.max(1) as f64),
            "posts_with_match_share": pass.posts_with_match as f64 / n,
            "matches_per_post": pass.matches as f64 / n,
            "candidates_per_post": candidates as f64 / n,
            "unanchored_always_queries": always,
            "direct_queries": matcher.direct_count(),
            "unanchored_gated_queries": gated,
            "slowest_feeds": slowest,
            "match_rate_by_kind": by_kind,
            "baseline": "one Aho-Corasick automaton over every feed's literal strings, counting matches in each post's folded text (no tokenisation)",
            "baseline_patterns": lits.len(),
            "baseline_build_s": ac_build_s,
            "baseline_matches": bmatches,
            "baseline_posts_per_s": brate.round(),
            "baseline_seconds": bwall,
            "baseline_cpu_s": bcpu,
            "baseline_posts_per_cpu_s": bcpu.map(|c| (n / c).round()),
            "ratio": rate / brate,
        })
    );
    Ok(ExitCode::SUCCESS)
}
