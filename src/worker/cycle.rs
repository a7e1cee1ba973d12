//! The request cycle of a connection: received bytes go to its `Framer` (the codec's framing
//! machine, the one the fixtures and the fuzzer drive), whose events become deadlines,
//! `100 Continue`, a stored body, a dispatched request, or a refusal.

use super::conn::{Conn, Running, State};
use super::op::Op;
use super::Worker;
use crate::wsgi::app::{PrepareError, Request};
use crate::wsgi::forwarded;
use evserver_http::encode::{write_error_response, write_interim};
use evserver_http::proxy::{self, ProxyHeader};
use evserver_http::{BodyFraming, Event, HttpError};
use evserver_platform::Completion;

impl Worker {
    pub(super) fn arm_recv(&mut self, slot: u32, conn: &mut Conn) {
        if !conn.recv_armed && !conn.eof && conn.wants_input() {
            conn.recv_armed = true;
            conn.ops += 1;
            self.driver
                .recv_multi(conn.fd, Op::Recv.token(slot, conn.generation));
        }
    }

    pub(super) fn on_recv(&mut self, slot: u32, conn: &mut Conn, c: Completion) {
        if !c.more {
            conn.recv_armed = false;
        }
        if let Some(id) = c.buffer {
            let keep = c.result > 0
                && !matches!(conn.state, State::Lingering | State::Closed | State::Done);
            if keep && conn.tls.is_some() {
                self.receive_tls(slot, conn, id, c.result as usize);
            } else if let (true, Some(ws)) = (keep, conn.ws.as_mut()) {
                ws.heard(self.now);
                ws.receive(self.driver.buffer(id, c.result as usize), &self.log);
                self.ws_flush(slot, conn);
            } else if keep {
                self.receive(conn, id, c.result as usize);
            }
            // Every buffer the kernel hands over goes back, whatever the result.
            self.driver.release_buffer(id);
        }
        if c.result == 0
            || (c.result < 0 && c.result != -libc::ENOBUFS && c.result != -libc::ECANCELED)
        {
            conn.eof = true;
        }
        match &conn.state {
            State::Closed => return,
            State::Lingering | State::Done => {
                if conn.eof && !conn.sending {
                    self.close_now(slot, conn);
                    return;
                }
            }
            State::App(running) if conn.eof && running.parked.is_some() => {
                // The client is gone while the request waits: end it now.
                self.close_now(slot, conn);
                return;
            }
            State::App(_) | State::OnThread { .. } => {
                if conn.recv_armed && !conn.wants_input() {
                    // Too much pipelined input behind a running response: stop reading.
                    self.driver.cancel(Op::Recv.token(slot, conn.generation));
                }
            }
            State::Reading => {
                self.advance(slot, conn);
                if conn.eof && matches!(conn.state, State::Reading) {
                    if conn.framer.is_idle() {
                        // Between requests: what is still being sent goes out, then close.
                        conn.state = State::Done;
                        if conn.all_sent() {
                            self.begin_linger(slot, conn);
                        }
                    } else {
                        // End of file before a complete request: nothing to answer.
                        self.close_now(slot, conn);
                    }
                    return;
                }
            }
        }
        self.arm_recv(slot, conn);
    }

    /// Hands `len` received bytes of provided buffer `id` to the framer: body bytes of a
    /// declared length go straight into the body when nothing is ahead of them.
    fn receive(&mut self, conn: &mut Conn, id: u16, len: usize) {
        if conn.proxy_pending.is_some() {
            return self.receive_proxy_header(conn, id, len);
        }
        let reading = matches!(conn.state, State::Reading);
        let starts_head = reading && conn.framer.is_idle();
        let data = self.driver.buffer(id, len);
        let mut fed = 0;
        if reading && conn.body.takes_in_memory(len) {
            fed = conn.framer.feed_body(data, conn.body.buffer());
        }
        conn.framer.feed(&data[fed..]);
        if starts_head {
            conn.deadline = Some(self.now + self.settings.header_timeout);
        }
    }

    /// Hands decrypted bytes to the framer (a TLS connection's receive).
    pub(super) fn receive_plaintext(&mut self, conn: &mut Conn, data: &[u8]) {
        let starts_head = matches!(conn.state, State::Reading) && conn.framer.is_idle();
        conn.framer.feed(data);
        if starts_head {
            conn.deadline = Some(self.now + self.settings.header_timeout);
        }
    }

    /// `--proxy-protocol`: the connection's first bytes, until they hold a whole PROXY header
    /// (its client becomes the connection's peer), turn out to hold none (they are the
    /// client's request), or break the protocol (the connection closes, unanswered). Cold:
    /// once per connection at most, kept out of the receive path.
    #[cold]
    fn receive_proxy_header(&mut self, conn: &mut Conn, id: u16, len: usize) {
        let Some(mut pending) = conn.proxy_pending.take() else {
            return;
        };
        if pending.is_empty() {
            conn.deadline = Some(self.now + self.settings.header_timeout);
        }
        pending.extend_from_slice(self.driver.buffer(id, len));
        let rest = match proxy::decode(&pending) {
            ProxyHeader::Incomplete => {
                conn.proxy_pending = Some(pending);
                return;
            }
            ProxyHeader::Invalid(why) => {
                let peer = conn.peer().map(|a| a.to_string()).unwrap_or_default();
                self.log
                    .debug(&format!("closing a connection from {peer}: {why}"));
                conn.eof = true;
                return;
            }
            ProxyHeader::Absent => 0,
            ProxyHeader::Found { len, source } => {
                if let Some(client) = source {
                    conn.peer = Some(Some(client));
                }
                len
            }
        };
        conn.framer.feed(&pending[rest..]);
    }

    /// Takes the framer's events while the connection reads requests: stores bodies,
    /// answers `100 Continue`, dispatches each complete request, then sends.
    pub(super) fn advance(&mut self, slot: u32, conn: &mut Conn) {
        while matches!(conn.state, State::Reading) {
            if self.threaded() && !conn.all_sent() {
                // A pool thread will write the next answer itself: after what is queued.
                break;
            }
            match conn.framer.poll(conn.body.buffer()) {
                Ok(Event::Head) => {
                    let declared = match conn.framer.head().0.body {
                        Some(BodyFraming::Length(n)) => Some(n),
                        _ => None,
                    };
                    conn.body.begin(declared);
                    if conn.framer.in_body() {
                        // Absolute from the end of the head: a body trickling in does not
                        // push it back.
                        conn.deadline = self.settings.body_timeout.map(|t| self.now + t);
                    }
                }
                Ok(Event::Continue) => {
                    conn.out.write_with(|buf| write_interim(buf, 100));
                }
                Ok(Event::Body(_)) => {
                    if let Err(e) = conn.body.stored() {
                        self.refuse_unstored_body(
                            conn,
                            &format!("cannot spill the request body to a temporary file: {e}"),
                        );
                    }
                }
                Ok(Event::End { .. }) => {
                    conn.deadline = None;
                    self.dispatch(slot, conn);
                }
                Ok(Event::NeedMore) => {
                    if conn.framer.is_idle() && conn.deadline.is_none() {
                        conn.deadline = Some(self.now + self.settings.keep_alive);
                    }
                    break;
                }
                Ok(Event::Closed) => conn.state = State::Done,
                Err(e) => self.refuse(conn, e),
            }
        }
        self.start_send(slot, conn);
        if matches!(conn.state, State::Done) && conn.all_sent() {
            self.begin_linger(slot, conn);
        }
    }

    /// Builds the request of the framer's current head and body, calls the application and
    /// drives its response.
    fn dispatch(&mut self, slot: u32, conn: &mut Conn) {
        let Ok(websocket) = self.ws_upgrade(slot, conn) else {
            return;
        };
        let framing = conn.framer.head().0.body;
        let has_body = !matches!(framing, Some(BodyFraming::None) | None);
        let body = if has_body {
            let length = conn.body.len();
            match conn.body.finish() {
                Ok(body) => Some((body, length)),
                Err(e) => {
                    self.refuse_unstored_body(
                        conn,
                        &format!("cannot read back the request body: {e}"),
                    );
                    return;
                }
            }
        } else {
            None
        };
        let peer = conn.peer();
        conn.request_started = self.now;
        let (head, head_bytes) = conn.framer.head();
        let access = self.log.access_enabled().then(|| {
            Box::new(super::accesslog::Record {
                captured: self.settings.access_format.capture(head, head_bytes),
                remote: forwarded::client_address(peer, head, head_bytes, &self.settings.forwarded)
                    .map(|ip| ip.to_string())
                    .unwrap_or_default(),
                started: self.now,
                environ: None,
            })
        });
        if self.threaded() {
            self.start_on_pool(slot, conn, body, access, websocket);
            return;
        }
        let request = Request {
            listener: conn.listener,
            head,
            head_bytes,
            body,
            peer,
            peer_strings: &mut conn.peer_strings,
            keep_alive: head.keep_alive && !conn.eof && self.draining.is_none(),
            websocket,
            handed_socket: None,
        };
        let out = &mut conn.out;
        let started = match self.with_ctx(|py, app, ctx| app.start(py, request, ctx, out)) {
            Some(Ok(started)) => started,
            Some(Err(PrepareError(e))) => {
                self.log.exception("cannot prepare the request", &e);
                self.refuse_with(conn, 500, "the request could not be prepared");
                return;
            }
            None => return,
        };
        let access = access.map(|mut record| {
            if self.settings.access_format.uses_environ() {
                record.environ = Some(started.environ);
            }
            record
        });
        conn.state = State::App(Box::new(Running {
            response: started.response,
            parked: None,
            access,
        }));
        match started.step {
            Some(step) => self.on_step(slot, conn, step),
            None => self.drive(slot, conn),
        }
    }

    /// Answers a refused request with its status and closes the connection afterwards.
    fn refuse(&mut self, conn: &mut Conn, e: HttpError) {
        let status = e.status();
        self.log
            .debug(&format!("refused a request: {status}: {}", e.describe()));
        self.refuse_with(conn, status, e.describe());
    }

    /// The server could not keep a request body (a temporary file failed): logged, and a 500.
    fn refuse_unstored_body(&mut self, conn: &mut Conn, why: &str) {
        self.log.error(why);
        self.refuse_with(conn, 500, "the request body could not be stored");
    }

    /// Answers with the server's own error response and reads nothing more.
    pub(super) fn refuse_with(&mut self, conn: &mut Conn, status: u16, detail: &str) {
        let date = self.date.get();
        conn.out
            .write_with(|buf| write_error_response(buf, status, detail, date));
        conn.state = State::Done;
    }
}
