//! Tests of the whole stream: determinism, counts, order, rhythm, mix, and
//! the planted events exactly as the truth file documents them.

use super::*;
use std::collections::{BTreeMap, BTreeSet};

fn run(posts: u64, days: u32, seed: u64, planted: bool) -> (Truth, Vec<Post>) {
    let gen = Generator::new(&GenConfig {
        posts,
        days,
        seed,
        planted,
        ..GenConfig::default()
    });
    let truth = gen.truth();
    (truth, gen.collect())
}

fn bytes(posts: &[Post]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in posts {
        p.write_json(&mut out);
    }
    out
}

fn ms(p: &Post) -> i64 {
    p.created_at.map_or(i64::MIN, |t| t.0)
}

#[test]
fn same_seed_same_bytes_and_other_seeds_differ() {
    let (ta, a) = run(30_000, 2, 11, true);
    let (tb, b) = run(30_000, 2, 11, true);
    let (_, c) = run(30_000, 2, 12, true);
    assert_eq!(bytes(&a), bytes(&b));
    assert_eq!(serde_json::to_string(&ta).unwrap(), serde_json::to_string(&tb).unwrap());
    assert_ne!(bytes(&a), bytes(&c));
}

#[test]
fn exact_count_sorted_times_unique_ids_inside_the_span() {
    for (posts, days, planted) in [
        (0, 1, true),
        (1, 1, true),
        (10, 1, true),
        (1_000, 1, true),
        (25_000, 3, true),
        (25_000, 2, false),
    ] {
        let (truth, all) = run(posts, days, 5, planted);
        assert_eq!(all.len() as u64, posts, "{posts} {days} {planted}");
        assert_eq!(truth.organic_posts + truth.planted_posts, posts);
        assert!(all.windows(2).all(|w| ms(&w[0]) <= ms(&w[1])), "unsorted at {posts}");
        let ids: BTreeSet<&str> = all.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids.len(), all.len(), "duplicate ids");
        assert!(all.iter().all(|p| truth.start.0 <= ms(p) && ms(p) < truth.end.0));
        assert!(all
            .iter()
            .all(|p| p.source == "gen" && p.author.is_some() && p.url.is_some()));
        let planted_seen = all.iter().filter(|p| p.labels.has("event")).count() as u64;
        assert_eq!(planted_seen, truth.planted_posts);
        assert!(truth.planted_posts * 2 <= posts.max(1));
    }
}

#[test]
fn size_hint_is_exact() {
    let mut gen = Generator::new(&GenConfig {
        posts: 5_000,
        seed: 1,
        ..GenConfig::default()
    });
    assert_eq!(gen.size_hint(), (5_000, Some(5_000)));
    for _ in 0..1234 {
        gen.next();
    }
    assert_eq!(gen.size_hint(), (3_766, Some(3_766)));
}

#[test]
fn replies_and_reposts_point_at_earlier_posts_of_the_same_platform() {
    let (_, all) = run(40_000, 1, 3, true);
    let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
    let (mut replies, mut reposts) = (0, 0);
    for p in &all {
        for target in [&p.reply_to, &p.repost_of].into_iter().flatten() {
            assert_eq!(seen.get(target.as_str()), Some(&p.platform.as_str()), "{target}");
        }
        replies += p.reply_to.is_some() as u32;
        reposts += p.repost_of.is_some() as u32;
        seen.insert(&p.id, &p.platform);
    }
    let n = all.len() as f64;
    assert!((0.09..0.14).contains(&(replies as f64 / n)), "replies {replies}");
    assert!((0.10..0.20).contains(&(reposts as f64 / n)), "reposts {reposts}");
}

#[test]
fn organic_cascades_spread_over_hours_among_many_accounts() {
    let (_, all) = run(200_000, 1, 9, false);
    let mut by_target: BTreeMap<&str, (BTreeSet<&str>, i64, i64)> = BTreeMap::new();
    for p in &all {
        if let Some(t) = &p.repost_of {
            let e = by_target.entry(t).or_insert((BTreeSet::new(), i64::MAX, i64::MIN));
            e.0.insert(p.author.as_deref().unwrap_or(""));
            e.1 = e.1.min(ms(p));
            e.2 = e.2.max(ms(p));
        }
    }
    let big: Vec<_> = by_target.values().filter(|(a, _, _)| a.len() >= 50).collect();
    assert!(!big.is_empty(), "no viral post");
    assert!(big.iter().any(|(_, s, e)| e - s >= 2 * Timestamp::HOUR));
    // Heavy tail: most cascades are small.
    let small = by_target.values().filter(|(a, _, _)| a.len() < 20).count();
    assert!(small * 2 > by_target.len());
}

#[test]
fn hourly_counts_follow_the_rhythm() {
    let posts = 240_000u64;
    let (truth, all) = run(posts, 1, 21, false);
    assert!(truth.events.is_empty() && truth.planted_posts == 0);
    let mut per_hour = [0u64; 24];
    for p in &all {
        per_hour[(ms(p).rem_euclid(Timestamp::DAY) / Timestamp::HOUR) as usize] += 1;
    }
    let mean = posts as f64 / 24.0;
    for (h, &c) in per_hour.iter().enumerate() {
        let want = rhythm_hour_mean(truth.start.0 + h as i64 * Timestamp::HOUR);
        let got = c as f64 / mean;
        assert!((got - want).abs() / want < 0.01, "hour {h}: {got} vs {want}");
    }
    assert!(per_hour[4] * 4 < per_hour[20], "{per_hour:?}");
}

/// Mean of [`rhythm`] over an hour, relative to the day's mean.
fn rhythm_hour_mean(h0: i64) -> f64 {
    let day0 = h0.div_euclid(Timestamp::DAY) * Timestamp::DAY;
    let at = |t: i64| rhythm(Timestamp(t));
    let day: f64 = (0..1440)
        .map(|m| at(day0 + m * Timestamp::MINUTE + 30_000))
        .sum::<f64>()
        / 1440.0;
    let hour: f64 = (0..60).map(|m| at(h0 + m * Timestamp::MINUTE + 30_000)).sum::<f64>() / 60.0;
    hour / day
}

#[test]
fn ten_percent_non_english_and_ten_percent_untagged() {
    let (_, all) = run(100_000, 1, 8, true);
    let organic: Vec<&Post> = all.iter().filter(|p| p.repost_of.is_none()).collect();
    let n = organic.len() as f64;
    let untagged = organic.iter().filter(|p| p.lang.is_none()).count() as f64 / n;
    assert!((0.09..0.11).contains(&untagged), "{untagged}");
    let tagged: Vec<&&Post> = organic.iter().filter(|p| p.lang.is_some()).collect();
    let non_en = tagged.iter().filter(|p| p.lang.as_deref() != Some("en")).count() as f64 / tagged.len() as f64;
    assert!((0.085..0.115).contains(&non_en), "{non_en}");
    let cjk = tagged
        .iter()
        .filter(|p| matches!(p.lang.as_deref(), Some("ja" | "zh")))
        .count();
    assert!(cjk > 1000, "{cjk}");
    let ja = tagged.iter().find(|p| p.lang.as_deref() == Some("ja")).unwrap();
    assert!(
        ja.text
            .chars()
            .any(|c| ('\u{3040}'..='\u{30ff}').contains(&c) || ('\u{4e00}'..='\u{9fff}').contains(&c)),
        "{}",
        ja.text
    );
}

#[test]
fn english_tokens_are_zipfian_with_stop_words_on_top() {
    let (_, all) = run(60_000, 1, 4, false);
    let mut freq: BTreeMap<String, u64> = BTreeMap::new();
    for p in all
        .iter()
        .filter(|p| p.lang.as_deref() == Some("en") && p.repost_of.is_none())
    {
        for w in p.text.split_whitespace() {
            let w = w.trim_matches(|c: char| !c.is_alphanumeric()).to_lowercase();
            if !w.is_empty() && !p.text.contains(&format!("#{w}")) {
                *freq.entry(w).or_default() += 1;
            }
        }
    }
    let mut ranked: Vec<(String, u64)> = freq.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let stops = &vocabulary(Lang::En).stop_words;
    for (w, _) in &ranked[..10] {
        assert!(stops.contains(&w.as_str()), "{w} in the top 10");
    }
    // Slope of log frequency against log rank, ranks 30..1000: near -1.2,
    // the exponent of the word distribution.
    let pts: Vec<(f64, f64)> = (30..1000)
        .map(|r| (((r + 1) as f64).ln(), (ranked[r].1 as f64).ln()))
        .collect();
    let n = pts.len() as f64;
    let (mx, my) = (
        pts.iter().map(|p| p.0).sum::<f64>() / n,
        pts.iter().map(|p| p.1).sum::<f64>() / n,
    );
    let slope =
        pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum::<f64>() / pts.iter().map(|p| (p.0 - mx).powi(2)).sum::<f64>();
    assert!((-1.5..-0.9).contains(&slope), "slope {slope}");
}

#[test]
fn texts_exercise_redaction() {
    let (_, all) = run(100_000, 1, 6, false);
    let has = |f: &dyn Fn(&str) -> bool| all.iter().filter(|p| f(&p.text)).count();
    assert!(has(&|t| t.contains("@example.org")) > 100);
    assert!(has(&|t| t.contains("+1 555-01") || t.contains("+44 20 7946")) > 100);
    assert!(has(&|t| t.contains("?utm_source=")) > 500);
    assert!(has(&|t| t.contains(" @") || t.starts_with('@')) > 10_000);
}

fn by_event<'a>(all: &'a [Post], id: &str) -> Vec<&'a Post> {
    all.iter()
        .filter(|p| p.labels.get_str("event").as_deref() == Some(id))
        .collect()
}

#[test]
fn a_planted_week_has_everything_the_truth_says() {
    let (truth, all) = run(400_000, 7, 42, true);
    let count = |k: EventKind| truth.events.iter().filter(|e| e.kind == k).count();
    assert!(count(EventKind::Burst) >= 21, "{}", count(EventKind::Burst));
    assert_eq!(count(EventKind::EmergingTopic), 7);
    assert_eq!(count(EventKind::CopyPaste), 7);
    assert_eq!(count(EventKind::CoLink), 7);
    assert_eq!(count(EventKind::RepostRing), 7);
    let by_id: BTreeMap<&str, &Post> = all.iter().map(|p| (p.id.as_str(), p)).collect();

    for e in &truth.events {
        let posts = by_event(&all, &e.id);
        assert_eq!(posts.len() as u64, e.size, "{}", e.id);
        assert_eq!(e.post_ids.len() as u64, e.size, "{}", e.id);
        for id in &e.post_ids {
            let p = by_id[id.as_str()];
            assert_eq!(p.labels.get_str("event").as_deref(), Some(e.id.as_str()));
            assert!(e.start.0 <= ms(p) && ms(p) < e.end.0, "{} outside {}", p.id, e.id);
        }
        let accounts: BTreeSet<&str> = posts.iter().filter_map(|p| p.author.as_deref()).collect();
        match e.kind {
            EventKind::Burst => {
                let mult = e.params["multiplier"].as_f64().unwrap();
                assert!((4.0..=40.0).contains(&mult));
                let mins = e.params["duration_minutes"].as_i64().unwrap();
                assert!((10..=60).contains(&mins));
                // Planted volume is (mult - 1) × baseline × 2/3 (the decay).
                let base = e.params["baseline_posts"].as_f64().unwrap();
                let want = (mult - 1.0) * base * 2.0 / 3.0;
                assert!(
                    (e.size as f64 - want).abs() <= want * 0.05 + 2.0,
                    "{} {} {}",
                    e.id,
                    e.size,
                    want
                );
                // Sharp onset: the first sixth holds more than the last sixth.
                let len = e.end.0 - e.start.0;
                let first = posts.iter().filter(|p| ms(p) < e.start.0 + len / 6).count();
                let last = posts.iter().filter(|p| ms(p) >= e.end.0 - len / 6).count();
                assert!(first > last || e.size < 60, "{} {first} {last}", e.id);
                let topic = TOPICS.iter().find(|t| Some(t.name) == e.topic.as_deref()).unwrap();
                for p in &posts {
                    let lower = p.text.to_lowercase();
                    assert!(
                        topic.terms.iter().any(|t| lower.contains(&t.to_lowercase()))
                            || topic.hashtags.iter().any(|h| lower.contains(&format!("#{h}"))),
                        "{}",
                        p.text
                    );
                }
            }
            EventKind::EmergingTopic => {
                let name = &e.terms[0];
                let before = all
                    .iter()
                    .filter(|p| ms(p) < e.start.0 && p.text.to_lowercase().contains(name.as_str()))
                    .count();
                assert_eq!(before, 0, "{name} before its start");
                let in_15 = posts
                    .iter()
                    .filter(|p| ms(p) < e.start.0 + 15 * Timestamp::MINUTE)
                    .count();
                let hour_3 = posts
                    .iter()
                    .filter(|p| {
                        ms(p) >= e.start.0 + 3 * Timestamp::HOUR
                            && ms(p) < e.start.0 + 3 * Timestamp::HOUR + 15 * Timestamp::MINUTE
                    })
                    .count();
                assert!(in_15 >= 1 && hour_3 > in_15, "{} {in_15} {hour_3}", e.id);
            }
            EventKind::CopyPaste => {
                assert!(accounts.len() >= 20 && accounts.len() == e.accounts.len());
                for w in &e.windows {
                    assert!(w.end.0 - w.start.0 <= 6 * Timestamp::MINUTE);
                    let in_wave: Vec<&&Post> = posts.iter().filter(|p| w.start.0 <= ms(p) && ms(p) < w.end.0).collect();
                    assert_eq!(in_wave.len(), e.accounts.len());
                    // Near-identical: most share the template's first words.
                    let template = e.params["template"].as_str().unwrap();
                    let head: String = template.split(' ').take(1).collect();
                    assert!(in_wave.iter().filter(|p| p.text.starts_with(&head)).count() * 10 >= in_wave.len() * 9);
                    assert!(in_wave.iter().filter(|p| p.text == template).count() >= 2, "{template}");
                }
            }
            EventKind::CoLink => {
                assert!(accounts.len() >= 10);
                for (w, link) in e.windows.iter().zip(&e.links) {
                    assert!(w.end.0 - w.start.0 <= 20_000);
                    let sharing: BTreeSet<&str> = posts
                        .iter()
                        .filter(|p| p.text.contains(link.as_str()) && w.start.0 <= ms(p) && ms(p) < w.end.0)
                        .filter_map(|p| p.author.as_deref())
                        .collect();
                    assert_eq!(sharing.len(), e.accounts.len());
                }
                let texts: BTreeSet<&str> = posts.iter().map(|p| p.text.as_str()).collect();
                assert!(texts.len() * 10 >= posts.len() * 9, "texts should differ");
            }
            EventKind::RepostRing => {
                assert!(accounts.len() >= 10);
                let reposts: Vec<&&Post> = posts.iter().filter(|p| p.repost_of.is_some()).collect();
                assert_eq!(reposts.len(), e.windows.len() * (e.accounts.len() - 1));
                for r in reposts {
                    let orig = by_id[r.repost_of.as_deref().unwrap()];
                    assert_eq!(orig.labels.get_str("event").as_deref(), Some(e.id.as_str()));
                    assert!(ms(r) - ms(orig) <= 45_000 && ms(r) > ms(orig));
                }
            }
        }
    }
    // Planted accounts are dedicated: they never post organically.
    let planted_accounts: BTreeSet<&str> = truth
        .events
        .iter()
        .flat_map(|e| e.accounts.iter().map(|s| s.as_str()))
        .collect();
    assert!(all
        .iter()
        .filter(|p| !p.labels.has("event"))
        .all(|p| !planted_accounts.contains(p.author.as_deref().unwrap_or(""))));
    // Same-topic bursts never overlap.
    let bursts: Vec<&PlantedEvent> = truth.events.iter().filter(|e| e.kind == EventKind::Burst).collect();
    for a in &bursts {
        for b in &bursts {
            if a.id != b.id && a.topic == b.topic {
                assert!(a.end.0 <= b.start.0 || b.end.0 <= a.start.0);
            }
        }
    }
}

#[test]
fn truth_serialises_with_documented_fields() {
    let gen = Generator::new(&GenConfig {
        posts: 20_000,
        seed: 1,
        ..GenConfig::default()
    });
    let v = serde_json::to_value(gen.truth()).unwrap();
    assert_eq!(
        v["events"][0]["post_ids"].as_array().unwrap().len() as u64,
        v["events"][0]["size"].as_u64().unwrap()
    );
    assert_eq!(v["start"], "2026-03-02T00:00:00Z");
    assert_eq!(v["rhythm_by_hour"].as_array().unwrap().len(), 24);
    let e = &v["events"][0];
    for key in [
        "id", "kind", "start", "end", "terms", "hashtags", "links", "accounts", "size", "params", "post_ids",
    ] {
        assert!(e.get(key).is_some(), "{key}");
    }
    let kinds: BTreeSet<&str> = v["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        BTreeSet::from(["burst", "co_link", "copy_paste", "emerging_topic", "repost_ring"])
    );
}

#[test]
fn a_quiet_week_has_no_topic_volume_outliers() {
    // Counts of each topic's feed (its terms and hashtags) per 10 minutes
    // stay within Poisson noise of the rhythm: organic cascades alone are
    // never a spike.
    let (truth, all) = run(300_000, 7, 13, false);
    let win = 10 * Timestamp::MINUTE;
    let n = (7 * Timestamp::DAY / win) as usize;
    let mut total = vec![0f64; n];
    let mut topic = vec![vec![0f64; n]; TOPICS.len()];
    for p in &all {
        let w = ((ms(p) - truth.start.0) / win) as usize;
        total[w] += 1.0;
        let lower = p.text.to_lowercase();
        for (i, t) in TOPICS.iter().enumerate() {
            if t.terms.iter().any(|x| lower.contains(&x.to_lowercase()))
                || t.hashtags.iter().any(|h| lower.contains(&format!("#{h}")))
            {
                topic[i][w] += 1.0;
            }
        }
    }
    let all_n: f64 = total.iter().sum();
    for (i, series) in topic.iter().enumerate() {
        let share = series.iter().sum::<f64>() / all_n;
        for w in 0..n {
            let expected = share * total[w];
            let z = (series[w] - expected) / expected.sqrt().max(1.0);
            assert!(z < 6.0, "{} window {w}: {} vs {expected:.1}", TOPICS[i].name, series[w]);
        }
    }
}
