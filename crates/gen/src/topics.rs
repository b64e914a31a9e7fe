//! What generated posts talk about: background topics, brands, perennial
//! hashtags, and the invented topics that planted events introduce.
//!
//! A background topic is a cluster: a few core terms (the words a
//! detection feed for it would use), hashtags, link domains and related
//! words. A post about a topic nearly always carries one of its core terms
//! or hashtags, so the topic's [`TopicDef::query`] is a realistic feed with
//! high recall. Everything here is invented for the generator; the link
//! domains end in `.example` so they can never point anywhere real.

/// A background topic.
#[derive(Debug)]
pub struct TopicDef {
    pub name: &'static str,
    /// Share of organic posts about this topic.
    pub share: f64,
    /// Core terms (may be phrases).
    pub terms: &'static [&'static str],
    /// Hashtags without `#`.
    pub hashtags: &'static [&'static str],
    /// Link domains.
    pub domains: &'static [&'static str],
    /// Related words, drawn more often in this topic's posts.
    pub words: &'static [&'static str],
    /// Cashtags without `$`, for market topics.
    pub cashtags: &'static [&'static str],
}

impl TopicDef {
    /// A feed query that matches the topic's posts:
    /// `"solar flare" OR aurora OR #solarflare ...`.
    pub fn query(&self) -> String {
        let mut parts: Vec<String> = self
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
        parts.extend(self.hashtags.iter().map(|h| format!("#{h}")));
        parts.join(" OR ")
    }
}

macro_rules! topic {
    ($name:expr, $share:expr, [$($t:expr),*], [$($h:expr),*], [$($d:expr),*], [$($w:expr),*] $(, [$($c:expr),*])?) => {
        TopicDef {
            name: $name,
            share: $share,
            terms: &[$($t),*],
            hashtags: &[$($h),*],
            domains: &[$($d),*],
            words: &[$($w),*],
            cashtags: &[$($($c),*)?],
        }
    };
}

/// Background topics. Their shares sum to 0.7; the remaining 30% of organic
/// posts are general chatter about nothing in particular.
pub static TOPICS: &[TopicDef] = &[
    topic!(
        "space-weather",
        0.015,
        ["solar flare", "aurora", "geomagnetic storm"],
        ["solarflare", "aurora"],
        ["spaceweather.example", "skywatch.example"],
        [
            "sun",
            "sky",
            "lights",
            "satellite",
            "radio",
            "glow",
            "north",
            "forecast",
            "photos",
            "blackout",
            "x-class"
        ]
    ),
    topic!(
        "transit",
        0.040,
        ["metro strike", "train delays", "bus lanes"],
        ["commute", "metrostrike"],
        ["citytransit.example", "railnews.example"],
        [
            "platform",
            "signal",
            "line",
            "cancelled",
            "rush",
            "station",
            "tickets",
            "drivers",
            "union",
            "timetable"
        ]
    ),
    topic!(
        "football",
        0.070,
        ["champions cup", "penalty", "transfer window"],
        ["matchday", "football"],
        ["goalzone.example", "sportsdaily.example"],
        ["striker", "keeper", "referee", "var", "derby", "lineup", "injury", "goal", "fans", "stadium"]
    ),
    topic!(
        "climate",
        0.040,
        ["heatwave", "climate summit", "carbon tax"],
        ["climate", "heatwave"],
        ["greenledger.example", "climatewire.example"],
        [
            "emissions",
            "warming",
            "drought",
            "temperatures",
            "record",
            "renewables",
            "solar",
            "wind",
            "targets",
            "activists"
        ]
    ),
    topic!(
        "tech",
        0.060,
        ["language model", "chip shortage", "open source"],
        ["ai", "tech"],
        ["bytebeat.example", "devjournal.example"],
        [
            "startup",
            "release",
            "update",
            "benchmark",
            "gpu",
            "developers",
            "privacy",
            "outage",
            "launch",
            "feature"
        ]
    ),
    topic!(
        "elections",
        0.045,
        ["city council", "ballot", "polling station"],
        ["vote", "election"],
        ["civicdesk.example", "pollwatch.example"],
        [
            "candidate",
            "turnout",
            "results",
            "debate",
            "campaign",
            "voters",
            "count",
            "recount",
            "district",
            "mayor"
        ]
    ),
    topic!(
        "storms",
        0.030,
        ["flood warning", "hurricane", "storm surge"],
        ["stormwatch", "flood"],
        ["weatherdesk.example", "floodline.example"],
        ["rainfall", "evacuate", "landfall", "gusts", "power", "outages", "shelter", "coast", "levels", "rescue"]
    ),
    topic!(
        "health",
        0.035,
        ["flu season", "vaccine clinic", "hospital wait"],
        ["health", "flu"],
        ["healthbeat.example", "clinicnews.example"],
        [
            "symptoms",
            "doses",
            "nurses",
            "emergency",
            "cases",
            "beds",
            "appointments",
            "fever",
            "pharmacy",
            "outbreak"
        ]
    ),
    topic!(
        "music",
        0.050,
        ["new album", "world tour", "festival lineup"],
        ["music", "nowplaying"],
        ["soundcheck.example", "gigguide.example"],
        [
            "single",
            "tracklist",
            "headliner",
            "tickets",
            "encore",
            "vinyl",
            "chorus",
            "setlist",
            "debut",
            "remix"
        ]
    ),
    topic!(
        "markets",
        0.030,
        ["interest rates", "stock market", "inflation"],
        ["markets", "economy"],
        ["tickertape.example", "moneydesk.example"],
        [
            "shares",
            "earnings",
            "bonds",
            "investors",
            "rally",
            "selloff",
            "dividend",
            "forecast",
            "recession",
            "yields"
        ],
        ["ZNTR", "CRVX", "NMBS"]
    ),
    topic!(
        "gaming",
        0.040,
        ["patch notes", "speedrun", "game awards"],
        ["gaming", "indiegame"],
        ["pixelpress.example", "playreport.example"],
        [
            "console",
            "nerf",
            "buff",
            "boss",
            "level",
            "trailer",
            "beta",
            "servers",
            "multiplayer",
            "controller"
        ]
    ),
    topic!(
        "food",
        0.030,
        ["sourdough", "street food", "recipe"],
        ["foodie", "baking"],
        ["forkandtable.example", "kitchennotes.example"],
        [
            "oven",
            "flour",
            "spicy",
            "dumplings",
            "noodles",
            "brunch",
            "crust",
            "market",
            "vegan",
            "sauce"
        ]
    ),
    topic!(
        "earthquake",
        0.010,
        ["earthquake", "aftershock", "magnitude"],
        ["earthquake", "地震"],
        ["quakewatch.example", "seismicnow.example"],
        [
            "tremor",
            "epicentre",
            "shaking",
            "buildings",
            "tsunami",
            "depth",
            "felt",
            "survey",
            "damage",
            "fault"
        ]
    ),
    topic!(
        "housing",
        0.025,
        ["rent prices", "housing crisis", "tenants union"],
        ["housing", "renters"],
        ["homefront.example", "citydesk.example"],
        [
            "landlords",
            "eviction",
            "deposit",
            "mortgage",
            "construction",
            "zoning",
            "tenants",
            "affordable",
            "flats",
            "waitlist"
        ]
    ),
    topic!(
        "space",
        0.025,
        ["rocket launch", "lunar lander", "orbit"],
        ["space", "launch"],
        ["orbitnews.example", "launchpad.example"],
        [
            "booster",
            "countdown",
            "payload",
            "astronauts",
            "crater",
            "telescope",
            "mission",
            "liftoff",
            "capsule",
            "landing"
        ]
    ),
    topic!(
        "screen",
        0.035,
        ["box office", "season finale", "trailer"],
        ["tv", "movies"],
        ["reelreport.example", "showbiz.example"],
        [
            "spoilers",
            "cast",
            "director",
            "episode",
            "premiere",
            "sequel",
            "streaming",
            "actor",
            "plot",
            "cliffhanger"
        ]
    ),
    topic!(
        "wildfire",
        0.012,
        ["wildfire", "evacuation order", "air quality"],
        ["wildfire", "smoke"],
        ["firewatch.example", "airnow.example"],
        [
            "containment",
            "acres",
            "firefighters",
            "embers",
            "haze",
            "masks",
            "ridge",
            "winds",
            "crews",
            "burn"
        ]
    ),
    topic!(
        "gadgets",
        0.030,
        ["Nimbus Phone", "Corvex", "battery life"],
        ["nimbus", "gadgets"],
        ["gadgetlab.example", "unboxed.example"],
        ["screen", "camera", "charger", "review", "preorder", "firmware", "case", "specs", "foldable", "earbuds"]
    ),
    topic!(
        "cycling",
        0.012,
        ["tour stage", "yellow jersey", "breakaway"],
        ["cycling", "tourstage"],
        ["pelotonpost.example", "cyclingdaily.example"],
        ["sprint", "climb", "peloton", "crash", "descent", "team", "gc", "summit", "attack", "finish"]
    ),
    topic!(
        "science",
        0.020,
        ["new species", "telescope", "fossil"],
        ["science", "research"],
        ["labnotes.example", "sciencedaily.example"],
        [
            "discovery",
            "researchers",
            "journal",
            "samples",
            "genome",
            "dinosaur",
            "ocean",
            "cells",
            "galaxy",
            "experiment"
        ]
    ),
    topic!(
        "travel",
        0.025,
        ["flight cancelled", "Zentara Air", "lost luggage"],
        ["travel", "avgeek"],
        ["tripwire.example", "gateinfo.example"],
        [
            "airport",
            "gate",
            "boarding",
            "delay",
            "refund",
            "passengers",
            "luggage",
            "runway",
            "hotel",
            "layover"
        ]
    ),
    topic!(
        "education",
        0.021,
        ["school closures", "exam results", "student loans"],
        ["education", "teachers"],
        ["classnotes.example", "campusnews.example"],
        [
            "pupils",
            "teachers",
            "grades",
            "tuition",
            "campus",
            "semester",
            "curriculum",
            "graduation",
            "funding",
            "lectures"
        ]
    ),
];

/// Hashtags that are always frequent, whatever the topic.
pub static PERENNIAL_HASHTAGS: &[&str] = &[
    "news",
    "love",
    "photography",
    "tbt",
    "breaking",
    "mondaymotivation",
    "travel",
];

/// Invented brand and outlet names that chatter mentions now and then
/// (useful to benchmarks that build OR-lists of brand names).
pub static BRANDS: &[&str] = &[
    "Nimbus Phone",
    "Corvex",
    "Zentara Air",
    "Brightloaf",
    "Quillmark",
    "Orbitra",
    "Halcyon Bank",
    "Veltro Motors",
    "Pinebrook Foods",
    "Lumora",
    "Kestrel Mobile",
    "Tidepool Coffee",
];

/// Accounts of invented outlets and brands, mentioned often (the kind of
/// accounts a redaction allow-list would keep).
pub static PUBLIC_ACCOUNTS: &[&str] = &[
    "dailyglobe_news",
    "metro_transit_info",
    "nimbus_support",
    "city_weather_desk",
    "zentara_air",
];

/// Emoji appended to some posts.
pub static EMOJI: &[&str] = &["😂", "🔥", "❤️", "👀", "🙏", "😭", "👍", "🎉", "😡", "🤔", "✨", "💯"];

/// A topic that does not exist before its planted start.
#[derive(Debug)]
pub struct EmergingDef {
    pub name: &'static str,
    /// New terms (never in any vocabulary; the first is the main name).
    pub terms: &'static [&'static str],
    pub hashtag: &'static str,
    pub domain: &'static str,
    /// Ordinary words that accompany it.
    pub words: &'static [&'static str],
}

/// The pool of emerging topics; planted ones are taken in order.
pub static EMERGING: &[EmergingDef] = &[
    EmergingDef {
        name: "quorvex-outbreak",
        terms: &["quorvex", "quorvex virus"],
        hashtag: "quorvex",
        domain: "quorvexinfo.example",
        words: &["cases", "symptoms", "spread", "officials", "testing"],
    },
    EmergingDef {
        name: "glimmerchain",
        terms: &["glimmerchain", "glimmer token"],
        hashtag: "glimmerchain",
        domain: "glimmerchain.example",
        words: &["wallet", "price", "launch", "exchange", "holders"],
    },
    EmergingDef {
        name: "skarnett-bridge",
        terms: &["skarnett bridge", "skarnett"],
        hashtag: "skarnettbridge",
        domain: "skarnettnews.example",
        words: &["collapse", "traffic", "engineers", "closed", "inspection"],
    },
    EmergingDef {
        name: "velloway-app",
        terms: &["velloway", "velloway app"],
        hashtag: "velloway",
        domain: "velloway.example",
        words: &["download", "trend", "filter", "viral", "users"],
    },
    EmergingDef {
        name: "brindlemoth",
        terms: &["brindlemoth", "brindle moths"],
        hashtag: "brindlemoth",
        domain: "brindlewatch.example",
        words: &["swarm", "gardens", "crops", "sightings", "invasive"],
    },
    EmergingDef {
        name: "ostrava-accord",
        terms: &["ostravex accord", "ostravex"],
        hashtag: "ostravexaccord",
        domain: "accordwatch.example",
        words: &["treaty", "signed", "talks", "delegates", "summit"],
    },
    EmergingDef {
        name: "thundrel-festival",
        terms: &["thundrel", "thundrel fest"],
        hashtag: "thundrelfest",
        domain: "thundrelfest.example",
        words: &["lineup", "tickets", "stage", "crowd", "camping"],
    },
    EmergingDef {
        name: "mirecroft-recall",
        terms: &["mirecroft", "mirecroft recall"],
        hashtag: "mirecroftrecall",
        domain: "mirecroft.example",
        words: &["recall", "batteries", "refund", "faulty", "customers"],
    },
    EmergingDef {
        name: "zephyrion-comet",
        terms: &["zephyrion", "zephyrion comet"],
        hashtag: "zephyrion",
        domain: "cometwatch.example",
        words: &["tail", "telescope", "visible", "night", "orbit"],
    },
    EmergingDef {
        name: "pallaxo-diet",
        terms: &["pallaxo", "pallaxo diet"],
        hashtag: "pallaxodiet",
        domain: "pallaxo.example",
        words: &["weight", "meals", "influencers", "doctors", "trend"],
    },
    EmergingDef {
        name: "drevlin-strike",
        terms: &["drevlin", "drevlin strike"],
        hashtag: "drevlinstrike",
        domain: "drevlinworkers.example",
        words: &["workers", "picket", "wages", "factory", "union"],
    },
    EmergingDef {
        name: "corrantide",
        terms: &["corrantide", "corran tide"],
        hashtag: "corrantide",
        domain: "coastwatch.example",
        words: &["algae", "beaches", "red", "fish", "warning"],
    },
    EmergingDef {
        name: "yxhaven-leak",
        terms: &["yxhaven", "yxhaven leak"],
        hashtag: "yxhavenleak",
        domain: "yxhaven.example",
        words: &["documents", "leaked", "passwords", "breach", "accounts"],
    },
    EmergingDef {
        name: "fennimore-verdict",
        terms: &["fennimore", "fennimore verdict"],
        hashtag: "fennimoreverdict",
        domain: "courtdesk.example",
        words: &["jury", "verdict", "appeal", "court", "sentence"],
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_shares_sum_to_seventy_percent() {
        let s: f64 = TOPICS.iter().map(|t| t.share).sum();
        assert!((s - 0.70).abs() < 1e-9, "{s}");
    }

    #[test]
    fn queries_quote_phrases() {
        assert_eq!(
            TOPICS[0].query(),
            "\"solar flare\" OR aurora OR \"geomagnetic storm\" OR #solarflare OR #aurora"
        );
    }

    #[test]
    fn emerging_terms_appear_nowhere_else() {
        for e in EMERGING {
            for t in e.terms.iter().flat_map(|t| t.split(' ')).chain([e.hashtag]) {
                if e.words.contains(&t) {
                    continue;
                }
                for topic in TOPICS {
                    assert!(
                        !topic.terms.contains(&t) && !topic.words.contains(&t) && !topic.hashtags.contains(&t),
                        "{t}"
                    );
                }
            }
        }
    }
}
