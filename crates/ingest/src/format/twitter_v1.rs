//! Twitter/X API v1.1: every status in a record becomes a post, including
//! the statuses Twitter embeds in others (the original of a retweet, a quoted
//! tweet), each id emitted once.
//!
//! A record is one JSON value, which may be
//! - a single status, or one line of the streaming API;
//! - an array of statuses (timelines, favourites, retweets of a status);
//! - a search response, `{"statuses": [...], "search_metadata": ...}`;
//! - a streaming deletion notice, `{"delete": {"status": {"id_str": ...}}}`,
//!   which becomes an [`Event::Delete`](tidewatch_core::Event::Delete);
//! - anything else Twitter sends: users, lists, oEmbed answers, error
//!   objects, and stream messages such as `limit`, `friends`, `scrub_geo` or
//!   `status_withheld`. These hold no post and are counted as ignored.
//!
//! Choices, and why:
//! - Text is `extended_tweet.full_text`, else `full_text`, else `text` (the
//!   streaming API, extended mode and compatibility mode put the whole text in
//!   those places respectively). HTML entities (`&amp;`) are kept as Twitter
//!   wrote them.
//! - A retweet whose text Twitter cut (ending in `…`) gets the original's full
//!   text, prefixed `RT @author: ` (see `twitter_common::retweet_text`),
//!   unless the original is itself cut (`truncated` with no full text).
//! - `repost_of` is the retweeted status's id, `reply_to` is
//!   `in_reply_to_status_id_str`. A quote is not a repost and the canonical
//!   post has no field for it: the quoted tweet is emitted as a post of its
//!   own and the quoting post keeps its text.
//! - Embedded statuses are emitted before the post that embeds them, so a
//!   reader meets an original before its retweets.
//! - A status without its `user` object is skipped (counted as ignored):
//!   Twitter sends those only as trimmed copies nested in search results, and
//!   a post without an author cannot take part in any per-account analysis.
//! - Entities are not read: the enrichment stage extracts them from the text.

use super::twitter_common::{
    decode_record, expand_links, non_empty, parse_time, permalink, retweet_text, source_lang, RecentIds, Scalar,
    UrlEntities, PLATFORM,
};
use super::{DecodeError, DecodeOutput, Decoder, Format};
use serde::Deserialize;
use tidewatch_core::{Deletion, Post};

/// The name written in `Post.source`.
const SOURCE: &str = "twitter_v1";

/// Decodes v1.1 records; remembers the ids it emitted to de-duplicate.
#[derive(Default)]
pub struct TwitterV1Decoder {
    seen: RecentIds,
}

/// Any object v1.1 sends: a status, a search response, a stream message, a
/// user... Only the fields tidewatch reads are declared; the rest are skipped
/// without being copied. Which kind of object it is follows from which
/// fields are present (see [`Object::is_status`]).
#[derive(Deserialize, Default)]
#[serde(default)]
struct Object<'a> {
    #[serde(borrow)]
    id_str: Option<Scalar<'a>>,
    #[serde(borrow)]
    id: Option<Scalar<'a>>,
    #[serde(borrow)]
    text: Option<Scalar<'a>>,
    #[serde(borrow)]
    full_text: Option<Scalar<'a>>,
    #[serde(borrow)]
    extended_tweet: Option<ExtendedTweet<'a>>,
    #[serde(borrow)]
    entities: Option<UrlEntities<'a>>,
    truncated: Option<bool>,
    #[serde(borrow)]
    created_at: Option<Scalar<'a>>,
    #[serde(borrow)]
    lang: Option<Scalar<'a>>,
    #[serde(borrow)]
    user: Option<User<'a>>,
    #[serde(borrow)]
    in_reply_to_status_id_str: Option<Scalar<'a>>,
    #[serde(borrow)]
    in_reply_to_status_id: Option<Scalar<'a>>,
    #[serde(borrow)]
    retweeted_status: Option<Box<Object<'a>>>,
    #[serde(borrow)]
    quoted_status: Option<Box<Object<'a>>>,
    /// A search response's results.
    #[serde(borrow)]
    statuses: Option<Vec<Object<'a>>>,
    /// A streaming deletion notice.
    #[serde(borrow)]
    delete: Option<DeleteNotice<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ExtendedTweet<'a> {
    #[serde(borrow)]
    full_text: Option<Scalar<'a>>,
    #[serde(borrow)]
    entities: Option<UrlEntities<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct User<'a> {
    #[serde(borrow)]
    screen_name: Option<Scalar<'a>>,
    #[serde(borrow)]
    id_str: Option<Scalar<'a>>,
    #[serde(borrow)]
    id: Option<Scalar<'a>>,
}

/// `{"delete": {"status": {"id_str": ..., "user_id_str": ...}, "timestamp_ms": ...}}`
#[derive(Deserialize, Default)]
#[serde(default)]
struct DeleteNotice<'a> {
    #[serde(borrow)]
    status: Option<DeletedStatus<'a>>,
    #[serde(borrow)]
    timestamp_ms: Option<Scalar<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct DeletedStatus<'a> {
    #[serde(borrow)]
    id_str: Option<Scalar<'a>>,
    #[serde(borrow)]
    id: Option<Scalar<'a>>,
}

impl<'a> Object<'a> {
    fn status_id(&self) -> Option<&str> {
        non_empty(&self.id_str).or_else(|| non_empty(&self.id))
    }

    /// A status has an id and a text; users, lists and stream messages lack
    /// one or the other.
    fn is_status(&self) -> bool {
        let has_text = self.text.is_some()
            || self.full_text.is_some()
            || self.extended_tweet.as_ref().is_some_and(|e| e.full_text.is_some());
        has_text && self.status_id().is_some()
    }

    /// The full text: `extended_tweet.full_text`, `full_text`, `text`.
    fn full_text(&self) -> &str {
        self.extended_tweet
            .as_ref()
            .and_then(|e| non_empty(&e.full_text))
            .or_else(|| non_empty(&self.full_text))
            .or_else(|| non_empty(&self.text))
            .unwrap_or("")
    }

    /// The full text when it is known to be whole: a compatibility-mode
    /// status marked `truncated` without an `extended_tweet` holds only a cut
    /// `text`.
    fn whole_text(&self) -> Option<&str> {
        let cut = self.truncated == Some(true) && self.full_text.is_none() && self.extended_tweet.is_none();
        (!cut).then(|| self.full_text())
    }

    fn screen_name(&self) -> Option<&str> {
        self.user.as_ref().and_then(|u| non_empty(&u.screen_name))
    }

    /// `user.screen_name`, else the user's numeric id.
    fn author(&self) -> Option<&str> {
        let user = self.user.as_ref()?;
        non_empty(&user.screen_name)
            .or_else(|| non_empty(&user.id_str))
            .or_else(|| non_empty(&user.id))
    }
}

/// Collects the posts of one status and of the statuses embedded in it,
/// embedded ones first. Returns how many statuses were skipped.
fn collect_status(status: &Object<'_>, posts: &mut Vec<Post>) -> Result<u64, DecodeError> {
    let mut skipped = 0;
    for embedded in [&status.retweeted_status, &status.quoted_status].into_iter().flatten() {
        if embedded.is_status() {
            skipped += collect_status(embedded, posts)?;
        }
    }
    // `is_status` guarantees an id; the fallback only satisfies the types.
    let Some(id) = status.status_id() else {
        return Ok(skipped + 1);
    };
    let Some(author) = status.author() else {
        return Ok(skipped + 1);
    };

    let own_text = status.full_text();
    let retweeted = status.retweeted_status.as_deref();
    let text = match retweeted {
        Some(original) => retweet_text(own_text, original.screen_name().zip(original.whole_text())),
        None => own_text.into(),
    };
    let text = expand_links(
        text,
        &[
            status.entities.as_ref(),
            status.extended_tweet.as_ref().and_then(|e| e.entities.as_ref()),
            retweeted.and_then(|r| r.entities.as_ref()),
            retweeted
                .and_then(|r| r.extended_tweet.as_ref())
                .and_then(|e| e.entities.as_ref()),
        ],
    );

    posts.push(Post {
        id: id.to_string(),
        platform: PLATFORM.to_string(),
        created_at: parse_time("created_at", non_empty(&status.created_at))?,
        author: Some(author.to_string()),
        text: text.into_owned(),
        lang: source_lang(non_empty(&status.lang)),
        reply_to: non_empty(&status.in_reply_to_status_id_str)
            .or_else(|| non_empty(&status.in_reply_to_status_id))
            .map(str::to_string),
        repost_of: retweeted.and_then(Object::status_id).map(str::to_string),
        url: Some(permalink(status.screen_name(), id)),
        source: SOURCE.to_string(),
        ..Post::default()
    });
    Ok(skipped)
}

/// Sorts one object into posts, a deletion, or ignored.
fn collect_object(
    object: &Object<'_>,
    posts: &mut Vec<Post>,
    deletions: &mut Vec<Deletion>,
) -> Result<u64, DecodeError> {
    if object.is_status() {
        return collect_status(object, posts);
    }
    if let Some(statuses) = &object.statuses {
        let mut ignored = 0;
        for status in statuses {
            ignored += collect_object(status, posts, deletions)?;
        }
        return Ok(ignored);
    }
    if let Some(notice) = &object.delete {
        let deleted = notice
            .status
            .as_ref()
            .and_then(|s| non_empty(&s.id_str).or_else(|| non_empty(&s.id)));
        let Some(id) = deleted else {
            return Err(DecodeError::missing("delete.status.id_str"));
        };
        deletions.push(Deletion {
            id: id.to_string(),
            platform: PLATFORM.to_string(),
            deleted_at: parse_time("delete.timestamp_ms", non_empty(&notice.timestamp_ms))?,
            source: SOURCE.to_string(),
        });
        return Ok(0);
    }
    // A user, a list, an error object, a `limit` or `friends` message...
    Ok(1)
}

impl Decoder for TwitterV1Decoder {
    fn format(&self) -> Format {
        Format::TwitterV1
    }

    fn decode(&mut self, record: &[u8], out: &mut DecodeOutput) -> Result<(), DecodeError> {
        decode_record(record, &mut self.seen, out, |o: &Object<'_>, posts, deletions| {
            collect_object(o, posts, deletions)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use tidewatch_core::Event;
    use tidewatch_core::Timestamp;

    fn decode_with(dec: &mut TwitterV1Decoder, record: &str) -> DecodeOutput {
        let mut out = DecodeOutput::default();
        dec.decode(record.as_bytes(), &mut out)
            .unwrap_or_else(|e| panic!("{e}: {record}"));
        out
    }

    fn decode(record: &str) -> DecodeOutput {
        decode_with(&mut TwitterV1Decoder::default(), record)
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

    fn ts(s: &str) -> Option<Timestamp> {
        Some(Timestamp::parse(s).unwrap())
    }

    const SIMPLE: &str = r#"{"created_at":"Wed Oct 10 20:19:24 +0000 2018","id":1050118621198921728,"id_str":"1050118621198921728","text":"Low tide at the pier &amp; a heron","truncated":false,"in_reply_to_status_id":null,"in_reply_to_status_id_str":null,"user":{"id":111,"id_str":"111","screen_name":"alice_example","lang":null},"lang":"en","entities":{"hashtags":[]}}"#;

    #[test]
    fn a_single_status_becomes_one_post_with_every_field() {
        let out = decode(SIMPLE);
        assert_eq!(out.ignored, 0);
        let expected = Post {
            id: "1050118621198921728".into(),
            platform: "twitter".into(),
            created_at: ts("2018-10-10T20:19:24Z"),
            author: Some("alice_example".into()),
            text: "Low tide at the pier &amp; a heron".into(),
            lang: Some("en".into()),
            reply_to: None,
            repost_of: None,
            url: Some("https://twitter.com/alice_example/status/1050118621198921728".into()),
            source: "twitter_v1".into(),
            ..Post::default()
        };
        assert_eq!(out.events, vec![Event::Post(expected)]);
    }

    #[test]
    fn arrays_and_search_responses_hold_statuses() {
        let array = format!("[{SIMPLE}, {}]", SIMPLE.replace("1050118621198921728", "7"));
        let out = decode(&array);
        let ids: Vec<_> = posts(&out).iter().map(|p| p.id.clone()).collect();
        assert_eq!(ids, ["1050118621198921728", "7"]);

        let search = format!(r#"{{"statuses":[{SIMPLE}],"search_metadata":{{"count":15}}}}"#);
        let out = decode(&search);
        assert_eq!(posts(&out).len(), 1);
        assert_eq!(out.ignored, 0);
    }

    #[test]
    fn text_prefers_extended_tweet_then_full_text_then_text() {
        let compat = r#"{"id_str":"5","created_at":"Wed Oct 10 20:19:24 +0000 2018","text":"A long thought about tides that…","truncated":true,"extended_tweet":{"full_text":"A long thought about tides that goes on #tides"},"user":{"screen_name":"bob_example"}}"#;
        assert_eq!(
            posts(&decode(compat))[0].text,
            "A long thought about tides that goes on #tides"
        );
        let extended = r#"{"id_str":"6","full_text":"Extended mode text","user":{"screen_name":"bob_example"}}"#;
        let out = decode(extended);
        assert_eq!(posts(&out)[0].text, "Extended mode text");
        assert_eq!(posts(&out)[0].created_at, None);
    }

    #[test]
    fn replies_and_ids_written_as_numbers() {
        let reply =
            r#"{"id":42,"text":"@alice_example agreed","in_reply_to_status_id":41,"user":{"id":9},"lang":"und"}"#;
        let out = decode(reply);
        let p = posts(&out)[0];
        assert_eq!(p.id, "42");
        assert_eq!(p.reply_to.as_deref(), Some("41"));
        // No screen name: the account id stands in, and the permalink uses
        // the handle-free form.
        assert_eq!(p.author.as_deref(), Some("9"));
        assert_eq!(p.url.as_deref(), Some("https://twitter.com/i/web/status/42"));
        assert_eq!(p.lang, None);
    }

    #[test]
    fn a_retweet_emits_the_original_first_and_points_at_it() {
        let rt = r#"{"id_str":"20","created_at":"Thu Oct 11 08:00:00 +0000 2018","text":"RT @alice_example: Spring tides tonight","lang":"en","user":{"screen_name":"carol_example"},
            "retweeted_status":{"id_str":"10","created_at":"Wed Oct 10 20:00:00 +0000 2018","text":"Spring tides tonight","lang":"en","user":{"screen_name":"alice_example"}}}"#;
        let out = decode(rt);
        let ps = posts(&out);
        assert_eq!(ps.len(), 2);
        assert_eq!(ps[0].id, "10");
        assert_eq!(ps[0].repost_of, None);
        assert_eq!(ps[0].author.as_deref(), Some("alice_example"));
        assert_eq!(ps[1].id, "20");
        assert_eq!(ps[1].repost_of.as_deref(), Some("10"));
        assert_eq!(ps[1].text, "RT @alice_example: Spring tides tonight");
        assert_eq!(ps[1].created_at, ts("2018-10-11T08:00:00Z"));
    }

    #[test]
    fn a_cut_retweet_text_is_rebuilt_from_the_original() {
        let rt = r#"{"id_str":"21","text":"RT @alice_example: The harbour board meets on Monday to discuss the new…","user":{"screen_name":"carol_example"},
            "retweeted_status":{"id_str":"11","text":"The harbour board meets on Monday to discuss the new…","truncated":true,"extended_tweet":{"full_text":"The harbour board meets on Monday to discuss the new sea wall #harbour"},"user":{"screen_name":"alice_example"}}}"#;
        let out = decode(rt);
        let ps = posts(&out);
        assert_eq!(
            ps[0].text,
            "The harbour board meets on Monday to discuss the new sea wall #harbour"
        );
        assert_eq!(
            ps[1].text,
            "RT @alice_example: The harbour board meets on Monday to discuss the new sea wall #harbour"
        );
    }

    #[test]
    fn a_cut_retweet_of_a_cut_original_keeps_its_own_text() {
        let rt = r#"{"id_str":"22","text":"RT @alice_example: The harbour board meets on Monday to discuss the new…","user":{"screen_name":"carol_example"},
            "retweeted_status":{"id_str":"12","text":"The harbour board meets on Monday to discuss t… https://t.co/abc","truncated":true,"user":{"screen_name":"alice_example"}}}"#;
        let out = decode(rt);
        assert_eq!(
            posts(&out)[1].text,
            "RT @alice_example: The harbour board meets on Monday to discuss the new…"
        );
    }

    #[test]
    fn quoted_and_nested_statuses_are_posts_and_duplicates_are_ignored() {
        let quote = r#"{"id_str":"30","text":"Worth reading","quoted_status_id_str":"12","user":{"screen_name":"dave_example"},
            "quoted_status":{"id_str":"12","text":"Tide tables for May","user":{"screen_name":"erin_example"}}}"#;
        let mut dec = TwitterV1Decoder::default();
        let out = decode_with(&mut dec, quote);
        let ps = posts(&out);
        let ids: Vec<_> = ps.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["12", "30"]);
        assert_eq!(ps[1].repost_of, None);
        assert_eq!(ps[1].text, "Worth reading");

        // The same quote again, and a retweet of the quoted tweet: only the
        // retweet is new.
        let out = decode_with(&mut dec, quote);
        assert_eq!((out.events.len(), out.ignored), (0, 2));
        let rt = r#"{"id_str":"31","text":"RT @erin_example: Tide tables for May","user":{"screen_name":"dave_example"},
            "retweeted_status":{"id_str":"12","text":"Tide tables for May","user":{"screen_name":"erin_example"}}}"#;
        let out = decode_with(&mut dec, rt);
        assert_eq!(posts(&out).len(), 1);
        assert_eq!(posts(&out)[0].repost_of.as_deref(), Some("12"));
        assert_eq!(out.ignored, 1);
    }

    #[test]
    fn an_embedded_status_without_its_user_is_skipped() {
        let rt = r#"{"id_str":"40","text":"RT @frank_example: Look","user":{"screen_name":"gina_example"},
            "retweeted_status":{"id_str":"39","text":"Look","user":{"screen_name":"frank_example"},
              "quoted_status":{"id_str":"38","text":"A trimmed copy"}}}"#;
        let out = decode(rt);
        let ids: Vec<_> = posts(&out).iter().map(|p| p.id.clone()).collect();
        assert_eq!(ids, ["39", "40"]);
        assert_eq!(out.ignored, 1);
    }

    #[test]
    fn a_stream_deletion_becomes_a_delete_event() {
        let del = r#"{"delete":{"status":{"id":1234,"id_str":"1234","user_id":3,"user_id_str":"3"},"timestamp_ms":"1520690595660"}}"#;
        let out = decode(del);
        assert_eq!(
            out.events,
            vec![Event::Delete(Deletion {
                id: "1234".into(),
                platform: "twitter".into(),
                deleted_at: Some(Timestamp(1_520_690_595_660)),
                source: "twitter_v1".into(),
            })]
        );
    }

    #[test]
    fn stream_messages_users_and_lists_are_ignored() {
        for record in [
            r#"{"limit":{"track":12,"timestamp_ms":"1520690595660"}}"#,
            r#"{"friends":[1,2,3]}"#,
            r#"{"scrub_geo":{"user_id":3,"up_to_status_id":5}}"#,
            r#"{"errors":[{"code":34,"message":"Sorry, that page does not exist."}]}"#,
            r#"{"id":9,"id_str":"9","screen_name":"alice_example","lang":"en","created_at":"Wed Oct 10 20:19:24 +0000 2018"}"#,
            r#"{"url":"https://twitter.com/alice_example/statuses/1","html":"<blockquote>x</blockquote>","type":"rich"}"#,
        ] {
            let out = decode(record);
            assert_eq!((out.events.len(), out.ignored), (0, 1), "{record}");
        }
        let lists = r#"[{"id":1,"id_str":"1","name":"tides","mode":"public","user":{"screen_name":"alice_example"}},{"id":2,"id_str":"2","name":"boats"}]"#;
        let out = decode(lists);
        assert_eq!((out.events.len(), out.ignored), (0, 2));
    }

    #[test]
    fn malformed_records_are_errors_and_change_nothing() {
        let mut dec = TwitterV1Decoder::default();
        let mut out = DecodeOutput::default();
        for bad in [
            "{not json",
            "42",
            "",
            r#"{"id_str":"1","text":"x","user":{"screen_name":"a"},"created_at":"yesterday"}"#,
            r#"{"delete":{"status":{}}}"#,
        ] {
            assert!(dec.decode(bad.as_bytes(), &mut out).is_err(), "{bad}");
        }
        assert_eq!((out.events.len(), out.ignored), (0, 0));
        // A record failing after its embedded status decoded leaves that
        // status unremembered, so it is emitted when it comes again.
        let bad = r#"{"id_str":"2","text":"RT","created_at":"never","user":{"screen_name":"a"},"retweeted_status":{"id_str":"1","text":"x","user":{"screen_name":"b"}}}"#;
        assert!(dec.decode(bad.as_bytes(), &mut out).is_err());
        let out = decode_with(&mut dec, r#"{"id_str":"1","text":"x","user":{"screen_name":"b"}}"#);
        assert_eq!(posts(&out).len(), 1);
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let mut out = DecodeOutput::default();
            let _ = TwitterV1Decoder::default().decode(&bytes, &mut out);
        }

        #[test]
        fn arbitrary_statuses_never_panic(
            id in "[0-9a-z]{0,6}",
            text in "\\PC{0,40}",
            date in "\\PC{0,30}",
            lang in "[a-z]{0,4}",
        ) {
            let record = serde_json::json!({
                "id_str": id, "text": text, "created_at": date, "lang": lang,
                "user": {"screen_name": "alice_example"},
                "retweeted_status": {"id_str": id, "text": text, "user": {}},
            });
            let mut out = DecodeOutput::default();
            let _ = TwitterV1Decoder::default().decode(record.to_string().as_bytes(), &mut out);
        }
    }
}
