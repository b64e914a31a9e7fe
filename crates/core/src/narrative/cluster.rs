//! One narrative's state and its public summary.
//!
//! The idea: most posts found a narrative that never grows, so a
//! narrative of one post is only its signature, times and founder's
//! account, language and feeds; the rest ([`Details`]: distinct-account
//! sketch, language, domain and feed tallies, representative text,
//! activity ring) is allocated when a second post joins.

use super::minhash::sketch_jaccard;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

/// Distinct accounts are counted exactly up to this many, then estimated.
pub const EXACT_ACCOUNTS: usize = 128;
/// HyperLogLog registers (standard error ≈ 1.04/√256 ≈ 6.5%).
const HLL_REGISTERS: usize = 256;
/// Languages and domains tallied per narrative (Misra–Gries summaries:
/// any value with more than 1/(CAP+1) of the posts is kept).
const TALLY_CAP: usize = 8;
/// Languages and domains listed in a summary.
const TALLY_SHOWN: usize = 3;
/// Feeds tallied per narrative: the first this many seen, with their
/// post counts.
pub const MAX_FEEDS: usize = 16;
/// Width of one activity slot, and the number of slots kept (70 minutes).
pub const SLOT_MS: i64 = 5 * 60 * 1000;
const SLOTS: usize = 14;
/// Representative texts are cut to this many characters.
const REPRESENTATIVE_CHARS: usize = 280;
/// Distinct texts (besides the founder's) whose sketches a narrative keeps
/// for the pair check of [`Cluster::dissimilar`]; members with further
/// distinct texts are counted as possibly dissimilar.
pub const MAX_VARIANTS: usize = 16;

/// A narrative's id: a hash of the id of the post (or reposted original)
/// that founded it. Shown as 16 hex digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NarrativeId(pub u64);

impl std::fmt::Display for NarrativeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl Serialize for NarrativeId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for NarrativeId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let hex = String::deserialize(d)?;
        u64::from_str_radix(&hex, 16)
            .map(NarrativeId)
            .map_err(|_| serde::de::Error::invalid_value(serde::de::Unexpected::Str(&hex), &"16 hex digits"))
    }
}

/// The public summary of a narrative. It holds counts, never account
/// pseudonyms.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Narrative {
    pub id: NarrativeId,
    /// Posts counted into it (near-duplicates and reposts) while alive.
    pub size: u64,
    /// How many of those were reposts.
    pub reposts: u64,
    /// Distinct authors: exact up to [`EXACT_ACCOUNTS`], then a
    /// HyperLogLog estimate (see `accounts_exact`).
    pub distinct_accounts: u64,
    pub accounts_exact: bool,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    /// Most frequent language tags with their post counts (approximate
    /// beyond 8 distinct tags).
    pub languages: Vec<(String, u64)>,
    /// Most frequent link domains with their post counts.
    pub domains: Vec<(String, u64)>,
    /// The text of the post that made it a narrative of two, as given by
    /// the caller (redacted); empty while it has one post.
    pub representative: String,
    /// The feeds its posts matched, with their post counts, most posts
    /// first (ties by feed id): the first [`MAX_FEEDS`] feeds seen.
    pub feeds: Vec<(u32, u64)>,
    /// Posts in the last 10 minutes before the clusterer's newest time.
    pub recent_10m: u64,
    /// Posts in the 60 minutes before those.
    pub previous_60m: u64,
    /// `(recent_10m + 1) / (previous_60m / 6 + 1)`: the last 10 minutes'
    /// rate over the previous hour's 10-minute rate, smoothed by one post;
    /// 1 is steady, above 1 growing; a brand-new burst of n posts scores
    /// n + 1.
    pub growth: f64,
}

/// The internal state of a narrative.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Cluster {
    /// The founding post's sketch ([`super::minhash::sketch`]); `None` for
    /// a narrative founded by a repost without text. New posts are compared
    /// with it only, so narratives do not drift away from their first text.
    pub founder: Option<Box<[u32]>>,
    pub size: u64,
    pub reposts: u64,
    pub first: i64,
    pub last: i64,
    pub founder_account: Option<u64>,
    pub founder_lang: Option<u16>,
    /// The founding post's first link domain, if any.
    pub founder_domain: Option<Box<str>>,
    /// The feeds the founding post matched (at most [`MAX_FEEDS`]), until
    /// a second post moves them into the details' tally. An empty box
    /// holds no allocation.
    pub founder_feeds: Box<[u32]>,
    /// Members that joined by text, the founder included when it had one.
    pub text_members: u64,
    pub details: Option<Box<Details>>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct Details {
    accounts: Accounts,
    langs: Tally<u16>,
    domains: Tally<Box<str>>,
    /// (feed, posts), by feed id; the first [`MAX_FEEDS`] feeds seen.
    feeds: Vec<(u32, u64)>,
    representative: Box<str>,
    activity: Activity,
    /// Distinct member texts other than the founder's (their sketches) with
    /// how many text members have each.
    variants: Vec<(Box<[u32]>, u64)>,
    /// Text members whose distinct text was not kept (beyond
    /// [`MAX_VARIANTS`]).
    unstored: u64,
}

impl Cluster {
    pub fn new(
        founder: Option<Box<[u32]>>,
        t: i64,
        account: Option<u64>,
        lang: Option<u16>,
        domain: Option<&str>,
        feeds: &[u32],
    ) -> Cluster {
        Cluster {
            text_members: u64::from(founder.is_some()),
            founder,
            size: 1,
            reposts: 0,
            first: t,
            last: t,
            founder_account: account,
            founder_lang: lang,
            founder_domain: domain.map(Box::from),
            founder_feeds: feeds[..feeds.len().min(MAX_FEEDS)].into(),
            details: None,
        }
    }

    /// Counts one more post, which matched `feeds` (ascending).
    /// `representative` is called when the narrative reaches two posts.
    #[allow(clippy::too_many_arguments)]
    pub fn add(
        &mut self,
        t: i64,
        repost: bool,
        account: Option<u64>,
        lang: Option<u16>,
        domains: &[String],
        feeds: &[u32],
        representative: impl FnOnce() -> String,
    ) {
        if self.details.is_none() {
            let mut d = Details::default();
            if let Some(a) = self.founder_account {
                d.accounts.insert(a);
            }
            if let Some(l) = self.founder_lang {
                d.langs.add(l);
            }
            if let Some(dom) = self.founder_domain.take() {
                d.domains.add(dom);
            }
            d.feeds = std::mem::take(&mut self.founder_feeds)
                .iter()
                .map(|&f| (f, 1))
                .collect();
            d.activity.add(self.first);
            d.representative = truncate_chars(&representative(), REPRESENTATIVE_CHARS).into();
            self.details = Some(Box::new(d));
        }
        self.size += 1;
        self.reposts += u64::from(repost);
        self.first = self.first.min(t);
        self.last = self.last.max(t);
        if let Some(d) = self.details.as_mut() {
            if let Some(a) = account {
                d.accounts.insert(a);
            }
            if let Some(l) = lang {
                d.langs.add(l);
            }
            for dom in domains.iter().take(4) {
                d.domains.add_str(dom);
            }
            tally_feeds(&mut d.feeds, feeds);
            d.activity.add(t);
        }
    }

    /// The sketch of the narrative's most common member text (the
    /// founder's until another text has more copies); `None` for a
    /// narrative founded by a repost without text.
    pub fn anchor(&self) -> Option<&[u32]> {
        let founder = self.founder.as_deref()?;
        let Some(d) = self.details.as_ref() else {
            return Some(founder);
        };
        let mut best = (self.founder_copies(), founder);
        for (v, n) in &d.variants {
            if *n > best.0 {
                best = (*n, v);
            }
        }
        Some(best.1)
    }

    /// Text members whose text equals the founder's.
    fn founder_copies(&self) -> u64 {
        let others = self
            .details
            .as_ref()
            .map_or(0, |d| d.variants.iter().map(|(_, n)| n).sum::<u64>() + d.unstored);
        self.text_members.saturating_sub(others)
    }

    /// How many text members are possibly not near-duplicates of a post
    /// with `sketch` (their Jaccard similarity is below `threshold`, or
    /// their text was not kept), out of all text members.
    pub fn dissimilar(&self, sketch: &[u32], threshold: f64) -> (u64, u64) {
        let founder = self
            .founder
            .as_deref()
            .filter(|f| sketch_jaccard(f, sketch) < threshold)
            .map_or(0, |_| self.founder_copies());
        let others = self.details.as_ref().map_or(0, |d| {
            let far: u64 = d
                .variants
                .iter()
                .filter(|(v, _)| sketch_jaccard(v, sketch) < threshold)
                .map(|(_, n)| n)
                .sum();
            far + d.unstored
        });
        (founder + others, self.text_members)
    }

    /// Records a member that joined by text with `sketch`; call after
    /// [`Cluster::add`].
    pub fn add_text(&mut self, sketch: &[u32]) {
        self.text_members += 1;
        if self.founder.as_deref() == Some(sketch) {
            return;
        }
        let Some(d) = self.details.as_mut() else {
            return;
        };
        if let Some(v) = d.variants.iter_mut().find(|(v, _)| **v == *sketch) {
            v.1 += 1;
        } else if d.variants.len() < MAX_VARIANTS {
            d.variants.push((Box::from(sketch), 1));
        } else {
            d.unstored += 1;
        }
    }

    /// The public summary, with activity measured back from `now`.
    pub fn summary(&self, id: NarrativeId, now: i64, lang_names: &[Box<str>]) -> Narrative {
        let lang_name = |l: u16| {
            lang_names
                .get(usize::from(l))
                .map_or_else(String::new, |s| s.to_string())
        };
        let (distinct, exact, languages, domains, mut feeds, representative, (recent, previous)) = match &self.details {
            Some(d) => (
                d.accounts.count(),
                d.accounts.is_exact(),
                d.langs.top().into_iter().map(|(l, n)| (lang_name(*l), n)).collect(),
                d.domains.top().into_iter().map(|(s, n)| (s.to_string(), n)).collect(),
                d.feeds.clone(),
                d.representative.to_string(),
                d.activity.counts(now),
            ),
            None => (
                u64::from(self.founder_account.is_some()),
                true,
                self.founder_lang.map(|l| (lang_name(l), 1)).into_iter().collect(),
                self.founder_domain.iter().map(|d| (d.to_string(), 1)).collect(),
                self.founder_feeds.iter().map(|&f| (f, 1)).collect(),
                String::new(),
                Activity::single(self.first, now),
            ),
        };
        feeds.sort_by(|a: &(u32, u64), b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        Narrative {
            id,
            size: self.size,
            reposts: self.reposts,
            distinct_accounts: distinct,
            accounts_exact: exact,
            first_seen: Timestamp(self.first),
            last_seen: Timestamp(self.last),
            languages,
            domains,
            representative,
            feeds,
            recent_10m: recent,
            previous_60m: previous,
            growth: growth(recent, previous),
        }
    }

    /// The growth score alone (see [`Narrative::growth`]), without building
    /// a summary.
    pub fn growth(&self, now: i64) -> f64 {
        let (recent, previous) = match &self.details {
            Some(d) => d.activity.counts(now),
            None => Activity::single(self.first, now),
        };
        growth(recent, previous)
    }

    /// Approximate heap bytes owned by this narrative.
    pub fn heap_bytes(&self) -> usize {
        let sig = self.founder.as_ref().map_or(0, |f| f.len() * 4)
            + self.founder_domain.as_ref().map_or(0, |d| d.len())
            + self.founder_feeds.len() * 4;
        let details = self.details.as_ref().map_or(0, |d| {
            std::mem::size_of::<Details>()
                + d.representative.len()
                + d.accounts.heap_bytes()
                + d.langs.items.capacity() * std::mem::size_of::<(u16, u64)>()
                + d.domains.items.iter().map(|(s, _)| s.len() + 24).sum::<usize>()
                + d.feeds.capacity() * std::mem::size_of::<(u32, u64)>()
                + d.variants.iter().map(|(v, _)| v.len() * 4 + 24).sum::<usize>()
        });
        sig + details
    }
}

/// Adds one post's `feeds` (ascending) to `counts` (by feed id): one merge
/// finds the feeds already tallied (a post matches dozens of feeds), and
/// the first new ones take the free places.
fn tally_feeds(counts: &mut Vec<(u32, u64)>, feeds: &[u32]) {
    let old = counts.len();
    let mut i = 0;
    for &f in feeds {
        while i < old && counts[i].0 < f {
            i += 1;
        }
        if i < old && counts[i].0 == f {
            counts[i].1 += 1;
        } else if counts.len() < MAX_FEEDS {
            counts.push((f, 1));
        }
    }
    if counts.len() > old {
        counts.sort_unstable_by_key(|c| c.0);
    }
}

fn growth(recent: u64, previous: u64) -> f64 {
    (recent as f64 + 1.0) / (previous as f64 / 6.0 + 1.0)
}

fn truncate_chars(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((at, _)) => s.get(..at).unwrap_or(s),
        None => s,
    }
}

/// Distinct accounts: an exact small set, then a HyperLogLog.
#[derive(Clone, Debug, Serialize, Deserialize)]
enum Accounts {
    Exact(Vec<u64>),
    Sketch(#[serde(with = "registers")] Box<[u8; HLL_REGISTERS]>),
}

/// The HyperLogLog registers as bytes (serde derives arrays of at most 32).
mod registers {
    use super::HLL_REGISTERS;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(regs: &[u8; HLL_REGISTERS], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(regs.iter())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Box<[u8; HLL_REGISTERS]>, D::Error> {
        let bytes = Vec::<u8>::deserialize(d)?;
        let len = bytes.len();
        bytes
            .into_boxed_slice()
            .try_into()
            .map_err(|_| serde::de::Error::invalid_length(len, &"256 HyperLogLog registers"))
    }
}

impl Default for Accounts {
    fn default() -> Self {
        Accounts::Exact(Vec::new())
    }
}

impl Accounts {
    fn insert(&mut self, h: u64) {
        match self {
            Accounts::Exact(v) => {
                if v.contains(&h) {
                    return;
                }
                if v.len() < EXACT_ACCOUNTS {
                    v.push(h);
                    return;
                }
                let mut regs = Box::new([0u8; HLL_REGISTERS]);
                for &x in v.iter().chain(std::iter::once(&h)) {
                    hll_insert(&mut regs, x);
                }
                *self = Accounts::Sketch(regs);
            }
            Accounts::Sketch(regs) => hll_insert(regs, h),
        }
    }

    fn is_exact(&self) -> bool {
        matches!(self, Accounts::Exact(_))
    }

    fn count(&self) -> u64 {
        match self {
            Accounts::Exact(v) => v.len() as u64,
            Accounts::Sketch(regs) => {
                let m = HLL_REGISTERS as f64;
                let sum: f64 = regs.iter().map(|&r| 2f64.powi(-i32::from(r))).sum();
                let raw = 0.7213 / (1.0 + 1.079 / m) * m * m / sum;
                let zeros = regs.iter().filter(|&&r| r == 0).count();
                let est = if raw <= 2.5 * m && zeros > 0 {
                    m * (m / zeros as f64).ln()
                } else {
                    raw
                };
                // Never report fewer than the exact count it grew out of.
                (est.round() as u64).max(EXACT_ACCOUNTS as u64 + 1)
            }
        }
    }

    fn heap_bytes(&self) -> usize {
        match self {
            Accounts::Exact(v) => v.capacity() * 8,
            Accounts::Sketch(_) => HLL_REGISTERS,
        }
    }
}

fn hll_insert(regs: &mut [u8; HLL_REGISTERS], h: u64) {
    // Account hashes are already uniform; mix once more so the register
    // index is independent of other uses of the same hash.
    let h = super::minhash::splitmix(h ^ 0x4848_4C4C);
    let idx = (h >> 56) as usize;
    let rank = ((h << 8) | 0x80).leading_zeros() as u8 + 1;
    if let Some(r) = regs.get_mut(idx) {
        *r = (*r).max(rank);
    }
}

/// A Misra–Gries summary of the most frequent values.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Tally<T> {
    items: Vec<(T, u64)>,
}

impl<T> Default for Tally<T> {
    fn default() -> Self {
        Tally { items: Vec::new() }
    }
}

impl<T: PartialEq> Tally<T> {
    fn add(&mut self, v: T) {
        if let Some(item) = self.items.iter_mut().find(|(x, _)| *x == v) {
            item.1 += 1;
        } else if self.items.len() < TALLY_CAP {
            self.items.push((v, 1));
        } else {
            for item in self.items.iter_mut() {
                item.1 -= 1;
            }
            self.items.retain(|(_, n)| *n > 0);
        }
    }

    fn top(&self) -> Vec<(&T, u64)> {
        let mut v: Vec<(&T, u64)> = self.items.iter().map(|(x, n)| (x, *n)).collect();
        v.sort_by_key(|item| std::cmp::Reverse(item.1));
        v.truncate(TALLY_SHOWN);
        v
    }
}

impl Tally<Box<str>> {
    /// Adds a string, allocating only when it is new to the tally.
    fn add_str(&mut self, s: &str) {
        if let Some(item) = self.items.iter_mut().find(|(x, _)| &**x == s) {
            item.1 += 1;
        } else {
            self.add(s.into());
        }
    }
}

/// Posts per 5-minute slot over the last 70 minutes of a narrative.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Activity {
    counts: [u32; SLOTS],
    /// The newest slot number (`t / SLOT_MS`) counted.
    newest: i64,
}

impl Activity {
    fn add(&mut self, t: i64) {
        let slot = t.div_euclid(SLOT_MS);
        if slot > self.newest {
            let gap = (slot - self.newest).min(SLOTS as i64);
            for k in 1..=gap {
                self.counts[ring(self.newest + k)] = 0;
            }
            self.newest = slot;
        }
        if slot > self.newest - SLOTS as i64 {
            let c = &mut self.counts[ring(slot)];
            *c = c.saturating_add(1);
        }
    }

    /// `(posts in the 2 slots ending at now's slot, posts in the 12 before)`.
    fn counts(&self, now: i64) -> (u64, u64) {
        let now_slot = now.div_euclid(SLOT_MS);
        let (mut recent, mut previous) = (0u64, 0u64);
        for back in 0..SLOTS as i64 {
            let slot = now_slot - back;
            if slot > self.newest || slot <= self.newest - SLOTS as i64 {
                continue;
            }
            let n = u64::from(self.counts[ring(slot)]);
            if back < 2 {
                recent += n;
            } else {
                previous += n;
            }
        }
        (recent, previous)
    }

    /// The counts of a narrative holding one post at `t`.
    fn single(t: i64, now: i64) -> (u64, u64) {
        let back = now.div_euclid(SLOT_MS) - t.div_euclid(SLOT_MS);
        match back {
            0..=1 => (1, 0),
            2..=13 => (0, 1),
            _ => (0, 0),
        }
    }
}

fn ring(slot: i64) -> usize {
    slot.rem_euclid(SLOTS as i64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_are_exact_then_estimated_within_a_few_percent() {
        let mut a = Accounts::default();
        for i in 0..EXACT_ACCOUNTS as u64 {
            a.insert(super::super::minhash::splitmix(i));
            a.insert(super::super::minhash::splitmix(i));
        }
        assert!(a.is_exact());
        assert_eq!(a.count(), EXACT_ACCOUNTS as u64);
        for i in 0..10_000u64 {
            a.insert(super::super::minhash::splitmix(i));
        }
        assert!(!a.is_exact());
        let n = a.count() as f64;
        assert!((n - 10_000.0).abs() < 2_000.0, "{n}");
    }

    #[test]
    fn activity_counts_the_last_ten_minutes_and_the_hour_before() {
        let mut act = Activity::default();
        let base = 100 * SLOT_MS;
        for k in 0..12 {
            act.add(base + k * SLOT_MS); // one post per slot for an hour
        }
        for _ in 0..10 {
            act.add(base + 12 * SLOT_MS); // a burst of ten
        }
        let now = base + 12 * SLOT_MS + 1000;
        assert_eq!(act.counts(now), (11, 11));
        assert!((growth(11, 11) - 12.0 / (11.0 / 6.0 + 1.0)).abs() < 1e-12);
        // Two hours later nothing is recent.
        assert_eq!(act.counts(now + 24 * SLOT_MS), (0, 0));
        // Posts older than the ring are ignored, not misplaced.
        act.add(base - 2 * SLOT_MS);
        assert_eq!(act.counts(now), (11, 11));
    }

    #[test]
    fn tallies_keep_the_frequent_values() {
        let mut t: Tally<u16> = Tally::default();
        for i in 0..100u16 {
            t.add(i % 20);
            t.add(99);
        }
        assert_eq!(t.top().first().map(|(v, _)| **v), Some(99));
    }

    #[test]
    fn feeds_are_tallied_from_the_founder_on_and_listed_by_posts() {
        let mut c = Cluster::new(None, 0, Some(1), None, None, &[2, 5, 9]);
        assert_eq!(c.summary(NarrativeId(1), 0, &[]).feeds, vec![(2, 1), (5, 1), (9, 1)]);
        c.add(1, false, Some(2), None, &[], &[1, 5], String::new);
        c.add(2, false, Some(3), None, &[], &[5, 9], String::new);
        let feeds = c.summary(NarrativeId(1), 2, &[]).feeds;
        assert_eq!(feeds, vec![(5, 3), (9, 2), (1, 1), (2, 1)]);
    }

    #[test]
    fn only_the_first_sixteen_feeds_seen_are_tallied() {
        let many: Vec<u32> = (0..40).collect();
        assert_eq!(
            Cluster::new(None, 0, None, None, None, &many).founder_feeds.len(),
            MAX_FEEDS
        );

        let mut c = Cluster::new(None, 0, None, None, None, &[2, 9]);
        // 20 feeds: 2 and 9 again, then the first 14 new ones fill the list.
        let twenty: Vec<u32> = (0..20).collect();
        c.add(1, false, None, None, &[], &twenty, String::new);
        // 16 and up never got a place; 40 neither, the list being full.
        c.add(2, false, None, None, &[], &[3, 15, 16, 40], String::new);
        let mut want: Vec<(u32, u64)> = vec![(2, 2), (3, 2), (9, 2), (15, 2)];
        want.extend([0, 1, 4, 5, 6, 7, 8, 10, 11, 12, 13, 14].map(|f| (f, 1)));
        assert_eq!(c.summary(NarrativeId(1), 2, &[]).feeds, want);
    }

    #[test]
    fn representatives_are_cut_at_a_character_boundary() {
        let long = "é".repeat(300);
        assert_eq!(truncate_chars(&long, REPRESENTATIVE_CHARS).chars().count(), 280);
        assert_eq!(truncate_chars("short", 280), "short");
    }
}
