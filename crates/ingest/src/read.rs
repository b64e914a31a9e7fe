//! The reader: opens an input, undoes its compression, and frames it into
//! records for a [`Decoder`](crate::Decoder).
//!
//! Compression is recognised by its magic bytes (gzip `1f 8b`, zstd
//! `28 b5 2f fd`), not by the file name, so a `.json` that is really gzip
//! still reads. Every record carries the line it starts on and the byte
//! offset just after it in the decompressed stream, so a bad record is
//! reported as `file:line` and a source can checkpoint by offset.
//!
//! Framing follows [`Framing`]:
//! - `Lines`: one record a non-empty line;
//! - `JsonValues`: one record a top-level JSON value, which may span lines.
//!   If the first value ends at the end of its first line the input is JSON
//!   Lines, and from then on each line is a record: a broken line then costs
//!   one record, never the rest of the file;
//! - `Document`: the whole input is one record.

use crate::format::Framing;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Cursor, Read};
use std::path::Path;

/// How much of an input is read ahead for format detection.
pub const HEAD_BYTES: usize = 64 * 1024;

/// A record larger than this is rejected rather than buffered.
pub const MAX_RECORD_BYTES: usize = 64 * 1024 * 1024;

/// A whole-document input larger than this is rejected.
pub const MAX_DOCUMENT_BYTES: usize = 512 * 1024 * 1024;

/// The compression an input was found to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

/// An opened, decompressed input and its first bytes.
pub struct Input {
    pub compression: Compression,
    /// Up to [`HEAD_BYTES`] of decompressed content, for format detection.
    pub head: Vec<u8>,
    reader: Box<dyn BufRead + Send>,
}

impl Input {
    /// Opens a file, or standard input for `-`.
    pub fn open(path: &Path) -> io::Result<Input> {
        let raw: Box<dyn Read + Send> = if path.as_os_str() == "-" {
            Box::new(io::stdin())
        } else {
            Box::new(File::open(path)?)
        };
        Input::from_reader(raw)
    }

    /// Wraps any byte stream (a file, a socket body, a test buffer).
    pub fn from_reader(raw: Box<dyn Read + Send>) -> io::Result<Input> {
        let mut raw = BufReader::with_capacity(256 * 1024, raw);
        let magic = raw.fill_buf()?;
        let compression = if magic.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        };
        let mut decoded: Box<dyn Read + Send> = match compression {
            Compression::None => Box::new(raw),
            Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(raw)),
            Compression::Zstd => {
                let mut z = zstd::stream::read::Decoder::with_buffer(raw)?;
                // Reddit's Pushshift dumps use a 2 GiB window.
                z.window_log_max(31)?;
                Box::new(z)
            }
        };
        let mut head = Vec::with_capacity(HEAD_BYTES);
        (&mut decoded).take(HEAD_BYTES as u64).read_to_end(&mut head)?;
        let reader = Box::new(BufReader::with_capacity(
            256 * 1024,
            Cursor::new(head.clone()).chain(decoded),
        ));
        Ok(Input {
            compression,
            head,
            reader,
        })
    }

    /// Frames the input into records.
    pub fn records(self, framing: Framing) -> RecordReader {
        RecordReader {
            reader: self.reader,
            framing,
            json_lines: false,
            buf: Vec::new(),
            line: 0,
            offset: 0,
            done: false,
        }
    }
}

/// One framed record.
#[derive(Debug)]
pub struct Record<'a> {
    /// The 1-based line the record starts on.
    pub line: u64,
    /// Byte offset just after the record in the decompressed input.
    pub end_offset: u64,
    pub bytes: &'a [u8],
}

/// A record that could not even be framed (too large, not UTF-8 is fine).
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("record longer than {MAX_RECORD_BYTES} bytes")]
    TooLarge { line: u64 },
    #[error("input longer than {MAX_DOCUMENT_BYTES} bytes")]
    DocumentTooLarge,
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Yields records one at a time; the returned slice borrows an internal
/// buffer that the next call reuses.
pub struct RecordReader {
    reader: Box<dyn BufRead + Send>,
    framing: Framing,
    json_lines: bool,
    buf: Vec<u8>,
    line: u64,
    offset: u64,
    done: bool,
}

fn is_blank(b: &[u8]) -> bool {
    b.iter().all(|c| c.is_ascii_whitespace())
}

impl RecordReader {
    /// The next record, `Ok(None)` at the end of the input.
    pub fn next_record(&mut self) -> Result<Option<Record<'_>>, FrameError> {
        if self.done {
            return Ok(None);
        }
        match self.framing {
            Framing::Document => self.next_document(),
            Framing::Lines => self.next_line(),
            Framing::JsonValues if self.json_lines => self.next_line(),
            Framing::JsonValues => self.next_json_value(),
        }
    }

    /// Reads one line into `buf`; returns its length (0 at the end).
    fn read_line(&mut self) -> io::Result<usize> {
        let n = self.reader.read_until(b'\n', &mut self.buf)?;
        if n > 0 {
            self.line += 1;
            self.offset += n as u64;
        }
        Ok(n)
    }

    fn next_line(&mut self) -> Result<Option<Record<'_>>, FrameError> {
        loop {
            self.buf.clear();
            if self.read_line()? == 0 {
                self.done = true;
                return Ok(None);
            }
            if self.buf.len() > MAX_RECORD_BYTES {
                return Err(FrameError::TooLarge { line: self.line });
            }
            if !is_blank(&self.buf) {
                let bytes = trim_line_end(&self.buf);
                return Ok(Some(Record {
                    line: self.line,
                    end_offset: self.offset,
                    bytes,
                }));
            }
        }
    }

    fn next_document(&mut self) -> Result<Option<Record<'_>>, FrameError> {
        self.done = true;
        self.buf.clear();
        let n = (&mut self.reader)
            .take(MAX_DOCUMENT_BYTES as u64 + 1)
            .read_to_end(&mut self.buf)?;
        if n > MAX_DOCUMENT_BYTES {
            return Err(FrameError::DocumentTooLarge);
        }
        self.offset = n as u64;
        if is_blank(&self.buf) {
            return Ok(None);
        }
        Ok(Some(Record {
            line: 1,
            end_offset: self.offset,
            bytes: &self.buf,
        }))
    }

    fn next_json_value(&mut self) -> Result<Option<Record<'_>>, FrameError> {
        self.buf.clear();
        let mut scan = JsonScan::default();
        let mut start_line = 0;
        loop {
            let from = self.buf.len();
            if self.read_line()? == 0 {
                self.done = true;
                if is_blank(&self.buf) {
                    return Ok(None);
                }
                // An unterminated value: hand it over so the decoder reports it.
                return Ok(Some(Record {
                    line: start_line,
                    end_offset: self.offset,
                    bytes: &self.buf,
                }));
            }
            if start_line == 0 {
                if is_blank(&self.buf) {
                    self.buf.clear();
                    continue;
                }
                start_line = self.line;
            }
            if self.buf.len() > MAX_RECORD_BYTES {
                let line = start_line;
                self.json_lines = true;
                return Err(FrameError::TooLarge { line });
            }
            if scan.feed(&self.buf[from..]) {
                if start_line == self.line && self.line == 1 {
                    // The first value fits its line: this is JSON Lines.
                    self.json_lines = true;
                }
                let bytes = trim_line_end(&self.buf);
                return Ok(Some(Record {
                    line: start_line,
                    end_offset: self.offset,
                    bytes,
                }));
            }
        }
    }
}

fn trim_line_end(b: &[u8]) -> &[u8] {
    let mut end = b.len();
    while end > 0 && matches!(b[end - 1], b'\n' | b'\r') {
        end -= 1;
    }
    &b[..end]
}

/// Tracks nesting of a JSON text to find where a top-level value ends.
#[derive(Default)]
struct JsonScan {
    depth: u32,
    started: bool,
    in_string: bool,
    escaped: bool,
}

impl JsonScan {
    /// Feeds more bytes; true once a complete top-level value was seen.
    fn feed(&mut self, bytes: &[u8]) -> bool {
        for &c in bytes {
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                } else if c == b'\\' {
                    self.escaped = true;
                } else if c == b'"' {
                    self.in_string = false;
                }
                continue;
            }
            match c {
                b'"' => {
                    self.in_string = true;
                    self.started = true;
                }
                b'{' | b'[' => {
                    self.depth += 1;
                    self.started = true;
                }
                b'}' | b']' => self.depth = self.depth.saturating_sub(1),
                c if !c.is_ascii_whitespace() => self.started = true,
                _ => {}
            }
        }
        // Scalars at top level end with their line.
        self.started && self.depth == 0 && !self.in_string
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn records(data: &[u8], framing: Framing) -> Vec<(u64, String)> {
        let input = Input::from_reader(Box::new(Cursor::new(data.to_vec()))).unwrap();
        let mut r = input.records(framing);
        let mut out = Vec::new();
        while let Some(rec) = r.next_record().unwrap() {
            out.push((rec.line, String::from_utf8_lossy(rec.bytes).into_owned()));
        }
        out
    }

    #[test]
    fn frames_lines_skipping_blank_ones() {
        let got = records(b"a\r\n\n  \nb\nc", Framing::Lines);
        assert_eq!(got, vec![(1, "a".into()), (4, "b".into()), (5, "c".into())]);
    }

    #[test]
    fn frames_pretty_printed_json_values() {
        let data = b"[\n  {\"a\": \"}\\\"\"},\n  {\"b\": 2}\n]\n{\n \"c\": 3\n}\n";
        let got = records(data, Framing::JsonValues);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].0, 1);
        assert!(got[0].1.ends_with(']'));
        assert_eq!(got[1], (5, "{\n \"c\": 3\n}".into()));
    }

    #[test]
    fn json_lines_with_a_broken_line_lose_only_that_line() {
        let data = b"{\"a\":1}\n{\"b\":[1,2\n{\"c\":3}\n";
        let got = records(data, Framing::JsonValues);
        assert_eq!(
            got,
            vec![
                (1, "{\"a\":1}".into()),
                (2, "{\"b\":[1,2".into()),
                (3, "{\"c\":3}".into())
            ]
        );
    }

    #[test]
    fn reads_gzip_and_zstd_by_content() {
        let plain = b"{\"x\":1}\n{\"x\":2}\n";
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(plain).unwrap();
        let gz = gz.finish().unwrap();
        let zs = zstd::encode_all(&plain[..], 3).unwrap();
        for data in [gz, zs] {
            let input = Input::from_reader(Box::new(Cursor::new(data))).unwrap();
            assert_ne!(input.compression, Compression::None);
            assert_eq!(input.head, plain);
            let mut r = input.records(Framing::Lines);
            let mut n = 0;
            while let Some(rec) = r.next_record().unwrap() {
                n += 1;
                assert_eq!(rec.end_offset, 8 * n);
            }
            assert_eq!(n, 2);
        }
    }

    #[test]
    fn a_document_is_one_record() {
        assert_eq!(
            records(b"<rss>\n</rss>\n", Framing::Document),
            vec![(1, "<rss>\n</rss>\n".into())]
        );
        assert!(records(b"  \n", Framing::Document).is_empty());
    }
}
