//! UTF-8 checks on a text message as its fragments arrive, so that invalid text fails the
//! connection at the first bad byte rather than at the end of the message.

/// Validates a growing byte string: [`Utf8Check::extend`] checks what was appended since the
/// last call; a sequence cut at the end is allowed until [`Utf8Check::finish`].
#[derive(Debug, Default)]
pub struct Utf8Check {
    /// Bytes before this index are valid and complete.
    valid_up_to: usize,
}

impl Utf8Check {
    /// Starts over, for a new message.
    pub fn reset(&mut self) {
        self.valid_up_to = 0;
    }

    /// Checks `text[valid_up_to..]`: `false` as soon as a byte cannot be part of valid UTF-8.
    pub fn extend(&mut self, text: &[u8]) -> bool {
        match std::str::from_utf8(&text[self.valid_up_to..]) {
            Ok(_) => {
                self.valid_up_to = text.len();
                true
            }
            Err(e) => {
                self.valid_up_to += e.valid_up_to();
                // No error length: a sequence cut at the end, which more bytes may complete.
                e.error_len().is_none()
            }
        }
    }

    /// Whether the whole of `text` is valid, with no sequence left open.
    pub fn finish(&mut self, text: &[u8]) -> bool {
        self.extend(text) && self.valid_up_to == text.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_character_split_across_fragments_is_valid() {
        let text = "κόσμε".as_bytes();
        for split in 0..text.len() {
            let mut check = Utf8Check::default();
            assert!(check.extend(&text[..split]), "{split}");
            assert!(check.finish(text), "{split}");
        }
    }

    #[test]
    fn a_bad_byte_fails_at_once_and_an_open_sequence_at_the_end() {
        let mut check = Utf8Check::default();
        assert!(!check.extend(b"ok\xff more"));
        let mut check = Utf8Check::default();
        assert!(check.extend(b"ok\xce"));
        assert!(!check.finish(b"ok\xce"));
        // A surrogate (ED A0 80) is invalid from its second byte.
        let mut check = Utf8Check::default();
        assert!(!check.extend(b"\xed\xa0"));
    }
}
