//! Frame headers (RFC 6455 §5.2): decoding a client's, encoding the server's, and masking.

/// A frame's opcode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpCode {
    Continuation,
    Text,
    Binary,
    Close,
    Ping,
    Pong,
}

impl OpCode {
    /// The opcode a 4-bit number names; `None` for the reserved ones.
    pub fn from_bits(bits: u8) -> Option<OpCode> {
        Some(match bits {
            0x0 => OpCode::Continuation,
            0x1 => OpCode::Text,
            0x2 => OpCode::Binary,
            0x8 => OpCode::Close,
            0x9 => OpCode::Ping,
            0xA => OpCode::Pong,
            _ => return None,
        })
    }

    /// The 4-bit number.
    pub fn bits(self) -> u8 {
        match self {
            OpCode::Continuation => 0x0,
            OpCode::Text => 0x1,
            OpCode::Binary => 0x2,
            OpCode::Close => 0x8,
            OpCode::Ping => 0x9,
            OpCode::Pong => 0xA,
        }
    }

    /// Close, ping and pong: at most 125 bytes, never fragmented.
    pub fn is_control(self) -> bool {
        matches!(self, OpCode::Close | OpCode::Ping | OpCode::Pong)
    }
}

/// A decoded frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    pub fin: bool,
    /// RSV1: on the first frame of a message, "compressed" under permessage-deflate.
    pub rsv1: bool,
    pub opcode: OpCode,
    /// The masking key (every client frame has one).
    pub mask: Option<[u8; 4]>,
    pub len: u64,
}

/// Why a frame header is refused (the connection fails with 1002, or 1009 for a length).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BadHeader {
    /// RSV2 or RSV3 set: no extension negotiated them.
    ReservedBits,
    /// An opcode RFC 6455 reserves.
    ReservedOpcode(u8),
    /// A control frame over 125 bytes or not final.
    BadControl,
    /// A 64-bit length with its most significant bit set (RFC 6455 §5.2: it must be 0).
    BadLength,
}

/// Decodes the frame header at the start of `buf`: `Ok(None)` if more bytes are needed, else
/// the header and its length in bytes.
pub fn decode_header(buf: &[u8]) -> Result<Option<(FrameHeader, usize)>, BadHeader> {
    let [b0, b1, rest @ ..] = buf else {
        return Ok(None);
    };
    if b0 & 0x30 != 0 {
        return Err(BadHeader::ReservedBits);
    }
    let bits = b0 & 0x0F;
    let opcode = OpCode::from_bits(bits).ok_or(BadHeader::ReservedOpcode(bits))?;
    let fin = b0 & 0x80 != 0;
    let masked = b1 & 0x80 != 0;
    let (len, used) = match b1 & 0x7F {
        126 => match rest {
            [a, b, ..] => (u64::from(u16::from_be_bytes([*a, *b])), 2),
            _ => return Ok(None),
        },
        127 => match rest.get(..8) {
            Some(bytes) => {
                let mut be = [0u8; 8];
                be.copy_from_slice(bytes);
                let len = u64::from_be_bytes(be);
                if len >> 63 != 0 {
                    return Err(BadHeader::BadLength);
                }
                (len, 8)
            }
            None => return Ok(None),
        },
        n => (u64::from(n), 0),
    };
    if opcode.is_control() && (len > 125 || !fin) {
        return Err(BadHeader::BadControl);
    }
    let mut size = 2 + used;
    let mask = if masked {
        let Some(key) = rest.get(used..used + 4) else {
            return Ok(None);
        };
        size += 4;
        Some([key[0], key[1], key[2], key[3]])
    } else {
        None
    };
    let header = FrameHeader {
        fin,
        rsv1: b0 & 0x40 != 0,
        opcode,
        mask,
        len,
    };
    Ok(Some((header, size)))
}

/// Appends the header of an unmasked server frame.
pub fn encode_header(out: &mut Vec<u8>, fin: bool, rsv1: bool, opcode: OpCode, len: usize) {
    let b0 = (u8::from(fin) << 7) | (u8::from(rsv1) << 6) | opcode.bits();
    out.push(b0);
    match len {
        0..=125 => out.push(len as u8),
        126..=0xFFFF => {
            out.push(126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out.push(127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
}

/// Unmasks (or masks) `data` in place, `offset` bytes into the frame's payload.
pub fn apply_mask(data: &mut [u8], key: [u8; 4], offset: u64) {
    let shift = (offset % 4) as usize;
    let rotated = [
        key[shift],
        key[(shift + 1) % 4],
        key[(shift + 2) % 4],
        key[(shift + 3) % 4],
    ];
    let word = u32::from_ne_bytes(rotated);
    let mut chunks = data.chunks_exact_mut(4);
    for chunk in &mut chunks {
        let v = u32::from_ne_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]) ^ word;
        chunk.copy_from_slice(&v.to_ne_bytes());
    }
    for (i, byte) in chunks.into_remainder().iter_mut().enumerate() {
        *byte ^= rotated[i];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_6455_examples() {
        // §5.7: a single-frame masked text message "Hello".
        let frame = [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        let (h, size) = decode_header(&frame).unwrap().unwrap();
        assert_eq!((h.fin, h.opcode, h.len, size), (true, OpCode::Text, 5, 6));
        let mut payload = frame[size..].to_vec();
        apply_mask(&mut payload, h.mask.unwrap(), 0);
        assert_eq!(payload, b"Hello");
        // 256 bytes binary, unmasked: 16-bit length.
        let mut out = Vec::new();
        encode_header(&mut out, true, false, OpCode::Binary, 256);
        assert_eq!(out, [0x82, 0x7E, 0x01, 0x00]);
        out.clear();
        encode_header(&mut out, true, false, OpCode::Binary, 65536);
        assert_eq!(out, [0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0]);
    }

    #[test]
    fn partial_headers_need_more() {
        let frame = [0x82, 0xFF, 0, 0, 0, 0, 0, 1, 0, 0, 1, 2, 3, 4];
        for cut in 0..frame.len() {
            assert_eq!(decode_header(&frame[..cut]), Ok(None), "{cut}");
        }
        let (h, size) = decode_header(&frame).unwrap().unwrap();
        assert_eq!((h.len, size, h.mask), (65536, 14, Some([1, 2, 3, 4])));
    }

    #[test]
    fn refused_headers() {
        assert_eq!(decode_header(&[0xA1, 0x80]), Err(BadHeader::ReservedBits));
        assert_eq!(
            decode_header(&[0x83, 0x80]),
            Err(BadHeader::ReservedOpcode(3))
        );
        assert_eq!(
            decode_header(&[0x89, 0xFE, 0, 126]),
            Err(BadHeader::BadControl)
        );
        assert_eq!(decode_header(&[0x09, 0x80]), Err(BadHeader::BadControl));
        let huge = [0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(decode_header(&huge), Err(BadHeader::BadLength));
    }

    #[test]
    fn masking_from_any_offset_matches_masking_from_the_start() {
        let key = [0x11, 0x22, 0x33, 0x44];
        let data: Vec<u8> = (0..=255).collect();
        let mut whole = data.clone();
        apply_mask(&mut whole, key, 0);
        for split in 0..data.len() {
            let mut parts = data.clone();
            let (a, b) = parts.split_at_mut(split);
            apply_mask(a, key, 0);
            apply_mask(b, key, split as u64);
            assert_eq!(parts, whole, "{split}");
        }
    }
}
