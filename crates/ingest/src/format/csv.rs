//! (being written)

use super::{DecodeError, DecodeOutput, Decoder, Format};

#[derive(Clone, Debug, Default)]
pub struct CsvMapping;

pub struct CsvDecoder;

impl CsvDecoder {
    pub fn new(_m: CsvMapping) -> Self {
        CsvDecoder
    }
}

impl Decoder for CsvDecoder {
    fn format(&self) -> Format {
        Format::Csv
    }

    fn decode(&mut self, _record: &[u8], _out: &mut DecodeOutput) -> Result<(), DecodeError> {
        Err(DecodeError::Other("not written yet".into()))
    }
}
