//! Byte classes of RFC 9110 (token, field value, comma lists) shared by the parser and the writer.

/// `tchar`: the bytes of a token (header names, methods, codings, extension names).
static TCHAR: [bool; 256] = {
    let mut map = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        map[b] = c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'!' | b'#'
                    | b'$'
                    | b'%'
                    | b'&'
                    | b'\''
                    | b'*'
                    | b'+'
                    | b'-'
                    | b'.'
                    | b'^'
                    | b'_'
                    | b'`'
                    | b'|'
                    | b'~'
            );
        b += 1;
    }
    map
};

#[inline]
pub(crate) fn is_tchar(b: u8) -> bool {
    TCHAR[b as usize]
}

/// A non-empty sequence of `tchar`.
pub(crate) fn is_token(bytes: &[u8]) -> bool {
    !bytes.is_empty() && bytes.iter().all(|&b| is_tchar(b))
}

/// Bytes allowed in a field value: HTAB, SP, visible ASCII, and obs-text (0x80-0xFF).
static FIELD_BYTE: [bool; 256] = {
    let mut map = [false; 256];
    let mut b = 0;
    while b < 256 {
        map[b] = b == b'\t' as usize || (b >= 0x20 && b != 0x7f);
        b += 1;
    }
    map
};

#[inline]
pub(crate) fn is_field_byte(b: u8) -> bool {
    FIELD_BYTE[b as usize]
}

#[inline]
pub(crate) fn is_ows(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// `bytes` without leading and trailing SP/HT, as the range it occupies.
pub(crate) fn trim_ows_range(bytes: &[u8]) -> (usize, usize) {
    let start = bytes
        .iter()
        .position(|&b| !is_ows(b))
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|&b| !is_ows(b))
        .map_or(start, |i| i + 1);
    (start, end)
}

pub(crate) fn trim_ows(bytes: &[u8]) -> &[u8] {
    let (start, end) = trim_ows_range(bytes);
    &bytes[start..end]
}

/// The elements of a comma-separated list, trimmed, empty elements included.
pub(crate) fn list_elements(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value.split(|&b| b == b',').map(trim_ows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_tchar_only() {
        assert!(is_token(b"Content-Type"));
        assert!(is_token(b"x!#$%&'*+-.^_`|~9"));
        assert!(!is_token(b""));
        assert!(!is_token(b"a b"));
        assert!(!is_token(b"a:b"));
        assert!(!is_token(b"a(b)"));
        assert!(!is_token(b"caf\xe9"));
    }

    #[test]
    fn field_bytes_exclude_controls_but_tab() {
        for b in 0..=255u8 {
            let expected = b == b'\t' || (0x20..=0x7e).contains(&b) || b >= 0x80;
            assert_eq!(is_field_byte(b), expected, "{b:#04x}");
        }
    }

    #[test]
    fn trimming_removes_only_spaces_and_tabs() {
        assert_eq!(trim_ows(b" \t a b \t"), b"a b");
        assert_eq!(trim_ows(b"  "), b"");
        assert_eq!(trim_ows_range(b"  "), (2, 2));
        assert_eq!(trim_ows(b"\x0bx"), b"\x0bx");
    }

    #[test]
    fn list_elements_are_split_and_trimmed() {
        let v: Vec<&[u8]> = list_elements(b"a, b ,,c").collect();
        assert_eq!(v, vec![&b"a"[..], b"b", b"", b"c"]);
    }
}
