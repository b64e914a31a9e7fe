//! Mastodon: every status found in a JSON value becomes a [`Post`], once.
//!
//! The decoder gets one whole top-level JSON value
//! ([`Framing::JsonValues`](super::Framing::JsonValues)), which may be a
//! single status, an array of them, a streaming event, or any API response
//! that nests statuses: a notification (`status`), a conversation
//! (`last_status`), a context (`ancestors`, `descendants`), search results
//! and grouped notifications (`statuses`), a reblog (`reblog`), a quote
//! (`quote.quoted_status`). Rather than list every response shape, the
//! decoder walks the whole value and takes every object that looks like a
//! status: one with a string `uri`, a `content` and an `account` object.
//! Values that hold none (accounts, media attachments, polls, cards) are
//! counted as ignored.
//!
//! Streaming events `{"event": "update", "payload": "<status JSON>"}` carry
//! their payload as a string, which is parsed and walked the same way
//! (`status.update`, `notification` too); `{"event": "delete", "payload":
//! "<id>"}` becomes a [`Deletion`]. Mastodon's streaming API names a
//! deleted status by the instance's local id, while posts are stored by
//! URI; so the decoder remembers the local id of the recent statuses it
//! emitted (about the last 130k, in two generations) and names the
//! deletion by the URI. A deletion of a status older than that keeps the
//! local id and matches nothing: one source decodes one instance, so local
//! ids never mix.
//!
//! Post fields:
//!
//! | Post field   | from |
//! |--------------|------|
//! | `id`         | `uri` (global across instances; the local `id` is not) |
//! | `text`       | `content` as plain text, after `spoiler_text` and a blank line when there is one |
//! | `author`     | `account.acct`, with `@` and the host of `uri` added when it has no instance part (local accounts) |
//! | `created_at` | `created_at` |
//! | `lang`       | `language` |
//! | `reply_to`   | `in_reply_to_id` (a local id: that is all Mastodon gives) |
//! | `repost_of`  | the `uri` of `reblog`; the reblogged status is a post too |
//! | `url`        | `url` (the permalink) |
//!
//! The same status turns up in many places (a timeline, then a context,
//! then a notification, across many files), so the decoder remembers the
//! URIs it has emitted, across records and files, and counts repeats as
//! ignored. Nested statuses come before the status that holds them, so an
//! original precedes its reblog.

use super::rss::html_to_text;
use super::{DecodeError, DecodeOutput, Decoder, Format};
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use tidewatch_core::{Deletion, Event, Post, Timestamp};

const PLATFORM: &str = "mastodon";
const SOURCE: &str = "mastodon";

/// Decodes Mastodon JSON values; remembers the URIs it has emitted.
#[derive(Default)]
pub struct MastodonDecoder {
    seen: SeenUris,
    local: LocalIds,
}

impl Decoder for MastodonDecoder {
    fn format(&self) -> Format {
        Format::Mastodon
    }

    fn decode(&mut self, record: &[u8], out: &mut DecodeOutput) -> Result<(), DecodeError> {
        let value: Value = serde_json::from_slice(record)?;
        let mut found = Found::default();
        found.value(&value)?;

        // Only now that the whole record decoded are URIs remembered, so a
        // failed record leaves the decoder as it was.
        let mut ignored = 0;
        let mut events = Vec::with_capacity(found.events.len());
        for (local, uri) in found.local_ids {
            self.local.insert(local, uri);
        }
        for mut event in found.events {
            match &mut event {
                Event::Post(post) => {
                    if !self.seen.insert(&post.id) {
                        ignored += 1;
                        continue;
                    }
                }
                Event::Delete(d) => {
                    if let Some(uri) = self.local.get(&d.id) {
                        d.id = uri.to_owned();
                    }
                }
            }
            events.push(event);
        }
        if events.is_empty() && ignored == 0 {
            // Nothing in it was a status (an account, a poll, a card...).
            ignored = 1;
        }
        out.events.extend(events);
        out.ignored += ignored;
        Ok(())
    }
}

/// The events found in one record, in the order they were met.
#[derive(Default)]
struct Found {
    events: Vec<Event>,
    /// (local id, URI) of every status met.
    local_ids: Vec<(String, String)>,
}

impl Found {
    /// Walks any JSON value, collecting statuses and streaming events.
    fn value(&mut self, v: &Value) -> Result<(), DecodeError> {
        match v {
            Value::Array(items) => items.iter().try_for_each(|item| self.value(item)),
            Value::Object(obj) if is_status(obj) => self.status(obj),
            Value::Object(obj) => match (obj.get("event"), obj.get("payload")) {
                (Some(Value::String(event)), Some(payload)) => self.streaming(event, payload),
                _ => obj.values().try_for_each(|field| self.value(field)),
            },
            _ => Ok(()),
        }
    }

    /// One event of the streaming API.
    fn streaming(&mut self, event: &str, payload: &Value) -> Result<(), DecodeError> {
        match (event, payload) {
            ("delete", Value::String(id)) if !id.is_empty() => {
                self.events.push(Event::Delete(Deletion {
                    id: id.clone(),
                    platform: PLATFORM.into(),
                    deleted_at: None,
                    source: SOURCE.into(),
                }));
                Ok(())
            }
            (_, Value::String(json)) if json.trim_start().starts_with(['{', '[']) => {
                let inner: Value =
                    serde_json::from_str(json).map_err(|e| DecodeError::field("payload", e.to_string()))?;
                self.value(&inner)
            }
            // Events whose payload holds no status (`filters_changed`,
            // `conversation` ids...) or a payload already parsed.
            _ => self.value(payload),
        }
    }

    /// A status: first whatever it embeds (a reblogged or quoted status),
    /// then the status itself.
    fn status(&mut self, obj: &Map<String, Value>) -> Result<(), DecodeError> {
        for (key, field) in obj {
            // An account, media, emojis and the like hold no status; skip
            // them rather than walk them.
            if !matches!(
                key.as_str(),
                "account" | "media_attachments" | "mentions" | "tags" | "emojis" | "card"
            ) {
                self.value(field)?;
            }
        }
        let post = status_to_post(obj)?;
        let local = match obj.get("id") {
            Some(Value::String(id)) if !id.is_empty() => Some(id.clone()),
            Some(Value::Number(id)) => Some(id.to_string()),
            _ => None,
        };
        if let Some(local) = local {
            self.local_ids.push((local, post.id.clone()));
        }
        self.events.push(Event::Post(post));
        Ok(())
    }
}

/// Whether an object is a status: a string `uri`, a `content`, an `account`.
fn is_status(obj: &Map<String, Value>) -> bool {
    matches!(obj.get("uri"), Some(Value::String(_)))
        && obj.contains_key("content")
        && matches!(obj.get("account"), Some(Value::Object(_)))
}

fn status_to_post(obj: &Map<String, Value>) -> Result<Post, DecodeError> {
    let uri = string(obj, "uri").ok_or_else(|| DecodeError::field("uri", "empty"))?;
    let created_at = string(obj, "created_at")
        .map(|t| Timestamp::parse(t).map_err(|e| DecodeError::field("created_at", e.to_string())))
        .transpose()?;
    let author = obj
        .get("account")
        .and_then(Value::as_object)
        .and_then(|account| string(account, "acct"))
        .map(|acct| qualified_acct(acct, uri));
    let content = string(obj, "content").map(html_to_text).unwrap_or_default();
    let text = match string(obj, "spoiler_text") {
        Some(spoiler) if content.is_empty() => spoiler.to_owned(),
        Some(spoiler) => format!("{spoiler}\n\n{content}"),
        None => content,
    };
    let reply_to = match obj.get("in_reply_to_id") {
        Some(Value::String(id)) if !id.is_empty() => Some(id.clone()),
        Some(Value::Number(id)) => Some(id.to_string()),
        _ => None,
    };
    let repost_of = obj
        .get("reblog")
        .and_then(Value::as_object)
        .and_then(|reblog| string(reblog, "uri"))
        .map(str::to_owned);
    Ok(Post {
        id: uri.to_owned(),
        platform: PLATFORM.into(),
        created_at,
        author,
        text,
        lang: string(obj, "language").map(str::to_owned),
        reply_to,
        repost_of,
        url: string(obj, "url").map(str::to_owned),
        source: SOURCE.into(),
        ..Post::default()
    })
}

/// A non-empty string field.
fn string<'v>(obj: &'v Map<String, Value>, key: &str) -> Option<&'v str> {
    obj.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// `acct` is `user@instance` for remote accounts but bare `user` for
/// accounts of the instance that served the response; the instance is then
/// the host of the status URI, so that the same account reads the same
/// whichever instance it was fetched from.
fn qualified_acct(acct: &str, uri: &str) -> String {
    if acct.contains('@') {
        return acct.to_owned();
    }
    let host = uri
        .split_once("://")
        .map(|(_, rest)| rest.split('/').next().unwrap_or_default())
        .filter(|host| !host.is_empty());
    match host {
        Some(host) => format!("{acct}@{host}"),
        None => acct.to_owned(),
    }
}

/// The URIs already emitted, as 64-bit hashes, with bounded memory.
///
/// Two generations of [`GENERATION`] hashes each: when the current one is
/// full it becomes the previous one and the old previous one is dropped. So
/// the last million or so URIs are always remembered (a live stream would
/// otherwise grow the set forever), at about 16 bytes each. Repeats further
/// back than that pass through, and the store's de-duplication by id
/// removes them.
struct SeenUris {
    current: HashSet<u64>,
    previous: HashSet<u64>,
    generation: usize,
}

const GENERATION: usize = 1 << 20;

impl Default for SeenUris {
    fn default() -> Self {
        SeenUris {
            current: HashSet::new(),
            previous: HashSet::new(),
            generation: GENERATION,
        }
    }
}

impl SeenUris {
    /// Records `uri`; returns `false` when it was recorded before.
    fn insert(&mut self, uri: &str) -> bool {
        // A fixed-key hasher, so that a URI always maps to the same key.
        let mut h = DefaultHasher::new();
        uri.hash(&mut h);
        let key = h.finish();
        if self.previous.contains(&key) || !self.current.insert(key) {
            return false;
        }
        if self.current.len() >= self.generation {
            self.previous = std::mem::take(&mut self.current);
        }
        true
    }
}

/// Local status id → URI for the recent statuses, in two generations of
/// [`LOCAL_GENERATION`] entries: bounded memory, and the newest are always
/// kept.
#[derive(Default)]
struct LocalIds {
    current: HashMap<String, String>,
    previous: HashMap<String, String>,
}

const LOCAL_GENERATION: usize = 1 << 16;

impl LocalIds {
    fn insert(&mut self, local: String, uri: String) {
        self.current.insert(local, uri);
        if self.current.len() >= LOCAL_GENERATION {
            self.previous = std::mem::take(&mut self.current);
        }
    }

    fn get(&self, local: &str) -> Option<&str> {
        self.current
            .get(local)
            .or_else(|| self.previous.get(local))
            .map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A status as the API writes it (trimmed to the fields that matter,
    /// plus a few that must be skipped).
    fn status(local_id: &str, acct: &str, content: &str) -> Value {
        serde_json::json!({
            "id": local_id,
            "created_at": "2026-02-03T04:05:06.789Z",
            "in_reply_to_id": null,
            "spoiler_text": "",
            "visibility": "public",
            "language": "en",
            "uri": format!("https://example.social/users/{acct}/statuses/{local_id}"),
            "url": format!("https://example.social/@{acct}/{local_id}"),
            "content": content,
            "reblog": null,
            "account": {"id": "1", "username": acct, "acct": acct,
                        "uri": format!("https://example.social/users/{acct}"),
                        "note": "<p>not a status</p>"},
            "media_attachments": [],
            "mentions": [],
            "poll": null,
            "card": null
        })
    }

    fn uri(acct: &str, local_id: &str) -> String {
        format!("https://example.social/users/{acct}/statuses/{local_id}")
    }

    fn decode_with(dec: &mut MastodonDecoder, v: &Value) -> Result<DecodeOutput, DecodeError> {
        let mut out = DecodeOutput::default();
        dec.decode(v.to_string().as_bytes(), &mut out)?;
        Ok(out)
    }

    fn decode(v: &Value) -> DecodeOutput {
        decode_with(&mut MastodonDecoder::default(), v).unwrap()
    }

    fn post_ids(out: &DecodeOutput) -> Vec<String> {
        out.events
            .iter()
            .filter_map(|e| match e {
                Event::Post(p) => Some(p.id.clone()),
                Event::Delete(_) => None,
            })
            .collect()
    }

    #[test]
    fn a_status_becomes_a_post_with_plain_text() {
        let content = r#"<p>Hello <span class="h-card"><a href="https://other.example/@bob_example" class="u-url mention">@<span>bob_example</span></a></span> &amp; friends&#39; <a href="https://example.org/tides?x=1" rel="nofollow"><span class="invisible">https://</span><span class="ellipsis">example.org/tid</span><span class="invisible">es?x=1</span></a></p><p>second<br />line</p>"#;
        let out = decode(&status("101", "alice_example", content));
        let want = Post {
            id: uri("alice_example", "101"),
            platform: "mastodon".into(),
            created_at: Some(Timestamp::parse("2026-02-03T04:05:06.789Z").unwrap()),
            author: Some("alice_example@example.social".into()),
            text: "Hello @bob_example & friends' https://example.org/tides?x=1\n\nsecond\nline".into(),
            lang: Some("en".into()),
            reply_to: None,
            repost_of: None,
            url: Some("https://example.social/@alice_example/101".into()),
            source: "mastodon".into(),
            ..Post::default()
        };
        assert_eq!(out.events, vec![Event::Post(want)]);
        assert_eq!(out.ignored, 0);
    }

    #[test]
    fn remote_accts_replies_and_spoilers_are_kept() {
        let mut s = status("102", "carol_example@far.example", "<p>body</p>");
        s["in_reply_to_id"] = "101".into();
        s["spoiler_text"] = "tides, spoilers".into();
        s["language"] = Value::Null;
        let out = decode(&s);
        let Event::Post(p) = &out.events[0] else {
            panic!("not a post")
        };
        assert_eq!(p.author.as_deref(), Some("carol_example@far.example"));
        assert_eq!(p.reply_to.as_deref(), Some("101"));
        assert_eq!(p.text, "tides, spoilers\n\nbody");
        assert_eq!(p.lang, None);
    }

    #[test]
    fn a_reblog_yields_the_original_then_the_reblog() {
        let original = status("201", "bob_example", "<p>original</p>");
        let mut reblog = status("202", "alice_example", "");
        reblog["reblog"] = original;
        let out = decode(&reblog);
        let posts: Vec<&Post> = out
            .events
            .iter()
            .filter_map(|e| match e {
                Event::Post(p) => Some(p),
                Event::Delete(_) => None,
            })
            .collect();
        assert_eq!(posts.len(), 2);
        assert_eq!(posts[0].id, uri("bob_example", "201"));
        assert_eq!(posts[0].text, "original");
        assert_eq!(posts[0].repost_of, None);
        assert_eq!(posts[1].id, uri("alice_example", "202"));
        assert_eq!(posts[1].text, "");
        assert_eq!(posts[1].repost_of, Some(uri("bob_example", "201")));
    }

    #[test]
    fn arrays_and_nesting_responses_are_walked() {
        let s = |id: &str| status(id, "alice_example", "<p>x</p>");
        let cases = [
            // A timeline page.
            (serde_json::json!([s("1"), s("2")]), vec!["1", "2"]),
            // A notification.
            (
                serde_json::json!({"id": "n1", "type": "mention", "account": {"acct": "bob_example"}, "status": s("3")}),
                vec!["3"],
            ),
            // Conversations.
            (
                serde_json::json!([{"id": "c1", "unread": true, "accounts": [], "last_status": s("4")}]),
                vec!["4"],
            ),
            // A context.
            (
                serde_json::json!({"ancestors": [s("5")], "descendants": [s("6"), s("7")]}),
                vec!["5", "6", "7"],
            ),
            // Search results and grouped notifications.
            (
                serde_json::json!({"accounts": [], "hashtags": [], "statuses": [s("8")]}),
                vec!["8"],
            ),
            (
                serde_json::json!({"accounts": [], "notification_groups": [{"group_key": "g"}], "statuses": [s("9")]}),
                vec!["9"],
            ),
            // A quote: the quoted status comes first.
            (
                {
                    let mut q = s("10");
                    q["quote"] = serde_json::json!({"state": "accepted", "quoted_status": s("11")});
                    q
                },
                vec!["11", "10"],
            ),
        ];
        for (value, ids) in cases {
            let want: Vec<String> = ids.iter().map(|id| uri("alice_example", id)).collect();
            let out = decode(&value);
            assert_eq!(post_ids(&out), want, "{value}");
            assert_eq!(out.ignored, 0);
        }
    }

    #[test]
    fn a_deletion_by_local_id_names_the_post_by_its_uri() {
        let mut dec = MastodonDecoder::default();
        let update = serde_json::json!({
            "event": "update",
            "payload": status("301", "alice_example", "<p>soon gone</p>").to_string(),
        });
        let out = decode_with(&mut dec, &update).unwrap();
        assert_eq!(post_ids(&out), vec![uri("alice_example", "301")]);
        let gone = |id: &str| {
            Event::Delete(Deletion {
                id: id.into(),
                platform: "mastodon".into(),
                deleted_at: None,
                source: "mastodon".into(),
            })
        };
        let out = decode_with(&mut dec, &serde_json::json!({"event": "delete", "payload": "301"})).unwrap();
        assert_eq!(out.events, vec![gone(&uri("alice_example", "301"))]);
        // A status this decoder never saw keeps its local id.
        let out = decode_with(&mut dec, &serde_json::json!({"event": "delete", "payload": "999"})).unwrap();
        assert_eq!(out.events, vec![gone("999")]);
    }

    #[test]
    fn local_ids_are_bounded_and_keep_the_newest() {
        let mut ids = LocalIds::default();
        for i in 0..3 * LOCAL_GENERATION {
            ids.insert(i.to_string(), format!("u{i}"));
        }
        assert!(ids.current.len() + ids.previous.len() <= 2 * LOCAL_GENERATION);
        let newest = 3 * LOCAL_GENERATION - 1;
        assert_eq!(ids.get(&newest.to_string()), Some(format!("u{newest}").as_str()));
        assert_eq!(ids.get("0"), None);
    }

    #[test]
    fn streaming_events_are_unwrapped() {
        let payload = status("301", "alice_example", "<p>live</p>").to_string();
        let out = decode(&serde_json::json!({"event": "update", "payload": payload}));
        assert_eq!(post_ids(&out), vec![uri("alice_example", "301")]);

        let edited = status("302", "alice_example", "<p>edited</p>").to_string();
        let out = decode(&serde_json::json!({"event": "status.update", "payload": edited}));
        assert_eq!(post_ids(&out), vec![uri("alice_example", "302")]);

        let out = decode(&serde_json::json!({"event": "delete", "payload": "301"}));
        let want = Deletion {
            id: "301".into(),
            platform: "mastodon".into(),
            deleted_at: None,
            source: "mastodon".into(),
        };
        assert_eq!(out.events, vec![Event::Delete(want)]);

        let out = decode(&serde_json::json!({"event": "filters_changed"}));
        assert!(out.events.is_empty());
        assert_eq!(out.ignored, 1);
    }

    #[test]
    fn repeated_statuses_are_ignored_across_records() {
        let mut dec = MastodonDecoder::default();
        let s1 = status("401", "alice_example", "<p>a</p>");
        let s2 = status("402", "alice_example", "<p>b</p>");
        let out = decode_with(&mut dec, &serde_json::json!([s1, s1])).unwrap();
        assert_eq!(post_ids(&out).len(), 1);
        assert_eq!(out.ignored, 1);
        let out = decode_with(&mut dec, &serde_json::json!({"status": s1})).unwrap();
        assert!(out.events.is_empty());
        assert_eq!(out.ignored, 1);
        let out = decode_with(&mut dec, &serde_json::json!([s1, s2])).unwrap();
        assert_eq!(post_ids(&out), vec![uri("alice_example", "402")]);
        assert_eq!(out.ignored, 1);
    }

    #[test]
    fn values_without_statuses_are_ignored() {
        for v in [
            serde_json::json!({"id": "1", "acct": "alice_example", "uri": "https://example.social/users/alice_example", "note": "<p>hi</p>"}),
            serde_json::json!({"id": "9", "type": "image", "url": "https://example.social/m.png"}),
            serde_json::json!({"id": "p", "options": [{"title": "yes"}], "expired": false}),
            serde_json::json!([]),
            serde_json::json!(null),
        ] {
            let out = decode(&v);
            assert!(out.events.is_empty(), "{v}");
            assert_eq!(out.ignored, 1, "{v}");
        }
    }

    #[test]
    fn a_failed_record_emits_nothing_and_remembers_nothing() {
        let mut dec = MastodonDecoder::default();
        let good = status("501", "alice_example", "<p>a</p>");
        let mut bad = status("502", "alice_example", "<p>b</p>");
        bad["created_at"] = "not a time".into();
        let err = decode_with(&mut dec, &serde_json::json!([good, bad])).unwrap_err();
        assert!(matches!(&err, DecodeError::Field { field, .. } if field == "created_at"));
        // The good status was not remembered, so it still comes out.
        let out = decode_with(&mut dec, &good).unwrap();
        assert_eq!(post_ids(&out), vec![uri("alice_example", "501")]);

        let mut out = DecodeOutput::default();
        assert!(matches!(dec.decode(b"[{", &mut out), Err(DecodeError::Json(_))));
        let bad_payload = serde_json::json!({"event": "update", "payload": "{oops"});
        assert!(matches!(
            decode_with(&mut dec, &bad_payload),
            Err(DecodeError::Field { .. })
        ));
    }

    #[test]
    fn the_seen_set_forgets_only_beyond_two_generations() {
        let mut seen = SeenUris {
            generation: 2,
            ..SeenUris::default()
        };
        assert!(seen.insert("a"));
        assert!(seen.insert("b")); // generation full: a, b become previous
        assert!(!seen.insert("a"));
        assert!(seen.insert("c"));
        assert!(seen.insert("d")); // c, d become previous; a, b forgotten
        assert!(!seen.insert("c"));
        assert!(seen.insert("a"));
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let mut out = DecodeOutput::default();
            let _ = MastodonDecoder::default().decode(&bytes, &mut out);
        }

        #[test]
        fn never_panics_on_arbitrary_content(
            content in "\\PC{0,120}", acct in "\\PC{0,12}", uri in "\\PC{0,30}"
        ) {
            let mut s = status("1", "alice_example", &content);
            s["account"]["acct"] = acct.into();
            s["uri"] = uri.into();
            let mut out = DecodeOutput::default();
            let _ = MastodonDecoder::default().decode(s.to_string().as_bytes(), &mut out);
        }
    }
}
