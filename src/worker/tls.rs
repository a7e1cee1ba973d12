//! A connection's TLS (`--certfile`), the loop's side: received ciphertext is decrypted
//! before the framer or the WebSocket reader sees it, and everything the connection queues to
//! send is encrypted on its way out, one ciphertext send in flight at a time (kept still
//! until its completion). Files go through the copy path (no sendfile under TLS), and pool
//! threads leave the sending of a TLS connection to the loop.

use super::conn::{Conn, State};
use super::op::Op;
use super::Worker;
use evserver_platform::sys;
use evserver_tls::{ServerConfig, Session, SessionError};
use std::sync::Arc;

/// How much of a file one encrypted step reads (the next is read once it was sent).
pub(super) const FILE_STEP: usize = 256 * 1024;

pub struct TlsConn {
    session: Session,
    /// Ciphertext on its way, and how much of it the kernel took.
    wire: Vec<u8>,
    sent: usize,
}

impl TlsConn {
    pub fn new(config: &Arc<ServerConfig>) -> Result<Box<TlsConn>, SessionError> {
        Ok(Box::new(TlsConn {
            session: Session::new(config)?,
            wire: Vec::new(),
            sent: 0,
        }))
    }

    /// No ciphertext is waiting to go.
    pub fn idle(&self) -> bool {
        self.wire.is_empty()
    }
}

impl Worker {
    /// Ciphertext arrived (`len` bytes of provided buffer `id`): the plaintext goes to the
    /// WebSocket or the framer; a broken session ends the connection (the client reads
    /// whatever alert rustls has).
    pub(super) fn receive_tls(&mut self, slot: u32, conn: &mut Conn, id: u16, len: usize) {
        let Some(tls) = conn.tls.as_mut() else {
            return;
        };
        let mut plain = std::mem::take(&mut self.tls_plain);
        plain.clear();
        match tls.session.receive(self.driver.buffer(id, len), &mut plain) {
            Ok(peer_closed) => conn.eof |= peer_closed,
            Err(SessionError(why)) => {
                let peer = conn.peer().map(|a| a.to_string()).unwrap_or_default();
                self.log
                    .debug(&format!("closing a TLS connection from {peer}: {why}"));
                conn.eof = true;
            }
        }
        if !plain.is_empty() {
            if let Some(ws) = conn.ws.as_mut() {
                ws.heard(self.now);
                ws.receive(&plain, &self.log);
            } else {
                self.receive_plaintext(conn, &plain);
            }
        }
        self.tls_plain = plain;
        // Handshake messages, an alert, or what a WebSocket answered.
        if conn.ws.is_some() {
            self.ws_flush(slot, conn);
        } else {
            self.start_send(slot, conn);
        }
    }

    /// Encrypts what the connection's queue holds and sends the ciphertext, unless a send is
    /// on its way (its completion comes back here).
    pub(super) fn start_tls_send(&mut self, slot: u32, conn: &mut Conn) {
        let Some(tls) = conn.tls.as_mut() else {
            return;
        };
        conn.out.drain_to(|bytes| tls.session.send(bytes));
        if tls.wire.is_empty() {
            tls.sent = 0;
            tls.session.outgoing(&mut tls.wire);
        }
        if !tls.wire.is_empty() {
            self.issue_tls_send(slot, conn);
        }
    }

    fn issue_tls_send(&mut self, slot: u32, conn: &mut Conn) {
        let Some(tls) = conn.tls.as_ref() else {
            return;
        };
        let rest = &tls.wire[tls.sent..];
        conn.sending = true;
        conn.ops += 1;
        let token = Op::Send.token(slot, conn.generation);
        // SAFETY: `wire` lives in the boxed TLS state of the boxed connection and is not
        // touched until this send's completion; the slot is freed only after it.
        unsafe { self.driver.send(conn.fd, token, rest.as_ptr(), rest.len()) };
    }

    /// The result of a ciphertext send. Returns whether everything encrypted so far went
    /// (and the connection is still open).
    pub(super) fn apply_tls_send(&mut self, slot: u32, conn: &mut Conn, result: i32) -> bool {
        if result < 0 {
            if result == -libc::EAGAIN || result == -libc::EINTR {
                self.issue_tls_send(slot, conn);
            } else {
                self.close_now(slot, conn);
            }
            return false;
        }
        let Some(tls) = conn.tls.as_mut() else {
            return true;
        };
        tls.sent += result as usize;
        if tls.sent < tls.wire.len() {
            self.issue_tls_send(slot, conn);
            return false;
        }
        tls.wire.clear();
        tls.sent = 0;
        true
    }

    /// The response's file under TLS: read a step at a time into the queue (encrypted on its
    /// way); the send's completion drives the response back here for the next step.
    pub(super) fn send_file_through_tls(&mut self, slot: u32, conn: &mut Conn) {
        let State::App(running) = &mut conn.state else {
            return;
        };
        let response = &mut running.response;
        let Some(file) = response.file().filter(|f| f.remaining > 0) else {
            return self.end_file(slot, conn);
        };
        let want = file.remaining.min(FILE_STEP as u64) as usize;
        let offset = file.offset as u64;
        let fd = file.fd;
        // Read straight into the send queue's buffer (encrypted from there on its way out):
        // no step buffer of its own to allocate and copy from.
        let read = conn.out.write_with(|buf| {
            let start = buf.len();
            buf.resize(start + want, 0);
            let read = sys::pread(fd, &mut buf[start..], offset);
            buf.truncate(start + read.as_ref().map_or(0, |n| *n));
            read
        });
        match read {
            Ok(0) => {
                file.remaining = 0;
                self.end_file(slot, conn);
            }
            Ok(n) => {
                file.offset += n as i64;
                file.remaining -= n as u64;
                response.add_file_bytes(n as u64);
                self.start_send(slot, conn);
            }
            Err(e) => {
                self.log
                    .debug(&format!("reading the response's file failed: {e}"));
                self.close_now(slot, conn);
            }
        }
    }

    /// Before a TLS connection's write side shuts: its close_notify, sent as it is (best
    /// effort: the connection is ending).
    pub(super) fn tls_close_notify(&mut self, conn: &mut Conn) {
        let Some(tls) = conn.tls.as_mut() else {
            return;
        };
        tls.session.close();
        let mut alert = Vec::new();
        tls.session.outgoing(&mut alert);
        if !alert.is_empty() {
            // SAFETY: `alert` is a live buffer of `alert.len()` bytes for the call.
            let _ = unsafe { sys::send_now(conn.fd, alert.as_ptr(), alert.len()) };
        }
    }
}
