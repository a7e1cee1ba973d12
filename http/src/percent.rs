//! Percent-decoding of request paths into raw bytes (invalid escapes are kept as they are).

/// Appends the percent-decoded form of `input` to `out`.
///
/// `%XX` with two hex digits (either case) becomes one byte; a `%` not followed by two hex
/// digits is kept literally. `+` is not a space in a path and is kept.
pub fn percent_decode(input: &[u8], out: &mut Vec<u8>) {
    out.reserve(input.len());
    let mut rest = input;
    while let Some(at) = memchr::memchr(b'%', rest) {
        out.extend_from_slice(&rest[..at]);
        match (
            rest.get(at + 1).and_then(hex),
            rest.get(at + 2).and_then(hex),
        ) {
            (Some(high), Some(low)) => {
                out.push(high << 4 | low);
                rest = &rest[at + 3..];
            }
            _ => {
                out.push(b'%');
                rest = &rest[at + 1..];
            }
        }
    }
    out.extend_from_slice(rest);
}

fn hex(b: &u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::percent_decode;

    fn decode(input: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        percent_decode(input, &mut out);
        out
    }

    #[test]
    fn escapes_become_bytes() {
        assert_eq!(decode(b"/a%20b"), b"/a b");
        assert_eq!(decode(b"%2f%2F"), b"//");
        assert_eq!(decode(b"%C3%A9"), b"\xc3\xa9");
        assert_eq!(decode(b"%00%ff"), b"\x00\xff");
        assert_eq!(decode(b"%41%42%43"), b"ABC");
    }

    #[test]
    fn invalid_escapes_are_kept() {
        assert_eq!(decode(b"100%"), b"100%");
        assert_eq!(decode(b"%4"), b"%4");
        assert_eq!(decode(b"%zz"), b"%zz");
        assert_eq!(decode(b"%%41"), b"%A");
        assert_eq!(decode(b"%4g"), b"%4g");
    }

    #[test]
    fn plus_and_plain_bytes_are_untouched() {
        assert_eq!(decode(b"/a+b/c"), b"/a+b/c");
        assert_eq!(decode(b""), b"");
    }

    #[test]
    fn output_is_appended() {
        let mut out = b"x".to_vec();
        percent_decode(b"%41", &mut out);
        assert_eq!(out, b"xA");
    }
}
