//! A running response's steps: drive its iterable until it must wait, then act on the step
//! (send, park, sendfile, finish or abort), and finish a request (access log, keep-alive or
//! not, `--max-requests`).

use super::conn::{Conn, Running, State};
use super::Worker;
use crate::wsgi::response::Step;

/// How a response ended, as its access-log line says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Ending {
    /// The whole response went out.
    Complete,
    /// The application failed after the head went out: the body was cut.
    Failed,
    /// A graceful stop ended it (a parked or streaming response).
    Stopped,
    /// The client went away before it ended.
    ClientGone,
}

impl Ending {
    /// What the access-log line gets after the format's own atoms.
    fn mark(self) -> &'static str {
        match self {
            Ending::Complete => "",
            Ending::Failed => " (application failed)",
            Ending::Stopped => " (ended by a graceful stop)",
            Ending::ClientGone => " (client went away)",
        }
    }
}

impl Worker<'_> {
    /// Drives the running response until it must wait. After a `Step::Send` the response
    /// waits until everything queued was sent: its next block is asked for once the kernel
    /// took the last one.
    pub(super) fn drive(&mut self, slot: u32, conn: &mut Conn) {
        let State::App(running) = &mut conn.state else {
            return;
        };
        if conn.awaiting_sent {
            if !conn.out.is_empty() {
                return;
            }
            conn.awaiting_sent = false;
        }
        if running.parked.is_some() || conn.awaiting_writable {
            return;
        }
        let out = &mut conn.out;
        let response = &mut running.response;
        let step = self.with_ctx(|py, _, ctx| response.drive(py, ctx, out));
        self.on_step(slot, conn, step);
    }

    pub(super) fn on_step(&mut self, slot: u32, conn: &mut Conn, step: Step) {
        match step {
            // Submitted with every other connection's at the end of the loop's turn; the
            // send's completion drives the response on.
            Step::Send => {
                conn.awaiting_sent = true;
                self.start_send(slot, conn);
            }
            Step::Park(_) if self.draining.is_some() => self.end_parked(slot, conn),
            Step::Park(wait) => {
                self.start_send(slot, conn);
                self.park(slot, conn, &wait);
            }
            Step::SendFile => self.send_file(slot, conn),
            Step::Done { keep_alive } => self.finish_request(conn, keep_alive, Ending::Complete),
            Step::Abort => {
                // What the application yielded before it failed goes out first; the
                // connection then closes without the body's proper end.
                self.finish_request(conn, false, Ending::Failed);
                self.start_send(slot, conn);
                if conn.out.is_empty() {
                    self.begin_linger(slot, conn);
                }
            }
        }
    }

    /// A response ended: log it, then read the next request or close.
    pub(super) fn finish_request(&mut self, conn: &mut Conn, keep_alive: bool, ending: Ending) {
        let state = std::mem::replace(&mut conn.state, State::Reading);
        conn.awaiting_sent = false;
        if let State::App(running) = state {
            if running.response.stale_wait {
                let (head, bytes) = conn.framer.head();
                self.log.warning(
                    self.py,
                    &format!(
                        "dropped an fdevent wait the application recorded but never yielded ({} {})",
                        String::from_utf8_lossy(head.method.of(bytes)),
                        String::from_utf8_lossy(head.target().of(bytes)),
                    ),
                );
            }
            self.log_access(conn, &running, ending);
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

    /// Writes the access-log line of a response that ended (when the access log is on).
    pub(super) fn log_access(&self, conn: &Conn, running: &Running, ending: Ending) {
        let Some(record) = &running.access else {
            return;
        };
        let remote = conn
            .peer
            .flatten()
            .map(|a| a.ip().to_string())
            .unwrap_or_default();
        // Bytes the kernel took: what is still queued never left.
        let unsent = conn.out.unsent() as u64;
        let bytes = match ending {
            Ending::Complete => running.response.body_bytes(),
            _ => running.response.body_bytes().saturating_sub(unsent),
        };
        let mut line = self.settings.access_format.line_for(
            self.py,
            record,
            &running.response,
            &remote,
            bytes,
        );
        line.push_str(ending.mark());
        self.log.access(self.py, &line);
    }
}
