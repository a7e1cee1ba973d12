//! Ending a connection: lingering after the last response (so unread input does not turn into
//! a reset that destroys it), and closing at once (everything in flight cancelled, a running
//! response's `close()` called).

use super::accesslog::Ending;
use super::conn::{Conn, State};
use super::op::Op;
use super::Worker;
use evserver_platform::sys;
use std::time::Duration;

/// How long a closing connection waits for the client's end of file.
const LINGER: Duration = Duration::from_secs(2);

impl Worker {
    /// Shuts down the write side and waits briefly for the client to close.
    pub(super) fn begin_linger(&mut self, slot: u32, conn: &mut Conn) {
        // A client that asked to close and sent nothing more has nothing left unread.
        if conn.eof || (conn.client_asked_close && conn.framer.buffered() == 0) {
            self.close_now(slot, conn);
            return;
        }
        self.tls_close_notify(conn);
        let _ = sys::shutdown_write(conn.fd);
        conn.state = State::Lingering;
        conn.deadline = Some(self.now + LINGER);
        self.arm_recv(slot, conn);
    }

    /// Closes a connection whose client went away (or broke, or never sent its request).
    pub(super) fn close_now(&mut self, slot: u32, conn: &mut Conn) {
        self.close_with(slot, conn, Ending::ClientGone);
    }

    /// Closes a connection because the worker stops now.
    pub(super) fn close_for_stop(&mut self, slot: u32, conn: &mut Conn) {
        self.close_with(slot, conn, Ending::Stopped);
    }

    /// Cancels everything the connection has in flight, ends a running response (its
    /// `close()` called, its access-log line written with `ending`), and closes the fd. The
    /// slot is freed when the last operation reports.
    pub(super) fn close_with(&mut self, slot: u32, conn: &mut Conn, ending: Ending) {
        if conn.is_closed() {
            return;
        }
        let generation = conn.generation;
        if let State::OnThread { close } = &mut conn.state {
            // A pool thread writes to the socket: it closes once the job is back.
            *close = Some(ending);
            if conn.recv_armed {
                self.driver.cancel(Op::Recv.token(slot, generation));
            }
            return;
        }
        if let Some(ws) = conn.ws.take() {
            ws.connection_lost();
        }
        self.cancel_wait(slot, conn);
        let state = std::mem::replace(&mut conn.state, State::Closed);
        if let State::App(mut running) = state {
            if self.threaded() {
                self.close_on_pool(conn, running, ending);
            } else {
                self.with_ctx(|py, _, ctx| running.response.close_iterable(py, ctx));
                self.log_and_recycle(running, ending, conn.out.unsent() as u64);
            }
        }
        if conn.recv_armed {
            self.driver.cancel(Op::Recv.token(slot, generation));
        }
        if conn.sending {
            self.driver.cancel(Op::Send.token(slot, generation));
        }
        if conn.awaiting_writable {
            self.driver.cancel(Op::Writable.token(slot, generation));
        }
        self.driver.close(conn.fd);
        conn.fd = -1;
    }
}
