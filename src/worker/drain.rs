//! Stopping: signals from the signal pipe, the graceful stop (no more accepting, parked
//! responses ended, idle connections closed after a moment, the loop ending when no
//! connection is left or the graceful timeout passed), and the final shutdown.

use super::accesslog::Ending;
use super::conn::{Conn, State};
use super::op::Op;
use super::pool::job::Resume;
use super::Worker;
use crate::wsgi::response::Step;
use evserver_platform::{process, Completion, Interest};
use std::time::Duration;

/// While the worker stops, how long an idle keep-alive connection may still bring one more
/// request (answered with `Connection: close`) before it is closed. Closing it at once could
/// cross a request already on its way.
pub(super) const DRAIN_IDLE: Duration = Duration::from_secs(1);

/// Open WebSockets stay through a graceful stop (their clients may finish what they do) and
/// get their 1001 this long before the graceful timeout, so the closing handshake fits in it.
const WEBSOCKET_CLOSE_AHEAD: Duration = Duration::from_secs(1);

impl Worker {
    pub(super) fn on_signal_pipe(&mut self, c: Completion) {
        let Some(fd) = self.signal_fd else { return };
        if c.result != -libc::ECANCELED {
            let mut signals = Vec::new();
            process::drain_pipe(fd, &mut signals);
            for sig in signals {
                match i32::from(sig) {
                    libc::SIGTERM | libc::SIGINT => self.begin_drain("a stop signal"),
                    libc::SIGQUIT => self.stop = true,
                    _ => {}
                }
            }
        }
        if !self.stop {
            self.driver
                .poll_fd(fd, Interest::Readable, None, Op::Signal.token(0, 0));
        }
    }

    /// Starts a graceful stop: no more accepting, `Connection: close` on every response,
    /// parked responses ended (their `close()` called), idle keep-alive connections closed
    /// after a moment. The loop ends when no connection is left.
    pub(super) fn begin_drain(&mut self, why: &str) {
        if self.draining.is_some() {
            return;
        }
        self.log.debug(&format!("stopping gracefully on {why}"));
        self.draining = Some(self.now);
        if let super::event_loop::Mode::Pool(pool) = &self.mode {
            pool.set_stopping();
        }
        self.cancel_accepts();
        // This worker's copies of the listeners: the master keeps its own (a successor
        // accepts from them); if the master is gone, this frees the port at once. One whose
        // accept is still armed is closed when its cancellation completes (`on_accept`).
        for i in 0..self.listeners.len() {
            if !self.listeners[i].armed {
                self.close_listener(i);
            }
        }
        let idle_deadline = self.now + DRAIN_IDLE;
        for slot in 0..self.slots.len() {
            let Some(mut conn) = self.slots.take_at(slot) else {
                continue;
            };
            let slot = slot as u32;
            match &mut conn.state {
                State::Reading if conn.framer.is_idle() => {
                    conn.deadline = Some(
                        conn.deadline
                            .map_or(idle_deadline, |d| d.min(idle_deadline)),
                    );
                }
                // A WebSocket conversation goes on until the graceful timeout nears.
                State::App(running) if running.parked.is_some() && conn.ws.is_none() => {
                    self.cancel_wait(slot, &conn);
                    self.end_parked(slot, &mut conn);
                }
                State::App(running) => running.response.refuse_keep_alive(),
                _ => {}
            }
            self.put_conn(slot, conn);
        }
    }

    /// Ends a parked (or about to park) response because the worker stops; its polls must
    /// be cancelled already.
    pub(super) fn end_parked(&mut self, slot: u32, conn: &mut Conn) {
        let State::App(running) = &mut conn.state else {
            return;
        };
        running.parked = None;
        if self.threaded() {
            self.resume_on_pool(slot, conn, Resume::EndForStop);
            return;
        }
        let out = &mut conn.out;
        let response = &mut running.response;
        let Some(step) = self.with_ctx(|py, _, ctx| response.end_for_shutdown(py, ctx, out)) else {
            return;
        };
        match step {
            // A 503, the last chunk, or a body cut short: the stop ended it.
            Step::Done { .. } | Step::Abort => self.finish_request(conn, false, Ending::Stopped),
            step => self.on_step(slot, conn, step),
        }
        self.start_send(slot, conn);
        if matches!(conn.state, State::Done) && conn.all_sent() {
            self.begin_linger(slot, conn);
        }
    }

    /// Ends the loop once a graceful stop is over: no connection left, or its time is up.
    /// Shortly before that, WebSocket conversations still open are closed with 1001.
    pub(super) fn check_drained(&mut self) {
        let Some(since) = self.draining else {
            return;
        };
        let timeout = self.settings.graceful_timeout;
        if !self.websockets_closed
            && self.now >= since + timeout.saturating_sub(WEBSOCKET_CLOSE_AHEAD)
        {
            self.websockets_closed = true;
            self.close_websockets_for_stop();
        }
        let accepting = self.listeners.iter().any(|l| l.fd >= 0);
        if self.open_connections == 0 && !accepting {
            self.stop = true;
        } else if self.now >= since + self.settings.graceful_timeout {
            self.log.warning(&format!(
                "graceful stop timed out after {} s; closing {} connection(s)",
                self.settings.graceful_timeout.as_secs(),
                self.open_connections
            ));
            self.stop = true;
        }
    }

    /// Ends every parked WebSocket conversation for the stop: each gets 1001 (going away).
    fn close_websockets_for_stop(&mut self) {
        for slot in 0..self.slots.len() {
            let Some(mut conn) = self.slots.take_at(slot) else {
                continue;
            };
            let slot = slot as u32;
            let parked = matches!(&conn.state, State::App(r) if r.parked.is_some());
            if conn.ws.is_some() && parked {
                self.cancel_wait(slot, &conn);
                self.end_parked(slot, &mut conn);
            }
            self.put_conn(slot, conn);
        }
    }

    /// Stops listening and ends every connection, calling `close()` on running responses.
    pub(super) fn shutdown(&mut self) {
        for slot in 0..self.slots.len() {
            if let Some(mut conn) = self.slots.take_at(slot) {
                self.close_for_stop(slot as u32, &mut conn);
            }
        }
        self.cancel_accepts();
        let _ = self.driver.submit();
    }
}
