//! Where a request body goes while it is read in advance: memory, spilled to an unnamed
//! temporary file above a threshold. The framer decodes; this only stores.

use crate::wsgi::input::Body;
use std::fs::File;
use std::io::{self, Write};

/// Most bytes reserved for a body of declared length before they arrive.
const MAX_RESERVE: usize = 256 * 1024;

/// The body of the request being read.
pub struct BodySink {
    data: Vec<u8>,
    file: Option<File>,
    spill_threshold: usize,
    /// Bytes already written to the file.
    spilled: u64,
}

impl BodySink {
    pub fn new(spill_threshold: usize) -> BodySink {
        BodySink {
            data: Vec::new(),
            file: None,
            spill_threshold,
            spilled: 0,
        }
    }

    /// Starts a new body; room is reserved for `declared` bytes (up to a bound: the client
    /// has not sent them yet), so the buffer is not copied again each time it grows.
    pub fn begin(&mut self, declared: Option<u64>) {
        self.data.clear();
        self.file = None;
        self.spilled = 0;
        if let Some(n) = declared {
            let whole = usize::try_from(n).unwrap_or(usize::MAX);
            self.data
                .reserve(whole.min(self.spill_threshold).min(MAX_RESERVE));
        }
    }

    /// The in-memory buffer the framer appends decoded bytes to; call
    /// [`stored`](Self::stored) after.
    pub fn buffer(&mut self) -> &mut Vec<u8> {
        &mut self.data
    }

    /// Whether `n` more bytes appended to the buffer stay under the spill threshold (so they
    /// may go in directly, with nothing to spill).
    pub fn takes_in_memory(&self, n: usize) -> bool {
        self.file.is_none() && self.data.len().saturating_add(n) <= self.spill_threshold
    }

    /// Spills the buffer to the file once the body outgrew the threshold.
    pub fn stored(&mut self) -> io::Result<()> {
        if self.file.is_some() || self.data.len() > self.spill_threshold {
            let file = match &mut self.file {
                Some(file) => file,
                None => self.file.insert(tempfile::tempfile()?),
            };
            file.write_all(&self.data)?;
            self.spilled += self.data.len() as u64;
            self.data.clear();
        }
        Ok(())
    }

    /// The body's length so far.
    pub fn len(&self) -> u64 {
        self.spilled + self.data.len() as u64
    }

    /// The finished body for `wsgi.input`; the sink is empty again.
    pub fn finish(&mut self) -> io::Result<Body> {
        let data = std::mem::take(&mut self.data);
        self.spilled = 0;
        match self.file.take() {
            Some(mut file) => {
                file.write_all(&data)?;
                Body::from_file(file)
            }
            None => Ok(Body::Memory { data, pos: 0 }),
        }
    }
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
    fn a_small_body_stays_in_memory() {
        let mut sink = BodySink::new(1024);
        sink.begin(Some(5));
        sink.buffer().extend_from_slice(b"hello");
        sink.stored().unwrap();
        assert_eq!(sink.len(), 5);
        let body = sink.finish().unwrap();
        assert!(matches!(body, Body::Memory { .. }));
        assert_eq!(read_all(body), b"hello");
    }

    #[test]
    fn a_large_body_spills_to_a_file_and_reads_back() {
        let mut sink = BodySink::new(100);
        sink.begin(Some(10_000));
        for _ in 0..10 {
            assert!(!sink.takes_in_memory(1000) || sink.len() == 0);
            sink.buffer().extend_from_slice(&[7u8; 1000]);
            sink.stored().unwrap();
        }
        assert_eq!(sink.len(), 10_000);
        let body = sink.finish().unwrap();
        assert!(matches!(body, Body::File(_)));
        assert_eq!(read_all(body), vec![7u8; 10_000]);
        assert_eq!(sink.len(), 0);
    }
}
