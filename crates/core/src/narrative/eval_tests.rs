//! Evaluation on generated streams (`tidewatch-gen`): planted copy-paste
//! campaigns end up in one narrative, organic posts stay out of them, and
//! posts placed together by text agree with exact Jaccard similarity.
//!
//! Run with `--nocapture` to see the figures.

use super::*;
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

/// Exact Jaccard similarity of two sorted, deduplicated sets.
fn jaccard(a: &[u64], b: &[u64]) -> f64 {
    let (mut i, mut j, mut both) = (0, 0, 0usize);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                both += 1;
                i += 1;
                j += 1;
            }
        }
    }
    let union = a.len() + b.len() - both;
    if union == 0 {
        1.0
    } else {
        both as f64 / union as f64
    }
}

/// Same-narrative pairs drawn uniformly among all pairs of `clusters`
/// (each a list of shingle sets).
struct Agreement {
    /// All pairs in the clusters.
    pairs: usize,
    /// Share of sampled pairs with exact Jaccard ≥ 0.8.
    exact: f64,
    /// Sampled pairs whose MinHash estimate is ≥ 0.8, and the share of
    /// those whose exact Jaccard is ≥ 0.8 too.
    estimated: usize,
    estimated_agree: f64,
}

fn pair_agreement(clusters: &[Vec<Vec<u64>>], samples: usize, seed: u64) -> Agreement {
    let weights: Vec<u64> = clusters.iter().map(|c| (c.len() * (c.len() - 1) / 2) as u64).collect();
    let total: u64 = weights.iter().sum();
    if total == 0 {
        return Agreement {
            pairs: 0,
            exact: 1.0,
            estimated: 0,
            estimated_agree: 1.0,
        };
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
        let exact = jaccard(&c[i], &c[j]) >= 0.8;
        good += usize::from(exact);
        if minhash::estimate(&minhash::signature(&c[i]), &minhash::signature(&c[j])) >= 0.8 {
            estimated += 1;
            estimated_good += usize::from(exact);
        }
    }
    Agreement {
        pairs: total as usize,
        exact: good as f64 / samples as f64,
        estimated,
        estimated_agree: estimated_good as f64 / estimated.max(1) as f64,
    }
}

#[test]
fn planted_campaigns_form_narratives_and_text_pairs_agree_with_exact_jaccard() {
    let (posts, kinds) = generated(150_000, 3, 11);
    let mut n = Narratives::new(NarrativeConfig::default()).expect("valid");
    let mut tokens = TokenizedText::new();
    let mut shingler = Shingler::new();
    let words = n.config().shingle_words;
    // Per post: its narrative and whether it joined by text (or founded).
    let mut placed: Vec<Option<(u64, bool)>> = Vec::with_capacity(posts.len());
    // Shingle sets of text members, by narrative.
    let mut members: HashMap<u64, Vec<Vec<u64>>> = HashMap::new();
    for p in &posts {
        tokenize(&p.text, &mut tokens);
        let u = n.observe(p, &tokens, String::new);
        placed.push(u.map(|u| (u.narrative.0, !u.by_repost)));
        if let Some(u) = u.filter(|u| !u.by_repost) {
            let set = shingler.shingles(&p.text, &tokens, words).to_vec();
            members.entry(u.narrative.0).or_default().push(set);
        }
    }

    // Each copy-paste campaign: the share of its posts in its main narrative.
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
        assert!(share >= 0.9, "{event}: only {share:.3} in one narrative");
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

    // Pair agreement over every narrative with two or more text members.
    let clusters: Vec<Vec<Vec<u64>>> = members.into_values().filter(|m| m.len() >= 2).collect();
    let organic: Vec<Vec<Vec<u64>>> = clusters
        .iter()
        .filter(|c| c.len() < 60) // campaign narratives hold ≥ 60 posts here
        .cloned()
        .collect();
    let all = pair_agreement(&clusters, 10_000, 1);
    let org = pair_agreement(&organic, 10_000, 2);
    println!("text narratives of ≥ 2 posts: {}", clusters.len());
    for (name, a) in [("all", &all), ("outside campaigns", &org)] {
        println!(
            "{name}: {} pairs; of 10k sampled, {:.1}% have exact Jaccard ≥ 0.8; {} have a MinHash estimate ≥ 0.8, {:.1}% of them exact ≥ 0.8",
            a.pairs,
            a.exact * 100.0,
            a.estimated,
            a.estimated_agree * 100.0
        );
    }
    let s = n.stats();
    println!("{s:?}");
    // Two campaign copies with different edits (a swapped word, another
    // hashtag) sit at Jaccard 10/14 ≈ 0.71, so only about 80-90% of all
    // same-narrative pairs reach 0.8; pairs the MinHash estimate calls
    // near-duplicates (≥ 0.8) agree with the exact value far more often
    // (98% with this seed, 94-100% with others).
    assert!(all.exact >= 0.75, "{}", all.exact);
    assert!(all.estimated_agree >= 0.9, "{}", all.estimated_agree);
    // Organic posts rarely pair up by chance (a founder and one post at
    // Jaccard 0.6-0.8 on a shared topic).
    assert!(org.pairs <= 20, "{}", org.pairs);
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
