//! The plan of a run, fixed up front from the seed: the daily rhythm as
//! per-minute weights, the planted events, and the truth file that
//! documents them.
//!
//! Organic posts fill "slots" whose number per minute follows the rhythm
//! exactly (so `posts` is met exactly and times are sorted by
//! construction). Planted events are separate sources: bursts and emerging
//! topics are streams of `size` posts whose times follow the event's
//! intensity profile; campaigns are short lists of posts built here.

use crate::accounts::{platform_of, post_id, Platform};
use crate::compose::{compose, Extras, Subject};
use crate::sample::{below, between, chance, choose, mix, unit};
use crate::topics::{EmergingDef, EMERGING, EMOJI, TOPICS};
use crate::vocab::{vocabulary, Lang};
use crate::GenConfig;
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use std::collections::BTreeMap;
use tidewatch_core::{Labels, Post, Timestamp};

const MIN: i64 = Timestamp::MINUTE;
const HOUR: i64 = Timestamp::HOUR;
const DAY: i64 = Timestamp::DAY;

/// Relative posting rate by hour of day (UTC), before normalising to mean 1:
/// a trough around 04:00 (~0.3x) and an evening peak around 20:00 (~1.7x).
const HOURLY: [f64; 24] = [
    0.90, 0.65, 0.45, 0.33, 0.30, 0.35, 0.50, 0.75, 0.95, 1.05, 1.10, 1.15, 1.20, 1.20, 1.15, 1.15, 1.20, 1.30, 1.45,
    1.60, 1.70, 1.65, 1.45, 1.20,
];
/// Relative rate by day of week, Monday first: weekends a little quieter.
const WEEKLY: [f64; 7] = [1.0, 1.02, 1.02, 1.0, 0.98, 0.92, 0.90];

/// The hour-of-day curve normalised to mean 1.
pub fn hourly_rhythm() -> [f64; 24] {
    let mean = HOURLY.iter().sum::<f64>() / 24.0;
    HOURLY.map(|h| h / mean)
}

/// The expected posting rate at `t`, relative to the mean (1.0): the
/// hour-of-day curve, interpolated between hour centres, times the weekly
/// factor.
pub fn rhythm(t: Timestamp) -> f64 {
    let hourly = hourly_rhythm();
    let in_day = t.0.rem_euclid(DAY) as f64 / HOUR as f64 - 0.5;
    let i0 = in_day.floor();
    let f = in_day - i0;
    let a = hourly[(i0 as i64).rem_euclid(24) as usize];
    let b = hourly[(i0 as i64 + 1).rem_euclid(24) as usize];
    // 1970-01-01 was a Thursday: day 0 is index 3 in a Monday-first week.
    let weekday = (t.0.div_euclid(DAY) + 3).rem_euclid(7) as usize;
    (a + (b - a) * f) * WEEKLY[weekday]
}

/// The kinds of planted events.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A topic's volume multiplies for 10–60 minutes, sharp onset.
    Burst,
    /// A brand-new set of terms rising slowly over hours.
    EmergingTopic,
    /// Many dedicated accounts post near-identical text within minutes.
    CopyPaste,
    /// Dedicated accounts post the same link within seconds.
    CoLink,
    /// Dedicated accounts repost each other's posts within seconds.
    RepostRing,
}

/// A time window `[start, end)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Window {
    pub start: Timestamp,
    pub end: Timestamp,
}

/// One planted event, as documented in the truth file.
#[derive(Clone, Debug, Serialize)]
pub struct PlantedEvent {
    /// `burst-003`, `emerging-001`, `copypaste-002`, ...
    pub id: String,
    pub kind: EventKind,
    /// First and last planted post times (event time), end exclusive.
    pub start: Timestamp,
    pub end: Timestamp,
    /// The background topic (bursts) or the new topic's name (emerging).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// A detection feed that captures the event's posts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// Terms (lower case; phrases keep their space) the event's posts use.
    pub terms: Vec<String>,
    /// Hashtags without `#`.
    pub hashtags: Vec<String>,
    /// Links shared (campaigns), without query strings.
    pub links: Vec<String>,
    pub domains: Vec<String>,
    /// Platform of a campaign (all its accounts are on it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    /// Handles of the dedicated accounts (campaigns); empty for bursts and
    /// emerging topics, whose posts come from ordinary accounts.
    pub accounts: Vec<String>,
    /// The waves / rounds of a campaign.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub windows: Vec<Window>,
    /// Number of planted posts.
    pub size: u64,
    /// Kind-specific numbers (multiplier, baseline, ramp minutes, ...).
    pub params: BTreeMap<String, serde_json::Value>,
    /// Ids of every planted post of the event.
    pub post_ids: Vec<String>,
}

/// Share of the truth about the organic background.
#[derive(Clone, Debug, Serialize)]
pub struct TopicTruth {
    pub name: String,
    pub share: f64,
    pub query: String,
    pub terms: Vec<String>,
    pub hashtags: Vec<String>,
    pub domains: Vec<String>,
}

/// Everything planted and every knob of a run: written next to the data as
/// pretty JSON.
#[derive(Clone, Debug, Serialize)]
pub struct Truth {
    pub generator: String,
    pub seed: u64,
    pub posts: u64,
    pub days: u32,
    pub start: Timestamp,
    pub end: Timestamp,
    pub planted: bool,
    pub organic_posts: u64,
    pub planted_posts: u64,
    pub accounts: u64,
    /// Relative rate by hour of day (UTC), mean 1.
    pub rhythm_by_hour: Vec<f64>,
    /// Relative rate by day of week, Monday first.
    pub rhythm_by_weekday: Vec<f64>,
    /// Share of posts per language (by text; `lang` may be absent).
    pub languages: BTreeMap<String, f64>,
    /// Share of posts whose `lang` is `null`.
    pub untagged_share: f64,
    pub perennial_hashtags: Vec<String>,
    pub topics: Vec<TopicTruth>,
    pub events: Vec<PlantedEvent>,
}

/// What a streamed planted event writes.
#[derive(Clone, Copy, Debug)]
pub(crate) enum StreamSubject {
    Burst { topic: usize, story: [&'static str; 2] },
    Emerging { def: usize },
}

/// A planted event whose posts are generated lazily, in time order.
#[derive(Clone, Debug)]
pub(crate) struct StreamPlan {
    pub event: usize,
    pub subject: StreamSubject,
    pub t0: i64,
    /// Cumulative intensity per minute from `t0`, normalised to end at 1.
    pub cdf: Vec<f64>,
    pub size: u64,
    pub serial_base: u64,
}

impl StreamPlan {
    /// Event time of quantile `x` in `[0, 1)`.
    pub(crate) fn time_at(&self, x: f64) -> i64 {
        let j = self.cdf.partition_point(|&c| c <= x);
        // cdf[j-1] <= x < cdf[j], with cdf[-1] = 0.
        let lo = if j == 0 { 0.0 } else { self.cdf[j - 1] };
        let hi = self.cdf.get(j).copied().unwrap_or(1.0);
        let f = if hi > lo { (x - lo) / (hi - lo) } else { 0.0 };
        self.t0 + ((j as f64 + f.clamp(0.0, 1.0)) * MIN as f64) as i64
    }

    /// Ids of every post of the event, in time order.
    pub(crate) fn post_ids(&self) -> impl Iterator<Item = String> + '_ {
        (0..self.size).map(|k| post_id(self.serial_base + k, self.platform(k), false))
    }

    /// Platform of the `k`-th post, derivable without replaying the stream
    /// (so the truth can list ids before iteration).
    pub(crate) fn platform(&self, k: u64) -> Platform {
        Platform::from_hash(mix(self.serial_base + k))
    }
}

/// The whole plan.
pub(crate) struct Plan {
    pub organic: u64,
    pub accounts: u64,
    /// Cumulative organic slot count at the start of each minute
    /// (`len = minutes + 1`, last = `organic`).
    pub slots_before: Vec<u64>,
    pub streams: Vec<StreamPlan>,
    /// Campaign posts, one list per event, each in time order.
    pub lists: Vec<(usize, Vec<Post>)>,
    pub truth: Truth,
}

/// Rate weight of each minute of the span.
fn minute_weights(start: i64, minutes: usize) -> Vec<f64> {
    (0..minutes)
        .map(|m| rhythm(Timestamp(start + m as i64 * MIN + MIN / 2)))
        .collect()
}

/// Expected organic posts per unit weight.
struct Rates {
    start: i64,
    weights: Vec<f64>,
    per_weight: f64,
}

impl Rates {
    /// Per-minute intensities `profile(minute offset) × weight × scale`
    /// over `[t0, t1)`, clipped to the span.
    fn intensity(&self, t0: i64, t1: i64, scale: f64, profile: impl Fn(f64) -> f64) -> Vec<f64> {
        let m0 = ((t0 - self.start) / MIN).max(0) as usize;
        let m1 = (((t1 - self.start) / MIN).max(0) as usize).min(self.weights.len());
        (m0..m1)
            .map(|m| profile((m - m0) as f64 + 0.5) * self.weights[m] * self.per_weight * scale)
            .collect()
    }
}

fn cdf_of(intensity: &[f64]) -> (Vec<f64>, f64) {
    let total: f64 = intensity.iter().sum();
    let mut acc = 0.0;
    let cdf = intensity
        .iter()
        .map(|v| {
            acc += v;
            if total > 0.0 {
                acc / total
            } else {
                1.0
            }
        })
        .collect();
    (cdf, total)
}

const CAMPAIGN_TAGS: &[&str] = &[
    "wakeupnow",
    "protectourvote",
    "stopthecover",
    "realnumbers",
    "exposethem",
    "silentvoices",
    "takebackthecity",
    "askquestions",
    "truthmatters2026",
    "notourfault",
    "hiddencosts",
    "knowthefacts",
];
const CAMPAIGN_DOMAINS: &[&str] = &[
    "patriot-dispatch.example",
    "truthwire-daily.example",
    "real-facts-now.example",
    "the-clear-report.example",
    "citizen-ledger.example",
    "openeyes-news.example",
];

struct Builder<'a> {
    cfg: &'a GenConfig,
    rng: ChaCha8Rng,
    rates: Rates,
    events: Vec<PlantedEvent>,
    streams: Vec<StreamPlan>,
    lists: Vec<(usize, Vec<Post>)>,
    next_account: u64,
    end: i64,
}

impl Plan {
    pub(crate) fn new(cfg: &GenConfig) -> Plan {
        let days = cfg.days.max(1);
        let minutes = days as usize * 1440;
        let start = cfg.start.0;
        let end = start + days as i64 * DAY;
        let weights = minute_weights(start, minutes);
        let total_w: f64 = weights.iter().sum();
        let accounts = (cfg.posts / 20).clamp(200, 2_000_000);
        let rng = {
            let mut r = ChaCha8Rng::seed_from_u64(cfg.seed);
            r.set_stream(1);
            r
        };
        let mut b = Builder {
            cfg,
            rng,
            rates: Rates {
                start,
                weights,
                per_weight: cfg.posts as f64 / total_w,
            },
            events: Vec::new(),
            streams: Vec::new(),
            lists: Vec::new(),
            next_account: accounts,
            end,
        };
        if cfg.planted {
            for day in 0..days {
                b.plan_day(day);
            }
            b.fit_budget();
        }
        // Serial numbers: organic posts first, then each event's block.
        let planted: u64 = b.events.iter().map(|e| e.size).sum();
        let organic = cfg.posts - planted;
        b.assign_serials(organic);

        let mut slots_before = Vec::with_capacity(minutes + 1);
        let mut acc = 0.0;
        slots_before.push(0);
        for w in &b.rates.weights {
            acc += w;
            slots_before.push(((acc / total_w) * organic as f64).round() as u64);
        }
        if let Some(last) = slots_before.last_mut() {
            *last = organic;
        }

        let truth = Truth {
            generator: format!("tidewatch-gen {}", env!("CARGO_PKG_VERSION")),
            seed: cfg.seed,
            posts: cfg.posts,
            days,
            start: cfg.start,
            end: Timestamp(end),
            planted: cfg.planted,
            organic_posts: organic,
            planted_posts: planted,
            accounts,
            rhythm_by_hour: hourly_rhythm().to_vec(),
            rhythm_by_weekday: WEEKLY.to_vec(),
            languages: Lang::ALL.iter().map(|l| (l.code().to_string(), l.share())).collect(),
            untagged_share: crate::UNTAGGED_SHARE,
            perennial_hashtags: crate::topics::PERENNIAL_HASHTAGS
                .iter()
                .map(|s| s.to_string())
                .collect(),
            topics: TOPICS
                .iter()
                .map(|t| TopicTruth {
                    name: t.name.to_string(),
                    share: t.share,
                    query: t.query(),
                    terms: t.terms.iter().map(|s| s.to_lowercase()).collect(),
                    hashtags: t.hashtags.iter().map(|s| s.to_string()).collect(),
                    domains: t.domains.iter().map(|s| s.to_string()).collect(),
                })
                .collect(),
            events: b.events,
        };
        Plan {
            organic,
            accounts,
            slots_before,
            streams: b.streams,
            lists: b.lists,
            truth,
        }
    }
}

impl Builder<'_> {
    fn event_rng(&self, n: usize) -> ChaCha8Rng {
        let mut r = ChaCha8Rng::seed_from_u64(self.cfg.seed);
        r.set_stream(1000 + n as u64);
        r
    }

    fn new_event(&mut self, kind: EventKind, prefix: &str) -> usize {
        let n = self.events.iter().filter(|e| e.kind == kind).count() + 1;
        self.events.push(PlantedEvent {
            id: format!("{prefix}-{n:03}"),
            kind,
            start: Timestamp(0),
            end: Timestamp(0),
            topic: None,
            query: None,
            terms: Vec::new(),
            hashtags: Vec::new(),
            links: Vec::new(),
            domains: Vec::new(),
            platform: None,
            accounts: Vec::new(),
            windows: Vec::new(),
            size: 0,
            params: BTreeMap::new(),
            post_ids: Vec::new(),
        });
        self.events.len() - 1
    }

    fn plan_day(&mut self, day: u32) {
        let d0 = self.rates.start + day as i64 * DAY;
        // The first hours of a stream are left to baselines.
        let warm = if day == 0 { 3 * HOUR } else { 0 };

        let bursts = between(&mut self.rng, 3, 4);
        let mut placed = 0;
        let mut tries = 0;
        while placed < bursts && tries < 200 {
            tries += 1;
            let s = d0 + warm + below(&mut self.rng, (DAY - warm - 70 * MIN) as u64 / MIN as u64) as i64 * MIN;
            let topic = below(&mut self.rng, TOPICS.len() as u64) as usize;
            // Same topic: never within 3 hours of another of its bursts; any
            // topic: onsets at least 30 minutes apart, so each is its own alert.
            let clash = self.streams.iter().any(|p| match p.subject {
                StreamSubject::Burst { topic: t, .. } => {
                    (t == topic && (p.t0 - s).abs() < 3 * HOUR) || (p.t0 - s).abs() < 30 * MIN
                }
                StreamSubject::Emerging { .. } => false,
            });
            if clash {
                continue;
            }
            self.plan_burst(s, topic);
            placed += 1;
        }

        let emerging_used = self
            .streams
            .iter()
            .filter(|p| matches!(p.subject, StreamSubject::Emerging { .. }))
            .count();
        if emerging_used < EMERGING.len() {
            // Stories break in the daytime (08:00–16:00 UTC), not at night.
            let s = d0 + 8 * HOUR + below(&mut self.rng, 8 * 60) as i64 * MIN;
            self.plan_emerging(s, emerging_used);
        }

        let s = d0 + HOUR + below(&mut self.rng, 15 * 60) as i64 * MIN;
        self.plan_copy_paste(s);
        let s = d0 + HOUR + below(&mut self.rng, 15 * 60) as i64 * MIN;
        self.plan_co_link(s);
        let s = d0 + HOUR + below(&mut self.rng, 15 * 60) as i64 * MIN;
        self.plan_repost_ring(s);
    }

    fn plan_burst(&mut self, s: i64, topic: usize) {
        let t = &TOPICS[topic];
        let minutes = between(&mut self.rng, 10, 60) as i64;
        // Log-uniform multiplier between 4x and 40x: modest to huge.
        let mult = (4f64.ln() + unit(&mut self.rng) * (10f64).ln()).exp();
        let e = s + minutes * MIN;
        let len = minutes as f64;
        // Extra posts at (mult - 1) × the topic's own rate, decaying
        // linearly to a third by the end: a sharp onset and a tail.
        let intensity = self
            .rates
            .intensity(s, e, t.share * (mult - 1.0), |m| 1.0 - (2.0 / 3.0) * m / len);
        let baseline: f64 = self.rates.intensity(s, e, t.share, |_| 1.0).iter().sum();
        let (cdf, expected) = cdf_of(&intensity);
        let story = {
            let a = below(&mut self.rng, t.words.len() as u64) as usize;
            let b = (a + 1 + below(&mut self.rng, t.words.len() as u64 - 1) as usize) % t.words.len();
            [t.words[a], t.words[b]]
        };
        let ev = self.new_event(EventKind::Burst, "burst");
        let size = expected.round().max(1.0) as u64;
        let p = &mut self.events[ev];
        p.start = Timestamp(s);
        p.end = Timestamp(e);
        p.topic = Some(t.name.to_string());
        p.query = Some(t.query());
        p.terms = t
            .terms
            .iter()
            .map(|x| x.to_lowercase())
            .chain(story.iter().map(|x| x.to_string()))
            .collect();
        p.hashtags = t.hashtags.iter().map(|x| x.to_string()).collect();
        p.domains = t.domains.iter().map(|x| x.to_string()).collect();
        p.size = size;
        p.params.insert("multiplier".into(), round3(mult).into());
        p.params.insert("baseline_posts".into(), round3(baseline).into());
        p.params.insert("duration_minutes".into(), minutes.into());
        p.params.insert("story_terms".into(), story.to_vec().into());
        p.params.insert(
            "profile".into(),
            "onset at full multiplier, linear decay to a third by the end".into(),
        );
        self.streams.push(StreamPlan {
            event: ev,
            subject: StreamSubject::Burst { topic, story },
            t0: s,
            cdf,
            size,
            serial_base: 0,
        });
    }

    fn plan_emerging(&mut self, s: i64, which: usize) {
        let def: &EmergingDef = &EMERGING[which];
        let ramp = between(&mut self.rng, 120, 240) as f64;
        let plateau = between(&mut self.rng, 240, 480) as f64;
        let fade = between(&mut self.rng, 180, 360) as f64;
        let e = (s + ((ramp + plateau + fade) as i64) * MIN).min(self.end);
        const FLOOR: f64 = 0.3;
        const PEAK_SHARE: f64 = 0.02;
        let profile = move |m: f64| {
            if m < ramp {
                FLOOR + (1.0 - FLOOR) * m / ramp
            } else if m < ramp + plateau {
                1.0
            } else {
                (1.0 - (m - ramp - plateau) / fade).max(0.0)
            }
        };
        let (cdf, expected) = cdf_of(&self.rates.intensity(s, e, PEAK_SHARE, profile));
        let ev = self.new_event(EventKind::EmergingTopic, "emerging");
        let size = expected.round().max(1.0) as u64;
        let p = &mut self.events[ev];
        p.start = Timestamp(s);
        p.end = Timestamp(e);
        p.topic = Some(def.name.to_string());
        let mut q: Vec<String> = def
            .terms
            .iter()
            .map(|t| {
                if t.contains(' ') {
                    format!("\"{t}\"")
                } else {
                    t.to_string()
                }
            })
            .collect();
        q.push(format!("#{}", def.hashtag));
        p.query = Some(q.join(" OR "));
        p.terms = def.terms.iter().map(|t| t.to_string()).collect();
        p.hashtags = vec![def.hashtag.to_string()];
        p.domains = vec![def.domain.to_string()];
        p.size = size;
        p.params.insert("ramp_minutes".into(), ramp.into());
        p.params.insert("plateau_minutes".into(), plateau.into());
        p.params.insert("fade_minutes".into(), fade.into());
        p.params.insert("start_level".into(), FLOOR.into());
        p.params.insert("peak_share_of_stream".into(), PEAK_SHARE.into());
        self.streams.push(StreamPlan {
            event: ev,
            subject: StreamSubject::Emerging { def: which },
            t0: s,
            cdf,
            size,
            serial_base: 0,
        });
    }

    /// `n` fresh dedicated accounts, all on `platform`.
    fn dedicated_accounts(&mut self, n: usize, platform: Platform) -> Vec<u64> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            let a = self.next_account;
            self.next_account += 1;
            if platform_of(a) == platform {
                out.push(a);
            }
        }
        out
    }

    fn campaign_platform(&mut self) -> Platform {
        *choose(
            &mut self.rng,
            &[
                Platform::Twitter,
                Platform::Twitter,
                Platform::Bluesky,
                Platform::Mastodon,
            ],
        )
    }

    fn plan_copy_paste(&mut self, s: i64) {
        let ev = self.new_event(EventKind::CopyPaste, "copypaste");
        let mut rng = self.event_rng(ev);
        let platform = self.campaign_platform();
        let n_acc = between(&mut rng, 20, 36) as usize;
        let accounts = self.dedicated_accounts(n_acc, platform);
        let topic = &TOPICS[*choose(&mut rng, &[5usize, 7, 3, 13])];
        let i = below(&mut rng, CAMPAIGN_TAGS.len() as u64) as usize;
        let tags = [
            CAMPAIGN_TAGS[i],
            CAMPAIGN_TAGS[(i + 1) % CAMPAIGN_TAGS.len()],
            CAMPAIGN_TAGS[(i + 2) % CAMPAIGN_TAGS.len()],
        ];
        // The message: a plain sentence on the topic, no links, two tags.
        let mut text = String::new();
        compose(
            &mut rng,
            &mut text,
            Lang::En,
            Subject::Topic(topic),
            &Extras {
                force_term: true,
                no_links: true,
                ..Default::default()
            },
        );
        let body: Vec<String> = text
            .split(' ')
            .filter(|w| !w.starts_with('#') && !w.starts_with('@') && !w.starts_with('$') && !EMOJI.contains(w))
            .map(|w| w.to_string())
            .collect();
        let waves = between(&mut rng, 3, 5);
        let mut t = s;
        let mut posts = Vec::new();
        let mut windows = Vec::new();
        for _ in 0..waves {
            let spread = between(&mut rng, 2, 6) as i64 * MIN;
            if t + spread >= self.end {
                break;
            }
            for &a in &accounts {
                let at = t + below(&mut rng, spread as u64) as i64;
                let text = copy_variant(&mut rng, &body, &tags);
                posts.push(planted_post(a, platform, at, text, None, None));
            }
            windows.push(Window {
                start: Timestamp(t),
                end: Timestamp(t + spread),
            });
            t += spread + between(&mut rng, 45, 150) as i64 * MIN;
        }
        let p = &mut self.events[ev];
        p.topic = Some(topic.name.to_string());
        p.hashtags = tags.iter().map(|s| s.to_string()).collect();
        // The template's distinct content words, in order.
        let stops = &vocabulary(Lang::En).stop_words;
        let mut seen = std::collections::BTreeSet::new();
        p.terms = body
            .iter()
            .map(|w| w.trim_end_matches(['.', '?']).to_lowercase())
            .filter(|w| !w.is_empty() && !stops.contains(&w.as_str()) && seen.insert(w.clone()))
            .collect();
        p.params.insert(
            "template".into(),
            format!("{} #{} #{}", body.join(" "), tags[0], tags[1]).into(),
        );
        p.params.insert("exact_copy_share".into(), 0.35.into());
        self.finish_campaign(ev, platform, &accounts, windows, posts);
    }

    fn plan_co_link(&mut self, s: i64) {
        let ev = self.new_event(EventKind::CoLink, "colink");
        let mut rng = self.event_rng(ev);
        let platform = self.campaign_platform();
        let n_acc = between(&mut rng, 10, 18) as usize;
        let accounts = self.dedicated_accounts(n_acc, platform);
        let domain = *choose(&mut rng, CAMPAIGN_DOMAINS);
        let topic = &TOPICS[*choose(&mut rng, &[5usize, 7, 3, 1])];
        let rounds = between(&mut rng, 4, 7);
        let mut t = s;
        let (mut posts, mut windows, mut links) = (Vec::new(), Vec::new(), Vec::new());
        let mut text = String::new();
        for _ in 0..rounds {
            let spread = 20 * 1000;
            if t + spread >= self.end {
                break;
            }
            let link = format!("https://{domain}/story/{}", 10_000 + below(&mut rng, 90_000));
            for &a in &accounts {
                let at = t + below(&mut rng, spread as u64) as i64;
                compose(
                    &mut rng,
                    &mut text,
                    Lang::En,
                    Subject::Topic(topic),
                    &Extras {
                        no_links: true,
                        ..Default::default()
                    },
                );
                text.push(' ');
                text.push_str(&link);
                if chance(&mut rng, 0.3) {
                    text.push_str("?utm_source=share&utm_campaign=");
                    text.push_str(domain.split('.').next().unwrap_or("c"));
                }
                posts.push(planted_post(a, platform, at, text.clone(), None, None));
            }
            windows.push(Window {
                start: Timestamp(t),
                end: Timestamp(t + spread),
            });
            links.push(link);
            t += spread + between(&mut rng, 30, 120) as i64 * MIN;
        }
        let p = &mut self.events[ev];
        p.topic = Some(topic.name.to_string());
        p.links = links;
        p.domains = vec![domain.to_string()];
        p.params.insert("seconds_within_round".into(), 20.into());
        self.finish_campaign(ev, platform, &accounts, windows, posts);
    }

    fn plan_repost_ring(&mut self, s: i64) {
        let ev = self.new_event(EventKind::RepostRing, "repostring");
        let mut rng = self.event_rng(ev);
        let platform = *choose(&mut rng, &[Platform::Twitter, Platform::Bluesky]);
        let n_acc = between(&mut rng, 10, 15) as usize;
        let accounts = self.dedicated_accounts(n_acc, platform);
        let topic = &TOPICS[*choose(&mut rng, &[5usize, 4, 9, 17])];
        let rounds = between(&mut rng, 6, 10);
        let mut t = s;
        let (mut posts, mut windows) = (Vec::new(), Vec::new());
        let mut text = String::new();
        for r in 0..rounds as usize {
            let spread = 45 * 1000;
            if t + spread >= self.end {
                break;
            }
            let author = accounts[r % accounts.len()];
            compose(&mut rng, &mut text, Lang::En, Subject::Topic(topic), &Extras::default());
            // The original's id is only known after serials are assigned:
            // reposts point at it by its index in this list, fixed below.
            let original_index = posts.len();
            posts.push(planted_post(author, platform, t, text.clone(), None, None));
            for &a in accounts.iter().filter(|&&a| a != author) {
                let at = t + 2000 + below(&mut rng, (spread - 2000) as u64) as i64;
                let rt = repost_text(platform, author, &text);
                posts.push(planted_post(
                    a,
                    platform,
                    at,
                    rt,
                    None,
                    Some(original_index.to_string()),
                ));
            }
            windows.push(Window {
                start: Timestamp(t),
                end: Timestamp(t + spread),
            });
            t += spread + between(&mut rng, 20, 90) as i64 * MIN;
        }
        let p = &mut self.events[ev];
        p.topic = Some(topic.name.to_string());
        p.params.insert("seconds_within_round".into(), 45.into());
        self.finish_campaign(ev, platform, &accounts, windows, posts);
    }

    fn finish_campaign(
        &mut self,
        ev: usize,
        platform: Platform,
        accounts: &[u64],
        windows: Vec<Window>,
        posts: Vec<Post>,
    ) {
        let p = &mut self.events[ev];
        p.platform = Some(platform);
        p.accounts = accounts.iter().map(|&a| crate::accounts::handle(a)).collect();
        p.start = windows.first().map(|w| w.start).unwrap_or(Timestamp(self.end));
        p.end = windows.last().map(|w| w.end).unwrap_or(Timestamp(self.end));
        p.params.insert("accounts".into(), accounts.len().into());
        p.params.insert("rounds".into(), windows.len().into());
        p.windows = windows;
        p.size = posts.len() as u64;
        self.lists.push((ev, posts));
    }

    /// Keeps planted posts at most half the stream: shrinks streamed
    /// events proportionally, and drops campaigns if they alone would take
    /// more than a quarter (only tiny streams).
    fn fit_budget(&mut self) {
        let posts = self.cfg.posts;
        let campaign: u64 = self.lists.iter().map(|(_, l)| l.len() as u64).sum();
        if campaign * 4 > posts {
            let drop: Vec<usize> = self.lists.iter().map(|(e, _)| *e).collect();
            self.lists.clear();
            for e in drop {
                self.events[e].size = 0;
            }
        }
        let campaign: u64 = self.lists.iter().map(|(_, l)| l.len() as u64).sum();
        let streamed: u64 = self.streams.iter().map(|s| s.size).sum();
        let room = (posts / 2).saturating_sub(campaign);
        if streamed > room {
            let f = room as f64 / streamed as f64;
            for s in &mut self.streams {
                s.size = (s.size as f64 * f).floor() as u64;
                self.events[s.event].size = s.size;
            }
        }
        // Events left without posts are not planted at all.
        let keep: Vec<bool> = self.events.iter().map(|e| e.size > 0).collect();
        if keep.iter().all(|&k| k) {
            return;
        }
        let mut remap = vec![usize::MAX; keep.len()];
        let mut kept = Vec::new();
        for (i, e) in std::mem::take(&mut self.events).into_iter().enumerate() {
            if keep[i] {
                remap[i] = kept.len();
                kept.push(e);
            }
        }
        self.events = kept;
        self.streams.retain(|s| keep[s.event]);
        for s in &mut self.streams {
            s.event = remap[s.event];
        }
        for (e, _) in &mut self.lists {
            *e = remap[*e];
        }
    }

    /// Gives every planted post a serial number after the organic ones,
    /// and writes ids, permalinks and labels into the campaign posts.
    fn assign_serials(&mut self, organic: u64) {
        let mut next = organic;
        let mut base = vec![0u64; self.events.len()];
        for (i, e) in self.events.iter().enumerate() {
            base[i] = next;
            next += e.size;
        }
        // Streamed events' ids are derived when the truth is asked for
        // (`StreamPlan::post_ids`), so the generator holds none of them.
        for s in &mut self.streams {
            s.serial_base = base[s.event];
        }
        for (ev, posts) in &mut self.lists {
            let event = &mut self.events[*ev];
            let ids: Vec<String> = posts
                .iter()
                .enumerate()
                .map(|(k, p)| post_id(base[*ev] + k as u64, platform_from_name(&p.platform), false))
                .collect();
            for (k, p) in posts.iter_mut().enumerate() {
                p.id = ids[k].clone();
                if let Some(idx) = p.repost_of.as_deref().and_then(|s| s.parse::<usize>().ok()) {
                    p.repost_of = ids.get(idx).cloned();
                }
                let mut url = String::new();
                let handle = p.author.clone().unwrap_or_default();
                crate::accounts::write_url(&mut url, platform_from_name(&p.platform), &handle, &p.id, "news");
                p.url = Some(url);
                p.labels = Labels::from_strs([("event", event.id.as_str())]);
            }
            // Stable sort: equal times keep their planned order.
            posts.sort_by_key(|p| p.created_at);
            event.post_ids = posts.iter().map(|p| p.id.clone()).collect();
        }
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn platform_from_name(name: &str) -> Platform {
    Platform::ALL
        .into_iter()
        .find(|p| p.name() == name)
        .unwrap_or(Platform::Twitter)
}

/// A campaign post, before its id, permalink and labels are known.
fn planted_post(
    account: u64,
    platform: Platform,
    at: i64,
    text: String,
    reply_to: Option<String>,
    repost_of: Option<String>,
) -> Post {
    Post {
        id: String::new(),
        platform: platform.name().to_string(),
        created_at: Some(Timestamp(at)),
        author: Some(crate::accounts::handle(account)),
        text,
        lang: Some("en".to_string()),
        reply_to,
        repost_of,
        url: None,
        labels: Labels::default(),
        source: "gen".to_string(),
        ..Default::default()
    }
}

/// The text of a repost: twitter's `RT @user: text`; other platforms
/// carry no text of their own.
pub(crate) fn repost_text(platform: Platform, author: u64, text: &str) -> String {
    if platform == Platform::Twitter {
        let mut s = String::with_capacity(text.len() + 32);
        s.push_str("RT");
        crate::compose::push_mention(&mut s, author);
        s.push_str(": ");
        s.push_str(text);
        s
    } else {
        String::new()
    }
}

/// A near-identical copy of a campaign message: 35% exact, otherwise one
/// or two small edits (an emoji, a word swapped, a different trailing
/// hashtag, extra exclamation marks).
fn copy_variant<R: RngCore>(rng: &mut R, body: &[String], tags: &[&str; 3]) -> String {
    let mut words: Vec<String> = body.to_vec();
    let mut last_tag = tags[1];
    let mut tail = String::new();
    if !chance(rng, 0.35) {
        for _ in 0..between(rng, 1, 2) {
            match below(rng, 4) {
                0 => {
                    tail.push(' ');
                    tail.push_str(crate::sample::pick(rng, EMOJI));
                }
                1 if words.len() > 2 => {
                    let i = 1 + below(rng, words.len() as u64 - 2) as usize;
                    words[i] = vocabulary(Lang::En).word(rng).to_string();
                }
                2 => last_tag = tags[2],
                _ => {
                    if let Some(w) = words.last_mut() {
                        let stem = w.trim_end_matches(['.', '?', '!']).to_string();
                        *w = stem + "!!";
                    }
                }
            }
        }
    }
    let mut s = words.join(" ");
    s.push_str(" #");
    s.push_str(tags[0]);
    s.push_str(" #");
    s.push_str(last_tag);
    s.push_str(&tail);
    s
}
