//! The request, built once as bytes (and repeated for a pipelined batch) before the run.

use crate::target::Target;

/// A header line the user gave that is not `Name: value`.
#[derive(Debug)]
pub struct BadHeader(pub String);

/// Builds the request bytes. A Host header is added unless the user gave one;
/// Content-Length when there is a body; `Connection: close` with `close`.
pub fn build(
    target: &Target,
    method: &str,
    headers: &[String],
    body: &[u8],
    close: bool,
) -> Result<Vec<u8>, BadHeader> {
    if method.is_empty()
        || !method
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.!".contains(&b))
    {
        return Err(BadHeader(format!("bad method {method:?}")));
    }
    let mut out = Vec::with_capacity(128 + body.len());
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    let mut has_host = false;
    let mut has_length = false;
    for h in headers {
        let Some((name, value)) = h.split_once(':') else {
            return Err(BadHeader(format!("header {h:?} is not \"Name: value\"")));
        };
        let name = name.trim();
        if name.is_empty()
            || name.bytes().any(|b| b <= b' ' || b == 0x7f)
            || value.contains(['\r', '\n'])
        {
            return Err(BadHeader(format!("header {h:?} is not \"Name: value\"")));
        }
        has_host |= name.eq_ignore_ascii_case("host");
        has_length |= name.eq_ignore_ascii_case("content-length");
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.trim().as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if !has_host {
        out.extend_from_slice(b"Host: ");
        out.extend_from_slice(target.host.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if !has_length && (!body.is_empty() || matches!(method, "POST" | "PUT" | "PATCH")) {
        out.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
    }
    if close {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Target {
        Target::parse("http://127.0.0.1:8000/x?y").unwrap()
    }

    #[test]
    fn a_plain_get() {
        let r = build(&target(), "GET", &[], b"", false).unwrap();
        assert_eq!(r, b"GET /x?y HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n\r\n");
    }

    #[test]
    fn headers_body_and_close() {
        let r = build(
            &target(),
            "POST",
            &["Host: example".into(), "X-A:  1 ".into()],
            b"abc",
            true,
        )
        .unwrap();
        assert_eq!(
            r,
            b"POST /x?y HTTP/1.1\r\nHost: example\r\nX-A: 1\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc"
        );
    }

    #[test]
    fn bad_headers_and_methods_are_refused() {
        assert!(build(&target(), "GET", &["NoColon".into()], b"", false).is_err());
        assert!(build(&target(), "GET", &["A B: c".into()], b"", false).is_err());
        assert!(build(&target(), "G T", &[], b"", false).is_err());
    }
}
