//! The receiving side of a WebSocket: bytes in, whole messages and control frames out, or the
//! error (with its close code) that fails the connection.

use crate::close::{self, CloseCode, CloseFrame};
use crate::deflate::{DeflateConfig, InflateError, Inflater};
use crate::frame::{apply_mask, decode_header, BadHeader, FrameHeader, OpCode};
use crate::utf8::Utf8Check;

/// What the peer sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Incoming {
    Text(String),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(CloseFrame),
}

/// Why the connection fails; each maps to the close code the server sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadError {
    /// A frame RFC 6455 forbids (1002), with what was wrong.
    Protocol(&'static str),
    /// Text or a close reason that is not UTF-8, or a corrupt compressed message (1007).
    InvalidData(&'static str),
    /// A message larger than the limit (1009).
    TooBig,
}

impl ReadError {
    pub fn close_code(self) -> CloseCode {
        match self {
            ReadError::Protocol(_) => CloseCode::ProtocolError,
            ReadError::InvalidData(_) => CloseCode::InvalidData,
            ReadError::TooBig => CloseCode::TooBig,
        }
    }

    /// What was wrong, for the close reason and the log.
    pub fn reason(self) -> &'static str {
        match self {
            ReadError::Protocol(why) | ReadError::InvalidData(why) => why,
            ReadError::TooBig => "message too big",
        }
    }
}

impl From<BadHeader> for ReadError {
    fn from(bad: BadHeader) -> ReadError {
        ReadError::Protocol(match bad {
            BadHeader::ReservedBits => "reserved bits set",
            BadHeader::ReservedOpcode(_) => "reserved opcode",
            BadHeader::BadControl => "control frame fragmented or over 125 bytes",
            BadHeader::BadLength => "frame length out of range",
        })
    }
}

/// A data message being received.
struct Partial {
    text: bool,
    compressed: bool,
    data: Vec<u8>,
}

#[derive(Clone, Copy)]
enum State {
    Header,
    Payload { header: FrameHeader, received: u64 },
}

/// Decodes a client's frames into messages.
pub struct Reader {
    max_message: usize,
    /// Boxed: most connections never compress, and an idle one should stay small.
    inflater: Option<Box<Inflater>>,
    state: State,
    message: Option<Partial>,
    control: Vec<u8>,
    utf8: Utf8Check,
}

impl Reader {
    /// A reader taking messages of up to `max_message` bytes (after inflating), with
    /// permessage-deflate if it was agreed.
    pub fn new(max_message: usize, deflate: Option<&DeflateConfig>) -> Reader {
        Reader {
            max_message,
            inflater: deflate.map(|d| Box::new(Inflater::new(d))),
            state: State::Header,
            message: None,
            control: Vec::new(),
            utf8: Utf8Check::default(),
        }
    }

    /// Decodes from `buf`. Returns the bytes consumed and, if one is complete, the next thing
    /// the peer sent; with no event, every byte was consumed and more are needed. Call again
    /// with the rest after an event.
    pub fn read(&mut self, buf: &[u8]) -> Result<(usize, Option<Incoming>), ReadError> {
        let mut pos = 0;
        loop {
            match self.state {
                State::Header => {
                    let Some((header, size)) = decode_header(&buf[pos..])? else {
                        return Ok((pos, None));
                    };
                    self.begin_frame(&header)?;
                    pos += size;
                    self.state = State::Payload {
                        header,
                        received: 0,
                    };
                }
                State::Payload { header, received } => {
                    let n = (header.len - received).min((buf.len() - pos) as u64) as usize;
                    self.take_payload(&header, &buf[pos..pos + n], received)?;
                    pos += n;
                    let received = received + n as u64;
                    if received < header.len {
                        self.state = State::Payload { header, received };
                        return Ok((pos, None));
                    }
                    self.state = State::Header;
                    if let Some(event) = self.end_frame(&header)? {
                        return Ok((pos, Some(event)));
                    }
                }
            }
        }
    }

    /// Checks a frame header against what came before it.
    fn begin_frame(&mut self, h: &FrameHeader) -> Result<(), ReadError> {
        if h.mask.is_none() {
            return Err(ReadError::Protocol("client frame not masked"));
        }
        let starts_message = matches!(h.opcode, OpCode::Text | OpCode::Binary);
        if h.rsv1 && !(starts_message && self.inflater.is_some()) {
            return Err(ReadError::Protocol("RSV1 set without permessage-deflate"));
        }
        match h.opcode {
            OpCode::Continuation if self.message.is_none() => {
                Err(ReadError::Protocol("continuation with no message begun"))
            }
            OpCode::Text | OpCode::Binary if self.message.is_some() => {
                Err(ReadError::Protocol("new message before the last one ended"))
            }
            OpCode::Text | OpCode::Binary => {
                self.utf8.reset();
                self.message = Some(Partial {
                    text: h.opcode == OpCode::Text,
                    compressed: h.rsv1,
                    data: Vec::new(),
                });
                self.check_size(h.len)
            }
            OpCode::Continuation => self.check_size(h.len),
            _ => {
                self.control.clear();
                Ok(())
            }
        }
    }

    /// Refuses a frame that would take the message past the limit.
    fn check_size(&self, frame_len: u64) -> Result<(), ReadError> {
        let so_far = self.message.as_ref().map_or(0, |m| m.data.len()) as u64;
        if so_far.saturating_add(frame_len) > self.max_message as u64 {
            return Err(ReadError::TooBig);
        }
        Ok(())
    }

    /// Appends (unmasked) payload bytes; text is checked as it arrives.
    fn take_payload(
        &mut self,
        h: &FrameHeader,
        bytes: &[u8],
        offset: u64,
    ) -> Result<(), ReadError> {
        let key = h.mask.unwrap_or_default();
        if h.opcode.is_control() {
            let start = self.control.len();
            self.control.extend_from_slice(bytes);
            apply_mask(&mut self.control[start..], key, offset);
            return Ok(());
        }
        let Some(message) = self.message.as_mut() else {
            return Ok(());
        };
        let start = message.data.len();
        message.data.extend_from_slice(bytes);
        apply_mask(&mut message.data[start..], key, offset);
        if message.text && !message.compressed && !self.utf8.extend(&message.data) {
            return Err(ReadError::InvalidData("text message not UTF-8"));
        }
        Ok(())
    }

    /// A frame ended: a control frame, or the last frame of a message, is an event.
    fn end_frame(&mut self, h: &FrameHeader) -> Result<Option<Incoming>, ReadError> {
        match h.opcode {
            OpCode::Ping => return Ok(Some(Incoming::Ping(std::mem::take(&mut self.control)))),
            OpCode::Pong => return Ok(Some(Incoming::Pong(std::mem::take(&mut self.control)))),
            OpCode::Close => {
                return match close::parse(&self.control) {
                    Ok(frame) => Ok(Some(Incoming::Close(frame))),
                    Err(bad) if bad.close_code() == CloseCode::InvalidData => {
                        Err(ReadError::InvalidData("close reason not UTF-8"))
                    }
                    Err(_) => Err(ReadError::Protocol("invalid close code")),
                };
            }
            _ if !h.fin => return Ok(None),
            _ => {}
        }
        let Some(message) = self.message.take() else {
            return Ok(None);
        };
        let data = if message.compressed {
            let inflater = self.inflater.as_mut().ok_or(ReadError::Protocol("RSV1"))?;
            let mut inflated = Vec::new();
            match inflater.inflate(&message.data, &mut inflated, self.max_message) {
                Ok(()) => inflated,
                Err(InflateError::TooBig) => return Err(ReadError::TooBig),
                Err(InflateError::Corrupt) => {
                    return Err(ReadError::InvalidData("compressed message corrupt"))
                }
            }
        } else {
            message.data
        };
        if !message.text {
            return Ok(Some(Incoming::Binary(data)));
        }
        if !message.compressed && !self.utf8.finish(&data) {
            return Err(ReadError::InvalidData("text message not UTF-8"));
        }
        match String::from_utf8(data) {
            Ok(text) => Ok(Some(Incoming::Text(text))),
            Err(_) => Err(ReadError::InvalidData("text message not UTF-8")),
        }
    }
}
