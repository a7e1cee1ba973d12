//! The sending side of a WebSocket: the server's messages and control frames as bytes, one
//! frame per message, compressed when permessage-deflate was agreed.

use crate::close::{self, CloseCode};
use crate::deflate::{DeflateConfig, Deflater};
use crate::frame::{encode_header, OpCode};

/// Messages shorter than this go out uncompressed even with permessage-deflate (RFC 7692 lets
/// each message choose): deflate's few bytes of framing would outweigh any saving.
const COMPRESS_FROM: usize = 64;

/// Frames the server's messages.
pub struct Writer {
    deflater: Option<Deflater>,
    compressed: Vec<u8>,
}

impl Writer {
    pub fn new(deflate: Option<&DeflateConfig>) -> Writer {
        Writer {
            deflater: deflate.map(Deflater::new),
            compressed: Vec::new(),
        }
    }

    /// Appends a text (`text`) or binary message to `out`.
    pub fn message(&mut self, out: &mut Vec<u8>, text: bool, data: &[u8]) {
        let opcode = if text { OpCode::Text } else { OpCode::Binary };
        match self.deflater.as_mut() {
            Some(deflater) if data.len() >= COMPRESS_FROM => {
                self.compressed.clear();
                deflater.compress(data, &mut self.compressed);
                encode_header(out, true, true, opcode, self.compressed.len());
                out.extend_from_slice(&self.compressed);
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
