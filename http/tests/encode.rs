//! The response encoder's output, byte for byte: heads for every framing choice, the server's
//! own headers, chunk framing, interim and error answers, and the refusal of bad headers.

use evserver_http::encode::{
    finish_head, parse_status, response_has_body, valid_header_name, valid_header_value,
    write_app_header, write_chunk, write_chunk_size, write_error_response,
    write_error_response_with, write_interim, write_server_head, write_status_line,
    write_switching_protocols, BodySize, Exchange, Framing, HeadEnd, HeadError, CHUNK_END,
    LAST_CHUNK,
};
use evserver_http::Version;

const DATE: &[u8] = b"Sun, 06 Nov 1994 08:49:37 GMT";

/// One head: the application's status and headers, the request's side and the body.
struct Case {
    name: &'static str,
    status: &'static str,
    headers: &'static [(&'static str, &'static str)],
    exchange: Exchange,
    body: BodySize,
    expect: &'static str,
    framing: Framing,
    keep_alive: bool,
}

const GET_11: Exchange = Exchange {
    version: Version::Http11,
    is_head: false,
    keep_alive: true,
};
const GET_10_KEEP: Exchange = Exchange {
    version: Version::Http10,
    is_head: false,
    keep_alive: true,
};
const GET_10: Exchange = Exchange {
    version: Version::Http10,
    is_head: false,
    keep_alive: false,
};
const HEAD_11: Exchange = Exchange {
    version: Version::Http11,
    is_head: true,
    keep_alive: true,
};

const CASES: &[Case] = &[
    Case {
        name: "a known length is stated",
        status: "200 OK",
        headers: &[("Content-Type", "text/plain")],
        exchange: GET_11,
        body: BodySize::Known(13),
        expect: "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\
                 Date: Sun, 06 Nov 1994 08:49:37 GMT\r\nServer: evserver\r\n\r\n",
        framing: Framing::Length { declared: 13 },
        keep_alive: true,
    },
    Case {
        name: "the application's Content-Length wins over a known length",
        status: "200 OK",
        headers: &[("Content-Length", "5")],
        exchange: GET_11,
        body: BodySize::Known(13),
        expect: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\
                 Date: Sun, 06 Nov 1994 08:49:37 GMT\r\nServer: evserver\r\n\r\n",
        framing: Framing::Length { declared: 5 },
        keep_alive: true,
    },
    Case {
        name: "a stream on HTTP/1.1 is chunked",
        status: "200 OK",
        headers: &[],
        exchange: GET_11,
        body: BodySize::Streamed,
        expect: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\
                 Date: Sun, 06 Nov 1994 08:49:37 GMT\r\nServer: evserver\r\n\r\n",
        framing: Framing::Chunked,
        keep_alive: true,
    },
    Case {
        name: "a stream on HTTP/1.0 ends with the connection",
        status: "200 OK",
        headers: &[],
        exchange: GET_10_KEEP,
        body: BodySize::Streamed,
        expect: "HTTP/1.1 200 OK\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\
                 Server: evserver\r\nConnection: close\r\n\r\n",
        framing: Framing::UntilClose,
        keep_alive: false,
    },
    Case {
        name: "HTTP/1.0 keep-alive is confirmed",
        status: "200 OK",
        headers: &[],
        exchange: GET_10_KEEP,
        body: BodySize::Known(2),
        expect: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\
                 Server: evserver\r\nConnection: keep-alive\r\n\r\n",
        framing: Framing::Length { declared: 2 },
        keep_alive: true,
    },
    Case {
        name: "HTTP/1.0 without keep-alive closes",
        status: "200 OK",
        headers: &[],
        exchange: GET_10,
        body: BodySize::Known(2),
        expect: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\
                 Server: evserver\r\nConnection: close\r\n\r\n",
        framing: Framing::Length { declared: 2 },
        keep_alive: false,
    },
    Case {
        name: "an iterable that ended before any body gives an empty body of known length",
        status: "200 OK",
        headers: &[],
        exchange: GET_11,
        body: BodySize::Ended,
        expect: "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\
                 Date: Sun, 06 Nov 1994 08:49:37 GMT\r\nServer: evserver\r\n\r\n",
        framing: Framing::Length { declared: 0 },
        keep_alive: true,
    },
    Case {
        name: "HEAD states the length GET would send, and carries no body",
        status: "200 OK",
        headers: &[],
        exchange: HEAD_11,
        body: BodySize::Known(13),
        expect: "HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\
                 Date: Sun, 06 Nov 1994 08:49:37 GMT\r\nServer: evserver\r\n\r\n",
        framing: Framing::NoBody,
        keep_alive: true,
    },
    Case {
        name: "HEAD of a stream: no framing header, no body",
        status: "200 OK",
        headers: &[],
        exchange: HEAD_11,
        body: BodySize::Streamed,
        expect:
            "HTTP/1.1 200 OK\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\nServer: evserver\r\n\r\n",
        framing: Framing::NoBody,
        keep_alive: true,
    },
    Case {
        name: "204 states no length",
        status: "204 No Content",
        headers: &[],
        exchange: GET_11,
        body: BodySize::Known(0),
        expect: "HTTP/1.1 204 No Content\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\
                 Server: evserver\r\n\r\n",
        framing: Framing::NoBody,
        keep_alive: true,
    },
    Case {
        name: "the application's Date, Server and Connection: close are honoured",
        status: "200 OK",
        headers: &[
            ("Date", "yesterday"),
            ("Server", "mine"),
            ("Connection", "keep-alive, close"),
        ],
        exchange: GET_11,
        body: BodySize::Known(1),
        expect: "HTTP/1.1 200 OK\r\nDate: yesterday\r\nServer: mine\r\nContent-Length: 1\r\n\
                 Connection: close\r\n\r\n",
        framing: Framing::Length { declared: 1 },
        keep_alive: false,
    },
    Case {
        name: "the application's Transfer-Encoding is dropped: the server frames the body",
        status: "200 OK",
        headers: &[("Transfer-Encoding", "chunked"), ("X-A", "caf\u{e9}")],
        exchange: GET_11,
        body: BodySize::Streamed,
        expect: "HTTP/1.1 200 OK\r\nX-A: caf\u{e9}\r\nTransfer-Encoding: chunked\r\n\
                 Date: Sun, 06 Nov 1994 08:49:37 GMT\r\nServer: evserver\r\n\r\n",
        framing: Framing::Chunked,
        keep_alive: true,
    },
];

/// Latin-1 bytes of a test string (every char below 256).
fn latin1(text: &str) -> Vec<u8> {
    text.chars().map(|c| c as u32 as u8).collect()
}

fn encode(case: &Case) -> Result<(Vec<u8>, HeadEnd), HeadError> {
    let mut out = Vec::new();
    let mut app = write_status_line(&mut out, &latin1(case.status))?;
    for (name, value) in case.headers {
        write_app_header(&mut out, &mut app, &latin1(name), &latin1(value))?;
    }
    let end = finish_head(&mut out, &app, case.exchange, case.body, DATE);
    Ok((out, end))
}

#[test]
fn heads_come_out_byte_for_byte() {
    for case in CASES {
        let (out, end) = encode(case).unwrap_or_else(|e| panic!("{}: {e:?}", case.name));
        assert_eq!(out, latin1(case.expect), "{}", case.name);
        assert_eq!(end.framing, case.framing, "{}", case.name);
        assert_eq!(end.keep_alive, case.keep_alive, "{}", case.name);
    }
}

#[test]
fn bad_heads_are_refused_and_write_nothing_of_the_bad_line() {
    let mut out = Vec::new();
    assert_eq!(write_status_line(&mut out, b"200"), Err(HeadError::Status));
    assert!(out.is_empty());
    let mut app = write_status_line(&mut out, b"200 OK").unwrap();
    let len = out.len();
    for (name, value, error) in [
        (&b"X-A\r\nX-B"[..], &b"1"[..], HeadError::HeaderName),
        (b"X A", b"1", HeadError::HeaderName),
        (b"X-A", b"a\r\nSet-Cookie: x", HeadError::HeaderValue),
        (b"X-A", b"\x7f", HeadError::HeaderValue),
        (b"Content-Length", b"-1", HeadError::ContentLength),
        (b"Content-Length", b"", HeadError::ContentLength),
    ] {
        assert_eq!(
            write_app_header(&mut out, &mut app, name, value),
            Err(error)
        );
        assert_eq!(out.len(), len, "{name:?}");
    }
    write_app_header(&mut out, &mut app, b"Content-Length", b"3").unwrap();
    assert_eq!(
        write_app_header(&mut out, &mut app, b"content-length", b"4"),
        Err(HeadError::ConflictingContentLength)
    );
    // The same length twice is one length.
    write_app_header(&mut out, &mut app, b"content-length", b"3").unwrap();
    assert_eq!(app.content_length, Some(3));
}

#[test]
fn status_is_three_digits_a_space_and_a_reason() {
    assert_eq!(parse_status(b"200 OK"), Some(200));
    assert_eq!(parse_status(b"404 Not Found"), Some(404));
    assert_eq!(parse_status(b"100 Continue"), Some(100));
    assert_eq!(parse_status(b"599 Whatever"), Some(599));
    assert_eq!(parse_status(b"204 "), Some(204));
    assert_eq!(parse_status(b"200 Caf\xe9\tok"), Some(200));
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
fn header_names_are_tokens_and_values_refuse_controls() {
    assert!(valid_header_name(b"X-Custom_Header.1"));
    for bad in [&b""[..], b"X Custom", b"X-A:", b"X-A\r\nX-B", b"caf\xe9"] {
        assert!(!valid_header_name(bad), "{bad:?}");
    }
    assert!(valid_header_value(b""));
    assert!(valid_header_value(b"a\tb"));
    assert!(valid_header_value(b"caf\xe9"));
    for bad in [&b"a\rb"[..], b"a\nb", b"a\0", b"\x01", b"\x1f", b"\x7f"] {
        assert!(!valid_header_value(bad), "{bad:?}");
    }
}

#[test]
fn head_1xx_204_and_304_carry_no_body() {
    assert!(response_has_body(false, 200));
    assert!(response_has_body(false, 205));
    assert!(!response_has_body(true, 200));
    assert!(!response_has_body(false, 100));
    assert!(!response_has_body(false, 199));
    assert!(!response_has_body(false, 204));
    assert!(!response_has_body(false, 304));
}

#[test]
fn chunks_are_framed_in_lowercase_hex() {
    let mut out = Vec::new();
    write_chunk_size(&mut out, 255);
    out.extend_from_slice(&[b'x'; 255]);
    out.extend_from_slice(CHUNK_END);
    write_chunk(&mut out, b"hello");
    write_chunk_size(&mut out, 4096);
    out.extend_from_slice(LAST_CHUNK);
    let mut expect = b"ff\r\n".to_vec();
    expect.extend_from_slice(&[b'x'; 255]);
    expect.extend_from_slice(b"\r\n5\r\nhello\r\n1000\r\n0\r\n\r\n");
    assert_eq!(out, expect);
}

#[test]
fn interim_responses_have_a_status_line_and_nothing_else() {
    let mut out = Vec::new();
    write_interim(&mut out, 100);
    assert_eq!(out, b"HTTP/1.1 100 Continue\r\n\r\n");
}

#[test]
fn error_responses_are_complete_and_close() {
    let mut out = b"previous".to_vec();
    write_error_response(&mut out, 400, "bare LF", DATE);
    let expected = "previousHTTP/1.1 400 Bad Request\r\n\
        Content-Type: text/plain; charset=utf-8\r\n\
        Content-Length: 21\r\n\
        Connection: close\r\n\
        Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n\
        Server: evserver\r\n\
        \r\n\
        Bad Request: bare LF\n";
    assert_eq!(String::from_utf8(out).unwrap(), expected);

    let mut out = Vec::new();
    write_error_response(&mut out, 413, "", b"D");
    let text = String::from_utf8(out).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert_eq!(body, "Content Too Large\n");
    assert!(head.contains(&format!("Content-Length: {}", body.len())));
}

#[test]
fn server_heads_name_their_type_length_and_caching() {
    let mut out = Vec::new();
    write_server_head(&mut out, 404, "text/plain", 10, true, None);
    assert_eq!(
        out,
        b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n\
          Cache-Control: no-store\r\nConnection: close\r\nServer: evserver\r\n\r\n"
    );
}

#[test]
fn switching_protocols_carries_the_upgrade_headers_and_no_body_framing() {
    let mut out = Vec::new();
    write_switching_protocols(
        &mut out,
        &[
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
        ],
        DATE,
    );
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\
         Date: Sun, 06 Nov 1994 08:49:37 GMT\r\nServer: evserver\r\n\r\n"
    );
}

#[test]
fn an_error_response_may_carry_extra_headers() {
    let mut out = Vec::new();
    write_error_response_with(
        &mut out,
        426,
        "this server speaks WebSocket version 13",
        DATE,
        &[("Sec-WebSocket-Version", "13")],
    );
    let text = String::from_utf8(out).unwrap();
    assert!(text.starts_with("HTTP/1.1 426 Upgrade Required\r\nSec-WebSocket-Version: 13\r\n"));
    assert!(text.contains("Connection: close\r\n"));
    assert!(text.ends_with("\r\n\r\nUpgrade Required: this server speaks WebSocket version 13\n"));
}
