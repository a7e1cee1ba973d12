//! evserver's WebSocket codec (RFC 6455, with permessage-deflate from RFC 7692): no I/O, no
//! Python. The connection layer feeds received bytes to a [`Reader`] and gets whole messages,
//! control frames and typed errors (each naming the close code to fail with); it frames what
//! it sends with a [`Writer`]. [`handshake`] checks an upgrade request and writes the `101`.

pub mod close;
pub mod deflate;
pub mod frame;
pub mod handshake;
pub mod read;
pub mod utf8;
pub mod write;

pub use close::{CloseCode, CloseFrame};
pub use deflate::DeflateConfig;
pub use frame::{FrameHeader, OpCode};
pub use handshake::{HandshakeError, Upgrade};
pub use read::{Incoming, ReadError, Reader};
pub use write::Writer;
