//! CSV files of posts: a [`CsvMapping`] says which column feeds which
//! [`Post`] field.
//!
//! Data sets ship posts as CSV with their own headers, so the mapping is
//! data, not code: built-in presets cover known layouts
//! ([`CsvMapping::preset`]), a one-line spec covers the rest
//! ([`CsvMapping::parse`], as given on the command line), and a header can
//! be recognised by itself ([`CsvMapping::detect`]). An empty mapping (the
//! [`Default`]) means "recognise the header when it arrives".
//!
//! ## Lines and records
//!
//! The reader frames CSV by lines ([`Framing::Lines`](super::Framing)), but
//! a quoted field may hold line breaks, so one record can span several
//! lines. [`CsvDecoder`] therefore keeps a partial record: while a quoted
//! field is still open at the end of a line it stores the line, returns
//! `Ok` with nothing emitted, and decodes the record when the line that
//! closes the quote arrives (the line break inside the field is kept as
//! `\n`). A quote left open for more than [`MAX_RECORD_LINES`] lines or
//! [`MAX_RECORD_BYTES`] bytes is an error naming the field it opened, and
//! the decoder starts afresh on the next line. A record still open when
//! the input ends is never completed, so it yields no post.
//!
//! ## Presets
//!
//! * `cnt`, the coordination-network-toolkit layout
//!   (`message_id,user_id,username,repost_id,reply_id,message,timestamp,urls`):
//!   `timestamp` is Unix seconds; the author is `username`, else `user_id`;
//!   the space-separated `urls` are appended to the text unless it already
//!   contains them, so that entity extraction sees the links.
//! * `ira`, FiveThirtyEight's Russian IRA tweets (`external_author_id,
//!   author,content,...,publish_date,...,post_type,...,tweet_id,article_url,
//!   tco1_step1,...`): `tweet_id` is the id, `publish_date` is
//!   `M/D/YYYY H:MM` in UTC, `language` is an English language name mapped
//!   to ISO 639-1 (`Russian` → `ru`), `article_url` is the permalink, the
//!   expanded `tco*_step1` links are appended like `urls`, and
//!   `account_category` / `account_type` (the data set's ground truth) go
//!   to `labels`. A `post_type` of `RETWEET` marks a repost, but the file
//!   does not say of which tweet: `repost_of` is then a placeholder,
//!   `text:` and a stable 64-bit hash of the retweeted text (with any
//!   `RT @name:` prefix and extra white space removed). Retweets of the
//!   same words thus point at the same placeholder, which is what repost
//!   and coordination detectors need; the placeholder never names a real
//!   post.

use super::{DecodeError, DecodeOutput, Decoder, Format};
use tidewatch_core::{Event, Labels, Post, Timestamp};

/// How many lines one record may span before its open quote is an error.
pub const MAX_RECORD_LINES: usize = 10_000;
/// How many bytes one record may hold before its open quote is an error.
pub const MAX_RECORD_BYTES: usize = 4 << 20;

/// Which columns (by header name) give each [`Post`] field.
///
/// A field lists columns in order of preference: the first one with a
/// non-empty value wins (`author=username|user_id`). `urls` and `labels`
/// use every listed column. Columns a header does not have are skipped; a
/// header that has none of the `id` or `text` columns is an error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CsvMapping {
    pub id: Vec<String>,
    pub author: Vec<String>,
    pub text: Vec<String>,
    pub created_at: Vec<String>,
    pub lang: Vec<String>,
    pub reply_to: Vec<String>,
    pub repost_of: Vec<String>,
    pub url: Vec<String>,
    /// Columns of space-separated links appended to the text when absent from it.
    pub urls: Vec<String>,
    /// Columns copied into `labels` (ground truth), keyed by column name.
    pub labels: Vec<String>,
    /// `(column, value)`: a row whose column equals the value (ignoring case)
    /// is a repost even if no `repost_of` column names the original.
    pub repost_when: Option<(String, String)>,
    /// The platform of every row, unless `platform_column` gives one.
    pub platform: String,
    pub platform_column: Option<String>,
    /// The source of every row, unless `source_column` gives one.
    pub source: String,
    pub source_column: Option<String>,
}

impl Default for CsvMapping {
    /// The empty mapping: no columns yet (they are recognised from the
    /// header), platform `twitter`, source `csv`.
    fn default() -> Self {
        CsvMapping {
            id: Vec::new(),
            author: Vec::new(),
            text: Vec::new(),
            created_at: Vec::new(),
            lang: Vec::new(),
            reply_to: Vec::new(),
            repost_of: Vec::new(),
            url: Vec::new(),
            urls: Vec::new(),
            labels: Vec::new(),
            repost_when: None,
            platform: "twitter".into(),
            platform_column: None,
            source: "csv".into(),
            source_column: None,
        }
    }
}

/// Why a mapping spec could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    #[error("unknown CSV preset `{0}` (known: {known})", known = CsvMapping::PRESETS.join(", "))]
    UnknownPreset(String),
    #[error("unknown mapping key `{0}` (known: {known})", known = KEYS.join(", "))]
    UnknownKey(String),
    #[error("mapping key `{0}` has no value")]
    EmptyValue(String),
    #[error("mapping item `{0}` is not `key=column`")]
    NotKeyValue(String),
    #[error("mapping key `repost_when` must be `column:value`, not `{0}`")]
    BadRepostWhen(String),
    #[error("mapping key `{0}` is required")]
    Missing(&'static str),
}

/// Keys of the mapping spec, in the order the help text lists them.
const KEYS: [&str; 15] = [
    "id",
    "author",
    "text",
    "created_at",
    "lang",
    "reply_to",
    "repost_of",
    "url",
    "urls",
    "labels",
    "repost_when",
    "platform",
    "platform_column",
    "source",
    "source_column",
];

fn cols(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

impl CsvMapping {
    /// Names accepted by [`CsvMapping::preset`].
    pub const PRESETS: [&'static str; 2] = ["cnt", "ira"];

    /// A built-in mapping: `cnt` or `ira` (see the module documentation).
    pub fn preset(name: &str) -> Option<CsvMapping> {
        match name.trim().to_ascii_lowercase().as_str() {
            "cnt" => Some(CsvMapping {
                id: cols(&["message_id"]),
                author: cols(&["username", "user_id"]),
                text: cols(&["message"]),
                created_at: cols(&["timestamp"]),
                reply_to: cols(&["reply_id"]),
                repost_of: cols(&["repost_id"]),
                urls: cols(&["urls"]),
                source: "cnt".into(),
                ..CsvMapping::default()
            }),
            "ira" => Some(CsvMapping {
                id: cols(&["tweet_id"]),
                author: cols(&["author"]),
                text: cols(&["content"]),
                created_at: cols(&["publish_date"]),
                lang: cols(&["language"]),
                url: cols(&["article_url"]),
                urls: cols(&["tco1_step1", "tco2_step1", "tco3_step1"]),
                labels: cols(&["account_category", "account_type"]),
                repost_when: Some(("post_type".into(), "RETWEET".into())),
                source: "ira".into(),
                ..CsvMapping::default()
            }),
            _ => None,
        }
    }

    /// Reads a mapping spec as given on the command line: either a preset
    /// name (`ira`), or comma-separated `key=value` items
    /// (`id=tweet_id,text=content,created_at=date`). Field keys take column
    /// names, alternatives separated by `|`; `platform` and `source` take
    /// fixed strings; `repost_when` takes `column:value`. `id` and `text`
    /// are required.
    pub fn parse(spec: &str) -> Result<CsvMapping, MappingError> {
        let spec = spec.trim();
        if !spec.contains('=') {
            return CsvMapping::preset(spec).ok_or_else(|| MappingError::UnknownPreset(spec.into()));
        }
        let mut m = CsvMapping::default();
        for item in spec.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (key, value) = item
                .split_once('=')
                .ok_or_else(|| MappingError::NotKeyValue(item.into()))?;
            let (key, value) = (key.trim(), value.trim());
            if value.is_empty() {
                return Err(MappingError::EmptyValue(key.into()));
            }
            let columns = || -> Vec<String> {
                value
                    .split('|')
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .map(str::to_string)
                    .collect()
            };
            match key {
                "id" => m.id = columns(),
                "author" => m.author = columns(),
                "text" => m.text = columns(),
                "created_at" => m.created_at = columns(),
                "lang" => m.lang = columns(),
                "reply_to" => m.reply_to = columns(),
                "repost_of" => m.repost_of = columns(),
                "url" => m.url = columns(),
                "urls" => m.urls = columns(),
                "labels" => m.labels = columns(),
                "repost_when" => {
                    let (c, v) = value
                        .split_once(':')
                        .filter(|(c, v)| !c.trim().is_empty() && !v.trim().is_empty())
                        .ok_or_else(|| MappingError::BadRepostWhen(value.into()))?;
                    m.repost_when = Some((c.trim().into(), v.trim().into()));
                }
                "platform" => m.platform = value.into(),
                "platform_column" => m.platform_column = Some(value.into()),
                "source" => m.source = value.into(),
                "source_column" => m.source_column = Some(value.into()),
                _ => return Err(MappingError::UnknownKey(key.into())),
            }
        }
        if m.id.is_empty() {
            return Err(MappingError::Missing("id"));
        }
        if m.text.is_empty() {
            return Err(MappingError::Missing("text"));
        }
        Ok(m)
    }

    /// Recognises a header: a preset's columns, or a canonical-like header
    /// (`id`, `text` and at least one of `platform`, `created_at`,
    /// `author`). Names compare ignoring case and surrounding space.
    pub fn detect(header: &[String]) -> Option<CsvMapping> {
        let names: Vec<String> = header.iter().map(|h| normalise_name(h)).collect();
        let has = |n: &str| names.iter().any(|h| h == n);
        if ["message_id", "message", "timestamp"].iter().all(|n| has(n)) && (has("username") || has("user_id")) {
            return CsvMapping::preset("cnt");
        }
        if ["external_author_id", "content", "publish_date", "tweet_id"]
            .iter()
            .all(|n| has(n))
        {
            return CsvMapping::preset("ira");
        }
        if has("id") && has("text") && (has("platform") || has("created_at") || has("author")) {
            let own = |n: &str| if has(n) { cols(&[n]) } else { Vec::new() };
            return Some(CsvMapping {
                id: own("id"),
                author: own("author"),
                text: own("text"),
                created_at: own("created_at"),
                lang: own("lang"),
                reply_to: own("reply_to"),
                repost_of: own("repost_of"),
                url: own("url"),
                platform_column: has("platform").then(|| "platform".into()),
                source_column: has("source").then(|| "source".into()),
                ..CsvMapping::default()
            });
        }
        None
    }

    fn is_empty(&self) -> bool {
        self.id.is_empty() && self.text.is_empty()
    }
}

/// Header names compare lower-cased, trimmed, without a byte-order mark.
fn normalise_name(name: &str) -> String {
    name.trim_start_matches('\u{FEFF}').trim().to_ascii_lowercase()
}

/// A mapping resolved against one header: column positions.
struct Columns {
    names: Vec<String>,
    id: Vec<usize>,
    author: Vec<usize>,
    text: Vec<usize>,
    created_at: Vec<usize>,
    lang: Vec<usize>,
    reply_to: Vec<usize>,
    repost_of: Vec<usize>,
    url: Vec<usize>,
    urls: Vec<usize>,
    labels: Vec<usize>,
    repost_when: Option<(usize, String)>,
    platform: Option<usize>,
    source: Option<usize>,
}

impl Columns {
    fn resolve(m: &CsvMapping, header: Vec<String>) -> Result<Columns, DecodeError> {
        let names: Vec<String> = header.iter().map(|h| normalise_name(h)).collect();
        let find = |c: &str| names.iter().position(|h| *h == normalise_name(c));
        let all = |cs: &[String]| cs.iter().filter_map(|c| find(c)).collect::<Vec<_>>();
        let required = |field: &str, cs: &[String]| {
            let found = all(cs);
            if found.is_empty() {
                Err(DecodeError::field(
                    field,
                    format!("header has no column {}", cs.join(" or ")),
                ))
            } else {
                Ok(found)
            }
        };
        Ok(Columns {
            id: required("id", &m.id)?,
            text: required("text", &m.text)?,
            author: all(&m.author),
            created_at: all(&m.created_at),
            lang: all(&m.lang),
            reply_to: all(&m.reply_to),
            repost_of: all(&m.repost_of),
            url: all(&m.url),
            urls: all(&m.urls),
            labels: all(&m.labels),
            repost_when: m.repost_when.as_ref().and_then(|(c, v)| Some((find(c)?, v.clone()))),
            platform: m.platform_column.as_deref().and_then(find),
            source: m.source_column.as_deref().and_then(find),
            names: header
                .iter()
                .map(|h| h.trim_start_matches('\u{FEFF}').trim().to_string())
                .collect(),
        })
    }
}

/// Where the header stands.
enum Header {
    Awaited,
    Ready(Box<Columns>),
    /// The header could not be used; every row is rejected with this reason.
    Failed(String),
}

/// Decodes CSV lines: the first record is the header, every later one a post.
pub struct CsvDecoder {
    mapping: CsvMapping,
    header: Header,
    /// Lines of a record whose quoted field is still open.
    pending: Vec<u8>,
    pending_lines: usize,
    quotes: QuoteScan,
}

impl CsvDecoder {
    /// A decoder with this mapping; an empty mapping is recognised from the header.
    pub fn new(mapping: CsvMapping) -> Self {
        CsvDecoder {
            mapping,
            header: Header::Awaited,
            pending: Vec::new(),
            pending_lines: 0,
            quotes: QuoteScan::default(),
        }
    }

    /// Adds a line to the pending record. `Some(record)` once it is complete.
    fn push_line(&mut self, line: &[u8]) -> Result<Option<Vec<u8>>, DecodeError> {
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if self.pending_lines > 0 {
            self.pending.push(b'\n');
        }
        self.pending.extend_from_slice(line);
        self.pending_lines += 1;
        self.quotes.feed(line);
        if !self.quotes.end_line() {
            return Ok(Some(self.take_pending()));
        }
        if self.pending_lines >= MAX_RECORD_LINES || self.pending.len() >= MAX_RECORD_BYTES {
            let field = self.column_name(self.quotes.field);
            let lines = self.pending_lines;
            self.take_pending();
            return Err(DecodeError::field(
                field,
                format!("quoted value still open after {lines} lines; record dropped"),
            ));
        }
        Ok(None)
    }

    fn take_pending(&mut self) -> Vec<u8> {
        self.pending_lines = 0;
        self.quotes = QuoteScan::default();
        std::mem::take(&mut self.pending)
    }

    /// The header name of column `i`, or `column N` before/without a header.
    fn column_name(&self, i: usize) -> String {
        match &self.header {
            Header::Ready(c) => c.names.get(i).cloned(),
            _ => None,
        }
        .unwrap_or_else(|| format!("column {}", i + 1))
    }

    fn read_header(&mut self, fields: Vec<String>) -> Result<(), DecodeError> {
        let mapping = if self.mapping.is_empty() {
            CsvMapping::detect(&fields).ok_or_else(|| {
                DecodeError::Other(format!(
                    "CSV header not recognised (expected a preset's columns ({}) or id,text,...); \
                     give a mapping",
                    CsvMapping::PRESETS.join(", ")
                ))
            })
        } else {
            Ok(self.mapping.clone())
        };
        match mapping.and_then(|m| {
            let c = Columns::resolve(&m, fields)?;
            Ok((m, c))
        }) {
            Ok((m, c)) => {
                self.mapping = m;
                self.header = Header::Ready(Box::new(c));
                Ok(())
            }
            Err(e) => {
                self.header = Header::Failed(e.to_string());
                Err(e)
            }
        }
    }

    fn row_to_post(&self, c: &Columns, row: &[String]) -> Result<Post, DecodeError> {
        let m = &self.mapping;
        // The first listed column with a non-empty value.
        let first = |idx: &[usize]| {
            idx.iter()
                .filter_map(|&i| row.get(i))
                .map(|v| v.trim())
                .find(|v| !v.is_empty())
                .map(str::to_string)
        };
        let name = |idx: &[usize]| idx.first().and_then(|&i| c.names.get(i)).cloned().unwrap_or_default();

        let id = first(&c.id)
            .ok_or_else(|| DecodeError::field("id", format!("column `{}`: missing or empty", name(&c.id))))?;
        let mut text = c
            .text
            .iter()
            .filter_map(|&i| row.get(i))
            .find(|v| !v.trim().is_empty())
            .or_else(|| c.text.iter().find_map(|&i| row.get(i)))
            .cloned()
            .ok_or_else(|| DecodeError::field("text", format!("column `{}`: missing", name(&c.text))))?;
        let created_at = match first(&c.created_at) {
            None => None,
            Some(v) => Some(
                Timestamp::parse(&v)
                    .map_err(|e| DecodeError::field("created_at", format!("column `{}`: {e}", name(&c.created_at))))?,
            ),
        };

        for &i in &c.urls {
            for link in row.get(i).map_or("", String::as_str).split_whitespace() {
                if !text.contains(link) {
                    if !text.is_empty() {
                        text.push(' ');
                    }
                    text.push_str(link);
                }
            }
        }

        let is_repost = c
            .repost_when
            .as_ref()
            .is_some_and(|(i, v)| row.get(*i).is_some_and(|x| x.trim().eq_ignore_ascii_case(v)));
        let repost_of = first(&c.repost_of).or_else(|| is_repost.then(|| text_placeholder(&text)));

        let labels = Labels::from_strs(c.labels.iter().filter_map(|&i| {
            let (k, v) = (c.names.get(i)?, row.get(i)?.trim());
            (!v.is_empty()).then_some((k.as_str(), v))
        }));
        let one = |i: Option<usize>| i.and_then(|i| row.get(i)).map(|v| v.trim()).filter(|v| !v.is_empty());

        Ok(Post {
            id,
            platform: one(c.platform).unwrap_or(&m.platform).to_string(),
            created_at,
            author: first(&c.author),
            text,
            lang: first(&c.lang).and_then(|l| language_code(&l)),
            reply_to: first(&c.reply_to),
            repost_of,
            url: first(&c.url),
            labels,
            source: one(c.source).unwrap_or(&m.source).to_string(),
            ..Post::default()
        })
    }
}

impl Decoder for CsvDecoder {
    fn format(&self) -> Format {
        Format::Csv
    }

    fn decode(&mut self, record: &[u8], out: &mut DecodeOutput) -> Result<(), DecodeError> {
        let Some(bytes) = self.push_line(record)? else {
            return Ok(()); // a quoted field continues on the next line
        };
        let fields = parse_record(&bytes);
        if fields.iter().all(|f| f.trim().is_empty()) {
            return Ok(()); // blank line
        }
        match &self.header {
            Header::Awaited => self.read_header(fields),
            Header::Failed(reason) => Err(DecodeError::Other(format!("unusable CSV header: {reason}"))),
            Header::Ready(c) => {
                let post = self.row_to_post(c, &fields)?;
                out.events.push(Event::Post(post));
                Ok(())
            }
        }
    }

    fn finish(&mut self, _out: &mut DecodeOutput) -> Result<(), DecodeError> {
        if self.pending_lines == 0 {
            return Ok(());
        }
        let field = self.column_name(self.quotes.field);
        let lines = self.pending_lines;
        self.take_pending();
        Err(DecodeError::field(
            field,
            format!("input ended inside a quoted value ({lines} lines); record dropped"),
        ))
    }
}

/// Splits one complete CSV record into fields (invalid UTF-8 replaced).
fn parse_record(bytes: &[u8]) -> Vec<String> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let mut record = csv::ByteRecord::new();
    // Reading from memory cannot fail on I/O, and the csv crate accepts any
    // bytes; an error would only mean "no record", i.e. no fields.
    match reader.read_byte_record(&mut record) {
        Ok(true) => record.iter().map(|f| String::from_utf8_lossy(f).into_owned()).collect(),
        _ => Vec::new(),
    }
}

/// Follows CSV quoting line by line, to tell whether a record is complete.
///
/// As in the `csv` crate, a `"` opens a quoted field only at the start of a
/// field; inside one, `""` is a literal quote and a lone `"` closes it.
#[derive(Default)]
struct QuoteScan {
    in_quotes: bool,
    /// Inside quotes, a `"` was just seen: it closes the field unless
    /// another `"` follows.
    quote_seen: bool,
    /// Bytes of the current field so far (outside quotes).
    field_len: usize,
    /// Zero-based index of the current field.
    field: usize,
}

impl QuoteScan {
    fn feed(&mut self, line: &[u8]) {
        for &b in line {
            if self.in_quotes {
                if self.quote_seen {
                    self.quote_seen = false;
                    if b == b'"' {
                        continue; // an escaped quote
                    }
                    self.in_quotes = false; // the quote closed the field
                } else {
                    if b == b'"' {
                        self.quote_seen = true;
                    }
                    continue;
                }
            }
            match b {
                b',' => {
                    self.field += 1;
                    self.field_len = 0;
                }
                b'"' if self.field_len == 0 => {
                    self.in_quotes = true;
                    self.field_len = 1;
                }
                _ => self.field_len += 1,
            }
        }
    }

    /// Ends a line; true when a quoted field continues on the next one.
    fn end_line(&mut self) -> bool {
        if self.quote_seen {
            self.quote_seen = false;
            self.in_quotes = false;
        }
        self.in_quotes
    }
}

/// The repost placeholder for a retweet whose original is unknown: a hash
/// of the retweeted words, so that retweets of one text share it.
fn text_placeholder(text: &str) -> String {
    let mut t = text.trim();
    // `RT @name: words` retweets `words`.
    if let Some(rest) = t.strip_prefix("RT @") {
        if let Some((_, words)) = rest.split_once(':') {
            t = words;
        }
    }
    let normal: Vec<&str> = t.split_whitespace().collect();
    let hash = normal.join(" ").bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("text:{hash:016x}")
}

/// ISO 639-1 codes of language names as data sets write them in English.
const LANGUAGE_NAMES: [(&str, &str); 84] = [
    ("afrikaans", "af"),
    ("albanian", "sq"),
    ("amharic", "am"),
    ("arabic", "ar"),
    ("armenian", "hy"),
    ("azerbaijani", "az"),
    ("basque", "eu"),
    ("belarusian", "be"),
    ("bengali", "bn"),
    ("bosnian", "bs"),
    ("bulgarian", "bg"),
    ("burmese", "my"),
    ("catalan", "ca"),
    ("chinese", "zh"),
    ("simplified chinese", "zh"),
    ("traditional chinese", "zh"),
    ("croatian", "hr"),
    ("czech", "cs"),
    ("danish", "da"),
    ("dutch", "nl"),
    ("english", "en"),
    ("esperanto", "eo"),
    ("estonian", "et"),
    ("farsi", "fa"),
    ("farsi (persian)", "fa"),
    ("persian", "fa"),
    ("filipino", "tl"),
    ("tagalog", "tl"),
    ("finnish", "fi"),
    ("french", "fr"),
    ("galician", "gl"),
    ("georgian", "ka"),
    ("german", "de"),
    ("greek", "el"),
    ("gujarati", "gu"),
    ("haitian", "ht"),
    ("haitian creole", "ht"),
    ("hebrew", "he"),
    ("hindi", "hi"),
    ("hungarian", "hu"),
    ("icelandic", "is"),
    ("indonesian", "id"),
    ("irish", "ga"),
    ("italian", "it"),
    ("japanese", "ja"),
    ("kannada", "kn"),
    ("kazakh", "kk"),
    ("khmer", "km"),
    ("korean", "ko"),
    ("kyrgyz", "ky"),
    ("lao", "lo"),
    ("latin", "la"),
    ("latvian", "lv"),
    ("lithuanian", "lt"),
    ("macedonian", "mk"),
    ("malay", "ms"),
    ("malayalam", "ml"),
    ("marathi", "mr"),
    ("mongolian", "mn"),
    ("nepali", "ne"),
    ("norwegian", "no"),
    ("pashto", "ps"),
    ("polish", "pl"),
    ("portuguese", "pt"),
    ("punjabi", "pa"),
    ("romanian", "ro"),
    ("russian", "ru"),
    ("serbian", "sr"),
    ("sinhala", "si"),
    ("slovak", "sk"),
    ("slovenian", "sl"),
    ("somali", "so"),
    ("spanish", "es"),
    ("swahili", "sw"),
    ("swedish", "sv"),
    ("tajik", "tg"),
    ("tamil", "ta"),
    ("telugu", "te"),
    ("thai", "th"),
    ("turkish", "tr"),
    ("ukrainian", "uk"),
    ("urdu", "ur"),
    ("uzbek", "uz"),
    ("vietnamese", "vi"),
];

/// A language column's value as an ISO 639 code: English names (`Russian`)
/// through [`LANGUAGE_NAMES`], tags (`en-US`) by their primary subtag.
/// Unknown names and "undefined" markers give `None`, leaving the language
/// to detection.
fn language_code(value: &str) -> Option<String> {
    let v = value.trim().to_ascii_lowercase();
    if let Some((_, code)) = LANGUAGE_NAMES.iter().find(|(name, _)| *name == v) {
        return Some(code.to_string());
    }
    let primary = v.split(['-', '_']).next().unwrap_or_default();
    let is_tag = (2..=3).contains(&primary.len())
        && primary.bytes().all(|b| b.is_ascii_lowercase())
        && !["und", "zxx", "mul"].contains(&primary);
    is_tag.then(|| primary.to_string())
}

#[cfg(test)]
mod finish_tests {
    use super::*;

    #[test]
    fn an_open_quote_at_the_end_of_input_is_reported() {
        let mut d = CsvDecoder::new(CsvMapping::preset("cnt").expect("preset"));
        let mut out = DecodeOutput::default();
        d.decode(
            b"message_id,user_id,username,repost_id,reply_id,message,timestamp,urls",
            &mut out,
        )
        .unwrap();
        d.decode(b"1,2,someone,,,\"an unfinished", &mut out).unwrap();
        assert!(out.events.is_empty());
        let e = d.finish(&mut out).unwrap_err();
        assert!(
            e.to_string().contains("field `message`") && e.to_string().contains("input ended"),
            "{e}"
        );
        assert!(d.finish(&mut out).is_ok(), "reported once");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` line by line; returns the posts and one result per line.
    fn run(mapping: CsvMapping, input: &str) -> (Vec<Post>, Vec<Result<(), DecodeError>>) {
        let mut dec = CsvDecoder::new(mapping);
        let mut out = DecodeOutput::default();
        let results = input.lines().map(|l| dec.decode(l.as_bytes(), &mut out)).collect();
        let posts = out
            .events
            .into_iter()
            .map(|e| match e {
                Event::Post(p) => p,
                Event::Delete(d) => panic!("unexpected deletion {d:?}"),
            })
            .collect();
        (posts, results)
    }

    const CNT: &str = "message_id,user_id,username,repost_id,reply_id,message,timestamp,urls\n\
        101,u1,alice_example,,,Tide tables are out https://tides.example.org/a,1600000000,https://tides.example.org/a https://maps.example.org/b\n\
        102,u2,,101,,Tide tables are out,1600000060.5,\n\
        103,u3,carol_example,,101,\"Replying, with \"\"quotes\"\"\",1600000120,\n";

    #[test]
    fn cnt_preset_maps_every_field() {
        let (posts, results) = run(CsvMapping::preset("cnt").unwrap(), CNT);
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        assert_eq!(posts.len(), 3);
        let p = &posts[0];
        assert_eq!(p.id, "101");
        assert_eq!(p.platform, "twitter");
        assert_eq!(p.source, "cnt");
        assert_eq!(p.author.as_deref(), Some("alice_example"));
        // The link already in the text is not repeated; the other is appended.
        assert_eq!(
            p.text,
            "Tide tables are out https://tides.example.org/a https://maps.example.org/b"
        );
        assert_eq!(p.created_at, Some(Timestamp(1_600_000_000_000)));
        assert_eq!((p.reply_to.as_deref(), p.repost_of.as_deref()), (None, None));
        assert_eq!(p.labels.to_value(), serde_json::json!({}));

        let q = &posts[1];
        assert_eq!(q.author.as_deref(), Some("u2")); // username empty: user_id
        assert_eq!(q.repost_of.as_deref(), Some("101"));
        assert_eq!(q.created_at, Some(Timestamp(1_600_000_060_500)));

        let r = &posts[2];
        assert_eq!(r.text, "Replying, with \"quotes\"");
        assert_eq!(r.reply_to.as_deref(), Some("101"));
    }

    const IRA_HEADER: &str = "external_author_id,author,content,region,language,publish_date,harvested_date,following,followers,updates,post_type,account_type,retweet,account_category,new_june_2018,alt_external_id,tweet_id,article_url,tco1_step1,tco2_step1,tco3_step1";

    #[test]
    fn ira_preset_maps_languages_dates_retweets_and_labels() {
        let input = format!(
            "{IRA_HEADER}\n\
             9001,HARBOR_VOICE_EX,Fog rolls in over the bay http://t.co/xyz,United States,English,10/1/2017 19:58,10/1/2017 19:59,10,20,30,,Right,0,RightTroll,0,9001,555,http://twitter.com/9001/statuses/555,https://fog.example.com/story,,\n\
             9002,LIMAN_EX,RT @someone_ex: Туман над заливом,Unknown,Russian,1/15/2016 7:05,1/15/2016 7:06,1,2,3,RETWEET,Russian,1,NonEnglish,0,9002,556,,,,\n\
             9003,LIMAN_EX,Туман над   заливом,Unknown,LANGUAGE UNDEFINED,1/15/2016 8:00,,,,,RETWEET,Russian,1,NonEnglish,0,9003,557,,,,\n"
        );
        let (posts, results) = run(CsvMapping::preset("ira").unwrap(), &input);
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        let p = &posts[0];
        assert_eq!(p.id, "555");
        assert_eq!(p.author.as_deref(), Some("HARBOR_VOICE_EX"));
        assert_eq!(
            p.text,
            "Fog rolls in over the bay http://t.co/xyz https://fog.example.com/story"
        );
        assert_eq!(p.created_at, Some(Timestamp::parse("2017-10-01T19:58:00Z").unwrap()));
        assert_eq!(p.lang.as_deref(), Some("en"));
        assert_eq!(p.url.as_deref(), Some("http://twitter.com/9001/statuses/555"));
        assert_eq!(p.repost_of, None);
        assert_eq!(
            p.labels.to_value(),
            serde_json::json!({"account_category": "RightTroll", "account_type": "Right"})
        );
        assert_eq!(p.source, "ira");

        let rt = &posts[1];
        assert_eq!(rt.lang.as_deref(), Some("ru"));
        assert_eq!(rt.created_at, Some(Timestamp::parse("2016-01-15T07:05:00Z").unwrap()));
        // Both retweet the same words, so they share one placeholder.
        let placeholder = rt.repost_of.clone().unwrap();
        assert!(
            placeholder.starts_with("text:") && placeholder.len() == 21,
            "{placeholder}"
        );
        assert_eq!(posts[2].repost_of.as_deref(), Some(placeholder.as_str()));
        assert_eq!(posts[2].lang, None);
    }

    #[test]
    fn quoted_newlines_span_lines_and_emit_once_complete() {
        let input = "id,platform,created_at,author,text\n\
                     a1,mastodon,2026-02-01T10:00:00Z,alice_example,\"first line\n\
                     \n\
                     third, \"\"quoted\"\" line\"\n\
                     a2,mastodon,,bob_example,plain\n";
        let mut dec = CsvDecoder::new(CsvMapping::default());
        let mut out = DecodeOutput::default();
        let mut emitted = Vec::new();
        for line in input.lines() {
            dec.decode(line.as_bytes(), &mut out).unwrap();
            emitted.push(out.events.len());
        }
        // Nothing is emitted while the quote is open.
        assert_eq!(emitted, vec![0, 0, 0, 1, 2]);
        let Event::Post(p) = &out.events[0] else { panic!() };
        assert_eq!(p.text, "first line\n\nthird, \"quoted\" line");
        assert_eq!(p.platform, "mastodon");
        assert_eq!(p.source, "csv");
        assert_eq!(p.created_at, Some(Timestamp::parse("2026-02-01T10:00:00Z").unwrap()));
        let Event::Post(q) = &out.events[1] else { panic!() };
        assert_eq!(q.id, "a2");
        assert_eq!(q.created_at, None);
    }

    #[test]
    fn crlf_line_endings_and_a_bom_are_accepted() {
        let mut dec = CsvDecoder::new(CsvMapping::default());
        let mut out = DecodeOutput::default();
        dec.decode("\u{FEFF}id,text,author\r\n".as_bytes(), &mut out).unwrap();
        dec.decode(b"7,hello there,dana_example\r\n", &mut out).unwrap();
        let Event::Post(p) = &out.events[0] else { panic!() };
        assert_eq!((p.id.as_str(), p.text.as_str()), ("7", "hello there"));
        assert_eq!(p.author.as_deref(), Some("dana_example"));
    }

    #[test]
    fn bad_rows_are_errors_naming_the_field_and_column() {
        let m = CsvMapping::parse("id=tweet_id,text=content,created_at=date").unwrap();
        let input = "tweet_id,content,date\n\
                     1,ok,2020-01-01\n\
                     2,bad date,someday\n\
                     ,no id,2020-01-01\n\
                     4\n";
        let (posts, results) = run(m, input);
        assert_eq!(posts.len(), 1);
        assert_eq!(
            results[2].as_ref().unwrap_err().to_string(),
            "field `created_at`: column `date`: not a timestamp: \"someday\""
        );
        assert_eq!(
            results[3].as_ref().unwrap_err().to_string(),
            "field `id`: column `tweet_id`: missing or empty"
        );
        assert_eq!(
            results[4].as_ref().unwrap_err().to_string(),
            "field `text`: column `content`: missing"
        );
    }

    #[test]
    fn a_quote_never_closed_is_an_error_naming_its_field() {
        let mut dec = CsvDecoder::new(CsvMapping::default());
        let mut out = DecodeOutput::default();
        dec.decode(b"id,author,text", &mut out).unwrap();
        dec.decode(b"1,erin_example,\"opened", &mut out).unwrap();
        let mut last = Ok(());
        for _ in 1..MAX_RECORD_LINES {
            last = dec.decode(b"more", &mut out);
            if last.is_err() {
                break;
            }
        }
        assert_eq!(
            last.unwrap_err(),
            DecodeError::field(
                "text",
                format!("quoted value still open after {MAX_RECORD_LINES} lines; record dropped")
            )
        );
        // The decoder goes on with the next record.
        dec.decode(b"2,erin_example,fine", &mut out).unwrap();
        assert_eq!(out.events.len(), 1);
    }

    #[test]
    fn an_unknown_header_rejects_the_rows_with_the_reason() {
        let (posts, results) = run(CsvMapping::default(), "a,b,c\n1,2,3\n");
        assert!(posts.is_empty());
        assert!(results[0].as_ref().unwrap_err().to_string().contains("not recognised"));
        assert!(results[1]
            .as_ref()
            .unwrap_err()
            .to_string()
            .starts_with("unusable CSV header"));
        let m = CsvMapping::parse("id=nope,text=b").unwrap();
        let (_, results) = run(m, "a,b,c\n");
        assert_eq!(
            results[0].as_ref().unwrap_err().to_string(),
            "field `id`: header has no column nope"
        );
    }

    #[test]
    fn mapping_specs_parse_and_name_bad_keys() {
        let m = CsvMapping::parse(
            "id=tweet_id, text=content|body, created_at=date, platform=bluesky, source=mine, repost_when=kind:rt",
        )
        .unwrap();
        assert_eq!(m.id, vec!["tweet_id"]);
        assert_eq!(m.text, vec!["content", "body"]);
        assert_eq!(m.created_at, vec!["date"]);
        assert_eq!((m.platform.as_str(), m.source.as_str()), ("bluesky", "mine"));
        assert_eq!(m.repost_when, Some(("kind".into(), "rt".into())));
        assert_eq!(CsvMapping::parse("ira"), Ok(CsvMapping::preset("ira").unwrap()));

        let err = |s: &str| CsvMapping::parse(s).unwrap_err().to_string();
        assert!(
            err("id=a,txt=b").starts_with("unknown mapping key `txt`"),
            "{}",
            err("id=a,txt=b")
        );
        assert_eq!(err("id=a,text="), "mapping key `text` has no value");
        assert_eq!(err("id=a,text"), "mapping item `text` is not `key=column`");
        assert_eq!(err("text=b"), "mapping key `id` is required");
        assert_eq!(
            err("id=a,text=b,repost_when=x"),
            "mapping key `repost_when` must be `column:value`, not `x`"
        );
        assert!(err("nosuch").starts_with("unknown CSV preset `nosuch`"));
    }

    #[test]
    fn headers_are_recognised() {
        let h = |s: &str| s.split(',').map(str::to_string).collect::<Vec<_>>();
        assert_eq!(
            CsvMapping::detect(&h(
                "message_id,user_id,username,repost_id,reply_id,message,timestamp,urls"
            )),
            CsvMapping::preset("cnt")
        );
        assert_eq!(CsvMapping::detect(&h(IRA_HEADER)), CsvMapping::preset("ira"));
        let canon = CsvMapping::detect(&h("ID,Platform,created_at,author,text,lang,source")).unwrap();
        assert_eq!(canon.id, vec!["id"]);
        assert_eq!(canon.platform_column.as_deref(), Some("platform"));
        assert_eq!(canon.source_column.as_deref(), Some("source"));
        assert!(canon.url.is_empty());
        assert_eq!(CsvMapping::detect(&h("id,text")), None);
        assert_eq!(CsvMapping::detect(&h("name,age")), None);
        assert_eq!(CsvMapping::detect(&[]), None);
    }

    #[test]
    fn language_values_become_codes() {
        assert_eq!(language_code("English").as_deref(), Some("en"));
        assert_eq!(language_code("Farsi (Persian)").as_deref(), Some("fa"));
        assert_eq!(language_code("pt-BR").as_deref(), Some("pt"));
        assert_eq!(language_code("LANGUAGE UNDEFINED"), None);
        assert_eq!(language_code("und"), None);
        assert_eq!(language_code("Klingonese"), None);
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(
            bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..400),
            preset in 0usize..3,
        ) {
            let mapping = match preset {
                0 => CsvMapping::default(),
                1 => CsvMapping::preset("cnt").unwrap(),
                _ => CsvMapping::preset("ira").unwrap(),
            };
            let mut dec = CsvDecoder::new(mapping);
            let mut out = DecodeOutput::default();
            for line in bytes.split(|&b| b == b'\n') {
                let _ = dec.decode(line, &mut out);
            }
        }

        #[test]
        fn rows_after_a_known_header_never_panic(row in ".{0,200}") {
            let mut dec = CsvDecoder::new(CsvMapping::default());
            let mut out = DecodeOutput::default();
            dec.decode(b"id,platform,created_at,author,text", &mut out).unwrap();
            for line in row.split('\n') {
                let _ = dec.decode(line.as_bytes(), &mut out);
            }
        }
    }
}
