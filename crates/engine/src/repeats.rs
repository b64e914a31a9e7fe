//! How much of a feed's volume repeats earlier text.
//!
//! A spike made of copies — near-duplicates of one text, or reposts of one
//! post — is a campaign or a single viral post, not many people writing
//! about something: analysts want to know which before they read on. This
//! module counts, per feed and event-time minute, the posts that joined a
//! narrative that already existed (see `crate::narratives`), and gives an
//! alert's **near-duplicate share**: those posts over all the spike's posts.
//!
//! Counts are kept for a bounded horizon of event time (three hours by
//! default: a spike is explained when it opens, minutes after its onset)
//! and dropped behind it; a share reaching behind the horizon is unknown.

use std::collections::BTreeMap;
use tidewatch_core::Timestamp;

/// Posts that repeated earlier text, by (minute, feed).
#[derive(Debug)]
pub struct RepeatCounts {
    counts: BTreeMap<(i64, u32), u64>,
    /// Minutes of event time kept behind the newest post seen.
    keep_minutes: i64,
    newest_minute: i64,
}

impl Default for RepeatCounts {
    fn default() -> Self {
        RepeatCounts::new(3 * 60)
    }
}

impl RepeatCounts {
    /// Keeps `keep_minutes` of event time behind the newest post.
    pub fn new(keep_minutes: i64) -> RepeatCounts {
        RepeatCounts {
            counts: BTreeMap::new(),
            keep_minutes: keep_minutes.max(1),
            newest_minute: i64::MIN,
        }
    }

    /// Counts one post at `t`, matched by `feeds`, that joined an existing
    /// narrative.
    pub fn repeat(&mut self, t: Timestamp, feeds: &[u32]) {
        let minute = t.0.div_euclid(Timestamp::MINUTE);
        if self.is_behind(minute) {
            return;
        }
        for &f in feeds {
            *self.counts.entry((minute, f)).or_insert(0) += 1;
        }
        if minute > self.newest_minute {
            self.newest_minute = minute;
            let horizon = minute.saturating_sub(self.keep_minutes);
            // Everything before the horizon goes, in one split.
            self.counts = self.counts.split_off(&(horizon + 1, 0));
        }
    }

    /// Repeats of `feed` in the minutes `[from, to)`.
    pub fn count(&self, feed: u32, from: Timestamp, to: Timestamp) -> u64 {
        let (a, b) = (from.0.div_euclid(Timestamp::MINUTE), to.0.div_euclid(Timestamp::MINUTE));
        (a..b).filter_map(|m| self.counts.get(&(m, feed))).sum()
    }

    /// The share of `posts` posts of `feed` in `[from, to)` that repeated
    /// earlier text (`None` without posts, or when `from` is behind the
    /// horizon).
    pub fn share(&self, feed: u32, from: Timestamp, to: Timestamp, posts: u64) -> Option<f64> {
        let behind = self.is_behind(from.0.div_euclid(Timestamp::MINUTE));
        (posts > 0 && !behind).then(|| (self.count(feed, from, to) as f64 / posts as f64).min(1.0))
    }

    /// Whether `minute` is at or behind the horizon.
    fn is_behind(&self, minute: i64) -> bool {
        minute <= self.newest_minute.saturating_sub(self.keep_minutes)
    }

    /// (minute, feed) cells held: bounded by the horizon times the feeds.
    pub fn len(&self) -> usize {
        self.counts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: i64 = Timestamp::MINUTE;

    #[test]
    fn repeats_are_counted_per_feed_and_minute() {
        let mut r = RepeatCounts::default();
        r.repeat(Timestamp(10 * M + 5), &[1, 2]);
        r.repeat(Timestamp(10 * M + 59_999), &[1]);
        r.repeat(Timestamp(11 * M), &[1]);
        assert_eq!(r.count(1, Timestamp(10 * M), Timestamp(11 * M)), 2);
        assert_eq!(r.count(1, Timestamp(10 * M), Timestamp(12 * M)), 3);
        assert_eq!(r.count(2, Timestamp(10 * M), Timestamp(12 * M)), 1);
        assert_eq!(r.count(3, Timestamp(0), Timestamp(100 * M)), 0);
        assert_eq!(r.share(1, Timestamp(10 * M), Timestamp(12 * M), 4), Some(0.75));
        assert_eq!(r.share(1, Timestamp(10 * M), Timestamp(12 * M), 0), None);
    }

    #[test]
    fn minutes_behind_the_horizon_are_dropped() {
        let mut r = RepeatCounts::new(60);
        r.repeat(Timestamp(0), &[1]);
        r.repeat(Timestamp(30 * M), &[1]);
        r.repeat(Timestamp(61 * M), &[1]);
        // Minute 0 is more than 60 minutes behind minute 61.
        assert_eq!(r.count(1, Timestamp(0), Timestamp(100 * M)), 2);
        assert_eq!(r.len(), 2);
        // A post from before the horizon is not counted.
        r.repeat(Timestamp(M), &[1]);
        assert_eq!(r.len(), 2);
        assert_eq!(r.share(1, Timestamp(0), Timestamp(100 * M), 10), None);
        assert_eq!(r.share(1, Timestamp(30 * M), Timestamp(100 * M), 10), Some(0.2));
        for m in 0..10_000 {
            r.repeat(Timestamp(m * M), &[1, 2, 3]);
        }
        assert!(r.len() <= 61 * 3, "{}", r.len());
    }
}
