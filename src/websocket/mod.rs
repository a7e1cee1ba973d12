//! WebSocket for WSGI applications: what an application holds (`environ['evserver.websocket']`
//! and the WebSocket its `accept()` returns) and the state those objects share with the
//! worker's loop. The codec is the `evserver-ws` crate; the loop's side of a connection that
//! switched to WebSocket is `worker::websocket`.
//!
//! # The contract
//!
//! - The loop alone reads the socket: it decodes frames, answers pings, and delivers whole
//!   messages into the WebSocket's inbox, raising its inbox flag (an fd the application can
//!   wait on with `x-wsgiorg.fdevent.readable`).
//! - Any thread of the worker may send: frames are encoded into the WebSocket's outbox and the
//!   connection is marked on the worker's [`hub::Hub`], whose wake fd the loop polls; the loop
//!   moves outboxes to the socket whenever no pool thread holds the connection.
//! - Sharing: [`shared::WsShared`] is behind one mutex, taken for a few instructions by the
//!   application's threads and the loop; no Python object is touched under it.

pub mod hub;
pub mod outbox;
pub mod py;
pub mod shared;

/// What a worker's WebSockets are configured with (`--websocket-*`).
#[derive(Clone, Copy, Debug)]
pub struct WsSettings {
    /// The largest message taken, in bytes (a larger one closes with 1009).
    pub max_message: usize,
    /// `--websocket-max-queue`: bytes that may wait for a client before a send fails it.
    pub max_queue: usize,
    /// permessage-deflate may be agreed to.
    pub compression: bool,
    /// `--websocket-ping`: a WebSocket silent this long gets a ping, and is closed if still
    /// silent as long again (`None`: never).
    pub ping: Option<std::time::Duration>,
}
