//! Writing response heads: status validation, header validation, and which responses carry a body.

use crate::token::{is_field_byte, is_token};

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

/// Appends a complete error response (status line, Date, Server, Content-Type text/plain,
/// Content-Length, `Connection: close`, and a short body naming the problem) to `out`.
///
/// The body is `"{reason}: {detail}\n"`, or `"{reason}\n"` when `detail` is empty.
pub fn write_error_response(
    out: &mut Vec<u8>,
    status: u16,
    reason: &str,
    detail: &str,
    date: &[u8],
) {
    let mut code = itoa::Buffer::new();
    let body_len = reason.len()
        + if detail.is_empty() {
            1
        } else {
            2 + detail.len() + 1
        };
    let mut length = itoa::Buffer::new();
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(code.format(status).as_bytes());
    out.push(b' ');
    out.extend_from_slice(reason.as_bytes());
    out.extend_from_slice(b"\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ");
    out.extend_from_slice(length.format(body_len).as_bytes());
    out.extend_from_slice(b"\r\nConnection: close\r\nDate: ");
    out.extend_from_slice(date);
    out.extend_from_slice(b"\r\nServer: evserver\r\n\r\n");
    out.extend_from_slice(reason.as_bytes());
    if !detail.is_empty() {
        out.extend_from_slice(b": ");
        out.extend_from_slice(detail.as_bytes());
    }
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_is_three_digits_a_space_and_a_reason() {
        assert_eq!(parse_status(b"200 OK"), Some(200));
        assert_eq!(parse_status(b"404 Not Found"), Some(404));
        assert_eq!(parse_status(b"100 Continue"), Some(100));
        assert_eq!(parse_status(b"599 Whatever"), Some(599));
        assert_eq!(parse_status(b"204 "), Some(204));
        assert_eq!(parse_status(b"200 Caf\xe9\tok"), Some(200));
    }

    #[test]
    fn malformed_statuses_are_refused() {
        for bad in [
            &b""[..],
            b"200",
            b"200OK",
            b"20 OK",
            b"2000 OK",
            b" 200 OK",
            b"abc OK",
            b"099 Low",
            b"600 High",
            b"200 OK\r\nX-Injected: 1",
            b"200 OK\n",
            b"200 O\0K",
            b"200 \x7f",
        ] {
            assert_eq!(parse_status(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn header_names_are_tokens() {
        assert!(valid_header_name(b"X-Custom_Header.1"));
        assert!(!valid_header_name(b""));
        assert!(!valid_header_name(b"X Custom"));
        assert!(!valid_header_name(b"X-A:"));
        assert!(!valid_header_name(b"X-A\r\nX-B"));
        assert!(!valid_header_name(b"caf\xe9"));
    }

    #[test]
    fn header_values_refuse_controls_but_allow_tab_and_latin1() {
        assert!(valid_header_value(b""));
        assert!(valid_header_value(b"text/html; charset=utf-8"));
        assert!(valid_header_value(b"a\tb"));
        assert!(valid_header_value(b"caf\xe9"));
        for bad in [
            &b"a\rb"[..],
            b"a\nb",
            b"a\r\nSet-Cookie: x",
            b"a\0",
            b"\x01",
            b"\x1f",
            b"\x7f",
        ] {
            assert!(!valid_header_value(bad), "{bad:?}");
        }
    }

    #[test]
    fn head_1xx_204_and_304_carry_no_body() {
        assert!(response_has_body(false, 200));
        assert!(response_has_body(false, 404));
        assert!(response_has_body(false, 205));
        assert!(!response_has_body(true, 200));
        assert!(!response_has_body(false, 100));
        assert!(!response_has_body(false, 199));
        assert!(!response_has_body(false, 204));
        assert!(!response_has_body(false, 304));
    }

    #[test]
    fn error_response_is_complete_and_closes() {
        let mut out = b"previous".to_vec();
        let date = b"Sun, 06 Nov 1994 08:49:37 GMT";
        write_error_response(&mut out, 400, "Bad Request", "bare LF", date);
        let expected = "previousHTTP/1.1 400 Bad Request\r\n\
            Content-Type: text/plain; charset=utf-8\r\n\
            Content-Length: 21\r\n\
            Connection: close\r\n\
            Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n\
            Server: evserver\r\n\
            \r\n\
            Bad Request: bare LF\n";
        assert_eq!(String::from_utf8(out).unwrap(), expected);
    }

    #[test]
    fn error_response_body_length_matches_without_detail() {
        let mut out = Vec::new();
        write_error_response(&mut out, 413, "Content Too Large", "", b"D");
        let text = String::from_utf8(out).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert_eq!(body, "Content Too Large\n");
        assert!(head.contains(&format!("Content-Length: {}", body.len())));
    }
}
