//! # tidewatch-gen
//!
//! A deterministic generator of realistic post streams with planted,
//! documented events: the same configuration and seed give the same posts,
//! byte for byte, and a truth file says exactly what was planted where.
//! It feeds tidewatch's demo, tests, evaluations and benchmarks.
//!
//! ## The organic background
//!
//! - **Volume** follows a daily rhythm (trough ~0.3x around 04:00 UTC, peak
//!   ~1.7x around 20:00, see [`rhythm`]) and a mild weekly one (weekends
//!   ~0.9x). The number of organic posts in each minute follows the curve
//!   exactly, so there is no randomness in the total rate to alert on.
//! - **Language**: 90% English, 10% German, Spanish, French, Portuguese,
//!   Italian, Japanese, Chinese (no spaces) and Arabic ([`Lang::share`]);
//!   10% of posts carry no language tag.
//! - **Text**: Zipf-distributed words per language with stop words as the
//!   most frequent tokens ([`vocabulary`]); 70% of posts are about one of
//!   the background [`TOPICS`] (core terms, hashtags, link domains), the
//!   rest general chatter; perennial hashtags, cashtags, mentions, links
//!   (30% with `?utm_...` query strings), emoji, and a few invented e-mail
//!   addresses and phone numbers.
//! - **Accounts**: heavy-tailed activity (Zipf, exponent 0.75, over about
//!   `posts / 20` accounts), invented handles per platform (twitter 45%,
//!   bluesky 25%, mastodon 15%, reddit 15%).
//! - **Conversation**: 14% replies to recent posts (starting with an
//!   @mention), about 18% reposts forming organic cascades: a few posts go
//!   viral and are reposted by many unrelated accounts over hours
//!   (cascade sizes Pareto-distributed, each decaying with a time constant
//!   of about two hours). A cascade's peak rate is capped at 10% of its
//!   topic's mean rate, so virality alone is never a topic's volume spike.
//!
//! ## Planted events (`planted: true`, the default)
//!
//! Per simulated day (so the count grows with `days`):
//!
//! - **3–4 bursts**: a background topic's volume multiplies (4x–40x,
//!   log-uniform) for 10–60 minutes, at full strength from the first
//!   minute then decaying linearly to a third; bursts of one topic are ≥ 3 h apart, any
//!   two onsets ≥ 30 min apart, none in the first 3 hours of the stream.
//!   Burst posts always carry one of the topic's terms or hashtags, often a
//!   "story" word; the truth gives the topic's feed query.
//! - **1 emerging topic** with invented names absent from every
//!   vocabulary: starts at 30% of its peak, ramps up over 2–4 h to 2% of
//!   the stream, holds for 4–8 h, fades over 3–6 h.
//! - **1 copy-paste campaign**: 20–36 dedicated accounts on one platform
//!   post near-identical text (35% exact copies, the rest with an emoji, a
//!   swapped word, another trailing hashtag or `!!`), each wave within 2–6
//!   minutes, 3–5 waves 45–150 minutes apart.
//! - **1 co-link campaign**: 10–18 dedicated accounts post the same link
//!   with different texts within 20 seconds, 4–7 rounds (a new link each).
//! - **1 repost ring**: 10–15 dedicated accounts; in each of 6–10 rounds
//!   one member posts and all the others repost it within 45 seconds.
//!
//! Bursts and emerging topics scale with the stream: a burst adds
//! (multiplier − 1) × its topic's own rate, so at 2M posts over 7 days
//! (about 200 posts a minute) a 1% topic has ~2 posts a minute and a modest
//! 4x burst adds ~6 a minute at onset. Emerging topics run out after the
//! 14 invented ones in [`EMERGING`] (so at most 14, one per day).
//!
//! Planted posts are labelled `{"event": "<id>"}` (bursts and emerging
//! topics also with `"topic"`); organic posts `{"topic": "<name>"}`
//! (`"chatter"` for none). Labels are ground truth, never read by
//! detectors. Planted posts never exceed half the stream (bursts shrink,
//! and tiny streams drop campaigns).
//!
//! ## Use
//!
//! ```
//! use tidewatch_gen::{GenConfig, Generator};
//! let gen = Generator::new(&GenConfig { posts: 1000, seed: 7, ..GenConfig::default() });
//! let events = gen.truth().events.len();
//! let posts: Vec<_> = gen.collect();
//! assert_eq!(posts.len(), 1000);
//! assert!(events >= 5);
//! ```

mod accounts;
mod cascade;
mod compose;
mod plan;
mod sample;
mod topics;
mod vocab;

pub use accounts::{handle, Platform};
pub use plan::{hourly_rhythm, rhythm, EventKind, PlantedEvent, TopicTruth, Truth, Window};
pub use topics::{EmergingDef, TopicDef, BRANDS, EMERGING, PERENNIAL_HASHTAGS, PUBLIC_ACCOUNTS, TOPICS};
pub use vocab::{vocabulary, Lang, Vocabulary};

use accounts::{platform_of, write_post_id, write_url};
use cascade::{Cascade, Cascades};
use compose::{compose, Extras, Subject};
use plan::{repost_text, Plan, StreamPlan, StreamSubject};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sample::{below, chance, pareto, unit, zipf_weights, Alias};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use tidewatch_core::{Labels, Post, Timestamp};

/// Share of posts with no language tag (`lang: None`).
pub const UNTAGGED_SHARE: f64 = 0.10;
/// Share of organic slots that are replies.
const REPLY_SHARE: f64 = 0.14;
/// Share of organic slots that are reposts (when a cascade is running).
const REPOST_SHARE: f64 = 0.18;
/// Chance that an original post starts a cascade (when there is room).
const VIRAL_CHANCE: f64 = 0.04;
/// Share of organic posts about no topic.
const CHATTER_SHARE: f64 = 0.30;
/// Most cascades running at once.
const MAX_CASCADES: usize = 1024;
/// Recent posts remembered per platform, as reply targets.
const RECENT: usize = 1024;

/// What to generate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GenConfig {
    /// Exactly this many posts, planted ones included.
    pub posts: u64,
    /// Simulated span in days (at least 1).
    pub days: u32,
    pub seed: u64,
    /// First instant of the span (default 2026-03-02T00:00:00Z, a Monday).
    pub start: Timestamp,
    /// Plant events (`false`: the organic background only, for tests that
    /// expect no alert).
    pub planted: bool,
}

impl Default for GenConfig {
    fn default() -> Self {
        GenConfig {
            posts: 100_000,
            days: 1,
            seed: 0,
            start: Timestamp(1_772_409_600_000),
            planted: true,
        }
    }
}

/// A streamed planted event in progress.
struct StreamState {
    plan: StreamPlan,
    rng: ChaCha8Rng,
    /// Index of the next post.
    k: u64,
    /// Quantile of the next post's time.
    x: f64,
}

impl StreamState {
    /// Draws the next order statistic of `size` uniforms, given the last.
    fn advance(&mut self) {
        let left = self.plan.size - self.k;
        if left > 0 {
            let u = 1.0 - unit(&mut self.rng);
            self.x += (1.0 - self.x) * (1.0 - u.powf(1.0 / left as f64));
        }
    }
    fn next_time(&self) -> i64 {
        self.plan.time_at(self.x)
    }
}

/// Where the next planted post comes from.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Src {
    Stream(usize),
    List(usize),
}

/// The stream: an iterator of exactly `posts` posts in non-decreasing
/// `created_at` order, with flat memory whatever the length.
pub struct Generator {
    truth: Truth,
    rng: ChaCha8Rng,
    start: i64,
    slots_before: Vec<u64>,
    organic_total: u64,
    /// Organic posts emitted so far (also their serial numbers).
    organic_done: u64,
    /// The time of the next organic slot, once drawn.
    organic_next: Option<i64>,
    minute: usize,
    langs: Alias,
    /// Topics, then chatter as the last outcome.
    topics: Alias,
    accounts: Alias,
    n_accounts: u64,
    /// Multiplier mapping activity rank to account number (a permutation).
    rank_mul: u64,
    recent: [Vec<(u64, u64)>; 4],
    recent_pos: [usize; 4],
    cascades: Cascades,
    /// Most reposts pending at once: about two hours of repost slots.
    backlog_cap: u64,
    /// Mean organic posts per minute.
    organic_per_minute: f64,
    streams: Vec<StreamState>,
    lists: Vec<std::vec::IntoIter<Post>>,
    heap: BinaryHeap<Reverse<(i64, Src)>>,
    list_next: Vec<Option<Post>>,
}

impl Generator {
    /// Plans the run (events, truth) from the seed; posts come from
    /// iterating.
    pub fn new(cfg: &GenConfig) -> Generator {
        let plan = Plan::new(cfg);
        let Plan {
            organic,
            accounts: n_accounts,
            slots_before,
            streams,
            lists,
            truth,
        } = plan;
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
        rng.set_stream(2);
        let langs = Alias::new(&Lang::ALL.map(|l| l.share()));
        let mut topic_w: Vec<f64> = TOPICS.iter().map(|t| t.share).collect();
        topic_w.push(1.0 - topic_w.iter().sum::<f64>());
        let accounts = Alias::new(&zipf_weights(n_accounts as usize, 0.75));
        let mut rank_mul = 0x9E37_79B1 % n_accounts;
        while gcd(rank_mul, n_accounts) != 1 || rank_mul < 2 {
            rank_mul += 1;
        }
        let minutes = slots_before.len().saturating_sub(1).max(1);
        let backlog_cap = ((organic as f64 * REPOST_SHARE / minutes as f64) * 120.0).max(20.0) as u64;

        let mut heap = BinaryHeap::new();
        let streams: Vec<StreamState> = streams
            .into_iter()
            .enumerate()
            .map(|(i, p)| {
                let mut r = ChaCha8Rng::seed_from_u64(cfg.seed);
                r.set_stream(2000 + p.event as u64);
                let mut s = StreamState {
                    plan: p,
                    rng: r,
                    k: 0,
                    x: 0.0,
                };
                if s.plan.size > 0 {
                    s.advance();
                    heap.push(Reverse((s.next_time(), Src::Stream(i))));
                }
                s
            })
            .collect();
        let mut list_iters: Vec<std::vec::IntoIter<Post>> = Vec::new();
        let mut list_next = Vec::new();
        for (i, (_, posts)) in lists.into_iter().enumerate() {
            let mut it = posts.into_iter();
            let first = it.next();
            if let Some(p) = &first {
                heap.push(Reverse((p.created_at.map_or(0, |t| t.0), Src::List(i))));
            }
            list_next.push(first);
            list_iters.push(it);
        }
        Generator {
            truth,
            rng,
            start: cfg.start.0,
            slots_before,
            organic_total: organic,
            organic_done: 0,
            organic_next: None,
            minute: 0,
            langs,
            topics: Alias::new(&topic_w),
            accounts,
            n_accounts,
            rank_mul,
            recent: Default::default(),
            recent_pos: [0; 4],
            cascades: Cascades::new(MAX_CASCADES),
            backlog_cap,
            organic_per_minute: organic as f64 / minutes as f64,
            streams,
            lists: list_iters,
            heap,
            list_next,
        }
    }

    /// What was planted, and every knob of the run, available before (and
    /// during) iteration. Built on each call: the ids of burst and emerging
    /// posts (millions in a 50M-post stream) are derived here rather than
    /// held by the generator.
    pub fn truth(&self) -> Truth {
        let mut truth = self.truth.clone();
        for s in &self.streams {
            truth.events[s.plan.event].post_ids = s.plan.post_ids().collect();
        }
        truth
    }

    /// Time of the next organic slot, if any remain (drawn once per slot).
    fn next_organic_time(&mut self) -> Option<i64> {
        if self.organic_done >= self.organic_total {
            return None;
        }
        if let Some(t) = self.organic_next {
            return Some(t);
        }
        while self.slots_before[self.minute + 1] <= self.organic_done {
            self.minute += 1;
        }
        let first = self.slots_before[self.minute];
        let count = self.slots_before[self.minute + 1] - first;
        let i = self.organic_done - first;
        // Slot i of `count` falls in its own sub-interval of the minute, so
        // times are non-decreasing without sorting.
        let jitter = below(&mut self.rng, Timestamp::MINUTE as u64);
        let off = (i * Timestamp::MINUTE as u64 + jitter) / count;
        let t = self.start + self.minute as i64 * Timestamp::MINUTE + off as i64;
        self.organic_next = Some(t);
        Some(t)
    }

    /// An account drawn by activity (heavy-tailed).
    fn active_account(&mut self) -> u64 {
        let rank = self.accounts.sample(&mut self.rng) as u64;
        // Both factors are below `n_accounts` (≤ 2M): no overflow.
        (rank * self.rank_mul) % self.n_accounts
    }

    /// An active account on `platform`.
    fn active_account_on(&mut self, platform: Platform) -> u64 {
        for _ in 0..64 {
            let a = self.active_account();
            if platform_of(a) == platform {
                return a;
            }
        }
        self.any_account_on(platform)
    }

    /// An account drawn uniformly (reposters of viral posts are mostly
    /// ordinary accounts) on `platform`.
    fn any_account_on(&mut self, platform: Platform) -> u64 {
        let mut a = below(&mut self.rng, self.n_accounts);
        for _ in 0..self.n_accounts {
            if platform_of(a) == platform {
                break;
            }
            a = (a + 1) % self.n_accounts;
        }
        a
    }

    fn lang(&mut self) -> Lang {
        Lang::ALL[self.langs.sample(&mut self.rng)]
    }

    fn lang_tag(&mut self, lang: Lang) -> Option<String> {
        if chance(&mut self.rng, UNTAGGED_SHARE) {
            None
        } else {
            Some(lang.code().to_string())
        }
    }

    fn organic_post(&mut self, t: i64) -> Post {
        let serial = self.organic_done;
        self.organic_done += 1;
        self.organic_next = None;
        // Reposts take their share of slots in proportion to how full the
        // backlog is, so a cascade never reposts faster than (its remaining
        // reposts) / (two hours), even when few cascades are running.
        let fill = (self.cascades.pending() as f64 / self.backlog_cap as f64).min(1.0);
        if self.cascades.pending() > 0 && chance(&mut self.rng, REPOST_SHARE * fill) {
            if let Some(post) = self.repost(t, serial) {
                return post;
            }
        }
        self.original_post(t, serial)
    }

    /// An original post or a reply.
    fn original_post(&mut self, t: i64, serial: u64) -> Post {
        let account = self.active_account();
        let platform = platform_of(account);
        let lang = self.lang();
        let topic_i = self.topics.sample(&mut self.rng);
        let subject = TOPICS.get(topic_i).map_or(Subject::Chatter, Subject::Topic);
        let topic_name = TOPICS.get(topic_i).map_or("chatter", |t| t.name);
        let p = platform.index();
        let parent = if !self.recent[p].is_empty() && chance(&mut self.rng, REPLY_SHARE) {
            let i = below(&mut self.rng, self.recent[p].len() as u64) as usize;
            Some(self.recent[p][i])
        } else {
            None
        };
        let mention = if chance(&mut self.rng, 0.1) {
            Some(self.active_account())
        } else {
            None
        };
        let ex = Extras {
            reply_to_account: parent.map(|(_, a)| a),
            mention_account: mention,
            ..Default::default()
        };
        let mut text = String::with_capacity(192);
        compose(&mut self.rng, &mut text, lang, subject, &ex);
        let lang_tag = self.lang_tag(lang);
        let mut id = String::with_capacity(24);
        write_post_id(&mut id, serial, platform, parent.is_some());
        let reply_to = parent.map(|(s, _)| accounts::post_id(s, platform, false));
        let author = accounts::handle(account);
        let community = topic_name;
        let mut url = String::with_capacity(80);
        write_url(&mut url, platform, &author, &id, community);

        if parent.is_none() {
            // Remember as a reply target; maybe start a cascade.
            let ring = &mut self.recent[p];
            if ring.len() < RECENT {
                ring.push((serial, account));
            } else {
                ring[self.recent_pos[p]] = (serial, account);
                self.recent_pos[p] = (self.recent_pos[p] + 1) % RECENT;
            }
            if platform.has_reposts()
                && !self.cascades.is_full()
                && self.cascades.pending() < self.backlog_cap
                && chance(&mut self.rng, VIRAL_CHANCE)
            {
                // A cascade reposts at most at 10% of its topic's mean rate
                // (chatter: 30% of the stream), so organic virality is
                // never a volume spike of a topic on its own: a quiet
                // stream must raise no alert.
                let share = TOPICS.get(topic_i).map_or(CHATTER_SHARE, |t| t.share);
                let cap = (0.1 * share * self.organic_per_minute * 120.0).max(5.0);
                let size = pareto(&mut self.rng, 5.0, 1.05, cap) as u64;
                self.cascades.insert(Cascade {
                    id: id.clone(),
                    author: account,
                    platform,
                    text: text.clone(),
                    lang: lang_tag.as_deref().and_then(Lang::from_code).map(Lang::code),
                    topic: topic_name,
                    remaining: size,
                });
            }
        }
        Post {
            id,
            platform: platform.name().to_string(),
            created_at: Some(Timestamp(t)),
            author: Some(author),
            text,
            lang: lang_tag,
            reply_to,
            repost_of: None,
            url: Some(url),
            labels: topic_label(topic_name, None),
            source: "gen".to_string(),
            ..Default::default()
        }
    }

    /// A repost of a running cascade's post (`None` if none is running).
    fn repost(&mut self, t: i64, serial: u64) -> Option<Post> {
        let slot = self.cascades.pick(below(&mut self.rng, self.cascades.pending().max(1)));
        let (platform, original_author) = self.cascades.get(slot).map(|c| (c.platform, c.author))?;
        let mut account = self.any_account_on(platform);
        if account == original_author {
            account = self.any_account_on(platform);
        }
        let c = self.cascades.get(slot)?;
        let mut id = String::with_capacity(24);
        write_post_id(&mut id, serial, platform, false);
        let author = accounts::handle(account);
        let mut url = String::with_capacity(80);
        write_url(&mut url, platform, &author, &id, c.topic);
        let post = Post {
            id,
            platform: platform.name().to_string(),
            created_at: Some(Timestamp(t)),
            author: Some(author),
            text: repost_text(platform, c.author, &c.text),
            lang: c.lang.map(str::to_string),
            reply_to: None,
            repost_of: Some(c.id.clone()),
            url: Some(url),
            labels: topic_label(c.topic, None),
            source: "gen".to_string(),
            ..Default::default()
        };
        self.cascades.consume(slot);
        Some(post)
    }

    fn stream_post(&mut self, si: usize) -> Post {
        let t = self.streams[si].next_time();
        let k = self.streams[si].k;
        let plan = &self.streams[si].plan;
        let serial = plan.serial_base + k;
        let platform = plan.platform(k);
        let subject_plan = plan.subject;
        let event_id = self.truth.events[plan.event].id.clone();
        // The account is drawn from the shared activity distribution; the
        // text from the event's own random stream.
        let account = self.active_account_on(platform);
        let st = &mut self.streams[si];
        let lang = Lang::ALL[self.langs.pick(st.rng.next_u64())];
        let (subject, story, topic_name) = match subject_plan {
            StreamSubject::Burst { topic, ref story } => {
                (Subject::Topic(&TOPICS[topic]), story.to_vec(), TOPICS[topic].name)
            }
            StreamSubject::Emerging { def } => (
                Subject::Emerging(&topics::EMERGING[def]),
                Vec::new(),
                topics::EMERGING[def].name,
            ),
        };
        let story: Vec<&'static str> = story;
        let ex = Extras {
            force_term: true,
            story: &story,
            ..Default::default()
        };
        let mut text = String::with_capacity(200);
        compose(&mut st.rng, &mut text, lang, subject, &ex);
        let lang_tag = if chance(&mut st.rng, UNTAGGED_SHARE) {
            None
        } else {
            Some(lang.code().to_string())
        };
        st.k += 1;
        st.advance();
        if st.k < st.plan.size {
            self.heap.push(Reverse((st.next_time(), Src::Stream(si))));
        }
        let mut id = String::with_capacity(24);
        write_post_id(&mut id, serial, platform, false);
        let author = accounts::handle(account);
        let mut url = String::with_capacity(80);
        write_url(&mut url, platform, &author, &id, topic_name);
        Post {
            id,
            platform: platform.name().to_string(),
            created_at: Some(Timestamp(t)),
            author: Some(author),
            text,
            lang: lang_tag,
            reply_to: None,
            repost_of: None,
            url: Some(url),
            labels: topic_label(topic_name, Some(&event_id)),
            source: "gen".to_string(),
            ..Default::default()
        }
    }

    fn list_post(&mut self, li: usize) -> Option<Post> {
        let post = self.list_next[li].take();
        let next = self.lists[li].next();
        if let Some(p) = &next {
            self.heap
                .push(Reverse((p.created_at.map_or(0, |t| t.0), Src::List(li))));
        }
        self.list_next[li] = next;
        post
    }
}

fn topic_label(topic: &str, event: Option<&str>) -> Labels {
    Labels::from_strs(event.map(|e| ("event", e)).into_iter().chain([("topic", topic)]))
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

impl Iterator for Generator {
    type Item = Post;

    fn next(&mut self) -> Option<Post> {
        let organic_t = self.next_organic_time();
        let planted = self.heap.peek().map(|Reverse((t, s))| (*t, *s));
        match (organic_t, planted) {
            (None, None) => None,
            (Some(t), None) => Some(self.organic_post(t)),
            (Some(t), Some((pt, _))) if t <= pt => Some(self.organic_post(t)),
            (_, Some(_)) => {
                let Reverse((_, src)) = self.heap.pop()?;
                match src {
                    Src::Stream(i) => Some(self.stream_post(i)),
                    Src::List(i) => self.list_post(i),
                }
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = (self.truth.posts - self.organic_done - self.planted_done()) as usize;
        (left, Some(left))
    }
}

impl Generator {
    fn planted_done(&self) -> u64 {
        let streamed: u64 = self.streams.iter().map(|s| s.k).sum();
        let listed: u64 = self
            .lists
            .iter()
            .zip(&self.list_next)
            .map(|(it, next)| it.len() as u64 + next.is_some() as u64)
            .sum();
        let list_total: u64 = self
            .truth
            .events
            .iter()
            .filter(|e| matches!(e.kind, EventKind::CopyPaste | EventKind::CoLink | EventKind::RepostRing))
            .map(|e| e.size)
            .sum();
        streamed + (list_total - listed)
    }
}

#[cfg(test)]
mod tests;
