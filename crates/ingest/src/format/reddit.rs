//! Reddit in the Pushshift dump layout: one submission or comment a line,
//! each becoming one [`Post`].
//!
//! A line with a `title` is a submission (a "link", fullname `t3_<id>`); a
//! line with a `body` is a comment (`t1_<id>`). Lines with neither (a
//! subreddit or account object) hold no post and are counted as ignored.
//!
//! | Post field   | submission                         | comment                 |
//! |--------------|------------------------------------|-------------------------|
//! | `id`         | `name`, else `t3_` + `id`          | `name`, else `t1_` + `id` |
//! | `text`       | `title`, a blank line, `selftext`  | `body`                  |
//! | `reply_to`   | none                               | `parent_id` (a `t1_` or `t3_` fullname) |
//! | `repost_of`  | `crosspost_parent` (a crosspost)   | none                    |
//! | `created_at` | `created_utc` (a number or a string of digits) | the same    |
//! | `author`     | `author`; `[deleted]` becomes none | the same                |
//! | `url`        | `https://www.reddit.com` + `permalink` | the same            |
//!
//! Reddit gives no language, so `lang` is none. Comments in older dumps have
//! no `permalink`; their URL is rebuilt from `subreddit` and `link_id`.
//!
//! **Removed and deleted bodies.** When a moderator removes a post or its
//! author deletes it, Reddit replaces the body with the marker `[removed]`
//! or `[deleted]`. The marker is not what anyone wrote, so it is dropped:
//! such a comment becomes a post with empty text, and such a submission
//! keeps only its title (titles cannot be edited or removed). Keeping the
//! markers would make thousands of identical texts, which near-duplicate
//! detection would take for a copy-paste campaign.
//!
//! Reddit's JSON escapes `&`, `<` and `>` in text as `&amp;`, `&lt;`,
//! `&gt;`; these three are decoded, so that a quoted line reads `> ...` and
//! a link keeps its real query string.

use super::jetstream::{non_empty, JsonStr};
use super::{DecodeError, DecodeOutput, Decoder, Format};
use tidewatch_core::{Event, Post, Timestamp};

const PLATFORM: &str = "reddit";
const SOURCE: &str = "reddit";
const SITE: &str = "https://www.reddit.com";

/// Decodes Pushshift-style lines. Stateless: dumps do not repeat items.
#[derive(Default)]
pub struct RedditDecoder;

impl Decoder for RedditDecoder {
    fn format(&self) -> Format {
        Format::Reddit
    }

    fn decode(&mut self, record: &[u8], out: &mut DecodeOutput) -> Result<(), DecodeError> {
        let thing: Thing = serde_json::from_slice(record)?;
        let kind = if thing.title.is_some() {
            Kind::Submission
        } else if thing.body.is_some() {
            Kind::Comment
        } else {
            out.ignored += 1;
            return Ok(());
        };
        let id = fullname(&thing, kind)?;
        let mut text = match kind {
            Kind::Submission => {
                let title = thing.title.as_ref().map_or("", JsonStr::as_str);
                match written(&thing.selftext) {
                    Some(body) => format!("{title}\n\n{body}"),
                    None => title.to_owned(),
                }
            }
            Kind::Comment => written(&thing.body).map(str::to_owned).unwrap_or_default(),
        };
        if text.contains('&') {
            text = unescape(&text);
        }
        let post = Post {
            url: permalink(&thing, kind, &id),
            id,
            platform: PLATFORM.into(),
            created_at: thing.created_utc,
            author: non_empty(&thing.author)
                .filter(|a| *a != "[deleted]")
                .map(str::to_owned),
            text,
            reply_to: match kind {
                Kind::Submission => None,
                Kind::Comment => non_empty(&thing.parent_id).map(str::to_owned),
            },
            repost_of: non_empty(&thing.crosspost_parent).map(str::to_owned),
            source: SOURCE.into(),
            ..Post::default()
        };
        out.events.push(Event::Post(post));
        Ok(())
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Submission,
    Comment,
}

impl Kind {
    /// The type prefix of a fullname.
    fn prefix(self) -> &'static str {
        match self {
            Kind::Submission => "t3_",
            Kind::Comment => "t1_",
        }
    }
}

/// The fields of a submission or comment that a post needs; the many
/// others (scores, flair, awards...) are skipped.
#[derive(serde::Deserialize)]
struct Thing<'a> {
    #[serde(borrow, default)]
    id: Option<JsonStr<'a>>,
    #[serde(borrow, default)]
    name: Option<JsonStr<'a>>,
    #[serde(borrow, default)]
    title: Option<JsonStr<'a>>,
    #[serde(borrow, default)]
    selftext: Option<JsonStr<'a>>,
    #[serde(borrow, default)]
    body: Option<JsonStr<'a>>,
    #[serde(borrow, default)]
    author: Option<JsonStr<'a>>,
    #[serde(borrow, default)]
    subreddit: Option<JsonStr<'a>>,
    #[serde(borrow, default)]
    permalink: Option<JsonStr<'a>>,
    #[serde(borrow, default)]
    parent_id: Option<JsonStr<'a>>,
    #[serde(borrow, default)]
    link_id: Option<JsonStr<'a>>,
    /// The submission a crosspost reposts.
    #[serde(borrow, default)]
    crosspost_parent: Option<JsonStr<'a>>,
    /// Seconds since the epoch, written as a number or a string.
    #[serde(default)]
    created_utc: Option<Timestamp>,
}

/// The thing's fullname: `name` when it has the right prefix, else built
/// from `id` (which some dumps already write as a fullname).
fn fullname(thing: &Thing, kind: Kind) -> Result<String, DecodeError> {
    let prefix = kind.prefix();
    if let Some(name) = non_empty(&thing.name).filter(|n| n.starts_with(prefix)) {
        return Ok(name.to_owned());
    }
    match non_empty(&thing.id) {
        Some(id) if id.starts_with(prefix) => Ok(id.to_owned()),
        Some(id) => Ok(format!("{prefix}{id}")),
        None => Err(DecodeError::missing("id")),
    }
}

/// A body as its author wrote it: none when empty or replaced by Reddit's
/// removal marker.
fn written<'s>(body: &'s Option<JsonStr<'_>>) -> Option<&'s str> {
    non_empty(body).filter(|b| !matches!(*b, "[removed]" | "[deleted]"))
}

/// The post's permalink on reddit.com.
fn permalink(thing: &Thing, kind: Kind, fullname: &str) -> Option<String> {
    if let Some(p) = non_empty(&thing.permalink) {
        return Some(if p.starts_with("http") {
            p.to_owned()
        } else if p.starts_with('/') {
            format!("{SITE}{p}")
        } else {
            format!("{SITE}/{p}")
        });
    }
    let short_id = fullname.get(3..).unwrap_or_default();
    match kind {
        // reddit.com redirects `/comments/<id>/` to the full permalink.
        Kind::Submission => Some(format!("{SITE}/comments/{short_id}/")),
        Kind::Comment => {
            let subreddit = non_empty(&thing.subreddit)?;
            let link = non_empty(&thing.link_id)?;
            let link = link.strip_prefix("t3_").unwrap_or(link);
            // `_` stands for the title slug, which reddit.com ignores.
            Some(format!("{SITE}/r/{subreddit}/comments/{link}/_/{short_id}/"))
        }
    }
}

/// Decodes the three character references Reddit writes into text
/// (`&amp;`, `&lt;`, `&gt;`); anything else stays as written.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp..];
        let (ch, len) = if after.starts_with("&amp;") {
            ('&', 5)
        } else if after.starts_with("&lt;") {
            ('<', 4)
        } else if after.starts_with("&gt;") {
            ('>', 4)
        } else {
            ('&', 1)
        };
        out.push(ch);
        rest = &after[len..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decode(line: &str) -> Result<DecodeOutput, DecodeError> {
        let mut out = DecodeOutput::default();
        RedditDecoder.decode(line.as_bytes(), &mut out)?;
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
    fn a_submission_becomes_a_post_with_title_and_selftext() {
        let line = r#"{"author":"alice_example","created_utc":1700000000.0,"id":"abc12","name":"t3_abc12","kind":"t3","num_comments":3,"permalink":"/r/tidepools/comments/abc12/low_tide_today/","score":7,"selftext":"Starfish everywhere &amp; a crab.","subreddit":"tidepools","title":"Low tide today","url":"https://example.org/tides?day=1"}"#;
        let want = Post {
            id: "t3_abc12".into(),
            platform: "reddit".into(),
            created_at: Some(Timestamp(1_700_000_000_000)),
            author: Some("alice_example".into()),
            text: "Low tide today\n\nStarfish everywhere & a crab.".into(),
            lang: None,
            reply_to: None,
            repost_of: None,
            url: Some("https://www.reddit.com/r/tidepools/comments/abc12/low_tide_today/".into()),
            source: "reddit".into(),
            ..Post::default()
        };
        assert_eq!(only_post(line), want);
    }

    #[test]
    fn a_comment_becomes_a_reply_to_its_parent() {
        let line = r#"{"author":"bob_example","body":"&gt; quoted\n\nagreed","created_utc":"1700000100","id":"k9x","link_id":"t3_abc12","name":"t1_k9x","parent_id":"t3_abc12","permalink":"/r/tidepools/comments/abc12/low_tide_today/k9x/","subreddit":"tidepools"}"#;
        let want = Post {
            id: "t1_k9x".into(),
            platform: "reddit".into(),
            created_at: Some(Timestamp(1_700_000_100_000)),
            author: Some("bob_example".into()),
            text: "> quoted\n\nagreed".into(),
            reply_to: Some("t3_abc12".into()),
            url: Some("https://www.reddit.com/r/tidepools/comments/abc12/low_tide_today/k9x/".into()),
            source: "reddit".into(),
            ..Post::default()
        };
        assert_eq!(only_post(line), want);
    }

    #[test]
    fn a_comment_without_name_or_permalink_gets_them_rebuilt() {
        let line = r#"{"author":"bob_example","body":"ok","created_utc":1700000200,"id":"k10","link_id":"t3_abc12","parent_id":"t1_k9x","subreddit":"tidepools"}"#;
        let p = only_post(line);
        assert_eq!(p.id, "t1_k10");
        assert_eq!(p.reply_to.as_deref(), Some("t1_k9x"));
        assert_eq!(
            p.url.as_deref(),
            Some("https://www.reddit.com/r/tidepools/comments/abc12/_/k10/")
        );
        // Without a link_id there is nothing to rebuild from.
        let p = only_post(r#"{"body":"ok","id":"k11","parent_id":"t1_k9x"}"#);
        assert_eq!(p.url, None);
        assert_eq!(p.created_at, None);
        assert_eq!(p.author, None);
    }

    #[test]
    fn removed_and_deleted_bodies_and_authors_are_dropped() {
        let p = only_post(
            r#"{"author":"[deleted]","body":"[deleted]","created_utc":1700000300,"id":"k12","parent_id":"t3_abc12"}"#,
        );
        assert_eq!(p.author, None);
        assert_eq!(p.text, "");
        let p = only_post(
            r#"{"author":"alice_example","selftext":"[removed]","title":"Kept title","id":"abc13","permalink":"/r/tidepools/comments/abc13/kept/"}"#,
        );
        assert_eq!(p.text, "Kept title");
        assert_eq!(p.author.as_deref(), Some("alice_example"));
        let p = only_post(r#"{"selftext":"","title":"Link only","id":"abc14"}"#);
        assert_eq!(p.text, "Link only");
        assert_eq!(p.url.as_deref(), Some("https://www.reddit.com/comments/abc14/"));
    }

    #[test]
    fn a_crosspost_reposts_its_parent() {
        let p = only_post(
            r#"{"author":"alice_example","title":"Seen elsewhere","id":"abc15","crosspost_parent":"t3_abc12","selftext":""}"#,
        );
        assert_eq!(p.repost_of.as_deref(), Some("t3_abc12"));
        assert_eq!(p.reply_to, None);
    }

    #[test]
    fn things_without_title_or_body_are_ignored() {
        let out = decode(r#"{"display_name":"tidepools","id":"2qh1i","name":"t5_2qh1i"}"#).unwrap();
        assert!(out.events.is_empty());
        assert_eq!(out.ignored, 1);
    }

    #[test]
    fn malformed_lines_are_errors_with_a_reason() {
        assert!(matches!(decode("{\"title\":"), Err(DecodeError::Json(_))));
        assert_eq!(decode(r#"{"title":"no id"}"#).unwrap_err(), DecodeError::missing("id"));
        assert!(matches!(
            decode(r#"{"title":"t","id":"a","created_utc":"last tuesday"}"#),
            Err(DecodeError::Json(_))
        ));
    }

    #[test]
    fn unescape_decodes_only_what_reddit_escapes() {
        assert_eq!(unescape("a &amp;lt; b &gt; c &copy; &"), "a &lt; b > c &copy; &");
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let mut out = DecodeOutput::default();
            let _ = RedditDecoder.decode(&bytes, &mut out);
        }

        #[test]
        fn never_panics_on_arbitrary_field_values(
            id in "\\PC{0,6}", body in "\\PC{0,40}", permalink in "\\PC{0,20}", created in any::<f64>()
        ) {
            let line = serde_json::json!({
                "id": id, "body": body, "permalink": permalink, "created_utc": created,
                "link_id": "t3_x", "subreddit": "s"
            });
            let mut out = DecodeOutput::default();
            let _ = RedditDecoder.decode(line.to_string().as_bytes(), &mut out);
        }
    }
}
