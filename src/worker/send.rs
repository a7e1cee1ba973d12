//! Sending: the connection's send queue handed to the driver one flight at a time (short sends
//! resumed; the loop submits every connection's sends in one batch), and files sent with
//! sendfile, waiting for writability when the socket is full. A send's completion drives the
//! response on: a streamed block is with the kernel before the application makes the next.

use super::conn::{Conn, State};
use super::op::Op;
use super::outq::SendOp;
use super::pool::job::Resume;
use super::Worker;
use evserver_platform::{sys, Completion, Interest};

impl Worker {
    /// Starts a send of what is queued, unless one is in flight.
    pub(super) fn start_send(&mut self, slot: u32, conn: &mut Conn) {
        if conn.sending || conn.is_closed() {
            return;
        }
        if conn.tls.is_some() {
            return self.start_tls_send(slot, conn);
        }
        if let Some(op) = conn.out.next_send() {
            self.issue_send(slot, conn, op);
        }
    }

    fn issue_send(&mut self, slot: u32, conn: &mut Conn, op: SendOp) {
        conn.sending = true;
        conn.ops += 1;
        let token = Op::Send.token(slot, conn.generation);
        let fd = conn.fd;
        // SAFETY: the op points into `conn.out`, which lives in the boxed connection and is
        // not touched until this send's completion; the slot is freed only after it.
        unsafe {
            match op {
                SendOp::Single(ptr, len) => self.driver.send(fd, token, ptr, len),
                SendOp::Gathered => self.driver.sendmsg(fd, token, conn.out.gather()),
            }
        }
    }

    pub(super) fn on_send(&mut self, slot: u32, conn: &mut Conn, c: Completion) {
        if !self.apply_send(slot, conn, c.result) {
            return;
        }
        self.start_send(slot, conn);
        if let Some(ws) = conn.ws.as_mut() {
            ws.note_socket_backlog(conn.out.unsent());
            // Most WebSockets wait long between messages: an empty queue keeps no memory (its
            // frames are sent from the outbox's buffers, so nothing is copied to refill it).
            conn.out.release_memory();
        }
        match conn.state {
            State::App(_) => {
                self.drive(slot, conn);
                self.advance(slot, conn);
            }
            // Thread mode: a request that waited for the queue to empty.
            State::Reading if conn.all_sent() => self.advance(slot, conn),
            _ => {}
        }
        if matches!(conn.state, State::Done) && conn.all_sent() {
            self.begin_linger(slot, conn);
        }
        self.arm_recv(slot, conn);
    }

    /// Records the result of the flight in flight; a short send goes on with the rest.
    /// Returns whether the flight is over and the connection still open.
    fn apply_send(&mut self, slot: u32, conn: &mut Conn, result: i32) -> bool {
        conn.sending = false;
        if conn.is_closed() {
            return false;
        }
        if conn.tls.is_some() {
            return self.apply_tls_send(slot, conn, result);
        }
        if result < 0 {
            if result == -libc::EAGAIN || result == -libc::EINTR {
                if let Some(op) = conn.out.complete(0) {
                    self.issue_send(slot, conn, op);
                }
            } else {
                // The client is gone (EPIPE, ECONNRESET, ...).
                self.close_now(slot, conn);
            }
            return false;
        }
        match conn.out.complete(result as usize) {
            Some(op) => {
                self.issue_send(slot, conn, op);
                false
            }
            None => true,
        }
    }

    /// Sends the response's file with sendfile once the queue ahead of it is empty.
    pub(super) fn send_file(&mut self, slot: u32, conn: &mut Conn) {
        if !conn.all_sent() {
            self.start_send(slot, conn);
            return;
        }
        if conn.tls.is_some() {
            return self.send_file_through_tls(slot, conn);
        }
        let fd = conn.fd;
        let State::App(running) = &mut conn.state else {
            return;
        };
        let response = &mut running.response;
        let mut sent_total = 0u64;
        let outcome = match response.file() {
            Some(file) => loop {
                if file.remaining == 0 {
                    break Ok(true);
                }
                let count = file.remaining.min(1 << 20) as usize;
                match sys::sendfile(fd, file.fd, &mut file.offset, count) {
                    Ok(0) => {
                        file.remaining = 0;
                        break Ok(true);
                    }
                    Ok(n) => {
                        file.remaining -= n as u64;
                        sent_total += n as u64;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break Ok(false),
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => break Err(e),
                }
            },
            None => Ok(true),
        };
        response.add_file_bytes(sent_total);
        match outcome {
            Ok(true) => self.end_file(slot, conn),
            Ok(false) => {
                conn.awaiting_writable = true;
                conn.ops += 1;
                self.driver.poll_fd(
                    fd,
                    Interest::Writable,
                    None,
                    Op::Writable.token(slot, conn.generation),
                );
            }
            Err(e) => {
                self.log.debug(&format!("sendfile failed: {e}"));
                self.close_now(slot, conn);
            }
        }
    }

    /// The response's file is all sent: its body ends.
    pub(super) fn end_file(&mut self, slot: u32, conn: &mut Conn) {
        if self.threaded() {
            return self.resume_on_pool(slot, conn, Resume::EndBody);
        }
        let State::App(running) = &mut conn.state else {
            return;
        };
        let (out, response) = (&mut conn.out, &mut running.response);
        if let Some(step) = self.with_ctx(|py, _, ctx| response.end_body(py, ctx, out)) {
            self.on_step(slot, conn, step);
        }
    }

    pub(super) fn on_writable(&mut self, slot: u32, conn: &mut Conn, c: Completion) {
        conn.awaiting_writable = false;
        if conn.is_closed() || c.result == -libc::ECANCELED {
            return;
        }
        self.drive(slot, conn);
        self.advance(slot, conn);
    }
}
