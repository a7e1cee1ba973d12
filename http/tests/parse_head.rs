//! `parse_head`'s contract with the connection layer: partial heads, reuse of `Head`, spans
//! and the body start.

use evserver_http::{parse_head, BodyFraming, Head, HttpError, Limits, Parsed, Version};

fn parse(buf: &[u8], head: &mut Head) -> Result<Parsed, HttpError> {
    parse_head(buf, &Limits::default(), head)
}

#[test]
fn an_empty_buffer_is_partial() {
    assert_eq!(parse(b"", &mut Head::default()), Ok(Parsed::Partial));
}

#[test]
fn every_prefix_of_a_head_is_partial() {
    let buf = b"GET /x HTTP/1.1\r\nHost: h\r\nX-A: b\r\n\r\n";
    let mut head = Head::default();
    for end in 0..buf.len() {
        assert_eq!(
            parse(&buf[..end], &mut head),
            Ok(Parsed::Partial),
            "prefix {end}"
        );
    }
    assert_eq!(parse(buf, &mut head), Ok(Parsed::Complete));
}

#[test]
fn the_body_starts_at_head_len() {
    let buf = b"POST /p?q HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabcNEXT";
    let mut head = Head::default();
    assert_eq!(parse(buf, &mut head), Ok(Parsed::Complete));
    assert_eq!(&buf[head.len..], b"abcNEXT");
    assert_eq!(head.body, Some(BodyFraming::Length(3)));
    assert_eq!(head.method.of(buf), b"POST");
    assert_eq!(head.path.of(buf), b"/p");
    assert_eq!(head.query.of(buf), b"q");
    assert!(head.authority.is_empty());
    assert_eq!(head.version, Some(Version::Http11));
}

#[test]
fn a_reused_head_is_cleared_and_keeps_its_allocation() {
    let mut head = Head::default();
    let first = b"GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nExpect: 100-continue\r\n\r\n";
    assert_eq!(parse(first, &mut head), Ok(Parsed::Complete));
    assert!(head.expect_continue);
    let capacity = head.headers.capacity();
    let pointer = head.headers.as_ptr();
    let second = b"GET /2 HTTP/1.0\r\n\r\n";
    assert_eq!(parse(second, &mut head), Ok(Parsed::Complete));
    assert!(head.headers.is_empty());
    assert!(!head.expect_continue);
    assert!(!head.keep_alive);
    assert_eq!(head.headers.capacity(), capacity);
    assert_eq!(head.headers.as_ptr(), pointer);
    assert_eq!(head.path.of(second), b"/2");
}

#[test]
fn a_partial_parse_leaves_no_stale_fields() {
    let mut head = Head::default();
    assert_eq!(
        parse(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", &mut head),
        Ok(Parsed::Complete)
    );
    assert_eq!(parse(b"GET / HT", &mut head), Ok(Parsed::Partial));
    assert!(head.headers.is_empty());
    assert_eq!(head.body, None);
    assert_eq!(head.version, None);
}

#[test]
fn more_fields_than_the_stack_holds_are_parsed_when_the_limit_allows() {
    let mut buf = b"GET / HTTP/1.1\r\nHost: h\r\n".to_vec();
    for i in 0..300 {
        buf.extend_from_slice(format!("X-{i}: {i}\r\n").as_bytes());
    }
    buf.extend_from_slice(b"\r\n");
    let limits = Limits {
        max_headers: 301,
        ..Limits::default()
    };
    let mut head = Head::default();
    assert_eq!(parse_head(&buf, &limits, &mut head), Ok(Parsed::Complete));
    assert_eq!(head.headers.len(), 301);
    let (name, value) = head.headers[300];
    assert_eq!(
        (name.of(&buf), value.of(&buf)),
        (&b"X-299"[..], &b"299"[..])
    );
    let limits = Limits {
        max_headers: 300,
        ..Limits::default()
    };
    assert_eq!(
        parse_head(&buf, &limits, &mut head),
        Err(HttpError::HeadersTooLarge)
    );
}

#[test]
fn default_limits_refuse_a_long_request_line_with_414() {
    let mut buf = b"GET /".to_vec();
    buf.resize(9000, b'a');
    assert_eq!(
        parse(&buf, &mut Head::default()),
        Err(HttpError::RequestLineTooLong)
    );
    assert_eq!(HttpError::RequestLineTooLong.status(), 414);
}
