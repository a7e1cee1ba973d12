//! First pass over a request head, before httparse: finds where it ends, enforces the size
//! limits, and refuses bare CR, bare LF and obsolete line folding.
//!
//! Only the first `max_head` bytes are ever looked at, and every error is found at the first
//! byte that proves it, so the answer for a head never depends on how it was split into reads.

use memchr::memchr;

use crate::{HttpError, Limits};

/// What the first pass found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Scan {
    /// The head is not complete yet.
    Partial,
    /// The head is `len` bytes long (blank line included) and has `fields` header lines.
    Complete { len: usize, fields: usize },
}

pub(crate) fn scan_head(buf: &[u8], limits: &Limits) -> Result<Scan, HttpError> {
    let window = &buf[..buf.len().min(limits.max_head)];
    let mut pos = 0;
    let mut request_line_seen = false;
    let mut fields = 0;
    while pos < window.len() {
        let rest = &window[pos..];
        let lf = memchr(b'\n', rest);
        if request_line_seen {
            check_field_start(rest[0], fields, limits)?;
        }
        let limit = if request_line_seen {
            limits.max_header_field
        } else {
            limits.max_request_line
        };
        let content_len = check_line(rest, lf, limit).map_err(|e| match e {
            LineError::Bare => HttpError::BareCrOrLf,
            LineError::TooLong if request_line_seen => HttpError::HeadersTooLarge,
            LineError::TooLong => HttpError::RequestLineTooLong,
        })?;
        let Some(lf) = lf else { break };
        pos += lf + 1;
        if content_len > 0 {
            if request_line_seen {
                fields += 1;
            }
            request_line_seen = true;
        } else if request_line_seen {
            return Ok(Scan::Complete { len: pos, fields });
        }
        // An empty line before the request line is skipped (RFC 9112 §2.2).
    }
    if buf.len() > limits.max_head {
        Err(HttpError::HeadersTooLarge)
    } else {
        Ok(Scan::Partial)
    }
}

/// Checks the first byte of a line after the request line.
fn check_field_start(first: u8, fields: usize, limits: &Limits) -> Result<(), HttpError> {
    if first == b' ' || first == b'\t' {
        return Err(HttpError::ObsoleteFold);
    }
    if first != b'\r' && first != b'\n' && fields >= limits.max_headers {
        return Err(HttpError::HeadersTooLarge);
    }
    Ok(())
}

enum LineError {
    Bare,
    TooLong,
}

/// Checks the line at the start of `rest` (ending at `lf` when seen) and returns the length of
/// its content without CRLF. A CR as the last byte of an unfinished line may still become
/// a CRLF, so it is not counted.
fn check_line(rest: &[u8], lf: Option<usize>, limit: usize) -> Result<usize, LineError> {
    let end = lf.unwrap_or(rest.len());
    let ends_with_cr = end > 0 && rest[end - 1] == b'\r';
    let content_len = if ends_with_cr { end - 1 } else { end };
    let bare_cr = memchr(b'\r', &rest[..end]).filter(|&at| at + 1 < end);
    let too_long = (content_len > limit).then_some(limit);
    let bare_lf = lf.filter(|_| !ends_with_cr);
    // The earliest problem wins; each is found at the byte that proves it.
    let first = [
        bare_cr.map(|at| (at, LineError::Bare)),
        too_long.map(|at| (at, LineError::TooLong)),
        bare_lf.map(|at| (at, LineError::Bare)),
    ]
    .into_iter()
    .flatten()
    .min_by_key(|(at, _)| *at);
    match first {
        Some((_, error)) => Err(error),
        None => Ok(content_len),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(buf: &[u8]) -> Result<Scan, HttpError> {
        scan_head(buf, &Limits::default())
    }

    #[test]
    fn finds_the_end_of_a_complete_head() {
        let buf = b"GET / HTTP/1.1\r\nHost: a\r\nX: y\r\n\r\nbody";
        assert_eq!(scan(buf), Ok(Scan::Complete { len: 33, fields: 2 }));
    }

    #[test]
    fn an_unfinished_head_is_partial() {
        assert_eq!(scan(b""), Ok(Scan::Partial));
        assert_eq!(scan(b"GET / HTTP/1.1\r"), Ok(Scan::Partial));
        assert_eq!(scan(b"GET / HTTP/1.1\r\nHost: a\r\n\r"), Ok(Scan::Partial));
    }

    #[test]
    fn leading_empty_lines_are_skipped() {
        let buf = b"\r\n\r\nGET / HTTP/1.1\r\n\r\n";
        assert_eq!(scan(buf), Ok(Scan::Complete { len: 22, fields: 0 }));
    }

    #[test]
    fn bare_line_feeds_and_carriage_returns_are_refused() {
        assert_eq!(scan(b"GET / HTTP/1.1\n"), Err(HttpError::BareCrOrLf));
        assert_eq!(scan(b"\n"), Err(HttpError::BareCrOrLf));
        assert_eq!(
            scan(b"GET / HTTP/1.1\r\nA: b\rc"),
            Err(HttpError::BareCrOrLf)
        );
        assert_eq!(scan(b"GET /\rx"), Err(HttpError::BareCrOrLf));
    }

    #[test]
    fn a_folded_line_is_refused() {
        let buf = b"GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n";
        assert_eq!(scan(buf), Err(HttpError::ObsoleteFold));
    }

    #[test]
    fn a_long_request_line_is_refused_before_its_end_arrives() {
        let limits = Limits {
            max_request_line: 10,
            ..Limits::default()
        };
        assert_eq!(scan_head(b"GET /12345", &limits), Ok(Scan::Partial));
        assert_eq!(scan_head(b"GET /12345\r", &limits), Ok(Scan::Partial));
        assert_eq!(
            scan_head(b"GET /123456", &limits),
            Err(HttpError::RequestLineTooLong)
        );
    }

    #[test]
    fn the_whole_head_is_bounded_while_partial() {
        let limits = Limits {
            max_head: 20,
            ..Limits::default()
        };
        assert_eq!(
            scan_head(b"GET / HTTP/1.1\r\nA: b", &limits),
            Ok(Scan::Partial)
        );
        assert_eq!(
            scan_head(b"GET / HTTP/1.1\r\nA: bc", &limits),
            Err(HttpError::HeadersTooLarge)
        );
    }
}
