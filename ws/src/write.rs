//! The sending side of a WebSocket: the server's messages and control frames as bytes, one
//! frame per message, compressed when permessage-deflate was agreed.

use crate::close::{self, CloseCode};
use crate::deflate::{DeflateConfig, Deflater};
use crate::frame::{encode_header, OpCode};

/// Messages shorter than this go out uncompressed even with permessage-deflate (RFC 7692 lets
/// each message choose): deflate's few bytes of framing would outweigh any saving.
const COMPRESS_FROM: usize = 64;

/// The compressor of a connection that agreed to permessage-deflate, and its output buffer.
struct Compressing {
    deflater: Deflater,
    compressed: Vec<u8>,
}

/// Frames the server's messages.
pub struct Writer {
    /// Boxed: most connections never compress, and an idle one should stay small.
    compressing: Option<Box<Compressing>>,
}

impl Writer {
    pub fn new(deflate: Option<&DeflateConfig>) -> Writer {
        Writer {
            compressing: deflate.map(|d| {
                Box::new(Compressing {
                    deflater: Deflater::new(d),
                    compressed: Vec::new(),
                })
            }),
        }
    }

    /// Whether messages may go out compressed (permessage-deflate was agreed): each one is
    /// then encoded by this writer, whose compressor carries its context from one to the next.
    pub fn compresses(&self) -> bool {
        self.compressing.is_some()
    }

    /// Appends a text (`text`) or binary message to `out`.
    pub fn message(&mut self, out: &mut Vec<u8>, text: bool, data: &[u8]) {
        let opcode = if text { OpCode::Text } else { OpCode::Binary };
        match self.compressing.as_deref_mut() {
            Some(Compressing {
                deflater,
                compressed,
            }) if data.len() >= COMPRESS_FROM => {
                compressed.clear();
                deflater.compress(data, compressed);
                encode_header(out, true, true, opcode, compressed.len());
                out.extend_from_slice(compressed);
            }
            _ => {
                encode_header(out, true, false, opcode, data.len());
                out.extend_from_slice(data);
            }
        }
    }

    /// Appends a ping or pong; the payload is cut to a control frame's 125 bytes.
    pub fn control(&mut self, out: &mut Vec<u8>, opcode: OpCode, payload: &[u8]) {
        let payload = &payload[..payload.len().min(125)];
        encode_header(out, true, false, opcode, payload.len());
        out.extend_from_slice(payload);
    }

    /// Appends a close frame with `code` and `reason` (cut to fit).
    pub fn close(&mut self, out: &mut Vec<u8>, code: CloseCode, reason: &str) {
        let payload = close::payload(code, reason);
        encode_header(out, true, false, OpCode::Close, payload.len());
        out.extend_from_slice(&payload);
    }
}
