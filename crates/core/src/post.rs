//! The canonical post, and the deletion event.
//!
//! A [`Post`] is what every adapter produces and every later stage reads. Its
//! JSON form, one object a line, is tidewatch's interchange format
//! ("canonical JSONL"):
//!
//! ```text
//! {"id": str, "platform": str, "created_at": RFC 3339 UTC, "author": str,
//!  "text": str, "lang": str|null, "reply_to": str|null, "repost_of": str|null,
//!  "url": str|null, "labels": object, "source": str}
//! ```
//!
//! Enrichment adds `lang_source`, `sentiment` and `entities`; those fields are
//! absent on a post that has not been enriched. `labels` carries a data set's
//! ground truth and is never read by a detector.
//!
//! A [`Deletion`] is an upstream notice that a post was deleted (a Jetstream
//! `delete`, a Mastodon `delete`, a Twitter compliance record). Later stages
//! remove the post it names.

use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

/// One public post, as decoded from any source.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Post {
    /// The platform's id for the post; after pseudonymisation, a keyed hash.
    pub id: String,
    /// `twitter`, `bluesky`, `mastodon`, `reddit`, `rss`, ...
    pub platform: String,
    /// Event time. `None` when the source gives none.
    #[serde(default)]
    pub created_at: Option<Timestamp>,
    /// The account; after pseudonymisation, an epoch-keyed pseudonym.
    #[serde(default)]
    pub author: Option<String>,
    #[serde(default)]
    pub text: String,
    /// A language tag (ISO 639-1 where known, e.g. `en`).
    #[serde(default)]
    pub lang: Option<String>,
    /// The id of the post this one replies to.
    #[serde(default)]
    pub reply_to: Option<String>,
    /// The id of the post this one reposts (a retweet, reblog, repost).
    #[serde(default)]
    pub repost_of: Option<String>,
    /// The post's permalink. Dropped by pseudonymisation, never stored.
    #[serde(default)]
    pub url: Option<String>,
    /// Ground truth from a data set. Never read by a detector.
    #[serde(default)]
    pub labels: Labels,
    /// Where the post came from (a data set, an adapter, a live source).
    #[serde(default)]
    pub source: String,

    /// Where `lang` came from, once enriched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lang_source: Option<LangSource>,
    /// VADER scores, once enriched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sentiment: Option<Sentiment>,
    /// Hashtags, mentions, links, domains and cashtags, once enriched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entities: Option<Entities>,
}

/// A data set's ground truth for one post (`{"topic": "...", "event": ...}`),
/// kept as the JSON text it came in.
///
/// Only evaluations read labels; every stage carries them. Parsed into a
/// map, they cost every decoded post several allocations and their frees
/// (a fifth of decoding a generated post). They are written back as read,
/// whitespace included; unset (or `null`) labels are written as `{}`, as
/// the canonical format wants.
#[derive(Clone, Debug, Default)]
pub struct Labels(Option<Box<serde_json::value::RawValue>>);

impl Labels {
    /// Labels holding `value` (`null` means none).
    pub fn from_value(value: &serde_json::Value) -> Labels {
        if value.is_null() {
            return Labels(None);
        }
        // Serialising a Value to JSON text cannot fail.
        let text = serde_json::to_string(value).expect("serialising a JSON value");
        Labels(Some(
            serde_json::value::RawValue::from_string(text).expect("serde_json wrote valid JSON"),
        ))
    }

    /// Labels that are an object of strings, in the given order.
    pub fn from_strs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Labels {
        let mut text = String::from("{");
        for (i, (key, value)) in pairs.into_iter().enumerate() {
            if i > 0 {
                text.push(',');
            }
            // Serialising a string cannot fail.
            text.push_str(&serde_json::to_string(key).expect("serialising a string"));
            text.push(':');
            text.push_str(&serde_json::to_string(value).expect("serialising a string"));
        }
        text.push('}');
        Labels(Some(
            serde_json::value::RawValue::from_string(text).expect("an object of strings is JSON"),
        ))
    }

    /// The labels as a JSON value (`{}` when unset).
    pub fn to_value(&self) -> serde_json::Value {
        match &self.0 {
            None => serde_json::Value::Object(Default::default()),
            // The text was checked as JSON when it was read or written.
            Some(raw) => serde_json::from_str(raw.get()).unwrap_or_default(),
        }
    }

    /// The string under `key`, if the labels are an object that has one.
    pub fn get_str(&self, key: &str) -> Option<String> {
        match self.to_value() {
            serde_json::Value::Object(mut map) => match map.remove(key) {
                Some(serde_json::Value::String(s)) => Some(s),
                _ => None,
            },
            _ => None,
        }
    }

    /// Whether `key` is present (with any value).
    pub fn has(&self, key: &str) -> bool {
        self.to_value().get(key).is_some()
    }
}

/// Labels are equal when their JSON values are: `{"a":1}` equals `{ "a": 1 }`,
/// and unset equals `{}`.
impl PartialEq for Labels {
    fn eq(&self, other: &Labels) -> bool {
        self.to_value() == other.to_value()
    }
}

impl Serialize for Labels {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match &self.0 {
            None => serde_json::Map::new().serialize(s),
            Some(raw) => raw.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Labels {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Labels, D::Error> {
        let raw = Box::<serde_json::value::RawValue>::deserialize(d)?;
        Ok(Labels((raw.get() != "null").then_some(raw)))
    }
}

/// Whether a post's language was given by its source or detected by us.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LangSource {
    Source,
    Detected,
}

/// VADER sentiment: `compound` in [-1, 1], and the shares `pos + neu + neg ≈ 1`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Sentiment {
    pub compound: f64,
    pub pos: f64,
    pub neu: f64,
    pub neg: f64,
}

/// Entities found in a post's text (and in the structured fields some
/// sources provide).
///
/// Hashtags, mentions and cashtags are stored without their sigil and in
/// lower case (`#Climate` → `climate`, `$TSLA` → `tsla`). Links are
/// normalised to scheme + host + path; `domains` are their hosts without a
/// leading `www.`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entities {
    #[serde(default)]
    pub hashtags: Vec<String>,
    #[serde(default)]
    pub mentions: Vec<String>,
    #[serde(default)]
    pub links: Vec<String>,
    #[serde(default)]
    pub domains: Vec<String>,
    #[serde(default)]
    pub cashtags: Vec<String>,
}

/// An upstream notice that a post no longer exists.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deletion {
    /// The deleted post's id (after pseudonymisation, its keyed hash).
    pub id: String,
    pub platform: String,
    /// When the deletion happened, if the source says.
    #[serde(default)]
    pub deleted_at: Option<Timestamp>,
    #[serde(default)]
    pub source: String,
}

/// What a decoder yields.
#[derive(Clone, Debug, PartialEq)]
// Posts are the common case and travel in batches; boxing them would cost
// an allocation per post for the sake of the rare deletion.
#[allow(clippy::large_enum_variant)]
pub enum Event {
    Post(Post),
    Delete(Deletion),
}

impl Post {
    /// Parses one canonical JSON line.
    pub fn from_json(line: &[u8]) -> Result<Post, serde_json::Error> {
        // One UTF-8 check over the whole line (fast for ASCII) instead of
        // one per string field, which parsing from bytes would do.
        match std::str::from_utf8(line) {
            Ok(text) => serde_json::from_str(text),
            Err(e) => Err(serde::de::Error::custom(format_args!(
                "invalid UTF-8 at byte {}",
                e.valid_up_to()
            ))),
        }
    }

    /// Appends this post as one canonical JSON line (with a trailing `\n`).
    pub fn write_json(&self, out: &mut Vec<u8>) {
        // Serialising plain data to a Vec cannot fail.
        serde_json::to_writer(&mut *out, self).expect("serialising a Post");
        out.push(b'\n');
    }

    /// Whether this post is a repost (retweet, reblog) of another.
    pub fn is_repost(&self) -> bool {
        self.repost_of.is_some()
    }

    /// Whether this post replies to another.
    pub fn is_reply(&self) -> bool {
        self.reply_to.is_some()
    }
}

impl Deletion {
    /// Appends this deletion as one JSON line `{"delete": {...}}`.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        serde_json::to_writer(&mut *out, &serde_json::json!({ "delete": self })).expect("serialising a Deletion");
        out.push(b'\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_canonical_line_with_nulls() {
        let line = br#"{"id":"t:1","platform":"twitter","created_at":null,"author":null,"text":"hi","lang":"en","reply_to":null,"repost_of":null,"url":null,"labels":{"task":"x"},"source":"tweeteval"}"#;
        let p = Post::from_json(line).unwrap();
        assert_eq!(p.id, "t:1");
        assert_eq!(p.created_at, None);
        assert_eq!(p.author, None);
        assert_eq!(p.lang.as_deref(), Some("en"));
        assert_eq!(p.labels.get_str("task").as_deref(), Some("x"));
        assert_eq!(p.sentiment, None);
    }

    #[test]
    fn labels_are_kept_as_read_and_unset_ones_written_as_an_empty_object() {
        let line = |labels: &str| format!(r#"{{"id":"1","platform":"x","text":"t"{labels}}}"#);
        let write = |p: &Post| {
            let mut buf = Vec::new();
            p.write_json(&mut buf);
            String::from_utf8(buf).unwrap()
        };
        for absent in [line(""), line(r#","labels":null"#)] {
            let p = Post::from_json(absent.as_bytes()).unwrap();
            assert_eq!(p.labels, Labels::default());
            assert!(write(&p).contains(r#""labels":{}"#), "{}", write(&p));
        }
        let p = Post::from_json(line(r#","labels":{"a": "x\"y", "n": [1, 2]}"#).as_bytes()).unwrap();
        assert_eq!(p.labels.get_str("a").as_deref(), Some("x\"y"));
        assert_eq!(p.labels.get_str("n"), None);
        assert!(p.labels.has("n") && !p.labels.has("b"));
        assert!(write(&p).contains(r#""labels":{"a": "x\"y", "n": [1, 2]}"#));
        assert_eq!(
            p.labels,
            Labels::from_value(&serde_json::json!({"n": [1, 2], "a": "x\"y"}))
        );
        assert_ne!(p.labels, Labels::default());

        let odd = "quote \" backslash \\ newline \n tab \t é";
        let made = Labels::from_strs([("event", odd), ("topic", "t")]);
        assert_eq!(made.get_str("event").as_deref(), Some(odd));
        assert_eq!(made.to_value(), serde_json::json!({"event": odd, "topic": "t"}));
        // Not an object: kept, written back, but no field in it.
        let p = Post::from_json(line(r#","labels":"gold""#).as_bytes()).unwrap();
        assert_eq!(p.labels.get_str("gold"), None);
        assert!(write(&p).contains(r#""labels":"gold""#));
    }

    #[test]
    fn round_trips_through_json() {
        let p = Post {
            id: "9".into(),
            platform: "bluesky".into(),
            created_at: Some(Timestamp(1_779_719_008_388)),
            author: Some("u1_abc".into()),
            text: "Ünïcode \"quoted\"\nnew line".into(),
            lang: None,
            reply_to: Some("7".into()),
            repost_of: None,
            url: None,
            labels: Labels::default(),
            source: "gen".into(),
            lang_source: Some(LangSource::Detected),
            sentiment: Some(Sentiment {
                compound: 0.5,
                pos: 0.3,
                neu: 0.7,
                neg: 0.0,
            }),
            entities: Some(Entities {
                hashtags: vec!["a".into()],
                ..Default::default()
            }),
        };
        let mut buf = Vec::new();
        p.write_json(&mut buf);
        assert_eq!(buf.iter().filter(|&&b| b == b'\n').count(), 1);
        assert!(std::str::from_utf8(&buf)
            .unwrap()
            .contains(r#""created_at":"2026-05-25T14:23:28.388Z""#));
        assert!(std::str::from_utf8(&buf)
            .unwrap()
            .contains(r#""lang_source":"detected""#));
        assert_eq!(Post::from_json(&buf).unwrap(), p);
    }

    #[test]
    fn missing_required_fields_are_errors_naming_the_field() {
        let err = Post::from_json(br#"{"platform":"x"}"#).unwrap_err();
        assert!(err.to_string().contains("`id`"), "{err}");
    }
}
