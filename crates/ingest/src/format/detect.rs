//! `--format auto`: tells the format of an input from its first bytes, not
//! from its file name.
//!
//! [`detect`] looks at the head of the (already decompressed) input:
//!
//! * **XML** (first non-blank byte `<`) holding an `<rss`, `<feed` or
//!   `<rdf:RDF` element is [`Format::Rss`].
//! * **JSON** (first byte `{` or `[`): the first complete value is parsed,
//!   pretty-printed or not, and its keys decide (an array is judged by its
//!   first elements). The rules, tried in this order, are listed in
//!   `classify_object`. A value cut off by the end of the head (a large
//!   pretty-printed response) is repaired by closing its open brackets
//!   after the last complete member; if even that fails, the keys found
//!   anywhere in the head are judged instead.
//! * Anything else is taken as **CSV**: the first line is a header, and
//!   [`CsvMapping::detect`] must recognise it.
//!
//! The [`Detection`] says which format was chosen and why, for the CLI to print.

use super::csv::CsvMapping;
use super::Format;
use serde_json::{Map, Value};
use std::collections::BTreeSet;

/// How much of the input [`detect`] is meant to see.
pub const HEAD_LEN: usize = 64 * 1024;

/// The chosen format and the reason for the choice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Detection {
    pub format: Format,
    /// For CSV: the mapping the header was recognised as.
    pub csv_mapping: Option<CsvMapping>,
    /// One sentence, e.g. "JSON object with `did`, `time_us`, `kind` (Jetstream event)".
    pub reason: String,
}

/// Why no format fits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DetectError {
    #[error("the input is empty")]
    Empty,
    #[error("cannot tell the format: {found}; looked for {LOOKED_FOR}")]
    Unrecognised { found: String },
}

/// What detection looks for, for the error message.
const LOOKED_FOR: &str = "XML with <rss>, <feed> or <rdf:RDF>; \
    JSON with canonical `platform`+`source`+`id`+`text`, Jetstream `did`+`time_us`+`kind`, \
    Reddit `subreddit`+`created_utc`+`selftext`/`body`, Mastodon `uri`+`account`+`content` \
    (or nested in `status`, `last_status`, `ancestors`, `statuses`, `event`+`payload`), \
    Twitter v1 `id_str`/`user`/`retweeted_status`/`statuses`/`delete.status`, \
    Twitter v2 `data`/`includes`/`author_id`/`edit_history_tweet_ids`/`referenced_tweets`/`action`; \
    a CSV header of the `cnt` or `ira` preset or `id,text,...` with `platform`/`created_at`/`author`";

/// How many elements of an array are tried before giving up on it.
const ARRAY_PROBE: usize = 32;

/// Detects the format of an input from its head (up to [`HEAD_LEN`] bytes).
pub fn detect(head: &[u8]) -> Result<Detection, DetectError> {
    let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    let start = head
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .ok_or(DetectError::Empty)?;
    let body = &head[start..];
    match body[0] {
        b'<' => detect_xml(body),
        b'{' | b'[' => detect_json(body),
        _ => detect_csv(body),
    }
}

fn found(what: impl Into<String>) -> DetectError {
    DetectError::Unrecognised { found: what.into() }
}

fn detect_xml(body: &[u8]) -> Result<Detection, DetectError> {
    let text = String::from_utf8_lossy(body).to_ascii_lowercase();
    for (tag, what) in [
        ("<rss", "an RSS <rss> element"),
        ("<feed", "an Atom <feed> element"),
        ("<rdf:rdf", "an RSS 1.0 <rdf:RDF> element"),
        ("<rdf", "an RDF element"),
    ] {
        if has_element(&text, tag) {
            return Ok(Detection {
                format: Format::Rss,
                csv_mapping: None,
                reason: format!("XML with {what}"),
            });
        }
    }
    Err(found("XML without a feed element"))
}

/// Whether `text` opens the element `open` (`<rss`), and not merely one
/// whose name starts the same (`<rssfoo`, `<feedback`).
fn has_element(text: &str, open: &str) -> bool {
    text.match_indices(open).any(|(i, _)| {
        text[i + open.len()..]
            .chars()
            .next()
            .is_some_and(|c| c.is_whitespace() || c == '>' || c == '/')
    })
}

fn detect_csv(body: &[u8]) -> Result<Detection, DetectError> {
    let line_end = body.iter().position(|&b| b == b'\n').unwrap_or(body.len());
    let line = &body[..line_end];
    if !line.contains(&b',') {
        return Err(found("neither XML nor JSON, and the first line has no commas"));
    }
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(line);
    let mut record = csv::StringRecord::new();
    let header: Vec<String> = match reader.read_record(&mut record) {
        Ok(true) => record.iter().map(str::to_string).collect(),
        _ => return Err(found("a first line that is not a CSV record")),
    };
    let mapping = CsvMapping::detect(&header)
        .ok_or_else(|| found(format!("a CSV header that no mapping fits ({} columns)", header.len())))?;
    let kind = match mapping.source.as_str() {
        "cnt" => "the `cnt` preset (coordination-network-toolkit)".to_string(),
        "ira" => "the `ira` preset (FiveThirtyEight IRA tweets)".to_string(),
        _ => "canonical-like columns (`id`, `text`, ...)".to_string(),
    };
    Ok(Detection {
        format: Format::Csv,
        csv_mapping: Some(mapping),
        reason: format!("CSV header with {kind}"),
    })
}

fn detect_json(body: &[u8]) -> Result<Detection, DetectError> {
    let json = |format, reason: String| Detection {
        format,
        csv_mapping: None,
        reason,
    };
    let parsed = first_value(body);
    if let Some((value, repaired)) = &parsed {
        if let Some((format, why)) = classify(value) {
            let cut = if *repaired {
                " (cut off at the end of the head)"
            } else {
                ""
            };
            return Ok(json(format, format!("JSON {why}{cut}")));
        }
        if !repaired {
            return Err(found(format!("JSON {} that fits no rule", describe(value))));
        }
    }
    // Not parsable, or cut off before the telling keys were complete.
    let keys = scan_keys(body);
    let (format, why) =
        classify_keys(&keys).ok_or_else(|| found("JSON cut off or malformed, whose keys fit no rule"))?;
    Ok(json(format, format!("JSON cut off or malformed, with keys {why}")))
}

/// The first complete JSON value, and whether it had to be repaired.
fn first_value(body: &[u8]) -> Option<(Value, bool)> {
    let mut stream = serde_json::Deserializer::from_slice(body).into_iter::<Value>();
    match stream.next()? {
        Ok(v) => Some((v, false)),
        Err(e) if e.is_eof() => {
            let repaired = close_truncated(body)?;
            let v = serde_json::Deserializer::from_slice(&repaired)
                .into_iter::<Value>()
                .next()?
                .ok()?;
            Some((v, true))
        }
        Err(_) => None,
    }
}

/// Turns JSON cut off mid-way into a complete value: keeps everything up to
/// the last point where a member or element ended (or a container opened),
/// then closes the containers still open there.
fn close_truncated(body: &[u8]) -> Option<Vec<u8>> {
    let mut stack: Vec<u8> = Vec::new();
    let mut in_string = false;
    let mut escaped = false;
    // (length to keep, closers to append)
    let mut last_safe: Option<(usize, Vec<u8>)> = None;
    for (i, &b) in body.iter().enumerate() {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' => {
                stack.push(b'}');
                last_safe = Some((i + 1, stack.clone()));
            }
            b'[' => {
                stack.push(b']');
                last_safe = Some((i + 1, stack.clone()));
            }
            b'}' | b']' => {
                stack.pop();
                if stack.is_empty() {
                    return None; // the first value was complete after all
                }
            }
            b',' => last_safe = Some((i, stack.clone())),
            _ => {}
        }
    }
    let (keep, closers) = last_safe?;
    let mut out = body[..keep].to_vec();
    out.extend(closers.iter().rev());
    Some(out)
}

/// A short description of a value for error messages (keys, never values,
/// which may hold a handle).
fn describe(v: &Value) -> String {
    match v {
        Value::Object(o) => {
            let keys: Vec<&str> = o.keys().take(8).map(String::as_str).collect();
            format!("object with keys {}", keys.join(", "))
        }
        Value::Array(a) if a.is_empty() => "empty array".into(),
        Value::Array(a) => format!("array whose first element is an {}", describe(&a[0])),
        _ => "scalar".into(),
    }
}

/// Decides a JSON value's format; the reason names the keys that decided.
fn classify(v: &Value) -> Option<(Format, String)> {
    match v {
        Value::Object(o) => classify_object(o),
        Value::Array(items) => items
            .iter()
            .take(ARRAY_PROBE)
            .find_map(|item| match item {
                Value::Object(o) => classify_object(o),
                _ => None,
            })
            .map(|(f, why)| (f, format!("array of objects {}", strip_object(&why)))),
        _ => None,
    }
}

fn strip_object(why: &str) -> &str {
    why.strip_prefix("object ").unwrap_or(why)
}

/// The rules for one JSON object, first match wins:
///
/// 1. `platform`+`source`+`id`+`text`, or `delete.id`+`delete.platform`
///    → canonical; a JSON Feed (`version` naming jsonfeed.org, `items`) → RSS
///    (feed-rs reads JSON Feed too);
/// 2. `did`+`time_us`+`kind` → Jetstream;
/// 3. `subreddit`+`created_utc`+(`selftext`|`body`) → Reddit;
/// 4. `uri`+`account`+`content` → Mastodon status;
/// 5. `id_str`, `user`, `retweeted_status` or `in_reply_to_status_id_str`,
///    a stream `delete.status`, or `statuses`/`search_metadata` of a search
///    → Twitter v1 (a `statuses` list of Mastodon statuses is Mastodon);
/// 6. a Mastodon status under `status`, `last_status`, `ancestors`,
///    `descendants` or `statuses`; a conversation (`accounts`+`last_status`),
///    a context (`ancestors`+`descendants`), grouped notifications
///    (`notification_groups`), a notification (`type`+`account`), a
///    streaming message (`event`+`payload`) → Mastodon;
/// 7. `data`, `includes`, `author_id`, `edit_history_tweet_ids`,
///    `referenced_tweets`, or a compliance record (`id`+`action`) → Twitter v2.
fn classify_object(o: &Map<String, Value>) -> Option<(Format, String)> {
    let has = |k: &str| o.contains_key(k);
    let keys = |ks: &[&str]| {
        let named: Vec<String> = ks.iter().map(|k| format!("`{k}`")).collect();
        named.join(", ")
    };
    let rule = |format, ks: &[&str], what: &str| Some((format, format!("object with {} ({what})", keys(ks))));

    if ["platform", "source", "id", "text"].iter().all(|k| has(k)) {
        return rule(
            Format::Canonical,
            &["platform", "source", "id", "text"],
            "canonical post",
        );
    }
    let delete = o.get("delete");
    if delete.and_then(|d| d.get("platform")).is_some() && delete.and_then(|d| d.get("id")).is_some() {
        return rule(
            Format::Canonical,
            &["delete.id", "delete.platform"],
            "canonical deletion",
        );
    }
    let json_feed = o
        .get("version")
        .and_then(Value::as_str)
        .is_some_and(|v| v.contains("jsonfeed.org"));
    if json_feed && has("items") {
        return rule(Format::Rss, &["version", "items"], "JSON Feed");
    }
    if ["did", "time_us", "kind"].iter().all(|k| has(k)) {
        return rule(Format::Jetstream, &["did", "time_us", "kind"], "Jetstream event");
    }
    if has("subreddit") && has("created_utc") {
        if let Some(k) = ["selftext", "body"].into_iter().find(|k| has(k)) {
            return rule(Format::Reddit, &["subreddit", "created_utc", k], "Reddit item");
        }
    }
    if is_mastodon_status(o) {
        return rule(Format::Mastodon, &["uri", "account", "content"], "Mastodon status");
    }
    for k in ["id_str", "user", "retweeted_status", "in_reply_to_status_id_str"] {
        if has(k) {
            return rule(Format::TwitterV1, &[k], "Twitter v1 status");
        }
    }
    if o.get("delete").and_then(|d| d.get("status")).is_some() {
        return rule(Format::TwitterV1, &["delete.status"], "Twitter v1 stream deletion");
    }
    if let Some(Value::Array(statuses)) = o.get("statuses") {
        let first = statuses
            .iter()
            .take(ARRAY_PROBE)
            .find_map(|s| s.as_object().and_then(classify_object));
        match first.map(|(f, _)| f) {
            Some(Format::Mastodon) => {
                return rule(
                    Format::Mastodon,
                    &["statuses"],
                    "Mastodon search or grouped notifications",
                )
            }
            Some(Format::TwitterV1) => return rule(Format::TwitterV1, &["statuses"], "Twitter v1 search"),
            _ => {}
        }
    }
    if has("search_metadata") {
        return rule(Format::TwitterV1, &["search_metadata"], "Twitter v1 search");
    }
    for k in ["status", "last_status", "ancestors", "descendants"] {
        let nested = match o.get(k) {
            Some(Value::Object(s)) => is_mastodon_status(s),
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_object).any(is_mastodon_status),
            _ => false,
        };
        if nested {
            return rule(Format::Mastodon, &[k], "Mastodon statuses nested");
        }
    }
    for (ks, what) in [
        (&["accounts", "last_status"][..], "Mastodon conversation"),
        (&["ancestors", "descendants"][..], "Mastodon context"),
        (&["notification_groups"][..], "Mastodon grouped notifications"),
        (&["type", "account"][..], "Mastodon notification"),
        (&["event", "payload"][..], "Mastodon streaming message"),
    ] {
        if ks.iter().all(|k| has(k)) {
            return rule(Format::Mastodon, ks, what);
        }
    }
    for k in [
        "data",
        "includes",
        "author_id",
        "edit_history_tweet_ids",
        "referenced_tweets",
    ] {
        if has(k) {
            return rule(Format::TwitterV2, &[k], "Twitter v2");
        }
    }
    if has("id") && has("action") {
        return rule(Format::TwitterV2, &["id", "action"], "Twitter v2 compliance record");
    }
    None
}

fn is_mastodon_status(o: &Map<String, Value>) -> bool {
    ["uri", "account", "content"].iter().all(|k| o.contains_key(*k))
}

/// Every object key in `body` (at any depth), read without parsing: a
/// string followed by `:` outside any other string.
fn scan_keys(body: &[u8]) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    let mut i = 0;
    while i < body.len() {
        if body[i] != b'"' {
            i += 1;
            continue;
        }
        // Read one string.
        let start = i + 1;
        let mut j = start;
        while j < body.len() && body[j] != b'"' {
            j += if body[j] == b'\\' { 2 } else { 1 };
        }
        let end = j.min(body.len());
        let after = body[end.saturating_add(1).min(body.len())..]
            .iter()
            .find(|b| !b.is_ascii_whitespace());
        if after == Some(&b':') {
            keys.insert(String::from_utf8_lossy(&body[start..end]).into_owned());
        }
        i = end + 1;
    }
    keys
}

/// The object rules over a flat set of keys seen anywhere (the last resort).
fn classify_keys(keys: &BTreeSet<String>) -> Option<(Format, String)> {
    let mut o = Map::new();
    for k in keys {
        o.insert(k.clone(), Value::Null);
    }
    // Nested shapes cannot be seen in a flat set: a Mastodon status anywhere
    // makes the input Mastodon, as in rule 6.
    classify_object(&o).map(|(f, why)| (f, strip_object(&why).to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn format_of(s: &str) -> Format {
        match detect(s.as_bytes()) {
            Ok(d) => d.format,
            Err(e) => panic!("{s:?}: {e}"),
        }
    }

    #[test]
    fn feeds_are_rss() {
        let d = detect(b"<?xml version=\"1.0\"?>\n<rss version=\"2.0\"><channel/></rss>").unwrap();
        assert_eq!(d.format, Format::Rss);
        assert_eq!(d.reason, "XML with an RSS <rss> element");
        assert_eq!(
            format_of("\u{FEFF}  <feed xmlns=\"http://www.w3.org/2005/Atom\"></feed>"),
            Format::Rss
        );
        assert_eq!(format_of("<rdf:RDF xmlns:rdf=\"x\"></rdf:RDF>"), Format::Rss);
        assert!(matches!(
            detect(b"<html><body/></html>"),
            Err(DetectError::Unrecognised { .. })
        ));
    }

    #[test]
    fn each_json_format_is_recognised() {
        let cases = [
            (
                r#"{"id":"1","platform":"x","source":"s","text":"t","created_at":null}"#,
                Format::Canonical,
            ),
            (
                r#"{"did":"did:plc:abc","time_us":1,"kind":"commit","commit":{}}"#,
                Format::Jetstream,
            ),
            (
                r#"{"subreddit":"example","created_utc":1,"body":"hi","author":"a"}"#,
                Format::Reddit,
            ),
            (
                r#"{"subreddit":"example","created_utc":1,"selftext":"","title":"t"}"#,
                Format::Reddit,
            ),
            (
                r#"{"id":"1","uri":"https://m.example/1","account":{},"content":"<p>x</p>"}"#,
                Format::Mastodon,
            ),
            (r#"{"event":"update","payload":"{}"}"#, Format::Mastodon),
            (r#"{"ancestors":[],"descendants":[]}"#, Format::Mastodon),
            (
                r#"[{"id":"9","unread":true,"accounts":[],"last_status":null}]"#,
                Format::Mastodon,
            ),
            (
                r#"[{"id":"1","type":"follow","account":{},"status":null}]"#,
                Format::Mastodon,
            ),
            (
                r#"{"accounts":[],"statuses":[{"uri":"u","account":{},"content":""}],"hashtags":[]}"#,
                Format::Mastodon,
            ),
            (r#"{"id":1,"id_str":"1","text":"t","user":{}}"#, Format::TwitterV1),
            (r#"[{"id":1,"text":"t","user":{"screen_name":"a"}}]"#, Format::TwitterV1),
            (
                r#"{"statuses":[{"id_str":"1"}],"search_metadata":{}}"#,
                Format::TwitterV1,
            ),
            (r#"{"delete":{"status":{"id":1,"id_str":"1"}}}"#, Format::TwitterV1),
            (r#"{"data":[{"id":"1","text":"t"}],"includes":{}}"#, Format::TwitterV2),
            (
                r#"{"id":"1","text":"t","author_id":"2","edit_history_tweet_ids":["1"]}"#,
                Format::TwitterV2,
            ),
            (
                r#" {"id":"1","action":"delete","created_at":"2020-01-01T00:00:00Z"}"#,
                Format::TwitterV2,
            ),
        ];
        for (input, want) in cases {
            assert_eq!(format_of(input), want, "{input}");
        }
    }

    #[test]
    fn reasons_name_the_deciding_keys() {
        let d = detect(br#"{"did":"x","time_us":1,"kind":"identity"}"#).unwrap();
        assert_eq!(d.reason, "JSON object with `did`, `time_us`, `kind` (Jetstream event)");
        let d = detect(br#"[{"id":"1","uri":"u","account":{},"content":""}]"#).unwrap();
        assert_eq!(
            d.reason,
            "JSON array of objects with `uri`, `account`, `content` (Mastodon status)"
        );
    }

    #[test]
    fn pretty_printed_and_line_delimited_json_work() {
        let pretty = "[\n  {\n    \"id\": 5,\n    \"id_str\": \"5\",\n    \"text\": \"hi\"\n  }\n]\n";
        assert_eq!(format_of(pretty), Format::TwitterV1);
        let lines =
            "{\"did\":\"a\",\"time_us\":1,\"kind\":\"commit\"}\n{\"did\":\"b\",\"time_us\":2,\"kind\":\"commit\"}\n";
        assert_eq!(format_of(lines), Format::Jetstream);
    }

    #[test]
    fn a_value_cut_off_by_the_head_is_repaired() {
        // A big pretty-printed search response, cut in the middle of a status.
        let mut doc = String::from("{\n \"search_metadata\": {\"count\": 100},\n \"statuses\": [\n");
        while doc.len() < HEAD_LEN + 100 {
            doc.push_str("  {\"id_str\": \"1\", \"text\": \"some words \\\" here\", \"user\": {\"id\": 2}},\n");
        }
        let head = &doc.as_bytes()[..HEAD_LEN];
        let d = detect(head).unwrap();
        assert_eq!(d.format, Format::TwitterV1);
        assert!(d.reason.ends_with("(cut off at the end of the head)"), "{}", d.reason);

        // Cut inside the very first string: only the key scan can tell.
        let d = detect(br#"{"subreddit": "x", "created_utc": 1, "selftext": "a very long"#).unwrap();
        assert_eq!(d.format, Format::Reddit);
    }

    #[test]
    fn close_truncated_keeps_complete_members_only() {
        let fixed = close_truncated(br#"{"a": [1, 2, {"b": "x, y"#).unwrap();
        assert_eq!(String::from_utf8(fixed).unwrap(), r#"{"a": [1, 2, {}]}"#);
        assert_eq!(close_truncated(br#"{"a": 1}"#), None);
    }

    #[test]
    fn csv_headers_are_recognised() {
        let d =
            detect(b"message_id,user_id,username,repost_id,reply_id,message,timestamp,urls\n1,2,a,,,hi,0,\n").unwrap();
        assert_eq!(d.format, Format::Csv);
        assert_eq!(d.csv_mapping, CsvMapping::preset("cnt"));
        assert_eq!(
            d.reason,
            "CSV header with the `cnt` preset (coordination-network-toolkit)"
        );
        let d = detect(b"external_author_id,author,content,region,language,publish_date,tweet_id\r\n").unwrap();
        assert_eq!(d.csv_mapping, CsvMapping::preset("ira"));
        let d = detect(b"\"id\",\"platform\",\"created_at\",\"author\",\"text\"\n").unwrap();
        assert_eq!(d.csv_mapping.unwrap().platform_column.as_deref(), Some("platform"));
    }

    #[test]
    fn nothing_fitting_is_an_error_that_lists_the_rules() {
        assert_eq!(detect(b""), Err(DetectError::Empty));
        assert_eq!(detect(b" \n\t "), Err(DetectError::Empty));
        let e = detect(b"name,age\nx,1\n").unwrap_err().to_string();
        assert!(
            e.contains("CSV header that no mapping fits") && e.contains("looked for XML"),
            "{e}"
        );
        let e = detect(br#"{"hello": "world"}"#).unwrap_err().to_string();
        assert!(e.contains("object with keys hello"), "{e}");
        assert!(detect(b"just some words").is_err());
        assert!(detect(b"[]").is_err());
        assert!(detect(b"{not json").is_err());
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..600)) {
            let _ = detect(&bytes);
        }

        #[test]
        fn json_like_text_never_panics(s in r#"[\[\]{}",:a-z0-9\\ ]{0,300}"#) {
            let _ = detect(s.as_bytes());
        }
    }
}
