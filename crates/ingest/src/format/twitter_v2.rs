//! (being written)

use super::{DecodeError, DecodeOutput, Decoder, Format};

#[derive(Default)]
pub struct TwitterV2Decoder;

impl Decoder for TwitterV2Decoder {
    fn format(&self) -> Format {
        Format::TwitterV2
    }

    fn decode(&mut self, _record: &[u8], _out: &mut DecodeOutput) -> Result<(), DecodeError> {
        Err(DecodeError::Other("not written yet".into()))
    }
}
