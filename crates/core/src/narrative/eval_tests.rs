//! Evaluation on generated streams (`tidewatch-gen`): planted copy-paste
//! campaigns end up in one narrative, organic posts stay out of them, and
//! posts placed together by text agree with exact Jaccard similarity.
//!
//! Run with `--nocapture` to see the figures.

use super::*;
use crate::narrative::minhash::jaccard;
use crate::text::tokenize;
use std::collections::HashMap;
use tidewatch_gen::{EventKind, GenConfig, Generator};

/// Generated posts, converted to this crate's `Post` (the generator links
/// the non-test build of the crate, a distinct type), and the event kind of
/// every planted event id.
fn generated(posts: u64, days: u32, seed: u64) -> (Vec<Post>, HashMap<String, EventKind>) {
    let gen = Generator::new(&GenConfig {
        posts,
        days,
        seed,
        ..GenConfig::default()
    });
    let kinds = gen.truth().events.iter().map(|e| (e.id.clone(), e.kind)).collect();
    let mut buf = Vec::new();
    let posts = gen
        .map(|p| {
            buf.clear();
            p.write_json(&mut buf);
            Post::from_json(&buf).expect("canonical JSON round-trips")
        })
        .collect();
    (posts, kinds)
}

fn event_of(p: &Post) -> Option<&str> {
    p.labels.get("event").and_then(|v| v.as_str())
}

/// The exact Jaccard similarity that makes two posts near-duplicates in
/// the criterion, whatever the clusterer's settings.
const BAR: f64 = 0.8;

/// How narratives agree with exact Jaccard similarity over a stream.
struct Agreement {
    /// Same-narrative pairs of posts placed by text (not reposts), over
    /// every narrative with two or more such posts.
    pairs: usize,
    /// Of `samples` pairs drawn uniformly among them, the share with exact
    /// Jaccard ≥ [`BAR`] (precision of the near-duplicate relation).
    precision: f64,
    /// Sampled pairs whose MinHash estimate is ≥ [`BAR`], and the share
    /// of those whose exact Jaccard is too.
    estimated: usize,
    estimated_agree: f64,
    /// Pairs of clusterable text posts at most a window apart with exact
    /// Jaccard ≥ [`BAR`] (all of them, found exactly), and the share
    /// of those in one narrative (recall).
    near_pairs: usize,
    recall: f64,
}

/// One clusterable, non-repost post: its time, shingle set and narrative.
struct Placed {
    t: i64,
    set: Vec<u64>,
    narrative: u64,
}

/// Runs `posts` through a clusterer with `cfg` and measures [`Agreement`].
/// Also returns each post's narrative and whether it joined by text.
fn agreement(
    posts: &[Post],
    cfg: &NarrativeConfig,
    samples: usize,
    seed: u64,
) -> (Agreement, Vec<Option<(u64, bool)>>) {
    let mut n = Narratives::new(cfg.clone()).expect("valid");
    let mut tokens = TokenizedText::new();
    let mut shingler = Shingler::new();
    let mut placed: Vec<Option<(u64, bool)>> = Vec::with_capacity(posts.len());
    let mut texts: Vec<Placed> = Vec::new();
    for p in posts {
        tokenize(&p.text, &mut tokens);
        let u = n.observe(p, &tokens, String::new);
        placed.push(u.map(|u| (u.narrative.0, !u.by_repost)));
        if let Some(u) = u.filter(|u| !u.by_repost) {
            let set = shingler.shingles(&p.text, &tokens, cfg.shingle_words).to_vec();
            let t = p.created_at.map_or(0, |t| t.0);
            texts.push(Placed {
                t,
                set,
                narrative: u.narrative.0,
            });
        }
    }
    let mut members: HashMap<u64, Vec<usize>> = HashMap::new();
    for (i, p) in texts.iter().enumerate() {
        members.entry(p.narrative).or_default().push(i);
    }
    let clusters: Vec<Vec<usize>> = members.into_values().filter(|m| m.len() >= 2).collect();
    let (pairs, precision, estimated, estimated_agree) = sample_pairs(&texts, &clusters, BAR, samples, seed);
    let (near_pairs, together) = exact_near_pairs(&texts, BAR, cfg.window_ms);
    let a = Agreement {
        pairs,
        precision,
        estimated,
        estimated_agree,
        near_pairs,
        recall: together as f64 / near_pairs.max(1) as f64,
    };
    (a, placed)
}

/// Same-narrative pairs drawn uniformly among all pairs of `clusters`
/// (lists of indices into `texts`): (all pairs, share of sampled pairs at
/// exact Jaccard ≥ `t`, sampled pairs with a MinHash estimate ≥ `t`, share
/// of those at exact ≥ `t`).
fn sample_pairs(
    texts: &[Placed],
    clusters: &[Vec<usize>],
    t: f64,
    samples: usize,
    seed: u64,
) -> (usize, f64, usize, f64) {
    let weights: Vec<u64> = clusters.iter().map(|c| (c.len() * (c.len() - 1) / 2) as u64).collect();
    let total: u64 = weights.iter().sum();
    if total == 0 {
        return (0, 1.0, 0, 1.0);
    }
    let mut rng = seed;
    let mut next = move |n: u64| {
        rng = minhash::splitmix(rng);
        rng % n.max(1)
    };
    let (mut good, mut estimated, mut estimated_good) = (0, 0, 0);
    for _ in 0..samples {
        let mut pick = next(total);
        let Some(c) = clusters.iter().zip(&weights).find_map(|(c, &w)| {
            if pick < w {
                Some(c)
            } else {
                pick -= w;
                None
            }
        }) else {
            continue;
        };
        let i = next(c.len() as u64) as usize;
        let mut j = next(c.len() as u64 - 1) as usize;
        if j >= i {
            j += 1;
        }
        let (a, b) = (&texts[c[i]].set, &texts[c[j]].set);
        let exact = jaccard(a, b) >= t;
        good += usize::from(exact);
        if minhash::estimate(&minhash::signature(a), &minhash::signature(b)) >= t {
            estimated += 1;
            estimated_good += usize::from(exact);
        }
    }
    (
        total as usize,
        good as f64 / samples as f64,
        estimated,
        estimated_good as f64 / estimated.max(1) as f64,
    )
}

/// Every pair of `texts` (in time order) at most `window` apart with exact
/// Jaccard ≥ `t`, found by prefix filtering: with the shingles of every
/// set ordered rarest first, two sets at Jaccard ≥ t share one of the
/// first |x| − ⌈t·|x|⌉ + 1 shingles of each. Returns (pairs, pairs in one
/// narrative).
fn exact_near_pairs(texts: &[Placed], t: f64, window: i64) -> (usize, usize) {
    let mut freq: HashMap<u64, u32> = HashMap::new();
    for p in texts {
        for &s in &p.set {
            *freq.entry(s).or_default() += 1;
        }
    }
    let mut index: HashMap<u64, Vec<usize>> = HashMap::new();
    let mut seen: Vec<usize> = vec![usize::MAX; texts.len()];
    let (mut pairs, mut together) = (0, 0);
    let mut order: Vec<u64> = Vec::new();
    for (i, p) in texts.iter().enumerate() {
        order.clear();
        order.extend_from_slice(&p.set);
        order.sort_unstable_by_key(|s| (freq.get(s).copied().unwrap_or(0), *s));
        let need = (t * p.set.len() as f64 - 1e-9).ceil() as usize;
        let prefix = p.set.len() + 1 - need.max(1);
        for s in order.iter().take(prefix) {
            let list = index.entry(*s).or_default();
            for &j in list.iter().rev() {
                let q = &texts[j];
                if p.t - q.t > window {
                    break;
                }
                if seen[j] == i {
                    continue;
                }
                seen[j] = i;
                if jaccard(&p.set, &q.set) >= t {
                    pairs += 1;
                    together += usize::from(p.narrative == q.narrative);
                }
            }
            list.push(i);
        }
    }
    (pairs, together)
}

fn print_agreement(name: &str, a: &Agreement) {
    println!(
        "{name}: {} same-narrative text pairs; of 10k sampled, {:.1}% have exact Jaccard ≥ 0.8 \
         ({} have a MinHash estimate ≥ 0.8, {:.1}% of them exact ≥ 0.8); \
         {} pairs within the window at exact ≥ 0.8, {:.1}% of them in one narrative",
        a.pairs,
        a.precision * 100.0,
        a.estimated,
        a.estimated_agree * 100.0,
        a.near_pairs,
        a.recall * 100.0
    );
}

#[test]
fn planted_campaigns_form_narratives_and_text_pairs_agree_with_exact_jaccard() {
    let (posts, kinds) = generated(150_000, 3, 11);
    let cfg = NarrativeConfig::default();
    let (all, placed) = agreement(&posts, &cfg, 10_000, 1);

    // Each copy-paste campaign: the share of its posts in its main
    // narrative, and whether every narrative holding its posts is its own.
    let mut campaign_narratives = Vec::new();
    let mut campaigns = 0;
    for (event, kind) in &kinds {
        if *kind != EventKind::CopyPaste {
            continue;
        }
        let mut counts: HashMap<u64, usize> = HashMap::new();
        let mut size = 0;
        for (p, at) in posts.iter().zip(&placed) {
            if event_of(p) == Some(event.as_str()) {
                size += 1;
                if let Some((c, _)) = at {
                    *counts.entry(*c).or_default() += 1;
                }
            }
        }
        let (main, in_main) = counts.iter().max_by_key(|(_, &k)| k).map_or((0, 0), |(&c, &k)| (c, k));
        let share = in_main as f64 / size.max(1) as f64;
        println!(
            "{event}: {size} posts, {:.1}% in its main narrative ({} narratives)",
            share * 100.0,
            counts.len()
        );
        assert!(size >= 60, "{event} has {size} posts");
        // About 55-65% of copies carry the message's exact word set, ~20%
        // another trailing hashtag and ~25% another word (each a different
        // one). The last two are at Jaccard ≈ 0.86 with the message but
        // ≈ 0.73 with each other, so the pair check keeps the main
        // narrative to the message and whichever kind of copy came first
        // (59-67% with this seed; the rest are separate narratives).
        assert!(share >= 0.55, "{event}: only {share:.3} in one narrative");
        campaign_narratives.push(main);
        campaigns += 1;
    }
    assert!(campaigns >= 3, "{campaigns} campaigns");

    // Organic posts (no `event` label) in campaign narratives.
    let intruders = posts
        .iter()
        .zip(&placed)
        .filter(|(p, at)| event_of(p).is_none() && at.is_some_and(|(c, _)| campaign_narratives.contains(&c)))
        .count();
    println!("organic posts in campaign narratives: {intruders}");
    assert_eq!(intruders, 0);

    print_agreement("generated, 150k posts", &all);
    // The criterion: ≥ 95% of sampled near-duplicate pairs (same
    // narrative, by text) have exact Jaccard ≥ 0.8. The pair check bounds
    // the dissimilar share by `pair_tolerance` for texts of this length.
    assert!(all.precision >= 0.95, "{}", all.precision);
    assert!(all.estimated_agree >= 0.95, "{}", all.estimated_agree);
    // About half the pairs at exact ≥ 0.8 within the window end up
    // together (52% with this seed): nearly all the others pair a
    // campaign's message with a copy the pair check kept out (a copy with
    // another word is at 0.86 with the message but at 0.73 with the other
    // edited copies already in its narrative).
    assert!(all.recall >= 0.45, "{}", all.recall);
}

#[test]
fn organic_background_alone_forms_no_large_text_narrative() {
    let gen = Generator::new(&GenConfig {
        posts: 60_000,
        seed: 5,
        planted: false,
        ..GenConfig::default()
    });
    let mut n = Narratives::new(NarrativeConfig::default()).expect("valid");
    let mut tokens = TokenizedText::new();
    let mut buf = Vec::new();
    let mut largest_text = 0;
    let mut sizes: HashMap<u64, u64> = HashMap::new();
    for p in gen {
        buf.clear();
        p.write_json(&mut buf);
        let p = Post::from_json(&buf).expect("round-trips");
        tokenize(&p.text, &mut tokens);
        if let Some(u) = n.observe(&p, &tokens, String::new).filter(|u| !u.by_repost) {
            let s = sizes.entry(u.narrative.0).or_default();
            *s += 1;
            largest_text = largest_text.max(*s);
        }
    }
    println!("largest text-joined narrative in the organic background: {largest_text}");
    assert!(largest_text <= 5, "{largest_text}");
}
