use super::*;
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::HashSet;

/// Minute `i` of the test series (2026-03-02T00:00Z plus `i` minutes).
fn at(i: i64) -> Timestamp {
    Timestamp(1_772_409_600_000 + i * Timestamp::MINUTE)
}

/// Minute index of a timestamp relative to `at(0)`.
fn idx(t: Timestamp) -> i64 {
    (t.0 - at(0).0) / Timestamp::MINUTE
}

/// A Poisson draw (Knuth's method; fine for the small rates used here).
fn poisson(rng: &mut StdRng, lambda: f64) -> u64 {
    let limit = (-lambda).exp();
    let mut k = 0;
    let mut p = 1.0;
    loop {
        p *= rng.gen::<f64>();
        if p <= limit {
            return k;
        }
        k += 1;
    }
}

/// Feeds one series to a fresh detector, as the windows would (zero minutes
/// are not reported).
fn run(series: impl IntoIterator<Item = u64>) -> Vec<SpikeEvent> {
    let mut d = SpikeDetector::new(SpikeConfig::default());
    let mut out = Vec::new();
    let mut last = 0;
    for (i, c) in series.into_iter().enumerate() {
        if c > 0 {
            d.observe(7, at(i as i64), c, &mut out);
        }
        last = i as i64;
    }
    d.advance_to(at(last + 1), &mut out);
    out
}

fn opened(events: &[SpikeEvent]) -> Vec<&Spike> {
    events
        .iter()
        .filter_map(|e| match e {
            SpikeEvent::Opened(s) => Some(s),
            SpikeEvent::Closed(_) => None,
        })
        .collect()
}

fn closed(events: &[SpikeEvent]) -> Vec<&Spike> {
    events
        .iter()
        .filter_map(|e| match e {
            SpikeEvent::Closed(s) => Some(s),
            SpikeEvent::Opened(_) => None,
        })
        .collect()
}

#[test]
fn a_step_on_a_flat_poisson_series_is_one_spike() {
    // 6 hours at 10 a minute, then minutes 400..420 at 60 with a peak of
    // 120 at minute 405, then 10 a minute again.
    let mut rng = StdRng::seed_from_u64(1);
    let series: Vec<u64> = (0..600)
        .map(|i| match i {
            405 => 120,
            400..=419 => 60,
            _ => poisson(&mut rng, 10.0),
        })
        .collect();
    let events = run(series);
    assert_eq!(events.len(), 2, "{events:?}");
    let (o, c) = (opened(&events), closed(&events));
    assert_eq!((o.len(), c.len()), (1, 1));
    let (o, c) = (o[0], c[0]);
    assert_eq!(o.id, c.id);
    assert_eq!(o.id, SpikeId::new(7, at(400)));
    assert_eq!((o.feed, idx(o.onset), idx(o.detected_at)), (7, 400, 400));
    assert_eq!(o.end, None);
    assert!(o.log10_p < -20.0, "{}", o.log10_p);
    assert_eq!((idx(c.onset), idx(c.peak), c.peak_count), (400, 405, 120));
    assert_eq!(c.end.map(idx), Some(420));
    assert_eq!(c.posts, 19 * 60 + 120);
    // The expectation stayed near 10 a minute: the spike did not feed the
    // baseline.
    assert!((9.0..12.0).contains(&c.peak_expected), "{}", c.peak_expected);
    assert!((10.0..13.5).contains(&c.magnitude), "{}", c.magnitude);
    assert!((150.0..250.0).contains(&c.expected_posts), "{}", c.expected_posts);
}

#[test]
fn a_daily_rhythm_alone_raises_no_alert() {
    // A week of a strong daily sinusoid (0.3x to 1.7x), at a busy and a
    // sparse rate.
    for (base, seed) in [(20.0, 2), (2.0, 3), (0.3, 4)] {
        let mut rng = StdRng::seed_from_u64(seed);
        let series: Vec<u64> = (0..7 * 1440)
            .map(|i| {
                let phase = 2.0 * std::f64::consts::PI * (i as f64 - 600.0) / 1440.0;
                poisson(&mut rng, base * (1.0 + 0.7 * phase.sin()))
            })
            .collect();
        let events = run(series);
        assert!(events.is_empty(), "base {base}: {events:?}");
    }
}

#[test]
fn small_counts_never_alert() {
    // One post a minute, then three a minute for an hour, then single
    // minutes of 3 and 5 posts after a quiet spell.
    let mut series = vec![1u64; 300];
    series.extend([3u64; 60]);
    series.extend([0u64; 120]);
    series.extend([3, 0, 0, 5, 0, 0, 1, 1]);
    assert!(run(series).is_empty());
}

#[test]
fn a_sustained_new_level_alerts_once_then_becomes_normal() {
    // 10 a minute for 6 hours, then 100 a minute for two days.
    let mut rng = StdRng::seed_from_u64(5);
    let series: Vec<u64> = (0..360 + 2 * 1440)
        .map(|i| poisson(&mut rng, if i < 360 { 10.0 } else { 100.0 }))
        .collect();
    let events = run(series);
    let (o, c) = (opened(&events), closed(&events));
    assert_eq!((o.len(), c.len()), (1, 1), "{events:?}");
    assert_eq!(idx(o[0].onset), 360);
    let end = c[0].end.map(idx).unwrap_or(i64::MAX);
    // Learning resumes after `adapt_hours` (3 h); the level then needs about
    // 80 minutes to reach the 5-minute test's "normal": about 4.5 h in all.
    assert!((360 + 4 * 60..360 + 6 * 60).contains(&end), "closed at minute {end}");
}

#[test]
fn a_feed_that_goes_silent_is_closed_by_time_passing() {
    let mut d = SpikeDetector::new(SpikeConfig::default());
    let mut out = Vec::new();
    for i in 0..300 {
        d.observe(1, at(i), 10, &mut out);
        d.observe(2, at(i), 10, &mut out);
    }
    for i in 300..310 {
        d.observe(1, at(i), 10, &mut out);
        d.observe(2, at(i), 100, &mut out);
    }
    assert_eq!(opened(&out).len(), 1);
    assert_eq!(d.open_spikes().count(), 1);
    // Feed 2 falls silent; feed 1 keeps the clock moving.
    for i in 310..330 {
        d.observe(1, at(i), 10, &mut out);
    }
    let c = closed(&out);
    assert_eq!(c.len(), 1, "{out:?}");
    assert_eq!((c[0].feed, idx(c[0].onset), c[0].end.map(idx)), (2, 300, Some(310)));
    assert_eq!(c[0].posts, 1000);
    assert_eq!(d.open_spikes().count(), 0);
}

#[test]
fn nothing_opens_during_warm_up() {
    let mut series = vec![10u64; 60];
    series.extend([500, 500, 500]);
    series.extend(vec![10u64; 30]);
    assert!(run(series).is_empty());
}

#[test]
fn replays_give_the_same_ids_and_stale_windows_are_ignored() {
    let mut series = vec![10u64; 300];
    series.extend(vec![80u64; 15]);
    series.extend(vec![10u64; 30]);
    assert_eq!(run(series.clone()), run(series));

    let mut d = SpikeDetector::new(SpikeConfig::default());
    let mut out = Vec::new();
    d.observe(3, at(10), 5, &mut out);
    d.observe(3, at(9), 5, &mut out);
    d.observe(3, at(10), 5, &mut out);
    assert_eq!(d.stale(), 2);
    assert_eq!(d.feeds(), 1);
    assert!(out.is_empty());
    assert_eq!(SpikeId(0xab).to_string(), "00000000000000ab");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Arbitrary feeds, jumps in time (forward, backward, huge) and counts:
    /// no panic, every id opened at most once and closed at most once, and
    /// only after it was opened.
    #[test]
    fn never_panics_and_ids_are_unique(
        steps in proptest::collection::vec(
            (0u32..4, prop_oneof![8 => 0i64..3, 1 => -5i64..0, 1 => 0i64..100_000], prop_oneof![
                6 => 0u64..30, 2 => 0u64..5_000, 1 => Just(u64::MAX)
            ]),
            0..2_000,
        ),
        feed_far in any::<u32>(),
    ) {
        let mut d = SpikeDetector::new(SpikeConfig { warmup_minutes: 10, ..SpikeConfig::default() });
        let mut out = Vec::new();
        let mut minute = 0i64;
        for (i, (feed, dt, count)) in steps.into_iter().enumerate() {
            minute += dt;
            let feed = if i % 97 == 0 { feed_far } else { feed };
            d.observe(feed, at(minute), count, &mut out);
        }
        d.advance_to(at(minute + 10_000), &mut out);
        let (mut opens, mut closes) = (HashSet::new(), HashSet::new());
        for e in &out {
            match e {
                SpikeEvent::Opened(s) => prop_assert!(opens.insert(s.id)),
                SpikeEvent::Closed(s) => {
                    prop_assert!(opens.contains(&s.id));
                    prop_assert!(closes.insert(s.id));
                    prop_assert!(s.end.is_some_and(|e| e > s.onset));
                }
            }
        }
    }
}

#[test]
fn the_sink_takes_minute_windows_from_feed_windows() {
    use crate::window::{FeedWindows, WindowConfig, WindowInput};
    let mut windows = FeedWindows::new(WindowConfig::default());
    let mut detector = SpikeDetector::new(SpikeConfig::default());
    let mut events = Vec::new();
    // Feed 0: 10 posts a minute, 100 in minutes 300..310; feed 1: one post
    // every other minute (its silent minutes are zeros). Posts spread over
    // each minute, in time order.
    for minute in 0..400i64 {
        let n = if (300..310).contains(&minute) { 100 } else { 10 };
        for j in 0..n {
            let input = WindowInput {
                created_at: Some(Timestamp(at(minute).0 + j * 59_000 / n)),
                compound: 0.0,
                lang: None,
                hashtags: &[],
                domains: &[],
                terms: &[],
            };
            let feeds: &[u32] = if j == 0 && minute % 2 == 0 { &[0, 1] } else { &[0] };
            let mut sink = SpikeSink {
                detector: &mut detector,
                events: &mut events,
            };
            windows.observe(&input, feeds, &mut sink);
        }
    }
    let (o, c) = (opened(&events), closed(&events));
    assert_eq!((o.len(), c.len()), (1, 1), "{events:?}");
    assert_eq!((o[0].feed, idx(o[0].onset)), (0, 300));
    assert_eq!((idx(c[0].onset), c[0].end.map(idx), c[0].posts), (300, Some(310), 1000));
    assert_eq!(detector.feeds(), 2);
    assert_eq!(detector.stale(), 0);
}
