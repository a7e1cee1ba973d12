//! Writing response heads: status validation, header validation, and which responses carry a body.

/// Parses a WSGI status string such as `"200 OK"`: three digits, a space, and a reason phrase
/// free of control characters. Returns the code.
pub fn parse_status(status: &[u8]) -> Option<u16> {
    let _ = status;
    todo!()
}

/// True for a valid header field name (an RFC 9110 token).
pub fn valid_header_name(name: &[u8]) -> bool {
    let _ = name;
    todo!()
}

/// True for a header value that can be sent as is: no CR, LF, NUL or other control
/// character except horizontal tab.
pub fn valid_header_value(value: &[u8]) -> bool {
    let _ = value;
    todo!()
}

/// Whether a response to this request may carry a body: not for HEAD, 1xx, 204 and 304.
pub fn response_has_body(is_head_request: bool, status: u16) -> bool {
    let _ = (is_head_request, status);
    todo!()
}

/// Appends a complete error response (status line, Date, Server, Content-Type text/plain,
/// Content-Length, `Connection: close`, and a short body naming the problem) to `out`.
pub fn write_error_response(out: &mut Vec<u8>, status: u16, reason: &str, detail: &str, date: &[u8]) {
    let _ = (out, status, reason, detail, date);
    todo!()
}
