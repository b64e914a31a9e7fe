//! (being written)

use super::{DecodeError, DecodeOutput, Decoder, Format};

#[derive(Default)]
pub struct MastodonDecoder;

impl Decoder for MastodonDecoder {
    fn format(&self) -> Format {
        Format::Mastodon
    }

    fn decode(&mut self, _record: &[u8], _out: &mut DecodeOutput) -> Result<(), DecodeError> {
        Err(DecodeError::Other("not written yet".into()))
    }
}
