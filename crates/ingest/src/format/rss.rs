//! (being written)

use super::{DecodeError, DecodeOutput, Decoder, Format};

#[derive(Default)]
pub struct RssDecoder;

impl Decoder for RssDecoder {
    fn format(&self) -> Format {
        Format::Rss
    }

    fn decode(&mut self, _record: &[u8], _out: &mut DecodeOutput) -> Result<(), DecodeError> {
        Err(DecodeError::Other("not written yet".into()))
    }
}
