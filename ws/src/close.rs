//! Close codes (RFC 6455 §7.4) and the close frame's payload: a code and a UTF-8 reason.

/// The close codes the server itself sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseCode {
    /// 1000: the conversation ended.
    Normal,
    /// 1001: the server is stopping.
    GoingAway,
    /// 1002: the peer broke the protocol.
    ProtocolError,
    /// 1003: a kind of message the endpoint does not take.
    Unsupported,
    /// 1007: a text message (or close reason) that is not UTF-8, or a bad compressed stream.
    InvalidData,
    /// 1008: the application refused a message.
    PolicyViolation,
    /// 1009: a message larger than the limit.
    TooBig,
    /// 1011: the application failed.
    InternalError,
    /// Any other code, as given.
    Other(u16),
}

impl CloseCode {
    /// The number on the wire.
    pub fn number(self) -> u16 {
        match self {
            CloseCode::Normal => 1000,
            CloseCode::GoingAway => 1001,
            CloseCode::ProtocolError => 1002,
            CloseCode::Unsupported => 1003,
            CloseCode::InvalidData => 1007,
            CloseCode::PolicyViolation => 1008,
            CloseCode::TooBig => 1009,
            CloseCode::InternalError => 1011,
            CloseCode::Other(n) => n,
        }
    }
}

/// Whether a peer may send `code` in a close frame: the codes RFC 6455 defines for use on the
/// wire (1000-1003, 1007-1011), the ones IANA registered since (1012-1014: restart, try again
/// later, bad gateway), and the ranges for libraries and applications (3000-4999). 1004, 1005,
/// 1006 and 1015 are reserved and never sent; everything below 1000 and 1016-2999 is unassigned.
pub fn valid_on_the_wire(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// A received close frame's payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloseFrame {
    /// The code, or `None` for an empty payload (reported to the application as 1005).
    pub code: Option<u16>,
    /// The reason, UTF-8.
    pub reason: String,
}

/// Why a close payload is refused (the connection then fails with 1002 or 1007).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BadClose {
    /// One byte: a code needs two.
    Truncated,
    /// A code no peer may send.
    Code(u16),
    /// A reason that is not UTF-8.
    Reason,
}

impl BadClose {
    /// The code to fail the connection with.
    pub fn close_code(self) -> CloseCode {
        match self {
            BadClose::Truncated | BadClose::Code(_) => CloseCode::ProtocolError,
            BadClose::Reason => CloseCode::InvalidData,
        }
    }
}

/// Parses a close frame's (unmasked) payload.
pub fn parse(payload: &[u8]) -> Result<CloseFrame, BadClose> {
    match payload {
        [] => Ok(CloseFrame {
            code: None,
            reason: String::new(),
        }),
        [_] => Err(BadClose::Truncated),
        [hi, lo, reason @ ..] => {
            let code = u16::from_be_bytes([*hi, *lo]);
            if !valid_on_the_wire(code) {
                return Err(BadClose::Code(code));
            }
            let reason = std::str::from_utf8(reason).map_err(|_| BadClose::Reason)?;
            Ok(CloseFrame {
                code: Some(code),
                reason: reason.to_owned(),
            })
        }
    }
}

/// The payload of a close frame with `code` and `reason`, the reason cut (at a character
/// boundary) so that the payload fits a control frame's 125 bytes.
pub fn payload(code: CloseCode, reason: &str) -> Vec<u8> {
    let mut cut = reason.len().min(123);
    while !reason.is_char_boundary(cut) {
        cut -= 1;
    }
    let mut out = Vec::with_capacity(2 + cut);
    out.extend_from_slice(&code.number().to_be_bytes());
    out.extend_from_slice(&reason.as_bytes()[..cut]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_on_the_wire() {
        for ok in [
            1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 3000, 4999,
        ] {
            assert!(valid_on_the_wire(ok), "{ok}");
        }
        for bad in [
            0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
        ] {
            assert!(!valid_on_the_wire(bad), "{bad}");
        }
    }

    #[test]
    fn payloads_parse_or_say_why_not() {
        assert_eq!(parse(b"").map(|c| c.code), Ok(None));
        assert_eq!(parse(b"\x03"), Err(BadClose::Truncated));
        assert_eq!(parse(b"\x03\xe8bye").map(|c| c.reason), Ok("bye".into()));
        assert_eq!(parse(b"\x03\xed"), Err(BadClose::Code(1005)));
        assert_eq!(parse(b"\x03\xe8\xff"), Err(BadClose::Reason));
        assert_eq!(BadClose::Reason.close_code().number(), 1007);
    }

    #[test]
    fn a_long_reason_is_cut_at_a_character_boundary() {
        let reason = "é".repeat(100);
        let p = payload(CloseCode::GoingAway, &reason);
        assert!(p.len() <= 125);
        assert_eq!(&p[..2], &1001u16.to_be_bytes());
        assert!(std::str::from_utf8(&p[2..]).is_ok());
    }
}
