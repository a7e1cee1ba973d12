//! What the header fields mean for the exchange: Host, body framing (Content-Length and
//! Transfer-Encoding, refusing every ambiguity a smuggler could use), Connection and Expect.

use crate::target::valid_authority;
use crate::token::{is_token, list_elements};
use crate::{BodyFraming, HttpError, Limits, Span, Version};

/// The meaning of a head's header fields.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Semantics {
    /// `Content-Length: 0` gives `BodyFraming::None`.
    pub body: BodyFraming,
    pub keep_alive: bool,
    pub expect_continue: bool,
}

/// Transfer-Encoding codings seen so far, over every Transfer-Encoding field in order.
#[derive(Default)]
struct Codings {
    seen: bool,
    count: usize,
    chunked: usize,
    last_is_chunked: bool,
    malformed: bool,
}

#[derive(Default)]
struct Facts {
    hosts: usize,
    content_length: Option<u64>,
    codings: Codings,
    close: bool,
    keep_alive: bool,
    expect_continue: bool,
    expect_other: bool,
}

pub(crate) fn interpret(
    buf: &[u8],
    headers: &[(Span, Span)],
    version: Version,
    limits: &Limits,
) -> Result<Semantics, HttpError> {
    let mut facts = Facts::default();
    for (name, value) in headers {
        let (name, value) = (name.of(buf), value.of(buf));
        // Dispatch on length first: most fields are none of these.
        match name.len() {
            4 if name.eq_ignore_ascii_case(b"host") => {
                facts.hosts += 1;
                if !value.is_empty() && !valid_authority(value) {
                    return Err(HttpError::BadHost);
                }
            }
            14 if name.eq_ignore_ascii_case(b"content-length") => {
                add_content_length(&mut facts.content_length, value)?;
            }
            17 if name.eq_ignore_ascii_case(b"transfer-encoding") => {
                add_codings(&mut facts.codings, value);
            }
            10 if name.eq_ignore_ascii_case(b"connection") => {
                for option in list_elements(value) {
                    facts.close |= option.eq_ignore_ascii_case(b"close");
                    facts.keep_alive |= option.eq_ignore_ascii_case(b"keep-alive");
                }
            }
            6 if name.eq_ignore_ascii_case(b"expect") => add_expectations(&mut facts, value),
            _ => {}
        }
    }
    decide(&facts, version, limits)
}

fn decide(facts: &Facts, version: Version, limits: &Limits) -> Result<Semantics, HttpError> {
    if facts.hosts > 1 || (facts.hosts == 0 && version == Version::Http11) {
        return Err(HttpError::BadHost);
    }
    let body = match (facts.content_length, facts.codings.seen) {
        (Some(_), true) => return Err(HttpError::LengthAndTransferEncoding),
        (None, true) => chunked_framing(&facts.codings, version)?,
        (Some(n), false) if n > limits.max_body => return Err(HttpError::BodyTooLarge),
        (Some(0), false) | (None, false) => BodyFraming::None,
        (Some(n), false) => BodyFraming::Length(n),
    };
    if facts.expect_other {
        return Err(HttpError::UnsupportedExpectation);
    }
    Ok(Semantics {
        body,
        keep_alive: match version {
            Version::Http11 => !facts.close,
            Version::Http10 => facts.keep_alive && !facts.close,
        },
        expect_continue: facts.expect_continue && version == Version::Http11,
    })
}

/// Adds one Content-Length field (possibly a comma list) to what was seen before: every value
/// must be plain digits and all values must agree.
fn add_content_length(seen: &mut Option<u64>, value: &[u8]) -> Result<(), HttpError> {
    for element in list_elements(value) {
        let n = parse_decimal(element).ok_or(HttpError::InvalidContentLength)?;
        match *seen {
            Some(previous) if previous != n => return Err(HttpError::ConflictingContentLength),
            _ => *seen = Some(n),
        }
    }
    Ok(())
}

/// One or more ASCII digits, without sign or spaces, that fit in a u64.
pub(crate) fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &b| {
        if !b.is_ascii_digit() {
            return None;
        }
        n.checked_mul(10)?.checked_add(u64::from(b - b'0'))
    })
}

fn add_codings(codings: &mut Codings, value: &[u8]) {
    codings.seen = true;
    for coding in list_elements(value).filter(|c| !c.is_empty()) {
        codings.count += 1;
        codings.malformed |= !is_token(coding);
        codings.last_is_chunked = coding.eq_ignore_ascii_case(b"chunked");
        if codings.last_is_chunked {
            codings.chunked += 1;
        }
    }
}

/// Transfer-Encoding is only accepted on HTTP/1.1 as a single final `chunked`, optionally
/// preceded by codings we do not implement (refused with 501 rather than 400).
fn chunked_framing(codings: &Codings, version: Version) -> Result<BodyFraming, HttpError> {
    if version == Version::Http10
        || codings.malformed
        || codings.count == 0
        || codings.chunked != 1
        || !codings.last_is_chunked
    {
        return Err(HttpError::BadTransferEncoding);
    }
    if codings.count > 1 {
        return Err(HttpError::UnsupportedTransferEncoding);
    }
    Ok(BodyFraming::Chunked)
}

fn add_expectations(facts: &mut Facts, value: &[u8]) {
    let mut any = false;
    for expectation in list_elements(value).filter(|e| !e.is_empty()) {
        any = true;
        if expectation.eq_ignore_ascii_case(b"100-continue") {
            facts.expect_continue = true;
        } else {
            facts.expect_other = true;
        }
    }
    facts.expect_other |= !any;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_is_digits_only_and_never_overflows() {
        assert_eq!(parse_decimal(b"0"), Some(0));
        assert_eq!(parse_decimal(b"007"), Some(7));
        assert_eq!(parse_decimal(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_decimal(b"18446744073709551616"), None);
        for bad in [&b""[..], b"+1", b"-1", b"1 2", b"0x1", b" 1", b"1."] {
            assert_eq!(parse_decimal(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn identical_content_lengths_agree_and_different_ones_conflict() {
        let mut seen = None;
        assert_eq!(add_content_length(&mut seen, b"5, 5"), Ok(()));
        assert_eq!(add_content_length(&mut seen, b"5"), Ok(()));
        assert_eq!(seen, Some(5));
        assert_eq!(
            add_content_length(&mut seen, b"6"),
            Err(HttpError::ConflictingContentLength)
        );
        assert_eq!(
            add_content_length(&mut None, b"5,,5"),
            Err(HttpError::InvalidContentLength)
        );
    }
}
