//! A running response's steps: drive its iterable until it must wait, then act on the step
//! (send, park, sendfile, finish or abort), and finish a request (access log, keep-alive or
//! not, `--max-requests`).

use super::accesslog::Ending;
use super::conn::{Conn, Running, State};
use super::event_loop::Mode;
use super::pool::job::Resume;
use super::Worker;
use crate::wsgi::response::Step;
use pyo3::prelude::*;

impl Worker {
    /// Drives the running response until it must wait. After a `Step::Send` the response
    /// waits until everything queued was sent: its next block is asked for once the kernel
    /// took the last one.
    pub(super) fn drive(&mut self, slot: u32, conn: &mut Conn) {
        if conn.awaiting_sent {
            if !conn.all_sent() {
                return;
            }
            conn.awaiting_sent = false;
        }
        let State::App(running) = &mut conn.state else {
            return;
        };
        if running.parked.is_some() || conn.awaiting_writable {
            return;
        }
        if self.threaded() {
            self.resume_on_pool(slot, conn, Resume::Drive);
            return;
        }
        let out = &mut conn.out;
        let response = &mut running.response;
        if let Some(step) = self.with_ctx(|py, _, ctx| response.drive(py, ctx, out)) {
            self.on_step(slot, conn, step);
        }
    }

    pub(super) fn on_step(&mut self, slot: u32, conn: &mut Conn, step: Step) {
        self.ws_after_step(slot, conn);
        match step {
            // Submitted with every other connection's at the end of the loop's turn; the
            // send's completion drives the response on.
            Step::Send => {
                conn.awaiting_sent = true;
                self.start_send(slot, conn);
            }
            Step::Park(_) if self.ends_parked_for_stop(conn) => self.end_parked(slot, conn),
            Step::Park(wait) => {
                self.start_send(slot, conn);
                self.park(slot, conn, &wait);
            }
            Step::SendFile => self.send_file(slot, conn),
            // Only thread mode offers the socket; the loop closes its own copy.
            Step::TakenOver => {
                self.finish_request(conn, false, Ending::Complete);
                self.close_now(slot, conn);
            }
            Step::Done { keep_alive } => self.finish_request(conn, keep_alive, Ending::Complete),
            Step::Abort => {
                // What the application yielded before it failed goes out first; the
                // connection then closes without the body's proper end.
                self.finish_request(conn, false, Ending::Failed);
                self.start_send(slot, conn);
                if conn.all_sent() {
                    self.begin_linger(slot, conn);
                }
            }
        }
    }

    /// While the worker stops, a response that parks is ended instead, except a WebSocket
    /// conversation until the stop closes the WebSockets (shortly before its timeout).
    pub(super) fn ends_parked_for_stop(&self, conn: &Conn) -> bool {
        self.draining.is_some() && (conn.ws.is_none() || self.websockets_closed)
    }

    /// A response ended on the loop (inline mode): log it and take back its objects, then
    /// read the next request or close.
    pub(super) fn finish_request(&mut self, conn: &mut Conn, keep_alive: bool, ending: Ending) {
        let state = std::mem::replace(&mut conn.state, State::Reading);
        if let State::App(running) = state {
            if running.response.stale_wait {
                self.warn_stale_wait(conn);
            }
            self.log_and_recycle(running, ending, conn.out.unsent() as u64);
        }
        self.after_response(conn, keep_alive);
    }

    /// Inline mode: writes the access-log line of a response that ended and takes back its
    /// per-request objects.
    pub(super) fn log_and_recycle(&mut self, running: Box<Running>, ending: Ending, unsent: u64) {
        let Mode::Inline { app, .. } = &mut self.mode else {
            return;
        };
        let (log, format) = (&self.log, &self.settings.access_format);
        Python::attach(|py| {
            super::accesslog::log_ended(log, format, py, &running, ending, unsent);
            app.recycle(py, running.response);
        });
    }

    /// A response ended: read the connection's next request, or close it; counts the request
    /// and stops the worker after `--max-requests`.
    pub(super) fn after_response(&mut self, conn: &mut Conn, keep_alive: bool) {
        conn.state = State::Reading;
        // A WebSocket conversation ended: its close frame is queued, what follows is dropped.
        conn.ws = None;
        conn.awaiting_sent = false;
        if !keep_alive || conn.eof {
            // The body was read whole before the application ran.
            conn.client_asked_close = !conn.framer.head().0.keep_alive;
            conn.state = State::Done;
        } else {
            conn.deadline = Some(self.now + self.settings.keep_alive);
        }
        self.requests_served += 1;
        // Most requests end in the loop turn they started in: no clock arithmetic for them.
        let micros = if conn.request_started == self.now {
            0
        } else {
            let took = self.now.saturating_duration_since(conn.request_started);
            took.as_secs() * 1_000_000 + u64::from(took.subsec_micros())
        };
        self.durations.record(micros);
        if let Some(cell) = &self.scoreboard {
            cell.get()
                .requests
                .store(self.requests_served, std::sync::atomic::Ordering::Relaxed);
        }
        if self
            .settings
            .max_requests
            .is_some_and(|max| self.requests_served >= max)
            && self.draining.is_none()
        {
            self.log.info(&format!(
                "served {} requests (--max-requests); stopping for a fresh worker",
                self.requests_served
            ));
            self.begin_drain("--max-requests");
        }
    }

    /// The application recorded an fdevent wait it never yielded: it was dropped.
    pub(super) fn warn_stale_wait(&self, conn: &Conn) {
        let (head, bytes) = conn.framer.head();
        self.log.warning(&format!(
            "dropped an fdevent wait the application recorded but never yielded ({} {})",
            String::from_utf8_lossy(head.method.of(bytes)),
            String::from_utf8_lossy(head.target().of(bytes)),
        ));
    }
}
