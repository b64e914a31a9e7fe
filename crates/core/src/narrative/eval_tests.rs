//! Evaluation on generated streams (`tidewatch-gen`): planted copy-paste
//! campaigns end up in one narrative, organic posts stay out of them, and
//! posts placed together by text agree with exact Jaccard similarity.
//!
//! Run with `--nocapture` to see the figures.

use super::agreement::{Agreement, AgreementMeter};
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

fn event_of(p: &Post) -> Option<String> {
    p.labels.get_str("event")
}

/// Runs `posts` through an [`AgreementMeter`]: the agreement, and each
/// post's narrative and whether it joined by text.
fn agreement(posts: &[Post], samples: usize, seed: u64) -> (Agreement, Vec<Option<(u64, bool)>>) {
    let mut meter = AgreementMeter::new(NarrativeConfig::default()).expect("valid");
    let placed = posts
        .iter()
        .map(|p| meter.observe(p).map(|u| (u.narrative.0, !u.by_repost)))
        .collect();
    (meter.measure(samples, seed), placed)
}

fn print_agreement(name: &str, a: &Agreement) {
    println!(
        "{name}: {} same-narrative text pairs; of 10k sampled, {:.1}% have exact Jaccard ≥ 0.8 \
         ({} have a MinHash estimate ≥ 0.8, {:.1}% of them exact ≥ 0.8); \
         {} pairs within the window at exact ≥ 0.8, {:.1}% of them in one narrative",
        a.pairs,
        a.exact_agreement * 100.0,
        a.estimated,
        a.estimated_agreement * 100.0,
        a.near_pairs,
        a.recall * 100.0
    );
}

#[test]
fn planted_campaigns_form_narratives_and_text_pairs_agree_with_exact_jaccard() {
    let (posts, kinds) = generated(150_000, 3, 11);
    let (all, placed) = agreement(&posts, 10_000, 1);

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
            if event_of(p).as_ref() == Some(event) {
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
    assert!(all.exact_agreement >= 0.95, "{}", all.exact_agreement);
    assert!(all.estimated_agreement >= 0.95, "{}", all.estimated_agreement);
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
        if let Some(u) = n.observe(&p, &tokens, &[], String::new).filter(|u| !u.by_repost) {
            let s = sizes.entry(u.narrative.0).or_default();
            *s += 1;
            largest_text = largest_text.max(*s);
        }
    }
    println!("largest text-joined narrative in the organic background: {largest_text}");
    assert!(largest_text <= 5, "{largest_text}");
}
