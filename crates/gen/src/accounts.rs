//! Platforms, invented account handles, post ids and permalinks.
//!
//! An account is a number; its platform and handle are derived from that
//! number by a fixed mixing function, so nothing per account is stored and
//! a handle can be rebuilt anywhere (for mentions, reposts, the truth
//! file). Handles are invented (`quiet_heron4821`) and end in the account
//! number, so they are unique. A post's id is derived from its serial
//! number, unique across the whole stream.

use crate::sample::mix;
use serde::Serialize;
use std::fmt::Write;

/// The platforms a generated stream mixes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    Twitter,
    Bluesky,
    Mastodon,
    Reddit,
}

impl Platform {
    pub const ALL: [Platform; 4] = [
        Platform::Twitter,
        Platform::Bluesky,
        Platform::Mastodon,
        Platform::Reddit,
    ];

    /// The name written in `Post.platform`.
    pub fn name(self) -> &'static str {
        match self {
            Platform::Twitter => "twitter",
            Platform::Bluesky => "bluesky",
            Platform::Mastodon => "mastodon",
            Platform::Reddit => "reddit",
        }
    }

    /// Picks a platform from a hash: twitter 45%, bluesky 25%, mastodon
    /// 15%, reddit 15%.
    pub(crate) fn from_hash(h: u64) -> Platform {
        match h % 20 {
            0..=8 => Platform::Twitter,
            9..=13 => Platform::Bluesky,
            14..=16 => Platform::Mastodon,
            _ => Platform::Reddit,
        }
    }

    /// Whether the platform has reposts (reddit has none here).
    pub(crate) fn has_reposts(self) -> bool {
        self != Platform::Reddit
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// The platform of account `n`.
#[inline]
pub(crate) fn platform_of(account: u64) -> Platform {
    Platform::from_hash(mix(account ^ 0x0AC0_0C0A))
}

const ADJECTIVES: &[&str] = &[
    "quiet", "brave", "lucky", "sunny", "misty", "rapid", "gentle", "clever", "amber", "silver", "hidden", "little",
    "wild", "cosmic", "dusty", "frosty", "golden", "humble", "jolly", "lazy", "mellow", "noble", "odd", "proud",
    "rusty", "salty", "tiny", "urban", "vivid", "witty",
];
const NOUNS: &[&str] = &[
    "heron", "otter", "maple", "comet", "pixel", "harbor", "falcon", "badger", "cedar", "lantern", "meadow", "pebble",
    "raven", "sparrow", "tulip", "walrus", "willow", "yeti", "zephyr", "koala", "bison", "cactus", "dolphin", "ember",
    "fjord", "glacier", "hazel", "iris", "juniper", "kettle",
];
const MASTODON_INSTANCES: &[&str] = &["toot.example", "social.example", "mstdn.example", "fedi.example"];

/// Appends the handle of account `n` (as `Post.author` carries it) to `out`.
pub(crate) fn write_handle(out: &mut String, account: u64) {
    let h = mix(account);
    let adj = ADJECTIVES[(h % ADJECTIVES.len() as u64) as usize];
    let noun = NOUNS[((h >> 16) % NOUNS.len() as u64) as usize];
    match platform_of(account) {
        Platform::Twitter => {
            let _ = write!(out, "{adj}_{noun}{account}");
        }
        Platform::Bluesky => {
            let _ = write!(out, "{adj}{noun}{account}.bsky.social");
        }
        Platform::Mastodon => {
            let inst = MASTODON_INSTANCES[((h >> 32) % MASTODON_INSTANCES.len() as u64) as usize];
            let _ = write!(out, "{adj}_{noun}{account}@{inst}");
        }
        Platform::Reddit => {
            let mut a = adj.to_string();
            let mut n = noun.to_string();
            crate::vocab::capitalise_from(&mut a, 0);
            crate::vocab::capitalise_from(&mut n, 0);
            let _ = write!(out, "{a}{n}{account}");
        }
    }
}

/// The handle of account `n`.
pub fn handle(account: u64) -> String {
    let mut s = String::with_capacity(32);
    write_handle(&mut s, account);
    s
}

/// The part of a handle used in an `@mention` and in permalinks: the whole
/// handle on twitter, bluesky and reddit, the user part on mastodon.
#[cfg(test)]
pub(crate) fn mention_part(handle: &str) -> &str {
    handle.split('@').next().unwrap_or(handle)
}

const BASE32_SORT: &[u8; 32] = b"234567abcdefghijklmnopqrstuvwxyz";

/// Appends the id of the post with this serial number to `out`.
/// Twitter: a 19-digit snowflake-like number; bluesky: a 13-character
/// record key; mastodon: an 18-digit number; reddit: `t3_`/`t1_` + base 36.
pub(crate) fn write_post_id(out: &mut String, serial: u64, platform: Platform, comment: bool) {
    match platform {
        Platform::Twitter => {
            let _ = write!(out, "{}", 1_890_000_000_000_000_000u64 + serial);
        }
        Platform::Bluesky => {
            // Shaped like an atproto TID: microseconds since the epoch
            // shifted left by 10 bits (here a fixed instant plus the serial).
            let mut v = (1_772_409_600_000_000u64 << 10) + serial;
            let mut buf = [0u8; 13];
            for b in buf.iter_mut().rev() {
                *b = BASE32_SORT[(v & 31) as usize];
                v >>= 5;
            }
            out.push_str(std::str::from_utf8(&buf).unwrap_or("3zzzzzzzzzzzz"));
        }
        Platform::Mastodon => {
            let _ = write!(out, "{}", 110_000_000_000_000_000u64 + serial);
        }
        Platform::Reddit => {
            out.push_str(if comment { "t1_" } else { "t3_" });
            let mut v = serial + 36u64.pow(6);
            let mut buf = [0u8; 16];
            let mut i = buf.len();
            while v > 0 && i > 0 {
                i -= 1;
                buf[i] = b"0123456789abcdefghijklmnopqrstuvwxyz"[(v % 36) as usize];
                v /= 36;
            }
            out.push_str(std::str::from_utf8(&buf[i..]).unwrap_or("0"));
        }
    }
}

/// The id of the post with this serial number.
pub(crate) fn post_id(serial: u64, platform: Platform, comment: bool) -> String {
    let mut s = String::with_capacity(24);
    write_post_id(&mut s, serial, platform, comment);
    s
}

/// Appends a permalink for a post to `out`.
pub(crate) fn write_url(out: &mut String, platform: Platform, handle: &str, id: &str, community: &str) {
    match platform {
        Platform::Twitter => {
            let _ = write!(out, "https://x.com/{handle}/status/{id}");
        }
        Platform::Bluesky => {
            let _ = write!(out, "https://bsky.app/profile/{handle}/post/{id}");
        }
        Platform::Mastodon => {
            let (user, inst) = handle.split_once('@').unwrap_or((handle, "toot.example"));
            let _ = write!(out, "https://{inst}/@{user}/{id}");
        }
        Platform::Reddit => {
            let short = id.get(3..).unwrap_or(id);
            let _ = write!(out, "https://www.reddit.com/r/{community}/comments/{short}/");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_distinct_across_platforms_and_serials() {
        let mut seen = std::collections::BTreeSet::new();
        for serial in 0..2000u64 {
            for p in Platform::ALL {
                assert!(seen.insert(post_id(serial, p, false)));
            }
            assert!(seen.insert(post_id(serial, Platform::Reddit, true)));
        }
        assert_eq!(post_id(0, Platform::Twitter, false), "1890000000000000000");
        let tid = post_id(1, Platform::Bluesky, false);
        assert_eq!(tid.len(), 13);
        assert!(tid.starts_with('3'), "{tid}");
    }

    #[test]
    fn handles_are_unique_and_platform_shaped() {
        let mut seen = std::collections::BTreeSet::new();
        let mut shares = [0u32; 4];
        for a in 0..10_000u64 {
            let h = handle(a);
            assert!(seen.insert(h.clone()), "{h}");
            match platform_of(a) {
                Platform::Bluesky => assert!(h.ends_with(".bsky.social")),
                Platform::Mastodon => assert!(h.contains('@')),
                _ => assert!(h.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')),
            }
            shares[platform_of(a).index()] += 1;
        }
        assert!((4200..4800).contains(&shares[0]), "{shares:?}");
    }
}
