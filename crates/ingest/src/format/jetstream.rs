//! Bluesky Jetstream: one JSON event a line; posts and reposts become
//! [`Post`]s, their deletions become [`Deletion`]s, everything else is
//! counted as ignored.
//!
//! Jetstream relays the AT Protocol firehose as plain JSON:
//!
//! ```text
//! {"did": ..., "time_us": ..., "kind": "commit",
//!  "commit": {"operation": "create", "collection": "app.bsky.feed.post",
//!             "rkey": ..., "record": {...}, "cid": ...}}
//! ```
//!
//! | event                                           | result |
//! |-------------------------------------------------|--------|
//! | `create`/`update` of `app.bsky.feed.post`       | a post |
//! | `create`/`update` of `app.bsky.feed.repost`     | a post with `repost_of` and empty text |
//! | `delete` of a post or a repost                  | a deletion |
//! | any other collection (likes, follows, profiles...), `identity`, `account` | ignored |
//!
//! Post fields: `id` is the record's AT URI `at://<did>/<collection>/<rkey>`,
//! `author` the DID, `lang` the first of `record.langs`, `reply_to` the AT
//! URI of `record.reply.parent`, `url` the bsky.app permalink (reposts have
//! none). `created_at` is the record's own `createdAt`; when that is missing
//! or unreadable (clients write it, so it can be anything) the relay's
//! `time_us` stands in.
//!
//! Most of a real stream is likes, so the decoder is built to skip cheaply:
//! the event is read into borrowed, typed structs in one pass, and a record
//! is only materialised when its collection is a post or a repost (see
//! [`Commit`]).

use super::{DecodeError, DecodeOutput, Decoder, Format};
use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
use std::borrow::Cow;
use std::fmt;
use tidewatch_core::{Deletion, Event, Post, Timestamp};

const PLATFORM: &str = "bluesky";
const SOURCE: &str = "jetstream";
const POST: &str = "app.bsky.feed.post";
const REPOST: &str = "app.bsky.feed.repost";

/// Decodes Jetstream event lines. Stateless: an event replayed after a
/// reconnection yields the same AT URI, which later stages de-duplicate.
#[derive(Default)]
pub struct JetstreamDecoder;

impl Decoder for JetstreamDecoder {
    fn format(&self) -> Format {
        Format::Jetstream
    }

    fn decode(&mut self, record: &[u8], out: &mut DecodeOutput) -> Result<(), DecodeError> {
        let line: EventLine = serde_json::from_slice(record)?;
        match line.kind.as_ref().map(JsonStr::as_str) {
            Some("commit") => {}
            Some(_) => {
                // `identity`, `account` and kinds added later carry no post.
                out.ignored += 1;
                return Ok(());
            }
            None => return Err(DecodeError::missing("kind")),
        }
        let commit = line.commit.ok_or_else(|| DecodeError::missing("commit"))?;
        let collection = match commit.collection.as_ref().map(JsonStr::as_str) {
            Some(c @ (POST | REPOST)) => c,
            _ => {
                // Likes, follows, blocks, profiles, other apps' records.
                out.ignored += 1;
                return Ok(());
            }
        };
        let did = non_empty(&line.did).ok_or_else(|| DecodeError::missing("did"))?;
        let rkey = non_empty(&commit.rkey).ok_or_else(|| DecodeError::missing("commit.rkey"))?;
        let at_uri = format!("at://{did}/{collection}/{rkey}");
        let relay_time = line.time_us.map(|us| Timestamp(us.div_euclid(1000)));

        let event = match commit.operation.as_ref().map(JsonStr::as_str) {
            Some("create" | "update") => {
                let ctx = Context {
                    did,
                    rkey,
                    at_uri,
                    relay_time,
                };
                let post = match commit.record {
                    Record::Post(r) => ctx.post(&r),
                    Record::Repost(r) => ctx.repost(&r),
                    Record::Deferred(v) if collection == POST => {
                        ctx.post(&PostRecord::deserialize(&v).map_err(record_error)?)
                    }
                    Record::Deferred(v) => ctx.repost(&RepostRecord::deserialize(&v).map_err(record_error)?),
                    // `Skipped` here means a repeated `collection` key changed
                    // its mind after the record was passed over.
                    Record::Absent | Record::Skipped => return Err(DecodeError::missing("commit.record")),
                };
                Event::Post(post)
            }
            Some("delete") => Event::Delete(Deletion {
                id: at_uri,
                platform: PLATFORM.into(),
                deleted_at: relay_time,
                source: SOURCE.into(),
            }),
            Some(_) => {
                out.ignored += 1;
                return Ok(());
            }
            None => return Err(DecodeError::missing("commit.operation")),
        };
        out.events.push(event);
        Ok(())
    }
}

fn record_error(e: serde_json::Error) -> DecodeError {
    DecodeError::field("commit.record", e.to_string())
}

/// What every post of one event shares.
struct Context<'s> {
    did: &'s str,
    rkey: &'s str,
    at_uri: String,
    relay_time: Option<Timestamp>,
}

impl Context<'_> {
    fn created_at(&self, record_time: &Option<JsonStr>) -> Option<Timestamp> {
        non_empty(record_time)
            .and_then(|t| Timestamp::parse(t).ok())
            .or(self.relay_time)
    }

    fn post(self, r: &PostRecord) -> Post {
        let reply_to = r
            .reply
            .as_ref()
            .and_then(|reply| reply.parent.as_ref())
            .and_then(|parent| non_empty(&parent.uri))
            .map(str::to_owned);
        Post {
            created_at: self.created_at(&r.created_at),
            url: Some(format!("https://bsky.app/profile/{}/post/{}", self.did, self.rkey)),
            id: self.at_uri,
            platform: PLATFORM.into(),
            author: Some(self.did.to_owned()),
            text: r.text.as_ref().map(|t| t.as_str().to_owned()).unwrap_or_default(),
            lang: r
                .langs
                .as_ref()
                .and_then(|langs| langs.first())
                .map(|l| l.as_str().to_owned())
                .filter(|l| !l.is_empty()),
            reply_to,
            source: SOURCE.into(),
            ..Post::default()
        }
    }

    fn repost(self, r: &RepostRecord) -> Post {
        Post {
            created_at: self.created_at(&r.created_at),
            id: self.at_uri,
            platform: PLATFORM.into(),
            author: Some(self.did.to_owned()),
            repost_of: r.subject.as_ref().and_then(|s| non_empty(&s.uri)).map(str::to_owned),
            source: SOURCE.into(),
            ..Post::default()
        }
    }
}

/// One Jetstream event. Unknown fields (`identity`, `account`, ...) are skipped.
#[derive(serde::Deserialize)]
struct EventLine<'a> {
    #[serde(borrow, default)]
    did: Option<JsonStr<'a>>,
    #[serde(default)]
    time_us: Option<i64>,
    #[serde(borrow, default)]
    kind: Option<JsonStr<'a>>,
    #[serde(borrow, default)]
    commit: Option<Commit<'a>>,
}

/// The `commit` of an event, with its `record` read according to its
/// `collection`.
///
/// Records of other collections have other shapes (a follow's `subject` is
/// a string, a like's an object), so one struct cannot read them all; and
/// most records are likes that are skipped anyway. The map is therefore read
/// by hand: by the time `record` comes, `collection` (which Jetstream writes
/// first) tells how to read it. Should `record` come first after all, it is
/// kept as a JSON value and read once the collection is known.
struct Commit<'a> {
    operation: Option<JsonStr<'a>>,
    collection: Option<JsonStr<'a>>,
    rkey: Option<JsonStr<'a>>,
    record: Record<'a>,
}

enum Record<'a> {
    Absent,
    Post(PostRecord<'a>),
    Repost(RepostRecord<'a>),
    /// Read before its collection was known.
    Deferred(serde_json::Value),
    /// Of a collection that holds no post; not read.
    Skipped,
}

impl<'de: 'a, 'a> Deserialize<'de> for Commit<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct CommitVisitor<'a>(std::marker::PhantomData<&'a ()>);

        impl<'de: 'a, 'a> Visitor<'de> for CommitVisitor<'a> {
            type Value = Commit<'a>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a Jetstream commit object")
            }

            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Commit<'a>, M::Error> {
                let mut commit = Commit {
                    operation: None,
                    collection: None,
                    rkey: None,
                    record: Record::Absent,
                };
                while let Some(key) = map.next_key::<JsonStr<'de>>()? {
                    match key.as_str() {
                        "operation" => commit.operation = map.next_value()?,
                        "collection" => commit.collection = map.next_value()?,
                        "rkey" => commit.rkey = map.next_value()?,
                        "record" => {
                            commit.record = match commit.collection.as_ref().map(JsonStr::as_str) {
                                Some(POST) => Record::Post(map.next_value()?),
                                Some(REPOST) => Record::Repost(map.next_value()?),
                                Some(_) => {
                                    map.next_value::<IgnoredAny>()?;
                                    Record::Skipped
                                }
                                None => Record::Deferred(map.next_value()?),
                            }
                        }
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(commit)
            }
        }

        d.deserialize_map(CommitVisitor(std::marker::PhantomData))
    }
}

/// The fields of an `app.bsky.feed.post` record that a post needs.
#[derive(serde::Deserialize)]
struct PostRecord<'a> {
    #[serde(borrow, default)]
    text: Option<JsonStr<'a>>,
    #[serde(borrow, default)]
    langs: Option<Vec<JsonStr<'a>>>,
    #[serde(borrow, default, rename = "createdAt")]
    created_at: Option<JsonStr<'a>>,
    #[serde(borrow, default)]
    reply: Option<ReplyRef<'a>>,
}

#[derive(serde::Deserialize)]
struct ReplyRef<'a> {
    #[serde(borrow, default)]
    parent: Option<StrongRef<'a>>,
}

/// A reference to another record (`uri` + `cid`); only the URI matters here.
#[derive(serde::Deserialize)]
struct StrongRef<'a> {
    #[serde(borrow, default)]
    uri: Option<JsonStr<'a>>,
}

/// The fields of an `app.bsky.feed.repost` record.
#[derive(serde::Deserialize)]
struct RepostRecord<'a> {
    #[serde(borrow, default)]
    subject: Option<StrongRef<'a>>,
    #[serde(borrow, default, rename = "createdAt")]
    created_at: Option<JsonStr<'a>>,
}

/// A JSON string borrowed from the input when it has no escapes, copied
/// when it has. (`Option<Cow<str>>` would always copy: serde only borrows
/// into a `Cow` that is not wrapped.) Shared with the Reddit adapter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct JsonStr<'a>(pub(super) Cow<'a, str>);

impl JsonStr<'_> {
    pub(super) fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for JsonStr<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct StrVisitor<'a>(std::marker::PhantomData<&'a ()>);

        impl<'de: 'a, 'a> Visitor<'de> for StrVisitor<'a> {
            type Value = JsonStr<'a>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<JsonStr<'a>, E> {
                Ok(JsonStr(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<JsonStr<'a>, E> {
                Ok(JsonStr(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<JsonStr<'a>, E> {
                Ok(JsonStr(Cow::Owned(v)))
            }
        }

        d.deserialize_str(StrVisitor(std::marker::PhantomData))
    }
}

/// The text of an optional string, with an empty string taken as absent.
pub(super) fn non_empty<'s>(s: &'s Option<JsonStr<'_>>) -> Option<&'s str> {
    s.as_ref().map(JsonStr::as_str).filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const DID: &str = "did:plc:alice0example";

    fn decode(line: &str) -> Result<DecodeOutput, DecodeError> {
        let mut out = DecodeOutput::default();
        JetstreamDecoder.decode(line.as_bytes(), &mut out)?;
        Ok(out)
    }

    fn only_post(line: &str) -> Post {
        let out = decode(line).unwrap();
        assert_eq!(out.ignored, 0);
        match out.events.as_slice() {
            [Event::Post(p)] => p.clone(),
            other => panic!("expected one post, got {other:?}"),
        }
    }

    #[test]
    fn a_created_post_becomes_a_post_with_every_field() {
        let line = r#"{"did":"did:plc:alice0example","time_us":1767225600000000,"kind":"commit","commit":{"rev":"r1","operation":"create","collection":"app.bsky.feed.post","rkey":"3kabc","record":{"$type":"app.bsky.feed.post","createdAt":"2026-01-01T00:00:05.250Z","langs":["en","fr"],"reply":{"root":{"cid":"c0","uri":"at://did:plc:bob0example/app.bsky.feed.post/3kroot"},"parent":{"cid":"c1","uri":"at://did:plc:bob0example/app.bsky.feed.post/3kparent"}},"text":"Tide tables say \"high\" at noon\nsee you there"},"cid":"c2"}}"#;
        let want = Post {
            id: "at://did:plc:alice0example/app.bsky.feed.post/3kabc".into(),
            platform: "bluesky".into(),
            created_at: Some(Timestamp::parse("2026-01-01T00:00:05.250Z").unwrap()),
            author: Some(DID.into()),
            text: "Tide tables say \"high\" at noon\nsee you there".into(),
            lang: Some("en".into()),
            reply_to: Some("at://did:plc:bob0example/app.bsky.feed.post/3kparent".into()),
            repost_of: None,
            url: Some("https://bsky.app/profile/did:plc:alice0example/post/3kabc".into()),
            source: "jetstream".into(),
            ..Post::default()
        };
        assert_eq!(only_post(line), want);
    }

    #[test]
    fn an_updated_post_without_created_at_or_langs_falls_back_to_relay_time() {
        let line = r#"{"did":"did:plc:alice0example","time_us":1767225600123456,"kind":"commit","commit":{"operation":"update","collection":"app.bsky.feed.post","rkey":"3kxyz","record":{"text":"edited"}}}"#;
        let p = only_post(line);
        assert_eq!(p.id, "at://did:plc:alice0example/app.bsky.feed.post/3kxyz");
        assert_eq!(p.created_at, Some(Timestamp(1_767_225_600_123)));
        assert_eq!(p.text, "edited");
        assert_eq!(p.lang, None);
        assert_eq!(p.reply_to, None);
        // An unreadable createdAt also falls back.
        let line = line.replace(r#""text":"edited""#, r#""text":"e","createdAt":"whenever""#);
        assert_eq!(only_post(&line).created_at, Some(Timestamp(1_767_225_600_123)));
    }

    #[test]
    fn a_repost_becomes_a_post_with_repost_of_and_no_text() {
        let line = r#"{"did":"did:plc:alice0example","time_us":1767225600000000,"kind":"commit","commit":{"operation":"create","collection":"app.bsky.feed.repost","rkey":"3krep","record":{"$type":"app.bsky.feed.repost","createdAt":"2026-01-01T00:00:01Z","subject":{"cid":"c9","uri":"at://did:plc:bob0example/app.bsky.feed.post/3korig"}},"cid":"c3"}}"#;
        let want = Post {
            id: "at://did:plc:alice0example/app.bsky.feed.repost/3krep".into(),
            platform: "bluesky".into(),
            created_at: Some(Timestamp(1_767_225_601_000)),
            author: Some(DID.into()),
            text: String::new(),
            repost_of: Some("at://did:plc:bob0example/app.bsky.feed.post/3korig".into()),
            url: None,
            source: "jetstream".into(),
            ..Post::default()
        };
        assert_eq!(only_post(line), want);
    }

    #[test]
    fn a_record_before_its_collection_is_still_read() {
        let line = r#"{"kind":"commit","did":"did:plc:alice0example","commit":{"record":{"text":"out of order","langs":["de"]},"rkey":"3kooo","collection":"app.bsky.feed.post","operation":"create"}}"#;
        let p = only_post(line);
        assert_eq!(p.text, "out of order");
        assert_eq!(p.lang.as_deref(), Some("de"));
        assert_eq!(p.created_at, None);
    }

    #[test]
    fn deletes_of_posts_and_reposts_become_deletions() {
        for collection in ["app.bsky.feed.post", "app.bsky.feed.repost"] {
            let line = format!(
                r#"{{"did":"did:plc:alice0example","time_us":1767225600000999,"kind":"commit","commit":{{"operation":"delete","collection":"{collection}","rkey":"3kdel"}}}}"#
            );
            let out = decode(&line).unwrap();
            let want = Deletion {
                id: format!("at://did:plc:alice0example/{collection}/3kdel"),
                platform: "bluesky".into(),
                deleted_at: Some(Timestamp(1_767_225_600_000)),
                source: "jetstream".into(),
            };
            assert_eq!(out.events, vec![Event::Delete(want)]);
        }
    }

    #[test]
    fn likes_follows_identity_and_account_events_are_ignored() {
        let lines = [
            r#"{"did":"did:plc:alice0example","time_us":1,"kind":"commit","commit":{"operation":"create","collection":"app.bsky.feed.like","rkey":"3k1","record":{"subject":{"uri":"at://x/app.bsky.feed.post/1","cid":"c"},"createdAt":"2026-01-01T00:00:00Z"}}}"#,
            // A follow's subject is a string: it must not trip the post reader.
            r#"{"did":"did:plc:alice0example","time_us":1,"kind":"commit","commit":{"operation":"create","collection":"app.bsky.graph.follow","rkey":"3k2","record":{"subject":"did:plc:bob0example","createdAt":"2026-01-01T00:00:00Z"}}}"#,
            r#"{"did":"did:plc:alice0example","time_us":1,"kind":"commit","commit":{"operation":"delete","collection":"app.bsky.graph.follow","rkey":"3k3"}}"#,
            r#"{"did":"did:plc:alice0example","time_us":1,"kind":"identity","identity":{"did":"did:plc:alice0example","seq":5,"time":"2026-01-01T00:00:00Z"}}"#,
            r#"{"did":"did:plc:alice0example","time_us":1,"kind":"account","account":{"active":true,"did":"did:plc:alice0example","seq":6}}"#,
        ];
        for line in lines {
            let out = decode(line).unwrap();
            assert!(out.events.is_empty(), "{line}");
            assert_eq!(out.ignored, 1, "{line}");
        }
    }

    #[test]
    fn malformed_events_are_errors_with_a_reason() {
        assert!(matches!(decode("{not json"), Err(DecodeError::Json(_))));
        assert_eq!(
            decode(r#"{"did":"did:plc:a"}"#).unwrap_err(),
            DecodeError::missing("kind")
        );
        assert_eq!(
            decode(r#"{"did":"did:plc:a","kind":"commit"}"#).unwrap_err(),
            DecodeError::missing("commit")
        );
        let no_rkey = r#"{"did":"did:plc:a","kind":"commit","commit":{"operation":"create","collection":"app.bsky.feed.post","record":{"text":"x"}}}"#;
        assert_eq!(decode(no_rkey).unwrap_err(), DecodeError::missing("commit.rkey"));
        let bad_langs = r#"{"did":"did:plc:a","kind":"commit","commit":{"operation":"create","collection":"app.bsky.feed.post","rkey":"1","record":{"text":"x","langs":5}}}"#;
        assert!(matches!(decode(bad_langs), Err(DecodeError::Json(_))));
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let mut out = DecodeOutput::default();
            let _ = JetstreamDecoder.decode(&bytes, &mut out);
        }

        #[test]
        fn any_post_text_survives_decoding(text in "\\PC{0,80}") {
            let record = serde_json::json!({
                "did": DID, "time_us": 1, "kind": "commit",
                "commit": {"operation": "create", "collection": POST, "rkey": "k",
                           "record": {"text": text}}
            });
            let p = only_post(&record.to_string());
            prop_assert_eq!(p.text, text);
        }
    }
}
