//! Twitter/X API v2: every tweet in a record becomes a post, including the
//! tweets a response carries in `includes.tweets` (the originals of retweets,
//! quoted and replied-to tweets), each id emitted once.
//!
//! A record is one JSON value, which may be
//! - a response page, `{"data": [...] or {...}, "includes": {"users": [...],
//!   "tweets": [...]}, "meta": ..., "errors": ...}`, as the API (and twarc)
//!   writes it, one page a line;
//! - a flattened tweet, one a line (twarc2 `flatten`): a tweet object with
//!   its `author` expanded inline and its `referenced_tweets` expanded into
//!   whole tweets;
//! - a compliance record, `{"id": ..., "action": "delete", "created_at": ...}`:
//!   a `delete` becomes an [`Event::Delete`](tidewatch_core::Event::Delete), other actions are ignored;
//! - anything else: pages of users, lists or counts, error objects. These
//!   hold no post and are counted as ignored (in a users page, the pinned
//!   tweets in `includes.tweets` too: they describe the users, not a topic).
//!
//! Choices, and why:
//! - Text is `note_tweet.text` (the whole of a long post), else `text`.
//! - A retweet whose text Twitter cut (ending in `…`) gets the original's full
//!   text prefixed `RT @author: `, when the original is in the same record
//!   (see `twitter_common::retweet_text`).
//! - `referenced_tweets` gives `repost_of` (type `retweeted`) and `reply_to`
//!   (type `replied_to`). A quote (type `quoted`) has no field in the
//!   canonical post: the quoted tweet is emitted as a post of its own.
//! - The author is the `username` that `includes.users` (or, in a flattened
//!   tweet, the inline `author`) gives for `author_id`; without it, the
//!   `author_id` itself.
//! - Referenced tweets are emitted before the tweets that reference them, so
//!   a reader meets an original before its retweets.
//! - A users-compliance file has the same layout as a tweets-compliance file;
//!   its deletions name account ids, which match no post and so remove
//!   nothing.

use super::twitter_common::{
    decode_record, expand_links, non_empty, parse_time, permalink, retweet_text, source_lang, RecentIds, Scalar,
    UrlEntities, PLATFORM,
};
use super::{DecodeError, DecodeOutput, Decoder, Format};
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use std::collections::HashMap;
use std::fmt;
use tidewatch_core::{Deletion, Post};

/// The name written in `Post.source`.
const SOURCE: &str = "twitter_v2";

/// Decodes v2 records; remembers the ids it emitted to de-duplicate.
#[derive(Default)]
pub struct TwitterV2Decoder {
    seen: RecentIds,
}

/// Any object v2 sends: a tweet (plain or flattened), a response page, a
/// compliance record, a user, a count... Only the fields tidewatch reads are
/// declared; the rest are skipped without being copied. Which kind of object
/// it is follows from which fields are present.
#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct Object<'a> {
    #[serde(borrow)]
    id: Option<Scalar<'a>>,
    #[serde(borrow)]
    text: Option<Scalar<'a>>,
    #[serde(borrow)]
    note_tweet: Option<NoteTweet<'a>>,
    #[serde(borrow)]
    entities: Option<UrlEntities<'a>>,
    #[serde(borrow)]
    created_at: Option<Scalar<'a>>,
    #[serde(borrow)]
    lang: Option<Scalar<'a>>,
    #[serde(borrow)]
    author_id: Option<Scalar<'a>>,
    /// The author, expanded inline in flattened tweets.
    #[serde(borrow)]
    author: Option<User<'a>>,
    /// `{type, id}` in a page; whole tweets (plus `type`) when flattened.
    #[serde(borrow)]
    referenced_tweets: Option<Vec<Object<'a>>>,
    /// A referenced tweet's relation: `retweeted`, `replied_to`, `quoted`.
    #[serde(borrow, rename = "type")]
    kind: Option<Scalar<'a>>,
    /// A response page's main objects (one object or an array).
    #[serde(borrow)]
    data: Option<Data<'a>>,
    #[serde(borrow)]
    includes: Option<Includes<'a>>,
    /// A compliance record's action (`delete`, `protect`, ...).
    #[serde(borrow)]
    action: Option<Scalar<'a>>,
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct NoteTweet<'a> {
    #[serde(borrow)]
    text: Option<Scalar<'a>>,
    #[serde(borrow)]
    entities: Option<UrlEntities<'a>>,
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct User<'a> {
    #[serde(borrow)]
    id: Option<Scalar<'a>>,
    #[serde(borrow)]
    username: Option<Scalar<'a>>,
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct Includes<'a> {
    #[serde(borrow)]
    users: Vec<User<'a>>,
    #[serde(borrow)]
    tweets: Vec<Object<'a>>,
}

/// A page's `data`: the API writes a single object for a lookup of one
/// tweet and an array otherwise; both read as a list.
#[derive(Default)]
struct Data<'a>(Vec<Object<'a>>);

impl<'de: 'a, 'a> Deserialize<'de> for Data<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct DataVisitor<'a>(std::marker::PhantomData<&'a ()>);

        impl<'de: 'a, 'a> Visitor<'de> for DataVisitor<'a> {
            type Value = Data<'a>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object or an array of objects")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Data(items))
            }
            fn visit_map<M: MapAccess<'de>>(self, map: M) -> Result<Self::Value, M::Error> {
                let one = Object::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(Data(vec![one]))
            }
        }

        d.deserialize_any(DataVisitor(std::marker::PhantomData))
    }
}

impl<'a> Object<'a> {
    /// A tweet has an id and a text; users, lists and counts lack one or
    /// the other.
    fn is_tweet(&self) -> bool {
        non_empty(&self.id).is_some()
            && (self.text.is_some() || self.note_tweet.as_ref().is_some_and(|n| n.text.is_some()))
    }

    fn full_text(&self) -> &str {
        self.note_tweet
            .as_ref()
            .and_then(|n| non_empty(&n.text))
            .or_else(|| non_empty(&self.text))
            .unwrap_or("")
    }

    /// The id of the first referenced tweet of the given relation.
    fn referenced(&self, kind: &str) -> Option<&Object<'a>> {
        self.referenced_tweets
            .as_deref()?
            .iter()
            .find(|r| non_empty(&r.kind) == Some(kind))
    }
}

/// What a page (or a flattened tweet) tells about the tweets in it: the
/// usernames of account ids, and its tweets by id.
#[derive(Default)]
struct Context<'r, 'a> {
    usernames: HashMap<&'r str, &'r str>,
    tweets: HashMap<&'r str, &'r Object<'a>>,
}

impl<'r, 'a> Context<'r, 'a> {
    fn add_user(&mut self, user: &'r User<'a>) {
        if let (Some(id), Some(name)) = (non_empty(&user.id), non_empty(&user.username)) {
            self.usernames.entry(id).or_insert(name);
        }
    }

    fn add_tweet(&mut self, tweet: &'r Object<'a>) {
        if let Some(id) = non_empty(&tweet.id) {
            self.tweets.entry(id).or_insert(tweet);
        }
        if let Some(author) = &tweet.author {
            self.add_user(author);
        }
    }

    fn username(&self, tweet: &'r Object<'a>) -> Option<&'r str> {
        let inline = tweet.author.as_ref().and_then(|a| non_empty(&a.username));
        inline.or_else(|| non_empty(&tweet.author_id).and_then(|id| self.usernames.get(id).copied()))
    }

    /// The post for one tweet.
    fn post(&self, tweet: &'r Object<'a>) -> Result<Post, DecodeError> {
        // `is_tweet` was checked by every caller; an empty id cannot occur.
        let id = non_empty(&tweet.id).unwrap_or_default();
        let username = self.username(tweet);
        let retweeted = tweet.referenced("retweeted");
        let original = retweeted.and_then(|r| {
            if r.is_tweet() {
                Some(r)
            } else {
                non_empty(&r.id).and_then(|id| self.tweets.get(id).copied())
            }
        });
        let text = retweet_text(
            tweet.full_text(),
            original.and_then(|o| Some((self.username(o)?, o.full_text()))),
        );
        let text = expand_links(
            text,
            &[
                tweet.entities.as_ref(),
                tweet.note_tweet.as_ref().and_then(|n| n.entities.as_ref()),
                original.and_then(|o| o.entities.as_ref()),
                original
                    .and_then(|o| o.note_tweet.as_ref())
                    .and_then(|n| n.entities.as_ref()),
            ],
        );
        Ok(Post {
            id: id.to_string(),
            platform: PLATFORM.to_string(),
            created_at: parse_time("created_at", non_empty(&tweet.created_at))?,
            author: username.or_else(|| non_empty(&tweet.author_id)).map(str::to_string),
            text: text.into_owned(),
            lang: source_lang(non_empty(&tweet.lang)),
            reply_to: tweet
                .referenced("replied_to")
                .and_then(|r| non_empty(&r.id))
                .map(str::to_string),
            repost_of: retweeted.and_then(|r| non_empty(&r.id)).map(str::to_string),
            url: Some(permalink(username, id)),
            source: SOURCE.to_string(),
            ..Post::default()
        })
    }
}

/// Sorts one top-level object into posts, a deletion, or ignored; returns
/// how many objects were ignored.
fn collect(object: &Object<'_>, posts: &mut Vec<Post>, deletions: &mut Vec<Deletion>) -> Result<u64, DecodeError> {
    if let Some(Data(data)) = &object.data {
        return collect_page(data, object.includes.as_ref(), posts);
    }
    if let Some(action) = non_empty(&object.action) {
        let Some(id) = non_empty(&object.id) else {
            return Err(DecodeError::missing("id"));
        };
        if action != "delete" {
            return Ok(1);
        }
        deletions.push(Deletion {
            id: id.to_string(),
            platform: PLATFORM.to_string(),
            deleted_at: parse_time("created_at", non_empty(&object.created_at))?,
            source: SOURCE.to_string(),
        });
        return Ok(0);
    }
    if object.is_tweet() {
        // A flattened tweet: its referenced tweets are whole tweets.
        let mut context = Context::default();
        context.add_tweet(object);
        let inline: Vec<&Object> = object
            .referenced_tweets
            .iter()
            .flatten()
            .filter(|r| r.is_tweet())
            .collect();
        for referenced in &inline {
            context.add_tweet(referenced);
        }
        for referenced in inline {
            posts.push(context.post(referenced)?);
        }
        posts.push(context.post(object)?);
        return Ok(0);
    }
    // An error object, a lone user, an empty page...
    Ok(1)
}

/// The posts of one response page: `includes.tweets` first, then `data`.
fn collect_page(
    data: &[Object<'_>],
    includes: Option<&Includes<'_>>,
    posts: &mut Vec<Post>,
) -> Result<u64, DecodeError> {
    let tweets: Vec<&Object> = data.iter().filter(|o| o.is_tweet()).collect();
    let mut ignored = (data.len() - tweets.len()) as u64;
    let (users, included) = match includes {
        Some(i) => (i.users.as_slice(), i.tweets.as_slice()),
        None => (&[][..], &[][..]),
    };
    if tweets.is_empty() {
        // Users, lists or counts: their included tweets (pinned tweets) are
        // not what the page is about.
        return Ok(ignored + included.len() as u64);
    }

    let mut context = Context::default();
    for user in users {
        context.add_user(user);
    }
    let included: Vec<&Object> = included.iter().filter(|o| o.is_tweet()).collect();
    for tweet in tweets.iter().chain(&included) {
        context.add_tweet(tweet);
    }
    for tweet in included.iter().chain(&tweets) {
        posts.push(context.post(tweet)?);
    }
    ignored += includes.map_or(0, |i| i.tweets.len() - included.len()) as u64;
    Ok(ignored)
}

impl Decoder for TwitterV2Decoder {
    fn format(&self) -> Format {
        Format::TwitterV2
    }

    fn decode(&mut self, record: &[u8], out: &mut DecodeOutput) -> Result<(), DecodeError> {
        decode_record(record, &mut self.seen, out, |o: &Object<'_>, posts, deletions| {
            collect(o, posts, deletions)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use tidewatch_core::Event;
    use tidewatch_core::Timestamp;

    fn decode_with(dec: &mut TwitterV2Decoder, record: &str) -> DecodeOutput {
        let mut out = DecodeOutput::default();
        dec.decode(record.as_bytes(), &mut out)
            .unwrap_or_else(|e| panic!("{e}: {record}"));
        out
    }

    fn decode(record: &str) -> DecodeOutput {
        decode_with(&mut TwitterV2Decoder::default(), record)
    }

    fn posts(out: &DecodeOutput) -> Vec<&Post> {
        out.events
            .iter()
            .filter_map(|e| match e {
                Event::Post(p) => Some(p),
                Event::Delete(_) => None,
            })
            .collect()
    }

    fn ids(out: &DecodeOutput) -> Vec<&str> {
        posts(out).iter().map(|p| p.id.as_str()).collect()
    }

    fn ts(s: &str) -> Option<Timestamp> {
        Some(Timestamp::parse(s).unwrap())
    }

    const PAGE: &str = r#"{"data":[
        {"id":"200","author_id":"2","created_at":"2022-03-01T10:00:00.000Z","lang":"en","text":"RT @alice_example: Ferry timetable changes from Monday, see the harbour…",
         "referenced_tweets":[{"type":"retweeted","id":"100"}],"public_metrics":{"retweet_count":3}},
        {"id":"201","author_id":"3","created_at":"2022-03-01T10:05:00.000Z","lang":"und","text":"@alice_example thanks!",
         "referenced_tweets":[{"type":"replied_to","id":"100"}]},
        {"id":"202","author_id":"3","created_at":"2022-03-01T10:06:00.000Z","lang":"en","text":"This one https://t.co/x",
         "referenced_tweets":[{"type":"quoted","id":"99"}]}],
      "includes":{"users":[{"id":"1","username":"alice_example","name":"Alice"},{"id":"2","username":"bob_example"}],
        "tweets":[{"id":"100","author_id":"1","created_at":"2022-02-28T09:00:00.000Z","lang":"en","text":"Ferry timetable changes from Monday, see the harbour office site"},
                  {"id":"99","author_id":"404","created_at":"2022-02-27T09:00:00.000Z","text":"An older note"}]},
      "meta":{"result_count":3}}"#;

    #[test]
    fn a_page_emits_included_tweets_first_then_data() {
        let out = decode(PAGE);
        assert_eq!(ids(&out), ["100", "99", "200", "201", "202"]);
        assert_eq!(out.ignored, 0);
        let ps = posts(&out);
        assert_eq!(
            *ps[0],
            Post {
                id: "100".into(),
                platform: "twitter".into(),
                created_at: ts("2022-02-28T09:00:00Z"),
                author: Some("alice_example".into()),
                text: "Ferry timetable changes from Monday, see the harbour office site".into(),
                lang: Some("en".into()),
                url: Some("https://twitter.com/alice_example/status/100".into()),
                source: "twitter_v2".into(),
                ..Post::default()
            }
        );
        // The author of 99 is not in `includes.users`: its id stands in.
        assert_eq!(ps[1].author.as_deref(), Some("404"));
        assert_eq!(ps[1].url.as_deref(), Some("https://twitter.com/i/web/status/99"));
        assert_eq!(ps[1].lang, None);
    }

    #[test]
    fn referenced_tweets_give_repost_and_reply_and_cut_retweets_are_rebuilt() {
        let out = decode(PAGE);
        let ps = posts(&out);
        let rt = ps[2];
        assert_eq!(rt.author.as_deref(), Some("bob_example"));
        assert_eq!(rt.repost_of.as_deref(), Some("100"));
        assert_eq!(rt.reply_to, None);
        assert_eq!(
            rt.text,
            "RT @alice_example: Ferry timetable changes from Monday, see the harbour office site"
        );
        let reply = ps[3];
        assert_eq!(reply.reply_to.as_deref(), Some("100"));
        assert_eq!(reply.repost_of, None);
        assert_eq!(reply.author.as_deref(), Some("3"));
        assert_eq!(reply.lang, None);
        let quote = ps[4];
        assert_eq!((quote.reply_to.as_deref(), quote.repost_of.as_deref()), (None, None));
        assert_eq!(quote.text, "This one https://t.co/x");
    }

    #[test]
    fn a_single_object_page_and_note_tweets() {
        let page = r#"{"data":{"id":"7","author_id":"1","text":"A long post begins…","note_tweet":{"text":"A long post begins and goes on well past the old limit"}},
            "includes":{"users":[{"id":"1","username":"alice_example"}]}}"#;
        let out = decode(page);
        let ps = posts(&out);
        assert_eq!(ps.len(), 1);
        assert_eq!(ps[0].text, "A long post begins and goes on well past the old limit");
        assert_eq!(ps[0].created_at, None);
    }

    #[test]
    fn pages_repeat_tweets_but_each_id_is_emitted_once() {
        let mut dec = TwitterV2Decoder::default();
        let first = decode_with(&mut dec, PAGE);
        assert_eq!(first.events.len(), 5);
        let again = decode_with(&mut dec, PAGE);
        assert_eq!((again.events.len(), again.ignored), (0, 5));
        let within = r#"{"data":[{"id":"1","text":"a"},{"id":"2","text":"b","referenced_tweets":[{"type":"quoted","id":"1"}]}],
            "includes":{"tweets":[{"id":"1","text":"a"}]}}"#;
        let out = decode(within);
        assert_eq!(ids(&out), ["1", "2"]);
        assert_eq!(out.ignored, 1);
    }

    #[test]
    fn a_flattened_tweet_uses_its_inline_author_and_references() {
        let flat = r#"{"id":"300","author_id":"2","created_at":"2021-04-08T19:00:00.000Z","lang":"in","text":"RT @alice_example: Pasar pagi di pelabuhan…",
            "author":{"id":"2","username":"bob_example","name":"Bob"},
            "referenced_tweets":[{"type":"retweeted","id":"299","author_id":"1","created_at":"2021-04-08T18:00:00.000Z","lang":"in",
                "text":"Pasar pagi di pelabuhan ramai sekali hari ini","author":{"id":"1","username":"alice_example"}}],
            "__twarc":{"version":"2.0.0"}}"#;
        let out = decode(flat);
        let ps = posts(&out);
        assert_eq!(ids(&out), ["299", "300"]);
        assert_eq!(ps[0].author.as_deref(), Some("alice_example"));
        assert_eq!(ps[0].lang.as_deref(), Some("id"));
        assert_eq!(
            *ps[1],
            Post {
                id: "300".into(),
                platform: "twitter".into(),
                created_at: ts("2021-04-08T19:00:00Z"),
                author: Some("bob_example".into()),
                text: "RT @alice_example: Pasar pagi di pelabuhan ramai sekali hari ini".into(),
                lang: Some("id".into()),
                repost_of: Some("299".into()),
                url: Some("https://twitter.com/bob_example/status/300".into()),
                source: "twitter_v2".into(),
                ..Post::default()
            }
        );
    }

    #[test]
    fn compliance_deletes_become_delete_events_and_other_actions_are_ignored() {
        let out =
            decode(r#"{"id":"1500","action":"delete","created_at":"2019-09-06T17:25:54.667Z","reason":"deleted"}"#);
        assert_eq!(
            out.events,
            vec![Event::Delete(Deletion {
                id: "1500".into(),
                platform: "twitter".into(),
                deleted_at: ts("2019-09-06T17:25:54.667Z"),
                source: "twitter_v2".into(),
            })]
        );
        let out = decode(r#"{"id":"1501","action":"protect","created_at":"2019-09-06T17:25:54Z"}"#);
        assert_eq!((out.events.len(), out.ignored), (0, 1));
    }

    #[test]
    fn users_counts_lists_and_errors_are_ignored() {
        let users = r#"{"data":[{"id":"1","username":"alice_example","created_at":"2010-01-01T00:00:00.000Z","pinned_tweet_id":"5"},{"id":"2","username":"bob_example"}],
            "includes":{"tweets":[{"id":"5","text":"Pinned hello","author_id":"1"}]}}"#;
        assert_eq!(decode(users).events.len(), 0);
        assert_eq!(decode(users).ignored, 3);
        let counts = r#"{"data":[{"end":"2021-10-16T19:00:00.000Z","start":"2021-10-16T18:00:00.000Z","tweet_count":39}],"meta":{"total_tweet_count":39}}"#;
        assert_eq!(decode(counts).ignored, 1);
        let lists = r#"{"data":[{"id":"9","name":"harbour news","created_at":"2021-01-28T14:45:48.000Z","private":false}],"meta":{"result_count":1}}"#;
        assert_eq!(decode(lists).ignored, 1);
        let error = r#"{"errors":[{"title":"Not Found Error","detail":"Could not find tweet","type":"https://api.twitter.com/2/problems/resource-not-found"}]}"#;
        let out = decode(error);
        assert_eq!((out.events.len(), out.ignored), (0, 1));
    }

    #[test]
    fn malformed_records_are_errors_and_change_nothing() {
        let mut dec = TwitterV2Decoder::default();
        let mut out = DecodeOutput::default();
        for bad in [
            r#"{"data": {"author_id": "1021"#,
            "true",
            "",
            r#"{"data":[{"id":"1","text":"x","created_at":"someday"}]}"#,
            r#"{"data":[{"id":"1","text":"x"}, 5]}"#,
            r#"{"action":"delete"}"#,
        ] {
            assert!(dec.decode(bad.as_bytes(), &mut out).is_err(), "{bad}");
        }
        assert_eq!((out.events.len(), out.ignored), (0, 0));
        let out = decode_with(&mut dec, r#"{"data":[{"id":"1","text":"x"}]}"#);
        assert_eq!(ids(&out), ["1"]);
    }

    #[test]
    fn an_array_of_tweets_is_read_too() {
        let out = decode(r#"[{"id":"1","text":"a","author_id":"8"},{"id":"2","text":"b"}]"#);
        assert_eq!(ids(&out), ["1", "2"]);
        assert_eq!(posts(&out)[1].author, None);
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let mut out = DecodeOutput::default();
            let _ = TwitterV2Decoder::default().decode(&bytes, &mut out);
        }

        #[test]
        fn arbitrary_pages_never_panic(
            id in "[0-9a-z]{0,6}",
            text in "\\PC{0,40}",
            date in "\\PC{0,30}",
            kind in "(retweeted|quoted|replied_to|[a-z]{0,5})",
        ) {
            let record = serde_json::json!({
                "data": [{"id": id, "text": text, "created_at": date, "author_id": id,
                          "referenced_tweets": [{"type": kind, "id": id}]}],
                "includes": {"users": [{"id": id, "username": text}],
                             "tweets": [{"id": id, "text": text, "author_id": id}]},
            });
            let mut out = DecodeOutput::default();
            let _ = TwitterV2Decoder::default().decode(record.to_string().as_bytes(), &mut out);
        }
    }
}
