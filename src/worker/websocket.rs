//! The loop's side of a connection that switched to WebSocket: received bytes go through the
//! codec's reader into the WebSocket's inbox (pings answered, the peer's close answered, a
//! broken frame failing the connection with its close code), and outboxes move to the socket
//! whenever no pool thread holds the connection.

use super::conn::{Conn, State};
use super::op::Op;
use super::Worker;
use crate::log::Log;
use crate::websocket::hub::ConnId;
use crate::websocket::py::WebSocketRequest;
use crate::websocket::shared::{Closed, Message, WsShared};
use evserver_http::encode::write_error_response_with;
use evserver_http::Version;
use evserver_platform::{Completion, Interest};
use evserver_ws::{handshake, CloseCode, Incoming, Reader};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A connection's WebSocket, as the loop keeps it.
pub struct WsConn {
    shared: Arc<WsShared>,
    reader: Reader,
    /// Received bytes the reader has not consumed (a frame header cut short).
    pending: Vec<u8>,
    /// The peer closed or broke the protocol: nothing more is read.
    done_reading: bool,
    /// When the peer last sent anything (`--websocket-ping` counts silence from here).
    last_heard: Instant,
    /// A keep-alive ping went out at this time and nothing came since.
    ping_sent: Option<Instant>,
}

impl WsConn {
    /// The loop's send queue holds `unsent` bytes for this WebSocket (what senders count
    /// against `--websocket-max-queue`).
    pub fn note_socket_backlog(&self, unsent: usize) {
        self.shared.note_socket_backlog(unsent);
    }

    /// The connection ends: the application's next `receive`/`send` raises, and a wait on the
    /// WebSocket wakes.
    pub fn connection_lost(&self) {
        self.shared.closed_by_peer(Closed {
            code: 1006,
            reason: "the connection was lost".into(),
        });
    }

    /// Decodes received bytes into the WebSocket's inbox: messages delivered, pings and the
    /// peer's close answered (in the outbox), a broken frame failing the connection.
    pub fn receive(&mut self, data: &[u8], log: &Log) {
        if self.done_reading {
            return;
        }
        self.pending.extend_from_slice(data);
        let mut at = 0;
        loop {
            match self.reader.read(&self.pending[at..]) {
                Ok((used, event)) => {
                    at += used;
                    match event {
                        None => break,
                        Some(event) => self.on_event(event),
                    }
                    if self.done_reading {
                        break;
                    }
                }
                Err(e) => {
                    log.debug(&format!("failing a WebSocket: {}", e.reason()));
                    self.shared.answer_close(e.close_code(), e.reason());
                    self.shared.closed_by_peer(Closed {
                        code: e.close_code().number(),
                        reason: e.reason().into(),
                    });
                    self.done_reading = true;
                    break;
                }
            }
        }
        if self.done_reading {
            self.pending = Vec::new();
        } else {
            self.pending.drain(..at);
        }
    }

    fn on_event(&mut self, event: Incoming) {
        match event {
            Incoming::Text(t) => self.shared.deliver(Message::Text(t)),
            Incoming::Binary(b) => self.shared.deliver(Message::Binary(b)),
            Incoming::Ping(p) => self.shared.pong(&p),
            Incoming::Pong(_) => {}
            Incoming::Close(frame) => {
                let echo = frame.code.map_or(CloseCode::Normal, CloseCode::Other);
                self.shared.answer_close(echo, "");
                self.shared.closed_by_peer(Closed {
                    code: frame.code.unwrap_or(1005),
                    reason: frame.reason,
                });
                self.done_reading = true;
            }
        }
    }
}

/// Payload of the server's keep-alive pings.
const KEEPALIVE_PING: &[u8] = b"evserver";

impl WsConn {
    /// The peer sent something at `now`: it is alive.
    pub fn heard(&mut self, now: Instant) {
        self.last_heard = now;
        self.ping_sent = None;
    }

    /// `--websocket-ping`: pings a WebSocket silent for `interval`; fails one that stayed
    /// silent for `interval` after its ping. Returns whether frames were queued.
    fn keep_alive(&mut self, now: Instant, interval: Duration, log: &Log) -> bool {
        if self.done_reading || self.shared.is_closed() {
            return false;
        }
        match self.ping_sent {
            Some(sent) if now.saturating_duration_since(sent) >= interval => {
                log.debug("closing a WebSocket that stopped answering pings");
                self.shared
                    .answer_close(CloseCode::InternalError, "keepalive ping timeout");
                self.shared.closed_by_peer(Closed {
                    code: 1006,
                    reason: "the peer stopped answering pings".into(),
                });
                self.done_reading = true;
                true
            }
            None if now.saturating_duration_since(self.last_heard) >= interval => {
                self.ping_sent = Some(now);
                self.shared.ping(KEEPALIVE_PING).is_ok()
            }
            _ => false,
        }
    }
}

impl Worker {
    /// From the sweep's pass over the connections: `--websocket-ping` (pings `conn`'s
    /// WebSocket if it is silent, closes it if its pongs stopped), and the receive buffer and
    /// empty send queue of an idle WebSocket given back (thousands of them wait most of their
    /// lives).
    pub(super) fn ws_sweep(&mut self, slot: u32, conn: &mut Conn) {
        let Some(ws) = conn.ws.as_mut() else {
            return;
        };
        let queued = self
            .settings
            .websocket
            .ping
            .is_some_and(|interval| ws.keep_alive(self.now, interval, &self.log));
        if queued {
            return self.ws_flush(slot, conn);
        }
        if ws.pending.is_empty() {
            ws.pending = Vec::new();
        }
        if !conn.sending {
            conn.out.release_memory();
        }
    }

    /// The WebSocket upgrade the current request asks for: `Ok(None)` for an ordinary request.
    /// A bad upgrade is answered (400, or 426 naming the version spoken) and gives `Err`.
    pub(super) fn ws_upgrade(
        &mut self,
        slot: u32,
        conn: &mut Conn,
    ) -> Result<Option<WebSocketRequest>, ()> {
        let (head, bytes) = conn.framer.head();
        let headers = head.headers.iter().map(|(n, v)| (n.of(bytes), v.of(bytes)));
        let checked = handshake::check(
            head.method.of(bytes),
            head.version == Some(Version::Http11),
            headers,
            self.settings.websocket.compression,
        );
        match checked {
            Ok(None) => Ok(None),
            Ok(Some(upgrade)) => Ok(Some(WebSocketRequest::new(
                upgrade,
                self.ws_hub.clone(),
                (slot, conn.generation),
                self.settings.websocket,
            ))),
            Err(e) => {
                let status = e.status();
                self.log.debug(&format!(
                    "refused a WebSocket upgrade: {status}: {}",
                    e.reason()
                ));
                let date = self.date.get();
                let extra: &[(&str, &str)] = if status == 426 {
                    &[("Sec-WebSocket-Version", "13")]
                } else {
                    &[]
                };
                conn.out.write_with(|buf| {
                    write_error_response_with(buf, status, e.reason(), date, extra)
                });
                conn.state = State::Done;
                Err(())
            }
        }
    }

    /// After each step of a response (inline, or back from a pool thread): takes over a
    /// WebSocket the application just accepted, with what the client sent after its
    /// handshake, and moves what its outbox holds to the socket.
    pub(super) fn ws_after_step(&mut self, slot: u32, conn: &mut Conn) {
        if conn.ws.is_none() {
            let State::App(running) = &mut conn.state else {
                return;
            };
            let Some(takeover) = running.response.take_upgrade() else {
                return;
            };
            conn.ws = Some(Box::new(WsConn {
                reader: Reader::new(takeover.max_message, takeover.deflate.as_ref()),
                shared: takeover.shared,
                pending: conn.framer.switch_protocols(),
                done_reading: false,
                last_heard: self.now,
                ping_sent: None,
            }));
            conn.deadline = None;
            if let Some(ws) = conn.ws.as_mut() {
                ws.receive(&[], &self.log);
            }
        }
        self.ws_flush(slot, conn);
    }

    /// Moves the WebSocket's outbox to the socket, unless a pool thread holds the connection
    /// (it is flushed when the job comes back).
    pub(super) fn ws_flush(&mut self, slot: u32, conn: &mut Conn) {
        let Some(ws) = conn.ws.as_ref() else {
            return;
        };
        if !matches!(conn.state, State::App(_)) {
            return;
        }
        if ws.shared.overflowed() {
            return self.drop_overflowed(conn);
        }
        for frames in ws.shared.take_outbox() {
            conn.out.push_frames(frames);
        }
        self.start_send(slot, conn);
        if let Some(ws) = conn.ws.as_ref() {
            ws.note_socket_backlog(conn.out.unsent());
        }
    }

    /// A client past `--websocket-max-queue`: its connection is shut down, and what is in
    /// flight on it ends through the usual paths (the receive sees end of file, a send
    /// fails), which close it.
    #[cold]
    fn drop_overflowed(&mut self, conn: &mut Conn) {
        if !conn.eof {
            self.log.warning(&format!(
                "dropping a WebSocket client that stopped reading ({} bytes waiting for it)",
                conn.out.unsent()
            ));
            conn.eof = true;
            let _ = evserver_platform::sys::shutdown_both(conn.fd);
        }
    }

    /// The hub's wake fd is readable: flushes every WebSocket with frames waiting.
    pub(super) fn on_ws_wake(&mut self, c: Completion) {
        let mut dirty: Vec<ConnId> = std::mem::take(&mut self.ws_dirty);
        self.ws_hub.take(&mut dirty);
        if c.result != -libc::ECANCELED && !self.stop {
            self.arm_ws_wake();
        }
        for (slot, generation) in dirty.drain(..) {
            if let Some(mut conn) = self.slots.take_of(slot, generation) {
                self.ws_flush(slot, &mut conn);
                self.put_conn(slot, conn);
            }
        }
        self.ws_dirty = dirty;
    }

    pub(super) fn arm_ws_wake(&mut self) {
        let fd = self.ws_hub.wake_fd();
        self.driver
            .poll_fd(fd, Interest::Readable, None, Op::WsWake.token(0, 0));
    }
}
