//! What the two Twitter/X adapters share: the idea is that v1.1 and v2 differ
//! in layout but agree on what a post is, so the rules for ids, text, language
//! tags, permalinks and de-duplication live here once.
//!
//! - [`Scalar`] reads a JSON string without copying it when it has no escapes,
//!   and also accepts an integer, because Twitter writes ids both ways.
//! - [`RecentIds`] remembers which post ids were already emitted, so a tweet
//!   embedded in many retweets (or repeated across response pages) becomes
//!   one post. Its memory is bounded.
//! - [`retweet_text`] repairs the classic truncated retweet text.
//! - [`source_lang`] turns Twitter's language tag into an ISO 639-1 code, or
//!   `None` for its "no language" codes.

use super::{DecodeError, DecodeOutput};
use serde::de::{Deserialize, Deserializer, Visitor};
use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;
use std::hash::{Hash, Hasher};
use tidewatch_core::{Deletion, Event, Post, Timestamp};

/// The platform name both adapters write.
pub(crate) const PLATFORM: &str = "twitter";

/// A JSON string, borrowed from the input when it holds no escapes, or an
/// integer rendered in decimal (ids appear as `123` and as `"123"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Scalar<'a>(pub Cow<'a, str>);

impl Scalar<'_> {
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Scalar<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ScalarVisitor<'a>(std::marker::PhantomData<&'a ()>);

        impl<'de: 'a, 'a> Visitor<'de> for ScalarVisitor<'a> {
            type Value = Scalar<'a>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or an integer")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Scalar(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Scalar(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Scalar(Cow::Owned(v)))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Scalar(Cow::Owned(v.to_string())))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Scalar(Cow::Owned(v.to_string())))
            }
        }

        d.deserialize_any(ScalarVisitor(std::marker::PhantomData))
    }
}

/// The text of an optional scalar, with empty strings treated as absent.
pub(crate) fn non_empty<'s>(s: &'s Option<Scalar<'_>>) -> Option<&'s str> {
    s.as_ref().map(Scalar::as_str).filter(|s| !s.is_empty())
}

/// Parses a `created_at`; a value that is present but unreadable is an error
/// of the record, not a silently missing time.
pub(crate) fn parse_time(field: &str, value: Option<&str>) -> Result<Option<Timestamp>, DecodeError> {
    match value {
        None => Ok(None),
        Some(s) => Timestamp::parse(s)
            .map(Some)
            .map_err(|e| DecodeError::field(field, e.to_string())),
    }
}

/// Twitter's language tag as tidewatch keeps it.
///
/// `und` (undetermined) and Twitter's private codes for posts without
/// language (`zxx`, and the `q..` codes such as `qme` for media only or `qht`
/// for hashtags only) become `None`, so the language stage detects instead of
/// trusting a non-language. The legacy codes Twitter still writes for
/// Indonesian (`in`) and Hebrew (`iw`) become today's ISO 639-1 codes.
pub(crate) fn source_lang(tag: Option<&str>) -> Option<String> {
    let tag = tag?.trim();
    match tag {
        "" | "und" | "zxx" | "art" => None,
        "in" => Some("id".to_string()),
        "iw" => Some("he".to_string()),
        t if t.len() == 3 && t.starts_with('q') => None,
        t => Some(t.to_string()),
    }
}

/// The public permalink of a tweet (downstream drops it; it is kept here so
/// the canonical form of a post is complete).
pub(crate) fn permalink(screen_name: Option<&str>, id: &str) -> String {
    match screen_name {
        Some(name) => format!("https://twitter.com/{name}/status/{id}"),
        None => format!("https://twitter.com/i/web/status/{id}"),
    }
}

/// The text to keep for a retweet.
///
/// Twitter builds a retweet's own text as `RT @author: ` followed by the
/// original, cut to the old length limit and ended with `…`. A cut text loses
/// the hashtags and links at the end, which later stages extract, so when the
/// retweet's own text ends with `…` and the original is at hand, the text is
/// rebuilt as `RT @author: ` + the original's full text. The `RT @author: `
/// prefix of the retweet itself is kept when it has one, since it names the
/// handle as it was when the retweet was made. An uncut text is kept as
/// Twitter wrote it.
pub(crate) fn retweet_text<'t>(own: &'t str, original: Option<(&str, &str)>) -> Cow<'t, str> {
    match original {
        Some((author, full)) if own.ends_with('…') && !full.is_empty() => {
            let own_prefix = own
                .strip_prefix("RT @")
                .and_then(|rest| rest.find(": "))
                .map(|end| &own[..end + "RT @".len() + 2]);
            Cow::Owned(match own_prefix {
                Some(prefix) => format!("{prefix}{full}"),
                None => format!("RT @{author}: {full}"),
            })
        }
        _ => Cow::Borrowed(own),
    }
}

/// How many ids one generation of [`RecentIds`] holds before it is retired.
const GENERATION: usize = 1 << 20;

/// The ids of posts already emitted, remembered for a bounded time.
///
/// A live stream never ends, so remembering every id would grow without
/// bound. Ids are kept in two generations: when the current one is full, it
/// becomes the previous one and the old previous one is dropped. So at least
/// the last [`GENERATION`] distinct ids are always remembered, and memory
/// stays under about 2 × 2^20 × 16 bytes. Duplicates in Twitter data come
/// close together (a tweet and its retweets, overlapping pages), which this
/// catches; a repeat from much further back passes, and the store's
/// de-duplication by id hash removes it.
///
/// Numeric ids are stored as `u64`; any other id as a 64-bit hash of its
/// text (a collision among a few million ids has a chance of about 1e-7).
pub(crate) struct RecentIds {
    current: HashSet<u64>,
    previous: HashSet<u64>,
    generation: usize,
}

impl Default for RecentIds {
    fn default() -> Self {
        RecentIds::with_generation(GENERATION)
    }
}

impl RecentIds {
    fn with_generation(generation: usize) -> Self {
        RecentIds {
            current: HashSet::new(),
            previous: HashSet::new(),
            generation: generation.max(1),
        }
    }

    fn key(id: &str) -> u64 {
        match id.parse::<u64>() {
            Ok(n) => n,
            Err(_) => {
                // A fixed-key hasher, so the same id maps to the same key in
                // every run.
                #[allow(deprecated)]
                let mut h = std::hash::SipHasher::new();
                id.hash(&mut h);
                h.finish()
            }
        }
    }

    /// Records `id`; returns `false` when it was already recorded.
    pub(crate) fn insert(&mut self, id: &str) -> bool {
        let key = Self::key(id);
        if self.previous.contains(&key) || !self.current.insert(key) {
            return false;
        }
        if self.current.len() >= self.generation {
            self.previous = std::mem::take(&mut self.current);
        }
        true
    }
}

/// Emits the posts one record produced, each id once: a post whose id was
/// emitted before (by this record or an earlier one) counts as ignored.
/// Called only once the whole record has decoded, so a failed record leaves
/// the remembered ids untouched.
pub(crate) fn emit_unique(posts: Vec<Post>, seen: &mut RecentIds, out: &mut DecodeOutput) {
    for post in posts {
        if seen.insert(&post.id) {
            out.events.push(Event::Post(post));
        } else {
            out.ignored += 1;
        }
    }
}

/// Decodes one record of Twitter JSON, an object or an array of objects,
/// with `collect` sorting each object into posts, deletions or ignored.
/// Everything is collected before anything is emitted, so a failed record
/// changes neither `out` nor the remembered ids.
pub(crate) fn decode_record<'de, T: serde::Deserialize<'de>>(
    record: &'de [u8],
    seen: &mut RecentIds,
    out: &mut DecodeOutput,
    collect: impl Fn(&T, &mut Vec<Post>, &mut Vec<Deletion>) -> Result<u64, DecodeError>,
) -> Result<(), DecodeError> {
    let first = record.iter().copied().find(|b| !b.is_ascii_whitespace());
    let objects: Vec<T> = match first {
        Some(b'[') => serde_json::from_slice(record)?,
        Some(b'{') => vec![serde_json::from_slice(record)?],
        _ => return Err(DecodeError::Other("expected a JSON object or array".to_string())),
    };
    let mut posts = Vec::new();
    let mut deletions = Vec::new();
    let mut ignored = 0;
    for object in &objects {
        ignored += collect(object, &mut posts, &mut deletions)?;
    }
    out.ignored += ignored;
    out.events.extend(deletions.into_iter().map(Event::Delete));
    emit_unique(posts, seen, out);
    Ok(())
}

/// `entities` of a tweet: only the links matter here.
#[derive(serde::Deserialize, Default)]
#[serde(default)]
pub(crate) struct UrlEntities<'a> {
    // `media` links are left short on purpose: they expand to the post's
    // own permalink, which tidewatch never keeps.
    #[serde(borrow)]
    pub(crate) urls: Vec<UrlEntity<'a>>,
}

/// One shortened link: the `t.co` form in the text and where it leads.
#[derive(serde::Deserialize, Default)]
#[serde(default)]
pub(crate) struct UrlEntity<'a> {
    #[serde(borrow)]
    pub(crate) url: Option<Scalar<'a>>,
    #[serde(borrow)]
    pub(crate) expanded_url: Option<Scalar<'a>>,
    /// v2: the target after following redirects.
    #[serde(borrow)]
    pub(crate) unwound_url: Option<Scalar<'a>>,
}

/// Replaces Twitter's `t.co` short links in `text` by the links they stand
/// for, so that link domains and co-link detection see the real target
/// (every link in a tweet is `t.co` otherwise).
pub(crate) fn expand_links<'t>(text: Cow<'t, str>, entities: &[Option<&UrlEntities<'_>>]) -> Cow<'t, str> {
    let mut text = text;
    for e in entities.iter().flatten() {
        for u in &e.urls {
            let (Some(short), Some(long)) = (
                non_empty(&u.url),
                non_empty(&u.unwound_url).or_else(|| non_empty(&u.expanded_url)),
            ) else {
                continue;
            };
            if text.contains(short) {
                text = Cow::Owned(text.replace(short, long));
            }
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_borrow_plain_strings_and_render_integers() {
        let s: Scalar = serde_json::from_str(r#""12""#).unwrap();
        assert!(matches!(s.0, Cow::Borrowed("12")));
        let s: Scalar = serde_json::from_str(r#""a\nb""#).unwrap();
        assert_eq!(s.as_str(), "a\nb");
        let s: Scalar = serde_json::from_str("1234567890123456789").unwrap();
        assert_eq!(s.as_str(), "1234567890123456789");
        assert!(serde_json::from_str::<Scalar>("1.5").is_err());
    }

    #[test]
    fn short_links_are_expanded() {
        let e: UrlEntities = serde_json::from_str(
            r#"{"urls":[{"url":"https://t.co/a","expanded_url":"https://news.example.org/x?utm=1"},{"url":"https://t.co/b","expanded_url":"https://e.example/y","unwound_url":"https://final.example/z"},{"url":"https://t.co/c"}]}"#,
        )
        .unwrap();
        let out = expand_links(
            "see https://t.co/a and https://t.co/b, https://t.co/c".into(),
            &[Some(&e), None],
        );
        assert_eq!(
            out,
            "see https://news.example.org/x?utm=1 and https://final.example/z, https://t.co/c"
        );
    }

    #[test]
    fn language_tags_are_normalised() {
        assert_eq!(source_lang(Some("en")).as_deref(), Some("en"));
        assert_eq!(source_lang(Some("in")).as_deref(), Some("id"));
        assert_eq!(source_lang(Some("iw")).as_deref(), Some("he"));
        for none in ["und", "zxx", "qme", "qht", "qam", "", "art"] {
            assert_eq!(source_lang(Some(none)), None, "{none}");
        }
        assert_eq!(source_lang(None), None);
    }

    #[test]
    fn truncated_retweets_are_rebuilt_from_the_original() {
        let own = "RT @alice_example: the first words of a long…";
        let full = "the first words of a long text #tides";
        assert_eq!(
            retweet_text(own, Some(("alice_example", full))),
            "RT @alice_example: the first words of a long text #tides"
        );
        assert_eq!(retweet_text(own, None), own);
        // The handle the retweet shows wins over the original's current one.
        assert_eq!(
            retweet_text(own, Some(("alice_renamed", full))),
            "RT @alice_example: the first words of a long text #tides"
        );
        assert_eq!(
            retweet_text("Spring tides…", Some(("alice_example", "Spring tides tonight"))),
            "RT @alice_example: Spring tides tonight"
        );
        let uncut = "RT @alice_example: short";
        assert_eq!(retweet_text(uncut, Some(("alice_example", "short"))), uncut);
    }

    #[test]
    fn recent_ids_remember_across_a_generation_change() {
        let mut ids = RecentIds::with_generation(3);
        assert!(ids.insert("1"));
        assert!(!ids.insert("1"));
        assert!(ids.insert("not-a-number"));
        assert!(!ids.insert("not-a-number"));
        // The third id fills the generation: it becomes the previous one.
        assert!(ids.insert("3"));
        assert!(!ids.insert("1"));
        assert!(ids.insert("4") && ids.insert("5") && ids.insert("6"));
        // Two rotations later, "1" is forgotten and passes again.
        assert!(ids.insert("1"));
    }
}
