//! The one table of status codes and their reason phrases (RFC 9110 §15 and the codes in
//! common use beside it); every status line the server writes itself takes its phrase here.

/// The reason phrase of `code`, or `None` for a code the table does not name.
pub fn reason_phrase(code: u16) -> Option<&'static str> {
    Some(match code {
        100 => "Continue",
        101 => "Switching Protocols",
        103 => "Early Hints",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        203 => "Non-Authoritative Information",
        204 => "No Content",
        205 => "Reset Content",
        206 => "Partial Content",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        421 => "Misdirected Request",
        422 => "Unprocessable Content",
        426 => "Upgrade Required",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => return None,
    })
}

/// The reason phrase of `code`, or an empty phrase (allowed by RFC 9112 §4) for one the table
/// does not name.
pub fn reason(code: u16) -> &'static str {
    reason_phrase(code).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_codes_the_server_answers_with() {
        assert_eq!(reason(100), "Continue");
        assert_eq!(reason(400), "Bad Request");
        assert_eq!(reason(408), "Request Timeout");
        assert_eq!(reason(413), "Content Too Large");
        assert_eq!(reason(426), "Upgrade Required");
        assert_eq!(reason(500), "Internal Server Error");
        assert_eq!(reason(503), "Service Unavailable");
    }

    #[test]
    fn unknown_codes_have_an_empty_phrase() {
        assert_eq!(reason_phrase(299), None);
        assert_eq!(reason(299), "");
    }
}
