//! Evaluation of coordinated groups (`tidewatch_core::coordination`) on a
//! generated week with planted copy-paste, co-link and repost-ring
//! campaigns, against the targets: every planted campaign account
//! found in a group (recall 1.0) and precision ≥ 0.95 (organic accounts
//! wrongly grouped).
//!
//! The stream goes through what the pipeline does before coordination:
//! pseudonymisation under a seeded keyring (24 h epochs), entities, the
//! narrative clusterer, then the coordinator, whose groups are collected
//! as each epoch closes. The truth is the campaigns' handles pseudonymised
//! with the same keyring, once per epoch in which the account posted for
//! the campaign (pseudonyms change with the epoch, so a campaign crossing
//! midnight is two sets of accounts). Only this evaluation reads labels.
//!
//! `COORD_EVAL_POSTS=2000000` and `COORD_EVAL_SEED=7` change the posts per
//! week (default 1.5M) and the seed (default 42). Run with
//! `cargo test --release -p tidewatch-gen --test coordination_eval -- --nocapture`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Instant;
use tidewatch_core::coordination::eval::{score, Campaign, CoordinationScore};
use tidewatch_core::coordination::{CoordPost, CoordinationConfig, Coordinator, Group};
use tidewatch_core::entities;
use tidewatch_core::narrative::{NarrativeConfig, Narratives};
use tidewatch_core::pseudonym::{Keyring, PseudonymConfig, Pseudonymiser};
use tidewatch_core::text::{tokenize, TokenizedText};
use tidewatch_core::Timestamp;
use tidewatch_gen::{EventKind, GenConfig, Generator};

const POSTS: u64 = 1_500_000;
const DAYS: u32 = 7;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn kind_name(k: EventKind) -> Option<&'static str> {
    match k {
        EventKind::CopyPaste => Some("copy_paste"),
        EventKind::CoLink => Some("co_link"),
        EventKind::RepostRing => Some("repost_ring"),
        _ => None,
    }
}

/// Runs the pipeline and the coordinator over one generated week.
fn evaluate(posts: u64, seed: u64) -> CoordinationScore {
    let gen = Generator::new(&GenConfig {
        posts,
        days: DAYS,
        seed,
        ..GenConfig::default()
    });
    let truth = gen.truth();
    let keyring = Arc::new(Keyring::from_seed(PseudonymConfig::default(), seed));
    let mut pseudonymiser = Pseudonymiser::new(keyring.clone(), Timestamp(0));
    let mut narratives = Narratives::new(NarrativeConfig::default()).expect("valid narrative config");
    let mut coordinator = Coordinator::new(CoordinationConfig::default()).expect("valid coordination config");
    let mut tokens = TokenizedText::new();
    let mut spans = Vec::new();
    let mut groups: Vec<Group> = Vec::new();
    // Pseudonyms that posted for each campaign (read from labels, only to
    // restrict the truth to the epochs each account was active in).
    let mut active: HashMap<String, BTreeSet<String>> = HashMap::new();
    let started = Instant::now();
    let mut n = 0u64;
    for mut post in gen {
        n += 1;
        pseudonymiser.apply(&mut post);
        entities::scan_into(&post.text, &mut spans);
        post.entities = Some(entities::extract(&post.text, &spans));
        tokenize(&post.text, &mut tokens);
        let update = narratives.observe(&post, &tokens, &[], String::new);
        if let (Some(event), Some(author)) = (post.labels.get_str("event"), &post.author) {
            active.entry(event).or_default().insert(author.clone());
        }
        let narrative = update.filter(|u| !u.by_repost).map(|u| u.narrative);
        if let Some(view) = CoordPost::from_post(&post, narrative) {
            coordinator.observe(&view);
        }
        if let Some((_, g)) = coordinator.close_epoch(false) {
            groups.extend(g);
        }
    }
    if let Some((_, g)) = coordinator.close_epoch(true) {
        groups.extend(g);
    }
    let secs = started.elapsed().as_secs_f64();
    let stats = coordinator.stats();
    println!(
        "{n} posts in {secs:.1} s ({:.0} posts/s, whole pipeline); pairings {:?}, capped {}, evicted keys {}, evicted edges {}",
        n as f64 / secs,
        stats.pairings,
        stats.capped_pairings,
        stats.evicted_keys,
        stats.evicted_edges
    );

    let mut campaigns = Vec::new();
    for ev in &truth.events {
        let (Some(kind), Some(platform)) = (kind_name(ev.kind), ev.platform) else {
            continue;
        };
        let epochs: BTreeSet<i64> = ev
            .windows
            .iter()
            .flat_map(|w| {
                [
                    pseudonymiser.epoch_of(Some(w.start)),
                    pseudonymiser.epoch_of(Some(w.end)),
                ]
            })
            .collect();
        let posted = active.get(&ev.id);
        let mut accounts = Vec::new();
        for h in &ev.accounts {
            for &e in &epochs {
                let p = pseudonymiser.account(platform.name(), h, e);
                if posted.is_some_and(|s| s.contains(&p)) {
                    accounts.push(p);
                }
            }
        }
        campaigns.push(Campaign {
            id: ev.id.clone(),
            kind: kind.to_string(),
            accounts,
        });
    }
    // Every labelled campaign author is a pseudonymised truth handle.
    let truth_set: BTreeSet<&String> = campaigns.iter().flat_map(|c| &c.accounts).collect();
    let labelled: usize = campaigns
        .iter()
        .map(|c| active.get(&c.id).map_or(0, BTreeSet::len))
        .sum();
    assert_eq!(truth_set.len(), labelled, "truth handles and labelled authors disagree");

    let s = score(&campaigns, &groups);
    let mut sizes: BTreeMap<usize, usize> = BTreeMap::new();
    for g in &groups {
        *sizes.entry(g.accounts.len()).or_default() += 1;
    }
    println!("group sizes (size: count): {sizes:?}");
    for g in groups
        .iter()
        .filter(|g| !g.accounts.iter().any(|a| truth_set.contains(a)))
    {
        println!(
            "  false group: {} accounts, types {:?}, density {:.2}, weight {}",
            g.accounts.len(),
            g.types,
            g.density,
            g.total_weight
        );
    }
    s
}

#[test]
fn planted_campaign_accounts_are_grouped_and_organic_ones_are_not() {
    let posts = env_or("COORD_EVAL_POSTS", POSTS);
    let seed = env_or("COORD_EVAL_SEED", 42);
    let s = evaluate(posts, seed);
    println!("seed {seed}, {posts} posts over {DAYS} days:\n{s}");
    assert!(s.campaign_accounts > 0);
    assert_eq!(s.recall, 1.0, "every planted campaign account is in a group");
    assert!(s.precision >= 0.95, "precision {}", s.precision);
}
