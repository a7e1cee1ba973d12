//! Percent-decoding of request paths into raw bytes (invalid escapes are kept as they are).

/// Appends the percent-decoded form of `input` to `out`.
pub fn percent_decode(input: &[u8], out: &mut Vec<u8>) {
    let _ = (input, out);
    todo!()
}
