//! What a published message carries so that any subscriber can time it: `evb:SEQ:NANOS;`
//! (the message's number and its send time in nanoseconds since the run's origin), found in
//! whatever the server wraps it in (a frame, an event's data line, a JSON answer).

/// A published message, as found in a subscriber's bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Marker {
    pub seq: u64,
    pub sent_ns: u64,
}

const PREFIX: &[u8] = b"evb:";
/// The longest marker: the prefix, two 20-digit numbers, `:` and `;`.
const LONGEST: usize = 4 + 20 + 1 + 20 + 1;

impl Marker {
    /// The message text: the marker, padded with `x` to `size` bytes (when longer).
    pub fn message(self, size: usize) -> String {
        let mut text = format!("evb:{}:{};", self.seq, self.sent_ns);
        if text.len() < size {
            text.push_str(&"x".repeat(size - text.len()));
        }
        text
    }
}

/// Finds markers in a byte stream cut anywhere (a marker split between two reads is found
/// once the second arrives).
#[derive(Default)]
pub struct Scanner {
    /// The end of the previous bytes, when it could start a marker.
    carry: Vec<u8>,
}

impl Scanner {
    pub fn scan(&mut self, data: &[u8], mut found: impl FnMut(Marker)) {
        if self.carry.is_empty() {
            let keep = scan_whole(data, &mut found);
            self.carry.extend_from_slice(&data[keep..]);
        } else {
            let mut joined = std::mem::take(&mut self.carry);
            joined.extend_from_slice(data);
            let keep = scan_whole(&joined, &mut found);
            self.carry.extend_from_slice(&joined[keep..]);
        }
    }
}

/// Reports every complete marker in `b`; returns where an unfinished one (or a piece of the
/// prefix) starts at the end, to keep for the next bytes (`b.len()`: nothing to keep).
fn scan_whole(b: &[u8], found: &mut impl FnMut(Marker)) -> usize {
    let mut at = 0;
    while let Some(i) = b[at..].windows(PREFIX.len()).position(|w| w == PREFIX) {
        let start = at + i;
        match parse(&b[start + PREFIX.len()..]) {
            Parsed::Marker(m, used) => {
                found(m);
                at = start + PREFIX.len() + used;
            }
            Parsed::Incomplete if b.len() - start < LONGEST => return start,
            Parsed::Incomplete | Parsed::Invalid => at = start + PREFIX.len(),
        }
    }
    // A prefix cut at the end ("ev", "evb").
    let tail = b.len().saturating_sub(PREFIX.len() - 1).max(at);
    (tail..b.len())
        .find(|&i| PREFIX.starts_with(&b[i..]))
        .unwrap_or(b.len())
}

enum Parsed {
    Marker(Marker, usize),
    Incomplete,
    Invalid,
}

/// `SEQ:NANOS;` at the start of `b`.
fn parse(b: &[u8]) -> Parsed {
    let number = |from: usize| -> Option<(u64, usize)> {
        let digits = b[from..].iter().take_while(|c| c.is_ascii_digit()).count();
        let text = std::str::from_utf8(&b[from..from + digits]).ok()?;
        Some((text.parse().ok()?, from + digits))
    };
    let Some((seq, colon)) = number(0) else {
        return if b.is_empty() {
            Parsed::Incomplete
        } else {
            Parsed::Invalid
        };
    };
    match b.get(colon) {
        None => return Parsed::Incomplete,
        Some(b':') => {}
        Some(_) => return Parsed::Invalid,
    }
    let Some((sent_ns, semicolon)) = number(colon + 1) else {
        return if b.len() == colon + 1 {
            Parsed::Incomplete
        } else {
            Parsed::Invalid
        };
    };
    match b.get(semicolon) {
        None => Parsed::Incomplete,
        Some(b';') => Parsed::Marker(Marker { seq, sent_ns }, semicolon + 1),
        Some(_) => Parsed::Invalid,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(pieces: &[&[u8]]) -> Vec<Marker> {
        let mut scanner = Scanner::default();
        let mut out = Vec::new();
        for p in pieces {
            scanner.scan(p, |m| out.push(m));
        }
        out
    }

    fn m(seq: u64, sent_ns: u64) -> Marker {
        Marker { seq, sent_ns }
    }

    #[test]
    fn messages_carry_their_marker_and_padding() {
        assert_eq!(m(3, 42).message(0), "evb:3:42;");
        assert_eq!(m(3, 42).message(12), "evb:3:42;xxx");
        assert_eq!(all(&[m(3, 42).message(64).as_bytes()]), vec![m(3, 42)]);
    }

    #[test]
    fn markers_are_found_whole_split_or_wrapped() {
        assert_eq!(
            all(&[b"{\"data\": \"evb:1:10;\"} evb:2:20;"]),
            vec![m(1, 10), m(2, 20)]
        );
        let text = b"data: evb:12345:678901;\n\n";
        for cut in 0..text.len() {
            assert_eq!(
                all(&[&text[..cut], &text[cut..]]),
                vec![m(12345, 678901)],
                "{cut}"
            );
        }
    }

    #[test]
    fn what_only_looks_like_a_marker_is_skipped() {
        assert_eq!(all(&[b"evb:x evb:1:y evb:1:2x evb:5:6;"]), vec![m(5, 6)]);
        assert_eq!(all(&[b"evb:99999999999999999999999:1;"]), vec![]);
    }
}
