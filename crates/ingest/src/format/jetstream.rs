//! (being written)

use super::{DecodeError, DecodeOutput, Decoder, Format};

#[derive(Default)]
pub struct JetstreamDecoder;

impl Decoder for JetstreamDecoder {
    fn format(&self) -> Format {
        Format::Jetstream
    }

    fn decode(&mut self, _record: &[u8], _out: &mut DecodeOutput) -> Result<(), DecodeError> {
        Err(DecodeError::Other("not written yet".into()))
    }
}
