//! A running response's steps: drive its iterable until it must wait, then act on the step
//! (send, park, sendfile, finish or abort), and finish a request (access log, keep-alive or
//! not, `--max-requests`).

use super::conn::{Conn, State};
use super::Worker;
use crate::wsgi::response::Step;

impl Worker<'_> {
    /// Drives the running response until it must wait.
    pub(super) fn drive(&mut self, slot: u32, conn: &mut Conn) {
        loop {
            let State::App(running) = &mut conn.state else {
                return;
            };
            if running.parked.is_some() || conn.awaiting_writable {
                return;
            }
            let out = &mut conn.out;
            let response = &mut running.response;
            let step = self.with_ctx(|py, _, ctx| response.drive(py, ctx, out));
            if let Step::Flush = step {
                self.start_send(slot, conn);
                if let Err(e) = self.driver.submit() {
                    self.log.warning(self.py, &format!("submit failed: {e}"));
                }
                continue;
            }
            self.on_step(slot, conn, step);
            return;
        }
    }

    pub(super) fn on_step(&mut self, slot: u32, conn: &mut Conn, step: Step) {
        match step {
            Step::Flush | Step::AwaitSend => self.start_send(slot, conn),
            Step::Park(_) if self.draining.is_some() => self.end_parked(slot, conn),
            Step::Park(wait) => {
                self.start_send(slot, conn);
                self.park(slot, conn, &wait);
            }
            Step::SendFile => self.send_file(slot, conn),
            Step::Done { keep_alive } => self.finish_request(conn, keep_alive),
            Step::Abort => self.close_now(slot, conn),
        }
    }

    /// A response completed: log it, then read the next request or close.
    pub(super) fn finish_request(&mut self, conn: &mut Conn, keep_alive: bool) {
        let state = std::mem::replace(&mut conn.state, State::Reading);
        if let State::App(running) = state {
            if let Some(record) = &running.access {
                let remote = conn.peer().map(|a| a.ip().to_string()).unwrap_or_default();
                let line = self.settings.access_format.line_for(
                    self.py,
                    record,
                    &running.response,
                    &remote,
                );
                self.log.access(self.py, &line);
            }
            self.app.recycle(self.py, running.response);
        }
        if !keep_alive || conn.eof {
            // The body was read whole before the application ran.
            conn.client_asked_close = !conn.framer.head().0.keep_alive;
            conn.state = State::Done;
        } else {
            conn.deadline = Some(self.now + self.settings.keep_alive);
        }
        self.requests_served += 1;
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
            self.log.info(
                self.py,
                &format!(
                    "served {} requests (--max-requests); stopping for a fresh worker",
                    self.requests_served
                ),
            );
            self.begin_drain("--max-requests");
        }
    }
}
