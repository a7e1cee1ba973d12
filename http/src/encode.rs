//! Writing responses on plain bytes: the status line and the application's header lines,
//! checked (a CR or LF is an error, never an injection); the choice of body framing; the
//! server's own headers (Date, Server, Connection); chunk framing; and the complete answers the
//! server gives by itself (errors, `100 Continue`).

use crate::status::reason;
use crate::token::{is_field_byte, is_token};
use crate::Version;

/// Why an application's status or header cannot be sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeadError {
    /// Not three digits (100-599), a space and a reason free of control characters.
    Status,
    /// A header name that is not a token.
    HeaderName,
    /// A CR, LF or other control character in a header value.
    HeaderValue,
    /// A Content-Length that is not a decimal number.
    ContentLength,
    /// Two Content-Length headers that differ.
    ConflictingContentLength,
}

impl HeadError {
    pub fn describe(self) -> &'static str {
        match self {
            HeadError::Status => "invalid status (want e.g. '200 OK')",
            HeadError::HeaderName => "invalid header name",
            HeadError::HeaderValue => "invalid character (CR, LF or control) in a header value",
            HeadError::ContentLength => "invalid Content-Length",
            HeadError::ConflictingContentLength => "conflicting Content-Length headers",
        }
    }
}

/// Parses a WSGI status string such as `"200 OK"`: three digits, a space, and a reason phrase
/// free of control characters. Returns the code.
///
/// The code must be in 100..=599 (RFC 9110 §15); the reason phrase may be empty (`"204 "`)
/// and may hold obs-text (latin-1).
pub fn parse_status(status: &[u8]) -> Option<u16> {
    let (&[a, b, c, b' '], reason) = status.split_first_chunk::<4>()? else {
        return None;
    };
    if ![a, b, c].iter().all(u8::is_ascii_digit) || !valid_header_value(reason) {
        return None;
    }
    let code = u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0');
    (100..=599).contains(&code).then_some(code)
}

/// True for a valid header field name (an RFC 9110 token).
pub fn valid_header_name(name: &[u8]) -> bool {
    is_token(name)
}

/// True for a header value that can be sent as is: no CR, LF, NUL or other control
/// character except horizontal tab.
///
/// DEL (0x7F) counts as a control; obs-text (0x80-0xFF) is allowed, since WSGI header values
/// are latin-1 strings.
pub fn valid_header_value(value: &[u8]) -> bool {
    value.iter().all(|&b| is_field_byte(b))
}

/// Whether a response to this request may carry a body: not for HEAD, 1xx, 204 and 304.
pub fn response_has_body(is_head_request: bool, status: u16) -> bool {
    !(is_head_request || (100..200).contains(&status) || status == 204 || status == 304)
}

/// What the application's status and headers said that the server acts on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AppHead {
    pub status: u16,
    pub content_length: Option<u64>,
    /// The application sent `Connection: close`.
    pub close: bool,
    pub has_date: bool,
    pub has_server: bool,
}

/// Appends `HTTP/1.1 <status>\r\n` for the application's status text (`"200 OK"`) and
/// returns what the head says so far.
pub fn write_status_line(out: &mut Vec<u8>, status: &[u8]) -> Result<AppHead, HeadError> {
    let code = parse_status(status).ok_or(HeadError::Status)?;
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status);
    out.extend_from_slice(b"\r\n");
    Ok(AppHead {
        status: code,
        ..AppHead::default()
    })
}

/// Checks one of the application's header lines and appends it, unless the server writes that
/// header itself (Connection, Transfer-Encoding); notes what `head` must know of it. On error
/// nothing is appended.
pub fn write_app_header(
    out: &mut Vec<u8>,
    head: &mut AppHead,
    name: &[u8],
    value: &[u8],
) -> Result<(), HeadError> {
    if !valid_header_name(name) {
        return Err(HeadError::HeaderName);
    }
    if !valid_header_value(value) {
        return Err(HeadError::HeaderValue);
    }
    match classify(name) {
        Special::ContentLength => {
            let n = parse_length(value).ok_or(HeadError::ContentLength)?;
            if head.content_length.is_some_and(|m| m != n) {
                return Err(HeadError::ConflictingContentLength);
            }
            head.content_length = Some(n);
        }
        Special::Connection => {
            if value
                .split(|&b| b == b',')
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"close"))
            {
                head.close = true;
            }
            // The server writes its own Connection header.
            return Ok(());
        }
        // The server frames the body itself; an app's Transfer-Encoding would double it.
        Special::TransferEncoding => return Ok(()),
        Special::Date => head.has_date = true,
        Special::Server => head.has_server = true,
        Special::Other => {}
    }
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
    Ok(())
}

enum Special {
    ContentLength,
    Connection,
    TransferEncoding,
    Date,
    Server,
    Other,
}

fn classify(name: &[u8]) -> Special {
    match name.len() {
        14 if name.eq_ignore_ascii_case(b"content-length") => Special::ContentLength,
        10 if name.eq_ignore_ascii_case(b"connection") => Special::Connection,
        17 if name.eq_ignore_ascii_case(b"transfer-encoding") => Special::TransferEncoding,
        4 if name.eq_ignore_ascii_case(b"date") => Special::Date,
        6 if name.eq_ignore_ascii_case(b"server") => Special::Server,
        _ => Special::Other,
    }
}

fn parse_length(value: &[u8]) -> Option<u64> {
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(value).ok()?.parse().ok()
}

/// How a response body is delimited on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// HEAD, 1xx, 204, 304: nothing follows the head.
    NoBody,
    /// Exactly `declared` bytes follow (Content-Length).
    Length { declared: u64 },
    /// Chunks, ended by the last chunk (HTTP/1.1).
    Chunked,
    /// Bytes until the connection closes (a streamed body on HTTP/1.0).
    UntilClose,
    /// `101 Switching Protocols`: the connection speaks another protocol (WebSocket) after the
    /// head; no HTTP body, and no further HTTP request on it.
    Upgraded,
}

/// The request's side of the exchange, as the head needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exchange {
    pub version: Version,
    pub is_head: bool,
    /// The connection may stay open after this response (the client and the server agree).
    pub keep_alive: bool,
}

/// What the server knows of the body when the head goes out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodySize {
    /// Its total length is known (a list of bytes, a file).
    Known(u64),
    /// The body ended before any of it was sent (the iterable is exhausted): empty.
    Ended,
    /// It is streamed: the length is not known yet.
    Streamed,
}

/// How the head ended: the body's framing and whether the connection stays open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeadEnd {
    pub framing: Framing,
    pub keep_alive: bool,
}

/// Completes a head whose status line and application headers are in `out`: chooses the
/// framing (the application's Content-Length, else a known length, else chunked on HTTP/1.1,
/// else until close on HTTP/1.0), writes the framing header, Date and Server unless the
/// application sent them, Connection, and the blank line.
pub fn finish_head(
    out: &mut Vec<u8>,
    app: &AppHead,
    exchange: Exchange,
    body: BodySize,
    date: &[u8],
) -> HeadEnd {
    let mut keep_alive = exchange.keep_alive && !app.close;
    let has_body = response_has_body(exchange.is_head, app.status);
    // A length goes out for HEAD (what GET would send), but never on 1xx and 204.
    let may_state_length = app.status >= 200 && app.status != 204;
    let framing = match (app.content_length, body) {
        (Some(n), _) => Framing::Length { declared: n },
        (None, BodySize::Known(n)) => {
            if may_state_length {
                write_content_length(out, n);
            }
            Framing::Length { declared: n }
        }
        (None, _) if !has_body => Framing::NoBody,
        (None, BodySize::Ended) => {
            if may_state_length {
                write_content_length(out, 0);
            }
            Framing::Length { declared: 0 }
        }
        (None, BodySize::Streamed) if exchange.version == Version::Http11 => {
            out.extend_from_slice(b"Transfer-Encoding: chunked\r\n");
            Framing::Chunked
        }
        (None, BodySize::Streamed) => {
            keep_alive = false;
            Framing::UntilClose
        }
    };
    let framing = if has_body { framing } else { Framing::NoBody };
    if !app.has_date {
        write_date(out, date);
    }
    if !app.has_server {
        out.extend_from_slice(SERVER_HEADER);
    }
    if !keep_alive {
        out.extend_from_slice(b"Connection: close\r\n");
    } else if exchange.version == Version::Http10 {
        out.extend_from_slice(b"Connection: keep-alive\r\n");
    }
    out.extend_from_slice(b"\r\n");
    HeadEnd {
        framing,
        keep_alive,
    }
}

const SERVER_HEADER: &[u8] = b"Server: evserver\r\n";

fn write_date(out: &mut Vec<u8>, date: &[u8]) {
    out.extend_from_slice(b"Date: ");
    out.extend_from_slice(date);
    out.extend_from_slice(b"\r\n");
}

fn write_content_length(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(b"Content-Length: ");
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Appends a chunk's size line (lowercase hex, CRLF); the data and [`CHUNK_END`] follow.
pub fn write_chunk_size(out: &mut Vec<u8>, len: usize) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut digits = [0u8; 16];
    let mut i = digits.len();
    let mut n = len;
    loop {
        i -= 1;
        digits[i] = HEX[n & 0xF];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
    out.extend_from_slice(b"\r\n");
}

/// Appends one whole chunk holding `data` (which must not be empty: that is the last chunk).
pub fn write_chunk(out: &mut Vec<u8>, data: &[u8]) {
    debug_assert!(!data.is_empty());
    write_chunk_size(out, data.len());
    out.extend_from_slice(data);
    out.extend_from_slice(CHUNK_END);
}

/// What follows a chunk's data.
pub const CHUNK_END: &[u8] = b"\r\n";
/// The last chunk of a chunked body, with no trailers.
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// Appends an interim (1xx) response with no headers, e.g. `100 Continue`.
pub fn write_interim(out: &mut Vec<u8>, code: u16) {
    debug_assert!((100..200).contains(&code));
    write_status_code_line(out, code);
    out.extend_from_slice(b"\r\n");
}

/// Appends `101 Switching Protocols` with `headers` (valid names and values: the caller
/// checked them), then Date and Server.
pub fn write_switching_protocols(out: &mut Vec<u8>, headers: &[(&str, &str)], date: &[u8]) {
    write_status_code_line(out, 101);
    write_headers(out, headers);
    write_date(out, date);
    out.extend_from_slice(SERVER_HEADER);
    out.extend_from_slice(b"\r\n");
}

fn write_headers(out: &mut Vec<u8>, headers: &[(&str, &str)]) {
    for (name, value) in headers {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
}

fn write_status_code_line(out: &mut Vec<u8>, code: u16) {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(itoa::Buffer::new().format(code).as_bytes());
    out.push(b' ');
    out.extend_from_slice(reason(code).as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Appends the head of a response the server makes itself: the status line from the status
/// table, Content-Type, Content-Length, `Cache-Control: no-store` when `no_store`,
/// `Connection: close`, Date (when given) and Server.
pub fn write_server_head(
    out: &mut Vec<u8>,
    code: u16,
    content_type: &str,
    content_length: usize,
    no_store: bool,
    date: Option<&[u8]>,
) {
    write_server_head_with(out, code, content_type, content_length, no_store, date, &[]);
}

/// [`write_server_head`] with `extra` headers after Content-Type (valid names and values).
fn write_server_head_with(
    out: &mut Vec<u8>,
    code: u16,
    content_type: &str,
    content_length: usize,
    no_store: bool,
    date: Option<&[u8]>,
    extra: &[(&str, &str)],
) {
    write_status_code_line(out, code);
    write_headers(out, extra);
    out.extend_from_slice(b"Content-Type: ");
    out.extend_from_slice(content_type.as_bytes());
    out.extend_from_slice(b"\r\n");
    write_content_length(out, content_length as u64);
    if no_store {
        out.extend_from_slice(b"Cache-Control: no-store\r\n");
    }
    out.extend_from_slice(b"Connection: close\r\n");
    if let Some(date) = date {
        write_date(out, date);
    }
    out.extend_from_slice(SERVER_HEADER);
    out.extend_from_slice(b"\r\n");
}

/// Appends a complete error response (status line from the status table, Content-Type
/// text/plain, Content-Length, `Connection: close`, Date, Server, and a short body naming the
/// problem) to `out`.
///
/// The body is `"{reason}: {detail}\n"`, or `"{reason}\n"` when `detail` is empty.
pub fn write_error_response(out: &mut Vec<u8>, code: u16, detail: &str, date: &[u8]) {
    write_error_response_with(out, code, detail, date, &[]);
}

/// [`write_error_response`] with `extra` headers (e.g. `426` with `Sec-WebSocket-Version`).
pub fn write_error_response_with(
    out: &mut Vec<u8>,
    code: u16,
    detail: &str,
    date: &[u8],
    extra: &[(&str, &str)],
) {
    let phrase = reason(code);
    let body_len = phrase.len()
        + if detail.is_empty() {
            1
        } else {
            2 + detail.len() + 1
        };
    write_server_head_with(
        out,
        code,
        "text/plain; charset=utf-8",
        body_len,
        false,
        Some(date),
        extra,
    );
    out.extend_from_slice(phrase.as_bytes());
    if !detail.is_empty() {
        out.extend_from_slice(b": ");
        out.extend_from_slice(detail.as_bytes());
    }
    out.push(b'\n');
}
