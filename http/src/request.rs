//! Parsing of request heads (request line and header fields) with httparse, plus the checks
//! httparse leaves to us: limits, bare CR/LF, Host, and the framing rules that refuse smuggling.

use std::mem::MaybeUninit;

use crate::fields::interpret;
use crate::scan::{scan_head, Scan};
use crate::target::split_target;
use crate::token::trim_ows_range;
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

impl Head {
    /// The origin-form target as sent: the path and, with its '?', the query.
    pub fn target(&self) -> Span {
        Span {
            start: self.path.start,
            end: if self.query.is_empty() {
                self.path.end
            } else {
                self.query.end
            },
        }
    }
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
///
/// `head` is cleared first; on `Ok(Parsed::Complete)` every field is set and `head.body` is
/// `Some` (`Content-Length: 0` gives `BodyFraming::None`). Empty lines before the request line
/// are skipped and counted in `head.len`. The answer for a given head never depends on how
/// the bytes arrived: an error found in a prefix is the error the whole head gives.
pub fn parse_head(buf: &[u8], limits: &Limits, head: &mut Head) -> Result<Parsed, HttpError> {
    clear(head);
    let (len, fields) = match scan_head(buf, limits)? {
        Scan::Partial => return Ok(Parsed::Partial),
        Scan::Complete { len, fields } => (len, fields),
    };
    if u32::try_from(len).is_err() {
        return Err(HttpError::HeadersTooLarge);
    }
    let bytes = &buf[..len];
    let mut stack = [const { MaybeUninit::<httparse::Header>::uninit() }; STACK_FIELDS];
    let mut heap = Vec::new();
    let slots = if fields <= STACK_FIELDS {
        &mut stack[..]
    } else {
        heap.resize(fields, MaybeUninit::uninit());
        &mut heap[..]
    };
    let mut request = httparse::Request::new(&mut []);
    match request.parse_with_uninit_headers(bytes, slots) {
        Ok(httparse::Status::Complete(n)) if n == len => {}
        Ok(_) => return Err(HttpError::MalformedHead),
        Err(error) => return Err(httparse_error(error, bytes)),
    }
    let version = fill_request_line(bytes, &request, head)?;
    fill_fields(bytes, request.headers, head);
    let meaning = interpret(bytes, &head.headers, version, limits)?;
    head.body = Some(meaning.body);
    head.keep_alive = meaning.keep_alive;
    head.expect_continue = meaning.expect_continue;
    head.len = len;
    Ok(Parsed::Complete)
}

/// Sets method, version, path, query and authority from what httparse found.
fn fill_request_line(
    bytes: &[u8],
    request: &httparse::Request,
    head: &mut Head,
) -> Result<Version, HttpError> {
    let (Some(method), Some(target), Some(minor)) = (request.method, request.path, request.version)
    else {
        return Err(HttpError::MalformedHead);
    };
    let version = if minor == 0 {
        Version::Http10
    } else {
        Version::Http11
    };
    head.method = span_of(bytes, method.as_bytes());
    head.version = Some(version);
    let target = span_of(bytes, target.as_bytes());
    let parts = split_target(
        bytes,
        target.start as usize,
        target.end as usize,
        method == "OPTIONS",
    )?;
    head.path = parts.path;
    head.query = parts.query;
    head.authority = parts.authority;
    Ok(version)
}

/// Appends the header fields, values trimmed of SP/HT. httparse has already refused every
/// control character but HTAB in values, DEL included, on all its SIMD paths (the
/// `*_in_value` fixtures pin this).
fn fill_fields(bytes: &[u8], fields: &[httparse::Header], head: &mut Head) {
    for field in fields {
        let whole = span_of(bytes, field.value);
        let (from, to) = trim_ows_range(field.value);
        let value = Span {
            start: whole.start + from as u32,
            end: whole.start + to as u32,
        };
        head.headers
            .push((span_of(bytes, field.name.as_bytes()), value));
    }
}

/// Header slots kept on the stack; a head with more fields (a raised `max_headers`) allocates.
const STACK_FIELDS: usize = 100;

fn clear(head: &mut Head) {
    head.method = Span::default();
    head.path = Span::default();
    head.query = Span::default();
    head.authority = Span::default();
    head.version = None;
    head.headers.clear();
    head.len = 0;
    head.body = None;
    head.keep_alive = false;
    head.expect_continue = false;
}

/// The span of `part`, a subslice of `buf` handed back by httparse.
fn span_of(buf: &[u8], part: &[u8]) -> Span {
    let start = (part.as_ptr() as usize).saturating_sub(buf.as_ptr() as usize);
    Span {
        start: start as u32,
        end: (start + part.len()) as u32,
    }
}

fn httparse_error(error: httparse::Error, head: &[u8]) -> HttpError {
    match error {
        httparse::Error::HeaderName => HttpError::InvalidHeaderName,
        httparse::Error::HeaderValue => HttpError::InvalidHeaderValue,
        httparse::Error::TooManyHeaders => HttpError::HeadersTooLarge,
        httparse::Error::Version if names_other_version(head) => HttpError::UnsupportedVersion,
        _ => HttpError::MalformedHead,
    }
}

/// Whether the request line is well formed but for its version: `METHOD SP target SP
/// HTTP/d.d` with a version other than 1.0 and 1.1 (so `HTTP/2.0` is answered 505, while
/// garbage is 400).
fn names_other_version(head: &[u8]) -> bool {
    let start = head
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(head.len());
    let line = &head[start..];
    let line = &line[..memchr::memchr(b'\r', line).unwrap_or(line.len())];
    let mut parts = line.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    if method.is_empty() || target.is_empty() {
        return false;
    }
    match version {
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor] => {
            major.is_ascii_digit() && minor.is_ascii_digit()
        }
        _ => false,
    }
}
