//! The request target: origin-form, absolute-form (http/https) or `*` for OPTIONS, split into
//! path, query and authority spans.

use memchr::memchr;

use crate::{HttpError, Span};

/// The parts of a request target, as spans into the buffer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Target {
    pub path: Span,
    pub query: Span,
    pub authority: Span,
}

/// Splits the target occupying `buf[start..end]`.
///
/// For an absolute-form target with no path (`http://host` or `http://host?q`) the path span
/// is the last `/` of `//`, so it still reads `/`.
pub(crate) fn split_target(
    buf: &[u8],
    start: usize,
    end: usize,
    is_options: bool,
) -> Result<Target, HttpError> {
    let target = &buf[start..end];
    if memchr(b'#', target).is_some() {
        return Err(HttpError::InvalidTarget);
    }
    match target.first() {
        Some(b'/') => Ok(origin_form(buf, start, end, Span::default())),
        Some(b'*') if target.len() == 1 && is_options => Ok(Target {
            path: span(start, end),
            query: span(end, end),
            authority: Span::default(),
        }),
        _ => absolute_form(buf, start, end),
    }
}

fn origin_form(buf: &[u8], start: usize, end: usize, authority: Span) -> Target {
    match memchr(b'?', &buf[start..end]) {
        Some(q) => Target {
            path: span(start, start + q),
            query: span(start + q + 1, end),
            authority,
        },
        None => Target {
            path: span(start, end),
            query: span(end, end),
            authority,
        },
    }
}

fn absolute_form(buf: &[u8], start: usize, end: usize) -> Result<Target, HttpError> {
    let target = &buf[start..end];
    let scheme_len = [&b"http://"[..], b"https://"]
        .into_iter()
        .find(|scheme| {
            target.len() >= scheme.len() && target[..scheme.len()].eq_ignore_ascii_case(scheme)
        })
        .map(<[u8]>::len)
        .ok_or(HttpError::InvalidTarget)?;
    let auth_start = start + scheme_len;
    let auth_len = buf[auth_start..end]
        .iter()
        .position(|&b| b == b'/' || b == b'?')
        .unwrap_or(end - auth_start);
    let auth_end = auth_start + auth_len;
    if !valid_authority(&buf[auth_start..auth_end]) {
        return Err(HttpError::InvalidTarget);
    }
    let authority = span(auth_start, auth_end);
    if buf.get(auth_end) == Some(&b'/') && auth_end < end {
        return Ok(origin_form(buf, auth_end, end, authority));
    }
    // No path: borrow the '/' just before the authority, and keep any query.
    let mut parts = origin_form(buf, auth_end, end, authority);
    parts.path = span(auth_start - 1, auth_start);
    Ok(parts)
}

/// `host[:port]` as RFC 3986 has it: a reg-name or IPv4 address, or an IP literal in
/// brackets, then an optional port of digits only; non-empty, and no userinfo. Shared with
/// the Host header check.
pub(crate) fn valid_authority(authority: &[u8]) -> bool {
    let (host, port) = match authority.first() {
        Some(b'[') => match memchr::memchr(b']', authority) {
            Some(close) => {
                let literal = &authority[1..close];
                let ok = !literal.is_empty()
                    && literal
                        .iter()
                        .all(|&b| b.is_ascii_hexdigit() || matches!(b, b':' | b'.'));
                if !ok {
                    return false;
                }
                match &authority[close + 1..] {
                    [] => return true,
                    [b':', port @ ..] => (&authority[..0], port),
                    _ => return false,
                }
            }
            None => return false,
        },
        Some(_) => match memchr::memchr(b':', authority) {
            Some(colon) => (&authority[..colon], &authority[colon + 1..]),
            None => (authority, &authority[..0]),
        },
        None => return false,
    };
    port.iter().all(u8::is_ascii_digit) && host.iter().all(|&b| is_reg_name_byte(b))
}

/// A byte of a reg-name or IPv4 address: unreserved, sub-delims or a percent escape.
fn is_reg_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.'
                | b'_'
                | b'~'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b'%'
        )
}

fn span(start: usize, end: usize) -> Span {
    // The head was checked to fit in u32 before any span is built.
    Span {
        start: start as u32,
        end: end as u32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (path, query, authority)
    type Parts = (Vec<u8>, Vec<u8>, Vec<u8>);

    fn parts(target: &[u8], is_options: bool) -> Result<Parts, HttpError> {
        let t = split_target(target, 0, target.len(), is_options)?;
        Ok((
            t.path.of(target).to_vec(),
            t.query.of(target).to_vec(),
            t.authority.of(target).to_vec(),
        ))
    }

    fn ok(path: &str, query: &str, authority: &str) -> Result<Parts, HttpError> {
        Ok((path.into(), query.into(), authority.into()))
    }

    #[test]
    fn origin_form_splits_at_the_first_question_mark() {
        assert_eq!(parts(b"/a/b", false), ok("/a/b", "", ""));
        assert_eq!(parts(b"/a?x=1?y", false), ok("/a", "x=1?y", ""));
        assert_eq!(parts(b"/?", false), ok("/", "", ""));
    }

    #[test]
    fn absolute_form_moves_the_authority_out_of_the_path() {
        assert_eq!(parts(b"http://h:80/p?q", false), ok("/p", "q", "h:80"));
        assert_eq!(parts(b"HTTPS://h/", false), ok("/", "", "h"));
        assert_eq!(parts(b"http://h", false), ok("/", "", "h"));
        assert_eq!(parts(b"http://h?q=1", false), ok("/", "q=1", "h"));
        assert_eq!(
            parts(b"http://[::1]:8080/x", false),
            ok("/x", "", "[::1]:8080")
        );
    }

    #[test]
    fn star_is_only_for_options() {
        assert_eq!(parts(b"*", true), ok("*", "", ""));
        assert_eq!(parts(b"*", false), Err(HttpError::InvalidTarget));
        assert_eq!(parts(b"*x", true), Err(HttpError::InvalidTarget));
    }

    #[test]
    fn other_forms_are_refused() {
        for bad in [
            &b"a/b"[..],
            b"example.com:443",
            b"ftp://h/",
            b"http:///p",
            b"http://u@h/",
            b"/a#frag",
            b"http:/h",
        ] {
            assert_eq!(parts(bad, false), Err(HttpError::InvalidTarget), "{bad:?}");
        }
    }
}
