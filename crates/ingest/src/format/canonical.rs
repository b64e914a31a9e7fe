//! tidewatch's own JSON Lines: one [`Post`] a line, or a deletion written as
//! `{"delete": {"id": ..., "platform": ...}}`.

use super::{DecodeError, DecodeOutput, Decoder, Format};
use tidewatch_core::{Deletion, Event, Post};

#[derive(Default)]
pub struct CanonicalDecoder;

#[derive(serde::Deserialize)]
struct DeleteLine {
    delete: Deletion,
}

impl Decoder for CanonicalDecoder {
    fn format(&self) -> Format {
        Format::Canonical
    }

    fn decode(&mut self, record: &[u8], out: &mut DecodeOutput) -> Result<(), DecodeError> {
        if record.starts_with(br#"{"delete""#) {
            let d: DeleteLine = serde_json::from_slice(record)?;
            out.events.push(Event::Delete(d.delete));
            return Ok(());
        }
        let post = Post::from_json(record)?;
        if post.id.is_empty() {
            return Err(DecodeError::field("id", "empty"));
        }
        out.events.push(Event::Post(post));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(line: &str) -> Result<Vec<Event>, DecodeError> {
        let mut out = DecodeOutput::default();
        CanonicalDecoder.decode(line.as_bytes(), &mut out)?;
        Ok(out.events)
    }

    #[test]
    fn decodes_posts_and_deletions() {
        let ev = decode(r#"{"id":"1","platform":"reddit","created_at":"2020-01-01T00:00:00Z","author":"a","text":"t","source":"s"}"#).unwrap();
        assert!(matches!(&ev[0], Event::Post(p) if p.id == "1" && p.platform == "reddit"));
        let ev = decode(r#"{"delete":{"id":"1","platform":"reddit"}}"#).unwrap();
        assert!(matches!(&ev[0], Event::Delete(d) if d.id == "1"));
    }

    #[test]
    fn rejects_bad_records_with_a_reason() {
        assert!(matches!(decode("{not json"), Err(DecodeError::Json(_))));
        let e = decode(r#"{"id":"","platform":"x"}"#).unwrap_err();
        assert_eq!(e.to_string(), "field `id`: empty");
        let e = decode(r#"{"id":"1","platform":"x","created_at":"soon"}"#).unwrap_err();
        assert!(e.to_string().contains("not a timestamp"), "{e}");
    }
}
