//! RSS 2.0, RSS 1.0 (RDF) and Atom feeds: every item of a feed document is
//! one post.
//!
//! The reader hands the whole document to [`RssDecoder::decode`]
//! ([`Framing::Document`](super::Framing::Document)); `feed-rs` parses it
//! into one model for all feed dialects, and each item becomes a [`Post`]:
//!
//! | Post field   | from                                                  |
//! |--------------|-------------------------------------------------------|
//! | `id`         | the item's `guid` / Atom `id`, else its link, else a stable hash of its title and body |
//! | `text`       | title, a blank line, then the body as plain text      |
//! | `created_at` | `pubDate` / `published`, else `updated`               |
//! | `author`     | the first author's name                               |
//! | `url`        | the item's link (its permalink)                       |
//! | `lang`       | the item's `xml:lang`, else the feed's `language`, reduced to its primary subtag (`en-us` → `en`) |
//!
//! The body is the item's full content (`content:encoded`, Atom `content`)
//! when it has one, else its summary (`description`, Atom `summary`). HTML
//! bodies are turned into plain text by `html_to_text`.
//!
//! A feed is polled again and again, so successive snapshots repeat items.
//! The decoder remembers every id it emitted and counts a repeat as
//! `ignored`, so a directory of snapshots yields each item once.

use super::{DecodeError, DecodeOutput, Decoder, Format};
use std::collections::HashSet;
use tidewatch_core::{Event, Post, Timestamp};

/// Decodes feed documents; remembers the ids it has emitted.
#[derive(Default)]
pub struct RssDecoder {
    seen: HashSet<String>,
}

impl Decoder for RssDecoder {
    fn format(&self) -> Format {
        Format::Rss
    }

    fn decode(&mut self, record: &[u8], out: &mut DecodeOutput) -> Result<(), DecodeError> {
        // Leave ids empty where the feed gives none: feed-rs would otherwise
        // invent a random UUID, which would defeat de-duplication.
        let parser = feed_rs::parser::Builder::new()
            .id_generator(|_links, _title, _uri| String::new())
            .build();
        let feed = parser
            .parse(record)
            .map_err(|e| DecodeError::Other(format!("not a feed: {e}")))?;
        let feed_lang = feed.language.as_deref().and_then(normalise_lang);

        for entry in &feed.entries {
            let post = entry_to_post(entry, feed_lang.as_deref());
            if self.seen.insert(post.id.clone()) {
                out.events.push(Event::Post(post));
            } else {
                out.ignored += 1;
            }
        }
        Ok(())
    }
}

fn entry_to_post(entry: &feed_rs::model::Entry, feed_lang: Option<&str>) -> Post {
    let title = entry.title.as_ref().map(text_of).unwrap_or_default();
    let body = entry
        .content
        .as_ref()
        .and_then(|c| {
            let body = c.body.as_deref()?;
            Some(to_plain(body, c.content_type.as_ref()))
        })
        .filter(|b| !b.is_empty())
        .or_else(|| entry.summary.as_ref().map(text_of))
        .unwrap_or_default();
    let text = match (title.is_empty(), body.is_empty()) {
        (false, false) => format!("{title}\n\n{body}"),
        (false, true) => title,
        _ => body,
    };

    let url = permalink(entry);
    let id = if !entry.id.trim().is_empty() {
        entry.id.trim().to_string()
    } else if let Some(u) = &url {
        u.clone()
    } else {
        // Neither guid nor link: a hash of what the item says is stable
        // across snapshots, so repeats are still recognised.
        format!("rss:{:016x}", fnv1a(text.as_bytes()))
    };

    Post {
        id,
        platform: "rss".into(),
        created_at: entry
            .published
            .or(entry.updated)
            .map(|t| Timestamp(t.timestamp_millis())),
        author: entry.authors.iter().find_map(author_name),
        text,
        lang: entry
            .language
            .as_deref()
            .and_then(normalise_lang)
            .or_else(|| feed_lang.map(str::to_string)),
        url,
        source: "rss".into(),
        ..Post::default()
    }
}

/// A person's name. RSS 2's `<author>` holds an e-mail address, by
/// convention `jane@example.org (Jane Doe)`, which feed-rs keeps as the
/// e-mail of a person named after the element (`author`): the name in
/// parentheses is taken then, else the address.
fn author_name(p: &feed_rs::model::Person) -> Option<String> {
    let name = match (&p.email, p.name.as_str()) {
        (Some(email), "author") => {
            let email = email.trim();
            email
                .split_once('(')
                .and_then(|(_, rest)| rest.split_once(')'))
                .map_or(email, |(inner, _)| inner.trim())
        }
        (_, name) => name.trim(),
    };
    (!name.is_empty()).then(|| name.to_string())
}

/// The item's own page: an `alternate` (or rel-less) link, else the first.
fn permalink(entry: &feed_rs::model::Entry) -> Option<String> {
    entry
        .links
        .iter()
        .find(|l| matches!(l.rel.as_deref(), None | Some("alternate")))
        .or_else(|| entry.links.first())
        .map(|l| l.href.trim().to_string())
        .filter(|h| !h.is_empty())
}

fn text_of(t: &feed_rs::model::Text) -> String {
    to_plain(&t.content, t.content_type.as_ref())
}

/// HTML bodies lose their markup; plain ones only have entities decoded,
/// because many RSS feeds escape their titles twice (`&amp;amp;`).
fn to_plain(body: &str, content_type: &str) -> String {
    if content_type.contains("html") {
        html_to_text(body)
    } else {
        decode_entities(body).trim().to_string()
    }
}

/// Reduces a language tag to its lower-case primary subtag: `en-US`,
/// `en_us` → `en`. Empty or non-alphabetic tags give `None`.
fn normalise_lang(tag: &str) -> Option<String> {
    let primary = tag.trim().split(['-', '_']).next()?.to_ascii_lowercase();
    let valid = (2..=3).contains(&primary.len()) && primary.bytes().all(|b| b.is_ascii_alphabetic());
    valid.then_some(primary)
}

/// 64-bit FNV-1a: a small, stable (unlike `DefaultHasher`) hash.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Elements whose content is not text to read (style sheets, scripts).
const SKIPPED: [&str; 5] = ["script", "style", "template", "noscript", "head"];

/// Elements that end a paragraph: a blank line after them.
const PARAGRAPHS: [&str; 11] = [
    "p",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "blockquote",
    "pre",
    "table",
    "figure",
];

/// Elements that start on a line of their own.
const LINES: [&str; 20] = [
    "br",
    "div",
    "li",
    "ul",
    "ol",
    "dl",
    "dt",
    "dd",
    "tr",
    "hr",
    "section",
    "article",
    "header",
    "footer",
    "nav",
    "aside",
    "main",
    "figcaption",
    "caption",
    "address",
];

/// Converts an HTML fragment to plain text.
///
/// Tags are dropped; `<script>`, `<style>` and the like are dropped with
/// their content; block elements become line breaks (paragraphs and
/// headings a blank line); character references are decoded; runs of
/// white space collapse to one space as a browser would show them, except
/// inside `<pre>`. The result has no leading or trailing white space and
/// never more than one blank line in a row.
///
/// It is a forgiving scanner, not a full HTML parser: malformed markup
/// yields best-effort text and never an error.
pub(crate) fn html_to_text(html: &str) -> String {
    let mut out = Lines::default();
    let mut pre_depth = 0usize;
    let mut rest = html;
    while let Some(lt) = rest.find('<') {
        out.text(&decode_entities(&rest[..lt]), pre_depth > 0);
        let after = &rest[lt + 1..];
        if let Some(comment) = after.strip_prefix("!--") {
            rest = comment.find("-->").map_or("", |e| &comment[e + 3..]);
            continue;
        }
        let Some(tag) = Tag::parse(after) else {
            // A lone `<` (as in `a < b`) is text.
            out.text("<", pre_depth > 0);
            rest = after;
            continue;
        };
        rest = &after[tag.len..];
        let name = tag.name.as_str();
        if !tag.closing && SKIPPED.contains(&name) {
            rest = skip_element(rest, name);
        } else if name == "br" {
            out.newline();
        } else if PARAGRAPHS.contains(&name) {
            if name == "pre" {
                pre_depth = if tag.closing {
                    pre_depth.saturating_sub(1)
                } else {
                    pre_depth + 1
                };
            }
            out.paragraph();
        } else if LINES.contains(&name) {
            out.line();
        }
    }
    out.text(&decode_entities(rest), pre_depth > 0);
    out.finish()
}

/// The part of `rest` after the close tag of the element `name` (or nothing,
/// when it is never closed).
fn skip_element<'a>(rest: &'a str, name: &str) -> &'a str {
    let mut from = 0;
    while let Some(i) = rest[from..].find("</") {
        let at = from + i + 2;
        let candidate = rest.get(at..at + name.len());
        if candidate.is_some_and(|c| c.eq_ignore_ascii_case(name)) {
            let end = rest[at..].find('>').map_or(rest.len(), |e| at + e + 1);
            return &rest[end..];
        }
        from = at;
    }
    ""
}

/// One tag, read from just after its `<`.
struct Tag {
    /// Lower-case element name (`!doctype`, `?xml` for declarations).
    name: String,
    closing: bool,
    /// Bytes from after the `<` to after the `>`.
    len: usize,
}

impl Tag {
    fn parse(s: &str) -> Option<Tag> {
        let bytes = s.as_bytes();
        let closing = bytes.first() == Some(&b'/');
        let start = usize::from(closing);
        let first = *bytes.get(start)?;
        if !(first.is_ascii_alphabetic() || (!closing && (first == b'!' || first == b'?'))) {
            return None;
        }
        let name_end = bytes[start + 1..]
            .iter()
            .position(|b| !(b.is_ascii_alphanumeric() || *b == b'-' || *b == b':'))
            .map_or(bytes.len(), |p| start + 1 + p);
        // Find the closing `>`, skipping quoted attribute values.
        let mut quote = None;
        let mut end = None;
        for (i, &b) in bytes.iter().enumerate().skip(name_end) {
            match quote {
                Some(q) if b == q => quote = None,
                Some(_) => {}
                None if b == b'"' || b == b'\'' => quote = Some(b),
                None if b == b'>' => {
                    end = Some(i + 1);
                    break;
                }
                None => {}
            }
        }
        Some(Tag {
            name: s[start..name_end].to_ascii_lowercase(),
            closing,
            // An unterminated tag swallows the rest of the input.
            len: end.unwrap_or(bytes.len()),
        })
    }
}

/// Builds the output text: collapses white space and keeps line breaks tidy.
#[derive(Default)]
struct Lines {
    out: String,
    /// Line breaks asked for since the last text: 0, 1 (new line) or 2 (blank line).
    pending_breaks: u8,
    /// A space is owed before the next word on this line.
    pending_space: bool,
}

impl Lines {
    fn text(&mut self, s: &str, preformatted: bool) {
        if preformatted {
            if !s.is_empty() {
                self.flush();
                self.out.push_str(s);
            }
            return;
        }
        for (i, word) in s.split(char::is_whitespace).enumerate() {
            if i > 0 {
                self.pending_space = true;
            }
            if word.is_empty() {
                continue;
            }
            self.flush();
            self.out.push_str(word);
        }
    }

    /// Writes the breaks or the space owed before new text.
    fn flush(&mut self) {
        if self.out.is_empty() {
            // Nothing before: leading breaks and spaces are dropped.
        } else if self.pending_breaks > 0 {
            for _ in 0..self.pending_breaks {
                self.out.push('\n');
            }
        } else if self.pending_space && !self.out.ends_with('\n') {
            self.out.push(' ');
        }
        self.pending_breaks = 0;
        self.pending_space = false;
    }

    /// `<br>`: each one counts, up to one blank line.
    fn newline(&mut self) {
        self.pending_breaks = (self.pending_breaks + 1).min(2);
    }

    fn line(&mut self) {
        self.pending_breaks = self.pending_breaks.max(1);
    }

    fn paragraph(&mut self) {
        self.pending_breaks = 2;
    }

    fn finish(self) -> String {
        let trimmed: Vec<&str> = self.out.lines().map(str::trim_end).collect();
        trimmed.join("\n").trim().to_string()
    }
}

/// Decodes HTML character references: the common named ones and numeric
/// `&#65;` / `&#x41;`. Anything else (`AT&T`, `&unknown;`) is kept as written.
pub(crate) fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        // Entity names are short; a `;` further away is not ours.
        let decoded = after
            .char_indices()
            .take(33)
            .find(|&(_, c)| c == ';')
            .and_then(|(semi, _)| Some((entity(&after[..semi])?, semi)));
        match decoded {
            Some((c, semi)) => {
                out.push(c);
                rest = &after[semi + 1..];
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The character a reference names (`amp`, `#39`, `#x27`), if known.
fn entity(name: &str) -> Option<char> {
    if let Some(num) = name.strip_prefix('#') {
        let code = match num.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => num.parse().ok()?,
        };
        // NUL and surrogates are not characters; show the replacement sign.
        return Some(char::from_u32(code).filter(|&c| c != '\0').unwrap_or('\u{FFFD}'));
    }
    Some(match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        // A non-breaking space reads as a space; later stages split words on it.
        "nbsp" | "ensp" | "emsp" | "thinsp" => ' ',
        "ndash" => '–',
        "mdash" => '—',
        "hellip" => '…',
        "lsquo" => '‘',
        "rsquo" => '’',
        "sbquo" => '‚',
        "ldquo" => '“',
        "rdquo" => '”',
        "bdquo" => '„',
        "laquo" => '«',
        "raquo" => '»',
        "middot" => '·',
        "bull" => '•',
        "copy" => '©',
        "reg" => '®',
        "trade" => '™',
        "deg" => '°',
        "times" => '×',
        "divide" => '÷',
        "plusmn" => '±',
        "euro" => '€',
        "pound" => '£',
        "yen" => '¥',
        "cent" => '¢',
        "sect" => '§',
        "para" => '¶',
        "iexcl" => '¡',
        "iquest" => '¿',
        "shy" => '\u{AD}',
        "zwnj" => '\u{200C}',
        "zwj" => '\u{200D}',
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(dec: &mut RssDecoder, doc: &str) -> (Vec<Post>, u64) {
        let mut out = DecodeOutput::default();
        dec.decode(doc.as_bytes(), &mut out).unwrap();
        let posts = out
            .events
            .into_iter()
            .map(|e| match e {
                Event::Post(p) => p,
                Event::Delete(d) => panic!("unexpected deletion {d:?}"),
            })
            .collect();
        (posts, out.ignored)
    }

    const RSS: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/">
<channel>
  <title>Example Harbour News</title>
  <link>https://news.example.org/</link>
  <description>Invented news</description>
  <language>en-US</language>
  <item>
    <title>Ferry schedule changes</title>
    <link>https://news.example.org/ferry</link>
    <guid isPermaLink="false">harbour-1</guid>
    <pubDate>Tue, 03 Mar 2026 10:15:00 +0000</pubDate>
    <dc:creator>Alice Example</dc:creator>
    <description>&lt;p&gt;The &lt;b&gt;morning&lt;/b&gt; ferry leaves at 7&amp;nbsp;am.&lt;/p&gt;&lt;p&gt;Tickets &amp;amp; passes&lt;br/&gt;unchanged.&lt;/p&gt;</description>
  </item>
  <item>
    <title>Lighthouse reopens</title>
    <link>https://news.example.org/lighthouse</link>
    <description>Visitors welcome again.</description>
  </item>
  <item>
    <title>Tide warning</title>
    <guid>https://news.example.org/tide</guid>
    <author>desk@news.example.org (Carol Example)</author>
  </item>
  <item>
    <title>Gull census</title>
    <guid>https://news.example.org/gulls</guid>
    <author>desk@news.example.org</author>
  </item>
</channel>
</rss>"#;

    #[test]
    fn rss_items_become_posts_with_exact_fields() {
        let mut dec = RssDecoder::default();
        let (posts, ignored) = decode_all(&mut dec, RSS);
        assert_eq!(ignored, 0);
        assert_eq!(posts.len(), 4);
        let p = &posts[0];
        assert_eq!(p.id, "harbour-1");
        assert_eq!(p.platform, "rss");
        assert_eq!(p.source, "rss");
        assert_eq!(
            p.text,
            "Ferry schedule changes\n\nThe morning ferry leaves at 7 am.\n\nTickets & passes\nunchanged."
        );
        assert_eq!(p.created_at, Some(Timestamp::parse("2026-03-03T10:15:00Z").unwrap()));
        assert_eq!(p.author.as_deref(), Some("Alice Example"));
        assert_eq!(p.url.as_deref(), Some("https://news.example.org/ferry"));
        assert_eq!(p.lang.as_deref(), Some("en"));
        assert_eq!(p.reply_to, None);
        assert_eq!(p.repost_of, None);

        // No guid: the link is the id; no date: no timestamp.
        let q = &posts[1];
        assert_eq!(q.id, "https://news.example.org/lighthouse");
        assert_eq!(q.text, "Lighthouse reopens\n\nVisitors welcome again.");
        assert_eq!(q.created_at, None);
        assert_eq!(q.author, None);

        // RSS `<author>` is an address, with the name in parentheses by convention.
        assert_eq!(posts[2].author.as_deref(), Some("Carol Example"));
        assert_eq!(posts[2].url, None);
        assert_eq!(posts[2].text, "Tide warning");
        assert_eq!(posts[3].author.as_deref(), Some("desk@news.example.org"));
    }

    #[test]
    fn repeated_items_across_documents_are_ignored() {
        let mut dec = RssDecoder::default();
        assert_eq!(decode_all(&mut dec, RSS).0.len(), 4);
        let (again, ignored) = decode_all(&mut dec, RSS);
        assert!(again.is_empty());
        assert_eq!(ignored, 4);
        // A fresh decoder has no memory.
        assert_eq!(decode_all(&mut RssDecoder::default(), RSS).0.len(), 4);
    }

    #[test]
    fn atom_entries_become_posts() {
        let atom = r#"<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="fr-FR">
  <title>Carnet</title>
  <id>urn:example:carnet</id>
  <updated>2026-01-02T00:00:00Z</updated>
  <entry>
    <title type="html">Le &lt;em&gt;marché&lt;/em&gt; du samedi</title>
    <id>urn:example:entry:7</id>
    <link rel="alternate" href="https://carnet.example.net/marche"/>
    <link rel="edit" href="https://carnet.example.net/edit/7"/>
    <updated>2026-01-02T08:30:00Z</updated>
    <author><name>bob_example</name></author>
    <summary>Résumé court</summary>
    <content type="html">&lt;div&gt;Des fruits&lt;/div&gt;&lt;div&gt;et des fleurs&lt;/div&gt;</content>
  </entry>
</feed>"#;
        let (posts, _) = decode_all(&mut RssDecoder::default(), atom);
        assert_eq!(posts.len(), 1);
        let p = &posts[0];
        assert_eq!(p.id, "urn:example:entry:7");
        // Full content is preferred over the summary.
        assert_eq!(p.text, "Le marché du samedi\n\nDes fruits\net des fleurs");
        assert_eq!(p.created_at, Some(Timestamp::parse("2026-01-02T08:30:00Z").unwrap()));
        assert_eq!(p.author.as_deref(), Some("bob_example"));
        assert_eq!(p.url.as_deref(), Some("https://carnet.example.net/marche"));
        assert_eq!(p.lang.as_deref(), Some("fr"));
    }

    #[test]
    fn item_without_guid_or_link_gets_a_stable_id() {
        let doc =
            r#"<rss version="2.0"><channel><title>t</title><item><title>Only a title</title></item></channel></rss>"#;
        let (a, _) = decode_all(&mut RssDecoder::default(), doc);
        let (b, _) = decode_all(&mut RssDecoder::default(), doc);
        assert_eq!(a[0].id, b[0].id);
        assert!(a[0].id.starts_with("rss:"), "{}", a[0].id);
        assert_eq!(a[0].lang, None);
    }

    #[test]
    fn a_document_that_is_not_a_feed_is_an_error() {
        let mut out = DecodeOutput::default();
        let err = RssDecoder::default()
            .decode(b"<html><body>hi</body></html>", &mut out)
            .unwrap_err();
        assert!(err.to_string().starts_with("not a feed"), "{err}");
        assert!(out.events.is_empty());
        assert!(RssDecoder::default().decode(b"\xff\x00garbage", &mut out).is_err());
    }

    #[test]
    fn language_tags_reduce_to_the_primary_subtag() {
        assert_eq!(normalise_lang("en-us").as_deref(), Some("en"));
        assert_eq!(normalise_lang(" EN_GB ").as_deref(), Some("en"));
        assert_eq!(normalise_lang("ast").as_deref(), Some("ast"));
        assert_eq!(normalise_lang(""), None);
        assert_eq!(normalise_lang("12"), None);
    }

    #[test]
    fn html_to_text_handles_blocks_entities_and_skipped_elements() {
        assert_eq!(html_to_text("<p>One</p><p>Two</p>"), "One\n\nTwo");
        assert_eq!(html_to_text("a<br>b<br/><br />c"), "a\nb\n\nc");
        assert_eq!(html_to_text("<ul><li>x</li><li>y</li></ul>"), "x\ny");
        assert_eq!(
            html_to_text("<style>.a{color:red}</style><h2>Title</h2>  body   text\n here"),
            "Title\n\nbody text here"
        );
        assert_eq!(html_to_text("<script>if (a < b) {}</script>ok"), "ok");
        assert_eq!(html_to_text("x <!-- hidden <b> --> y"), "x y");
        assert_eq!(
            html_to_text(r#"<a href="https://e.example/?a=1&amp;b=2" title="1 > 0">link</a> text"#),
            "link text"
        );
        assert_eq!(
            html_to_text("1 < 2 &lt; 3 &amp;&amp; AT&T &copy; &#8364; &#x1F600;"),
            "1 < 2 < 3 && AT&T © € 😀"
        );
        assert_eq!(html_to_text("<pre>  keep\n  this</pre>after"), "keep\n  this\n\nafter");
        assert_eq!(
            html_to_text("<div><div>nested</div></div><span>inline</span>"),
            "nested\ninline"
        );
        assert_eq!(html_to_text("unterminated <b class=\"x"), "unterminated");
        assert_eq!(html_to_text(""), "");
    }

    #[test]
    fn entity_decoding_keeps_what_it_does_not_know() {
        assert_eq!(
            decode_entities("&bogus; &#xZZ; &; &#0; &#55296;"),
            "&bogus; &#xZZ; &; \u{FFFD} \u{FFFD}"
        );
        assert_eq!(decode_entities("fish &amp;amp; chips"), "fish &amp; chips");
    }

    proptest::proptest! {
        #[test]
        fn html_to_text_never_panics(s in ".{0,200}") {
            let _ = html_to_text(&s);
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let _ = RssDecoder::default().decode(&bytes, &mut DecodeOutput::default());
        }
    }
}
