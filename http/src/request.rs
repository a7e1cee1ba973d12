//! Parsing of request heads (request line and header fields) with httparse, plus the checks
//! httparse leaves to us: limits, bare CR/LF, Host, and the framing rules that refuse smuggling.

use crate::HttpError;

/// A byte range into the buffer a head was parsed from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Span {
    pub start: u32,
    pub end: u32,
}

impl Span {
    #[inline]
    pub fn of<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        &buf[self.start as usize..self.end as usize]
    }
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    Http10,
    Http11,
}

/// How the request body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body (no Content-Length, no Transfer-Encoding, or Content-Length: 0).
    None,
    Length(u64),
    Chunked,
}

/// Limits on what a client may send.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Longest request line, without its CRLF (414 beyond).
    pub max_request_line: usize,
    /// Most header fields (431 beyond).
    pub max_headers: usize,
    /// Longest single header line, without its CRLF (431 beyond).
    pub max_header_field: usize,
    /// Largest whole head including the blank line (431 beyond).
    pub max_head: usize,
    /// Largest body (413 beyond).
    pub max_body: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_request_line: 8190,
            max_headers: 100,
            max_header_field: 8190,
            max_head: 64 * 1024,
            max_body: 1 << 30,
        }
    }
}

/// A parsed request head. All spans point into the buffer given to `parse_head`.
/// Reused between requests (`parse_head` clears it) so parsing allocates nothing in the
/// steady state.
#[derive(Clone, Debug, Default)]
pub struct Head {
    pub method: Span,
    /// The path part of the target, still percent-encoded, always starting with '/' except
    /// for the `*` target of OPTIONS. For an absolute-form target the scheme and authority
    /// are stripped here and the authority is in `authority`.
    pub path: Span,
    /// The query, without the '?' (empty when there is none).
    pub query: Span,
    /// The authority of an absolute-form target (empty otherwise).
    pub authority: Span,
    pub version: Option<Version>,
    /// Header fields in order: (name, value), value without surrounding whitespace.
    pub headers: Vec<(Span, Span)>,
    /// Bytes of the head including the final blank line; the body starts here.
    pub len: usize,
    pub body: Option<BodyFraming>,
    /// Whether the connection stays open after this exchange, from version and Connection.
    pub keep_alive: bool,
    /// `Expect: 100-continue` was sent (and the version is 1.1).
    pub expect_continue: bool,
}

/// The outcome of parsing a buffer that may hold a partial head.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// `head` is filled; the head is `head.len` bytes long.
    Complete,
    /// More bytes are needed (the limits are not exceeded yet).
    Partial,
}

/// Parses the request head at the start of `buf` into `head`.
pub fn parse_head(buf: &[u8], limits: &Limits, head: &mut Head) -> Result<Parsed, HttpError> {
    let _ = (buf, limits, head);
    todo!()
}
