//! An incremental HTTP/1.1 response parser for the client: heads on httparse, bodies framed by
//! Content-Length, chunked encoding or the end of the connection, counted but never copied.

use evserver_http::ChunkedDecoder;

/// Largest response head accepted (status line and fields).
const MAX_HEAD: usize = 64 * 1024;
/// Most header fields in one head.
const MAX_FIELDS: usize = 64;

/// Why a response could not be parsed.
#[derive(Debug, PartialEq, Eq)]
pub struct ParseError(pub &'static str);

/// What the end of the connection meant.
#[derive(Debug, PartialEq, Eq)]
pub enum AtEof {
    /// Between responses: nothing was lost.
    Idle,
    /// It ended a close-delimited body: a complete response with this status.
    Completed(u16),
    /// A response was cut short.
    Truncated,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Head,
    Length(u64),
    Chunked,
    UntilClose,
    /// A response said the connection closes after it: nothing more is read.
    Closed,
}

/// Parses the responses of one connection, in order.
pub struct ResponseParser {
    phase: Phase,
    /// A head that arrived in pieces, gathered until it is complete.
    partial: Vec<u8>,
    status: u16,
    close_after: bool,
    chunked: ChunkedDecoder,
    /// The requests are HEAD: no response has a body.
    head_requests: bool,
}

impl ResponseParser {
    pub fn new(head_requests: bool) -> ResponseParser {
        ResponseParser {
            phase: Phase::Head,
            partial: Vec::new(),
            status: 0,
            close_after: false,
            chunked: new_chunked(),
            head_requests,
        }
    }

    /// Forgets everything (a new connection).
    pub fn reset(&mut self) {
        self.phase = Phase::Head;
        self.partial.clear();
        self.close_after = false;
    }

    /// True once a response said `Connection: close` (or was HTTP/1.0 without keep-alive)
    /// and ended: the caller closes the connection.
    pub fn must_close(&self) -> bool {
        self.phase == Phase::Closed
    }

    /// True when no response is under way.
    pub fn is_idle(&self) -> bool {
        self.phase == Phase::Head && self.partial.is_empty()
    }

    /// Consumes received bytes, calling `done(status)` for every response that completes.
    pub fn feed(&mut self, mut data: &[u8], mut done: impl FnMut(u16)) -> Result<(), ParseError> {
        while !data.is_empty() {
            match self.phase {
                Phase::Closed => return Ok(()),
                Phase::Head => {
                    let used = self.head(data)?;
                    data = &data[used..];
                    if self.phase == Phase::Length(0) {
                        self.end(&mut done);
                    }
                }
                Phase::Length(left) => {
                    let take = left.min(data.len() as u64);
                    data = &data[take as usize..];
                    self.phase = Phase::Length(left - take);
                    if left == take {
                        self.end(&mut done);
                    }
                }
                Phase::Chunked => {
                    let step = self
                        .chunked
                        .skip(data)
                        .map_err(|_| ParseError("bad chunked encoding"))?;
                    data = &data[step.consumed..];
                    if step.done {
                        self.end(&mut done);
                    }
                }
                Phase::UntilClose => return Ok(()),
            }
        }
        Ok(())
    }

    /// The connection reached end of file.
    pub fn eof(&mut self) -> AtEof {
        let outcome = match self.phase {
            Phase::UntilClose => AtEof::Completed(self.status),
            Phase::Head if self.partial.is_empty() => AtEof::Idle,
            Phase::Closed => AtEof::Idle,
            _ => AtEof::Truncated,
        };
        self.reset();
        outcome
    }

    fn end(&mut self, done: &mut impl FnMut(u16)) {
        done(self.status);
        self.phase = if self.close_after {
            Phase::Closed
        } else {
            Phase::Head
        };
    }

    /// Parses a head from `data` (after what was gathered before); returns how many bytes
    /// of `data` it used. Leaves the phase at the body's framing once the head is complete.
    fn head(&mut self, data: &[u8]) -> Result<usize, ParseError> {
        let gathered = self.partial.len();
        let buf: &[u8] = if gathered == 0 {
            data
        } else {
            self.partial.extend_from_slice(data);
            &self.partial
        };
        let mut fields = [httparse::EMPTY_HEADER; MAX_FIELDS];
        let mut resp = httparse::Response::new(&mut fields);
        let len = match resp.parse(buf) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) => {
                if buf.len() > MAX_HEAD {
                    return Err(ParseError("response head too large"));
                }
                if gathered == 0 {
                    self.partial.extend_from_slice(data);
                }
                return Ok(data.len());
            }
            Err(_) => return Err(ParseError("malformed response head")),
        };
        let status = resp.code.unwrap_or(0);
        let version = resp.version.unwrap_or(1);
        let framing = framing(resp.headers, version)?;
        self.status = status;
        self.close_after = framing.close;
        self.phase = if (100..200).contains(&status) {
            if status == 101 {
                return Err(ParseError("unexpected protocol switch (101)"));
            }
            Phase::Head // an interim response: the real one follows
        } else if self.head_requests || status == 204 || status == 304 {
            Phase::Length(0)
        } else if framing.chunked {
            self.chunked = new_chunked();
            Phase::Chunked
        } else if let Some(n) = framing.length {
            Phase::Length(n)
        } else {
            self.close_after = true;
            Phase::UntilClose
        };
        let used = len - gathered;
        self.partial.clear();
        Ok(used)
    }
}

fn new_chunked() -> ChunkedDecoder {
    ChunkedDecoder::new(u64::MAX, MAX_HEAD)
}

struct Framing {
    length: Option<u64>,
    chunked: bool,
    close: bool,
}

/// Reads the fields that frame the body and say whether the connection stays open.
fn framing(fields: &[httparse::Header<'_>], version: u8) -> Result<Framing, ParseError> {
    let mut f = Framing {
        length: None,
        chunked: false,
        close: version == 0,
    };
    for h in fields {
        if h.name.eq_ignore_ascii_case("content-length") {
            let n = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .ok_or(ParseError("bad Content-Length"))?;
            if f.length.is_some_and(|m| m != n) {
                return Err(ParseError("conflicting Content-Length"));
            }
            f.length = Some(n);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            let last = h.value.rsplit(|&b| b == b',').next().unwrap_or(b"");
            f.chunked = last.trim_ascii().eq_ignore_ascii_case(b"chunked");
            if !f.chunked {
                f.length = None; // a non-chunked coding: the body runs to the close
            }
        } else if h.name.eq_ignore_ascii_case("connection") {
            for token in h.value.split(|&b| b == b',') {
                let token = token.trim_ascii();
                if token.eq_ignore_ascii_case(b"close") {
                    f.close = true;
                } else if token.eq_ignore_ascii_case(b"keep-alive") && version == 0 {
                    f.close = false;
                }
            }
        }
    }
    if f.chunked {
        f.length = None;
    }
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` split at every position; returns the statuses seen each time.
    fn statuses_at_every_split(input: &[u8]) -> Vec<u16> {
        let mut whole = Vec::new();
        ResponseParser::new(false)
            .feed(input, |s| whole.push(s))
            .unwrap();
        for split in 0..input.len() {
            let mut p = ResponseParser::new(false);
            let mut seen = Vec::new();
            p.feed(&input[..split], |s| seen.push(s)).unwrap();
            p.feed(&input[split..], |s| seen.push(s)).unwrap();
            assert_eq!(seen, whole, "split at {split}");
        }
        whole
    }

    #[test]
    fn content_length_and_pipelined_responses() {
        let two = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloHTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n";
        assert_eq!(statuses_at_every_split(two), vec![200, 404]);
    }

    #[test]
    fn chunked_bodies_with_trailers() {
        let r = b"HTTP/1.1 500 Oops\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX: y\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n";
        assert_eq!(statuses_at_every_split(r), vec![500, 204]);
    }

    #[test]
    fn interim_responses_are_skipped() {
        let r = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 1\r\n\r\nx";
        assert_eq!(statuses_at_every_split(r), vec![201]);
    }

    #[test]
    fn close_delimited_bodies_end_at_eof() {
        let mut p = ResponseParser::new(false);
        let mut seen = Vec::new();
        p.feed(b"HTTP/1.0 200 OK\r\n\r\nsome body", |s| seen.push(s))
            .unwrap();
        assert!(seen.is_empty());
        assert_eq!(p.eof(), AtEof::Completed(200));
    }

    #[test]
    fn connection_close_stops_reading() {
        let mut p = ResponseParser::new(false);
        let mut seen = Vec::new();
        p.feed(
            b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n",
            |s| seen.push(s),
        )
        .unwrap();
        assert_eq!(seen, vec![200]);
        assert!(p.must_close());
        assert_eq!(p.eof(), AtEof::Idle);
    }

    #[test]
    fn truncation_and_garbage_are_reported() {
        let mut p = ResponseParser::new(false);
        p.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc", |_| {})
            .unwrap();
        assert_eq!(p.eof(), AtEof::Truncated);
        let mut p = ResponseParser::new(false);
        assert!(p.feed(b"NOT HTTP\r\n\r\n", |_| {}).is_err());
        let mut p = ResponseParser::new(false);
        let bad = b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n";
        assert!(p.feed(bad, |_| {}).is_err());
    }

    #[test]
    fn head_requests_have_no_body() {
        let mut p = ResponseParser::new(true);
        let mut seen = Vec::new();
        p.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", |s| {
            seen.push(s)
        })
        .unwrap();
        assert_eq!(seen, vec![200]);
        assert!(p.is_idle());
    }
}
