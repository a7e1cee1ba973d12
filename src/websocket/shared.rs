//! One accepted WebSocket's state between the application (any thread) and the loop: the
//! inbox of received messages with its readiness flag, the outbox of encoded frames, and how
//! the conversation is closing.

use super::hub::{ConnId, Hub, MarkBatch};
use super::outbox::{Outbox, Taken};
use evserver_platform::notify::Notifier;
use evserver_ws::frame::OpCode;
use evserver_ws::{CloseCode, DeflateConfig, Writer};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// The longest frame header (a 64-bit length).
const MAX_HEADER: usize = 10;
/// The size of a control frame with `payload` bytes (cut to 125).
fn control_frame(payload: usize) -> usize {
    2 + payload.min(125)
}

/// A received data message.
pub enum Message {
    Text(String),
    Binary(Vec<u8>),
}

/// How the connection ended, as the application sees it.
#[derive(Clone, Debug)]
pub struct Closed {
    pub code: u16,
    pub reason: String,
}

struct Inner {
    inbox: VecDeque<Message>,
    /// The peer closed, the connection failed or went away: `receive` raises once the inbox
    /// is empty, `send` at once.
    /// Boxed: an open WebSocket (most of them, most of the time) keeps only the pointer.
    closed: Option<Box<Closed>>,
    /// The server's close frame is in the outbox (or sent): nothing may follow it.
    close_queued: bool,
    writer: Writer,
    outbox: Outbox,
    /// The connection is on the hub's list already.
    marked: bool,
}

/// Owned by the application's `WebSocket` object and by the loop's connection (an `Arc` in
/// each); see the module's contract for who does what.
pub struct WsShared {
    inner: Mutex<Inner>,
    /// Readable while a message or the close waits in the inbox.
    inbox_flag: Notifier,
    hub: Arc<Hub>,
    id: ConnId,
    /// Bytes in the connection's send queue, not yet taken by the kernel: written by the loop
    /// after each send, read by senders (a slightly stale figure only moves the limit a
    /// little).
    socket_backlog: AtomicUsize,
    /// `--websocket-max-queue`: a send finding more than this waiting fails the WebSocket.
    max_queue: usize,
    /// A send found the client this far behind: the loop drops the connection.
    overflowed: AtomicBool,
}

/// Why a frame could not be queued.
pub struct SendError(pub Closed);

impl WsShared {
    pub fn new(
        hub: Arc<Hub>,
        id: ConnId,
        deflate: Option<&DeflateConfig>,
        max_queue: usize,
    ) -> std::io::Result<WsShared> {
        Ok(WsShared {
            inner: Mutex::new(Inner {
                inbox: VecDeque::new(),
                closed: None,
                close_queued: false,
                writer: Writer::new(deflate),
                outbox: Outbox::default(),
                marked: false,
            }),
            inbox_flag: Notifier::new()?,
            hub,
            id,
            socket_backlog: AtomicUsize::new(0),
            max_queue,
            overflowed: AtomicBool::new(false),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while the lock was held left plain data behind: keep going with it.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The fd the application waits on.
    pub fn inbox_fd(&self) -> std::os::fd::RawFd {
        self.inbox_flag.fd()
    }

    /// Encodes with `f` into the outbox (`size` bytes or so) and marks the connection on the
    /// hub.
    fn queue(&self, inner: &mut Inner, size: usize, f: impl FnOnce(&mut Writer, &mut Vec<u8>)) {
        let Inner { writer, outbox, .. } = inner;
        outbox.encode(size, |buf| f(writer, buf));
        self.mark(inner);
    }

    fn mark(&self, inner: &mut Inner) {
        if !inner.marked {
            inner.marked = true;
            self.hub.mark(self.id);
        }
    }

    // --- the application's side -------------------------------------------------------

    /// Queues a text or binary message.
    pub fn send(&self, text: bool, data: &[u8]) -> Result<(), SendError> {
        let mut inner = self.lock_for_sending()?;
        self.queue_message(&mut inner, text, data);
        Ok(())
    }

    /// Encodes a message with this WebSocket's writer (compressing it if agreed) into the
    /// outbox.
    fn queue_message(&self, inner: &mut Inner, text: bool, data: &[u8]) {
        self.queue(inner, data.len() + MAX_HEADER, |w, out| {
            w.message(out, text, data)
        });
    }

    /// The state, if a message may be queued now: the WebSocket is open and its client not
    /// too far behind (else it fails, see `overflow`).
    fn lock_for_sending(&self) -> Result<MutexGuard<'_, Inner>, SendError> {
        let mut inner = self.lock();
        if let Some(closed) = &inner.closed {
            return Err(SendError(Closed::clone(closed)));
        }
        if inner.close_queued {
            return Err(SendError(Closed {
                code: 1000,
                reason: "the server closed this WebSocket".into(),
            }));
        }
        let backlog = inner.outbox.len() + self.socket_backlog.load(Ordering::Relaxed);
        if backlog > self.max_queue {
            return Err(SendError(self.overflow(&mut inner, backlog)));
        }
        Ok(inner)
    }

    /// Queues the same message on each of `targets` that is open and not too far behind;
    /// answers how many took it. The frame is encoded once and shared by every WebSocket that
    /// does not compress; one that agreed to permessage-deflate gets its own, compressed.
    pub fn send_to_all(targets: &[Arc<WsShared>], text: bool, data: &[u8]) -> usize {
        let mut frame: Option<Arc<[u8]>> = None;
        let mut marks = MarkBatch::new();
        let mut sent = 0;
        for ws in targets {
            let Ok(mut inner) = ws.lock_for_sending() else {
                continue;
            };
            if inner.writer.compresses() {
                ws.queue_message(&mut inner, text, data);
            } else {
                let frame = frame.get_or_insert_with(|| {
                    let mut buf = Vec::with_capacity(data.len() + MAX_HEADER);
                    Writer::new(None).message(&mut buf, text, data);
                    Arc::from(buf)
                });
                inner.outbox.push_shared(frame.clone());
                if !std::mem::replace(&mut inner.marked, true) {
                    marks.mark(&ws.hub, ws.id);
                }
            }
            sent += 1;
        }
        sent
    }

    /// The client stopped reading: `backlog` bytes wait for it, past `--websocket-max-queue`.
    /// Its WebSocket ends (what waits is dropped, the conversation wakes and its next
    /// `receive` raises) and the loop drops the connection; bounded memory over a client that
    /// would never catch up.
    #[cold]
    fn overflow(&self, inner: &mut Inner, backlog: usize) -> Closed {
        let closed = Closed {
            code: 1006,
            reason: format!(
                "the client is not reading: {backlog} bytes wait for it (--websocket-max-queue)"
            ),
        };
        inner.closed = Some(Box::new(closed.clone()));
        inner.outbox.clear();
        self.overflowed.store(true, Ordering::Relaxed);
        self.inbox_flag.raise();
        self.mark(inner);
        closed
    }

    /// Bytes sent to this WebSocket that the client has not taken yet: in the outbox and in
    /// the connection's send queue.
    pub fn buffered(&self) -> usize {
        self.lock().outbox.len() + self.socket_backlog.load(Ordering::Relaxed)
    }

    /// Queues a ping.
    pub fn ping(&self, data: &[u8]) -> Result<(), SendError> {
        let mut inner = self.lock();
        if let Some(closed) = &inner.closed {
            return Err(SendError(Closed::clone(closed)));
        }
        if !inner.close_queued {
            self.queue(&mut inner, control_frame(data.len()), |w, out| {
                w.control(out, OpCode::Ping, data)
            });
        }
        Ok(())
    }

    /// Starts the closing handshake (once; later calls change nothing).
    pub fn close(&self, code: CloseCode, reason: &str) {
        let mut inner = self.lock();
        if !inner.close_queued && inner.closed.is_none() {
            inner.close_queued = true;
            self.queue(&mut inner, control_frame(2 + reason.len()), |w, out| {
                w.close(out, code, reason)
            });
        }
    }

    /// The next message, `Ok(None)` if none waits, or how the connection closed once every
    /// message before the close was taken.
    pub fn receive(&self) -> Result<Option<Message>, Closed> {
        let mut inner = self.lock();
        let message = inner.inbox.pop_front();
        if inner.inbox.is_empty() && inner.closed.is_none() {
            self.inbox_flag.lower();
        }
        match (message, &inner.closed) {
            (Some(m), _) => Ok(Some(m)),
            (None, Some(closed)) => Err(Closed::clone(closed)),
            (None, None) => Ok(None),
        }
    }

    /// Whether the conversation is over for sending: the peer closed, the connection failed,
    /// or the server's close frame is queued.
    pub fn is_closed(&self) -> bool {
        let inner = self.lock();
        inner.closed.is_some() || inner.close_queued
    }

    // --- the loop's side ---------------------------------------------------------------

    /// A message arrived.
    pub fn deliver(&self, message: Message) {
        let mut inner = self.lock();
        if inner.inbox.is_empty() {
            self.inbox_flag.raise();
        }
        inner.inbox.push_back(message);
    }

    /// The peer closed (or the connection failed or broke): wakes the application. Returns
    /// whether the server still has to answer with its own close frame.
    pub fn closed_by_peer(&self, closed: Closed) -> bool {
        let mut inner = self.lock();
        if inner.closed.is_none() {
            inner.closed = Some(Box::new(closed));
        }
        self.inbox_flag.raise();
        !inner.close_queued
    }

    /// Moves the outbox's frames to `out`, then a close frame unless one was queued already
    /// (the conversation ended; its driver writes to the connection itself).
    pub fn close_into(&self, code: CloseCode, reason: &str, out: &mut Vec<u8>) {
        let mut inner = self.lock();
        inner.marked = false;
        for frames in inner.outbox.take() {
            out.extend_from_slice(frames.bytes());
        }
        if !std::mem::replace(&mut inner.close_queued, true) {
            inner.writer.close(out, code, reason);
        }
    }

    /// Queues a close frame in the outbox unless one is queued already: the answer to the
    /// peer's close, or the loop failing the connection.
    pub fn answer_close(&self, code: CloseCode, reason: &str) {
        let mut inner = self.lock();
        if !std::mem::replace(&mut inner.close_queued, true) {
            self.queue(&mut inner, control_frame(2 + reason.len()), |w, out| {
                w.close(out, code, reason)
            });
        }
    }

    /// Answers a ping (the loop does, at once, ahead of nothing else queued by the loop).
    pub fn pong(&self, payload: &[u8]) {
        let mut inner = self.lock();
        if !inner.close_queued {
            self.queue(&mut inner, control_frame(payload.len()), |w, out| {
                w.control(out, OpCode::Pong, payload)
            });
        }
    }

    /// Takes the outbox's frames, in order.
    pub fn take_outbox(&self) -> Taken {
        let mut inner = self.lock();
        inner.marked = false;
        inner.outbox.take()
    }

    /// The loop's send queue for this connection holds `unsent` bytes.
    pub fn note_socket_backlog(&self, unsent: usize) {
        self.socket_backlog.store(unsent, Ordering::Relaxed);
    }

    /// A send found the client past `--websocket-max-queue`: drop the connection.
    pub fn overflowed(&self) -> bool {
        self.overflowed.load(Ordering::Relaxed)
    }

    /// Whether the server's close frame was queued.
    pub fn close_queued(&self) -> bool {
        self.lock().close_queued
    }
}
