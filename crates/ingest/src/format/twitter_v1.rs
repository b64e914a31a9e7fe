//! (being written)

use super::{DecodeError, DecodeOutput, Decoder, Format};

#[derive(Default)]
pub struct TwitterV1Decoder;

impl Decoder for TwitterV1Decoder {
    fn format(&self) -> Format {
        Format::TwitterV1
    }

    fn decode(&mut self, _record: &[u8], _out: &mut DecodeOutput) -> Result<(), DecodeError> {
        Err(DecodeError::Other("not written yet".into()))
    }
}
