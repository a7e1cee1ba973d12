//! Pre-reads a request body (Content-Length or chunked) before the application runs, keeping it
//! in memory or spilling it to an unnamed temporary file above a threshold.

use crate::wsgi::input::Body;
use evserver_http::{ChunkedDecoder, HttpError};
use std::fs::File;
use std::io::{self, Write};

/// Why a body could not be read.
#[derive(Debug)]
pub enum BodyError {
    /// The client sent a bad body: answer with its status.
    Http(HttpError),
    /// The spill file failed: answer 500.
    Io(io::Error),
}

enum Framing {
    Length { remaining: u64 },
    Chunked(ChunkedDecoder),
}

/// Accumulates one request body.
pub struct BodyReader {
    framing: Framing,
    data: Vec<u8>,
    file: Option<File>,
    spill_threshold: usize,
    total: u64,
}

/// Most bytes reserved for a body of declared length before they arrive.
const MAX_RESERVE: usize = 256 * 1024;

/// Bytes of trailers or chunk-size lines allowed in a chunked body.
const MAX_CHUNK_METADATA: usize = 16 * 1024;

impl BodyReader {
    pub fn with_length(length: u64, spill_threshold: usize) -> BodyReader {
        BodyReader::new(Framing::Length { remaining: length }, spill_threshold)
    }

    pub fn chunked(max_body: u64, spill_threshold: usize) -> BodyReader {
        BodyReader::new(
            Framing::Chunked(ChunkedDecoder::new(max_body, MAX_CHUNK_METADATA)),
            spill_threshold,
        )
    }

    fn new(framing: Framing, spill_threshold: usize) -> BodyReader {
        BodyReader {
            framing,
            data: Vec::new(),
            file: None,
            spill_threshold,
            total: 0,
        }
    }

    /// Consumes body bytes from `input`; returns how many were consumed and whether the body
    /// is complete. Bytes after the body's end are left alone (a pipelined request).
    pub fn feed(&mut self, input: &[u8]) -> Result<(usize, bool), BodyError> {
        let before = self.data.len();
        let (consumed, done) = match &mut self.framing {
            Framing::Length { remaining } => {
                let n = (*remaining).min(input.len() as u64) as usize;
                if self.data.is_empty() && self.file.is_none() && n > 0 {
                    // Room for the whole declared body (up to a bound: the client has not
                    // sent it yet), so that it is not copied again each time the buffer grows.
                    let whole = usize::try_from(*remaining).unwrap_or(usize::MAX);
                    self.data
                        .reserve(whole.min(self.spill_threshold).min(MAX_RESERVE));
                }
                self.data.extend_from_slice(&input[..n]);
                *remaining -= n as u64;
                (n, *remaining == 0)
            }
            Framing::Chunked(decoder) => {
                let d = decoder
                    .decode(input, &mut self.data)
                    .map_err(BodyError::Http)?;
                (d.consumed, d.done)
            }
        };
        self.total += (self.data.len() - before) as u64;
        if self.file.is_some() || self.data.len() > self.spill_threshold {
            self.spill().map_err(BodyError::Io)?;
        }
        Ok((consumed, done))
    }

    /// Whether feeding `n` more bytes cannot fail: a body of declared length that stays in
    /// memory (no spill file, nothing to decode).
    pub fn takes_in_memory(&self, n: usize) -> bool {
        matches!(self.framing, Framing::Length { .. })
            && self.file.is_none()
            && self.data.len().saturating_add(n) <= self.spill_threshold
    }

    /// True when nothing of the body has arrived yet (for `Expect: 100-continue`).
    pub fn is_untouched(&self) -> bool {
        self.total == 0
            && match &self.framing {
                Framing::Length { .. } => true,
                Framing::Chunked(d) => d.decoded_len() == 0,
            }
    }

    /// Decoded body bytes so far.
    pub fn len(&self) -> u64 {
        self.total
    }

    /// True for a chunked body (whose length the environ reports after decoding).
    pub fn is_chunked(&self) -> bool {
        matches!(self.framing, Framing::Chunked(_))
    }

    fn spill(&mut self) -> io::Result<()> {
        let file = match &mut self.file {
            Some(file) => file,
            None => self.file.insert(tempfile_in_tmp()?),
        };
        file.write_all(&self.data)?;
        self.data.clear();
        Ok(())
    }

    /// The finished body for `wsgi.input`.
    pub fn finish(mut self) -> io::Result<Body> {
        match self.file.take() {
            Some(mut file) => {
                file.write_all(&self.data)?;
                Body::from_file(file)
            }
            None => Ok(Body::Memory {
                data: self.data,
                pos: 0,
            }),
        }
    }
}

fn tempfile_in_tmp() -> io::Result<File> {
    tempfile::tempfile()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn read_all(body: Body) -> Vec<u8> {
        match body {
            Body::Memory { data, pos } => data[pos..].to_vec(),
            Body::File(mut r) => {
                let mut v = Vec::new();
                r.read_to_end(&mut v).unwrap();
                v
            }
        }
    }

    #[test]
    fn length_body_stops_at_its_end() {
        let mut r = BodyReader::with_length(5, 1024);
        assert_eq!(r.feed(b"he").unwrap(), (2, false));
        assert_eq!(r.feed(b"lloGET /").unwrap(), (3, true));
        assert_eq!(read_all(r.finish().unwrap()), b"hello");
    }

    #[test]
    fn large_body_spills_to_a_file_and_reads_back() {
        let mut r = BodyReader::with_length(10_000, 100);
        let chunk = [7u8; 1000];
        for _ in 0..10 {
            r.feed(&chunk).unwrap();
        }
        let body = r.finish().unwrap();
        assert!(matches!(body, Body::File(_)));
        assert_eq!(read_all(body), vec![7u8; 10_000]);
    }
}
