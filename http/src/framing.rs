//! The request framing of one connection, in memory and without I/O: head, then body (by
//! Content-Length or chunked, with `100 Continue` when the client waits for it), then the next
//! pipelined request, until an error or a request that does not keep the connection alive.
//! This is the machine the server runs, the fixtures drive and the fuzzer attacks.

use crate::{parse_head, BodyFraming, ChunkedDecoder, Head, HttpError, Limits, Parsed};

/// What [`Framer::poll`] found in the buffered input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A request head is complete: [`Framer::head`] gives it until the next head. Its body, if
    /// any, follows as [`Event::Body`] and then [`Event::End`].
    Head,
    /// The client sent `Expect: 100-continue` and none of the body yet: answer
    /// `100 Continue` (given at most once per request, before any body byte arrived).
    Continue,
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
    Length {
        remaining: u64,
    },
    Chunked(ChunkedDecoder),
    /// The body is complete; the next poll ends the request.
    Ending,
    Failed(HttpError),
    Closed,
}

/// Consumed input beyond which the buffer is compacted before more is appended.
const COMPACT_AT: usize = 16 * 1024;

/// Splits a byte stream into requests. Errors are final: once `poll` fails it fails the same
/// way forever, as the server answers the error and closes.
#[derive(Debug)]
pub struct Framer {
    limits: Limits,
    max_metadata: usize,
    /// Received bytes; `buf[start..]` is not consumed yet.
    buf: Vec<u8>,
    start: usize,
    /// The last complete head, and its bytes (the spans of `head` point into them).
    head: Head,
    head_bytes: Vec<u8>,
    phase: Phase,
    keep_alive: bool,
    /// The current request waits for `100 Continue` and has not been given it.
    continue_due: bool,
}

impl Framer {
    /// `max_metadata` bounds one chunk-size line and the trailer section of a chunked body.
    pub fn new(limits: Limits, max_metadata: usize) -> Framer {
        Framer {
            limits,
            max_metadata,
            buf: Vec::new(),
            start: 0,
            head: Head::default(),
            head_bytes: Vec::new(),
            phase: Phase::Head,
            keep_alive: true,
            continue_due: false,
        }
    }

    /// Appends received bytes (dropped once the connection failed or closed).
    pub fn feed(&mut self, bytes: &[u8]) {
        if matches!(self.phase, Phase::Closed | Phase::Failed(_)) {
            return;
        }
        if self.start > 0 && (self.start >= COMPACT_AT || self.start * 2 >= self.buf.len()) {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Takes body bytes of a declared length straight from a read into `body` when nothing is
    /// buffered ahead of them, sparing the copy through the framer's buffer. Returns how many
    /// it took; give the rest (a pipelined request) to [`feed`](Self::feed). The bytes taken
    /// are not reported as [`Event::Body`]; the end of the body is, by `poll`, as usual.
    pub fn feed_body(&mut self, bytes: &[u8], body: &mut Vec<u8>) -> usize {
        let Phase::Length { remaining } = &mut self.phase else {
            return 0;
        };
        if self.start != self.buf.len() {
            return 0;
        }
        let take = (*remaining).min(bytes.len() as u64) as usize;
        body.extend_from_slice(&bytes[..take]);
        *remaining -= take as u64;
        if *remaining == 0 {
            self.phase = Phase::Ending;
        }
        if take > 0 {
            self.continue_due = false;
        }
        take
    }

    /// Hands the connection to another protocol after the current request (`101 Switching
    /// Protocols`): returns the bytes received after it, not consumed, and takes nothing more.
    /// The head keeps its request line (method and target stay readable, for the logs) and
    /// gives back the memory of its header fields: the connection may live for hours.
    pub fn switch_protocols(&mut self) -> Vec<u8> {
        let rest = self.buf.split_off(self.start);
        self.buf = Vec::new(); // nothing more comes here: give its memory back
        self.start = 0;
        self.phase = Phase::Closed;
        let head = &mut self.head;
        let request_line = [head.method, head.target(), head.authority]
            .iter()
            .map(|span| span.end as usize)
            .max()
            .unwrap_or(0);
        head.headers = Vec::new();
        self.head_bytes.truncate(request_line);
        self.head_bytes.shrink_to_fit();
        rest
    }

    /// The bytes received and not consumed yet, left where they are.
    pub fn unconsumed(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    /// Bytes received and not consumed yet.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Whether the connection is between requests (no request started and unfinished).
    pub fn is_idle(&self) -> bool {
        matches!(self.phase, Phase::Head | Phase::Closed) && self.buffered() == 0
    }

    /// Whether a head was read and its body is still being read.
    pub fn in_body(&self) -> bool {
        matches!(
            self.phase,
            Phase::Length { .. } | Phase::Chunked(_) | Phase::Ending
        )
    }

    /// The last complete head and the bytes its spans point into (valid from its
    /// [`Event::Head`] until the next one).
    pub fn head(&self) -> (&Head, &[u8]) {
        (&self.head, &self.head_bytes)
    }

    /// Takes the next step the buffered input allows; decoded body bytes go to `body`.
    pub fn poll(&mut self, body: &mut Vec<u8>) -> Result<Event, HttpError> {
        if self.continue_due {
            // Set only while a body is due; given once, and only before any of it arrived.
            self.continue_due = false;
            if self.buffered() == 0 {
                return Ok(Event::Continue);
            }
        }
        loop {
            match &mut self.phase {
                Phase::Failed(e) => return Err(*e),
                Phase::Closed => return Ok(Event::Closed),
                Phase::Ending => return Ok(self.end()),
                Phase::Head => {
                    if self.buffered() == 0 {
                        return Ok(Event::NeedMore);
                    }
                    return match parse_head(&self.buf[self.start..], &self.limits, &mut self.head) {
                        Ok(Parsed::Partial) => Ok(Event::NeedMore),
                        Ok(Parsed::Complete) => {
                            self.begin_request();
                            Ok(Event::Head)
                        }
                        Err(e) => Err(self.fail(e)),
                    };
                }
                Phase::Length { remaining } => {
                    let available = self.buf.len() - self.start;
                    if available == 0 {
                        return Ok(Event::NeedMore);
                    }
                    let take = (*remaining).min(available as u64) as usize;
                    *remaining -= take as u64;
                    if *remaining == 0 {
                        self.phase = Phase::Ending;
                    }
                    body.extend_from_slice(&self.buf[self.start..self.start + take]);
                    self.consume(take);
                    return Ok(Event::Body(take));
                }
                Phase::Chunked(decoder) => {
                    let before = body.len();
                    let step = match decoder.decode(&self.buf[self.start..], body) {
                        Ok(step) => step,
                        Err(e) => return Err(self.fail(e)),
                    };
                    self.consume(step.consumed);
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

    /// The head just parsed at `start` becomes the current request's: its bytes are kept, the
    /// input moves past them and the body's phase begins.
    fn begin_request(&mut self) {
        let len = self.head.len;
        self.head_bytes.clear();
        self.head_bytes
            .extend_from_slice(&self.buf[self.start..self.start + len]);
        self.consume(len);
        self.keep_alive = self.head.keep_alive;
        self.phase = match self.head.body {
            Some(BodyFraming::Length(n)) if n > 0 => Phase::Length { remaining: n },
            Some(BodyFraming::Chunked) => {
                Phase::Chunked(ChunkedDecoder::new(self.limits.max_body, self.max_metadata))
            }
            _ => Phase::Ending,
        };
        self.continue_due = self.head.expect_continue && !matches!(self.phase, Phase::Ending);
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
    }

    /// Ends the current request and decides whether the connection goes on.
    fn end(&mut self) -> Event {
        self.continue_due = false;
        self.phase = if self.keep_alive {
            Phase::Head
        } else {
            self.buf.clear();
            self.start = 0;
            Phase::Closed
        };
        Event::End {
            keep_alive: self.keep_alive,
        }
    }

    fn fail(&mut self, e: HttpError) -> HttpError {
        self.phase = Phase::Failed(e);
        self.buf.clear();
        self.start = 0;
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
                Ok(Event::Head) => {
                    let (head, bytes) = framer.head();
                    seen.push(format!(
                        "head {}",
                        String::from_utf8_lossy(head.path.of(bytes))
                    ))
                }
                Ok(Event::Continue) => seen.push("continue".into()),
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
    fn switching_protocols_hands_over_what_followed_the_request() {
        let mut framer = Framer::new(Limits::default(), 4096);
        framer.feed(b"GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\n\r\n\x81\x85");
        let mut body = Vec::new();
        assert_eq!(framer.poll(&mut body), Ok(Event::Head));
        assert!(matches!(framer.poll(&mut body), Ok(Event::End { .. })));
        assert_eq!(framer.switch_protocols(), b"\x81\x85");
        // The request line stays readable; the header fields are gone.
        let (head, bytes) = framer.head();
        assert_eq!(head.method.of(bytes), b"GET");
        assert_eq!(head.target().of(bytes), b"/ws");
        assert!(head.headers.is_empty());
        // Nothing more is HTTP: later bytes are not taken.
        framer.feed(b"GET / HTTP/1.1\r\n\r\n");
        assert_eq!(framer.buffered(), 0);
        assert_eq!(framer.poll(&mut body), Ok(Event::Closed));
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
        assert_eq!(framer.poll(&mut body), Ok(Event::Head));
        assert!(framer.in_body());
        assert_eq!(framer.poll(&mut body), Ok(Event::Body(2)));
        assert_eq!(framer.poll(&mut body), Ok(Event::NeedMore));
        assert!(!framer.is_idle());
        framer.feed(b"cd");
        assert_eq!(framer.poll(&mut body), Ok(Event::Body(2)));
        assert_eq!(framer.poll(&mut body), Ok(Event::End { keep_alive: true }));
        assert!(framer.is_idle());
        assert_eq!(body, b"abcd");
    }

    #[test]
    fn continue_is_due_only_before_any_body_byte() {
        let head =
            b"PUT / HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n";
        let mut framer = Framer::new(Limits::default(), 4096);
        framer.feed(head);
        let mut body = Vec::new();
        assert_eq!(framer.poll(&mut body), Ok(Event::Head));
        assert_eq!(framer.poll(&mut body), Ok(Event::Continue));
        assert_eq!(framer.poll(&mut body), Ok(Event::NeedMore));
        framer.feed(b"ok");
        assert_eq!(framer.poll(&mut body), Ok(Event::Body(2)));
        assert_eq!(framer.poll(&mut body), Ok(Event::End { keep_alive: true }));

        // The body came with the head: no 100 Continue.
        let mut whole = head.to_vec();
        whole.extend_from_slice(b"ok");
        let (seen, _) = run(&whole);
        assert_eq!(seen, ["head /", "body 2", "end true"]);
    }

    #[test]
    fn body_bytes_fed_directly_skip_the_buffer() {
        let mut framer = Framer::new(Limits::default(), 4096);
        framer.feed(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\n");
        let mut body = Vec::new();
        assert_eq!(framer.poll(&mut body), Ok(Event::Head));
        assert_eq!(framer.poll(&mut body), Ok(Event::NeedMore));
        let read = b"abcdGET / HTTP/1.1\r\nHost: t\r\n\r\n";
        let took = framer.feed_body(read, &mut body);
        assert_eq!(took, 4);
        framer.feed(&read[took..]);
        assert_eq!(framer.buffered(), read.len() - 4);
        assert_eq!(framer.poll(&mut body), Ok(Event::End { keep_alive: true }));
        assert_eq!(framer.poll(&mut body), Ok(Event::Head));
        assert_eq!(framer.head().0.path.of(framer.head().1), b"/");
        assert_eq!(body, b"abcd");
        // Nothing is taken directly while bytes wait in the buffer, or outside a body.
        assert_eq!(framer.feed_body(b"x", &mut body), 0);
    }

    #[test]
    fn the_head_stays_readable_while_its_body_arrives() {
        let mut framer = Framer::new(Limits::default(), 4096);
        framer.feed(b"POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 40000\r\n\r\n");
        let mut body = Vec::new();
        assert_eq!(framer.poll(&mut body), Ok(Event::Head));
        for _ in 0..10 {
            framer.feed(&[7u8; 4000]);
            assert_eq!(framer.poll(&mut body), Ok(Event::Body(4000)));
        }
        assert_eq!(framer.poll(&mut body), Ok(Event::End { keep_alive: true }));
        let (head, bytes) = framer.head();
        assert_eq!(head.path.of(bytes), b"/up");
        assert_eq!(body.len(), 40_000);
    }
}
