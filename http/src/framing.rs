//! The request framing of one connection, in memory and without I/O: head, then body (by
//! Content-Length or chunked), then the next pipelined request, until an error or a request
//! that does not keep the connection alive.

use crate::{parse_head, BodyFraming, ChunkedDecoder, Head, HttpError, Limits, Parsed};

/// What [`Framer::poll`] found in the buffered input.
#[derive(Debug)]
pub enum Event<'a> {
    /// A request head is complete. `bytes` is the head as received (the spans of `head` point
    /// into it); its body, if any, follows as [`Event::Body`] and then [`Event::End`].
    Head { bytes: &'a [u8], head: &'a Head },
    /// `n` more body bytes were decoded and appended to the caller's buffer.
    Body(usize),
    /// The request (head and body) is complete; `keep_alive` says whether another may follow.
    End { keep_alive: bool },
    /// The buffered input holds no further complete step: feed more bytes.
    NeedMore,
    /// The last request closed the connection; whatever follows is never read.
    Closed,
}

/// Where the connection is in its request cycle.
#[derive(Debug)]
enum Phase {
    Head,
    /// The head of `len` bytes was handed out and is dropped from the buffer on the next poll.
    HeadSeen {
        len: usize,
    },
    Length {
        remaining: u64,
    },
    Chunked(ChunkedDecoder),
    /// The body is complete; the next poll ends the request.
    Ending,
    Failed(HttpError),
    Closed,
}

/// Splits a byte stream into requests. Errors are final: once `poll` fails it fails the same
/// way forever, as the server answers the error and closes.
#[derive(Debug)]
pub struct Framer {
    limits: Limits,
    max_metadata: usize,
    buf: Vec<u8>,
    head: Head,
    phase: Phase,
    keep_alive: bool,
}

impl Framer {
    /// `max_metadata` bounds one chunk-size line and the trailer section of a chunked body.
    pub fn new(limits: Limits, max_metadata: usize) -> Framer {
        Framer {
            limits,
            max_metadata,
            buf: Vec::new(),
            head: Head::default(),
            phase: Phase::Head,
            keep_alive: true,
        }
    }

    /// Appends received bytes.
    pub fn feed(&mut self, bytes: &[u8]) {
        if !matches!(self.phase, Phase::Closed | Phase::Failed(_)) {
            self.buf.extend_from_slice(bytes);
        }
    }

    /// Bytes received and not consumed yet.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Whether the connection is between requests (no request started and unfinished).
    pub fn is_idle(&self) -> bool {
        matches!(self.phase, Phase::Head | Phase::Closed) && self.buf.is_empty()
    }

    /// Takes the next step the buffered input allows; decoded body bytes go to `body`.
    pub fn poll(&mut self, body: &mut Vec<u8>) -> Result<Event<'_>, HttpError> {
        loop {
            match &mut self.phase {
                Phase::Failed(e) => return Err(*e),
                Phase::Closed => return Ok(Event::Closed),
                Phase::Ending => return Ok(self.end()),
                Phase::HeadSeen { len } => {
                    let len = *len;
                    self.buf.drain(..len);
                    self.phase = match self.head.body {
                        Some(BodyFraming::Length(n)) if n > 0 => Phase::Length { remaining: n },
                        Some(BodyFraming::Chunked) => Phase::Chunked(ChunkedDecoder::new(
                            self.limits.max_body,
                            self.max_metadata,
                        )),
                        _ => return Ok(self.end()),
                    };
                }
                Phase::Head => {
                    if self.buf.is_empty() {
                        return Ok(Event::NeedMore);
                    }
                    match parse_head(&self.buf, &self.limits, &mut self.head) {
                        Ok(Parsed::Partial) => return Ok(Event::NeedMore),
                        Ok(Parsed::Complete) => {
                            let len = self.head.len;
                            self.keep_alive = self.head.keep_alive;
                            self.phase = Phase::HeadSeen { len };
                            return Ok(Event::Head {
                                bytes: &self.buf[..len],
                                head: &self.head,
                            });
                        }
                        Err(e) => return Err(self.fail(e)),
                    }
                }
                Phase::Length { remaining } => {
                    if self.buf.is_empty() {
                        return Ok(Event::NeedMore);
                    }
                    let take = (*remaining).min(self.buf.len() as u64) as usize;
                    *remaining -= take as u64;
                    let done = *remaining == 0;
                    body.extend(self.buf.drain(..take));
                    if done {
                        self.phase = Phase::Ending;
                    }
                    return Ok(Event::Body(take));
                }
                Phase::Chunked(decoder) => {
                    let before = body.len();
                    let step = match decoder.decode(&self.buf, body) {
                        Ok(step) => step,
                        Err(e) => return Err(self.fail(e)),
                    };
                    self.buf.drain(..step.consumed);
                    let n = body.len() - before;
                    if step.done {
                        self.phase = Phase::Ending;
                        if n == 0 {
                            continue;
                        }
                        return Ok(Event::Body(n));
                    }
                    if n > 0 {
                        return Ok(Event::Body(n));
                    }
                    return Ok(Event::NeedMore);
                }
            }
        }
    }

    /// Ends the current request and decides whether the connection goes on.
    fn end(&mut self) -> Event<'static> {
        self.phase = if self.keep_alive {
            Phase::Head
        } else {
            self.buf.clear();
            Phase::Closed
        };
        Event::End {
            keep_alive: self.keep_alive,
        }
    }

    fn fail(&mut self, e: HttpError) -> HttpError {
        self.phase = Phase::Failed(e);
        self.buf.clear();
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(input: &[u8]) -> (Vec<String>, Option<HttpError>) {
        let mut framer = Framer::new(Limits::default(), 4096);
        framer.feed(input);
        let mut body = Vec::new();
        let mut seen = Vec::new();
        loop {
            match framer.poll(&mut body) {
                Ok(Event::Head { head, bytes }) => seen.push(format!(
                    "head {}",
                    String::from_utf8_lossy(head.path.of(bytes))
                )),
                Ok(Event::Body(n)) => seen.push(format!("body {n}")),
                Ok(Event::End { keep_alive }) => seen.push(format!("end {keep_alive}")),
                Ok(Event::NeedMore) => return (seen, None),
                Ok(Event::Closed) => {
                    seen.push("closed".into());
                    return (seen, None);
                }
                Err(e) => return (seen, Some(e)),
            }
        }
    }

    #[test]
    fn pipelined_requests_come_out_in_order() {
        let (seen, error) = run(b"GET /a HTTP/1.1\r\nHost: t\r\n\r\n\
              POST /b HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc\
              POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nxy\r\n0\r\n\r\n");
        assert_eq!(error, None);
        assert_eq!(
            seen,
            [
                "head /a", "end true", "head /b", "body 3", "end true", "head /c", "body 2",
                "end true"
            ]
        );
    }

    #[test]
    fn a_request_that_closes_the_connection_ends_the_stream() {
        let (seen, error) = run(b"GET /a HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n\
              GET /never HTTP/1.1\r\nHost: t\r\n\r\n");
        assert_eq!(error, None);
        assert_eq!(seen, ["head /a", "end false", "closed"]);
    }

    #[test]
    fn an_error_is_final() {
        let mut framer = Framer::new(Limits::default(), 4096);
        framer.feed(b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n");
        let mut body = Vec::new();
        let first = framer.poll(&mut body).unwrap_err();
        framer.feed(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
        assert_eq!(framer.poll(&mut body).unwrap_err(), first);
        assert_eq!(framer.buffered(), 0);
    }

    #[test]
    fn a_partial_body_waits_for_more() {
        let mut framer = Framer::new(Limits::default(), 4096);
        framer.feed(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\nab");
        let mut body = Vec::new();
        assert!(matches!(framer.poll(&mut body), Ok(Event::Head { .. })));
        assert!(matches!(framer.poll(&mut body), Ok(Event::Body(2))));
        assert!(matches!(framer.poll(&mut body), Ok(Event::NeedMore)));
        assert!(!framer.is_idle());
        framer.feed(b"cd");
        assert!(matches!(framer.poll(&mut body), Ok(Event::Body(2))));
        assert!(matches!(
            framer.poll(&mut body),
            Ok(Event::End { keep_alive: true })
        ));
        assert!(framer.is_idle());
        assert_eq!(body, b"abcd");
    }
}
