//! Incremental decoder of `Transfer-Encoding: chunked` request bodies.
//!
//! A byte-at-a-time state machine for the framing (chunk-size lines, extensions, trailers)
//! and bulk copies for chunk data, so any split of the input decodes the same way.

use crate::token::{is_field_byte, is_ows, is_tchar};
use crate::HttpError;

/// Result of one `decode` step.
#[derive(Debug, PartialEq, Eq)]
pub struct Decoded {
    /// Bytes of input consumed.
    pub consumed: usize,
    /// True once the last chunk and the trailer section were consumed.
    pub done: bool,
}

/// Where the decoder is in the chunked grammar (RFC 9112 §7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before the first hex digit of a chunk size.
    SizeStart,
    /// In the hex digits of a chunk size.
    Size,
    /// Whitespace after the size, which must lead to `;`.
    SizeBws,
    /// After `;`, before an extension name.
    ExtNameStart,
    ExtName,
    /// Whitespace after an extension name.
    ExtAfterName,
    /// After `=`, before an extension value.
    ExtValueStart,
    ExtToken,
    ExtQuoted,
    ExtQuotedEscape,
    /// After an extension value.
    ExtAfterValue,
    /// The CR ending a chunk-size line was seen.
    SizeLf,
    Data,
    DataCr,
    DataLf,
    /// At the start of a trailer line (or the final empty line).
    TrailerStart,
    TrailerName,
    TrailerValue,
    TrailerLf,
    /// The CR of the final empty line was seen.
    FinalLf,
    Done,
    Failed(HttpError),
}

/// Decodes chunked framing fed in pieces of any size.
#[derive(Debug)]
pub struct ChunkedDecoder {
    state: State,
    /// Size of the chunk being read, then the data bytes of it still expected.
    remaining: u64,
    /// Bytes of the current chunk-size line (without CRLF), or of the trailer section so far
    /// (without the final empty line).
    metadata: usize,
    decoded: u64,
    max_body: u64,
    max_metadata: usize,
}

impl ChunkedDecoder {
    /// `max_body`: total decoded size limit (413); `max_metadata`: limit on the bytes of one
    /// chunk-size line with extensions, and on the whole trailer section.
    pub fn new(max_body: u64, max_metadata: usize) -> ChunkedDecoder {
        ChunkedDecoder {
            state: State::SizeStart,
            remaining: 0,
            metadata: 0,
            decoded: 0,
            max_body,
            max_metadata,
        }
    }

    /// Consumes from `input`, appending decoded body bytes to `out`.
    ///
    /// Consumes all of `input` unless the body ends inside it: then `done` is true and
    /// `consumed` stops right after the final CRLF, so a pipelined request can follow.
    /// After an error every later call returns the same error.
    pub fn decode(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<Decoded, HttpError> {
        self.run(input, |data| out.extend_from_slice(data))
    }

    /// Consumes from `input` like [`decode`](Self::decode) but drops the body bytes (a client
    /// that only counts them).
    pub fn skip(&mut self, input: &[u8]) -> Result<Decoded, HttpError> {
        self.run(input, |_| {})
    }

    /// The decoding loop: framing bytes step the state machine, chunk data goes to `sink`.
    fn run(&mut self, input: &[u8], mut sink: impl FnMut(&[u8])) -> Result<Decoded, HttpError> {
        let mut pos = 0;
        while pos < input.len() {
            match self.state {
                State::Done => break,
                State::Failed(error) => return Err(error),
                State::Data => {
                    let available = (input.len() - pos) as u64;
                    let take = self.remaining.min(available) as usize;
                    sink(&input[pos..pos + take]);
                    pos += take;
                    self.remaining -= take as u64;
                    self.decoded += take as u64;
                    if self.remaining == 0 {
                        self.state = State::DataCr;
                    }
                }
                _ => {
                    let next = self.step(input[pos]);
                    pos += 1;
                    match next {
                        Ok(state) => self.state = state,
                        Err(error) => {
                            self.state = State::Failed(error);
                            return Err(error);
                        }
                    }
                }
            }
        }
        match self.state {
            State::Failed(error) => Err(error),
            state => Ok(Decoded {
                consumed: pos,
                done: state == State::Done,
            }),
        }
    }

    /// Total decoded body bytes so far.
    pub fn decoded_len(&self) -> u64 {
        self.decoded
    }

    /// True once the whole body, trailers included, was consumed.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Takes one framing byte and returns the next state.
    fn step(&mut self, b: u8) -> Result<State, HttpError> {
        use State::*;
        // Bytes of the size line (without its CRLF) and of trailer lines count as metadata.
        let metadata = match self.state {
            SizeStart | Size | SizeBws | ExtNameStart | ExtName | ExtAfterName | ExtValueStart
            | ExtToken | ExtQuoted | ExtQuotedEscape | ExtAfterValue | TrailerStart => b != b'\r',
            TrailerName | TrailerValue | TrailerLf => true,
            _ => false,
        };
        if metadata {
            self.count_metadata()?;
        }
        let bad = HttpError::BadChunkFraming;
        let next = match (self.state, b) {
            (SizeStart, _) => {
                self.remaining = 0;
                self.push_digit(b)?;
                Size
            }
            (Size, b'\r') => SizeLf,
            (Size, b';') => ExtNameStart,
            (Size | SizeBws, b' ' | b'\t') => SizeBws,
            (Size, b'\n') => return Err(bad),
            (Size, _) => {
                self.push_digit(b)?;
                Size
            }
            (SizeBws, b';') => ExtNameStart,
            (ExtNameStart, b) if is_ows(b) => ExtNameStart,
            (ExtNameStart | ExtName, b) if is_tchar(b) => ExtName,
            (ExtName | ExtAfterName, b) if is_ows(b) => ExtAfterName,
            (ExtName | ExtAfterName, b'=') => ExtValueStart,
            (ExtValueStart, b) if is_ows(b) => ExtValueStart,
            (ExtValueStart, b'"') => ExtQuoted,
            (ExtValueStart | ExtToken, b) if is_tchar(b) => ExtToken,
            (ExtQuoted, b'"') => ExtAfterValue,
            (ExtQuoted, b'\\') => ExtQuotedEscape,
            (ExtQuoted | ExtQuotedEscape, b) if is_field_byte(b) => ExtQuoted,
            (ExtToken | ExtAfterValue, b) if is_ows(b) => ExtAfterValue,
            (ExtName | ExtAfterName | ExtToken | ExtAfterValue, b';') => ExtNameStart,
            (ExtName | ExtAfterName | ExtToken | ExtAfterValue, b'\r') => SizeLf,
            (SizeLf, b'\n') => self.start_chunk()?,
            (DataCr, b'\r') => DataLf,
            (DataLf, b'\n') => SizeStart,
            (TrailerStart, b'\r') => FinalLf,
            (TrailerStart | TrailerName, b) if is_tchar(b) => TrailerName,
            (TrailerName, b':') => TrailerValue,
            (TrailerValue, b'\r') => TrailerLf,
            (TrailerValue, b) if is_field_byte(b) => TrailerValue,
            (TrailerLf, b'\n') => TrailerStart,
            (FinalLf, b'\n') => Done,
            _ => return Err(bad),
        };
        Ok(next)
    }

    fn count_metadata(&mut self) -> Result<(), HttpError> {
        self.metadata += 1;
        if self.metadata > self.max_metadata {
            return Err(HttpError::ChunkMetadataTooLarge);
        }
        Ok(())
    }

    fn push_digit(&mut self, b: u8) -> Result<(), HttpError> {
        let digit = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            b'A'..=b'F' => b - b'A' + 10,
            _ => return Err(HttpError::BadChunkSize),
        };
        if self.remaining > u64::MAX >> 4 {
            return Err(HttpError::BadChunkSize);
        }
        self.remaining = (self.remaining << 4) | u64::from(digit);
        Ok(())
    }

    /// The chunk-size line ended: start its data, or the trailers after the last chunk.
    fn start_chunk(&mut self) -> Result<State, HttpError> {
        self.metadata = 0;
        if self.remaining == 0 {
            return Ok(State::TrailerStart);
        }
        match self.decoded.checked_add(self.remaining) {
            Some(total) if total <= self.max_body => Ok(State::Data),
            _ => Err(HttpError::BodyTooLarge),
        }
    }
}
