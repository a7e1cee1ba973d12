//! Incremental decoder of `Transfer-Encoding: chunked` request bodies.

use crate::HttpError;

/// Result of one `decode` step.
#[derive(Debug, PartialEq, Eq)]
pub struct Decoded {
    /// Bytes of input consumed.
    pub consumed: usize,
    /// True once the last chunk and the trailer section were consumed.
    pub done: bool,
}

/// Decodes chunked framing fed in pieces of any size.
#[derive(Debug)]
pub struct ChunkedDecoder {
    _private: (),
}

impl ChunkedDecoder {
    /// `max_body`: total decoded size limit (413); `max_metadata`: limit on the bytes of one
    /// chunk-size line with extensions, and on the whole trailer section.
    pub fn new(max_body: u64, max_metadata: usize) -> ChunkedDecoder {
        let _ = (max_body, max_metadata);
        todo!()
    }

    /// Consumes from `input`, appending decoded body bytes to `out`.
    pub fn decode(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<Decoded, HttpError> {
        let _ = (input, out);
        todo!()
    }

    /// Total decoded body bytes so far.
    pub fn decoded_len(&self) -> u64 {
        todo!()
    }
}
